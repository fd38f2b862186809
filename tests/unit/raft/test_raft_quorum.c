/* L0 unit tests of the pure pieces under the leader's bookkeeping (raft.md §6 L0): majority
 * commit index (the median of the sorted match indexes), vote tallies, the inflights ring, and
 * the per-follower progress state machine (probe / replicate / snapshot). */
#include "raft_test_util.h"

/* The commit index is the largest index a majority reached: the median of sorted matches. */
static void quorum_commit_index_is_majority_median(void **state) {
  (void)state;
  struct {
    uint64_t m[7];
    size_t n;
    uint64_t want;
  } t[] = {
      {{5}, 1, 5},
      {{1, 2}, 2, 1},
      {{2, 2}, 2, 2},
      {{1, 2, 3}, 3, 2},
      {{3, 1, 2}, 3, 2},
      {{0, 0, 9}, 3, 0},
      {{4, 4, 1, 1}, 4, 1},
      {{4, 4, 4, 1}, 4, 4},
      {{5, 1, 3, 2, 4}, 5, 3},
      {{7, 7, 7, 0, 0, 0, 0}, 7, 0},
      {{7, 7, 7, 7, 0, 0, 0}, 7, 7},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
    assert_int_equal(raft_quorum_commit_index(t[i].m, t[i].n), t[i].want);
  assert_true(raft_quorum_commit_index(NULL, 0) == UINT64_MAX);
}

/* Won with a majority of grants, lost once a majority is out of reach, else pending. */
static void quorum_vote_tally(void **state) {
  (void)state;
  int8_t a[] = {1, -1, -1};
  assert_int_equal(raft_quorum_vote_result(a, 3), RAFT_VOTE_PENDING);
  int8_t b[] = {1, 1, -1};
  assert_int_equal(raft_quorum_vote_result(b, 3), RAFT_VOTE_WON);
  int8_t c[] = {1, 0, 0};
  assert_int_equal(raft_quorum_vote_result(c, 3), RAFT_VOTE_LOST);
  int8_t d[] = {1, 0, -1};
  assert_int_equal(raft_quorum_vote_result(d, 3), RAFT_VOTE_PENDING);
  int8_t e[] = {1, 1, 0, 0};
  assert_int_equal(raft_quorum_vote_result(e, 4), RAFT_VOTE_LOST);
  int8_t f[] = {1, 1, -1, 0};
  assert_int_equal(raft_quorum_vote_result(f, 4), RAFT_VOTE_PENDING);
  int8_t g[] = {1};
  assert_int_equal(raft_quorum_vote_result(g, 1), RAFT_VOTE_WON);
  int8_t h[] = {1, 1, 1, 0, 0};
  assert_int_equal(raft_quorum_vote_result(h, 5), RAFT_VOTE_WON);
  assert_int_equal(raft_quorum_majority(1), 1);
  assert_int_equal(raft_quorum_majority(4), 3);
  assert_int_equal(raft_quorum_majority(5), 3);
}

/* The ring fills to its count cap, frees up to an index, and wraps around. */
static void inflights_add_free_wrap(void **state) {
  (void)state;
  raft_inflights in;
  assert_int_equal(raft_inflights_init(&in, 4), RAFT_OK);
  for (uint64_t i = 1; i <= 4; i++) {
    assert_false(raft_inflights_full(&in));
    raft_inflights_add(&in, i * 10);
  }
  assert_true(raft_inflights_full(&in));
  raft_inflights_free_le(&in, 25); /* frees 10, 20 */
  assert_int_equal(in.count, 2);
  assert_int_equal(in.start, 2);
  raft_inflights_add(&in, 50); /* wraps to slot 0 */
  raft_inflights_add(&in, 60);
  assert_true(raft_inflights_full(&in));
  assert_int_equal(in.buf[0], 50);
  assert_int_equal(in.buf[1], 60);
  raft_inflights_free_first_one(&in); /* 30 */
  assert_int_equal(in.count, 3);
  raft_inflights_free_le(&in, 55); /* 40, 50 */
  assert_int_equal(in.count, 1);
  assert_int_equal(in.buf[in.start], 60);
  raft_inflights_free_le(&in, 100);
  assert_int_equal(in.count, 0);
  assert_int_equal(in.start, 0);
  raft_inflights_add(&in, 70);
  raft_inflights_reset(&in);
  assert_int_equal(in.count, 0);
  raft_inflights_destroy(&in);
}

/* Probe pauses after one APP; a positive ack moves match and next; replicate pipelines. */
static void progress_probe_and_replicate(void **state) {
  (void)state;
  raft_progress pr;
  assert_int_equal(raft_progress_init(&pr, 2, 6, 2), RAFT_OK);
  assert_int_equal(pr.state, RAFT_PROGRESS_PROBE);
  assert_false(raft_progress_is_paused(&pr));
  raft_progress_sent_entries(&pr, 1, 6);
  assert_true(raft_progress_is_paused(&pr));
  assert_int_equal(pr.next, 6); /* probe does not advance next optimistically */
  assert_true(raft_progress_maybe_update(&pr, 6));
  assert_false(raft_progress_is_paused(&pr));
  assert_int_equal(pr.match, 6);
  assert_int_equal(pr.next, 7);
  assert_false(raft_progress_maybe_update(&pr, 5)); /* stale ack */
  assert_int_equal(pr.match, 6);
  raft_progress_become_replicate(&pr);
  assert_int_equal(pr.next, 7);
  raft_progress_sent_entries(&pr, 3, 9);
  assert_int_equal(pr.next, 10);
  raft_progress_sent_entries(&pr, 1, 10);
  assert_true(raft_progress_is_paused(&pr)); /* 2 APPs in flight: the cap */
  raft_inflights_free_le(&pr.ins, 9);
  assert_false(raft_progress_is_paused(&pr));
  raft_progress_destroy(&pr);
}

/* Rejections: replicate falls back to match+1; probe takes the hint, ignoring stale ones. */
static void progress_maybe_decr_to(void **state) {
  (void)state;
  raft_progress pr;
  assert_int_equal(raft_progress_init(&pr, 2, 1, 8), RAFT_OK);
  /* replicate: a rejection at or below match is stale */
  pr.state = RAFT_PROGRESS_REPLICATE;
  pr.match = 5;
  pr.next = 10;
  assert_false(raft_progress_maybe_decr_to(&pr, 5, 5));
  assert_true(raft_progress_maybe_decr_to(&pr, 9, 9));
  assert_int_equal(pr.next, 6);
  /* probe: only the APP at next-1 counts */
  pr.state = RAFT_PROGRESS_PROBE;
  pr.match = 0;
  pr.next = 10;
  assert_false(raft_progress_maybe_decr_to(&pr, 5, 5));
  pr.probe_sent = true;
  assert_true(raft_progress_maybe_decr_to(&pr, 9, 3)); /* hint 3 → next 4 */
  assert_int_equal(pr.next, 4);
  assert_false(pr.probe_sent);
  assert_true(raft_progress_maybe_decr_to(&pr, 3, 100)); /* hint above: next = rejected */
  assert_int_equal(pr.next, 3);
  assert_true(raft_progress_maybe_decr_to(&pr, 2, 0));
  assert_int_equal(pr.next, 1); /* never below 1 */
  raft_progress_destroy(&pr);
}

/* Snapshot pauses sending; probing after it resumes from the snapshot's index. */
static void progress_snapshot_transitions(void **state) {
  (void)state;
  raft_progress pr;
  assert_int_equal(raft_progress_init(&pr, 2, 3, 8), RAFT_OK);
  pr.match = 2;
  raft_progress_become_snapshot(&pr, 20);
  assert_true(raft_progress_is_paused(&pr));
  assert_int_equal(pr.pending_snapshot, 20);
  raft_progress_become_probe(&pr);
  assert_int_equal(pr.state, RAFT_PROGRESS_PROBE);
  assert_int_equal(pr.next, 21);
  assert_int_equal(pr.pending_snapshot, 0);
  /* a failed snapshot (pending cleared first) probes from match + 1 */
  raft_progress_become_snapshot(&pr, 20);
  pr.pending_snapshot = 0;
  raft_progress_become_probe(&pr);
  assert_int_equal(pr.next, 3);
  assert_string_equal(raft_progress_state_name(RAFT_PROGRESS_SNAPSHOT), "StateSnapshot");
  raft_progress_destroy(&pr);
}

/* The PRNG is deterministic per seed and bounded. */
static void rng_deterministic_and_bounded(void **state) {
  (void)state;
  raft_rng a, b, c;
  raft_rng_seed(&a, 7);
  raft_rng_seed(&b, 7);
  raft_rng_seed(&c, 8);
  bool differ = false;
  for (int i = 0; i < 100; i++) {
    uint64_t x = raft_rng_below(&a, 10), y = raft_rng_below(&b, 10), z = raft_rng_below(&c, 10);
    assert_int_equal(x, y);
    assert_true(x < 10 && z < 10);
    differ |= x != z;
  }
  assert_true(differ);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(quorum_commit_index_is_majority_median),
      cmocka_unit_test(quorum_vote_tally),
      cmocka_unit_test(inflights_add_free_wrap),
      cmocka_unit_test(progress_probe_and_replicate),
      cmocka_unit_test(progress_maybe_decr_to),
      cmocka_unit_test(progress_snapshot_transitions),
      cmocka_unit_test(rng_deterministic_and_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
