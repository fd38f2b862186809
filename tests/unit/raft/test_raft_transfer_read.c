/* L1: leader transfer (thesis §3.10) and ReadIndex (thesis §6.4) on a small network. */
#include "raft_test_util.h"

static rt_opts O(void) {
  rt_opts o = rt_default_opts();
  o.check_quorum = true;
  o.pre_vote = true;
  return o;
}

/* §3.10: to an up-to-date follower: TimeoutNow at once; it campaigns past the lease and
 * pre-vote, and wins. */
static void transfer_to_up_to_date_follower(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O());
  rt_net_campaign(net, 1);
  assert_int_equal(rt_role(net, 1), RAFT_LEADER);
  rt_msgs_clear(&net->delivered);
  assert_int_equal(raft_transfer_leader(rt_net_raft(net, 1), 2), RAFT_OK);
  rt_net_stabilize(net);
  assert_string_equal(rt_desc(&net->delivered.m[0]), "1->2 MsgTimeoutNow Term:1 Log:0/0");
  assert_string_equal(rt_desc(&net->delivered.m[1]),
                      "2->1 MsgVote Term:2 Log:1/1 Context:\"CampaignTransfer\"");
  assert_int_equal(rt_role(net, 2), RAFT_LEADER);
  assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
  assert_int_equal(rt_net_raft(net, 1)->lead, 2);
  assert_int_equal(rt_term(net, 2), 2);
  rt_net_free(net);
}

/* §3.10: to a slow follower: the leader first catches it up, then sends TimeoutNow;
 * proposals are dropped meanwhile. */
static void transfer_to_slow_follower(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O());
  rt_net_campaign(net, 1);
  rt_net_isolate(net, 3);
  rt_net_propose(net, 1, "a");
  rt_net_propose(net, 1, "b");
  rt_net_heal(net);
  rt_net_cut(net, 1, 3); /* hold 3 behind while the transfer starts */
  raft *r = rt_net_raft(net, 1);
  raft_transfer_leader(r, 3);
  assert_int_equal(r->lead_transferee, 3);
  assert_int_equal(raft_propose(r, "dropped", 7), RAFT_E_DROPPED);
  rt_net_stabilize(net);
  assert_int_equal(rt_role(net, 1), RAFT_LEADER); /* nothing reached 3 */
  rt_net_heal(net);
  rt_net_tick(net, 1, 1); /* heartbeat → response → catch-up → TimeoutNow */
  assert_int_equal(rt_role(net, 3), RAFT_LEADER);
  assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
  rt_net_propose(net, 3, "c");
  assert_string_equal(rt_applied_str(rt_net_node(net, 1)), "a,b,c");
  rt_net_free(net);
}

/* §3.10: a transfer that does not finish within an election timeout is aborted; proposals
 * are accepted again. */
static void transfer_times_out(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O());
  rt_net_campaign(net, 1);
  rt_net_isolate(net, 3);
  raft *r = rt_net_raft(net, 1);
  raft_transfer_leader(r, 3);
  rt_net_stabilize(net);
  assert_int_equal(r->lead_transferee, 3);
  for (int i = 0; i < 9; i++) raft_tick(r);
  assert_int_equal(r->lead_transferee, 3);
  raft_tick(r);
  assert_int_equal(r->lead_transferee, RAFT_NONE);
  assert_int_equal(rt_role(net, 1), RAFT_LEADER);
  assert_int_equal(raft_propose(r, "ok", 2), RAFT_OK);
  rt_net_free(net);
}

/* §3.10: transfers to itself or to a non-member are ignored; a second transfer to another
 * node replaces the first; a follower can ask for itself. */
static void transfer_requests(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O());
  rt_net_campaign(net, 1);
  raft *r = rt_net_raft(net, 1);
  raft_transfer_leader(r, 1);
  assert_int_equal(r->lead_transferee, RAFT_NONE);
  raft_transfer_leader(r, 9);
  assert_int_equal(r->lead_transferee, RAFT_NONE);
  assert_int_equal(raft_transfer_leader(rt_net_raft(net, 2), 3), RAFT_E_NOT_LEADER);
  assert_int_equal(raft_transfer_leader(rt_net_raft(net, 2), 2), RAFT_OK);
  rt_net_stabilize(net);
  assert_int_equal(rt_role(net, 2), RAFT_LEADER);
  rt_net_free(net);
}

