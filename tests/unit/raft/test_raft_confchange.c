/* Membership changes, single-step (paper §6 / thesis §4.1): the conf change entry codec (L0),
 * and L1 tests of the pending conf index, effect on apply, quorum changes, a leader removing
 * itself, and nodes added fresh. */
#include "raft_test_util.h"

static rt_opts O(void) { return rt_default_opts(); }

static raft_conf_change CC(uint8_t type, uint64_t node) {
  return (raft_conf_change){.type = type, .node_id = node, .id = 77};
}

/* L0: encode/decode round trip with and without a context; the layout is fixed. */
static void conf_change_codec_round_trip(void **state) {
  (void)state;
  raft_conf_change in = {.type = RAFT_CONF_UPDATE_NODE, .node_id = 0x1122334455667788ULL,
                         .id = 42, .context = {(uint8_t *)"{\"peerURLs\":[]}", 15}};
  raft_buf b;
  assert_int_equal(raft_conf_change_encode(&in, &b), RAFT_OK);
  assert_int_equal(b.len, 22 + 15);
  static const uint8_t head[] = {1, 2, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
                                 42, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0, 0};
  assert_memory_equal(b.base, head, sizeof head);
  raft_conf_change out;
  assert_int_equal(raft_conf_change_decode(b.base, b.len, &out), RAFT_OK);
  assert_int_equal(out.type, in.type);
  assert_int_equal(out.node_id, in.node_id);
  assert_int_equal(out.id, 42);
  assert_int_equal(out.context.len, 15);
  assert_true(out.context.base == b.base + 22); /* points into the data */
  assert_memory_equal(out.context.base, in.context.base, 15);
  /* every truncation is refused */
  for (size_t k = 0; k < b.len; k++)
    assert_int_equal(raft_conf_change_decode(b.base, k, &out), RAFT_E_INVAL);
  free(b.base);
  raft_conf_change nc = CC(RAFT_CONF_ADD_NODE, 3);
  assert_int_equal(raft_conf_change_encode(&nc, &b), RAFT_OK);
  assert_int_equal(b.len, 22);
  assert_int_equal(raft_conf_change_decode(b.base, b.len, &out), RAFT_OK);
  assert_int_equal(out.context.len, 0);
  assert_null(out.context.base);
  free(b.base);
}

/* L0: malformed input is refused, never read past its end. */
static void conf_change_codec_rejects_garbage(void **state) {
  (void)state;
  uint8_t ok[22] = {1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  raft_conf_change out;
  assert_int_equal(raft_conf_change_decode(ok, sizeof ok, &out), RAFT_OK);
  uint8_t bad[22];
  memcpy(bad, ok, 22);
  bad[0] = 2; /* version */
  assert_int_equal(raft_conf_change_decode(bad, 22, &out), RAFT_E_INVAL);
  memcpy(bad, ok, 22);
  bad[1] = 3; /* type */
  assert_int_equal(raft_conf_change_decode(bad, 22, &out), RAFT_E_INVAL);
  memcpy(bad, ok, 22);
  bad[2] = 0; /* node 0 */
  assert_int_equal(raft_conf_change_decode(bad, 22, &out), RAFT_E_INVAL);
  memcpy(bad, ok, 22);
  bad[18] = 1; /* context longer than the data */
  assert_int_equal(raft_conf_change_decode(bad, 22, &out), RAFT_E_INVAL);
  uint8_t longer[23];
  memcpy(longer, ok, 22);
  longer[22] = 0; /* trailing byte not covered by the length */
  assert_int_equal(raft_conf_change_decode(longer, 23, &out), RAFT_E_INVAL);
  assert_int_equal(raft_conf_change_decode(NULL, 0, &out), RAFT_E_INVAL);
  raft_conf_change z = CC(RAFT_CONF_ADD_NODE, 0);
  raft_buf b;
  assert_int_equal(raft_conf_change_encode(&z, &b), RAFT_E_INVAL);
  /* pseudo-random garbage never crashes */
  uint64_t x = 99;
  uint8_t g[64];
  for (int i = 0; i < 10000; i++) {
    size_t len = (size_t)(x % 64);
    for (size_t k = 0; k < len; k++) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      g[k] = (uint8_t)(x >> 56);
    }
    g[0] = (uint8_t)(i & 1); /* half of them with the right version */
    int rc = raft_conf_change_decode(g, len, &out);
    assert_true(rc == RAFT_OK || rc == RAFT_E_INVAL);
    x = x * 6364136223846793005ULL + 1;
  }
}

