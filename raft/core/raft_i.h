/* raft_i.h: the private types and cross-module functions of the consensus core.
 *
 * Module map (raft.md §5): raft.c (step dispatcher, term rules, tick, role transitions),
 * election.c (campaign, pre-vote, votes, check-quorum, lease check), replication.c (append,
 * snapshot and heartbeat sends, responses, commit rule, leader transfer), progress.c (per-peer
 * flow control and the inflights ring), quorum.c (majority commit index, vote tally), log.c
 * (stable view through raft_storage + unstable tail), readonly.c (ReadIndex), confchange.c
 * (single-step membership), ready.c (ready/advance), describe.c (text forms), rng.c (PRNG).
 *
 * Invariants (checked where cheap, RAFT_PANIC otherwise):
 *   log.applied <= log.committed <= last index;  pr.match < pr.next <= last index + 1;
 *   conf.voters sorted ascending without duplicates and parallel to prs[];
 *   the leader's own match is its last *persisted* index (etcd#14370). */
#ifndef QUORUM_RAFT_CORE_RAFT_I_H
#define QUORUM_RAFT_CORE_RAFT_I_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core/raft.h"

/* Logs through the config's callback, then aborts: a violated invariant is a bug. */
void raft_panic_(const raft_log_fn fn, void *arg, const char *file, int line, const char *fmt,
                 ...) __attribute__((noreturn, format(printf, 5, 6)));
