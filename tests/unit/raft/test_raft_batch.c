/* raft_propose_many: a batch of proposals travels as one append per follower (one forward from
 * a follower), lands in order on every member, and is dropped whole when there is no leader.
 * A batch carries its term: a leader of another term drops it, so that a driver that saw a
 * later term's entry committed without it may propose it again without a double. */
#include "raft_test_util.h"

/* Messages of a type from -> to that carry entries (an append that only moves the commit index
 * on does not count). */
static size_t count_type(rt_net *net, size_t since, uint8_t type, uint64_t from, uint64_t to) {
  size_t c = 0;
  for (size_t i = since; i < net->delivered.n; i++) {
    const raft_message *m = &net->delivered.m[i];
    c += m->type == type && m->from == from && m->to == to && m->n_entries > 0;
  }
  return c;
}

static void propose3(raft *r, int expect) {
  raft_buf b[3] = {{(uint8_t *)"a", 1}, {(uint8_t *)"b", 1}, {(uint8_t *)"c", 1}};
  assert_int_equal(raft_propose_many(r, b, 3), expect);
}

/* On the leader: three entries, one append message to each follower. */
static void batch_on_the_leader(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, rt_default_opts());
  rt_net_campaign(net, 1);
  size_t since = net->delivered.n;
  propose3(rt_net_raft(net, 1), RAFT_OK);
  rt_net_stabilize(net);
  assert_int_equal(count_type(net, since, RAFT_MSG_APP, 1, 2), 1);
  assert_int_equal(count_type(net, since, RAFT_MSG_APP, 1, 3), 1);
  for (uint64_t i = 1; i <= 3; i++) assert_string_equal(rt_applied_str(rt_net_node(net, i)), "a,b,c");
  assert_int_equal(rt_commit(net, 2), 4); /* the leader's empty entry, then a b c */
  rt_net_free(net);
}

/* On a follower: one forward carrying the three entries; with no leader, all are dropped. */
static void batch_by_proxy(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, rt_default_opts());
  propose3(rt_net_raft(net, 2), RAFT_E_DROPPED);
  rt_net_campaign(net, 1);
  size_t since = net->delivered.n;
  propose3(rt_net_raft(net, 2), RAFT_OK);
  rt_net_stabilize(net);
  assert_int_equal(count_type(net, since, RAFT_MSG_PROP, 2, 1), 1);
  for (uint64_t i = 1; i <= 3; i++) assert_string_equal(rt_applied_str(rt_net_node(net, i)), "a,b,c");
  assert_int_equal(raft_propose_many(rt_net_raft(net, 1), NULL, 0), RAFT_E_INVAL);
  rt_net_free(net);
}

/* A forward sent while 1 led term 2 arrives after 3 took over in term 3: 1 passes it on to 3,
 * which drops it. The batch sent again in term 3 lands once. An untagged forward (log_term 0,
 * as a member of an earlier version sends) is still taken. */
static void batch_of_an_earlier_term_is_dropped(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, rt_default_opts());
  rt_net_campaign(net, 1);
  uint64_t t1 = raft_term(rt_net_raft(net, 1));
  propose3(rt_net_raft(net, 2), RAFT_OK);
  rt_msgs held = {0};
  while (rt_handle_ready(rt_net_node(net, 2), &held)) {
  }
  assert_int_equal(held.n, 1);
  assert_int_equal(held.m[0].type, RAFT_MSG_PROP);
  assert_int_equal(held.m[0].log_term, t1);
  assert_int_equal(raft_transfer_leader(rt_net_raft(net, 1), 3), RAFT_OK);
  rt_net_stabilize(net);
  assert_int_equal(rt_role(net, 3), RAFT_LEADER);
  assert_true(raft_term(rt_net_raft(net, 3)) > t1);
  size_t since = net->delivered.n;
  rt_net_send(net, &held.m[0]);
  rt_net_stabilize(net);
  assert_int_equal(count_type(net, since, RAFT_MSG_PROP, 1, 3), 1); /* passed on, then dropped */
  for (uint64_t i = 1; i <= 3; i++) assert_string_equal(rt_applied_str(rt_net_node(net, i)), "");
  propose3(rt_net_raft(net, 2), RAFT_OK);
  rt_net_stabilize(net);
  for (uint64_t i = 1; i <= 3; i++) assert_string_equal(rt_applied_str(rt_net_node(net, i)), "a,b,c");
  held.m[0].log_term = 0;
  rt_net_send(net, &held.m[0]);
  rt_net_stabilize(net);
  for (uint64_t i = 1; i <= 3; i++)
    assert_string_equal(rt_applied_str(rt_net_node(net, i)), "a,b,c,a,b,c");
  rt_msgs_free(&held);
  rt_net_free(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(batch_on_the_leader),
      cmocka_unit_test(batch_by_proxy),
      cmocka_unit_test(batch_of_an_earlier_term_is_dropped),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
