/* ldb_storage: the LevelDB Raft log of versions before the WAL (see header). Terms are answered from memory: the log is
 * kept as runs of equal term (start index, term), rebuilt at open by one scan, so the core's
 * frequent term() calls never touch LevelDB. */
#include "raft/storage/ldb_storage.h"

#include <errno.h>
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_ENTRY 'e'
#define KEY_HARD "h"
#define KEY_CONF "c"
#define KEY_SNAP "s"
#define COMPACT_BATCH 4096

typedef struct term_run {
  uint64_t start; /* first index of the run */
  uint64_t term;
} term_run;

struct raft_ldb {
  leveldb_t *db;
  leveldb_options_t *opts;
  leveldb_writeoptions_t *wo_sync, *wo_async;
  leveldb_readoptions_t *ro;
  raft_storage vt;
  raft_hard_state hs;
  raft_conf_state cs;
  uint64_t snap_index, snap_term; /* compaction point: entries <= snap_index are gone */
  uint64_t last;                  /* invariant: snap_index <= last */
  term_run *runs;                 /* runs of entries snap_index+1..last, ascending start */
  size_t n_runs, cap_runs;
};

static void put_be64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static void entry_key(uint8_t k[9], uint64_t index) {
  k[0] = KEY_ENTRY;
  put_be64(k + 1, index);
}

static void runs_push(raft_ldb *l, uint64_t start, uint64_t term) {
  if (l->n_runs && l->runs[l->n_runs - 1].term == term) return;
  if (l->n_runs == l->cap_runs) {
    size_t nc = l->cap_runs ? l->cap_runs * 2 : 16;
    term_run *r = realloc(l->runs, nc * sizeof *r);
    if (!r) abort();
    l->runs = r;
    l->cap_runs = nc;
  }
  l->runs[l->n_runs++] = (term_run){start, term};
}

/* Drops runs for entries at or above index. */
static void runs_truncate(raft_ldb *l, uint64_t index) {
  while (l->n_runs && l->runs[l->n_runs - 1].start >= index) l->n_runs--;
}

/* Drops runs for entries at or below index (after compaction). */
static void runs_compact(raft_ldb *l, uint64_t index) {
  size_t i = 0;
  while (i + 1 < l->n_runs && l->runs[i + 1].start <= index + 1) i++;
  if (i) {
    memmove(l->runs, l->runs + i, (l->n_runs - i) * sizeof *l->runs);
    l->n_runs -= i;
  }
  if (l->n_runs && l->runs[0].start <= index) l->runs[0].start = index + 1;
}

static int st_term(void *ctx, uint64_t i, uint64_t *term) {
  raft_ldb *l = ctx;
  if (i == l->snap_index) {
    *term = l->snap_term;
    return 0;
  }
  if (i < l->snap_index) return RAFT_E_COMPACTED;
  if (i > l->last) return RAFT_E_UNAVAILABLE;
  size_t lo = 0, hi = l->n_runs; /* last run with start <= i */
  while (hi - lo > 1) {
    size_t mid = (lo + hi) / 2;
    if (l->runs[mid].start <= i) lo = mid;
    else hi = mid;
  }
  *term = l->runs[lo].term;
  return 0;
}

static int st_initial(void *ctx, raft_hard_state *hs, raft_conf_state *cs) {
  raft_ldb_initial(ctx, hs, cs);
  return 0;
}

static int st_first(void *ctx, uint64_t *i) {
  *i = ((raft_ldb *)ctx)->snap_index + 1;
  return 0;
}

