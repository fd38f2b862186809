/* wal_fixture: what the WAL unit tests share (test_wal_storage.c, test_wal_recovery.c): a seeded
 * PRNG and data patterns, an in-memory model of what the log should hold, file helpers (list,
 * read, patch, remove), the fixture (a temporary directory with the log in DIR/wal) and the
 * checks of the log against the model. */
#ifndef QUORUM_TESTS_UNIT_RAFT_WAL_FIXTURE_H
#define QUORUM_TESTS_UNIT_RAFT_WAL_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/core/raft.h"
#include "raft/storage/wal_storage.h"

#define SEG_SMALL 4096u
#define SEG_MED 16384u

#define WF_UNUSED __attribute__((unused))

/* ---- a seeded PRNG (splitmix64) and data patterns ---- */

static WF_UNUSED uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static WF_UNUSED uint64_t rng_below(uint64_t *s, uint64_t n) { return n ? rng_next(s) % n : 0; }

static WF_UNUSED void fill_pattern(uint8_t *p, size_t len, uint64_t seed) {
  uint64_t s = seed, x = 0;
  for (size_t i = 0; i < len; i++) {
    if (i % 8 == 0) x = rng_next(&s);
    p[i] = (uint8_t)(x >> (8 * (i % 8)));
  }
}

/* An entry whose data (len bytes, malloc'd) is a pattern of (index, term, salt). */
static WF_UNUSED raft_entry mk(uint64_t index, uint64_t term, uint8_t type, size_t len, uint64_t salt) {
  raft_entry e = {.term = term, .index = index, .type = type};
  if (len) {
    e.data.base = malloc(len);
    assert_non_null(e.data.base);
    fill_pattern(e.data.base, len, index * 0x100000001b3ull ^ term << 40 ^ salt);
    e.data.len = len;
  }
  return e;
}

static WF_UNUSED void free_data(raft_entry *e, size_t n) {
  for (size_t i = 0; i < n; i++) free(e[i].data.base);
}

/* ---- the model: what the wal should hold ---- */

typedef struct mentry {
  uint64_t term;
  uint8_t type;
  size_t len;
  uint8_t *data;
} mentry;

typedef struct model {
  uint64_t snap_index, snap_term; /* compaction point */
  uint64_t last;
  mentry *e; /* entries snap_index+1 .. last */
  size_t cap;
  raft_hard_state hs;
  raft_conf_state cs;
} model;

static WF_UNUSED mentry *m_at(const model *m, uint64_t i) {
  assert_true(i > m->snap_index && i <= m->last);
  return &m->e[i - m->snap_index - 1];
}

static WF_UNUSED uint64_t m_term(const model *m, uint64_t i) {
  return i == m->snap_index ? m->snap_term : m_at(m, i)->term;
}

/* Drops the entries at or above from. */
static WF_UNUSED void m_truncate(model *m, uint64_t from) {
  for (uint64_t i = from; i <= m->last; i++) free(m_at(m, i)->data);
  if (from <= m->last) m->last = from - 1;
}

static WF_UNUSED void m_append(model *m, const raft_entry *ents, size_t n) {
  if (!n) return;
  assert_true(ents[0].index > m->snap_index && ents[0].index <= m->last + 1);
  m_truncate(m, ents[0].index);
  size_t need = (size_t)(m->last - m->snap_index) + n;
  if (need > m->cap) {
    size_t nc = m->cap ? m->cap : 64;
    while (nc < need) nc *= 2;
    m->e = realloc(m->e, nc * sizeof *m->e);
    assert_non_null(m->e);
    m->cap = nc;
  }
  for (size_t k = 0; k < n; k++) {
    assert_int_equal(ents[k].index, m->last + 1);
    mentry *me = &m->e[m->last - m->snap_index];
    me->term = ents[k].term;
    me->type = ents[k].type;
    me->len = ents[k].data.len;
    me->data = NULL;
    if (me->len) {
      me->data = malloc(me->len);
      assert_non_null(me->data);
      memcpy(me->data, ents[k].data.base, me->len);
    }
    m->last++;
  }
}

