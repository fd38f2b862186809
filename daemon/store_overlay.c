/* store_overlay: an open-addressing hash table of pending node writes (see the header). */
#include "daemon/store_overlay.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint64_t hash_key(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

static overlay_entry *find(const overlay *o, const char *key, size_t klen) {
  if (!o->nslots) return NULL;
  size_t m = o->nslots - 1;
  for (size_t i = hash_key(key, klen) & m;; i = (i + 1) & m) {
    overlay_entry *e = &o->slots[i];
    if (!e->key || (e->klen == klen && !memcmp(e->key, key, klen))) return e;
  }
}

static void grow(overlay *o) {
  overlay old = *o;
  o->nslots = old.nslots ? old.nslots * 2 : 256;
  o->slots = calloc(o->nslots, sizeof *o->slots);
  if (!o->slots) abort();
  for (size_t i = 0; i < old.nslots; i++)
    if (old.slots[i].key) *find(o, old.slots[i].key, old.slots[i].klen) = old.slots[i];
  free(old.slots);
}

void overlay_set(overlay *o, const char *key, size_t klen, const char *val, size_t vlen) {
  if ((o->used + 1) * 2 > o->nslots) grow(o);
  overlay_entry *e = find(o, key, klen);
  if (!e->key) {
    e->key = malloc(klen ? klen : 1);
    if (!e->key) abort();
    memcpy(e->key, key, klen);
    e->klen = klen;
    o->used++;
  } else {
    free(e->val);
  }
  e->val = NULL;
  e->vlen = 0;
  if (val) {
    e->val = malloc(vlen ? vlen : 1);
    if (!e->val) abort();
    memcpy(e->val, val, vlen);
    e->vlen = vlen;
  }
}

const overlay_entry *overlay_get(const overlay *o, const char *key, size_t klen) {
  const overlay_entry *e = find(o, key, klen);
  return e && e->key ? e : NULL;
}

void overlay_clear(overlay *o) {
  if (!o->used) return;
  for (size_t i = 0; i < o->nslots; i++) {
    free(o->slots[i].key);
    free(o->slots[i].val);
  }
  memset(o->slots, 0, o->nslots * sizeof *o->slots);
  o->used = 0;
}

void overlay_free(overlay *o) {
  overlay_clear(o);
  free(o->slots);
  o->slots = NULL;
  o->nslots = 0;
}
