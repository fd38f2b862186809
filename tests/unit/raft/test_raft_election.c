/* L1: pre-vote (thesis §9.6), check-quorum (thesis §6.2) and the lease check (thesis §4.2.3),
 * plus the answers to stale-term messages that un-stick nodes whose term ran ahead. */
#include "raft_test_util.h"

static rt_opts O(bool pre_vote, bool check_quorum) {
  rt_opts o = rt_default_opts();
  o.pre_vote = pre_vote;
  o.check_quorum = check_quorum;
  return o;
}

/* §9.6: a pre-candidate asks with term+1 but keeps its term and records no vote. */
static void prevote_does_not_bump_term(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O(true, false));
  rt_msgs out = {0};
  raft_campaign(n->r);
  rt_read(n, &out);
  assert_int_equal(n->r->role, RAFT_PRE_CANDIDATE);
  assert_int_equal(n->r->term, 0);
  assert_int_equal(n->r->vote, RAFT_NONE);
  rt_expect_msgs(&out, "1->2 MsgPreVote Term:1 Log:0/0", "1->3 MsgPreVote Term:1 Log:0/0");
  /* a granted pre-vote carries the request's (future) term and does not move ours */
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  assert_int_equal(n->r->role, RAFT_CANDIDATE);
  assert_int_equal(n->r->term, 1);
  assert_int_equal(n->r->vote, 1);
  rt_read(n, &out);
  rt_expect_msgs(&out, "1->2 MsgVote Term:1 Log:0/0", "1->3 MsgVote Term:1 Log:0/0");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §9.6: a voter grants a pre-vote for a future term without changing its term or vote, and
 * answers with the request's term; a rejection carries its own term. */
static void prevote_voter_answers_with_request_term(void **state) {
  (void)state;
  rt_node *n = rt_node_k(2, 3, O(true, false));
  raft_hard_state hs = {.term = 2, .vote = 3};
  raft_entry e = {.term = 2, .index = 1};
  mem_storage_append(n->ms, &e, 1);
  mem_storage_set_hard_state(n->ms, &hs);
  rt_restart(n);
  rt_msgs out = {0};
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE, .from = 1, .to = 2, .term = 3,
                            .log_term = 2, .index = 1});
  rt_read(n, &out);
  rt_expect_msgs(&out, "2->1 MsgPreVoteResp Term:3 Log:0/0");
  assert_int_equal(n->r->term, 2);
  assert_int_equal(n->r->vote, 3);
  /* a less up-to-date pre-candidate is rejected with our term */
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE, .from = 1, .to = 2, .term = 3,
                            .log_term = 1, .index = 5});
  rt_read(n, &out);
  rt_expect_msgs(&out, "2->1 MsgPreVoteResp Term:2 Log:0/0 Rejected");
  /* a stale pre-vote too */
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE, .from = 1, .to = 2, .term = 1,
                            .log_term = 2, .index = 1});
  rt_read(n, &out);
  rt_expect_msgs(&out, "2->1 MsgPreVoteResp Term:2 Log:0/0 Rejected");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §9.6: a pre-candidate that loses goes back to follower at its unchanged term; a rejection
 * from a higher term moves it to that term. */
static void prevote_lost_returns_to_follower(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O(true, false));
  raft_campaign(n->r);
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE_RESP, .from = 2, .to = 1, .term = 0,
                            .reject = true});
  assert_int_equal(n->r->role, RAFT_PRE_CANDIDATE);
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE_RESP, .from = 3, .to = 1, .term = 0,
                            .reject = true});
  assert_int_equal(n->r->role, RAFT_FOLLOWER);
  assert_int_equal(n->r->term, 0);
  raft_campaign(n->r);
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE_RESP, .from = 2, .to = 1, .term = 5,
                            .reject = true});
  assert_int_equal(n->r->role, RAFT_FOLLOWER);
  assert_int_equal(n->r->term, 5);
  rt_node_free(n);
}