static WF_UNUSED void m_compact(model *m, uint64_t k) {
  assert_true(k > m->snap_index && k <= m->last);
  uint64_t t = m_term(m, k);
  size_t drop = (size_t)(k - m->snap_index);
  for (size_t i = 0; i < drop; i++) free(m->e[i].data);
  memmove(m->e, m->e + drop, (size_t)(m->last - k) * sizeof *m->e);
  m->snap_index = k;
  m->snap_term = t;
}

static WF_UNUSED void m_snapshot(model *m, const raft_snapshot_meta *meta) {
  m_truncate(m, m->snap_index + 1);
  m->snap_index = m->last = meta->index;
  m->snap_term = meta->term;
  m->cs = meta->conf;
}

static WF_UNUSED void m_free(model *m) {
  if (m->e) m_truncate(m, m->snap_index + 1);
  free(m->e);
  *m = (model){0};
}

/* ---- files ---- */

static WF_UNUSED int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static WF_UNUSED void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static WF_UNUSED bool is_segment_name(const char *n) {
  if (strlen(n) != 20 || strcmp(n + 16, ".wal") != 0) return false;
  for (int i = 0; i < 16; i++)
    if (!strchr("0123456789abcdef", n[i])) return false;
  return true;
}

static WF_UNUSED int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the files in dir (segments only, or all), sorted; *n set. */
static WF_UNUSED char **list_dir(const char *dir, bool segments_only, size_t *n) {
  DIR *d = opendir(dir);
  assert_non_null(d);
  char **v = NULL;
  size_t cnt = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    if (segments_only && !is_segment_name(de->d_name)) continue;
    if (cnt == cap) {
      cap = cap ? cap * 2 : 16;
      v = realloc(v, cap * sizeof *v);
      assert_non_null(v);
    }
    v[cnt] = strdup(de->d_name);
    assert_non_null(v[cnt]);
    cnt++;
  }
  closedir(d);
  if (cnt) qsort(v, cnt, sizeof *v, cmp_str);
  *n = cnt;
  return v;
}

static WF_UNUSED void free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

static WF_UNUSED size_t count_segments(const char *dir) {
  size_t n = 0;
  char **v = list_dir(dir, true, &n);
  free_list(v, n);
  return n;
}

static WF_UNUSED uint8_t *read_all(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY);
  assert_true(fd >= 0);
  struct stat sb;
  assert_int_equal(fstat(fd, &sb), 0);
  size_t n = (size_t)sb.st_size;
  uint8_t *b = malloc(n ? n : 1);
  assert_non_null(b);
  size_t got = 0;
  while (got < n) {
    ssize_t r = pread(fd, b + got, n - got, (off_t)got);
    assert_true(r > 0);
    got += (size_t)r;
  }
  close(fd);
  *len = n;
  return b;
}

static WF_UNUSED void patch_file(const char *path, size_t off, const void *bytes, size_t n) {
  int fd = open(path, O_WRONLY);
  assert_true(fd >= 0);
  assert_int_equal(pwrite(fd, bytes, n, (off_t)off), (ssize_t)n);
  close(fd);
}

/* ---- the fixture: a temporary directory, the wal in DIR/wal, and its model ---- */

typedef struct wfx {
  char root[64];
  char dir[128];
  raft_wal_opts opts;
  raft_wal *w;
  model m;
} wfx;

static WF_UNUSED int fx_setup(void **state) {
  wfx *f = calloc(1, sizeof *f);
  if (!f) return -1;
  strcpy(f->root, "/tmp/wal-test-XXXXXX");
  if (!mkdtemp(f->root)) {
    free(f);
    return -1;
  }
  snprintf(f->dir, sizeof f->dir, "%s/wal", f->root);
  *state = f;
  return 0;
}

static WF_UNUSED int fx_teardown(void **state) {
  wfx *f = *state;
  if (f->w) raft_wal_close(f->w);
  m_free(&f->m);
  rm_rf(f->root);
  free(f);
  return 0;
}

static WF_UNUSED void fx_open(wfx *f) {
  char err[256] = "";
  f->w = NULL;
  int rc = raft_wal_open(&f->w, f->dir, &f->opts, err, sizeof err);
  if (rc != 0) fail_msg("raft_wal_open(%s) = %d: %s", f->dir, rc, err);
  assert_non_null(f->w);
}