static int st_last(void *ctx, uint64_t *i) {
  *i = ((raft_ldb *)ctx)->last;
  return 0;
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes, raft_entry **out,
                      size_t *n) {
  raft_ldb *l = ctx;
  *out = NULL;
  *n = 0;
  if (lo <= l->snap_index) return RAFT_E_COMPACTED;
  if (hi > l->last + 1) return RAFT_E_UNAVAILABLE;
  if (lo >= hi) return 0;
  raft_entry *v = calloc(hi - lo, sizeof *v);
  if (!v) return RAFT_E_NOMEM;
  uint8_t k[9];
  entry_key(k, lo);
  leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->ro);
  uint64_t bytes = 0;
  size_t cnt = 0;
  int rc = 0;
  for (leveldb_iter_seek(it, (const char *)k, 9); leveldb_iter_valid(it) && lo + cnt < hi;
       leveldb_iter_next(it)) {
    size_t kl, vl;
    const uint8_t *key = (const uint8_t *)leveldb_iter_key(it, &kl);
    const uint8_t *val = (const uint8_t *)leveldb_iter_value(it, &vl);
    if (kl != 9 || key[0] != KEY_ENTRY || get_be64(key + 1) != lo + cnt || vl < 9) {
      rc = RAFT_E_STORAGE;
      break;
    }
    if (cnt && bytes + (vl - 9) > max_bytes) break;
    raft_entry *e = &v[cnt];
    e->index = lo + cnt;
    e->term = get_be64(val);
    e->type = val[8];
    e->data.len = vl - 9;
    if (e->data.len) {
      e->data.base = malloc(e->data.len);
      if (!e->data.base) {
        rc = RAFT_E_NOMEM;
        break;
      }
      memcpy(e->data.base, val + 9, e->data.len);
    }
    bytes += e->data.len;
    cnt++;
  }
  leveldb_iter_destroy(it);
  if (rc == 0 && cnt == 0) rc = RAFT_E_STORAGE; /* the entries should be there */
  if (rc) {
    raft_entries_free(v, cnt);
    return rc;
  }
  *out = v;
  *n = cnt;
  return 0;
}

static int st_snapshot(void *ctx, raft_snapshot *out) {
  (void)ctx;
  memset(out, 0, sizeof *out);
  return RAFT_E_SNAP_TEMP;
}

const raft_storage *raft_ldb_storage(raft_ldb *l) { return &l->vt; }

uint64_t raft_ldb_first_index(const raft_ldb *l) { return l->snap_index + 1; }
uint64_t raft_ldb_last_index(const raft_ldb *l) { return l->last; }

void raft_ldb_initial(const raft_ldb *l, raft_hard_state *hs, raft_conf_state *cs) {
  if (hs) *hs = l->hs;
  if (cs) *cs = l->cs;
}

static void encode_hs(uint8_t b[24], const raft_hard_state *hs) {
  put_be64(b, hs->term);
  put_be64(b + 8, hs->vote);
  put_be64(b + 16, hs->commit);
}

static size_t encode_conf(uint8_t *b, const raft_conf_state *cs) {
  put_be64(b, cs->n_voters);
  for (size_t i = 0; i < cs->n_voters; i++) put_be64(b + 8 + 8 * i, cs->voters[i]);
  return 8 + 8 * cs->n_voters;
}

static int write_batch(raft_ldb *l, leveldb_writebatch_t *wb, bool sync) {
  char *err = NULL;
  leveldb_write(l->db, sync ? l->wo_sync : l->wo_async, wb, &err);
  leveldb_writebatch_destroy(wb);
  if (err) {
    fprintf(stderr, "quorumd: raft log write failed: %s\n", err);
    leveldb_free(err);
    return RAFT_E_STORAGE;
  }
  return 0;
}

static void batch_put_snap(leveldb_writebatch_t *wb, uint64_t index, uint64_t term) {
  uint8_t b[16];
  put_be64(b, index);
  put_be64(b + 8, term);
  leveldb_writebatch_put(wb, KEY_SNAP, 1, (const char *)b, 16);
}