#define RAFT_PANIC(r, ...) raft_panic_((r)->cfg.log, (r)->cfg.log_arg, __FILE__, __LINE__, __VA_ARGS__)
/* For modules without a raft at hand. */
#define RAFT_PANIC0(...) raft_panic_(NULL, NULL, __FILE__, __LINE__, __VA_ARGS__)
void raft_logf_(const raft_log_fn fn, void *arg, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define RAFT_LOG(r, level, ...) \
  do { \
    if ((r)->cfg.log) raft_logf_((r)->cfg.log, (r)->cfg.log_arg, (level), __VA_ARGS__); \
  } while (0)

/* The context a VOTE/PRE_VOTE carries when the campaign comes from a leader transfer: such a
 * request passes the lease check (thesis §3.10). */
#define RAFT_CAMPAIGN_TRANSFER "CampaignTransfer"

/* ---- rng.c: xoshiro256** seeded through splitmix64 ---- */
typedef struct raft_rng {
  uint64_t s[4];
} raft_rng;
void raft_rng_seed(raft_rng *g, uint64_t seed);
uint64_t raft_rng_next(raft_rng *g);
/* Uniform in [0, n); n > 0. */
uint64_t raft_rng_below(raft_rng *g, uint64_t n);

/* ---- entry and message helpers (raft.c) ---- */
/* Deep copies: the copies own their data (malloc). */
int raft_entry_copy(raft_entry *dst, const raft_entry *src);
int raft_entries_copy(raft_entry **dst, const raft_entry *src, size_t n);
int raft_buf_copy(raft_buf *dst, const void *src, size_t len);
int raft_snapshot_copy(raft_snapshot *dst, const raft_snapshot *src);
/* Frees what a message owns (entries, snapshot, context), not the message itself. */
void raft_message_free(raft_message *m);
int raft_message_copy(raft_message *dst, const raft_message *src);
uint64_t raft_entries_size(const raft_entry *ents, size_t n);

/* ---- quorum.c ---- */
/* The largest index a majority of `match` (n values) has reached. n = 0 → UINT64_MAX. */
uint64_t raft_quorum_commit_index(const uint64_t *match, size_t n);
typedef enum raft_vote_result { RAFT_VOTE_PENDING = 0, RAFT_VOTE_LOST, RAFT_VOTE_WON } raft_vote_result;
/* votes[i]: 1 granted, 0 rejected, -1 no answer yet. */
raft_vote_result raft_quorum_vote_result(const int8_t *votes, size_t n);
size_t raft_quorum_majority(size_t n);

/* ---- progress.c ---- */
typedef struct raft_inflights {
  uint64_t *buf; /* ring of last indexes of APPs in flight */
  size_t start, count, size;
} raft_inflights;
int raft_inflights_init(raft_inflights *in, size_t size);
void raft_inflights_destroy(raft_inflights *in);
void raft_inflights_add(raft_inflights *in, uint64_t last);
/* Frees every inflight with index <= to. */
void raft_inflights_free_le(raft_inflights *in, uint64_t to);
void raft_inflights_free_first_one(raft_inflights *in);
bool raft_inflights_full(const raft_inflights *in);
void raft_inflights_reset(raft_inflights *in);

typedef struct raft_progress {
  uint64_t id;
  uint64_t match, next;
  uint8_t state;             /* raft_progress_state */
  uint64_t pending_snapshot; /* SNAPSHOT: the index of the snapshot in flight */
  bool recent_active;
  bool probe_sent; /* PROBE: an APP went out; wait for a response or heartbeat response */
  raft_inflights ins;
} raft_progress;

int raft_progress_init(raft_progress *pr, uint64_t id, uint64_t next, size_t max_inflight);
void raft_progress_destroy(raft_progress *pr);
void raft_progress_become_probe(raft_progress *pr);
void raft_progress_become_replicate(raft_progress *pr);
void raft_progress_become_snapshot(raft_progress *pr, uint64_t snap_index);
/* A positive ack of n: returns whether match grew. */
bool raft_progress_maybe_update(raft_progress *pr, uint64_t n);
/* A rejection of the APP at `rejected` with the follower's (term-skipped) hint: returns false
 * for a stale rejection. */
bool raft_progress_maybe_decr_to(raft_progress *pr, uint64_t rejected, uint64_t match_hint);
bool raft_progress_is_paused(const raft_progress *pr);
/* Bookkeeping after an APP carrying n entries whose last index is `last` was sent. */
void raft_progress_sent_entries(raft_progress *pr, size_t n, uint64_t last);
const char *raft_progress_state_name(uint8_t s);

/* ---- log.c ---- */
typedef struct raft_log {
  const raft_storage *storage;
  raft_snapshot *snap; /* unstable snapshot (owned), or NULL */
  raft_entry *ents;    /* unstable entries (own their data): indexes offset .. offset+n-1 */
  size_t n, cap;
  uint64_t offset;
  uint64_t committed;
  uint64_t applied;
  raft_log_fn logfn;
  void *logarg;
} raft_log;

int raft_log_init(raft_log *l, const raft_storage *s, raft_log_fn fn, void *arg);
void raft_log_destroy(raft_log *l);
uint64_t raft_log_first_index(const raft_log *l);
uint64_t raft_log_last_index(const raft_log *l);
/* Term of entry i: RAFT_OK, RAFT_E_COMPACTED (i < first-1) or RAFT_E_UNAVAILABLE (i > last). */
int raft_log_term(const raft_log *l, uint64_t i, uint64_t *t);
uint64_t raft_log_term_or_zero(const raft_log *l, uint64_t i);
uint64_t raft_log_last_term(const raft_log *l);
bool raft_log_match_term(const raft_log *l, uint64_t i, uint64_t t);
bool raft_log_is_up_to_date(const raft_log *l, uint64_t last_index, uint64_t term);
/* First index whose term conflicts with the given entries, the first new index when all match
 * and some are new, or 0. */
uint64_t raft_log_find_conflict(const raft_log *l, const raft_entry *ents, size_t n);
/* The largest index <= index whose term <= term, and that term (thesis §5.3 fast backup). */
uint64_t raft_log_find_conflict_by_term(const raft_log *l, uint64_t index, uint64_t term,
                                        uint64_t *out_term);
/* Follower's append: returns false when (index, log_term) does not match; else appends,
 * commits min(committed, last new) and sets *last_new. */
bool raft_log_maybe_append(raft_log *l, uint64_t index, uint64_t log_term, uint64_t committed,
                           const raft_entry *ents, size_t n, uint64_t *last_new);
/* Appends copies of ents (truncating any unstable suffix they overlap). Returns last index. */
uint64_t raft_log_append(raft_log *l, const raft_entry *ents, size_t n);
/* Entries [lo, hi) limited to max_bytes (at least one): malloc'd deep copies. */
int raft_log_slice(const raft_log *l, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                   raft_entry **out, size_t *n);
void raft_log_commit_to(raft_log *l, uint64_t to);
bool raft_log_maybe_commit(raft_log *l, uint64_t max_index, uint64_t term);
void raft_log_applied_to(raft_log *l, uint64_t i);
/* The snapshot to send: the unstable one or storage's (malloc'd copy). */
int raft_log_snapshot(const raft_log *l, raft_snapshot *out);
void raft_log_restore(raft_log *l, raft_snapshot *s, bool take);
bool raft_log_has_next_committed(const raft_log *l);
void raft_log_stable_to(raft_log *l, uint64_t i, uint64_t t);
void raft_log_stable_snap_to(raft_log *l, uint64_t i);
/* Last index known persisted (stable), i.e. not in the unstable tail. */
uint64_t raft_log_last_persisted(const raft_log *l);

/* ---- readonly.c ---- */
typedef struct raft_read_req {
  raft_buf ctx;
  uint64_t index;
  uint64_t from; /* who asked: this node or a follower */
  uint64_t acks[RAFT_MAX_VOTERS];
  size_t n_acks;
} raft_read_req;

typedef struct raft_readonly {
  raft_read_req *q;
  size_t n, cap;
} raft_readonly;

void raft_readonly_destroy(raft_readonly *ro);
void raft_readonly_reset(raft_readonly *ro);
/* Queues a request; false when a request with the same context is already pending. */
bool raft_readonly_add(raft_readonly *ro, uint64_t index, uint64_t from, const raft_buf *ctx);
/* Records an ack for ctx; returns the number of distinct acks, or 0 when ctx is unknown. */
size_t raft_readonly_recv_ack(raft_readonly *ro, uint64_t from, const raft_buf *ctx);
/* Pops every request up to and including ctx into *out (caller frees each ctx and the array). */
size_t raft_readonly_advance(raft_readonly *ro, const raft_buf *ctx, raft_read_req **out);
/* The context of the newest pending request, or NULL. */
const raft_buf *raft_readonly_last_ctx(const raft_readonly *ro);

/* ---- the node ---- */
struct raft {
  uint64_t id;
  raft_config cfg;
  uint64_t term;
  uint64_t vote;
  uint64_t lead;
  uint8_t role;
  raft_log log;

  raft_conf_state conf;
  raft_progress prs[RAFT_MAX_VOTERS]; /* parallel to conf.voters */
  int8_t votes[RAFT_MAX_VOTERS];      /* parallel to conf.voters; -1 = no answer */

  raft_message *msgs;
  size_t n_msgs, cap_msgs;
  raft_read_state *reads;
  size_t n_reads, cap_reads;
  raft_readonly ro;
  /* READ_INDEX requests a new leader holds until it committed an entry of its term. */
  raft_message *pending_reads;
  size_t n_pending_reads, cap_pending_reads;

  uint64_t lead_transferee;
  uint64_t pending_conf_index;
  uint64_t uncommitted_size;

  unsigned election_elapsed;
  unsigned heartbeat_elapsed;
  unsigned randomized_election_timeout;
  /* Elections still to be hurried since the leader was reported gone (raft_report_peer_gone):
   * each campaign's timer is set to fire within 2 heartbeats, so that one that splits the vote
   * with another follower's is followed by another one soon, not an election timeout later;
   * 0 once a leader is heard of. */
  unsigned hurry;
  raft_rng rng;

  raft_soft_state prev_soft;
  raft_hard_state prev_hs;

  /* The ready handed out and not yet advanced (the core owns its arrays). */
  bool rd_out;
  raft_ready rd;
};

/* raft.c */
void raft_send(raft *r, raft_message *m); /* takes ownership of m's contents */
void raft_become_follower(raft *r, uint64_t term, uint64_t lead);
void raft_become_pre_candidate(raft *r);
void raft_become_candidate(raft *r);
void raft_become_leader(raft *r);
void raft_reset_randomized_timeout(raft *r);
raft_progress *raft_progress_get(raft *r, uint64_t id);
bool raft_promotable(const raft *r);
bool raft_past_election_timeout(const raft *r);
/* election.c: with r->hurry, the election timer fires 1 to 2 * heartbeat_tick ticks from now
 * at the latest, 2 * heartbeat_tick more when a campaign has just begun. */
void raft_hurry_election(raft *r, bool campaigning);
#define RAFT_HURRIED_ELECTIONS 3
void raft_add_read_state(raft *r, uint64_t index, const raft_buf *ctx);
/* Appends entries as leader (terms and indexes assigned). false = dropped by the cap. */
bool raft_append_entries_as_leader(raft *r, raft_entry *ents, size_t n);
bool raft_committed_entry_in_current_term(const raft *r);

/* election.c */
int raft_hup(raft *r, bool transfer);
void raft_campaign_(raft *r, bool pre, bool transfer);
int raft_step_vote_request(raft *r, const raft_message *m);
/* Records a vote from id; returns the tally result. */
raft_vote_result raft_poll(raft *r, uint64_t id, bool granted);
bool raft_quorum_active(const raft *r);
void raft_step_check_quorum(raft *r);

/* replication.c */
bool raft_maybe_send_append(raft *r, uint64_t to, bool send_if_empty);
void raft_send_append(raft *r, uint64_t to);
void raft_bcast_append(raft *r);
void raft_bcast_heartbeat(raft *r, const raft_buf *ctx);
bool raft_maybe_commit(raft *r);
void raft_handle_append(raft *r, const raft_message *m);
void raft_handle_heartbeat(raft *r, const raft_message *m);
void raft_handle_snapshot(raft *r, const raft_message *m);
void raft_leader_append_resp(raft *r, const raft_message *m);
void raft_leader_heartbeat_resp(raft *r, const raft_message *m);
void raft_leader_transfer(raft *r, uint64_t to);
void raft_abort_leader_transfer(raft *r);
void raft_send_timeout_now(raft *r, uint64_t to);
/* Leader: the self-ack of persisted entries (after advance). */
void raft_leader_self_ack(raft *r);

/* readonly.c (node level) */
int raft_leader_read_index(raft *r, const raft_message *m);
void raft_release_pending_reads(raft *r);
void raft_pending_reads_clear(raft *r);

/* confchange.c */
/* Sets the voters (and progress) to cs. */
void raft_set_conf(raft *r, const raft_conf_state *cs);
bool raft_has_unapplied_conf_change(const raft *r);

/* ready.c */
void raft_ready_free(raft *r);

#endif
