/* L1: one test per claim of the Raft paper's §5 (raft.md §6 L1), each on one core driven by
 * step and tick, asserting its state and its exact outgoing messages. Messages are compared in
 * raft_describe_message's text: "from->to Type Term:T Log:logterm/index [Commit:c]
 * [Entries:[term/index ...]]". */
#include "raft_test_util.h"

static rt_opts O(void) { return rt_default_opts(); }

/* Makes node n (of 1..k) leader of a new term through a vote from 2, and drains it. */
static void make_leader(rt_node *n, rt_msgs *out) {
  assert_int_equal(raft_campaign(n->r), RAFT_OK);
  rt_read(n, out);
  if (n->r->role != RAFT_LEADER) {
    rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = n->id, .term = n->r->term});
    rt_read(n, out);
  }
  assert_int_equal(n->r->role, RAFT_LEADER);
}

/* Preloads a node's storage with entries of the given terms and hard state, and restarts it. */
static void preload(rt_node *n, const uint64_t *terms, size_t k, raft_hard_state hs) {
  raft_entry ents[32];
  for (size_t i = 0; i < k; i++) ents[i] = (raft_entry){.term = terms[i], .index = i + 1};
  assert_int_equal(mem_storage_append(n->ms, ents, k), RAFT_OK);
  mem_storage_set_hard_state(n->ms, &hs);
  rt_restart(n);
}

/* §5.1: a server that sees a higher term in any message adopts it and becomes follower
 * (leader of the message's term when it is an append/heartbeat). */
