/* store_raft: what the Raft driver keeps in the tree store besides the key tree: member
 * records ('M' be64(id) → the driver's encoding), other state machine records ('A'), entries that change no key (store_skip),
 * and whole-store snapshots (the dump for a lagging follower; its install is store_install.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store_i.h"

static int removed_add(store *s, uint64_t id);

static void member_key(char k[9], uint64_t id) {
  k[0] = 'M';
  for (int i = 8; i >= 1; i--, id >>= 8) k[i] = (char)(id & 0xff);
}

void store_member_put(store *s, uint64_t id, const void *data, size_t len) {
  char k[9];
  member_key(k, id);
  leveldb_writebatch_put(s->group, k, 9, data, len);
  s->group_dirty = 1;
}

void store_member_del(store *s, uint64_t id) {
  char k[9];
  member_key(k, id);
  leveldb_writebatch_delete(s->group, k, 9);
  s->group_dirty = 1;
}

void store_members_each(store *s, void (*fn)(void *arg, const void *data, size_t len), void *arg) {
  leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
  for (leveldb_iter_seek(it, "M", 1); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    const char *k = leveldb_iter_key(it, &kl);
    if (kl != 9 || k[0] != 'M') break;
    const char *v = leveldb_iter_value(it, &vl);
    fn(arg, v, vl);
  }
  leveldb_iter_destroy(it);
}

void store_removed_put(store *s, uint64_t id) {
  char k[9];
  member_key(k, id);
  k[0] = 'R';
  leveldb_writebatch_put(s->group, k, 9, "", 0);
  s->group_dirty = 1;
  if (removed_add(s, id)) abort();
}

static int removed_add(store *s, uint64_t id) {
  if (store_removed_has(s, id)) return 0;
  if (s->n_removed == s->cap_removed) {
    size_t nc = s->cap_removed ? s->cap_removed * 2 : 8;
    uint64_t *v = realloc(s->removed, nc * sizeof *v);
    if (!v) return -ENOMEM;
    s->removed = v;
    s->cap_removed = nc;
  }
  s->removed[s->n_removed++] = id;
  return 0;
}

bool store_removed_has(const store *s, uint64_t id) {
  for (size_t i = 0; i < s->n_removed; i++)
    if (s->removed[i] == id) return true;
  return false;
}

static void load_removed_one(void *arg, uint64_t id) {
  if (removed_add(arg, id)) abort();
}

int store_removed_load(store *s) {
  s->n_removed = 0;
  store_removed_each(s, load_removed_one, s);
  return 0;
}

void store_removed_each(store *s, void (*fn)(void *arg, uint64_t id), void *arg) {
  leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
  for (leveldb_iter_seek(it, "R", 1); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl;
    const char *k = leveldb_iter_key(it, &kl);
    if (kl != 9 || k[0] != 'R') break;
    uint64_t id = 0;
    for (int i = 1; i <= 8; i++) id = id << 8 | (unsigned char)k[i];
    fn(arg, id);
  }
  leveldb_iter_destroy(it);
}

void store_meta_put(store *s, const char *key, size_t klen, const char *val, size_t vlen) {
  leveldb_writebatch_put(s->group, key, klen, val, vlen);
  s->group_dirty = 1;
}

void store_meta_del(store *s, const char *key, size_t klen) {
  leveldb_writebatch_delete(s->group, key, klen);
  s->group_dirty = 1;
}

void store_meta_each(store *s, const char *prefix, size_t plen,
                     void (*fn)(void *arg, const char *k, size_t kl, const char *v, size_t vl),
                     void *arg) {
  leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
  for (leveldb_iter_seek(it, prefix, plen); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    const char *k = leveldb_iter_key(it, &kl);
    if (kl < plen || memcmp(k, prefix, plen)) break;
    const char *v = leveldb_iter_value(it, &vl);
    fn(arg, k, kl, v, vl);
  }
  leveldb_iter_destroy(it);
}

void store_skip(store *s, uint64_t log_index) {
  if (log_index > s->apply_applied) s->apply_applied = log_index;
}

struct store_dump {
  store *s;
  const leveldb_snapshot_t *snap;
  leveldb_readoptions_t *ro;
  store_event **hist; /* the history at the same point, sent as 'h' keys */
  size_t n_hist;
  size_t size; /* the dump's, once counted (0: not yet) */
};

int store_snapshot_begin(store *s, store_dump **out) {
  if (store_group_flush(s)) return -EIO;
  store_dump *d = calloc(1, sizeof *d);
  if (!d) return -ENOMEM;
  d->s = s;
  d->snap = leveldb_create_snapshot(s->db);
  d->ro = leveldb_readoptions_create();
  leveldb_readoptions_set_snapshot(d->ro, d->snap);
  leveldb_readoptions_set_fill_cache(d->ro, 0);
  store_load_history(s, &d->hist, &d->n_hist);
  *out = d;
  return 0;
}