/* §4.1: one change at a time: while a change is unapplied the leader refuses another
 * (RAFT_E_CONF_PENDING); once it is applied the next is accepted. */
static void conf_change_pending_index(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O());
  rt_net_campaign(net, 1);
  raft *r = rt_net_raft(net, 1);
  raft_conf_change a = CC(RAFT_CONF_ADD_NODE, 4);
  /* Hold the leader's ready so nothing is applied yet. */
  assert_int_equal(raft_propose_conf_change(r, &a), RAFT_OK);
  assert_int_equal(r->pending_conf_index, 2);
  raft_conf_change b = CC(RAFT_CONF_ADD_NODE, 5);
  assert_int_equal(raft_propose_conf_change(r, &b), RAFT_E_CONF_PENDING);
  rt_net_stabilize(net);
  assert_int_equal(rt_net_node(net, 1)->n_conf_applied, 1);
  assert_int_equal(r->conf.n_voters, 4);
  assert_int_equal(raft_propose_conf_change(r, &b), RAFT_OK);
  rt_net_free(net);
}

/* §4.1: a new leader sets the pending index to its last index: it refuses a change until
 * everything in its log (its no-op included) is applied. */
static void conf_change_new_leader_pending_index(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  rt_msgs out = {0};
  raft_campaign(n->r);
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  assert_int_equal(n->r->role, RAFT_LEADER);
  assert_int_equal(n->r->pending_conf_index, 0); /* last index when it became leader */
  rt_node_free(n);
  n = rt_node_k(1, 3, O());
  raft_entry e[2] = {{.term = 1, .index = 1}, {.term = 1, .index = 2}};
  mem_storage_append(n->ms, e, 2);
  raft_hard_state hs = {.term = 1};
  mem_storage_set_hard_state(n->ms, &hs);
  rt_restart(n);
  raft_campaign(n->r);
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 2});
  assert_int_equal(n->r->role, RAFT_LEADER);
  assert_int_equal(n->r->pending_conf_index, 2);
  raft_conf_change a = CC(RAFT_CONF_ADD_NODE, 4);
  assert_int_equal(raft_propose_conf_change(n->r, &a), RAFT_E_CONF_PENDING);
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 2, .index = 3});
  rt_read(n, &out);
  assert_int_equal(n->r->log.applied, 3);
  assert_int_equal(raft_propose_conf_change(n->r, &a), RAFT_OK);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §4.1: a change takes effect when applied, not when appended; the new member is then probed
 * and catches up. */
static void conf_change_effect_on_apply(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O());
  rt_net_campaign(net, 1);
  rt_net_propose(net, 1, "a");
  /* A joining node starts with the cluster's voters (the initial ones are not in the log),
   * as etcd's --initial-cluster does; it is not a voter until it applies its own addition. */
  net->nodes[4] = rt_node_new(4, (uint64_t[]){1, 2, 3}, 3, O());
  net->n = 4;
  raft *r = rt_net_raft(net, 1);
  raft_conf_change a = CC(RAFT_CONF_ADD_NODE, 4);
  assert_int_equal(raft_propose_conf_change(r, &a), RAFT_OK);
  assert_int_equal(r->conf.n_voters, 3); /* appended, not applied */
  assert_null(raft_progress_get(r, 4));
  raft_campaign(rt_net_raft(net, 4));
  assert_int_equal(rt_role(net, 4), RAFT_FOLLOWER); /* not a voter yet */
  rt_net_stabilize(net);
  assert_int_equal(r->conf.n_voters, 4);
  raft_status st;
  raft_get_status(r, &st);
  assert_int_equal(st.n_peers, 4);
  /* the new member received the log and applied the change too */
  rt_net_tick(net, 1, 1);
  assert_int_equal(rt_last(net, 4), rt_last(net, 1));
  assert_int_equal(rt_net_raft(net, 4)->conf.n_voters, 4);
  assert_string_equal(rt_applied_str(rt_net_node(net, 4)), "a");
  rt_net_free(net);
}

