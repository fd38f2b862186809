/* Unit tests of wal_storage (raft/storage/wal_storage.h), the Raft log in preallocated segment
 * files, read through its raft_storage vtable: a fresh log and -ENOENT, a creation cut short; entries (empty data,
 * conf-change type, sizes), hard state and configuration through close/reopen; entries()'s
 * max_bytes, COMPACTED and UNAVAILABLE answers; suffix truncation (also across segments, never
 * resurrected at reopen) and gaps; thousands of segment rolls; compaction (segments deleted,
 * the compaction point kept across reopen); snapshot resets; a torn tail in the last segment
 * (garbage after it, a short record, a flipped byte, a surviving record behind a damaged one, a
 * new segment whose header never reached the disk); records of a recycled segment's earlier
 * life; corruption in a sealed segment (-EIO and the files left as they were); raise_commit;
 * an entry larger than a segment; sync=false; and a seeded differential test against an
 * in-memory model. Each test works in its own mkdtemp directory, removed by the teardown. */
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

/* ---- a seeded PRNG (splitmix64) and data patterns ---- */

static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n) { return n ? rng_next(s) % n : 0; }

static void fill_pattern(uint8_t *p, size_t len, uint64_t seed) {
  uint64_t s = seed, x = 0;
  for (size_t i = 0; i < len; i++) {
    if (i % 8 == 0) x = rng_next(&s);
    p[i] = (uint8_t)(x >> (8 * (i % 8)));
  }
}

/* An entry whose data (len bytes, malloc'd) is a pattern of (index, term, salt). */
static raft_entry mk(uint64_t index, uint64_t term, uint8_t type, size_t len, uint64_t salt) {
  raft_entry e = {.term = term, .index = index, .type = type};
  if (len) {
    e.data.base = malloc(len);
    assert_non_null(e.data.base);
    fill_pattern(e.data.base, len, index * 0x100000001b3ull ^ term << 40 ^ salt);
    e.data.len = len;
  }
  return e;
}

