/* Unit tests of wal_storage (raft/storage/wal_storage.h), the Raft log in preallocated segment
 * files, read through its raft_storage vtable: a fresh log and -ENOENT; entries (empty data,
 * conf-change type, sizes), hard state and configuration through close/reopen; entries()'s
 * max_bytes, COMPACTED and UNAVAILABLE answers; suffix truncation (also across segments, never
 * resurrected at reopen) and gaps; thousands of segment rolls; compaction (segments deleted,
 * the compaction point kept across reopen); snapshot resets; raise_commit; an entry larger
 * than a segment; sync=false; and a seeded differential test against an in-memory model.
 * Crashes and damage are in test_wal_recovery.c. Each test works in its own mkdtemp
 * directory, removed by the teardown. */
#include "wal_fixture.h"

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

/* An empty directory made ready for the log (--wal-dir) gets its first segment in place; a
 * spare left there by a creation cut short does not count. One process at a time: a second
 * open of a log in use is -EBUSY, and works again once the first is closed. */
static void wal_in_empty_dir_and_locked(void **state) {
  wfx *f = *state;
  assert_int_equal(mkdir(f->dir, 0755), 0);
  char spare[600];
  snprintf(spare, sizeof spare, "%s/prealloc.tmp", f->dir);
  FILE *fp = fopen(spare, "w");
  assert_non_null(fp);
  fclose(fp);
  fx_start(f, SEG_MED, true);
  assert_int_equal(fx_segments(f), 1);
  save_ok(f, &(raft_hard_state){1, 1, 0}, NULL, NULL, 0);
  char err[256] = "";
  raft_wal *w2 = NULL;
  raft_wal_opts o = {.create = true, .sync = true, .segment_bytes = SEG_MED};
  assert_int_equal(raft_wal_open(&w2, f->dir, &o, err, sizeof err), -EBUSY);
  assert_non_null(strstr(err, "locked by another process"));
  assert_null(w2);
  fx_reopen(f); /* the lock went with the close */
  check_wal(f, true);
  assert_int_equal(raft_wal_last_index(f->w), 0);
  /* A directory that holds something else is not a log, create or not. */
  fx_close(f);
  char other[600];
  snprintf(other, sizeof other, "%s/../other", f->dir);
  assert_int_equal(mkdir(other, 0755), 0);
  char junk[700];
  snprintf(junk, sizeof junk, "%s/notes.txt", other);
  fp = fopen(junk, "w");
  assert_non_null(fp);
  fclose(fp);
  assert_int_equal(raft_wal_open(&w2, other, &o, err, sizeof err), -EIO);
  assert_non_null(strstr(err, "no segments"));
  unlink(junk);
  rmdir(other);
  fx_open(f);
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
  save_refused(f, (raft_hard_state){9, 9, 9}, mk(10, 2, 0, 10, 3), RAFT_E_UNAVAILABLE);
  check_wal(f, true);

  fx_reopen(f);
  assert_int_equal(raft_wal_last_index(f->w), 8);
  check_wal(f, true);

  /* appending right after last still works; then replace the whole log */
  raft_entry g = mk(9, 2, 0, 10, 4);
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
  save_refused(f, (raft_hard_state){9, 9, 9}, mk(250, 9, 0, 10, 6), RAFT_E_COMPACTED);
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
      save_refused(f, (raft_hard_state){term + 1, 0, 0}, mk(m->last + 2, term, 0, 10, 32),
                   RAFT_E_UNAVAILABLE);
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
      T(wal_in_empty_dir_and_locked),
      T(wal_save_reopen_roundtrip),
      T(wal_truncate_suffix),
      T(wal_truncate_across_segments),
      T(wal_many_segment_rolls),
      T(wal_compact),
      T(wal_snapshot_reset),
      T(wal_raise_commit),
      T(wal_entry_larger_than_segment),
      T(wal_no_sync),
      T(wal_random_differential),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
