/* L2: small-network scenarios (raft.md §6 L2) on rt_net: a synchronous in-process network with
 * drop/cut/isolate/ignore/heal that delivers until quiet, each node handling its ready in the
 * driver's order (persist → send → apply → advance). */
#include "raft_test_util.h"

static rt_opts O(bool pre_vote, bool check_quorum) {
  rt_opts o = rt_default_opts();
  o.pre_vote = pre_vote;
  o.check_quorum = check_quorum;
  return o;
}

static void preload(rt_node *n, const uint64_t *terms, size_t k, raft_hard_state hs) {
  raft_entry ents[64];
  for (size_t i = 0; i < k; i++) ents[i] = (raft_entry){.term = terms[i], .index = i + 1};
  assert_int_equal(mem_storage_append(n->ms, ents, k), RAFT_OK);
  mem_storage_set_hard_state(n->ms, &hs);
  rt_restart(n);
}

static size_t count_leaders(rt_net *net) {
  size_t c = 0;
  for (size_t i = 1; i <= net->n; i++) c += rt_role(net, i) == RAFT_LEADER;
  return c;
}

/* Dueling candidates (no pre-vote): 1 wins term 1 while cut from 3; 3's term-1 campaign fails;
 * after healing, 3's term-2 campaign deposes 1 (higher term) but cannot win with its shorter
 * log: everyone ends a follower at term 2. */
static void scenario_dueling_candidates(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O(false, false));
  rt_net_cut(net, 1, 3);
  rt_net_campaign(net, 1);
  rt_net_campaign(net, 3);
  assert_int_equal(rt_role(net, 1), RAFT_LEADER);
  assert_int_equal(rt_role(net, 3), RAFT_CANDIDATE);
  rt_net_heal(net);
  rt_net_campaign(net, 3);
  for (uint64_t i = 1; i <= 3; i++) {
    assert_int_equal(rt_role(net, i), RAFT_FOLLOWER);
    assert_int_equal(rt_term(net, i), 2);
  }
  assert_string_equal(rt_log_terms(rt_net_node(net, 1)), "1");
  assert_string_equal(rt_log_terms(rt_net_node(net, 3)), "");
  rt_net_free(net);
}

/* Dueling pre-candidates: with pre-vote, 3's campaigns never raise a term: its pre-votes fail
 * (2 has a longer log), and leader 1 keeps term 1. */
static void scenario_dueling_pre_candidates(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O(true, false));
  rt_net_cut(net, 1, 3);
  rt_net_campaign(net, 1);
  rt_net_campaign(net, 3);
  assert_int_equal(rt_role(net, 1), RAFT_LEADER);
  assert_int_equal(rt_role(net, 3), RAFT_FOLLOWER);
  rt_net_heal(net);
  rt_net_campaign(net, 3);
  assert_int_equal(rt_role(net, 1), RAFT_LEADER);
  assert_int_equal(rt_role(net, 3), RAFT_FOLLOWER);
  for (uint64_t i = 1; i <= 3; i++) assert_int_equal(rt_term(net, i), 1);
  rt_net_free(net);
}

/* A partitioned node rejoins. Without pre-vote its term ran ahead while alone, and its return
 * deposes the leader (a needless election); with pre-vote its term stayed put, it follows the
 * leader's next heartbeat, and the leader keeps leading. */
static void scenario_partitioned_node_rejoins(void **state) {
  (void)state;
  for (int pre = 0; pre < 2; pre++) {
    rt_net *net = rt_net_new(3, O(pre, false));
    rt_net_campaign(net, 1);
    rt_net_propose(net, 1, "a");
    rt_net_isolate(net, 3);
    for (int i = 0; i < 3; i++) rt_net_campaign(net, 3);
    if (pre) {
      assert_int_equal(rt_term(net, 3), 1);
      assert_int_equal(rt_role(net, 3), RAFT_PRE_CANDIDATE);
    } else {
      assert_int_equal(rt_term(net, 3), 4);
      assert_int_equal(rt_role(net, 3), RAFT_CANDIDATE);
    }
    rt_net_heal(net);
    rt_net_tick(net, 1, 1); /* a heartbeat reaches 3 */
    if (pre) {
      /* at the leader's term, 3 simply follows it */
      assert_int_equal(rt_net_raft(net, 3)->lead, 1);
      assert_int_equal(rt_role(net, 1), RAFT_LEADER);
      assert_int_equal(rt_term(net, 1), 1);
      assert_int_equal(rt_role(net, 3), RAFT_FOLLOWER);
    } else {
      /* 3 ignored the stale heartbeat; its next timeout deposes the leader, and as its log is
       * as long as theirs it takes over at its inflated term */
      assert_int_equal(rt_role(net, 3), RAFT_CANDIDATE);
      rt_net_campaign(net, 3);
      assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
      assert_int_equal(rt_role(net, 3), RAFT_LEADER);
      assert_int_equal(rt_term(net, 1), 5);
    }
    /* either way the cluster recovers and keeps the entry */
    for (int i = 0; i < 50 && count_leaders(net) == 0; i++) rt_net_tick_all(net, 1);
    assert_int_equal(count_leaders(net), 1);
    for (uint64_t i = 1; i <= 3; i++) assert_string_equal(rt_applied_str(rt_net_node(net, i)), "a");
    rt_net_free(net);
  }
}

