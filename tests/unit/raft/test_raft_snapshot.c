/* L1: snapshots (paper §7). A follower whose next index is below the leader's first index gets
 * MSG_SNAP; the driver reports the outcome; the follower restores (ready.has_snapshot, conf from
 * the snapshot's meta) and answers; stale snapshots are ignored and known ones fast-forward. */
#include "raft_test_util.h"

static rt_opts O(void) { return rt_default_opts(); }

/* A leader (1 of 1,2,3) at term 1 whose storage was compacted to a snapshot at index 11. */
static rt_node *compacted_leader(rt_msgs *out) {
  rt_node *n = rt_node_k(1, 3, O());
  raft_entry e[11];
  for (uint64_t i = 0; i < 11; i++) e[i] = (raft_entry){.term = 1, .index = i + 1};
  mem_storage_append(n->ms, e, 11);
  raft_hard_state hs = {.term = 1, .commit = 11};
  mem_storage_set_hard_state(n->ms, &hs);
  assert_int_equal(mem_storage_create_snapshot(n->ms, 11, NULL, "state@11", 8), RAFT_OK);
  assert_int_equal(mem_storage_compact(n->ms, 11), RAFT_OK);
  n->applied_index = 11;
  rt_restart(n);
  raft_campaign(n->r);
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 2});
  rt_read(n, out);
  assert_int_equal(n->r->role, RAFT_LEADER);
  return n;
}

/* §7: a follower behind the first index gets the snapshot; its progress waits in SNAPSHOT. */
static void snapshot_sent_when_behind_first_index(void **state) {
  (void)state;
  rt_msgs out = {0};
  rt_node *n = compacted_leader(&out);
  /* 2 rejects the probe (it has nothing): the leader falls back to index 0 → compacted */
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 2, .index = 11,
                            .reject = true, .reject_hint = 0});
  rt_read(n, &out);
  rt_expect_msgs(&out, "1->2 MsgSnap Term:2 Log:0/0 Snapshot: Index:11 Term:1 Voters:[1 2 3] Data:8B");
  raft_progress *pr = raft_progress_get(n->r, 2);
  assert_int_equal(pr->state, RAFT_PROGRESS_SNAPSHOT);
  assert_int_equal(pr->pending_snapshot, 11);
  /* paused: no more appends while the snapshot is in flight */
  raft_propose(n->r, "x", 1);
  rt_read(n, &out);
  assert_int_equal(rt_count(&out, 0, 2), 0);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §7: a snapshot being made (RAFT_E_SNAP_TEMP) sends nothing; the next heartbeat response
 * retries. */
static void snapshot_temporarily_unavailable_retries(void **state) {
  (void)state;
  rt_msgs out = {0};
  rt_node *n = compacted_leader(&out);
  mem_storage_set_snapshot_temp_unavailable(n->ms, true);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 2, .index = 11,
                            .reject = true, .reject_hint = 0});
  rt_read(n, &out);
  rt_expect_no_msgs(&out);
  assert_int_equal(raft_progress_get(n->r, 2)->state, RAFT_PROGRESS_PROBE);
  mem_storage_set_snapshot_temp_unavailable(n->ms, false);
  rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 2});
  rt_read(n, &out);
  rt_expect_msgs(&out, "1->2 MsgSnap Term:2 Log:0/0 Snapshot: Index:11 Term:1 Voters:[1 2 3] Data:8B");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* raft_report_snapshot: success probes from the snapshot's index, failure from match + 1; both
 * wait for a heartbeat response before the next probe. */
static void snapshot_report_outcome(void **state) {
  (void)state;
  for (int ok = 0; ok < 2; ok++) {
    rt_msgs out = {0};
    rt_node *n = compacted_leader(&out);
    rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 2, .index = 11,
                              .reject = true, .reject_hint = 0});
    rt_read(n, &out);
    raft_report_snapshot(n->r, 2, ok);
    raft_progress *pr = raft_progress_get(n->r, 2);
    assert_int_equal(pr->state, RAFT_PROGRESS_PROBE);
    assert_int_equal(pr->next, ok ? 12 : 1);
    assert_true(pr->probe_sent);
    rt_read(n, &out);
    rt_expect_no_msgs(&out);
    rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 2});
    rt_read(n, &out);
    if (ok)
      rt_expect_msgs(&out, "1->2 MsgApp Term:2 Log:1/11 Commit:11 Entries:[2/12 EntryNormal]");
    else
      rt_expect_msgs(&out, "1->2 MsgSnap Term:2 Log:0/0 Snapshot: Index:11 Term:1 Voters:[1 2 3] Data:8B");
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §7: an APP_RESP at or beyond the snapshot (the follower installed it) moves SNAPSHOT to
 * REPLICATE without waiting for the report. */
