/* L0 unit tests of the raft log (stable view through mem_storage + unstable tail) and of
 * mem_storage itself (raft.md §6 L0): maybe-append, find-conflict, find-conflict-by-term, term
 * lookup across the stable/unstable boundary, slicing, restore, stable-to, and storage append
 * with conflicting-suffix truncation, compaction and snapshots. */
#include "raft_test_util.h"

static raft_entry E(uint64_t term, uint64_t index) {
  return (raft_entry){.term = term, .index = index};
}

typedef struct fixture {
  mem_storage *ms;
  raft_log log;
} fixture;

/* A log whose storage holds terms[0..n) at 1..n. */
static void fx_init(fixture *f, const uint64_t *terms, size_t n) {
  f->ms = mem_storage_new();
  raft_entry ents[64];
  for (size_t i = 0; i < n; i++) ents[i] = E(terms[i], i + 1);
  assert_int_equal(mem_storage_append(f->ms, ents, n), RAFT_OK);
  assert_int_equal(raft_log_init(&f->log, mem_storage_iface(f->ms), rt_test_log, NULL), RAFT_OK);
}

static void fx_free(fixture *f) {
  raft_log_destroy(&f->log);
  mem_storage_free(f->ms);
}

/* find_conflict: 0 when all match and none is new; the first new index; the first conflict. */
static void log_find_conflict(void **state) {
  (void)state;
  fixture f;
  fx_init(&f, (uint64_t[]){1, 2, 3}, 3);
  struct {
    raft_entry e[4];
    size_t n;
    uint64_t want;
  } t[] = {
      {{{0}}, 0, 0},
      {{E(1, 1), E(2, 2), E(3, 3)}, 3, 0},
      {{E(2, 2), E(3, 3)}, 2, 0},
      {{E(3, 3)}, 1, 0},
      {{E(1, 1), E(2, 2), E(3, 3), E(4, 4)}, 4, 4},
      {{E(3, 3), E(4, 4)}, 2, 4},
      {{E(4, 4)}, 1, 4},
      {{E(4, 1), E(4, 2)}, 2, 1},
      {{E(1, 2), E(4, 3)}, 2, 2},
      {{E(1, 3), E(2, 4)}, 2, 3},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    assert_int_equal(raft_log_find_conflict(&f.log, t[i].e, t[i].n), t[i].want);
  fx_free(&f);
}

/* find_conflict_by_term returns the largest index <= index with term <= term. */
static void log_find_conflict_by_term(void **state) {
  (void)state;
  fixture f;
  fx_init(&f, (uint64_t[]){1, 1, 2, 2, 5, 5, 5}, 7);
  uint64_t t;
  assert_int_equal(raft_log_find_conflict_by_term(&f.log, 7, 5, &t), 7);
  assert_int_equal(t, 5);
  assert_int_equal(raft_log_find_conflict_by_term(&f.log, 7, 4, &t), 4);
  assert_int_equal(t, 2);
  assert_int_equal(raft_log_find_conflict_by_term(&f.log, 7, 1, &t), 2);
  assert_int_equal(t, 1);
  assert_int_equal(raft_log_find_conflict_by_term(&f.log, 7, 0, &t), 0);
  assert_int_equal(t, 0);
  assert_int_equal(raft_log_find_conflict_by_term(&f.log, 3, 3, &t), 3);
  assert_int_equal(t, 2);
  /* beyond the last index: returned as is, term unknown */
  assert_int_equal(raft_log_find_conflict_by_term(&f.log, 9, 3, &t), 9);
  assert_int_equal(t, 0);
  fx_free(&f);
}

/* Term lookups read storage below the unstable offset and the unstable tail from it; an
 * unstable overwrite wins over the (not yet truncated) stored suffix. */
static void log_term_across_stable_unstable_boundary(void **state) {
  (void)state;
  fixture f;
  fx_init(&f, (uint64_t[]){1, 1, 2}, 3);
  raft_entry tail[] = {E(3, 4), E(3, 5)};
  assert_int_equal(raft_log_append(&f.log, tail, 2), 5);
  uint64_t t = 0;
  assert_int_equal(raft_log_term(&f.log, 3, &t), RAFT_OK);
  assert_int_equal(t, 2);
  assert_int_equal(raft_log_term(&f.log, 4, &t), RAFT_OK);
  assert_int_equal(t, 3);
  assert_int_equal(raft_log_term(&f.log, 0, &t), RAFT_OK); /* the dummy */
  assert_int_equal(t, 0);
  assert_int_equal(raft_log_term(&f.log, 6, &t), RAFT_E_UNAVAILABLE);
  /* Overwrite from index 3 (below the unstable offset 4). */
  raft_entry over[] = {E(4, 3)};
  assert_int_equal(raft_log_append(&f.log, over, 1), 3);
  assert_int_equal(f.log.offset, 3);
  assert_int_equal(raft_log_term_or_zero(&f.log, 3), 4);
  assert_int_equal(raft_log_last_index(&f.log), 3);
  assert_int_equal(raft_log_last_term(&f.log), 4);
  assert_int_equal(raft_log_last_persisted(&f.log), 2);
  /* A slice spanning the boundary: 1..2 from storage, 3 from the tail. */
  raft_entry *s = NULL;
  size_t n = 0;
  assert_int_equal(raft_log_slice(&f.log, 1, 4, UINT64_MAX, &s, &n), RAFT_OK);
  assert_int_equal(n, 3);
  assert_int_equal(s[1].term, 1);
  assert_int_equal(s[2].term, 4);
  raft_entries_free(s, n);
  /* Stable-to with a term that no longer matches is ignored; the right one trims the tail. */
  raft_log_stable_to(&f.log, 3, 2);
  assert_int_equal(f.log.n, 1);
  raft_log_stable_to(&f.log, 3, 4);
  assert_int_equal(f.log.n, 0);
  assert_int_equal(f.log.offset, 4);
  fx_free(&f);
}

/* Slices honour max_bytes but always return at least one entry. */
static void log_slice_max_bytes(void **state) {
  (void)state;
  fixture f;
  fx_init(&f, NULL, 0);
  raft_entry ents[4];
  char data[4][10];
  for (int i = 0; i < 4; i++) {
    memset(data[i], 'a' + i, sizeof data[i]);
    ents[i] = (raft_entry){.term = 1, .index = (uint64_t)i + 1, .data = {(uint8_t *)data[i], 10}};
  }
  assert_int_equal(mem_storage_append(f.ms, ents, 2), RAFT_OK);
  raft_log_destroy(&f.log);
  raft_log_init(&f.log, mem_storage_iface(f.ms), NULL, NULL);
  raft_log_append(&f.log, ents + 2, 2);
  struct {
    uint64_t max;
    size_t want;
  } t[] = {{0, 1}, {9, 1}, {10, 1}, {19, 1}, {20, 2}, {30, 3}, {40, 4}, {UINT64_MAX, 4}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    raft_entry *s = NULL;
    size_t n = 0;
    assert_int_equal(raft_log_slice(&f.log, 1, 5, t[i].max, &s, &n), RAFT_OK);
    assert_int_equal(n, t[i].want);
    assert_memory_equal(s[n - 1].data.base, data[n - 1], 10);
    raft_entries_free(s, n);
  }
  fx_free(&f);
}

/* §5.3 follower append: mismatch refuses; a match appends, truncates a conflicting suffix, and
 * commits min(leader commit, last new index). */
static void log_maybe_append(void **state) {
  (void)state;
  struct {
    uint64_t index, log_term, commit;
    raft_entry e[3];
    size_t n;
    bool ok;
    uint64_t last_new, want_commit, want_last;
  } t[] = {
      /* mismatch */
      {3, 2, 3, {E(4, 4)}, 1, false, 0, 1, 3},
      {4, 3, 3, {E(4, 5)}, 1, false, 0, 1, 3},
      /* match, nothing new; commit up to last new only */
      {3, 3, 3, {{0}}, 0, true, 3, 3, 3},
      {3, 3, 4, {{0}}, 0, true, 3, 3, 3},
      {3, 3, 2, {{0}}, 0, true, 3, 2, 3},
      /* match, new entries */
      {3, 3, 4, {E(4, 4)}, 1, true, 4, 4, 4},
      {3, 3, 3, {E(4, 4), E(4, 5)}, 2, true, 5, 3, 5},
      /* match in the middle, conflicting suffix replaced */
      {1, 1, 2, {E(4, 2)}, 1, true, 2, 2, 2},
      {2, 2, 3, {E(4, 3), E(4, 4)}, 2, true, 4, 3, 4},
      /* match with entries all already present: no truncation */
      {1, 1, 2, {E(2, 2)}, 1, true, 2, 2, 3},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    fixture f;
    fx_init(&f, (uint64_t[]){1, 2, 3}, 3);
    f.log.committed = 1;
    uint64_t ln = 0;
    bool ok = raft_log_maybe_append(&f.log, t[i].index, t[i].log_term, t[i].commit, t[i].e,
                                    t[i].n, &ln);
    assert_int_equal(ok, t[i].ok);
    if (ok) assert_int_equal(ln, t[i].last_new);
    assert_int_equal(f.log.committed, t[i].want_commit);
    assert_int_equal(raft_log_last_index(&f.log), t[i].want_last);
    fx_free(&f);
  }
}

/* §5.4.1 up-to-date: higher last term wins; equal terms compare the last index. */
static void log_is_up_to_date(void **state) {
  (void)state;
  fixture f;
  fx_init(&f, (uint64_t[]){1, 2, 3}, 3);
  assert_true(raft_log_is_up_to_date(&f.log, 2, 4));
  assert_true(raft_log_is_up_to_date(&f.log, 3, 3));
  assert_true(raft_log_is_up_to_date(&f.log, 4, 3));
  assert_false(raft_log_is_up_to_date(&f.log, 2, 3));
  assert_false(raft_log_is_up_to_date(&f.log, 9, 2));
  fx_free(&f);
}

/* restore replaces the log with an unstable snapshot: first/last/term/commit follow it and the
 * committed entries wait until it is persisted. */
static void log_restore(void **state) {
  (void)state;
  fixture f;
  fx_init(&f, (uint64_t[]){1, 1}, 2);
  raft_log_append(&f.log, (raft_entry[]){E(2, 3)}, 1);
  raft_snapshot s = {.meta = {.index = 10, .term = 4, .conf = {{1, 2}, 2}}};
  raft_log_restore(&f.log, &s, false);
  assert_int_equal(raft_log_first_index(&f.log), 11);
  assert_int_equal(raft_log_last_index(&f.log), 10);
  assert_int_equal(raft_log_last_term(&f.log), 4);
  assert_int_equal(f.log.committed, 10);
  assert_int_equal(f.log.n, 0);
  assert_int_equal(f.log.offset, 11);
  assert_false(raft_log_has_next_committed(&f.log));
  uint64_t t;
  assert_int_equal(raft_log_term(&f.log, 5, &t), RAFT_E_COMPACTED);
  raft_log_append(&f.log, (raft_entry[]){E(5, 11)}, 1);
  assert_int_equal(raft_log_term_or_zero(&f.log, 11), 5);
  /* persisted: the snapshot leaves the unstable part */
  assert_int_equal(mem_storage_apply_snapshot(f.ms, &s), RAFT_OK);
  raft_log_stable_snap_to(&f.log, 10);
  assert_null(f.log.snap);
  assert_int_equal(raft_log_first_index(&f.log), 11);
  assert_int_equal(raft_log_term_or_zero(&f.log, 10), 4);
  fx_free(&f);
}

/* A snapshot given as movable (the transport's reassembly buffer) is taken, not copied: the
 * core holds the same buffer and the message's is left empty; otherwise the core copies. */
static void log_restore_takes_a_movable_snapshot(void **state) {
  (void)state;
  fixture f;
  fx_init(&f, (uint64_t[]){1, 1}, 2);
  uint8_t *buf = malloc(5);
  assert_non_null(buf);
  memcpy(buf, "dump!", 5);
  raft_snapshot s = {.meta = {.index = 10, .term = 4, .conf = {{1, 2}, 2}},
                     .data = {buf, 5}};
  raft_log_restore(&f.log, &s, true);
  assert_null(s.data.base);
  assert_int_equal(s.data.len, 0);
  assert_ptr_equal(f.log.snap->data.base, buf);
  assert_int_equal(f.log.snap->data.len, 5);
  assert_int_equal(raft_log_first_index(&f.log), 11);
  /* a second one, copied: the first buffer is freed (ASan checks) and the caller keeps its own */
  static uint8_t two[] = "second";
  raft_snapshot s2 = {.meta = {.index = 12, .term = 4, .conf = {{1, 2}, 2}},
                      .data = {two, sizeof two}};
  raft_log_restore(&f.log, &s2, false);
  assert_ptr_equal(s2.data.base, two);
  assert_true(f.log.snap->data.base != two);
  assert_memory_equal(f.log.snap->data.base, "second", sizeof two);
  fx_free(&f);
}

/* commit_to never moves back; maybe_commit commits only entries of the given term. */
static void log_commit_rules(void **state) {
  (void)state;
  fixture f;
  fx_init(&f, (uint64_t[]){1, 2, 2}, 3);
  raft_log_commit_to(&f.log, 2);
  raft_log_commit_to(&f.log, 1);
  assert_int_equal(f.log.committed, 2);
  assert_false(raft_log_maybe_commit(&f.log, 3, 1));
  assert_true(raft_log_maybe_commit(&f.log, 3, 2));
  assert_int_equal(f.log.committed, 3);
  raft_log_applied_to(&f.log, 2);
  assert_int_equal(f.log.applied, 2);
  assert_true(raft_log_has_next_committed(&f.log));
  fx_free(&f);
}

/* mem_storage: append truncates a conflicting suffix, refuses gaps, skips compacted entries. */
static void mem_storage_append_truncates(void **state) {
  (void)state;
  mem_storage *ms = mem_storage_new();
  const raft_storage *s = mem_storage_iface(ms);
  assert_int_equal(mem_storage_append(ms, (raft_entry[]){E(1, 1), E(1, 2), E(1, 3)}, 3), RAFT_OK);
  assert_int_equal(mem_storage_append(ms, (raft_entry[]){E(2, 2)}, 1), RAFT_OK);
  uint64_t i, t;
  s->last_index(s->ctx, &i);
  assert_int_equal(i, 2);
  s->term(s->ctx, 2, &t);
  assert_int_equal(t, 2);
  assert_int_equal(mem_storage_append(ms, (raft_entry[]){E(2, 4)}, 1), RAFT_E_INVAL);
  assert_int_equal(mem_storage_append(ms, (raft_entry[]){E(2, 3), E(2, 4)}, 2), RAFT_OK);
  s->last_index(s->ctx, &i);
  assert_int_equal(i, 4);
  /* compaction */
  assert_int_equal(mem_storage_compact(ms, 2), RAFT_OK);
  s->first_index(s->ctx, &i);
  assert_int_equal(i, 3);
  assert_int_equal(s->term(s->ctx, 2, &t), RAFT_OK);
  assert_int_equal(t, 2);
  assert_int_equal(s->term(s->ctx, 1, &t), RAFT_E_COMPACTED);
  assert_int_equal(s->term(s->ctx, 5, &t), RAFT_E_UNAVAILABLE);
  assert_int_equal(mem_storage_compact(ms, 2), RAFT_E_COMPACTED);
  assert_int_equal(mem_storage_compact(ms, 9), RAFT_E_UNAVAILABLE);
  raft_entry *out = NULL;
  size_t n = 0;
  assert_int_equal(s->entries(s->ctx, 2, 4, UINT64_MAX, &out, &n), RAFT_E_COMPACTED);
  assert_int_equal(s->entries(s->ctx, 3, 6, UINT64_MAX, &out, &n), RAFT_E_UNAVAILABLE);
  assert_int_equal(s->entries(s->ctx, 3, 5, UINT64_MAX, &out, &n), RAFT_OK);
  assert_int_equal(n, 2);
  raft_entries_free(out, n);
  /* entries at or below the compaction point are skipped on append */
  assert_int_equal(mem_storage_append(ms, (raft_entry[]){E(2, 2), E(2, 3), E(3, 4)}, 3), RAFT_OK);
  s->term(s->ctx, 4, &t);
  assert_int_equal(t, 3);
  mem_storage_free(ms);
}

/* mem_storage snapshots: created at an index with the conf; applied snapshots reset the log;
 * older snapshots are refused; the temp-unavailable hook answers RAFT_E_SNAP_TEMP. */
static void mem_storage_snapshots(void **state) {
  (void)state;
  mem_storage *ms = mem_storage_new();
  const raft_storage *s = mem_storage_iface(ms);
  raft_conf_state cs = {{1, 2, 3}, 3};
  assert_int_equal(mem_storage_set_conf_state(ms, &cs), RAFT_OK);
  assert_int_equal(mem_storage_append(ms, (raft_entry[]){E(1, 1), E(2, 2), E(2, 3)}, 3), RAFT_OK);
  assert_int_equal(mem_storage_create_snapshot(ms, 2, NULL, "st", 2), RAFT_OK);
  raft_snapshot snap;
  assert_int_equal(s->snapshot(s->ctx, &snap), RAFT_OK);
  assert_int_equal(snap.meta.index, 2);
  assert_int_equal(snap.meta.term, 2);
  assert_int_equal(snap.meta.conf.n_voters, 3);
  assert_memory_equal(snap.data.base, "st", 2);
  free(snap.data.base);
  assert_int_equal(mem_storage_create_snapshot(ms, 1, NULL, "x", 1), RAFT_E_INVAL);
  mem_storage_set_snapshot_temp_unavailable(ms, true);
  assert_int_equal(s->snapshot(s->ctx, &snap), RAFT_E_SNAP_TEMP);
  mem_storage_set_snapshot_temp_unavailable(ms, false);
  raft_snapshot in = {.meta = {.index = 10, .term = 5, .conf = {{1, 2}, 2}},
                      .data = {(uint8_t *)"new", 3}};
  assert_int_equal(mem_storage_apply_snapshot(ms, &in), RAFT_OK);
  uint64_t i, t;
  s->first_index(s->ctx, &i);
  assert_int_equal(i, 11);
  s->last_index(s->ctx, &i);
  assert_int_equal(i, 10);
  s->term(s->ctx, 10, &t);
  assert_int_equal(t, 5);
  raft_hard_state hs;
  raft_conf_state got;
  s->initial_state(s->ctx, &hs, &got);
  assert_int_equal(got.n_voters, 2);
  raft_snapshot old = {.meta = {.index = 4, .term = 1}};
  assert_int_equal(mem_storage_apply_snapshot(ms, &old), RAFT_E_INVAL);
  raft_hard_state w = {3, 2, 10};
  mem_storage_set_hard_state(ms, &w);
  s->initial_state(s->ctx, &hs, &got);
  assert_int_equal(hs.term, 3);
  assert_int_equal(hs.vote, 2);
  assert_int_equal(hs.commit, 10);
  mem_storage_free(ms);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(log_find_conflict),
      cmocka_unit_test(log_find_conflict_by_term),
      cmocka_unit_test(log_term_across_stable_unstable_boundary),
      cmocka_unit_test(log_slice_max_bytes),
      cmocka_unit_test(log_maybe_append),
      cmocka_unit_test(log_is_up_to_date),
      cmocka_unit_test(log_restore),
      cmocka_unit_test(log_restore_takes_a_movable_snapshot),
      cmocka_unit_test(log_commit_rules),
      cmocka_unit_test(mem_storage_append_truncates),
      cmocka_unit_test(mem_storage_snapshots),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