/* A partitioned leader rejoins: the majority elected a new leader at a higher term and moved
 * on; the old leader's uncommitted proposal is overwritten. With check-quorum and pre-vote the
 * old leader steps down on its own (no quorum) and its stale heartbeat is answered with the
 * higher term; without them it learns the term from the new leader's first message. */
static void scenario_partitioned_leader_rejoins(void **state) {
  (void)state;
  for (int safe = 0; safe < 2; safe++) {
    rt_net *net = rt_net_new(3, O(safe, safe));
    rt_net_campaign(net, 1);
    rt_net_isolate(net, 1);
    rt_net_propose(net, 1, "lost");
    if (safe) {
      /* 3's lease on leader 1 runs out (without it campaigning itself) */
      rt_net_raft(net, 3)->randomized_election_timeout = 100;
      rt_net_tick(net, 3, 10);
    }
    rt_net_campaign(net, 2);
    assert_int_equal(rt_role(net, 2), RAFT_LEADER);
    rt_net_propose(net, 2, "kept");
    if (safe) {
      rt_net_tick(net, 1, 20);
      assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER); /* check-quorum */
      assert_int_equal(rt_term(net, 1), 1);
    } else {
      assert_int_equal(rt_role(net, 1), RAFT_LEADER);
    }
    rt_net_heal(net);
    rt_net_tick(net, 2, 1);
    assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
    assert_int_equal(rt_term(net, 1), rt_term(net, 2));
    assert_int_equal(rt_net_raft(net, 1)->lead, 2);
    for (uint64_t i = 1; i <= 3; i++) {
      assert_string_equal(rt_log_terms(rt_net_node(net, i)), "1 2 2");
      assert_string_equal(rt_applied_str(rt_net_node(net, i)), "kept");
    }
    rt_net_free(net);
  }
}

/* Disruptive follower (check-quorum): 3's vote requests are lost, so it sits as candidate in
 * a higher term; the leader's next heartbeat draws an empty APP_RESP with that term, and the
 * leader steps down to it. */
static void scenario_disruptive_follower(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O(false, true));
  rt_net_campaign(net, 1);
  rt_net_ignore(net, RAFT_MSG_VOTE);
  rt_net_campaign(net, 3);
  assert_int_equal(rt_role(net, 3), RAFT_CANDIDATE);
  assert_int_equal(rt_term(net, 3), 2);
  rt_net_heal(net);
  rt_msgs_clear(&net->delivered);
  rt_net_tick(net, 1, 1);
  assert_string_equal(rt_desc(&net->delivered.m[1]), "1->3 MsgHeartbeat Term:1 Log:0/0 Commit:1");
  bool saw = false;
  for (size_t i = 0; i < net->delivered.n; i++)
    saw |= strcmp(rt_desc(&net->delivered.m[i]), "3->1 MsgAppResp Term:2 Log:0/0") == 0;
  assert_true(saw);
  assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
  assert_int_equal(rt_term(net, 1), 2);
  rt_net_free(net);
}

/* Stuck candidate freed by check-quorum: 3, cut off, campaigns into higher terms while 2
 * ignores it under the lease. Once healed, 3 answers the leader's heartbeat with its higher
 * term: the leader steps down to it and a fresh election ends with one leader. */