static WF_UNUSED void fx_start(wfx *f, size_t segment_bytes, bool sync) {
  f->opts = (raft_wal_opts){.create = true, .sync = sync, .segment_bytes = segment_bytes};
  fx_open(f);
  f->opts.create = false;
}

static WF_UNUSED void fx_close(wfx *f) {
  raft_wal_close(f->w);
  f->w = NULL;
}

static WF_UNUSED void fx_reopen(wfx *f) {
  fx_close(f);
  fx_open(f);
}

static WF_UNUSED size_t fx_segments(wfx *f) {
  size_t n = raft_wal_segments(f->w);
  assert_int_equal(n, count_segments(f->dir));
  return n;
}

static WF_UNUSED void save_ok_s(wfx *f, const raft_hard_state *hs, const raft_snapshot_meta *snap,
                      const raft_entry *ents, size_t n, bool sync) {
  int rc = raft_wal_save(f->w, hs, snap, ents, n, sync);
  if (rc != 0) fail_msg("raft_wal_save(%zu entries from %llu) = %d", n,
                        n ? (unsigned long long)ents[0].index : 0ull, rc);
  if (hs) f->m.hs = *hs;
  if (snap && snap->index) m_snapshot(&f->m, snap);
  m_append(&f->m, ents, n);
}

static WF_UNUSED void save_ok(wfx *f, const raft_hard_state *hs, const raft_snapshot_meta *snap,
                    const raft_entry *ents, size_t n) {
  save_ok_s(f, hs, snap, ents, n, true);
}

/* Appends count entries from index first (term, len bytes of data) in saves of per. */
static WF_UNUSED void append_run(wfx *f, uint64_t first, size_t count, uint64_t term, size_t len,
                       size_t per, uint64_t salt) {
  raft_entry *b = calloc(per, sizeof *b);
  assert_non_null(b);
  for (size_t done = 0; done < count;) {
    size_t n = count - done < per ? count - done : per;
    for (size_t k = 0; k < n; k++) b[k] = mk(first + done + k, term, 0, len, salt);
    save_ok(f, NULL, NULL, b, n);
    free_data(b, n);
    done += n;
  }
  free(b);
}

/* Saves hs and the one entry e, which the log must refuse with want; frees e's data. */
static WF_UNUSED void save_refused(wfx *f, raft_hard_state hs, raft_entry e, int want) {
  assert_int_equal(raft_wal_save(f->w, &hs, NULL, &e, 1, true), want);
  free(e.data.base);
}

static WF_UNUSED void set_conf_ok(wfx *f, const uint64_t *ids, size_t n) {
  raft_conf_state cs = {.n_voters = n};
  for (size_t i = 0; i < n; i++) cs.voters[i] = ids[i];
  assert_int_equal(raft_wal_set_conf(f->w, &cs), 0);
  f->m.cs = cs;
}

static WF_UNUSED void compact_ok(wfx *f, uint64_t k) {
  int rc = raft_wal_compact(f->w, k);
  if (rc != 0) fail_msg("raft_wal_compact(%llu) = %d", (unsigned long long)k, rc);
  m_compact(&f->m, k);
}

/* ---- checks against the model ---- */

static WF_UNUSED void expect_entry(const raft_entry *got, uint64_t index, const mentry *want) {
  if (got->index != index || got->term != want->term || got->type != want->type ||
      got->data.len != want->len ||
      (want->len && (!got->data.base || memcmp(got->data.base, want->data, want->len) != 0)))
    fail_msg("entry %llu: got index %llu term %llu type %u len %zu; want term %llu type %u "
             "len %zu%s",
             (unsigned long long)index, (unsigned long long)got->index,
             (unsigned long long)got->term, got->type, got->data.len,
             (unsigned long long)want->term, want->type, want->len,
             got->data.len == want->len ? " (data differ)" : "");
}

static WF_UNUSED uint64_t st_term(wfx *f, uint64_t i, int want_rc) {
  const raft_storage *st = raft_wal_storage(f->w);
  uint64_t t = 0xdeadbeef;
  int rc = st->term(st->ctx, i, &t);
  if (rc != want_rc)
    fail_msg("term(%llu) = %d, want %d", (unsigned long long)i, rc, want_rc);
  return t;
}

