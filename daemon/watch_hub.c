/* watch_hub: watchers in a hash table of per-path buckets, plus a ring of recent events. */
#include "daemon/watch_hub.h"

#include "daemon/store_codec.h"

#include <stdlib.h>
#include <string.h>

typedef struct watch_bucket {
  char *path;
  size_t len;
  watcher *head;
  struct watch_bucket *next; /* hash chain */
} watch_bucket;

struct watch_hub {
  watch_bucket **tab;
  size_t nbuckets, nslots;
  size_t count;
  stats *st;
  uint64_t index;
  store_event_ring hist; /* recent events, for waitIndex */
};

static uint64_t hash_path(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

watch_hub *watch_hub_new(uint64_t index, stats *st) {
  watch_hub *h = calloc(1, sizeof *h);
  if (!h) abort();
  h->nslots = 1024;
  h->tab = calloc(h->nslots, sizeof *h->tab);
  if (!h->tab) abort();
  h->index = index;
  h->st = st;
  return h;
}

void watch_hub_free(watch_hub *h) {
  if (!h) return;
  for (size_t i = 0; i < h->nslots; i++) {
    watch_bucket *b = h->tab[i];
    while (b) {
      watch_bucket *n = b->next;
      free(b->path);
      free(b);
      b = n;
    }
  }
  store_event_ring_clear(&h->hist);
  free(h->tab);
  free(h);
}

uint64_t watch_hub_index(const watch_hub *h) { return h->index; }
size_t watch_hub_count(const watch_hub *h) { return h->count; }

uint64_t watch_hub_oldest(const watch_hub *h) {
  return h->hist.n ? store_event_ring_at(&h->hist, 0)->index : 0;
}

static watch_bucket *bucket_find(watch_hub *h, const char *p, size_t n, int create) {
  size_t i = hash_path(p, n) & (h->nslots - 1);
  for (watch_bucket *b = h->tab[i]; b; b = b->next)
    if (b->len == n && !memcmp(b->path, p, n)) return b;
  if (!create) return NULL;
  watch_bucket *b = calloc(1, sizeof *b);
  if (!b) abort();
  b->path = malloc(n + 1);
  if (!b->path) abort();
  memcpy(b->path, p, n);
  b->path[n] = 0;
  b->len = n;
  b->next = h->tab[i];
  h->tab[i] = b;
  h->nbuckets++;
  return b;
}

static void bucket_drop_if_empty(watch_hub *h, watch_bucket *b) {
  if (b->head) return;
  size_t i = hash_path(b->path, b->len) & (h->nslots - 1);
  for (watch_bucket **pp = &h->tab[i]; *pp; pp = &(*pp)->next)
    if (*pp == b) {
      *pp = b->next;
      break;
    }
  h->nbuckets--;
  free(b->path);
  free(b);
}

void watch_hub_add(watch_hub *h, watcher *w) {
  watch_bucket *b = bucket_find(h, w->key, w->key_len, 1);
  w->bucket = b;
  w->prev = NULL;
  w->next = b->head;
  if (b->head) b->head->prev = w;
  b->head = w;
  h->count++;
  if (h->st) atomic_fetch_add(&h->st->watchers, 1); /* (the sum over every loop's hub) */
}

void watch_hub_remove(watch_hub *h, watcher *w) {
  watch_bucket *b = w->bucket;
  if (!b) return;
  if (w->prev) w->prev->next = w->next;
  else b->head = w->next;
  if (w->next) w->next->prev = w->prev;
  w->bucket = NULL;
  w->prev = w->next = NULL;
  h->count--;
  if (h->st) atomic_fetch_sub(&h->st->watchers, 1);
  bucket_drop_if_empty(h, b);
}

/* True when key, below watch path wp, has a component starting with '_' after wp. */
static int hidden_below(const char *wp, size_t wl, const char *key, size_t kl) {
  (void)wp; /* key is below wp: only the part after it matters */
  if (kl <= wl) return 0;
  for (size_t i = wl == 1 ? 0 : wl; i + 1 < kl; i++) /* the root "/" ends in its own '/' */
    if (key[i] == '/' && key[i + 1] == '_') return 1;
  return 0;
}

/* Is key strictly below dir? ("/" is above everything.) */
static int below(const char *dir, size_t dl, const char *key, size_t kl) {
  if (dl == 1) return kl > 1;
  return kl > dl && key[dl] == '/' && !memcmp(key, dir, dl);
}

/* Delivers e to the watchers of bucket b that want it. */
static void notify_bucket(watch_hub *h, watch_bucket *b, store_event *e, int original,
                          int deleted) {
  if (!original && !deleted && hidden_below(b->path, b->len, e->key, e->key_len)) return;
  /* Collect first: callbacks may add or remove watchers of this very bucket. */
  watcher *stackv[64];
  watcher **v = stackv;
  size_t n = 0, cap = 64;
  for (watcher *w = b->head; w; w = w->next) {
    if (!(w->recursive || original || deleted) || e->index < w->since) continue;
    if (n == cap) {
      cap *= 2;
      watcher **nv = malloc(cap * sizeof *nv);
      if (!nv) abort();
      memcpy(nv, v, n * sizeof *nv);
      if (v != stackv) free(v);
      v = nv;
    }
    v[n++] = w;
  }
  /* Unregister one-shot watchers before any callback runs. */
  for (size_t i = 0; i < n; i++)
    if (!v[i]->stream) watch_hub_remove(h, v[i]);
  /* A stream watcher removed by an earlier callback (its connection closed) is skipped by
   * checking it is still registered; one-shot watchers are owned by their callback now. */
  for (size_t i = 0; i < n; i++) {
    watcher *w = v[i];
    if (w->stream && !w->bucket) continue;
    w->cb(w, e);
  }
  if (v != stackv) free(v);
}

void watch_hub_publish(watch_hub *h, store_event *e) {
  store_event_ref(e);
  store_event_ring_push(&h->hist, e);
  if (e->index > h->index) h->index = e->index;
  if (e->refresh || !h->count) return;
  /* Ancestors and the key itself: "/", "/a", "/a/b". */
  watch_bucket *b = bucket_find(h, "/", 1, 0);
  if (b) notify_bucket(h, b, e, e->key_len == 1, 0);
  for (size_t i = 1; i <= e->key_len && h->count; i++) {
    if (i < e->key_len && e->key[i] != '/') continue;
    b = bucket_find(h, e->key, i, 0);
    if (b) notify_bucket(h, b, e, i == e->key_len, 0);
  }
  /* A deleted or expired directory also reaches the watchers of the nodes removed below it
   * (etcd's hub notifies each removed node's path; a watcher of a key below that did not exist
   * is not told). When the store did not keep the list (a very large directory), every
   * watcher below is. */
  if (e->dir && (e->action == STORE_ACT_DELETE || e->action == STORE_ACT_EXPIRE) && h->count) {
    /* Collect the paths first: buckets vanish as their last one-shot watcher fires. Keys may
     * hold any byte, NUL included, so each copy keeps its length. */
    size_t nb = 0;
    sbuf *paths = calloc(h->nbuckets + 1, sizeof *paths);
    if (!paths) abort();
    for (size_t i = 0; i < h->nslots; i++)
      for (watch_bucket *x = h->tab[i]; x; x = x->next)
        if (below(e->key, e->key_len, x->path, x->len) &&
            (!e->removed_known || store_event_removed(e, x->path, x->len)))
          sbuf_put(&paths[nb++], x->path, x->len);
    for (size_t i = 0; i < nb; i++) {
      watch_bucket *x = bucket_find(h, paths[i].p, paths[i].len, 0);
      if (x) notify_bucket(h, x, e, 0, 1);
      sbuf_free(&paths[i]);
    }
    free(paths);
  }
}

static int history_match(const watcher *w, const store_event *e) {
  if (e->refresh) return 0;
  if (e->key_len == w->key_len && !memcmp(e->key, w->key, w->key_len)) return 1;
  if (w->recursive && below(w->key, w->key_len, e->key, e->key_len) &&
      !hidden_below(w->key, w->key_len, e->key, e->key_len))
    return 1;
  if (e->dir && (e->action == STORE_ACT_DELETE || e->action == STORE_ACT_EXPIRE) &&
      below(e->key, e->key_len, w->key, w->key_len))
    return 1;
  return 0;
}

store_event *watch_hub_scan(watch_hub *h, const watcher *w, uint64_t since, uint64_t *cleared) {
  *cleared = 0;
  if (!h->hist.n) return NULL;
  uint64_t oldest = store_event_ring_at(&h->hist, 0)->index;
  if (since < oldest) {
    *cleared = oldest;
    return NULL;
  }
  for (size_t i = 0; i < h->hist.n; i++) {
    store_event *e = store_event_ring_at(&h->hist, i);
    if (e->index >= since && history_match(w, e)) return e;
  }
  return NULL;
}

void watch_hub_recover(watch_hub *h, uint64_t index, store_event **hist, size_t n) {
  /* Every watcher is told once (event NULL) and removed; the callback may free it. */
  for (size_t i = 0; i < h->nslots; i++) {
    while (h->tab[i]) {
      watch_bucket *b = h->tab[i];
      watcher *w = b->head;
      if (!w) { /* an empty bucket (none are kept, but be safe) */
        h->tab[i] = b->next;
        free(b->path);
        free(b);
        h->nbuckets--;
        continue;
      }
      watch_hub_remove(h, w); /* drops the bucket when it empties */
      w->cb(w, NULL);
    }
  }
  store_event_ring_clear(&h->hist);
  h->index = index;
  for (size_t i = 0; i < n; i++) watch_hub_publish(h, hist[i]);
  if (index > h->index) h->index = index;
}