static void snapshot_succeeds_via_app_resp(void **state) {
  (void)state;
  rt_msgs out = {0};
  rt_node *n = compacted_leader(&out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 2, .index = 11,
                            .reject = true, .reject_hint = 0});
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 2, .index = 11});
  rt_read(n, &out);
  raft_progress *pr = raft_progress_get(n->r, 2);
  assert_int_equal(pr->state, RAFT_PROGRESS_REPLICATE);
  assert_int_equal(pr->match, 11);
  rt_expect_msgs(&out, "1->2 MsgApp Term:2 Log:1/11 Commit:11 Entries:[2/12 EntryNormal]");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §7: the follower restores: the ready carries the snapshot (persisted and applied first), its
 * configuration comes from the meta, and it answers with its new last index. A fresh node with
 * no configuration learns it this way. */
static void snapshot_follower_restores(void **state) {
  (void)state;
  rt_node *n = rt_node_new(2, NULL, 0, O());
  raft_snapshot snap = {.meta = {.index = 11, .term = 11, .conf = {{1, 2}, 2}},
                        .data = {(uint8_t *)"state", 5}};
  rt_step(n, (raft_message){.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 12, .snapshot = &snap});
  raft_ready rd;
  raft_get_ready(n->r, &rd);
  assert_true(rd.has_snapshot);
  assert_int_equal(rd.snapshot.meta.index, 11);
  assert_memory_equal(rd.snapshot.data.base, "state", 5);
  assert_true(rd.must_sync);
  assert_int_equal(rd.n_committed, 0);
  assert_int_equal(rd.n_msgs, 1);
  assert_string_equal(rt_desc(&rd.msgs[0]), "2->1 MsgAppResp Term:12 Log:0/11");
  assert_int_equal(mem_storage_apply_snapshot(n->ms, &rd.snapshot), RAFT_OK);
  mem_storage_set_hard_state(n->ms, &rd.hs);
  raft_advance(n->r, &rd);
  assert_int_equal(n->r->log.applied, 11);
  assert_int_equal(n->r->log.committed, 11);
  assert_int_equal(n->r->conf.n_voters, 2);
  assert_true(raft_promotable(n->r));
  assert_false(raft_has_ready(n->r));
  /* and it survives a restart from its storage */
  n->applied_index = 11;
  rt_restart(n);
  assert_int_equal(raft_log_last_index(&n->r->log), 11);
  assert_int_equal(n->r->conf.n_voters, 2);
  rt_node_free(n);
}

/* The snapshot's data is moved into the ready, not copied, and stays valid until the advance
 * even if a newer snapshot replaces the unstable one meanwhile; the log holds no data to send
 * on in between (asked for one, it answers "temporarily unavailable"). */
static void snapshot_ready_owns_the_data(void **state) {
  (void)state;
  rt_node *n = rt_node_new(2, NULL, 0, O());
  uint8_t *buf = malloc(5);
  assert_non_null(buf);
  memcpy(buf, "state", 5);
  raft_snapshot snap = {.meta = {.index = 11, .term = 11, .conf = {{1, 2}, 2}},
                        .data = {buf, 5}};
  rt_step(n, (raft_message){.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 12,
                            .snapshot = &snap, .snapshot_movable = true});
  assert_null(snap.data.base); /* taken by the core */
  raft_ready rd;
  raft_get_ready(n->r, &rd);
  assert_true(rd.has_snapshot);
  assert_ptr_equal(rd.snapshot.data.base, buf); /* the same buffer: no copy */
  raft_snapshot out;
  assert_int_equal(raft_log_snapshot(&n->r->log, &out), RAFT_E_SNAP_TEMP);
  /* a newer snapshot before the advance (copied: not movable) */
  raft_snapshot newer = {.meta = {.index = 20, .term = 12, .conf = {{1, 2}, 2}},
                         .data = {(uint8_t *)"newer", 5}};
  rt_step(n, (raft_message){.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 12,
                            .snapshot = &newer});
  assert_memory_equal(rd.snapshot.data.base, "state", 5);
  assert_int_equal(mem_storage_apply_snapshot(n->ms, &rd.snapshot), RAFT_OK);
  mem_storage_set_hard_state(n->ms, &rd.hs);
  raft_advance(n->r, &rd);
  /* the newer one is the next ready's */
  raft_get_ready(n->r, &rd);
  assert_true(rd.has_snapshot);
  assert_int_equal(rd.snapshot.meta.index, 20);
  assert_memory_equal(rd.snapshot.data.base, "newer", 5);
  assert_int_equal(mem_storage_apply_snapshot(n->ms, &rd.snapshot), RAFT_OK);
  mem_storage_set_hard_state(n->ms, &rd.hs);
  raft_advance(n->r, &rd);
  assert_int_equal(n->r->log.applied, 20);
  rt_node_free(n);
}

/* What the release hook below was given, in order. */
static uint8_t *released[4];
static size_t n_released;