/* §6.4: a single-node leader answers a read at once with its commit index. */
static void read_index_single_node(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 1, O());
  rt_msgs out = {0};
  raft_campaign(n->r);
  rt_read(n, &out);
  raft_propose(n->r, "a", 1);
  rt_read(n, &out);
  assert_int_equal(raft_read_index(n->r, "r1", 2), RAFT_OK);
  rt_read(n, &out);
  assert_int_equal(n->reads_ctx.n, 1);
  assert_int_equal(n->reads_ctx.m[0].index, 2);
  assert_memory_equal(n->reads_ctx.m[0].context.base, "r1", 2);
  assert_int_equal(raft_read_index(n->r, "", 0), RAFT_E_INVAL);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §6.4 (etcd#7331): a new leader holds reads until it committed an entry of its own term;
 * then one heartbeat round with the context confirms it and the read is served at the commit
 * index. A duplicate pending context is ignored. */
static void read_index_waits_for_own_term_commit(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  rt_msgs out = {0};
  raft_campaign(n->r);
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  assert_int_equal(n->r->role, RAFT_LEADER);
  rt_read(n, &out);
  assert_int_equal(raft_read_index(n->r, "r1", 2), RAFT_OK);
  rt_read(n, &out);
  rt_expect_no_msgs(&out); /* queued */
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 1});
  rt_read(n, &out);
  assert_int_equal(n->r->log.committed, 1);
  assert_int_equal(rt_count(&out, RAFT_MSG_HEARTBEAT, 0), 2);
  assert_string_equal(rt_desc(&out.m[0]), "1->2 MsgHeartbeat Term:1 Log:0/0 Commit:1 Context:\"r1\"");
  assert_int_equal(raft_read_index(n->r, "r1", 2), RAFT_OK); /* duplicate: ignored */
  rt_read(n, &out);
  rt_expect_no_msgs(&out);
  assert_int_equal(n->reads_ctx.n, 0);
  rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT_RESP, .from = 3, .to = 1, .term = 1,
                            .context = {(uint8_t *)"r1", 2}});
  rt_read(n, &out);
  assert_int_equal(n->reads_ctx.n, 1);
  assert_int_equal(n->reads_ctx.m[0].index, 1);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §6.4: a follower forwards the read to the leader and gets the read state from its answer;
 * with no leader it is dropped. A leader change drops pending reads. */
static void read_index_from_follower(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O());
  assert_int_equal(raft_read_index(rt_net_raft(net, 2), "x", 1), RAFT_E_DROPPED);
  rt_net_campaign(net, 1);
  assert_int_equal(raft_read_index(rt_net_raft(net, 2), "r2", 2), RAFT_OK);
  rt_net_stabilize(net);
  rt_node *f = rt_net_node(net, 2);
  assert_int_equal(f->reads_ctx.n, 1);
  assert_int_equal(f->reads_ctx.m[0].index, rt_commit(net, 1));
  assert_memory_equal(f->reads_ctx.m[0].context.base, "r2", 2);
  /* a read pending at a leader that loses its quorum is dropped when it steps down */
  rt_net_isolate(net, 1);
  raft_read_index(rt_net_raft(net, 1), "r3", 2);
  rt_net_stabilize(net);
  assert_int_equal(rt_net_raft(net, 1)->ro.n, 1);
  rt_net_tick(net, 1, 20);
  assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
  assert_int_equal(rt_net_raft(net, 1)->ro.n, 0);
  assert_int_equal(rt_net_node(net, 1)->reads_ctx.n, 0);
  rt_net_free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(transfer_to_up_to_date_follower),
      cmocka_unit_test(transfer_to_slow_follower),
      cmocka_unit_test(transfer_times_out),
      cmocka_unit_test(transfer_requests),
      cmocka_unit_test(read_index_single_node),
      cmocka_unit_test(read_index_waits_for_own_term_commit),
      cmocka_unit_test(read_index_from_follower),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