int raft_ldb_save(raft_ldb *l, const raft_hard_state *hs, const raft_snapshot_meta *snap,
                  const raft_entry *ents, size_t n, bool sync) {
  leveldb_writebatch_t *wb = leveldb_writebatch_create();
  uint8_t k[9];
  if (hs) {
    uint8_t b[24];
    encode_hs(b, hs);
    leveldb_writebatch_put(wb, KEY_HARD, 1, (const char *)b, 24);
  }
  uint64_t new_snap = l->snap_index, new_snap_term = l->snap_term, new_last = l->last;
  if (snap && snap->index) {
    /* A snapshot replaces the whole log. */
    for (uint64_t i = l->snap_index + 1; i <= l->last; i++) {
      entry_key(k, i);
      leveldb_writebatch_delete(wb, (const char *)k, 9);
    }
    batch_put_snap(wb, snap->index, snap->term);
    uint8_t cb[8 + 8 * RAFT_MAX_VOTERS];
    leveldb_writebatch_put(wb, KEY_CONF, 1, (const char *)cb, encode_conf(cb, &snap->conf));
    new_snap = new_last = snap->index;
    new_snap_term = snap->term;
  }
  if (n) {
    uint64_t first = ents[0].index;
    if (first <= new_snap) {
      leveldb_writebatch_destroy(wb);
      return RAFT_E_COMPACTED;
    }
    if (first > new_last + 1) {
      leveldb_writebatch_destroy(wb);
      return RAFT_E_UNAVAILABLE; /* a gap */
    }
    for (uint64_t i = first; i <= new_last; i++) {
      entry_key(k, i);
      leveldb_writebatch_delete(wb, (const char *)k, 9);
    }
    size_t cap = 0;
    uint8_t *val = NULL;
    for (size_t i = 0; i < n; i++) {
      if (ents[i].data.len + 9 > cap) {
        cap = ents[i].data.len + 9 + 256;
        uint8_t *nv = realloc(val, cap);
        if (!nv) abort();
        val = nv;
      }
      put_be64(val, ents[i].term);
      val[8] = ents[i].type;
      if (ents[i].data.len) memcpy(val + 9, ents[i].data.base, ents[i].data.len);
      entry_key(k, ents[i].index);
      leveldb_writebatch_put(wb, (const char *)k, 9, (const char *)val, ents[i].data.len + 9);
    }
    free(val);
    new_last = ents[n - 1].index;
  }
  int rc = write_batch(l, wb, sync);
  if (rc) return rc;
  if (hs) l->hs = *hs;
  if (snap && snap->index) {
    l->n_runs = 0;
    l->cs = snap->conf;
    l->snap_index = new_snap;
    l->snap_term = new_snap_term;
  }
  if (n) {
    runs_truncate(l, ents[0].index);
    for (size_t i = 0; i < n; i++) runs_push(l, ents[i].index, ents[i].term);
  }
  l->last = new_last;
  return 0;
}

int raft_ldb_set_conf(raft_ldb *l, const raft_conf_state *cs) {
  leveldb_writebatch_t *wb = leveldb_writebatch_create();
  uint8_t cb[8 + 8 * RAFT_MAX_VOTERS];
  leveldb_writebatch_put(wb, KEY_CONF, 1, (const char *)cb, encode_conf(cb, cs));
  int rc = write_batch(l, wb, true);
  if (rc == 0) l->cs = *cs;
  return rc;
}

int raft_ldb_compact(raft_ldb *l, uint64_t index) {
  if (index > l->last) index = l->last;
  if (index <= l->snap_index) return 0;
  uint64_t to = index;
  if (to - l->snap_index > COMPACT_BATCH) to = l->snap_index + COMPACT_BATCH;
  uint64_t term;
  int rc = st_term(l, to, &term);
  if (rc) return rc;
  leveldb_writebatch_t *wb = leveldb_writebatch_create();
  uint8_t k[9];
  for (uint64_t i = l->snap_index + 1; i <= to; i++) {
    entry_key(k, i);
    leveldb_writebatch_delete(wb, (const char *)k, 9);
  }
  batch_put_snap(wb, to, term);
  if ((rc = write_batch(l, wb, false))) return rc;
  l->snap_index = to;
  l->snap_term = term;
  runs_compact(l, to);
  return to < index ? 1 : 0;
}

