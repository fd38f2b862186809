/* store: the etcd v2 key tree on LevelDB: open, reads, and the deterministic apply of
 * committed records (set, create, update, compareAndSwap, delete, compareAndDelete, POST,
 * SYNC expiry, quorum GET). Semantics follow etcd 3.4's v2 store, minus the bugs listed in
 * shared/docs/v2-api.md section 10. */
#include "daemon/store_i.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define META_INDEX "mindex"
#define META_APPLIED "mapplied"
/* The /v2/stats/store counters, kept with each group: they count from the store's beginning
 * across restarts, as etcd's (its v2 store keeps them in its snapshots and recounts the log
 * after them). */
#define META_STATS "mstats"

void store_result_free(store_result *r) {
  free(r->body);
  r->body = NULL;
  r->body_len = 0;
}

void store_gen_finish(yajl_gen g, char **body, size_t *len) {
  const unsigned char *buf;
  size_t n;
  yajl_gen_get_buf(g, &buf, &n);
  char *p = malloc(n + 1);
  if (!p) abort();
  memcpy(p, buf, n);
  p[n] = '\n';
  *body = p;
  *len = n + 1;
}

void store_result_error(store_result *r, int code, const char *cause, size_t cause_len,
                        uint64_t index) {
  yajl_gen g = proto_v2_gen_new();
  proto_v2_gen_error(g, code, cause, cause_len, index);
  store_gen_finish(g, &r->body, &r->body_len);
  yajl_gen_free(g);
  r->status = proto_v2_error_status(code);
  r->error_code = code;
  r->etcd_index = index;
}

/* ------------------------------------------------------------------ open / close / meta */

static uint64_t meta_get(store *s, const char *name, char **errptr) {
  size_t vlen = 0;
  char *v = leveldb_get(s->db, s->ropts, name, strlen(name), &vlen, errptr);
  uint64_t x = v && vlen == 8 ? codec_get_be64(v) : 0;
  leveldb_free(v);
  return x;
}

static void meta_stats_load(store *s, char **errptr) {
  if (!s->st) return;
  size_t vlen = 0;
  char *v = leveldb_get(s->db, s->ropts, META_STATS, strlen(META_STATS), &vlen, errptr);
  for (size_t i = 0; v && i < STATS_N && (i + 1) * 8 <= vlen; i++)
    atomic_store(&s->st->store[i], codec_get_be64(v + i * 8));
  leveldb_free(v);
}

static void meta_stats_put(store *s, sbuf *v) {
  if (!s->st) return;
  sbuf_reset(v);
  for (size_t i = 0; i < STATS_N; i++) sbuf_put_be64(v, atomic_load(&s->st->store[i]));
  leveldb_writebatch_put(s->group, META_STATS, strlen(META_STATS), v->p, v->len);
}

int store_open(store **out, const char *dir, int sync, stats *st, char *err, size_t errlen) {
  store *s = calloc(1, sizeof *s);
  char *lerr = NULL;
  if (!s) return -ENOMEM;
  s->opts = leveldb_options_create();
  s->cache = leveldb_cache_create_lru(32 << 20);
  s->filter = leveldb_filterpolicy_create_bloom(10);
  leveldb_options_set_create_if_missing(s->opts, 1);
  leveldb_options_set_paranoid_checks(s->opts, 1);
  leveldb_options_set_cache(s->opts, s->cache);
  leveldb_options_set_filter_policy(s->opts, (leveldb_filterpolicy_t *)s->filter);
  leveldb_options_set_write_buffer_size(s->opts, 16 << 20);
  leveldb_options_set_max_open_files(s->opts, 500);
  /* No snappy: 2-3% of every member's CPU (+3% PUT 128 on 3 members in paired runs) for a
   * tree ~28% larger (1M bench keys: 157 MB instead of 123 MB; etcd's bbolt takes 1.1 GB). */
  leveldb_options_set_compression(s->opts, leveldb_no_compression);
  s->ropts = leveldb_readoptions_create();
  s->wopts_nosync = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(s->wopts_nosync, 0);
  s->sync = sync;
  s->st = st;
  pthread_mutex_init(&s->pin_mu, NULL);
  pthread_cond_init(&s->pin_cv, NULL);
  s->dir = strdup(dir);
  if (!s->dir) {
    store_close(s);
    return -ENOMEM;
  }
  s->db = leveldb_open(s->opts, dir, &lerr);
  if (!s->db) {
    /* LevelDB's LOCK: another process has this data dir (etcd says so in its words too) */
    int locked = lerr && strstr(lerr, "/LOCK:") && strstr(lerr, "unavailable");
    snprintf(err, errlen, "cannot open the database in %s: %s%s", dir, lerr ? lerr : "unknown",
             locked ? " (another quorumd may be using this data dir)" : "");
    leveldb_free(lerr);
    store_close(s);
    return -EIO;
  }
  s->wopts_sync = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(s->wopts_sync, 1);
  int rc = store_install_redo(s);
  if (rc) {
    if (rc == -EUCLEAN)
      snprintf(err, errlen, "the tree in %s was left halfway through installing a snapshot, "
               "and %s, which would complete it, is missing", dir, STORE_INSTALL_FILE);
    else
      snprintf(err, errlen, "cannot complete the install of a snapshot in %s: %s", dir,
               strerror(-rc));
    store_close(s);
    return rc;
  }
  s->index = meta_get(s, META_INDEX, &lerr);
  s->applied = meta_get(s, META_APPLIED, &lerr);
  if (!lerr) meta_stats_load(s, &lerr);
  s->apply_index = s->index;
  s->apply_applied = s->applied;
  s->group = leveldb_writebatch_create();
  if (lerr) {
    snprintf(err, errlen, "cannot read the database in %s: %s", dir, lerr);
    leveldb_free(lerr);
    store_close(s);
    return -EIO;
  }
  rc = store_removed_load(s);
  if (!rc) rc = store_history_open(s, dir);
  if (rc) {
    snprintf(err, errlen, "cannot open the event history in %s: %s", dir, strerror(-rc));
    store_close(s);
    return rc;
  }
  s->opened = 1;
  *out = s;
  return 0;
}

