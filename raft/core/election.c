/* election.c: leader election (§5.2, §5.4.1), pre-vote (thesis §9.6), check-quorum (thesis
 * §6.2), the vote-granting rule, and a follower forgetting a leader reported dead. The lease check (a node that heard from a leader within
 * the election timeout ignores higher-term votes) is applied in raft_step with the term rules.
 *
 * Pre-vote: a pre-candidate asks with term+1 without bumping its term; voters grant without
 * recording a vote; only after a pre-vote quorum does the node become a candidate. A vote
 * response carries the request's term when granted (so a pre-candidate can tell it from stale
 * answers), our own term when rejected. */
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft_i.h"

int raft_hup(raft *r, bool transfer) {
  if (r->role == RAFT_LEADER) {
    RAFT_LOG(r, 0, "%llx ignoring HUP: already leader", (unsigned long long)r->id);
    return RAFT_OK;
  }
  if (!raft_promotable(r)) {
    RAFT_LOG(r, 1, "%llx is unpromotable and cannot campaign", (unsigned long long)r->id);
    return RAFT_OK;
  }
  if (raft_has_unapplied_conf_change(r)) {
    RAFT_LOG(r, 1, "%llx cannot campaign at term %llu: unapplied conf change",
             (unsigned long long)r->id, (unsigned long long)r->term);
    return RAFT_OK;
  }
  raft_campaign_(r, r->cfg.pre_vote && !transfer, transfer);
  return RAFT_OK;
}

void raft_campaign_(raft *r, bool pre, bool transfer) {
  uint8_t type;
  uint64_t term;
  if (pre) {
    raft_become_pre_candidate(r);
    type = RAFT_MSG_PRE_VOTE;
    term = r->term + 1; /* the term we would campaign in; ours stays */
  } else {
    raft_become_candidate(r);
    type = RAFT_MSG_VOTE;
    term = r->term;
  }
  if (raft_poll(r, r->id, true) == RAFT_VOTE_WON) {
    /* A single-voter cluster wins at once. */
    if (pre) {
      raft_campaign_(r, false, transfer);
    } else {
      raft_become_leader(r);
      raft_bcast_append(r);
    }
    return;
  }
  uint64_t li = raft_log_last_index(&r->log), lt = raft_log_last_term(&r->log);
  for (size_t i = 0; i < r->conf.n_voters; i++) {
    uint64_t id = r->conf.voters[i];
    if (id == r->id) continue;
    raft_message m = {.type = type, .to = id, .term = term, .index = li, .log_term = lt};
    if (transfer) {
      if (raft_buf_copy(&m.context, RAFT_CAMPAIGN_TRANSFER, sizeof RAFT_CAMPAIGN_TRANSFER - 1) !=
          RAFT_OK)
        RAFT_PANIC(r, "out of memory");
    }
    raft_send(r, &m);
  }
}

raft_vote_result raft_poll(raft *r, uint64_t id, bool granted) {
  for (size_t i = 0; i < r->conf.n_voters; i++) {
    if (r->conf.voters[i] != id) continue;
    if (r->votes[i] < 0) r->votes[i] = granted ? 1 : 0; /* first answer counts */
    break;
  }
  RAFT_LOG(r, 0, "%llx received %s from %llx at term %llu", (unsigned long long)r->id,
           granted ? "grant" : "rejection", (unsigned long long)id, (unsigned long long)r->term);
  return raft_quorum_vote_result(r->votes, r->conf.n_voters);
}