static void scenario_stuck_candidate_freed(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O(false, true));
  rt_net_campaign(net, 1);
  rt_net_cut(net, 1, 3);
  rt_net_campaign(net, 3);
  rt_net_campaign(net, 3);
  assert_int_equal(rt_role(net, 3), RAFT_CANDIDATE);
  assert_int_equal(rt_term(net, 3), 3);
  assert_int_equal(rt_term(net, 2), 1); /* 2 ignored it: in lease */
  assert_int_equal(rt_role(net, 1), RAFT_LEADER);
  rt_net_heal(net);
  rt_net_tick(net, 1, 1);
  assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
  assert_int_equal(rt_term(net, 1), 3);
  for (int i = 0; i < 60 && count_leaders(net) == 0; i++) rt_net_tick_all(net, 1);
  assert_int_equal(count_leaders(net), 1);
  rt_net_free(net);
}

/* Slow node restored by snapshot (§7): 3 misses many entries, the leader compacts its log, and
 * 3 is brought back with the snapshot, then replicates normally. */
static void scenario_slow_node_restored_by_snapshot(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O(false, false));
  rt_net_campaign(net, 1);
  rt_net_isolate(net, 3);
  char buf[16];
  for (int i = 0; i < 100; i++) {
    snprintf(buf, sizeof buf, "e%d", i);
    rt_net_propose(net, 1, buf);
  }
  rt_node *l = rt_net_node(net, 1);
  uint64_t applied = l->applied_index;
  assert_int_equal(applied, 101);
  assert_int_equal(mem_storage_create_snapshot(l->ms, applied, NULL, "snap", 4), RAFT_OK);
  assert_int_equal(mem_storage_compact(l->ms, applied), RAFT_OK);
  rt_net_heal(net);
  rt_msgs_clear(&net->delivered);
  rt_net_tick(net, 1, 1);
  size_t snaps = 0;
  for (size_t i = 0; i < net->delivered.n; i++) snaps += net->delivered.m[i].type == RAFT_MSG_SNAP;
  assert_int_equal(snaps, 1);
  rt_node *s = rt_net_node(net, 3);
  assert_int_equal(s->snap_applied, 101);
  assert_int_equal(rt_commit(net, 3), 101);
  assert_int_equal(raft_progress_get(l->r, 3)->state, RAFT_PROGRESS_REPLICATE);
  rt_net_propose(net, 1, "after");
  assert_int_equal(rt_commit(net, 3), 102);
  assert_string_equal(rt_applied_str(s), "after");
  rt_net_free(net);
}

/* Fast log rejection: a follower with a long divergent tail is repaired in one round trip per
 * term, not per entry (hints skip whole terms on both sides). */
static void scenario_fast_log_rejection(void **state) {
  (void)state;
  static const uint64_t lead[] = {1, 1, 1, 4, 4, 4, 4, 4, 4, 4, 4, 4};
  static const uint64_t foll[] = {1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3};
  rt_net *net = rt_net_new(3, O(false, false));
  preload(rt_net_node(net, 1), lead, 12, (raft_hard_state){.term = 4, .commit = 3});
  preload(rt_net_node(net, 2), foll, 18, (raft_hard_state){.term = 4, .commit = 3});
  rt_net_isolate(net, 3);
  raft_campaign(rt_net_raft(net, 1));
  rt_net_stabilize(net);
  assert_int_equal(rt_role(net, 1), RAFT_LEADER);
  rt_net_propose(net, 1, "x");
  size_t rejects = 0;
  for (size_t i = 0; i < net->delivered.n; i++) {
    const raft_message *m = &net->delivered.m[i];
    rejects += m->type == RAFT_MSG_APP_RESP && m->reject;
  }
  assert_true(rejects <= 2);
  assert_string_equal(rt_log_terms(rt_net_node(net, 2)), "1 1 1 4 4 4 4 4 4 4 4 4 5 5");
  rt_net_free(net);
}

/* Proposals by proxy: a follower forwards its proposal to the leader; with no leader it is
 * dropped. */
static void scenario_proposal_by_proxy(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O(false, false));
  assert_int_equal(rt_net_propose(net, 2, "lost"), RAFT_E_DROPPED);
  rt_net_campaign(net, 1);
  assert_int_equal(rt_net_propose(net, 2, "via2"), RAFT_OK);
  for (uint64_t i = 1; i <= 3; i++) assert_string_equal(rt_applied_str(rt_net_node(net, i)), "via2");
  assert_int_equal(rt_commit(net, 3), 2);
  rt_net_free(net);
}