int store_reload_meta(store *s) {
  char *lerr = NULL;
  uint64_t index = meta_get(s, META_INDEX, &lerr);
  uint64_t applied = meta_get(s, META_APPLIED, &lerr);
  if (!lerr) meta_stats_load(s, &lerr);
  if (lerr) {
    leveldb_free(lerr);
    return -EIO;
  }
  s->apply_index = index;
  s->apply_applied = applied;
  atomic_store(&s->index, index);
  atomic_store(&s->applied, applied);
  return 0;
}

void store_close(store *s) {
  if (!s) return;
  if (s->opened && s->st) { /* the reads counted since the last group */
    sbuf v = {0};
    leveldb_writebatch_clear(s->group);
    meta_stats_put(s, &v);
    sbuf_free(&v);
    char *lerr = NULL;
    leveldb_write(s->db, s->wopts_nosync, s->group, &lerr);
    leveldb_free(lerr);
  }
  store_history_close(s);
  if (s->db) leveldb_close(s->db);
  if (s->opts) leveldb_options_destroy(s->opts);
  if (s->cache) leveldb_cache_destroy(s->cache);
  if (s->filter) leveldb_filterpolicy_destroy((leveldb_filterpolicy_t *)s->filter);
  if (s->ropts) leveldb_readoptions_destroy(s->ropts);
  if (s->wopts_nosync) leveldb_writeoptions_destroy(s->wopts_nosync);
  if (s->wopts_sync) leveldb_writeoptions_destroy(s->wopts_sync);
  if (s->group) leveldb_writebatch_destroy(s->group);
  overlay_free(&s->ovl);
  free(s->removed);
  overlay_free(&s->dirs);
  free(s->dir);
  pthread_mutex_destroy(&s->pin_mu);
  pthread_cond_destroy(&s->pin_cv);
  free(s);
}

leveldb_t *store_db(store *s) { return s->db; }
int store_sync_enabled(const store *s) { return s->sync; }
uint64_t store_index(store *s) { return atomic_load(&s->index); }
uint64_t store_applied(store *s) { return atomic_load(&s->applied); }

/* ------------------------------------------------------------------ node reads */

int store_node_read(store *s, const leveldb_readoptions_t *ro, const char *path, size_t len,
                    store_node *out) {
  sbuf k = {0};
  char *lerr = NULL;
  size_t vlen = 0;
  codec_node_key(&k, path, len);
  char *v = leveldb_get(s->db, ro, k.p, k.len, &vlen, &lerr);
  sbuf_free(&k);
  if (lerr) {
    leveldb_free(lerr);
    leveldb_free(v);
    return -EIO;
  }
  if (!v) return 0;
  if (codec_node_decode(v, vlen, &out->n)) {
    leveldb_free(v);
    return -EIO;
  }
  out->raw = v;
  return 1;
}

void store_node_release(store_node *n) {
  leveldb_free(n->raw);
  n->raw = NULL;
}

/* Where reads come from: a LevelDB view, plus (on the apply side) the group's overlay. */
typedef struct reader {
  store *s;
  const leveldb_readoptions_t *ro;
  int overlay;
} reader;

static int node_get(const reader *rd, const char *path, size_t len, store_node *out) {
  if (rd->overlay && rd->s->ovl.used) {
    sbuf k = {0};
    codec_node_key(&k, path, len);
    const overlay_entry *e = overlay_get(&rd->s->ovl, k.p, k.len);
    sbuf_free(&k);
    if (e) {
      if (!e->val) return 0;
      char *copy = malloc(e->vlen);
      if (!copy) abort();
      memcpy(copy, e->val, e->vlen);
      if (codec_node_decode(copy, e->vlen, &out->n)) {
        free(copy);
        return -EIO;
      }
      out->raw = copy;
      return 1;
    }
  }
  return store_node_read(rd->s, rd->ro, path, len, out);
}

/* Where a path fails to resolve: the first missing component (100) or the file in the way
 * (104). Checks from the top; *cause_len is the prefix of path that names the culprit. */