static void count_release(raft_buf data) {
  assert_true(n_released < 4);
  released[n_released++] = data.base;
  free(data.base);
}

static uint8_t *bytes(const char *s) {
  uint8_t *b = malloc(strlen(s));
  assert_non_null(b);
  memcpy(b, s, strlen(s));
  return b;
}

/* A snapshot that comes with a release (a transport's mapped file) is given back through it,
 * once, by whoever holds its data last: here the ready, at each advance, even when a newer one
 * replaced it in the log meanwhile; never by free(). */
static void snapshot_released_by_its_hook(void **state) {
  (void)state;
  n_released = 0;
  rt_node *n = rt_node_new(2, NULL, 0, O());
  uint8_t *a = bytes("first"), *b = bytes("second");
  raft_snapshot s1 = {.meta = {.index = 11, .term = 11, .conf = {{1, 2}, 2}},
                      .data = {a, 5}, .release = count_release};
  rt_step(n, (raft_message){.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 12,
                            .snapshot = &s1, .snapshot_movable = true});
  assert_null(s1.data.base);
  raft_ready rd;
  raft_get_ready(n->r, &rd);
  assert_ptr_equal(rd.snapshot.data.base, a);
  assert_true(rd.snapshot.release == count_release);
  raft_snapshot s2 = {.meta = {.index = 20, .term = 12, .conf = {{1, 2}, 2}},
                      .data = {b, 6}, .release = count_release};
  rt_step(n, (raft_message){.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 12,
                            .snapshot = &s2, .snapshot_movable = true});
  assert_int_equal(n_released, 0); /* (the log lent "first" to the ready: not its to release) */
  assert_int_equal(mem_storage_apply_snapshot(n->ms, &rd.snapshot), RAFT_OK);
  mem_storage_set_hard_state(n->ms, &rd.hs);
  raft_advance(n->r, &rd);
  assert_int_equal(n_released, 1);
  assert_ptr_equal(released[0], a);
  raft_get_ready(n->r, &rd);
  assert_ptr_equal(rd.snapshot.data.base, b);
  assert_int_equal(mem_storage_apply_snapshot(n->ms, &rd.snapshot), RAFT_OK);
  mem_storage_set_hard_state(n->ms, &rd.hs);
  raft_advance(n->r, &rd);
  assert_int_equal(n_released, 2);
  assert_ptr_equal(released[1], b);
  /* A copy is malloc'd and has no hook: the core's copy of it is freed, not released. */
  raft_snapshot copy;
  uint8_t *c = bytes("third");
  raft_snapshot s3 = {.meta = {.index = 30}, .data = {c, 5}, .release = count_release};
  assert_int_equal(raft_snapshot_copy(&copy, &s3), RAFT_OK);
  assert_null(copy.release);
  raft_snapshot_free_data(&copy);
  raft_snapshot_free_data(&s3);
  assert_int_equal(n_released, 3);
  assert_ptr_equal(released[2], c);
  assert_null(s3.release);
  rt_node_free(n);
}

/* §7: a snapshot at or below the commit index is ignored (answered with the commit); one whose
 * last entry we hold fast-forwards the commit instead of replacing the log. */
static void snapshot_stale_or_known(void **state) {
  (void)state;
  rt_node *n = rt_node_k(2, 2, O());
  raft_entry e[3] = {{.term = 1, .index = 1}, {.term = 1, .index = 2}, {.term = 1, .index = 3}};
  mem_storage_append(n->ms, e, 3);
  raft_hard_state hs = {.term = 1, .commit = 2};
  mem_storage_set_hard_state(n->ms, &hs);
  rt_restart(n);
  rt_msgs out = {0};
  raft_snapshot old = {.meta = {.index = 2, .term = 1, .conf = {{1, 2}, 2}}};
  rt_step(n, (raft_message){.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 1, .snapshot = &old});
  rt_read(n, &out);
  rt_expect_msgs(&out, "2->1 MsgAppResp Term:1 Log:0/2");
  raft_snapshot known = {.meta = {.index = 3, .term = 1, .conf = {{1, 2}, 2}}};
  rt_step(n, (raft_message){.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 1, .snapshot = &known});
  assert_null(n->r->log.snap);
  assert_int_equal(n->r->log.committed, 3);
  rt_read(n, &out);
  rt_expect_msgs(&out, "2->1 MsgAppResp Term:1 Log:0/3");
  rt_msgs_free(&out);
  rt_node_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(snapshot_sent_when_behind_first_index),
      cmocka_unit_test(snapshot_temporarily_unavailable_retries),
      cmocka_unit_test(snapshot_report_outcome),
      cmocka_unit_test(snapshot_succeeds_via_app_resp),
      cmocka_unit_test(snapshot_follower_restores),
      cmocka_unit_test(snapshot_ready_owns_the_data),
      cmocka_unit_test(snapshot_released_by_its_hook),
      cmocka_unit_test(snapshot_stale_or_known),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