int raft_step_vote_request(raft *r, const raft_message *m) {
  uint8_t resp_type = m->type == RAFT_MSG_VOTE ? RAFT_MSG_VOTE_RESP : RAFT_MSG_PRE_VOTE_RESP;
  /* We can vote for m->from when: we already did (a repeated request), or we voted for
   * nobody and know no leader in this term, or it is a pre-vote for a future term. */
  bool can_vote = r->vote == m->from || (r->vote == RAFT_NONE && r->lead == RAFT_NONE) ||
                  (m->type == RAFT_MSG_PRE_VOTE && m->term > r->term);
  if (can_vote && raft_log_is_up_to_date(&r->log, m->index, m->log_term)) {
    RAFT_LOG(r, 1, "%llx [term %llu] cast %s for %llx at term %llu", (unsigned long long)r->id,
             (unsigned long long)r->term, raft_msg_type_name(m->type),
             (unsigned long long)m->from, (unsigned long long)m->term);
    /* The response carries the request's term: for a pre-vote that is the future term, which
     * we do not adopt. */
    raft_message resp = {.type = resp_type, .to = m->from, .term = m->term};
    raft_send(r, &resp);
    if (m->type == RAFT_MSG_VOTE) {
      r->election_elapsed = 0;
      r->vote = m->from;
    }
  } else {
    RAFT_LOG(r, 1, "%llx [term %llu] rejected %s from %llx at term %llu",
             (unsigned long long)r->id, (unsigned long long)r->term, raft_msg_type_name(m->type),
             (unsigned long long)m->from, (unsigned long long)m->term);
    raft_message resp = {.type = resp_type, .to = m->from, .term = r->term, .reject = true};
    raft_send(r, &resp);
  }
  return RAFT_OK;
}

bool raft_quorum_active(const raft *r) {
  int8_t act[RAFT_MAX_VOTERS];
  for (size_t i = 0; i < r->conf.n_voters; i++)
    act[i] = (r->prs[i].id == r->id || r->prs[i].recent_active) ? 1 : 0;
  return raft_quorum_vote_result(act, r->conf.n_voters) == RAFT_VOTE_WON;
}

void raft_step_check_quorum(raft *r) {
  if (!raft_quorum_active(r)) {
    RAFT_LOG(r, 2, "%llx stepped down to follower since quorum is not active",
             (unsigned long long)r->id);
    raft_become_follower(r, r->term, RAFT_NONE);
  }
  /* Every interval starts with no follower known active. */
  for (size_t i = 0; i < r->conf.n_voters; i++)
    if (r->prs[i].id != r->id) r->prs[i].recent_active = false;
}

void raft_hurry_election(raft *r, bool campaigning) {
  if (!r->hurry || r->lead != RAFT_NONE) return;
  /* d ticks from now, d in [1, 2 heartbeats]: the other followers learn of the death at about
   * the same moment, and a spread draw lets one win before the others try. A campaign first
   * gets 2 heartbeats to finish (a pre-vote and a vote round trip, and the vote's sync: a
   * heartbeat is set to about a round trip or more). */
  unsigned hb = r->cfg.heartbeat_tick;
  unsigned d = (campaigning ? 2 * hb : 0) + 1 + (unsigned)raft_rng_below(&r->rng, 2 * (uint64_t)hb);
  unsigned at = r->randomized_election_timeout > d ? r->randomized_election_timeout - d : 0;
  if (r->election_elapsed < at) r->election_elapsed = at;
}

/* The driver's report that a peer's process is gone (raft.h): forget the leader, and with
 * pre-vote and check-quorum, which keep a false report from costing a term, campaign soon,
 * up to RAFT_HURRIED_ELECTIONS times while no leader is heard of. */
bool raft_report_peer_gone(raft *r, uint64_t id) {
  if (r->role != RAFT_FOLLOWER || id == RAFT_NONE || r->lead != id) return false;
  RAFT_LOG(r, 1, "%llx [term %llu] forgets its leader %llx: its process is gone",
           (unsigned long long)r->id, (unsigned long long)r->term, (unsigned long long)id);
  r->lead = RAFT_NONE;
  if (r->cfg.pre_vote && r->cfg.check_quorum) {
    r->hurry = RAFT_HURRIED_ELECTIONS;
    raft_hurry_election(r, false);
  }
  return true;
}