static int resolve_failure(const reader *rd, const char *path, size_t len, size_t *cause_len) {
  for (size_t i = 1; i <= len; i++) {
    if (i < len && path[i] != '/') continue;
    store_node n;
    int r = node_get(rd, path, i, &n);
    if (r < 0) return 300;
    *cause_len = i;
    if (r == 0) return 100;
    int dir = n.n.dir;
    store_node_release(&n);
    if (!dir && i < len) return 104;
  }
  *cause_len = len;
  return 100;
}

/* Reads path or explains why not: returns 0 with *out filled, or a v2 error code with the
 * cause length within path. The root is a directory that always exists. */
static int lookup(const reader *rd, const char *path, size_t len, store_node *out,
                  size_t *cause_len) {
  if (len == 1) {
    memset(out, 0, sizeof *out);
    out->n.dir = 1;
    return 0;
  }
  int r = node_get(rd, path, len, out);
  if (r == 1) return 0;
  if (r < 0) return 300;
  return resolve_failure(rd, path, len, cause_len);
}

static proto_node to_proto(const char *path, size_t len, const codec_node *n) {
  proto_node p = {0};
  if (len > 1) {
    p.key = path;
    p.key_len = len;
    p.created_index = n->created;
    p.modified_index = n->modified;
  }
  p.dir = n->dir;
  p.value = n->value;
  p.value_len = n->value_len;
  p.expiration = n->expiration;
  return p;
}

void store_get(store *s, const char *path, size_t len, int recursive, int sorted, int64_t now_ns,
               store_result *res) {
  store_view view;
  store_view_begin(s, &view);
  leveldb_readoptions_t *ro = view.ro;
  char *lerr = NULL;
  size_t vlen = 0;
  char *iv = leveldb_get(s->db, ro, META_INDEX, strlen(META_INDEX), &vlen, &lerr);
  uint64_t index = iv && vlen == 8 ? codec_get_be64(iv) : 0;
  leveldb_free(iv);
  leveldb_free(lerr);
  memset(res, 0, sizeof *res);
  res->action = STORE_ACT_GET;
  store_node n = {0};
  size_t cl = 0;
  reader rd = {s, ro, 0};
  int code = lookup(&rd, path, len, &n, &cl);
  if (code) {
    store_result_error(res, code, path, cl, index);
    stats_inc(s->st, STATS_GETS_FAIL);
  } else {
    yajl_gen g = proto_v2_gen_new();
    yajl_gen_map_open(g);
    PROTO_V2_GEN_KEY(g, "action");
    PROTO_V2_GEN_KEY(g, "get");
    PROTO_V2_GEN_KEY(g, "node");
    if (store_list_gen(s, ro, path, len, &n.n, recursive, sorted, now_ns, g) < 0) {
      yajl_gen_free(g);
      store_result_error(res, 300, "read failed", 11, index);
    } else {
      yajl_gen_map_close(g);
      store_gen_finish(g, &res->body, &res->body_len);
      yajl_gen_free(g);
      res->status = 200;
      res->etcd_index = index;
      stats_inc(s->st, STATS_GETS_SUCCESS);
    }
    store_node_release(&n);
  }
  store_view_end(s, &view);
}

int64_t store_next_expiry(store *s) {
  store_view view;
  store_view_begin(s, &view);
  leveldb_iterator_t *it = leveldb_create_iterator(s->db, view.ro);
  int64_t t = 0;
  leveldb_iter_seek(it, "e", 1);
  if (leveldb_iter_valid(it)) {
    size_t kl;
    const char *k = leveldb_iter_key(it, &kl);
    if (kl >= 9 && k[0] == 'e') t = (int64_t)codec_get_be64(k + 1);
  }
  leveldb_iter_destroy(it);
  store_view_end(s, &view);
  return t;
}

/* ------------------------------------------------------------------ apply */

typedef struct apply {
  store *s;
  reader rd;               /* the database plus the group's overlay */
  leveldb_writebatch_t *wb; /* this record's writes, staged into the group on success */
  sbuf ops;                /* this record's node writes for the overlay: klen key vlen|-1 val */
  const proto_record *rec;
  uint64_t log_index;
  uint64_t index; /* the etcd index before this change */
  int64_t now;
  store_result *res;
  store_event ***events;
  size_t *n_events, *cap_events;
} apply;

/* Remembers a node write of this record for the overlay (applied when the record succeeds). */
static void op_record(apply *a, const sbuf *k, const char *v, size_t vlen) {
  uint64_t kl = k->len, vl = v ? vlen : UINT64_MAX;
  sbuf_put(&a->ops, &kl, sizeof kl);
  sbuf_put(&a->ops, k->p, k->len);
  sbuf_put(&a->ops, &vl, sizeof vl);
  if (v) sbuf_put(&a->ops, v, vlen);
}

/* Drops this record's writes (it failed). */
static void record_discard(apply *a) {
  leveldb_writebatch_clear(a->wb);
  sbuf_reset(&a->ops);
}