/* §6.2: a leader that did not hear from a quorum within an election timeout steps down. */
static void check_quorum_leader_steps_down(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O(false, true));
  rt_msgs out = {0};
  raft_campaign(n->r);
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  assert_int_equal(n->r->role, RAFT_LEADER);
  /* the first interval: followers count as active from the election */
  rt_ticks(n, 10);
  assert_int_equal(n->r->role, RAFT_LEADER);
  /* 2 answers during the second interval: still a quorum */
  rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT_RESP, .from = 2, .to = 1, .term = 1});
  rt_ticks(n, 10);
  assert_int_equal(n->r->role, RAFT_LEADER);
  /* nobody answers during the third: step down */
  rt_ticks(n, 10);
  assert_int_equal(n->r->role, RAFT_FOLLOWER);
  assert_int_equal(n->r->term, 1);
  assert_int_equal(n->r->lead, RAFT_NONE);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §4.2.3: with check-quorum, a node that heard from its leader within the election timeout
 * ignores a higher-term vote (no term change, no answer); after the timeout it considers it. */
static void check_quorum_lease_ignores_disruptive_votes(void **state) {
  (void)state;
  rt_node *n = rt_node_k(2, 3, O(false, true));
  rt_msgs out = {0};
  rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1});
  rt_read(n, &out);
  for (int pre = 0; pre < 2; pre++) {
    rt_step(n, (raft_message){.type = pre ? RAFT_MSG_PRE_VOTE : RAFT_MSG_VOTE, .from = 3, .to = 2,
                              .term = 2});
    rt_read(n, &out);
    rt_expect_no_msgs(&out);
    assert_int_equal(n->r->term, 1);
    assert_int_equal(n->r->lead, 1);
  }
  /* a transfer campaign passes the lease */
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE, .from = 3, .to = 2, .term = 2,
                            .context = {(uint8_t *)"CampaignTransfer", 16}});
  rt_read(n, &out);
  rt_expect_msgs(&out, "2->3 MsgVoteResp Term:2 Log:0/0");
  assert_int_equal(n->r->term, 2);
  /* lease expired: an ordinary vote is considered */
  rt_node_free(n);
  n = rt_node_k(2, 3, O(false, true));
  rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1});
  rt_read(n, &out);
  n->r->randomized_election_timeout = 100; /* keep it from campaigning itself */
  rt_ticks(n, 10);
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE, .from = 3, .to = 2, .term = 2});
  rt_read(n, &out);
  rt_expect_msgs(&out, "2->3 MsgVoteResp Term:2 Log:0/0");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* With pre-vote or check-quorum, an APP or HEARTBEAT from a lower term gets an empty APP_RESP
 * with our term (so a stale leader steps down); without either it is ignored. */
static void stale_leader_gets_app_resp(void **state) {
  (void)state;
  for (int mode = 0; mode < 3; mode++) {
    rt_node *n = rt_node_k(2, 3, O(mode == 1, mode == 2));
    raft_hard_state hs = {.term = 5};
    mem_storage_set_hard_state(n->ms, &hs);
    rt_restart(n);
    rt_msgs out = {0};
    rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3});
    rt_step(n, (raft_message){.type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 3});
    rt_read(n, &out);
    if (mode == 0)
      rt_expect_no_msgs(&out);
    else
      rt_expect_msgs(&out, "2->1 MsgAppResp Term:5 Log:0/0", "2->1 MsgAppResp Term:5 Log:0/0");
    assert_int_equal(n->r->term, 5);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §5.2 + §9.6: a candidate ignores votes answers of the other kind and from stale terms. */
static void candidate_ignores_mismatched_responses(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O(false, false));
  raft_campaign(n->r);
  rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  assert_int_equal(n->r->role, RAFT_CANDIDATE);
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  assert_int_equal(n->r->role, RAFT_LEADER);
  rt_node_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(prevote_does_not_bump_term),
      cmocka_unit_test(prevote_voter_answers_with_request_term),
      cmocka_unit_test(prevote_lost_returns_to_follower),
      cmocka_unit_test(check_quorum_leader_steps_down),
      cmocka_unit_test(check_quorum_lease_ignores_disruptive_votes),
      cmocka_unit_test(stale_leader_gets_app_resp),
      cmocka_unit_test(candidate_ignores_mismatched_responses),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