/* A fresh node without a configuration never campaigns. */
static void conf_change_fresh_node_stays_follower(void **state) {
  (void)state;
  rt_node *n = rt_node_new(4, NULL, 0, O());
  rt_msgs out = {0};
  rt_ticks(n, 100);
  raft_campaign(n->r);
  rt_read(n, &out);
  assert_int_equal(n->r->role, RAFT_FOLLOWER);
  assert_int_equal(n->r->term, 0);
  rt_expect_no_msgs(&out);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §4.1: removing a node shrinks the quorum: an entry waiting for it commits at once. */
static void conf_change_remove_commits_pending(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 2, O());
  rt_msgs out = {0};
  raft_campaign(n->r);
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 1});
  rt_read(n, &out);
  raft_conf_change rm = CC(RAFT_CONF_REMOVE_NODE, 2);
  assert_int_equal(raft_propose_conf_change(n->r, &rm), RAFT_OK);
  raft_propose(n->r, "hello", 5);
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 2});
  rt_read(n, &out); /* applies the removal: 1 alone commits 3 */
  assert_int_equal(n->r->conf.n_voters, 1);
  assert_int_equal(n->r->log.committed, 3);
  assert_string_equal(rt_applied_str(n), "hello");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §4.2.2: a leader that applies its own removal steps down; the rest elect a new leader. */
static void conf_change_leader_removes_itself(void **state) {
  (void)state;
  rt_net *net = rt_net_new(3, O());
  rt_net_campaign(net, 1);
  raft_conf_change rm = CC(RAFT_CONF_REMOVE_NODE, 1);
  assert_int_equal(raft_propose_conf_change(rt_net_raft(net, 1), &rm), RAFT_OK);
  rt_net_stabilize(net);
  assert_int_equal(rt_role(net, 1), RAFT_FOLLOWER);
  assert_int_equal(rt_net_raft(net, 1)->conf.n_voters, 2);
  assert_false(raft_promotable(rt_net_raft(net, 1)));
  assert_int_equal(raft_propose(rt_net_raft(net, 1), "x", 1), RAFT_E_DROPPED);
  rt_net_tick(net, 2, 20);
  assert_int_equal(rt_role(net, 2), RAFT_LEADER);
  assert_int_equal(rt_net_raft(net, 2)->conf.n_voters, 2);
  rt_net_propose(net, 2, "after");
  assert_string_equal(rt_applied_str(rt_net_node(net, 3)), "after");
  rt_net_free(net);
}

/* A node with a committed but unapplied conf change does not campaign (it could be in the
 * wrong configuration). */