static void paper_update_term_from_message(void **state) {
  (void)state;
  for (int role = 0; role < 3; role++) {
    rt_node *n = rt_node_k(1, 3, O());
    rt_msgs out = {0};
    if (role == 1) {
      raft_campaign(n->r);
      assert_int_equal(n->r->role, RAFT_CANDIDATE);
    } else if (role == 2) {
      make_leader(n, &out);
    }
    rt_step(n, (raft_message){.type = RAFT_MSG_APP, .from = 2, .to = 1, .term = 5});
    assert_int_equal(n->r->term, 5);
    assert_int_equal(n->r->role, RAFT_FOLLOWER);
    assert_int_equal(n->r->lead, 2);
    /* a vote request of a higher term: follower with no leader */
    rt_step(n, (raft_message){.type = RAFT_MSG_VOTE, .from = 3, .to = 1, .term = 6, .index = 9,
                              .log_term = 9});
    assert_int_equal(n->r->term, 6);
    assert_int_equal(n->r->lead, RAFT_NONE);
    assert_int_equal(n->r->vote, 3);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §5.1: a request with a stale term is rejected (ignored without pre-vote/check-quorum). */
static void paper_reject_stale_term_message(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  preload(n, NULL, 0, (raft_hard_state){.term = 2});
  rt_msgs out = {0};
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP, .from = 2, .to = 1, .term = 1, .commit = 0});
  rt_read(n, &out);
  rt_expect_no_msgs(&out);
  assert_int_equal(n->r->term, 2);
  assert_int_equal(n->r->lead, RAFT_NONE);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §5.2: servers start as followers. */
static void paper_start_as_follower(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  raft_status st = rt_status(n);
  assert_int_equal(st.role, RAFT_FOLLOWER);
  assert_int_equal(st.term, 0);
  assert_int_equal(st.lead, RAFT_NONE);
  assert_string_equal(raft_role_name(st.role), "StateFollower");
  rt_node_free(n);
}

/* §5.2: the leader sends heartbeats (with commit = min(match, commit)) every heartbeat_tick. */
static void paper_leader_bcast_beat(void **state) {
  (void)state;
  rt_opts o = O();
  o.heartbeat = 2;
  rt_node *n = rt_node_k(1, 3, o);
  rt_msgs out = {0};
  make_leader(n, &out);
  rt_ticks(n, 1);
  rt_read(n, &out);
  rt_expect_no_msgs(&out);
  rt_ticks(n, 1);
  rt_read(n, &out);
  rt_expect_msgs(&out, "1->2 MsgHeartbeat Term:1 Log:0/0", "1->3 MsgHeartbeat Term:1 Log:0/0");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §5.2: a follower (or candidate) that hears nothing for an election timeout starts an
 * election: term+1, votes for itself, RequestVote to all others with its last index/term. */
static void paper_election_timeout_starts_election(void **state) {
  (void)state;
  for (int cand = 0; cand < 2; cand++) {
    rt_node *n = rt_node_k(1, 3, O());
    preload(n, (uint64_t[]){1, 1}, 2, (raft_hard_state){.term = 1});
    rt_msgs out = {0};
    rt_read(n, &out);
    if (cand) {
      raft_campaign(n->r);
      rt_read(n, &out);
      assert_int_equal(n->r->term, 2);
    }
    uint64_t t0 = n->r->term;
    rt_ticks(n, 2 * 10);
    rt_read(n, &out);
    assert_int_equal(n->r->role, RAFT_CANDIDATE);
    assert_int_equal(n->r->term, t0 + 1);
    assert_int_equal(n->r->vote, 1);
    char w2[64], w3[64];
    snprintf(w2, sizeof w2, "1->2 MsgVote Term:%llu Log:1/2", (unsigned long long)(t0 + 1));
    snprintf(w3, sizeof w3, "1->3 MsgVote Term:%llu Log:1/2", (unsigned long long)(t0 + 1));
    rt_expect_msgs(&out, w2, w3);
    raft_hard_state hs;
    mem_storage_hard_state(n->ms, &hs);
    assert_int_equal(hs.term, t0 + 1); /* persisted before the votes went out */
    assert_int_equal(hs.vote, 1);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §5.2: a candidate wins with votes from a majority, loses with a majority of rejections, and
 * stays candidate otherwise (one round of RPCs). */
static void paper_leader_election_in_one_round(void **state) {
  (void)state;
  struct {
    size_t size;
    int votes[5]; /* per peer 2..: 1 grant, 0 reject, -1 none */
    uint8_t want;
  } t[] = {
      {1, {0}, RAFT_LEADER},
      {3, {1, 1}, RAFT_LEADER},
      {3, {1, -1}, RAFT_LEADER},
      {5, {1, 1, 1, 1}, RAFT_LEADER},
      {5, {1, 1, -1, -1}, RAFT_LEADER},
      {3, {-1, -1}, RAFT_CANDIDATE},
      {5, {1, -1, -1, -1}, RAFT_CANDIDATE},
      {3, {0, 0}, RAFT_FOLLOWER},
      {5, {0, 0, 0, 0}, RAFT_FOLLOWER},
      {5, {1, 0, 0, 0}, RAFT_FOLLOWER},
      {5, {1, 0, 0, -1}, RAFT_CANDIDATE},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    rt_node *n = rt_node_k(1, t[i].size, O());
    raft_campaign(n->r);
    for (size_t p = 0; p + 1 < t[i].size; p++) {
      if (t[i].votes[p] < 0) continue;
      rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = p + 2, .to = 1, .term = 1,
                                .reject = t[i].votes[p] == 0});
    }
    assert_int_equal(n->r->role, t[i].want);
    assert_int_equal(n->r->term, 1);
    rt_node_free(n);
  }
}

/* §5.2: each server votes for at most one candidate per term (first come, first served). */
static void paper_follower_vote(void **state) {
  (void)state;
  struct {
    uint64_t vote, nvote;
    bool reject;
  } t[] = {{RAFT_NONE, 2, false}, {RAFT_NONE, 3, false}, {2, 2, false},
           {3, 3, false},         {2, 3, true},          {3, 2, true}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    rt_node *n = rt_node_k(1, 3, O());
    preload(n, NULL, 0, (raft_hard_state){.term = 1, .vote = t[i].vote});
    rt_msgs out = {0};
    rt_step(n, (raft_message){.type = RAFT_MSG_VOTE, .from = t[i].nvote, .to = 1, .term = 1});
    rt_read(n, &out);
    char w[64];
    snprintf(w, sizeof w, "1->%llx MsgVoteResp Term:1 Log:0/0%s", (unsigned long long)t[i].nvote,
             t[i].reject ? " Rejected" : "");
    rt_expect_msgs(&out, w);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §5.2: a candidate that receives an append from a leader of its term (or higher) returns to
 * follower. */
static void paper_candidate_fallback(void **state) {
  (void)state;
  for (uint64_t term = 1; term <= 2; term++) {
    rt_node *n = rt_node_k(1, 3, O());
    raft_campaign(n->r);
    assert_int_equal(n->r->role, RAFT_CANDIDATE);
    rt_step(n, (raft_message){.type = RAFT_MSG_APP, .from = 2, .to = 1, .term = term});
    assert_int_equal(n->r->role, RAFT_FOLLOWER);
    assert_int_equal(n->r->term, term);
    assert_int_equal(n->r->lead, 2);
    rt_node_free(n);
  }
}

/* §5.2: election timeouts are randomized in [T, 2T), and differ between nodes. */
static void paper_election_timeout_randomized(void **state) {
  (void)state;
  bool seen[20] = {false};
  rt_node *a = rt_node_k(1, 3, O());
  for (int i = 0; i < 200; i++) {
    raft_become_follower(a->r, a->r->term + 1, RAFT_NONE);
    unsigned t = a->r->randomized_election_timeout;
    assert_true(t >= 10 && t < 20);
    seen[t] = true;
    /* the node campaigns exactly when its timeout passes */
    unsigned k = 0;
    while (a->r->role == RAFT_FOLLOWER) {
      raft_tick(a->r);
      k++;
    }
    assert_int_equal(k, t);
  }
  for (int t = 10; t < 20; t++) assert_true(seen[t]);
  rt_node_free(a);
  /* Nodes given the same seed still draw different timeouts (the id is mixed in). */
  unsigned differ = 0;
  for (uint64_t seed = 1; seed <= 100; seed++) {
    rt_opts o = O();
    o.seed = seed;
    rt_node *x = rt_node_k(1, 3, o), *y = rt_node_k(2, 3, o);
    if (x->r->randomized_election_timeout != y->r->randomized_election_timeout) differ++;
    rt_node_free(x);
    rt_node_free(y);
  }
  assert_true(differ > 70);
}

/* §5.3: the leader appends a proposal to its log and sends it to every follower. */
static void paper_leader_start_replication(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  rt_msgs out = {0};
  make_leader(n, &out);
  /* followers acknowledge the no-op entry 1 */
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 1});
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 3, .to = 1, .term = 1, .index = 1});
  rt_read(n, &out);
  assert_int_equal(n->r->log.committed, 1);
  assert_int_equal(raft_propose(n->r, "some data", 9), RAFT_OK);
  assert_int_equal(raft_log_last_index(&n->r->log), 2);
  rt_read(n, &out);
  rt_expect_msgs(&out, "1->2 MsgApp Term:1 Log:1/1 Commit:1 Entries:[1/2 EntryNormal \"some data\"]",
                 "1->3 MsgApp Term:1 Log:1/1 Commit:1 Entries:[1/2 EntryNormal \"some data\"]");
  assert_int_equal(n->r->log.committed, 1);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §5.3: an entry is committed once a majority stored it; the leader then applies it and tells
 * followers the new commit index in its next messages. */
static void paper_leader_commit_entry(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  rt_msgs out = {0};
  make_leader(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 1});
  rt_read(n, &out);
  raft_propose(n->r, "some data", 9);
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 2});
  rt_read(n, &out);
  assert_int_equal(n->r->log.committed, 2);
  assert_string_equal(rt_applied_str(n), "some data");
  /* 2 is up to date: an empty APP carries the commit; 3 (probing) gets nothing more yet */
  rt_expect_msgs(&out, "1->2 MsgApp Term:1 Log:1/2 Commit:2");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §5.3: the leader commits an entry once a majority (counting itself) acknowledged it. */
