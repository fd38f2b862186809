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

/* Member 2 of 3 (election 100 ticks, heartbeat 10, as quorumd ticks), following leader 1 at
 * term 1 (one heartbeat heard, its answer read into out when given). */
static rt_node *follower_of_1(bool pre_vote, bool check_quorum, uint64_t seed, rt_msgs *out) {
  rt_opts o = O(pre_vote, check_quorum);
  o.election = 100;
  o.heartbeat = 10;
  o.seed = seed;
  rt_node *n = rt_node_k(2, 3, o);
  rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1});
  if (out) rt_read(n, out);
  return n;
}

/* Ticks until n becomes a pre-candidate (at most limit). */
static int ticks_to_campaign(rt_node *n, int limit) {
  int t = 0;
  while (n->r->role != RAFT_PRE_CANDIDATE && t < limit) {
    rt_ticks(n, 1);
    t++;
  }
  return t;
}

/* A follower told that its leader's process is gone forgets it: it grants a pre-vote it would
 * have ignored while in lease, and campaigns within 2 heartbeats' ticks, not an election
 * timeout. Reports naming another member, or reaching a leader or a candidate, change nothing. */
static void peer_gone_forgets_the_leader(void **state) {
  (void)state;
  for (int seed = 1; seed <= 20; seed++) {
    rt_msgs out = {0};
    rt_node *n = follower_of_1(true, true, (uint64_t)seed, &out);
    /* in lease: member 3's pre-vote is ignored */
    rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE, .from = 3, .to = 2, .term = 2});
    rt_read(n, &out);
    rt_expect_no_msgs(&out);
    /* a report about another member, or none, is ignored */
    assert_false(raft_report_peer_gone(n->r, 3));
    assert_false(raft_report_peer_gone(n->r, RAFT_NONE));
    assert_int_equal(n->r->lead, 1);
    assert_true(raft_report_peer_gone(n->r, 1));
    assert_int_equal(n->r->lead, RAFT_NONE);
    assert_int_equal(n->r->term, 1);
    assert_false(raft_report_peer_gone(n->r, 1)); /* once */
    rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE, .from = 3, .to = 2, .term = 2});
    rt_read(n, &out);
    rt_expect_msgs(&out, "2->3 MsgPreVoteResp Term:2 Log:0/0");
    assert_int_equal(n->r->term, 1); /* a pre-vote changes nothing */
    /* its own campaign comes within 2 heartbeats (20 ticks), never at once */
    int ticks = ticks_to_campaign(n, 1000);
    assert_int_equal(n->r->role, RAFT_PRE_CANDIDATE);
    assert_in_range(ticks, 1, 20);
    rt_read(n, &out);
    rt_expect_msgs(&out, "2->1 MsgPreVote Term:2 Log:0/0", "2->3 MsgPreVote Term:2 Log:0/0");
    /* a pre-candidate ignores the report */
    assert_false(raft_report_peer_gone(n->r, 1));
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* After a report, a campaign whose vote splits (the other follower campaigned at the same
 * moment and voted for itself) is followed by another within 2 to 4 heartbeats, not an
 * election timeout: RAFT_HURRIED_ELECTIONS campaigns in all, then the usual timeout. */
static void peer_gone_split_votes_are_retried_soon(void **state) {
  (void)state;
  for (int seed = 1; seed <= 10; seed++) {
    rt_msgs out = {0};
    rt_node *n = follower_of_1(true, true, (uint64_t)seed, &out);
    assert_true(raft_report_peer_gone(n->r, 1));
    assert_in_range(ticks_to_campaign(n, 1000), 1, 20);
    for (int attempt = 1; attempt <= 3; attempt++) {
      uint64_t term = n->r->term + 1;
      rt_step(n, (raft_message){.type = RAFT_MSG_PRE_VOTE_RESP, .from = 3, .to = 2, .term = term});
      assert_int_equal(n->r->role, RAFT_CANDIDATE);
      assert_int_equal(n->r->term, term);
      rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 3, .to = 2, .term = term,
                                .reject = true});
      assert_int_equal(n->r->role, RAFT_CANDIDATE); /* 1 vote, 1 refusal, 1 silent */
      rt_read(n, &out);
      int t = ticks_to_campaign(n, 1000);
      if (attempt < 3) {
        assert_in_range(t, 21, 40); /* 2 heartbeats for the round, then within 2 more */
      } else {
        assert_true(t >= 100); /* the hurried campaigns are spent */
      }
    }
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* The leader heard again after a false report: the follower follows it, and its early campaign
 * is off (the next one comes after a whole election timeout without the leader). */
static void peer_gone_then_leader_heard_again(void **state) {
  (void)state;
  rt_msgs out = {0};
  rt_node *n = follower_of_1(true, true, 42, NULL);
  assert_true(raft_report_peer_gone(n->r, 1));
  rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 1});
  assert_int_equal(n->r->lead, 1);
  rt_ticks(n, 99);
  assert_int_equal(n->r->role, RAFT_FOLLOWER);
  rt_read(n, &out);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* Without pre-vote and check-quorum an early campaign could depose a live leader (a vote bumps
 * the term; nothing makes voters refuse it): the leader is forgotten, the timer is not moved.
 * A leader ignores the report. */
static void peer_gone_without_prevote_does_not_hurry(void **state) {
  (void)state;
  for (int mode = 0; mode < 3; mode++) {
    rt_node *n = follower_of_1(mode == 1, mode == 2, 42, NULL);
    assert_true(raft_report_peer_gone(n->r, 1));
    assert_int_equal(n->r->lead, RAFT_NONE);
    rt_ticks(n, 99);
    assert_int_equal(n->r->role, RAFT_FOLLOWER);
    rt_node_free(n);
  }
  rt_node *l = rt_node_k(1, 1, O(true, true));
  raft_campaign(l->r);
  rt_msgs out = {0};
  rt_read(l, &out);
  assert_int_equal(l->r->role, RAFT_LEADER);
  assert_false(raft_report_peer_gone(l->r, 1));
  assert_int_equal(l->r->role, RAFT_LEADER);
  rt_msgs_free(&out);
  rt_node_free(l);
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
      cmocka_unit_test(peer_gone_forgets_the_leader),
      cmocka_unit_test(peer_gone_split_votes_are_retried_soon),
      cmocka_unit_test(peer_gone_then_leader_heard_again),
      cmocka_unit_test(peer_gone_without_prevote_does_not_hurry),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
