/* Unit tests of wal_storage's recovery (raft/storage/wal_storage.h): a torn tail in the last
 * segment (garbage after it, a short record, a flipped byte, a surviving record behind a
 * damaged one), a new segment whose header never reached the disk, records of a recycled
 * segment's earlier life, corruption in a sealed segment (-EIO and the files left as they
 * were), and a creation cut short. Each test works in its own mkdtemp directory, removed by
 * the teardown. */
#include "wal_fixture.h"

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

#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(wal_fresh_after_creation_cut_short),
      T(wal_torn_tail_garbage),
      T(wal_torn_tail_short_record),
      T(wal_torn_tail_flipped_byte),
      T(wal_torn_tail_not_resurrected),
      T(wal_torn_new_segment_header),
      T(wal_recycled_segment_old_records),
      T(wal_corrupt_sealed_segment),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