static WF_UNUSED int st_entries_rc(wfx *f, uint64_t lo, uint64_t hi) {
  const raft_storage *st = raft_wal_storage(f->w);
  raft_entry *out = NULL;
  size_t n = 0;
  int rc = st->entries(st->ctx, lo, hi, UINT64_MAX, &out, &n);
  raft_entries_free(out, n);
  return rc;
}

/* Reads [lo, hi) with max_bytes, checks what comes back against the model, returns how many. */
static WF_UNUSED size_t read_check(wfx *f, uint64_t lo, uint64_t hi, uint64_t max_bytes) {
  const raft_storage *st = raft_wal_storage(f->w);
  raft_entry *out = NULL;
  size_t n = 0;
  int rc = st->entries(st->ctx, lo, hi, max_bytes, &out, &n);
  if (rc != 0)
    fail_msg("entries(%llu, %llu) = %d", (unsigned long long)lo, (unsigned long long)hi, rc);
  assert_true(n >= 1 && n <= hi - lo);
  for (size_t k = 0; k < n; k++) expect_entry(&out[k], lo + k, m_at(&f->m, lo + k));
  raft_entries_free(out, n);
  if (max_bytes == UINT64_MAX) assert_int_equal(n, hi - lo);
  return n;
}

static WF_UNUSED void expect_conf(const raft_conf_state *got, const raft_conf_state *want) {
  assert_int_equal(got->n_voters, want->n_voters);
  for (size_t i = 0; i < want->n_voters; i++) assert_int_equal(got->voters[i], want->voters[i]);
}

static WF_UNUSED void expect_hs(const raft_hard_state *got, const raft_hard_state *want) {
  assert_int_equal(got->term, want->term);
  assert_int_equal(got->vote, want->vote);
  assert_int_equal(got->commit, want->commit);
}

/* Everything the wal answers equals the model: indexes, hard state, conf, every term, the
 * error answers at both ends, and (all) every entry. */
static WF_UNUSED void check_wal(wfx *f, bool all) {
  const model *m = &f->m;
  const raft_storage *st = raft_wal_storage(f->w);
  assert_int_equal(raft_wal_first_index(f->w), m->snap_index + 1);
  assert_int_equal(raft_wal_last_index(f->w), m->last);
  uint64_t v = 0;
  assert_int_equal(st->first_index(st->ctx, &v), 0);
  assert_int_equal(v, m->snap_index + 1);
  assert_int_equal(st->last_index(st->ctx, &v), 0);
  assert_int_equal(v, m->last);
  raft_hard_state hs;
  raft_conf_state cs;
  memset(&hs, 0xff, sizeof hs);
  memset(&cs, 0xff, sizeof cs);
  raft_wal_initial(f->w, &hs, &cs);
  expect_hs(&hs, &m->hs);
  expect_conf(&cs, &m->cs);
  memset(&hs, 0xff, sizeof hs);
  memset(&cs, 0xff, sizeof cs);
  assert_int_equal(st->initial_state(st->ctx, &hs, &cs), 0);
  expect_hs(&hs, &m->hs);
  expect_conf(&cs, &m->cs);
  for (uint64_t i = m->snap_index; i <= m->last; i++) {
    uint64_t t = st_term(f, i, 0);
    if (t != m_term(m, i))
      fail_msg("term(%llu) = %llu, want %llu", (unsigned long long)i, (unsigned long long)t,
               (unsigned long long)m_term(m, i));
  }
  if (m->snap_index > 0) {
    st_term(f, m->snap_index - 1, RAFT_E_COMPACTED);
    assert_int_equal(st_entries_rc(f, m->snap_index, m->last + 1), RAFT_E_COMPACTED);
  }
  st_term(f, m->last + 1, RAFT_E_UNAVAILABLE);
  assert_int_equal(st_entries_rc(f, m->snap_index + 1, m->last + 2), RAFT_E_UNAVAILABLE);
  assert_int_equal(st_entries_rc(f, m->last + 1, m->last + 2), RAFT_E_UNAVAILABLE);
  if (all && m->last > m->snap_index) read_check(f, m->snap_index + 1, m->last + 1, UINT64_MAX);
}

#endif