/* Old messages: an append from a deposed leader's term is ignored and does not touch the log. */
static void scenario_old_messages(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O(false, false));
  rt_net_campaign(net, 1);
  rt_net_campaign(net, 2);
  rt_net_campaign(net, 1);
  assert_int_equal(rt_term(net, 1), 3);
  raft_entry e = {.term = 2, .index = 3, .data = {(uint8_t *)"old", 3}};
  rt_net_step(net, 1, (raft_message){.type = RAFT_MSG_APP, .from = 2, .to = 1, .term = 2,
                                     .log_term = 2, .index = 2, .entries = &e, .n_entries = 1});
  rt_net_propose(net, 1, "somedata");
  for (uint64_t i = 1; i <= 3; i++) {
    assert_string_equal(rt_log_terms(rt_net_node(net, i)), "1 2 3 3");
    assert_string_equal(rt_applied_str(rt_net_node(net, i)), "somedata");
  }
  rt_net_free(net);
}

/* Leader transfer to a follower so far behind that it needs a snapshot: the transfer completes
 * once the snapshot is installed. */
static void scenario_transfer_after_snapshot(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O(true, true));
  rt_net_campaign(net, 1);
  rt_net_isolate(net, 3);
  rt_net_propose(net, 1, "a");
  rt_node *l = rt_net_node(net, 1);
  assert_int_equal(mem_storage_create_snapshot(l->ms, l->applied_index, NULL, "s", 1), RAFT_OK);
  assert_int_equal(mem_storage_compact(l->ms, l->applied_index), RAFT_OK);
  rt_net_heal(net);
  rt_msgs_clear(&net->delivered);
  raft_transfer_leader(l->r, 3);
  assert_int_equal(raft_propose(l->r, "dropped", 7), RAFT_E_DROPPED);
  rt_net_stabilize(net);
  /* probe → rejection → snapshot → ack of the snapshot → TimeoutNow → election */
  size_t snaps = 0, timeouts = 0;
  for (size_t i = 0; i < net->delivered.n; i++) {
    snaps += net->delivered.m[i].type == RAFT_MSG_SNAP;
    timeouts += net->delivered.m[i].type == RAFT_MSG_TIMEOUT_NOW;
  }
  assert_int_equal(snaps, 1);
  assert_int_equal(timeouts, 1);
  assert_int_equal(rt_role(net, 3), RAFT_LEADER);
  assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
  assert_int_equal(rt_net_node(net, 3)->snap_applied, 2);
  rt_net_propose(net, 3, "b");
  assert_string_equal(rt_applied_str(rt_net_node(net, 1)), "a,b");
  rt_net_free(net);
}

/* Lossy links: with 30% of messages dropped everywhere, ticking on still commits every
 * proposal made through the leader, on every node. */
static void scenario_lossy_network_converges(void **state) {
  (void)state;
  rt_net *net = rt_net_new(5, O(true, true));
  rt_net_campaign(net, 1);
  for (uint64_t a = 1; a <= 5; a++)
    for (uint64_t b = 1; b <= 5; b++)
      if (a != b) rt_net_drop(net, a, b, 30);
  uint64_t lead = 1;
  for (int i = 0; i < 20; i++) {
    char buf[8];
    snprintf(buf, sizeof buf, "v%d", i);
    for (uint64_t k = 1; k <= 5; k++)
      if (rt_role(net, k) == RAFT_LEADER) lead = k;
    raft_propose(rt_net_raft(net, lead), buf, strlen(buf));
    rt_net_tick_all(net, 1);
  }
  rt_net_heal(net);
  rt_net_tick_all(net, 40);
  assert_int_equal(count_leaders(net), 1);
  for (uint64_t k = 2; k <= 5; k++) {
    assert_int_equal(rt_commit(net, k), rt_commit(net, 1));
    assert_string_equal(rt_applied_str(rt_net_node(net, k)), rt_applied_str(rt_net_node(net, 1)));
  }
  rt_net_free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(scenario_dueling_candidates),
      cmocka_unit_test(scenario_dueling_pre_candidates),
      cmocka_unit_test(scenario_partitioned_node_rejoins),
      cmocka_unit_test(scenario_partitioned_leader_rejoins),
      cmocka_unit_test(scenario_disruptive_follower),
      cmocka_unit_test(scenario_stuck_candidate_freed),
      cmocka_unit_test(scenario_slow_node_restored_by_snapshot),
      cmocka_unit_test(scenario_fast_log_rejection),
      cmocka_unit_test(scenario_proposal_by_proxy),
      cmocka_unit_test(scenario_old_messages),
      cmocka_unit_test(scenario_transfer_after_snapshot),
      cmocka_unit_test(scenario_lossy_network_converges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