/* An event of the history as the dump's record: the 'h' be64(index % STORE_HISTORY) key of
 * older versions and its value (into k and v, emptied first). */
static void hist_record(const store_event *e, sbuf *k, sbuf *v) {
  sbuf_reset(k);
  sbuf_reset(v);
  codec_u64_key(k, 'h', e->index % STORE_HISTORY);
  store_history_encode(v, e);
}

/* The dump's size: the records of the pinned store, then the history's. */
static size_t dump_size(store_dump *d) {
  size_t n = STORE_SNAP_MAGIC_LEN;
  leveldb_iterator_t *it = leveldb_create_iterator(d->s->db, d->ro);
  for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    leveldb_iter_key(it, &kl);
    leveldb_iter_value(it, &vl);
    n += 8 + kl + vl;
  }
  leveldb_iter_destroy(it);
  sbuf k = {0}, v = {0};
  for (size_t i = 0; i < d->n_hist; i++) {
    hist_record(d->hist[i], &k, &v);
    n += 8 + k.len + v.len;
  }
  sbuf_free(&k);
  sbuf_free(&v);
  return n;
}

size_t store_snapshot_size(store_dump *d) {
  if (!d->size) d->size = dump_size(d);
  return d->size;
}

/* A record, be32 length then bytes for key and value, at *o in dst (cap bytes). */
static int put_record(char *dst, size_t cap, size_t *o, const char *k, size_t kl, const char *v,
                      size_t vl) {
  if (8 + kl + vl > cap - *o) return -EOVERFLOW;
  char *p = dst + *o;
  codec_put_be32(p, (uint32_t)kl);
  memcpy(p + 4, k, kl);
  codec_put_be32(p + 4 + kl, (uint32_t)vl);
  memcpy(p + 8 + kl, v, vl);
  *o += 8 + kl + vl;
  return 0;
}

int store_snapshot_write_into(store_dump *d, char *dst, size_t cap) {
  if (cap < STORE_SNAP_MAGIC_LEN) return -EOVERFLOW;
  memcpy(dst, STORE_SNAP_MAGIC, STORE_SNAP_MAGIC_LEN);
  size_t o = STORE_SNAP_MAGIC_LEN;
  int rc = 0;
  leveldb_iterator_t *it = leveldb_create_iterator(d->s->db, d->ro);
  for (leveldb_iter_seek_to_first(it); !rc && leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    const char *k = leveldb_iter_key(it, &kl);
    const char *v = leveldb_iter_value(it, &vl);
    rc = put_record(dst, cap, &o, k, kl, v, vl);
  }
  leveldb_iter_destroy(it);
  /* The history as older versions kept it, 'h' be64(index % STORE_HISTORY) keys: the
   * receiver imports them into its history (store_history_reload), old versions too. */
  sbuf k = {0}, v = {0};
  for (size_t i = 0; !rc && i < d->n_hist; i++) {
    hist_record(d->hist[i], &k, &v);
    rc = put_record(dst, cap, &o, k.p, k.len, v.p, v.len);
  }
  sbuf_free(&k);
  sbuf_free(&v);
  if (!rc && o != cap) rc = -EOVERFLOW; /* (the pinned store cannot change: never) */
  return rc;
}

int store_snapshot_write(store_dump *d, char **out, size_t *len) {
  /* Sized first (one more pass over the pinned store, on this thread): a buffer grown by
   * doubling held up to twice the dump, and freed pages stay resident for a while. */
  size_t n = store_snapshot_size(d);
  char *p = malloc(n);
  if (!p) return -ENOMEM;
  int rc = store_snapshot_write_into(d, p, n);
  if (rc) {
    free(p);
    return rc;
  }
  *out = p;
  *len = n;
  return 0;
}

void store_snapshot_end(store_dump *d) {
  if (!d) return;
  for (size_t i = 0; i < d->n_hist; i++) store_event_unref(d->hist[i]);
  free(d->hist);
  leveldb_readoptions_destroy(d->ro);
  leveldb_release_snapshot(d->s->db, d->snap);
  free(d);
}

int store_snapshot_meta_get(store *s, char **out, size_t *len) {
  char *lerr = NULL;
  char *v = leveldb_get(s->db, s->ropts, STORE_SNAP_META_KEY, strlen(STORE_SNAP_META_KEY), len, &lerr);
  *out = NULL;
  if (lerr) {
    leveldb_free(lerr);
    leveldb_free(v);
    return -EIO;
  }
  if (!v) return 0;
  *out = malloc(*len ? *len : 1);
  if (*out) memcpy(*out, v, *len);
  leveldb_free(v);
  return *out ? 1 : -ENOMEM;
}