static void paper_leader_acknowledge_commit(void **state) {
  (void)state;
  struct {
    size_t size;
    uint64_t acks[4];
    size_t nacks;
    bool committed;
  } t[] = {
      {1, {0}, 0, true},       {3, {0}, 0, false},     {3, {2}, 1, true},
      {3, {2, 3}, 2, true},    {5, {0}, 0, false},     {5, {2}, 1, false},
      {5, {2, 3}, 2, true},    {5, {2, 3, 4}, 3, true},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    rt_node *n = rt_node_k(1, t[i].size, O());
    rt_msgs out = {0};
    raft_campaign(n->r);
    rt_read(n, &out);
    for (uint64_t p = 2; p <= t[i].size; p++)
      rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = p, .to = 1, .term = 1});
    rt_read(n, &out);
    assert_int_equal(n->r->role, RAFT_LEADER);
    raft_propose(n->r, "x", 1);
    rt_read(n, &out);
    for (size_t k = 0; k < t[i].nacks; k++)
      rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = t[i].acks[k], .to = 1,
                                .term = 1, .index = 2});
    rt_read(n, &out);
    assert_int_equal(n->r->log.committed >= 2, t[i].committed);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §5.3: committing an entry also commits every preceding entry, including those of earlier
 * leaders. */
static void paper_leader_commit_preceding_entries(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  preload(n, (uint64_t[]){2, 2, 2}, 3, (raft_hard_state){.term = 2});
  rt_msgs out = {0};
  make_leader(n, &out);
  assert_int_equal(n->r->term, 3);
  raft_propose(n->r, "some data", 9);
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 3, .index = 5});
  rt_read(n, &out);
  assert_int_equal(n->r->log.committed, 5);
  assert_int_equal(n->applied_index, 5);
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §5.3: a follower learns the commit index from the leader's appends and applies the entries
 * up to it, in order. */