static int load(raft_ldb *l, char *err, size_t errlen) {
  char *lerr = NULL;
  size_t vl = 0;
  char *v = leveldb_get(l->db, l->ro, KEY_HARD, 1, &vl, &lerr);
  if (v && vl == 24) {
    const uint8_t *b = (const uint8_t *)v;
    l->hs = (raft_hard_state){get_be64(b), get_be64(b + 8), get_be64(b + 16)};
  }
  leveldb_free(v);
  v = leveldb_get(l->db, l->ro, KEY_CONF, 1, &vl, &lerr);
  if (v && vl >= 8) {
    const uint8_t *b = (const uint8_t *)v;
    uint64_t nv = get_be64(b);
    if (nv > RAFT_MAX_VOTERS || vl != 8 + 8 * nv) {
      leveldb_free(v);
      snprintf(err, errlen, "the raft log's configuration record is corrupt");
      return -EIO;
    }
    l->cs.n_voters = nv;
    for (size_t i = 0; i < nv; i++) l->cs.voters[i] = get_be64(b + 8 + 8 * i);
  }
  leveldb_free(v);
  v = leveldb_get(l->db, l->ro, KEY_SNAP, 1, &vl, &lerr);
  if (v && vl == 16) {
    l->snap_index = get_be64((const uint8_t *)v);
    l->snap_term = get_be64((const uint8_t *)v + 8);
  }
  leveldb_free(v);
  leveldb_free(lerr);
  l->last = l->snap_index;
  uint8_t k[9];
  entry_key(k, l->snap_index + 1);
  leveldb_iterator_t *it = leveldb_create_iterator(l->db, l->ro);
  int rc = 0;
  for (leveldb_iter_seek(it, (const char *)k, 9); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl;
    const uint8_t *key = (const uint8_t *)leveldb_iter_key(it, &kl);
    if (kl != 9 || key[0] != KEY_ENTRY) break;
    const uint8_t *val = (const uint8_t *)leveldb_iter_value(it, &vl);
    uint64_t idx = get_be64(key + 1);
    if (idx != l->last + 1 || vl < 9) {
      snprintf(err, errlen, "the raft log has a gap or a corrupt entry at index %llu",
               (unsigned long long)(l->last + 1));
      rc = -EIO;
      break;
    }
    runs_push(l, idx, get_be64(val));
    l->last = idx;
  }
  leveldb_iter_destroy(it);
  return rc;
}

void raft_ldb_close(raft_ldb *l) {
  if (!l) return;
  if (l->db) leveldb_close(l->db);
  if (l->opts) leveldb_options_destroy(l->opts);
  if (l->wo_sync) leveldb_writeoptions_destroy(l->wo_sync);
  if (l->wo_async) leveldb_writeoptions_destroy(l->wo_async);
  if (l->ro) leveldb_readoptions_destroy(l->ro);
  free(l->runs);
  free(l);
}

int raft_ldb_open(raft_ldb **out, const char *path, bool create, bool sync, char *err,
                  size_t errlen) {
  raft_ldb *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  l->vt = (raft_storage){.ctx = l,
                         .initial_state = st_initial,
                         .entries = st_entries,
                         .term = st_term,
                         .first_index = st_first,
                         .last_index = st_last,
                         .snapshot = st_snapshot};
  l->opts = leveldb_options_create();
  leveldb_options_set_create_if_missing(l->opts, create);
  leveldb_options_set_paranoid_checks(l->opts, 1);
  leveldb_options_set_write_buffer_size(l->opts, 8 << 20);
  leveldb_options_set_compression(l->opts, leveldb_no_compression);
  l->wo_sync = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(l->wo_sync, sync);
  l->wo_async = leveldb_writeoptions_create();
  l->ro = leveldb_readoptions_create();
  char *lerr = NULL;
  l->db = leveldb_open(l->opts, path, &lerr);
  if (!l->db) {
    snprintf(err, errlen, "cannot open the raft log in %s: %s", path, lerr ? lerr : "unknown");
    leveldb_free(lerr);
    raft_ldb_close(l);
    return -EIO;
  }
  int rc = load(l, err, errlen);
  if (rc) {
    raft_ldb_close(l);
    return rc;
  }
  *out = l;
  return 0;
}