/* Moves this record's writes into the group and its node writes into the overlay. */
static void record_stage(apply *a) {
  store *s = a->s;
  leveldb_writebatch_append(s->group, a->wb);
  leveldb_writebatch_clear(a->wb);
  s->group_dirty = 1;
  for (size_t i = 0; i < a->ops.len;) {
    uint64_t kl, vl;
    memcpy(&kl, a->ops.p + i, sizeof kl);
    i += sizeof kl;
    const char *k = a->ops.p + i;
    i += kl;
    memcpy(&vl, a->ops.p + i, sizeof vl);
    i += sizeof vl;
    if (vl == UINT64_MAX) {
      overlay_set(&s->ovl, k, kl, NULL, 0);
    } else {
      overlay_set(&s->ovl, k, kl, a->ops.p + i, vl);
      i += vl;
    }
  }
  sbuf_reset(&a->ops);
}

static void wb_put_node(apply *a, const char *path, size_t len, const codec_node *n) {
  sbuf k = {0}, v = {0};
  codec_node_key(&k, path, len);
  codec_node_encode(&v, n);
  leveldb_writebatch_put(a->wb, k.p, k.len, v.p, v.len);
  op_record(a, &k, v.p, v.len);
  if (n->expiration) {
    sbuf_reset(&k);
    codec_expiry_key(&k, n->expiration, path, len);
    leveldb_writebatch_put(a->wb, k.p, k.len, "", 0);
  }
  sbuf_free(&k);
  sbuf_free(&v);
}

static void wb_del_node(apply *a, const char *path, size_t len, const codec_node *n) {
  sbuf k = {0};
  if (n->dir) overlay_clear(&a->s->dirs); /* rare: forget every known directory */
  codec_node_key(&k, path, len);
  leveldb_writebatch_delete(a->wb, k.p, k.len);
  op_record(a, &k, NULL, 0);
  if (n->expiration) {
    sbuf_reset(&k);
    codec_expiry_key(&k, n->expiration, path, len);
    leveldb_writebatch_delete(a->wb, k.p, k.len);
  }
  sbuf_free(&k);
}