static void paper_follower_commit_entry(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  rt_msgs out = {0};
  raft_entry ents[] = {{.term = 1, .index = 1, .data = {(uint8_t *)"a", 1}},
                       {.term = 1, .index = 2, .data = {(uint8_t *)"b", 1}}};
  raft_message m = {.type = RAFT_MSG_APP, .from = 2, .to = 1, .term = 1, .entries = ents,
                    .n_entries = 2, .commit = 1};
  rt_step(n, m);
  assert_int_equal(n->r->log.committed, 1);
  rt_read(n, &out);
  assert_string_equal(rt_applied_str(n), "a");
  rt_expect_msgs(&out, "1->2 MsgAppResp Term:1 Log:0/2");
  rt_step(n, (raft_message){.type = RAFT_MSG_HEARTBEAT, .from = 2, .to = 1, .term = 1, .commit = 2});
  rt_read(n, &out);
  assert_string_equal(rt_applied_str(n), "a,b");
  rt_expect_msgs(&out, "1->2 MsgHeartbeatResp Term:1 Log:0/0");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §5.3: a follower refuses an append whose previous (index, term) it does not hold, with a
 * hint; it accepts one that matches. */
static void paper_follower_check_msg_app(void **state) {
  (void)state;
  struct {
    uint64_t term, index;
    const char *want;
  } t[] = {
      {0, 0, "1->2 MsgAppResp Term:2 Log:0/1"}, /* below commit: answer with commit */
      {1, 1, "1->2 MsgAppResp Term:2 Log:0/1"},
      {2, 2, "1->2 MsgAppResp Term:2 Log:0/2"},
      {1, 2, "1->2 MsgAppResp Term:2 Log:0/2 Rejected (Hint: 1/1)"}, /* term mismatch */
      {3, 3, "1->2 MsgAppResp Term:2 Log:0/3 Rejected (Hint: 2/2)"}, /* index beyond */
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    rt_node *n = rt_node_k(1, 3, O());
    preload(n, (uint64_t[]){1, 2}, 2, (raft_hard_state){.term = 2, .commit = 1});
    rt_msgs out = {0};
    rt_step(n, (raft_message){.type = RAFT_MSG_APP, .from = 2, .to = 1, .term = 2,
                              .log_term = t[i].term, .index = t[i].index});
    rt_read(n, &out);
    rt_expect_msgs(&out, t[i].want);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §5.3: a follower deletes a conflicting entry and all that follow, then appends the new ones;
 * entries it already holds stay. */
static void paper_follower_append_entries(void **state) {
  (void)state;
  struct {
    uint64_t index, term;
    uint64_t ents[3];
    size_t n;
    const char *want;
  } t[] = {
      {2, 2, {3}, 1, "1 2 3"},
      {1, 1, {3, 4}, 2, "1 3 4"},
      {0, 0, {1}, 1, "1 2"},
      {0, 0, {3}, 1, "3"},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    rt_node *n = rt_node_k(1, 3, O());
    preload(n, (uint64_t[]){1, 2}, 2, (raft_hard_state){.term = 1});
    raft_entry ents[3];
    for (size_t k = 0; k < t[i].n; k++)
      ents[k] = (raft_entry){.term = t[i].ents[k], .index = t[i].index + 1 + k};
    rt_step(n, (raft_message){.type = RAFT_MSG_APP, .from = 2, .to = 1, .term = 2,
                              .log_term = t[i].term, .index = t[i].index, .entries = ents,
                              .n_entries = t[i].n});
    assert_string_equal(rt_log_terms(n), t[i].want);
    rt_msgs out = {0};
    rt_read(n, &out);
    /* the driver truncated its stored suffix too */
    rt_restart(n);
    assert_string_equal(rt_log_terms(n), t[i].want);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §5.3 Figure 7: a new leader (term 8) brings each of the six follower logs (a)-(f) into
 * agreement with its own. */
static void paper_leader_sync_follower_log_figure7(void **state) {
  (void)state;
  static const uint64_t lead[] = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  struct {
    uint64_t t[12];
    size_t n;
  } f[] = {
      {{1, 1, 1, 4, 4, 5, 5, 6, 6}, 9},           /* (a) missing one */
      {{1, 1, 1, 4}, 4},                          /* (b) missing many */
      {{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6}, 11},    /* (c) an extra uncommitted entry */
      {{1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7}, 12}, /* (d) extra entries of a later term */
      {{1, 1, 1, 4, 4, 4, 4}, 7},                 /* (e) missing and extra */
      {{1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 11},    /* (f) a divergent tail of two terms */
  };
  for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
    rt_net *net = rt_net_new(3, O());
    preload(rt_net_node(net, 1), lead, 10, (raft_hard_state){.term = 7, .commit = 10});
    preload(rt_net_node(net, 2), f[i].t, f[i].n, (raft_hard_state){.term = 6});
    rt_net_isolate(net, 3);
    raft_campaign(rt_net_raft(net, 1));
    rt_net_stabilize(net);
    /* (c)/(d) may refuse the vote; 3 stands in */
    if (rt_role(net, 1) != RAFT_LEADER)
      rt_net_step(net, 1, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 3, .to = 1,
                                          .term = rt_term(net, 1)});
    assert_int_equal(rt_role(net, 1), RAFT_LEADER);
    assert_int_equal(rt_term(net, 1), 8);
    rt_net_propose(net, 1, "x");
    char want[128];
    snprintf(want, sizeof want, "%s", rt_log_terms(rt_net_node(net, 1)));
    assert_string_equal(want, "1 1 1 4 4 5 5 6 6 6 8 8");
    assert_string_equal(rt_log_terms(rt_net_node(net, 2)), want);
    assert_int_equal(rt_commit(net, 2), 12);
    rt_net_free(net);
  }
}

/* §5.4.1: RequestVote carries the candidate's last index and term. */
static void paper_vote_request(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 3, O());
  preload(n, (uint64_t[]){1, 2}, 2, (raft_hard_state){.term = 2});
  rt_msgs out = {0};
  rt_ticks(n, 20);
  rt_read(n, &out);
  rt_expect_msgs(&out, "1->2 MsgVote Term:3 Log:2/2", "1->3 MsgVote Term:3 Log:2/2");
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* §5.4.1: a voter denies its vote when its own log is more up to date than the candidate's. */
static void paper_voter_up_to_date(void **state) {
  (void)state;
  struct {
    uint64_t t[3];
    size_t n;
    uint64_t log_term, index;
    bool reject;
  } t[] = {
      {{1}, 1, 1, 1, false}, {{1}, 1, 1, 2, false},   {{1, 1}, 2, 1, 1, true},
      {{1}, 1, 2, 1, false}, {{1}, 1, 2, 2, false},   {{1, 1}, 2, 2, 1, false},
      {{2}, 1, 1, 1, true},  {{2}, 1, 1, 2, true},    {{2, 1}, 2, 1, 1, true},
  };
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    rt_node *n = rt_node_k(1, 3, O());
    preload(n, t[i].t, t[i].n, (raft_hard_state){.term = 2});
    rt_msgs out = {0};
    rt_step(n, (raft_message){.type = RAFT_MSG_VOTE, .from = 2, .to = 1, .term = 3,
                              .log_term = t[i].log_term, .index = t[i].index});
    rt_read(n, &out);
    assert_int_equal(out.n, 1);
    assert_int_equal(out.m[0].type, RAFT_MSG_VOTE_RESP);
    assert_int_equal(out.m[0].reject, t[i].reject);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* §5.4.2 Figure 8: a leader never commits an entry of a previous term by counting replicas;
 * committing its own term's entry commits the earlier ones indirectly. */
static void paper_leader_only_commits_current_term_figure8(void **state) {
  (void)state;
  struct {
    uint64_t ack, want;
  } t[] = {{1, 0}, {2, 0}, {3, 3}};
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    rt_node *n = rt_node_k(1, 3, O());
    preload(n, (uint64_t[]){1, 2}, 2, (raft_hard_state){.term = 2});
    rt_msgs out = {0};
    make_leader(n, &out);
    assert_int_equal(n->r->term, 3);
    assert_int_equal(raft_log_last_index(&n->r->log), 3);
    rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 3,
                              .index = t[i].ack});
    rt_read(n, &out);
    assert_int_equal(n->r->log.committed, t[i].want);
    rt_msgs_free(&out);
    rt_node_free(n);
  }
}

/* Decision 2 / etcd#14370: the leader counts its own new entries toward commit only after the
 * driver persisted them (raft_advance), even in a single-node cluster. */
static void paper_leader_self_ack_after_persist(void **state) {
  (void)state;
  rt_node *n = rt_node_k(1, 1, O());
  rt_msgs out = {0};
  raft_campaign(n->r);
  assert_int_equal(n->r->role, RAFT_LEADER);
  raft_ready rd;
  raft_get_ready(n->r, &rd);
  assert_int_equal(rd.n_entries, 1);
  assert_int_equal(rd.n_committed, 0);
  assert_int_equal(rd.hs.commit, 0);
  assert_true(rd.must_sync);
  assert_int_equal(mem_storage_append(n->ms, rd.entries, rd.n_entries), RAFT_OK);
  mem_storage_set_hard_state(n->ms, &rd.hs);
  raft_advance(n->r, &rd);
  assert_int_equal(n->r->log.committed, 1);
  raft_propose(n->r, "a", 1);
  assert_int_equal(n->r->log.committed, 1); /* not before its write */
  raft_get_ready(n->r, &rd);
  assert_int_equal(rd.n_entries, 1);
  assert_int_equal(rd.n_committed, 1); /* the no-op, already durable */
  assert_int_equal(rd.committed[0].index, 1);
  mem_storage_append(n->ms, rd.entries, rd.n_entries);
  mem_storage_set_hard_state(n->ms, &rd.hs);
  raft_advance(n->r, &rd);
  assert_int_equal(n->r->log.committed, 2);
  raft_get_ready(n->r, &rd);
  assert_int_equal(rd.n_entries, 0);
  assert_int_equal(rd.n_committed, 1);
  assert_false(rd.must_sync); /* a commit-only change needs no fsync */
  assert_true(rd.hs_changed);
  raft_advance(n->r, &rd);
  assert_false(raft_has_ready(n->r));
  rt_msgs_free(&out);
  rt_node_free(n);
}

/* Flow control (raft.md §1): proposals beyond max_uncommitted_size are dropped (one is always
 * accepted when nothing is uncommitted); committing frees the budget. Candidates and followers
 * without a leader drop proposals too. */
static void proposal_dropped_by_uncommitted_cap(void **state) {
  (void)state;
  rt_opts o = O();
  o.max_uncommitted = 10;
  rt_node *n = rt_node_k(1, 3, o);
  rt_msgs out = {0};
  assert_int_equal(raft_propose(n->r, "x", 1), RAFT_E_DROPPED); /* no leader */
  raft_campaign(n->r);
  assert_int_equal(raft_propose(n->r, "x", 1), RAFT_E_DROPPED); /* candidate */
  rt_step(n, (raft_message){.type = RAFT_MSG_VOTE_RESP, .from = 2, .to = 1, .term = 1});
  rt_read(n, &out);
  assert_int_equal(raft_propose(n->r, "0123456789AB", 12), RAFT_OK); /* first one always */
  assert_int_equal(raft_propose(n->r, "x", 1), RAFT_E_DROPPED);
  rt_read(n, &out);
  rt_step(n, (raft_message){.type = RAFT_MSG_APP_RESP, .from = 2, .to = 1, .term = 1, .index = 2});
  rt_read(n, &out);
  assert_int_equal(n->r->log.applied, 2);
  assert_int_equal(raft_propose(n->r, "01234", 5), RAFT_OK);
  assert_int_equal(raft_propose(n->r, "01234", 5), RAFT_OK);
  assert_int_equal(raft_propose(n->r, "x", 1), RAFT_E_DROPPED);
  rt_msgs_free(&out);
  rt_node_free(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(paper_update_term_from_message),
      cmocka_unit_test(paper_reject_stale_term_message),
      cmocka_unit_test(paper_start_as_follower),
      cmocka_unit_test(paper_leader_bcast_beat),
      cmocka_unit_test(paper_election_timeout_starts_election),
      cmocka_unit_test(paper_leader_election_in_one_round),
      cmocka_unit_test(paper_follower_vote),
      cmocka_unit_test(paper_candidate_fallback),
      cmocka_unit_test(paper_election_timeout_randomized),
      cmocka_unit_test(paper_leader_start_replication),
      cmocka_unit_test(paper_leader_commit_entry),
      cmocka_unit_test(paper_leader_acknowledge_commit),
      cmocka_unit_test(paper_leader_commit_preceding_entries),
      cmocka_unit_test(paper_follower_commit_entry),
      cmocka_unit_test(paper_follower_check_msg_app),
      cmocka_unit_test(paper_follower_append_entries),
      cmocka_unit_test(paper_leader_sync_follower_log_figure7),
      cmocka_unit_test(paper_vote_request),
      cmocka_unit_test(paper_voter_up_to_date),
      cmocka_unit_test(paper_leader_only_commits_current_term_figure8),
      cmocka_unit_test(paper_leader_self_ack_after_persist),
      cmocka_unit_test(proposal_dropped_by_uncommitted_cap),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