static void free_data(raft_entry *e, size_t n) {
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

static mentry *m_at(const model *m, uint64_t i) {
  assert_true(i > m->snap_index && i <= m->last);
  return &m->e[i - m->snap_index - 1];
}

static uint64_t m_term(const model *m, uint64_t i) {
  return i == m->snap_index ? m->snap_term : m_at(m, i)->term;
}

/* Drops the entries at or above from. */
static void m_truncate(model *m, uint64_t from) {
  for (uint64_t i = from; i <= m->last; i++) free(m_at(m, i)->data);
  if (from <= m->last) m->last = from - 1;
}

static void m_append(model *m, const raft_entry *ents, size_t n) {
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

static void m_compact(model *m, uint64_t k) {
  assert_true(k > m->snap_index && k <= m->last);
  uint64_t t = m_term(m, k);
  size_t drop = (size_t)(k - m->snap_index);
  for (size_t i = 0; i < drop; i++) free(m->e[i].data);
  memmove(m->e, m->e + drop, (size_t)(m->last - k) * sizeof *m->e);
  m->snap_index = k;
  m->snap_term = t;
}

static void m_snapshot(model *m, const raft_snapshot_meta *meta) {
  m_truncate(m, m->snap_index + 1);
  m->snap_index = m->last = meta->index;
  m->snap_term = meta->term;
  m->cs = meta->conf;
}

static void m_free(model *m) {
  if (m->e) m_truncate(m, m->snap_index + 1);
  free(m->e);
  *m = (model){0};
}

/* ---- files ---- */

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static bool is_segment_name(const char *n) {
  if (strlen(n) != 20 || strcmp(n + 16, ".wal") != 0) return false;
  for (int i = 0; i < 16; i++)
    if (!strchr("0123456789abcdef", n[i])) return false;
  return true;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names of the files in dir (segments only, or all), sorted; *n set. */
static char **list_dir(const char *dir, bool segments_only, size_t *n) {
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

static void free_list(char **v, size_t n) {
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

static size_t count_segments(const char *dir) {
  size_t n = 0;
  char **v = list_dir(dir, true, &n);
  free_list(v, n);
  return n;
}

static uint8_t *read_all(const char *path, size_t *len) {
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

static void patch_file(const char *path, size_t off, const void *bytes, size_t n) {
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

static int fx_setup(void **state) {
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

static int fx_teardown(void **state) {
  wfx *f = *state;
  if (f->w) raft_wal_close(f->w);
  m_free(&f->m);
  rm_rf(f->root);
  free(f);
  return 0;
}

static void fx_open(wfx *f) {
  char err[256] = "";
  f->w = NULL;
  int rc = raft_wal_open(&f->w, f->dir, &f->opts, err, sizeof err);
  if (rc != 0) fail_msg("raft_wal_open(%s) = %d: %s", f->dir, rc, err);
  assert_non_null(f->w);
}

static void fx_start(wfx *f, size_t segment_bytes, bool sync) {
  f->opts = (raft_wal_opts){.create = true, .sync = sync, .segment_bytes = segment_bytes};
  fx_open(f);
  f->opts.create = false;
}

static void fx_close(wfx *f) {
  raft_wal_close(f->w);
  f->w = NULL;
}

static void fx_reopen(wfx *f) {
  fx_close(f);
  fx_open(f);
}

static size_t fx_segments(wfx *f) {
  size_t n = raft_wal_segments(f->w);
  assert_int_equal(n, count_segments(f->dir));
  return n;
}

static void save_ok_s(wfx *f, const raft_hard_state *hs, const raft_snapshot_meta *snap,
                      const raft_entry *ents, size_t n, bool sync) {
  int rc = raft_wal_save(f->w, hs, snap, ents, n, sync);
  if (rc != 0) fail_msg("raft_wal_save(%zu entries from %llu) = %d", n,
                        n ? (unsigned long long)ents[0].index : 0ull, rc);
  if (hs) f->m.hs = *hs;
  if (snap && snap->index) m_snapshot(&f->m, snap);
  m_append(&f->m, ents, n);
}

static void save_ok(wfx *f, const raft_hard_state *hs, const raft_snapshot_meta *snap,
                    const raft_entry *ents, size_t n) {
  save_ok_s(f, hs, snap, ents, n, true);
}

/* Appends count entries from index first (term, len bytes of data) in saves of per. */
static void append_run(wfx *f, uint64_t first, size_t count, uint64_t term, size_t len,
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

static void set_conf_ok(wfx *f, const uint64_t *ids, size_t n) {
  raft_conf_state cs = {.n_voters = n};
  for (size_t i = 0; i < n; i++) cs.voters[i] = ids[i];
  assert_int_equal(raft_wal_set_conf(f->w, &cs), 0);
  f->m.cs = cs;
}

static void compact_ok(wfx *f, uint64_t k) {
  int rc = raft_wal_compact(f->w, k);
  if (rc != 0) fail_msg("raft_wal_compact(%llu) = %d", (unsigned long long)k, rc);
  m_compact(&f->m, k);
}

/* ---- checks against the model ---- */

static void expect_entry(const raft_entry *got, uint64_t index, const mentry *want) {
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

static uint64_t st_term(wfx *f, uint64_t i, int want_rc) {
  const raft_storage *st = raft_wal_storage(f->w);
  uint64_t t = 0xdeadbeef;
  int rc = st->term(st->ctx, i, &t);
  if (rc != want_rc)
    fail_msg("term(%llu) = %d, want %d", (unsigned long long)i, rc, want_rc);
  return t;
}

static int st_entries_rc(wfx *f, uint64_t lo, uint64_t hi) {
  const raft_storage *st = raft_wal_storage(f->w);
  raft_entry *out = NULL;
  size_t n = 0;
  int rc = st->entries(st->ctx, lo, hi, UINT64_MAX, &out, &n);
  raft_entries_free(out, n);
  return rc;
}

/* Reads [lo, hi) with max_bytes, checks what comes back against the model, returns how many. */
static size_t read_check(wfx *f, uint64_t lo, uint64_t hi, uint64_t max_bytes) {
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

static void expect_conf(const raft_conf_state *got, const raft_conf_state *want) {
  assert_int_equal(got->n_voters, want->n_voters);
  for (size_t i = 0; i < want->n_voters; i++) assert_int_equal(got->voters[i], want->voters[i]);
}

static void expect_hs(const raft_hard_state *got, const raft_hard_state *want) {
  assert_int_equal(got->term, want->term);
  assert_int_equal(got->vote, want->vote);
  assert_int_equal(got->commit, want->commit);
}

/* Everything the wal answers equals the model: indexes, hard state, conf, every term, the
 * error answers at both ends, and (all) every entry. */
static void check_wal(wfx *f, bool all) {
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

/* ---- 1. a fresh log ---- */

static void wal_fresh_open(void **state) {
  wfx *f = *state;
  char err[256] = "";
  raft_wal *w = NULL;
  raft_wal_opts o = {.create = false, .sync = true, .segment_bytes = SEG_MED};
  assert_int_equal(raft_wal_open(&w, f->dir, &o, err, sizeof err), -ENOENT);
  assert_true(err[0] != '\0');
  struct stat sb;
  assert_int_equal(stat(f->dir, &sb), -1); /* not made */

  fx_start(f, SEG_MED, true);
  assert_int_equal(raft_wal_first_index(f->w), 1);
  assert_int_equal(raft_wal_last_index(f->w), 0);
  check_wal(f, true); /* zero hard state and conf, term(0) = 0 */
  assert_int_equal(st_term(f, 0, 0), 0);
  assert_int_equal(st_entries_rc(f, 1, 2), RAFT_E_UNAVAILABLE);
  assert_int_equal(fx_segments(f), 1);

  fx_reopen(f);
  check_wal(f, true);
  assert_int_equal(raft_wal_first_index(f->w), 1);
  assert_int_equal(raft_wal_last_index(f->w), 0);
  assert_true(fx_segments(f) >= 1);
}

/* A creation cut short by a crash left DIR.tmp (here with a segment-named stray file and a
 * spare in it) and no DIR: the next creation replaces it, and no DIR.tmp remains. */
static void wal_fresh_after_creation_cut_short(void **state) {
  wfx *f = *state;
  char tmp[160], stray[200];
  snprintf(tmp, sizeof tmp, "%s.tmp", f->dir);
  assert_int_equal(mkdir(tmp, 0755), 0);
  const char *names[] = {"0000000000000001.wal", "prealloc.tmp"};
  for (size_t i = 0; i < 2; i++) {
    snprintf(stray, sizeof stray, "%s/%s", tmp, names[i]);
    FILE *fp = fopen(stray, "w");
    assert_non_null(fp);
    fputs("not a segment", fp);
    fclose(fp);
  }
  fx_start(f, SEG_MED, true);
  struct stat sb;
  assert_int_equal(stat(tmp, &sb), -1);
  check_wal(f, true);
  raft_entry e = mk(1, 1, RAFT_ENTRY_NORMAL, 10, 1);
  save_ok(f, NULL, NULL, &e, 1);
  free_data(&e, 1);
  fx_reopen(f);
  check_wal(f, true);
  assert_int_equal(raft_wal_last_index(f->w), 1);
}

/* ---- 2. a round trip through close/reopen; entries()'s limits and errors ---- */

static int snap_calls;

static int fake_snapshotter(void *arg, raft_snapshot *out) {
  snap_calls++;
  out->meta.index = 42;
  out->meta.term = 7;
  return *(int *)arg;
}

static void check_max_bytes(wfx *f) {
  /* 13..20 hold 100 bytes each; 11 holds 4000. */
  assert_int_equal(read_check(f, 13, 21, 0), 1);
  assert_int_equal(read_check(f, 13, 21, 150), 1);
  assert_int_equal(read_check(f, 13, 21, 399), 3);
  assert_int_equal(read_check(f, 13, 21, 100000), 8);
  assert_int_equal(read_check(f, 13, 21, UINT64_MAX), 8);
  assert_int_equal(read_check(f, 11, 13, 10), 1); /* past max_bytes: still one */
  assert_int_equal(read_check(f, 20, 21, 0), 1);
}

static void wal_save_reopen_roundtrip(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_MED, true);
  static const size_t sizes[12] = {0, 1, 7, 100, 0, 255, 256, 1000, 3, 0, 4000, 17};
  raft_entry e[12];
  for (uint64_t i = 1; i <= 12; i++) {
    uint64_t term = i <= 3 ? 1 : i <= 7 ? 2 : 3;
    uint8_t type = (i % 4 == 2 || i == 5) ? RAFT_ENTRY_CONF_CHANGE : RAFT_ENTRY_NORMAL;
    e[i - 1] = mk(i, term, type, sizes[i - 1], 2);
  }
  save_ok(f, NULL, NULL, e, 3);
  save_ok(f, &(raft_hard_state){2, 1, 3}, NULL, e + 3, 6);
  save_ok(f, &(raft_hard_state){3, 2, 7}, NULL, e + 9, 3);
  free_data(e, 12);
  set_conf_ok(f, (uint64_t[]){1, 2, 3}, 3);
  check_wal(f, true);
  assert_int_equal(raft_wal_last_index(f->w), 12);
  assert_int_equal(st_term(f, 5, 0), 2);
  assert_int_equal(m_at(&f->m, 5)->type, RAFT_ENTRY_CONF_CHANGE);
  assert_int_equal(m_at(&f->m, 5)->len, 0);

  append_run(f, 13, 8, 3, 100, 8, 3);
  check_max_bytes(f);

  fx_reopen(f);
  check_wal(f, true);
  raft_hard_state hs;
  raft_conf_state cs;
  raft_wal_initial(f->w, &hs, &cs);
  assert_int_equal(hs.term, 3);
  assert_int_equal(hs.vote, 2);
  assert_int_equal(hs.commit, 7);
  assert_int_equal(cs.n_voters, 3);
  assert_int_equal(cs.voters[2], 3);
  assert_int_equal(raft_wal_last_index(f->w), 20);
  check_max_bytes(f);

  /* snapshot() is the snapshotter's */
  int ret = 0;
  raft_wal_set_snapshotter(f->w, fake_snapshotter, &ret);
  const raft_storage *st = raft_wal_storage(f->w);
  raft_snapshot snap;
  memset(&snap, 0, sizeof snap);
  assert_int_equal(st->snapshot(st->ctx, &snap), 0);
  assert_int_equal(snap_calls, 1);
  assert_int_equal(snap.meta.index, 42);
  ret = RAFT_E_SNAP_TEMP;
  assert_int_equal(st->snapshot(st->ctx, &snap), RAFT_E_SNAP_TEMP);
  assert_int_equal(snap_calls, 2);

  /* below first: COMPACTED; term(first - 1) is the compaction term */
  compact_ok(f, 5);
  assert_int_equal(raft_wal_first_index(f->w), 6);
  assert_int_equal(st_term(f, 5, 0), 2);
  st_term(f, 4, RAFT_E_COMPACTED);
  assert_int_equal(st_entries_rc(f, 5, 7), RAFT_E_COMPACTED);
  assert_int_equal(st_entries_rc(f, 1, 7), RAFT_E_COMPACTED);
  assert_int_equal(st_entries_rc(f, 6, 22), RAFT_E_UNAVAILABLE);
  assert_int_equal(st_entries_rc(f, 21, 22), RAFT_E_UNAVAILABLE);
  check_wal(f, true);
  check_max_bytes(f);
  fx_reopen(f);
  check_wal(f, true);
  assert_int_equal(st_term(f, 5, 0), 2);
}

/* ---- 3. truncation of a suffix; gaps ---- */

static void wal_truncate_suffix(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_MED, true);
  append_run(f, 1, 10, 1, 50, 10, 1);
  save_ok(f, &(raft_hard_state){1, 1, 5}, NULL, NULL, 0);
  raft_entry e[3];
  for (int k = 0; k < 3; k++) e[k] = mk(6 + (uint64_t)k, 2, 0, 60, 2);
  save_ok(f, NULL, NULL, e, 3);
  free_data(e, 3);
  assert_int_equal(raft_wal_last_index(f->w), 8);
  for (uint64_t i = 1; i <= 5; i++) assert_int_equal(st_term(f, i, 0), 1);
  for (uint64_t i = 6; i <= 8; i++) assert_int_equal(st_term(f, i, 0), 2);
  st_term(f, 9, RAFT_E_UNAVAILABLE);
  check_wal(f, true);

  /* a gap: refused, nothing changes (neither the hard state given with it) */
  raft_entry g = mk(10, 2, 0, 10, 3);
  assert_int_equal(raft_wal_save(f->w, &(raft_hard_state){9, 9, 9}, NULL, &g, 1, true),
                   RAFT_E_UNAVAILABLE);
  free(g.data.base);
  check_wal(f, true);

  fx_reopen(f);
  assert_int_equal(raft_wal_last_index(f->w), 8);
  check_wal(f, true);

  /* appending right after last still works; then replace the whole log */
  g = mk(9, 2, 0, 10, 4);
  save_ok(f, NULL, NULL, &g, 1);
  free(g.data.base);
  g = mk(1, 3, 1, 33, 5);
  save_ok(f, &(raft_hard_state){3, 2, 0}, NULL, &g, 1);
  free(g.data.base);
  assert_int_equal(raft_wal_last_index(f->w), 1);
  check_wal(f, true);
  fx_reopen(f);
  assert_int_equal(raft_wal_last_index(f->w), 1);
  assert_int_equal(st_term(f, 1, 0), 3);
  check_wal(f, true);
}

/* Truncating back into an earlier segment: the entries of later segments never come back. */
static void wal_truncate_across_segments(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  append_run(f, 1, 60, 1, 200, 3, 1);
  assert_true(fx_segments(f) >= 3);
  raft_entry e[2] = {mk(10, 2, 0, 200, 2), mk(11, 2, 0, 10, 2)};
  save_ok(f, &(raft_hard_state){2, 0, 9}, NULL, e, 2);
  free_data(e, 2);
  assert_int_equal(raft_wal_last_index(f->w), 11);
  check_wal(f, true);
  fx_segments(f);
  fx_reopen(f);
  assert_int_equal(raft_wal_last_index(f->w), 11);
  check_wal(f, true);
  append_run(f, 12, 30, 2, 150, 4, 3);
  fx_reopen(f);
  assert_int_equal(raft_wal_last_index(f->w), 41);
  check_wal(f, true);
  fx_segments(f);
}

/* ---- 4. many segment rolls ---- */

static void wal_many_segment_rolls(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  uint64_t rs = 4;
  uint64_t index = 1;
  raft_entry b[16];
  unsigned batch = 0;
  while (index <= 3000) {
    size_t n = 1 + (size_t)rng_below(&rs, 16);
    if (index + n - 1 > 3000) n = (size_t)(3001 - index);
    for (size_t k = 0; k < n; k++)
      b[k] = mk(index + k, 1 + (index + k) / 500, rng_below(&rs, 8) == 0, (size_t)rng_below(&rs, 201),
                4);
    raft_hard_state hs = {1 + index / 500, 1, index - 1};
    batch++;
    save_ok_s(f, batch % 7 == 0 ? &hs : NULL, NULL, b, n, batch % 3 != 0);
    free_data(b, n);
    index += n;
  }
  assert_int_equal(raft_wal_last_index(f->w), 3000);
  size_t segs = fx_segments(f);
  assert_true(segs > 1);
  check_wal(f, true);
  for (int k = 0; k < 50; k++) {
    uint64_t lo = 1 + rng_below(&rs, 3000), hi = lo + 1 + rng_below(&rs, 3001 - lo);
    read_check(f, lo, hi, rng_below(&rs, 3000));
  }
  fx_reopen(f);
  check_wal(f, true);
  size_t segs2 = fx_segments(f);
  assert_true(segs2 >= segs && segs2 <= segs + 1); /* open may start a segment */
}

/* ---- 5. compaction ---- */

static void wal_compact(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  for (uint64_t t = 1; t <= 8; t++) append_run(f, 1 + (t - 1) * 50, 50, t, 100, 5, 5);
  save_ok(f, &(raft_hard_state){8, 3, 390}, NULL, NULL, 0);
  set_conf_ok(f, (uint64_t[]){1, 2, 3, 4, 5}, 5);
  size_t before = fx_segments(f);
  assert_true(before >= 8);

  compact_ok(f, 250);
  assert_int_equal(raft_wal_first_index(f->w), 251);
  assert_int_equal(raft_wal_last_index(f->w), 400);
  assert_int_equal(st_term(f, 250, 0), 5);
  st_term(f, 249, RAFT_E_COMPACTED);
  size_t after = fx_segments(f);
  assert_true(after < before);
  assert_true(count_segments(f->dir) < before);
  check_wal(f, true);

  /* a save below the compaction point is refused and changes nothing */
  raft_entry e = mk(250, 9, 0, 10, 6);
  assert_int_equal(raft_wal_save(f->w, &(raft_hard_state){9, 9, 9}, NULL, &e, 1, true),
                   RAFT_E_COMPACTED);
  free(e.data.base);
  check_wal(f, true);

  fx_reopen(f);
  assert_int_equal(raft_wal_first_index(f->w), 251);
  assert_int_equal(st_term(f, 250, 0), 5);
  check_wal(f, true);
  assert_true(fx_segments(f) <= after + 1); /* open may start a segment */

  /* to the last index: an empty log, then appends go on */
  compact_ok(f, 400);
  assert_int_equal(raft_wal_first_index(f->w), 401);
  assert_int_equal(raft_wal_last_index(f->w), 400);
  assert_int_equal(st_term(f, 400, 0), 8);
  check_wal(f, true);
  assert_true(fx_segments(f) < after);
  fx_reopen(f);
  check_wal(f, true);
  append_run(f, 401, 50, 9, 120, 3, 7);
  save_ok(f, &(raft_hard_state){9, 1, 420}, NULL, NULL, 0);
  check_wal(f, true);
  compact_ok(f, 420);
  check_wal(f, true);
  fx_reopen(f);
  assert_int_equal(raft_wal_first_index(f->w), 421);
  assert_int_equal(raft_wal_last_index(f->w), 450);
  check_wal(f, true);
  fx_segments(f);
}

/* ---- 6. a received snapshot resets the log ---- */

static void wal_snapshot_reset(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  append_run(f, 1, 20, 1, 500, 2, 8);
  set_conf_ok(f, (uint64_t[]){1, 2}, 2);
  save_ok(f, &(raft_hard_state){1, 1, 10}, NULL, NULL, 0);
  size_t before = fx_segments(f);
  assert_true(before >= 3);

  raft_snapshot_meta meta = {.index = 100, .term = 5, .conf = {.voters = {1, 2, 3}, .n_voters = 3}};
  save_ok(f, &(raft_hard_state){5, 2, 100}, &meta, NULL, 0);
  assert_int_equal(raft_wal_first_index(f->w), 101);
  assert_int_equal(raft_wal_last_index(f->w), 100);
  assert_int_equal(st_term(f, 100, 0), 5);
  st_term(f, 99, RAFT_E_COMPACTED);
  st_term(f, 101, RAFT_E_UNAVAILABLE);
  assert_int_equal(st_entries_rc(f, 100, 101), RAFT_E_COMPACTED);
  assert_int_equal(st_entries_rc(f, 101, 102), RAFT_E_UNAVAILABLE);
  raft_hard_state hs;
  raft_conf_state cs;
  raft_wal_initial(f->w, &hs, &cs);
  expect_conf(&cs, &meta.conf);
  assert_int_equal(hs.commit, 100);
  check_wal(f, true);
  assert_int_equal(fx_segments(f), 1); /* the older segments are gone */

  append_run(f, 101, 10, 5, 300, 3, 9);
  check_wal(f, true);
  fx_reopen(f);
  assert_int_equal(raft_wal_first_index(f->w), 101);
  assert_int_equal(raft_wal_last_index(f->w), 110);
  check_wal(f, true);

  /* a snapshot with entries after it in the same save */
  raft_snapshot_meta meta2 = {.index = 200, .term = 6, .conf = {.voters = {2, 3}, .n_voters = 2}};
  raft_entry e[3] = {mk(201, 6, 0, 40, 10), mk(202, 6, 1, 0, 10), mk(203, 6, 0, 5000, 10)};
  save_ok(f, &(raft_hard_state){6, 3, 200}, &meta2, e, 3);
  free_data(e, 3);
  assert_int_equal(raft_wal_first_index(f->w), 201);
  assert_int_equal(raft_wal_last_index(f->w), 203);
  check_wal(f, true);
  fx_segments(f);
  fx_reopen(f);
  check_wal(f, true);
  fx_segments(f);
}

/* ---- 7. a torn tail in the last segment ---- */

typedef enum torn_mode { TORN_GARBAGE, TORN_SHORT, TORN_FLIP } torn_mode;

static void last_segment_path(wfx *f, char *path, size_t len) {
  size_t n;
  char **v = list_dir(f->dir, true, &n);
  assert_true(n >= 1);
  snprintf(path, len, "%s/%s", f->dir, v[n - 1]);
  free_list(v, n);
}

/* Where a final save landed: the bytes [s, e) of the last segment (path) it changed. */
typedef struct tail_save {
  char path[256];
  uint64_t first; /* index of its first entry */
  size_t s, e;
  uint8_t *after; /* the segment after the save (and close) */
  size_t len;
} tail_save;

/* Saves k entries of len bytes (term) as one batch that lands in the segment that was already
 * the last (trying again at the next index when a save rolls), closes the wal and finds the
 * bytes that the save changed: its records, 9 bytes of framing and the entry's fields each. */
static void final_save(wfx *f, size_t k, size_t len, uint64_t term, tail_save *ts) {
  char path2[256];
  uint8_t *before = NULL;
  size_t blen = 0;
  raft_entry e[4];
  assert_true(k <= 4);
  for (int tries = 0;; tries++) {
    assert_true(tries < 50);
    last_segment_path(f, ts->path, sizeof ts->path);
    free(before);
    before = read_all(ts->path, &blen);
    size_t segs = fx_segments(f);
    ts->first = f->m.last + 1;
    for (size_t i = 0; i < k; i++) e[i] = mk(ts->first + i, term, 0, len, 11);
    save_ok(f, NULL, NULL, e, k);
    free_data(e, k);
    last_segment_path(f, path2, sizeof path2);
    if (fx_segments(f) == segs && strcmp(ts->path, path2) == 0) break;
  }
  fx_close(f);
  ts->after = read_all(ts->path, &ts->len);
  assert_int_equal(ts->len, blen);
  size_t s = 0, end = ts->len;
  while (s < ts->len && before[s] == ts->after[s]) s++;
  while (end > s && before[end - 1] == ts->after[end - 1]) end--;
  free(before);
  ts->s = s;
  ts->e = end;
  size_t rec = end - s;
  if (rec < k * (len + 9) || rec > k * (len + 9 + 64))
    fail_msg("the last save changed %zu bytes at %zu..%zu of %s", rec, s, end, ts->path);
}

static void torn_tail(wfx *f, torn_mode mode) {
  fx_start(f, SEG_MED, true);
  append_run(f, 1, 150, 1, 200, 10, 7);
  save_ok(f, &(raft_hard_state){1, 1, 100}, NULL, NULL, 0);
  assert_true(fx_segments(f) >= 2);

  /* The final record: one entry alone in its save, in the segment that was already the last. */
  tail_save ts;
  final_save(f, 1, 300, 2, &ts);
  const char *path = ts.path;
  uint8_t *after = ts.after;
  size_t alen = ts.len, s = ts.s, e = ts.e, rec = e - s;
  uint64_t idx = ts.first;

  switch (mode) {
    case TORN_GARBAGE: {
      uint8_t g[256];
      fill_pattern(g, sizeof g, 99);
      for (size_t i = 0; i < sizeof g; i++)
        if (!g[i]) g[i] = 0xa5;
      assert_true(e + sizeof g <= alen);
      patch_file(path, e, g, sizeof g);
      break; /* nothing acknowledged is lost */
    }
    case TORN_SHORT: {
      uint8_t z[100] = {0};
      patch_file(path, e - sizeof z, z, sizeof z);
      m_truncate(&f->m, idx);
      break;
    }
    case TORN_FLIP: {
      uint8_t c = after[s + rec / 2] ^ 0x40;
      patch_file(path, s + rec / 2, &c, 1);
      m_truncate(&f->m, idx);
      break;
    }
  }
  free(after);

  fx_open(f);
  assert_int_equal(raft_wal_last_index(f->w), mode == TORN_GARBAGE ? idx : idx - 1);
  check_wal(f, true);

  /* appends go on over the damaged tail, and survive another reopen */
  raft_entry ne[2] = {mk(f->m.last + 1, 3, 0, 250, 12), mk(f->m.last + 2, 3, 1, 250, 12)};
  save_ok(f, &(raft_hard_state){3, 1, 120}, NULL, ne, 2);
  free_data(ne, 2);
  check_wal(f, true);
  fx_reopen(f);
  assert_int_equal(raft_wal_last_index(f->w), mode == TORN_GARBAGE ? idx + 2 : idx + 1);
  check_wal(f, true);
  append_run(f, f->m.last + 1, 100, 3, 150, 7, 13);
  fx_reopen(f);
  check_wal(f, true);
}

static void wal_torn_tail_garbage(void **state) { torn_tail(*state, TORN_GARBAGE); }
static void wal_torn_tail_short_record(void **state) { torn_tail(*state, TORN_SHORT); }
static void wal_torn_tail_flipped_byte(void **state) { torn_tail(*state, TORN_FLIP); }

/* A torn batch of two records, the first damaged and the second whole (pages of one write
 * reach the disk in any order): the log ends before both. A new entry of the same size,
 * written where the damaged one was, must not bring the old second record back at the next
 * open: it was never acknowledged, and it would follow an entry of another term. */
static void wal_torn_tail_not_resurrected(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_MED, true);
  append_run(f, 1, 50, 1, 200, 5, 7);
  tail_save ts;
  final_save(f, 2, 300, 2, &ts);
  size_t at = ts.s + (ts.e - ts.s) / 4; /* in the first record's payload */
  uint8_t c = ts.after[at] ^ 0x40;
  patch_file(ts.path, at, &c, 1);
  free(ts.after);
  m_truncate(&f->m, ts.first);
  fx_open(f);
  assert_int_equal(raft_wal_last_index(f->w), ts.first - 1);
  check_wal(f, true);

  raft_entry e = mk(ts.first, 3, 0, 300, 12); /* the damaged entry's size, a new term */
  save_ok(f, NULL, NULL, &e, 1);
  free(e.data.base);
  check_wal(f, true);
  fx_reopen(f);
  assert_int_equal(raft_wal_last_index(f->w), ts.first);
  assert_int_equal(st_term(f, ts.first, 0), 3);
  st_term(f, ts.first + 1, RAFT_E_UNAVAILABLE);
  check_wal(f, true);
}

/* An entry whose data starts with a tag findable in the files. */
static raft_entry mk_tagged(uint64_t index, uint64_t term, size_t len) {
  assert_true(len >= 13);
  raft_entry e = mk(index, term, 0, len, 14);
  char tag[16];
  snprintf(tag, sizeof tag, "ENTRY-%06u-", (unsigned)index);
  memcpy(e.data.base, tag, 13);
  return e;
}

/* A crash in a roll after the zero-filled spare was renamed into place, before the new
 * segment's header was written: the last segment is all zeros (its entries, if any reached it,
 * were never acknowledged). The open succeeds with the entries of the sealed segments, and
 * appends go on. */
static void wal_torn_new_segment_header(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  size_t segs = fx_segments(f);
  for (uint64_t i = 1; fx_segments(f) < segs + 2; i++) {
    assert_true(i < 1000);
    raft_entry e = mk_tagged(i, 1, 200);
    save_ok(f, &(raft_hard_state){1, 1, i / 2}, NULL, &e, 1);
    free(e.data.base);
  }
  char path[256];
  last_segment_path(f, path, sizeof path);
  fx_close(f);

  size_t len;
  uint8_t *b = read_all(path, &len);
  uint64_t lost = f->m.last + 1; /* the first entry found in the last segment */
  for (uint64_t i = 1; i <= f->m.last; i++) {
    char tag[16];
    snprintf(tag, sizeof tag, "ENTRY-%06u-", (unsigned)i);
    if (memmem(b, len, tag, 13)) {
      lost = i;
      break;
    }
  }
  free(b);
  uint8_t *z = calloc(1, len);
  assert_non_null(z);
  patch_file(path, 0, z, len);
  free(z);
  assert_true(lost > 1);
  if (lost <= f->m.last) /* the hard state saved with the lost entries is lost with them */
    f->m.hs = (raft_hard_state){1, 1, (lost - 1) / 2};
  m_truncate(&f->m, lost);

  fx_open(f);
  assert_int_equal(raft_wal_last_index(f->w), lost - 1);
  check_wal(f, true);
  fx_segments(f);
  append_run(f, lost, 40, 2, 150, 3, 15);
  fx_reopen(f);
  check_wal(f, true);
  fx_segments(f);
}

/* Records left in a recycled segment from its earlier life never pass as records of its new
 * one. Every save below is the same size (a hard state and a 100-byte entry), so the new
 * life's records line up with the old ones; compacting right after a roll recycles (when the
 * implementation recycles: prealloc.tmp then holds old entries) the oldest segment, which the
 * next roll takes; the wal is reopened right after that roll, old records still behind the new
 * ones. Their old hard states and entries must not come back. */
static void wal_recycled_segment_old_records(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  uint64_t i = 1;
  bool recycled = false;
  for (int round = 0; round < 4; round++) {
    /* fill until a roll, then compact everything: the older segments go */
    size_t segs = fx_segments(f);
    for (; fx_segments(f) == segs; i++) {
      assert_true(i < 100000);
      raft_entry e = mk_tagged(i, 1, 100);
      save_ok(f, &(raft_hard_state){1, 1, i}, NULL, &e, 1);
      free(e.data.base);
    }
    compact_ok(f, f->m.last);
    assert_int_equal(fx_segments(f), 1);
    char spare[256];
    snprintf(spare, sizeof spare, "%s/prealloc.tmp", f->dir);
    if (access(spare, F_OK) == 0) {
      size_t len;
      uint8_t *b = read_all(spare, &len);
      recycled |= memmem(b, len, "ENTRY-", 6) != NULL;
      free(b);
    }
    /* fill until the next roll, which takes the spare; reopen with old records behind */
    segs = fx_segments(f);
    for (; fx_segments(f) == segs; i++) {
      assert_true(i < 100000);
      raft_entry e = mk_tagged(i, 1, 100);
      save_ok(f, &(raft_hard_state){1, 1, i}, NULL, &e, 1);
      free(e.data.base);
    }
    fx_reopen(f);
    check_wal(f, true);
    raft_entry e = mk_tagged(i, 1, 100);
    save_ok(f, &(raft_hard_state){1, 1, i}, NULL, &e, 1);
    free(e.data.base);
    i++;
    fx_reopen(f);
    check_wal(f, true);
  }
  if (!recycled) print_message("note: no segment was recycled; the old-records case was not run\n");
}

/* ---- 8. corruption in a sealed segment ---- */

typedef struct dir_image {
  char **names;
  size_t n;
  uint8_t **data;
  size_t *len;
} dir_image;

/* Every file but the spare. */
static void image_take(const char *dir, dir_image *im) {
  size_t n;
  char **all = list_dir(dir, false, &n);
  im->names = calloc(n + 1, sizeof *im->names);
  im->data = calloc(n + 1, sizeof *im->data);
  im->len = calloc(n + 1, sizeof *im->len);
  assert_true(im->names && im->data && im->len);
  im->n = 0;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(all[i], "prealloc.tmp") == 0) continue;
    char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, all[i]);
    im->names[im->n] = strdup(all[i]);
    im->data[im->n] = read_all(p, &im->len[im->n]);
    im->n++;
  }
  free_list(all, n);
}

static void image_free(dir_image *im) {
  for (size_t i = 0; i < im->n; i++) {
    free(im->names[i]);
    free(im->data[i]);
  }
  free(im->names);
  free(im->data);
  free(im->len);
}

static void image_expect_equal(const dir_image *a, const dir_image *b) {
  assert_int_equal(a->n, b->n);
  for (size_t i = 0; i < a->n; i++) {
    assert_string_equal(a->names[i], b->names[i]);
    assert_int_equal(a->len[i], b->len[i]);
    assert_memory_equal(a->data[i], b->data[i], a->len[i]);
  }
}

static void wal_corrupt_sealed_segment(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  for (uint64_t i = 1; i <= 100; i++) {
    raft_entry e = mk(i, 1 + i / 40, 0, 150, 14);
    char tag[16];
    snprintf(tag, sizeof tag, "ENTRY-%06u-", (unsigned)i);
    memcpy(e.data.base, tag, 13);
    save_ok(f, i % 10 == 0 ? &(raft_hard_state){1 + i / 40, 1, i - 1} : NULL, NULL, &e, 1);
    free(e.data.base);
  }
  assert_true(fx_segments(f) >= 3);
  fx_close(f);

  /* flip a byte in the middle of an entry of the first segment (one not its last) */
  size_t n;
  char **v = list_dir(f->dir, true, &n);
  assert_true(n >= 3);
  char path[512];
  snprintf(path, sizeof path, "%s/%s", f->dir, v[0]);
  free_list(v, n);
  size_t len;
  uint8_t *b = read_all(path, &len);
  size_t at = 0;
  for (uint64_t i = 2; i < 100 && !at; i++) {
    char tag[16], next[16];
    snprintf(tag, sizeof tag, "ENTRY-%06u-", (unsigned)i);
    snprintf(next, sizeof next, "ENTRY-%06u-", (unsigned)i + 1);
    uint8_t *p = memmem(b, len, tag, 13);
    if (p && memmem(b, len, next, 13)) at = (size_t)(p - b) + 75;
  }
  assert_true(at > 0);
  uint8_t orig = b[at], flipped = orig ^ 0x10;
  patch_file(path, at, &flipped, 1);
  free(b);

  dir_image im1, im2;
  image_take(f->dir, &im1);
  char err[256] = "";
  raft_wal *w = NULL;
  raft_wal_opts o = {.create = false, .sync = true, .segment_bytes = SEG_SMALL};
  assert_int_equal(raft_wal_open(&w, f->dir, &o, err, sizeof err), -EIO);
  assert_true(err[0] != '\0');
  o.create = true;
  err[0] = '\0';
  assert_int_equal(raft_wal_open(&w, f->dir, &o, err, sizeof err), -EIO);
  assert_true(err[0] != '\0');
  image_take(f->dir, &im2);
  image_expect_equal(&im1, &im2);
  image_free(&im1);
  image_free(&im2);

  /* the byte put back, the log opens whole */
  patch_file(path, at, &orig, 1);
  fx_open(f);
  check_wal(f, true);
}

/* ---- 9. raise_commit ---- */

static void wal_raise_commit(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_MED, true);
  append_run(f, 1, 10, 2, 20, 10, 15);
  save_ok(f, &(raft_hard_state){2, 1, 5}, NULL, NULL, 0);
  assert_int_equal(raft_wal_raise_commit(f->w, 3), 0);
  check_wal(f, true);
  assert_int_equal(raft_wal_raise_commit(f->w, 5), 0);
  check_wal(f, true);
  assert_int_equal(raft_wal_raise_commit(f->w, 8), 0);
  f->m.hs = (raft_hard_state){2, 1, 8};
  check_wal(f, true);
  fx_reopen(f);
  check_wal(f, true);
  assert_int_equal(raft_wal_raise_commit(f->w, 4), 0);
  check_wal(f, true);
  append_run(f, 11, 2, 2, 20, 2, 16);
  check_wal(f, true); /* a save without hs keeps the commit */
  assert_int_equal(raft_wal_raise_commit(f->w, 12), 0);
  f->m.hs.commit = 12;
  check_wal(f, true);
  fx_reopen(f);
  check_wal(f, true);
  save_ok(f, &(raft_hard_state){3, 0, 12}, NULL, NULL, 0);
  assert_int_equal(raft_wal_raise_commit(f->w, 11), 0);
  check_wal(f, true);
  fx_reopen(f);
  check_wal(f, true);
  raft_hard_state hs;
  raft_conf_state cs;
  raft_wal_initial(f->w, &hs, &cs);
  assert_int_equal(hs.term, 3);
  assert_int_equal(hs.vote, 0);
  assert_int_equal(hs.commit, 12);
}

/* ---- 10. an entry larger than a segment ---- */

static void wal_entry_larger_than_segment(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  append_run(f, 1, 3, 1, 100, 3, 17);
  raft_entry big = mk(4, 1, 0, 3 * SEG_SMALL, 18);
  save_ok(f, NULL, NULL, &big, 1);
  free(big.data.base);
  raft_entry e[3] = {mk(5, 1, 0, 10, 19), mk(6, 2, 1, 3 * SEG_SMALL + 1, 19), mk(7, 2, 0, 0, 19)};
  save_ok(f, &(raft_hard_state){2, 2, 4}, NULL, e, 3);
  free_data(e, 3);
  check_wal(f, true);
  assert_int_equal(read_check(f, 4, 8, 0), 1);
  fx_segments(f);
  fx_reopen(f);
  check_wal(f, true);
  assert_int_equal(m_at(&f->m, 6)->len, 3 * SEG_SMALL + 1);
  append_run(f, 8, 13, 2, 300, 2, 20);
  fx_reopen(f);
  check_wal(f, true);
  fx_segments(f);
}

/* ---- 11. sync=false ---- */

static void wal_no_sync(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, false);
  uint64_t rs = 11;
  raft_entry b[12];
  for (uint64_t index = 1; index <= 600;) {
    size_t n = 1 + (size_t)rng_below(&rs, 12);
    for (size_t k = 0; k < n; k++)
      b[k] = mk(index + k, 1, rng_below(&rs, 5) == 0, (size_t)rng_below(&rs, 300), 21);
    save_ok_s(f, &(raft_hard_state){1, 1, index - 1}, NULL, b, n, rng_below(&rs, 2) == 0);
    free_data(b, n);
    index += n;
  }
  set_conf_ok(f, (uint64_t[]){4, 9}, 2);
  assert_true(fx_segments(f) > 1);
  check_wal(f, true);
  compact_ok(f, 300);
  raft_entry t = mk(400, 2, 0, 50, 22);
  save_ok_s(f, &(raft_hard_state){2, 0, 350}, NULL, &t, 1, false);
  free(t.data.base);
  assert_int_equal(raft_wal_raise_commit(f->w, 380), 0);
  f->m.hs.commit = 380;
  check_wal(f, true);
  fx_reopen(f);
  assert_int_equal(raft_wal_first_index(f->w), 301);
  assert_int_equal(raft_wal_last_index(f->w), 400);
  check_wal(f, true);
  raft_snapshot_meta meta = {.index = 1000, .term = 3, .conf = {.voters = {1}, .n_voters = 1}};
  save_ok_s(f, &(raft_hard_state){3, 1, 1000}, &meta, NULL, 0, false);
  append_run(f, 1001, 20, 3, 100, 4, 23);
  fx_reopen(f);
  check_wal(f, true);
  fx_segments(f);
}

/* ---- 12. a seeded differential test against the model ---- */

static void random_conf(uint64_t *rs, raft_conf_state *cs) {
  *cs = (raft_conf_state){0};
  uint64_t id = 0;
  size_t n = 1 + (size_t)rng_below(rs, 5);
  for (size_t i = 0; i < n; i++) cs->voters[cs->n_voters++] = id += 1 + rng_below(rs, 3);
}

static size_t random_len(uint64_t *rs) {
  uint64_t r = rng_below(rs, 16);
  if (r == 0) return 0;
  if (r == 1) return (size_t)rng_below(rs, 3 * SEG_SMALL);
  return (size_t)rng_below(rs, 300);
}

static void wal_random_differential(void **state) {
  wfx *f = *state;
  fx_start(f, SEG_SMALL, true);
  model *m = &f->m;
  uint64_t rs = 0x5eed2024;
  uint64_t term = 1;
  raft_entry b[16];
  unsigned reopens = 0, compactions = 0, truncations = 0, snapshots = 0;
  for (int step = 0; step < 2000; step++) {
    uint64_t op = rng_below(&rs, 100);
    bool full = step % 50 == 0;
    if (op < 50) { /* append, sometimes over a suffix */
      uint64_t first = m->last + 1;
      if (rng_below(&rs, 10) < 3) first = m->snap_index + 1 + rng_below(&rs, m->last - m->snap_index + 1);
      if (first <= m->last) {
        term++;
        truncations++;
      } else if (rng_below(&rs, 20) == 0) {
        term++;
      }
      size_t n = 1 + (size_t)rng_below(&rs, 12);
      for (size_t k = 0; k < n; k++)
        b[k] = mk(first + k, term, rng_below(&rs, 10) == 0, random_len(&rs), (uint64_t)step);
      raft_hard_state hs = {term, rng_below(&rs, 4), m->hs.commit + rng_below(&rs, 3)};
      save_ok_s(f, rng_below(&rs, 3) == 0 ? &hs : NULL, NULL, b, n, rng_below(&rs, 2) == 0);
      free_data(b, n);
    } else if (op < 58) { /* hard state only */
      raft_hard_state hs = {term, rng_below(&rs, 4), m->hs.commit + rng_below(&rs, 5)};
      save_ok_s(f, &hs, NULL, NULL, 0, rng_below(&rs, 2) == 0);
    } else if (op < 66) { /* compaction */
      if (m->last > m->snap_index) {
        uint64_t k = rng_below(&rs, 4) == 0 ? m->last
                                            : m->snap_index + 1 + rng_below(&rs, m->last - m->snap_index);
        compact_ok(f, k);
        compactions++;
      }
    } else if (op < 70) {
      raft_conf_state cs;
      random_conf(&rs, &cs);
      set_conf_ok(f, cs.voters, cs.n_voters);
    } else if (op < 74) {
      uint64_t c = rng_below(&rs, m->hs.commit + 10);
      assert_int_equal(raft_wal_raise_commit(f->w, c), 0);
      if (c > m->hs.commit) m->hs.commit = c;
    } else if (op < 77) { /* a received snapshot, maybe with entries after it */
      raft_snapshot_meta meta = {.index = m->last + 1 + rng_below(&rs, 50), .term = ++term};
      random_conf(&rs, &meta.conf);
      size_t n = (size_t)rng_below(&rs, 4);
      for (size_t k = 0; k < n; k++) b[k] = mk(meta.index + 1 + k, term, 0, random_len(&rs), 31);
      save_ok(f, &(raft_hard_state){term, 1, meta.index}, &meta, b, n);
      free_data(b, n);
      snapshots++;
    } else if (op < 79) { /* a gap: refused, nothing changes */
      raft_entry g = mk(m->last + 2, term, 0, 10, 32);
      assert_int_equal(raft_wal_save(f->w, &(raft_hard_state){term + 1, 0, 0}, NULL, &g, 1, true),
                       RAFT_E_UNAVAILABLE);
      free(g.data.base);
    } else if (op < 85) {
      fx_reopen(f);
      reopens++;
      full = true;
    } else if (m->last > m->snap_index) { /* reads with limits */
      for (int k = 0; k < 3; k++) {
        uint64_t lo = m->snap_index + 1 + rng_below(&rs, m->last - m->snap_index);
        uint64_t hi = lo + 1 + rng_below(&rs, m->last - lo + 1);
        read_check(f, lo, hi, rng_below(&rs, 4) == 0 ? UINT64_MAX : rng_below(&rs, 2000));
      }
    }
    check_wal(f, full);
    if (!full && m->last > m->snap_index) {
      uint64_t lo = m->snap_index + 1 + rng_below(&rs, m->last - m->snap_index);
      read_check(f, lo, m->last + 1, UINT64_MAX);
    }
    fx_segments(f);
  }
  fx_reopen(f);
  check_wal(f, true);
  /* the run did exercise what it is meant to */
  assert_true(reopens > 50 && compactions > 50 && truncations > 50 && snapshots > 20);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(wal_fresh_open),
      T(wal_fresh_after_creation_cut_short),
      T(wal_save_reopen_roundtrip),
      T(wal_truncate_suffix),
      T(wal_truncate_across_segments),
      T(wal_many_segment_rolls),
      T(wal_compact),
      T(wal_snapshot_reset),
      T(wal_torn_tail_garbage),
      T(wal_torn_tail_short_record),
      T(wal_torn_tail_flipped_byte),
      T(wal_torn_tail_not_resurrected),
      T(wal_torn_new_segment_header),
      T(wal_recycled_segment_old_records),
      T(wal_corrupt_sealed_segment),
      T(wal_raise_commit),
      T(wal_entry_larger_than_segment),
      T(wal_no_sync),
      T(wal_random_differential),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