/* Deletes every node below dir (not dir itself). */
static int wb_del_subtree(apply *a, const char *dir, size_t len, sbuf *removed, int *known) {
  sbuf prefix = {0}, path = {0};
  int rc = 0;
  leveldb_iterator_t *it = leveldb_create_iterator(a->s->db, a->s->ropts);
  for (int pass = 0; pass < 2; pass++) {
    sbuf_reset(&prefix);
    if (pass == 0) codec_children_prefix(&prefix, dir, len);
    else codec_deep_prefix(&prefix, dir, len);
    for (leveldb_iter_seek(it, prefix.p, prefix.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
      size_t kl, vl;
      const char *k = leveldb_iter_key(it, &kl);
      if (kl < prefix.len || memcmp(k, prefix.p, prefix.len)) break;
      const char *v = leveldb_iter_value(it, &vl);
      codec_node n;
      sbuf_reset(&path);
      if (codec_node_decode(v, vl, &n) || codec_node_path(&path, k, kl)) {
        rc = -EIO;
        continue;
      }
      wb_del_node(a, path.p, path.len, &n);
      store_event_removed_add(removed, known, path.p, path.len);
    }
  }
  leveldb_iter_destroy(it);
  sbuf_free(&prefix);
  sbuf_free(&path);
  return rc;
}

/* Creates the missing ancestors of path as directories with index idx, failing with 104 when a
 * file is in the way. Returns 0 or a v2 error code with *cause_len set. */
static int make_parents(apply *a, const char *path, size_t len, uint64_t idx, size_t *cause_len) {
  size_t plen = len;
  while (plen > 0 && path[plen - 1] != '/') plen--;
  if (plen <= 1) return 0; /* parent is the root */
  plen--;
  if (overlay_get(&a->s->dirs, path, plen)) return 0;
  store_node p;
  int r = node_get(&a->rd, path, plen, &p);
  if (r < 0) return 300;
  if (r == 1) {
    int dir = p.n.dir;
    store_node_release(&p);
    if (dir) {
      /* Only directories already written (or staged) are remembered: one created by this
       * record might still be discarded with it. */
      if (a->s->dirs.used > 65536) overlay_clear(&a->s->dirs);
      overlay_set(&a->s->dirs, path, plen, "", 0);
      return 0;
    }
    *cause_len = plen;
    return 104;
  }
  /* Walk from the top: create each missing directory, stop at a file. */
  for (size_t i = 1; i <= plen; i++) {
    if (i < plen && path[i] != '/') continue;
    store_node n;
    r = node_get(&a->rd, path, i, &n);
    if (r < 0) return 300;
    if (r == 1) {
      int dir = n.n.dir;
      store_node_release(&n);
      if (!dir) {
        *cause_len = i;
        return 104;
      }
      continue;
    }
    codec_node d = {.dir = 1, .created = idx, .modified = idx};
    wb_put_node(a, path, i, &d);
  }
  return 0;
}

static void event_push(apply *a, store_event *e) {
  if (*a->n_events == *a->cap_events) {
    size_t cap = *a->cap_events ? *a->cap_events * 2 : 8;
    store_event **p = realloc(*a->events, cap * sizeof *p);
    if (!p) abort();
    *a->events = p;
    *a->cap_events = cap;
  }
  (*a->events)[(*a->n_events)++] = e;
}

int store_group_flush(store *s) {
  if (!s->group_dirty && s->apply_applied == atomic_load(&s->applied)) return 0;
  sbuf v = {0};
  sbuf_put_be64(&v, s->apply_index);
  leveldb_writebatch_put(s->group, META_INDEX, strlen(META_INDEX), v.p, v.len);
  sbuf_reset(&v);
  sbuf_put_be64(&v, s->apply_applied);
  leveldb_writebatch_put(s->group, META_APPLIED, strlen(META_APPLIED), v.p, v.len);
  meta_stats_put(s, &v);
  sbuf_free(&v);
  char *lerr = NULL;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  /* The events go to the history file first, so it holds at least what the tree does. */
  int rc = store_history_write(s);
  if (rc) {
    fprintf(stderr, "quorumd: cannot write the event history: %s\n", strerror(-rc));
    return rc;
  }
  leveldb_write(s->db, s->wopts_nosync, s->group, &lerr);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  if (s->st) /* (etcd's "backend commit": the applied changes written to the database) */
    stats_hist_add(&s->st->backend_commit, (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL +
                                                      (t1.tv_nsec - t0.tv_nsec)));
  leveldb_writebatch_clear(s->group);
  overlay_clear(&s->ovl);
  s->group_dirty = 0;
  if (lerr) {
    fprintf(stderr, "quorumd: store write failed: %s\n", lerr);
    leveldb_free(lerr);
    return -EIO;
  }
  atomic_store(&s->index, s->apply_index);
  atomic_store(&s->applied, s->apply_applied);
  store_history_publish(s);
  return 0;
}

uint64_t store_sync_applied(store *s) {
  if (store_group_flush(s)) return 0;
  if (s->sync && store_history_sync(s)) return 0; /* durable before the tree says it is */
  char *lerr = NULL;
  sbuf v = {0};
  sbuf_put_be64(&v, s->apply_applied);
  leveldb_put(s->db, s->wopts_sync, META_APPLIED, strlen(META_APPLIED), v.p, v.len, &lerr);
  sbuf_free(&v);
  if (lerr) {
    leveldb_free(lerr);
    return 0;
  }
  return s->apply_applied;
}

/* Builds the event for a change and the response body from it. */
static store_event *make_event(apply *a, int action, uint64_t index, const char *path,
                               size_t len, const proto_node *node, const proto_node *prev) {
  store_event *e = calloc(1, sizeof *e);
  if (!e) abort();
  e->refs = 1;
  e->action = (uint8_t)action;
  e->dir = (uint8_t)node->dir;
  e->index = index;
  e->key = malloc(len + 1);
  if (!e->key) abort();
  memcpy(e->key, path, len);
  e->key[len] = 0;
  e->key_len = len;
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_map_open(g);
  PROTO_V2_GEN_KEY(g, "action");
  const char *an = store_action_name(action);
  yajl_gen_string(g, (const unsigned char *)an, strlen(an));
  PROTO_V2_GEN_KEY(g, "node");
  proto_v2_gen_node(g, node, a->now);
  if (prev) {
    PROTO_V2_GEN_KEY(g, "prevNode");
    proto_v2_gen_node(g, prev, a->now);
  }
  yajl_gen_map_close(g);
  store_gen_finish(g, &e->json, &e->json_len);
  yajl_gen_free(g);
  return e;
}

/* Records e as the result of this change: history, watchers, and the response. */
static int finish_change(apply *a, store_event *e, int status) {
  store_history_stage(a->s, e);
  record_stage(a);
  a->s->apply_index = e->index;
  if (a->res) {
    a->res->status = status;
    a->res->action = e->action;
    a->res->etcd_index = e->index;
    a->res->body = malloc(e->json_len);
    if (!a->res->body) abort();
    memcpy(a->res->body, e->json, e->json_len);
    a->res->body_len = e->json_len;
  }
  event_push(a, e);
  return 0;
}

static int fail(apply *a, int code, const char *cause, size_t cause_len, stats_counter c) {
  stats_inc(a->s->st, c);
  if (a->res) store_result_error(a->res, code, cause, cause_len, a->index);
  return 0;
}

static int64_t rec_expiration(const proto_record *r) {
  return (r->flags & PROTO_REC_TTL) ? r->expiration : 0;
}

/* set, create and POST: internalCreate in etcd's terms. */
static int apply_create(apply *a, const char *path, size_t len, int action, int replace,
                        const char *value, size_t vlen, stats_counter ok, stats_counter bad) {
  const proto_record *r = a->rec;
  uint64_t next = a->index + 1;
  if (len == 1) return fail(a, 107, "/", 1, bad);
  size_t cl = 0;
  int code = make_parents(a, path, len, next, &cl);
  if (code) {
    record_discard(a);
    return fail(a, code, path, cl, bad);
  }
  store_node old;
  int have = node_get(&a->rd, path, len, &old);
  if (have < 0) return -EIO;
  proto_node prev = {0};
  if (have) {
    if (!replace || old.n.dir) {
      store_node_release(&old);
      record_discard(a);
      return fail(a, replace ? 102 : 105, path, len, bad);
    }
    prev = to_proto(path, len, &old.n);
    wb_del_node(a, path, len, &old.n);
  }
  codec_node n = {.dir = (r->flags & PROTO_REC_DIR) != 0, .created = next, .modified = next,
                  .expiration = rec_expiration(r), .value = value, .value_len = vlen};
  wb_put_node(a, path, len, &n);
  proto_node pn = to_proto(path, len, &n);
  store_event *e = make_event(a, action, next, path, len, &pn, have ? &prev : NULL);
  e->refresh = (r->flags & PROTO_REC_REFRESH) != 0;
  if (have) store_node_release(&old);
  stats_inc(a->s->st, ok);
  return finish_change(a, e, have ? 200 : 201);
}

static int apply_set(apply *a) {
  const proto_record *r = a->rec;
  const char *value = r->value;
  size_t vlen = r->value_len;
  store_node old = {0};
  int rc;
  if (r->flags & PROTO_REC_REFRESH) {
    size_t cl = 0;
    int code = r->path_len == 1 ? 107 : lookup(&a->rd, r->path, r->path_len, &old, &cl);
    if (code) return fail(a, code, code == 107 ? "/" : r->path, code == 107 ? 1 : cl, STATS_SETS_FAIL);
    if (old.n.dir) {
      store_node_release(&old);
      return fail(a, 102, r->path, r->path_len, STATS_SETS_FAIL);
    }
    value = old.n.value;
    vlen = old.n.value_len;
  }
  rc = apply_create(a, r->path, r->path_len, STORE_ACT_SET, 1, value, vlen, STATS_SETS_SUCCESS,
                    STATS_SETS_FAIL);
  store_node_release(&old);
  return rc;
}

static int apply_post(apply *a) {
  const proto_record *r = a->rec;
  char name[24];
  snprintf(name, sizeof name, "%020" PRIu64, a->index + 1);
  sbuf p = {0};
  if (r->path_len > 1) sbuf_put(&p, r->path, r->path_len);
  sbuf_putc(&p, '/');
  sbuf_put(&p, name, strlen(name));
  int rc = apply_create(a, p.p, p.len, STORE_ACT_CREATE, 0, r->value, r->value_len,
                        STATS_CREATE_SUCCESS, STATS_CREATE_FAIL);
  sbuf_free(&p);
  return rc;
}

/* The 101 cause: "[prevValue != value]", "[prevIndex != modifiedIndex]" or both. */
static int compare(apply *a, const codec_node *n, sbuf *cause) {
  const proto_record *r = a->rec;
  int value_ok = !(r->flags & PROTO_REC_PREV_VALUE) ||
                 (r->prev_value_len == n->value_len && !memcmp(r->prev_value, n->value, n->value_len));
  int index_ok = r->prev_index == 0 || r->prev_index == n->modified;
  if (value_ok && index_ok) return 1;
  char num[64];
  if (!value_ok) {
    sbuf_putc(cause, '[');
    sbuf_put(cause, r->prev_value, r->prev_value_len);
    sbuf_put(cause, " != ", 4);
    sbuf_put(cause, n->value, n->value_len);
    sbuf_putc(cause, ']');
  }
  if (!index_ok) {
    if (!value_ok) sbuf_putc(cause, ' ');
    int l = snprintf(num, sizeof num, "[%" PRIu64 " != %" PRIu64 "]", r->prev_index, n->modified);
    sbuf_put(cause, num, (size_t)l);
  }
  return 0;
}

/* Reads the node the record changes: 107 for the root, else what lookup finds. Returns 1 with
 * *old filled, or 0 with the error recorded. */
static int load_target(apply *a, store_node *old, stats_counter bad) {
  const proto_record *r = a->rec;
  size_t cl = 0;
  if (r->path_len == 1) return fail(a, 107, "/", 1, bad), 0;
  int code = lookup(&a->rd, r->path, r->path_len, old, &cl);
  if (code) return fail(a, code, r->path, cl, bad), 0;
  return 1;
}

/* The prevValue / prevIndex conditions: 1 when they hold, else 0 with 101 recorded and *old
 * released. */
static int compare_or_fail(apply *a, store_node *old, stats_counter bad) {
  sbuf cause = {0};
  if (compare(a, &old->n, &cause)) return 1;
  store_node_release(old);
  fail(a, 101, cause.p, cause.len, bad);
  sbuf_free(&cause);
  return 0;
}

/* update and compareAndSwap: change an existing node in place, keeping createdIndex. */
static int apply_update(apply *a, int cas) {
  const proto_record *r = a->rec;
  stats_counter ok = cas ? STATS_CAS_SUCCESS : STATS_UPDATE_SUCCESS;
  stats_counter bad = cas ? STATS_CAS_FAIL : STATS_UPDATE_FAIL;
  store_node old;
  if (!load_target(a, &old, bad)) return 0;
  int refresh = (r->flags & PROTO_REC_REFRESH) != 0;
  /* A directory takes only TTL changes; dir=true on a file is refused by an update (etcd 3.4
   * blanks it), while compareAndSwap ignores dir=true, as etcd does. */
  if ((old.n.dir && (cas || r->value_len)) || (!cas && !old.n.dir && (r->flags & PROTO_REC_DIR))) {
    store_node_release(&old);
    return fail(a, 102, r->path, r->path_len, bad);
  }
  if (cas && !compare_or_fail(a, &old, bad)) return 0;
  uint64_t next = a->index + 1;
  proto_node prev = to_proto(r->path, r->path_len, &old.n);
  codec_node n = old.n;
  n.modified = next;
  n.expiration = rec_expiration(r);
  if (!old.n.dir && !refresh) {
    n.value = r->value;
    n.value_len = r->value_len;
  }
  wb_del_node(a, r->path, r->path_len, &old.n);
  wb_put_node(a, r->path, r->path_len, &n);
  proto_node pn = to_proto(r->path, r->path_len, &n);
  store_event *e = make_event(a, cas ? STORE_ACT_CAS : STORE_ACT_UPDATE, next, r->path,
                              r->path_len, &pn, &prev);
  e->refresh = (uint8_t)refresh;
  store_node_release(&old);
  stats_inc(a->s->st, ok);
  return finish_change(a, e, 200);
}

/* delete and compareAndDelete. */
static int apply_delete(apply *a, int cad) {
  const proto_record *r = a->rec;
  stats_counter ok = cad ? STATS_CAD_SUCCESS : STATS_DELETE_SUCCESS;
  stats_counter bad = cad ? STATS_CAD_FAIL : STATS_DELETE_FAIL;
  store_node old;
  /* etcd's compareAndDelete has no read-only check: the root fails as a directory (102), with
   * an empty cause (its store path "/1" minus the keys prefix). */
  if (cad && r->path_len == 1) return fail(a, 102, "", 0, bad);
  if (!load_target(a, &old, bad)) return 0;
  int recursive = (r->flags & PROTO_REC_RECURSIVE) != 0;
  int dir = recursive || (r->flags & PROTO_REC_DIR);
  if (old.n.dir && (cad || !dir)) {
    store_node_release(&old);
    return fail(a, 102, r->path, r->path_len, bad);
  }
  if (cad && !compare_or_fail(a, &old, bad)) return 0;
  sbuf removed = {0};
  int known = 1;
  if (old.n.dir) {
    /* The scans below read LevelDB: write the group out first. */
    if (store_group_flush(a->s)) {
      store_node_release(&old);
      return -EIO;
    }
    if (!recursive) {
      /* Empty? Any child, hidden or not, makes it non-empty. */
      sbuf prefix = {0};
      codec_children_prefix(&prefix, r->path, r->path_len);
      leveldb_iterator_t *it = leveldb_create_iterator(a->s->db, a->s->ropts);
      leveldb_iter_seek(it, prefix.p, prefix.len);
      int nonempty = 0;
      if (leveldb_iter_valid(it)) {
        size_t kl;
        const char *k = leveldb_iter_key(it, &kl);
        nonempty = kl >= prefix.len && !memcmp(k, prefix.p, prefix.len);
      }
      leveldb_iter_destroy(it);
      sbuf_free(&prefix);
      if (nonempty) {
        store_node_release(&old);
        return fail(a, 108, r->path, r->path_len, bad);
      }
    } else if (wb_del_subtree(a, r->path, r->path_len, &removed, &known)) {
      store_node_release(&old);
      sbuf_free(&removed);
      record_discard(a);
      return -EIO;
    }
  }
  uint64_t next = a->index + 1;
  wb_del_node(a, r->path, r->path_len, &old.n);
  proto_node prev = to_proto(r->path, r->path_len, &old.n);
  proto_node pn = {.key = r->path, .key_len = r->path_len, .dir = old.n.dir, .no_value = 1,
                   .created_index = old.n.created, .modified_index = next};
  store_event *e = make_event(a, cad ? STORE_ACT_CAD : STORE_ACT_DELETE, next, r->path,
                              r->path_len, &pn, &prev);
  if (old.n.dir) store_event_take_removed(e, &removed, known);
  store_node_release(&old);
  stats_inc(a->s->st, ok);
  return finish_change(a, e, 200);
}

/* SYNC: expire, oldest first, every node whose expiration is at or before the record's time.
 * Each expiry is its own batch, so a directory's expiry removes its children's entries before
 * the next one is looked up. */
static int apply_sync(apply *a) {
  sbuf path = {0}, ekey = {0};
  int rc = 0;
  for (;;) {
    if ((rc = store_group_flush(a->s))) break;
    leveldb_iterator_t *it = leveldb_create_iterator(a->s->db, a->s->ropts);
    leveldb_iter_seek(it, "e", 1);
    int found = 0;
    if (leveldb_iter_valid(it)) {
      size_t kl;
      const char *k = leveldb_iter_key(it, &kl);
      if (kl > 9 && k[0] == 'e' && (int64_t)codec_get_be64(k + 1) <= a->rec->time) {
        sbuf_reset(&ekey);
        sbuf_put(&ekey, k, kl);
        sbuf_reset(&path);
        sbuf_put(&path, k + 9, kl - 9);
        found = 1;
      }
    }
    leveldb_iter_destroy(it);
    if (!found) break;
    store_node old;
    int r = node_get(&a->rd, path.p, path.len, &old);
    if (r < 0) {
      rc = -EIO;
      break;
    }
    if (r == 0 || old.n.expiration != (int64_t)codec_get_be64(ekey.p + 1)) {
      /* An index entry that no node stands behind (cannot happen; repair it if it does). */
      if (r == 1) store_node_release(&old);
      leveldb_writebatch_delete(a->wb, ekey.p, ekey.len);
      record_stage(a);
      continue;
    }
    sbuf removed = {0};
    int known = 1;
    if (old.n.dir && wb_del_subtree(a, path.p, path.len, &removed, &known)) {
      store_node_release(&old);
      sbuf_free(&removed);
      rc = -EIO;
      break;
    }
    uint64_t next = a->index + 1;
    wb_del_node(a, path.p, path.len, &old.n);
    proto_node prev = to_proto(path.p, path.len, &old.n);
    prev.omit_ttl = 1;
    proto_node pn = {.key = path.p, .key_len = path.len, .dir = old.n.dir, .no_value = 1,
                     .created_index = old.n.created, .modified_index = next};
    store_event *e = make_event(a, STORE_ACT_EXPIRE, next, path.p, path.len, &pn, &prev);
    if (old.n.dir) store_event_take_removed(e, &removed, known);
    store_node_release(&old);
    store_result *res = a->res;
    a->res = NULL;
    rc = finish_change(a, e, 0);
    a->res = res;
    if (rc) break;
    a->index = next;
    stats_inc(a->s->st, STATS_EXPIRE_COUNT);
  }
  sbuf_free(&path);
  sbuf_free(&ekey);
  return rc;
}

void store_take_indexes(store *s, unsigned count, stats_counter counts, int64_t now,
                        store_event ***events, size_t *n_events, size_t *cap_events) {
  apply a = {.s = s, .index = s->apply_index, .now = now, .events = events,
             .n_events = n_events, .cap_events = cap_events};
  a.wb = leveldb_writebatch_create();
  for (unsigned i = 0; i < count; i++) {
    uint64_t next = s->apply_index + 1;
    codec_node n = {.created = next, .modified = next, .value = "", .value_len = 0};
    proto_node pn = to_proto("/2", 2, &n);
    store_event *e = make_event(&a, STORE_ACT_SET, next, "/2", 2, &pn, NULL);
    e->refresh = 1;
    finish_change(&a, e, 0);
    if (counts < STATS_N) stats_inc(s->st, counts);
  }
  leveldb_writebatch_destroy(a.wb);
  sbuf_free(&a.ops);
}

int store_apply(store *s, uint64_t log_index, const proto_record *rec, store_result *res,
                store_event ***events, size_t *n_events, size_t *cap_events) {
  memset(res, 0, sizeof *res);
  res->raft_index = log_index;
  if (log_index <= s->apply_applied) return 0;
  apply a = {.s = s, .rd = {s, s->ropts, 1}, .rec = rec, .log_index = log_index,
             .index = s->apply_index, .now = rec->time, .res = res, .events = events,
             .n_events = n_events, .cap_events = cap_events};
  a.wb = leveldb_writebatch_create();
  int rc = 0;
  switch (rec->op) {
    case PROTO_OP_SET: rc = apply_set(&a); break;
    case PROTO_OP_CREATE:
      rc = apply_create(&a, rec->path, rec->path_len, STORE_ACT_CREATE, 0, rec->value,
                        rec->value_len, STATS_CREATE_SUCCESS, STATS_CREATE_FAIL);
      break;
    case PROTO_OP_UPDATE: rc = apply_update(&a, 0); break;
    case PROTO_OP_CAS: rc = apply_update(&a, 1); break;
    case PROTO_OP_DELETE: rc = apply_delete(&a, 0); break;
    case PROTO_OP_CAD: rc = apply_delete(&a, 1); break;
    case PROTO_OP_POST: rc = apply_post(&a); break;
    case PROTO_OP_SYNC: rc = apply_sync(&a); break;
    case PROTO_OP_QGET: break;
    default: break;
  }
  /* Records that change nothing (failures, QGET, an empty SYNC) still advance the applied
   * index, so that a restart does not apply them again. */
  s->apply_applied = log_index;
  if (rc == 0 && rec->op == PROTO_OP_QGET) {
    rc = store_group_flush(s);
    store_get(s, rec->path, rec->path_len, (rec->flags & PROTO_REC_RECURSIVE) != 0,
              (rec->flags & PROTO_REC_SORTED) != 0, rec->time, res);
  }
  res->raft_index = log_index;
  leveldb_writebatch_destroy(a.wb);
  sbuf_free(&a.ops);
  return rc;
}