static void conf_change_no_campaign_with_unapplied_change(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  raft_conf_change a = CC(RAFT_CONF_ADD_NODE, 4);
  raft_buf b;
  raft_conf_change_encode(&a, &b);
  raft_entry e[] = {{.term = 1, .index = 1}, {.term = 1, .index = 2, .type = RAFT_ENTRY_CONF_CHANGE, .data = b}};
  mem_storage_append(n->ms, e, 2);
  raft_hard_state hs = {.term = 1, .commit = 2};
  mem_storage_set_hard_state(n->ms, &hs);
  n->applied_index = 1;
  rt_restart(n);
  raft_campaign(n->r);
  assert_int_equal(n->r->role, RAFT_FOLLOWER);
  assert_int_equal(n->r->term, 1);
  rt_msgs out = {0};
  rt_read(n, &out); /* applies the change */
  assert_int_equal(n->r->conf.n_voters, 4);
  raft_campaign(n->r);
  assert_int_equal(n->r->role, RAFT_CANDIDATE);
  free(b.base);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* A conf change forwarded while one is pending becomes an empty entry on the leader; the
 * other entries of the batch still go in. */
static void conf_change_forwarded_while_pending_becomes_noop(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 1, O());
  rt_msgs out = {0};
  raft_campaign(n->r);
  rt_read(n, &out);
  raft_conf_change a = CC(RAFT_CONF_ADD_NODE, 2);
  assert_int_equal(raft_propose_conf_change(n->r, &a), RAFT_OK);
  raft_buf b;
  raft_conf_change c = CC(RAFT_CONF_ADD_NODE, 3);
  raft_conf_change_encode(&c, &b);
  raft_entry e[] = {{.type = RAFT_ENTRY_CONF_CHANGE, .data = b},
                    {.type = RAFT_ENTRY_NORMAL, .data = {(uint8_t *)"x", 1}}};
  rt_step(n, (raft_message){.type = RAFT_MSG_PROP, .from = 2, .to = 1, .entries = e, .n_entries = 2});
  assert_int_equal(raft_log_last_index(&n->r->log), 4);
  raft_entry *s;
  size_t k;
  raft_log_slice(&n->r->log, 3, 5, UINT64_MAX, &s, &k);
  assert_int_equal(k, 2);
  assert_int_equal(s[0].type, RAFT_ENTRY_NORMAL);
  assert_int_equal(s[0].data.len, 0);
  assert_int_equal(s[1].data.len, 1);
  raft_entries_free(s, k);
  free(b.base);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* A conf change forwarded in term t carries t: a leader of another term drops it (its
 * proposer proposes it again once it has applied a later term's entry), the leader of term t
 * takes it. */
static void conf_change_forward_carries_its_term(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 1, O());
  rt_msgs out = {0};
  raft_campaign(n->r);
  rt_read(n, &out);
  uint64_t t = raft_term(n->r);
  raft_buf b;
  raft_conf_change c = CC(RAFT_CONF_ADD_NODE, 3);
  raft_conf_change_encode(&c, &b);
  raft_entry e = {.type = RAFT_ENTRY_CONF_CHANGE, .data = b};
  uint64_t last = raft_log_last_index(&n->r->log);
  rt_step(n, (raft_message){.type = RAFT_MSG_PROP, .from = 2, .to = 1, .entries = &e,
                            .n_entries = 1, .log_term = t + 1});
  assert_int_equal(raft_log_last_index(&n->r->log), last);
  rt_step(n, (raft_message){.type = RAFT_MSG_PROP, .from = 2, .to = 1, .entries = &e,
                            .n_entries = 1, .log_term = t});
  assert_int_equal(raft_log_last_index(&n->r->log), last + 1);
  free(b.base);
  rt_msgs_free(&out);
  rt_node_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(conf_change_codec_round_trip),
      cmocka_unit_test(conf_change_codec_rejects_garbage),
      cmocka_unit_test(conf_change_pending_index),
      cmocka_unit_test(conf_change_new_leader_pending_index),
      cmocka_unit_test(conf_change_effect_on_apply),
      cmocka_unit_test(conf_change_fresh_node_stays_follower),
      cmocka_unit_test(conf_change_remove_commits_pending),
      cmocka_unit_test(conf_change_leader_removes_itself),
      cmocka_unit_test(conf_change_no_campaign_with_unapplied_change),
      cmocka_unit_test(conf_change_forwarded_while_pending_becomes_noop),
      cmocka_unit_test(conf_change_forward_carries_its_term),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
