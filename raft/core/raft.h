/* raft: the public API of the consensus core, a pure state machine in the manner of
 * etcd-io/raft's RawNode. Inputs are raft_tick, raft_step and the propose/command calls; output
 * is a raft_ready batch (state and entries to persist, messages to send, committed entries to
 * apply), acknowledged with raft_advance. The core does no I/O, reads no clock and uses no
 * random function of libc: randomness comes from a PRNG seeded by raft_config.seed, time
 * from ticks.
 *
 * The driver's contract, for each ready batch, in this order:
 *   1. persist hs (when hs_changed), the snapshot (when has_snapshot) and entries (an append
 *      that first deletes every stored entry with index >= entries[0].index), fsynced when
 *      must_sync — one atomic write;
 *   2. send msgs;
 *   3. apply committed (in order; a snapshot in the same batch comes first), answer reads once
 *      the state machine has applied at least their index;
 *   4. raft_advance.
 * Pointers inside a raft_ready stay valid until raft_advance. raft_step, raft_propose and the
 * other inputs never take ownership of what they are given: the core copies what it keeps.
 *
 * Errors are the negative raft_err values below; a violated invariant is a bug and aborts. */
#ifndef QUORUM_RAFT_CORE_RAFT_H
#define QUORUM_RAFT_CORE_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Most voters a configuration may hold (etcd advises at most 7; room for add-then-remove). */
#define RAFT_MAX_VOTERS 16
/* The node id that means "none" (no leader, no vote). Ids are non-zero and never reused. */
#define RAFT_NONE 0

typedef enum raft_err {
  RAFT_OK = 0,
  RAFT_E_NOMEM = -1,         /* out of memory */
  RAFT_E_COMPACTED = -2,     /* storage: the index is below the first index */
  RAFT_E_UNAVAILABLE = -3,   /* storage: the index is above the last index */
  RAFT_E_SNAP_TEMP = -4,     /* storage: a snapshot is being made; try later */
  RAFT_E_DROPPED = -5,       /* proposal dropped: no leader, transfer running, or cap hit */
  RAFT_E_CONF_PENDING = -6,  /* a membership change is already in flight */
  RAFT_E_INVAL = -7,         /* a malformed argument or message */
  RAFT_E_NOT_LEADER = -8,    /* a command only a leader can perform */
  RAFT_E_STORAGE = -9,       /* storage failed in a way other than the above */
} raft_err;

/* A text for an error code (static storage). */
const char *raft_strerror(int err);

typedef enum raft_role {
  RAFT_FOLLOWER = 0,
  RAFT_PRE_CANDIDATE,
  RAFT_CANDIDATE,
  RAFT_LEADER,
} raft_role;

typedef struct raft_buf {
  uint8_t *base;
  size_t len;
} raft_buf;

typedef enum raft_entry_type {
  RAFT_ENTRY_NORMAL = 0,       /* data is an application command; empty = leader's no-op */
  RAFT_ENTRY_CONF_CHANGE = 1,  /* data is an encoded raft_conf_change */
} raft_entry_type;

typedef struct raft_entry {
  uint64_t term;
  uint64_t index;
  uint8_t type; /* raft_entry_type */
  raft_buf data;
} raft_entry;

/* Frees an array of entries whose data were each allocated with malloc (storage results). */
void raft_entries_free(raft_entry *ents, size_t n);

/* The voting members. ids are sorted ascending, no duplicates. */
typedef struct raft_conf_state {
  uint64_t voters[RAFT_MAX_VOTERS];
  size_t n_voters;
} raft_conf_state;

typedef enum raft_conf_change_type {
  RAFT_CONF_ADD_NODE = 0,
  RAFT_CONF_REMOVE_NODE = 1,
  RAFT_CONF_UPDATE_NODE = 2, /* no change of voters; context carries new attributes */
} raft_conf_change_type;

/* A single-step membership change. context is opaque to the core (the daemon puts the
 * member's peer URLs there). */
typedef struct raft_conf_change {
  uint8_t type; /* raft_conf_change_type */
  uint64_t node_id;
  uint64_t id;  /* the proposer's request id, opaque to the core */
  raft_buf context;
} raft_conf_change;

/* Encoding used in RAFT_ENTRY_CONF_CHANGE entries (pure, fixed binary layout).
 * encode: allocates out->base with malloc. decode: cc->context points into data. */
int raft_conf_change_encode(const raft_conf_change *cc, raft_buf *out);
int raft_conf_change_decode(const uint8_t *data, size_t len, raft_conf_change *cc);

typedef struct raft_hard_state {
  uint64_t term;
  uint64_t vote;
  uint64_t commit;
} raft_hard_state;

typedef struct raft_snapshot_meta {
  uint64_t index; /* last index the snapshot includes; 0 = no snapshot */
  uint64_t term;
  raft_conf_state conf;
} raft_snapshot_meta;

typedef struct raft_snapshot {
  raft_snapshot_meta meta;
  raft_buf data; /* the application's state at meta.index */
  /* How data is given back: NULL for free(), else called once with it (a transport that
   * received the snapshot into a mapped file unmaps it). Moves of the snapshot carry it;
   * copies (raft_snapshot_copy) are malloc'd and have none. */
  void (*release)(raft_buf data);
} raft_snapshot;

/* Gives s's data back (its release, or free) and empties it; the meta stays. */
void raft_snapshot_free_data(raft_snapshot *s);

typedef enum raft_msg_type {
  /* Local only: never sent on the wire. */
  RAFT_MSG_HUP = 1,           /* start an election */
  RAFT_MSG_BEAT,              /* leader: broadcast a heartbeat */
  RAFT_MSG_CHECK_QUORUM,      /* leader: step down unless a quorum was recently active */
  RAFT_MSG_UNREACHABLE,       /* from = peer that could not be reached */
  RAFT_MSG_SNAP_STATUS,       /* from = peer; reject = the snapshot failed */
  /* On the wire. */
  RAFT_MSG_PROP,              /* proposal, forwarded by a follower to the leader */
  RAFT_MSG_APP,               /* append entries */
  RAFT_MSG_APP_RESP,
  RAFT_MSG_VOTE,
  RAFT_MSG_VOTE_RESP,
  RAFT_MSG_PRE_VOTE,
  RAFT_MSG_PRE_VOTE_RESP,
  RAFT_MSG_SNAP,              /* install snapshot (whole; the transport may chunk it) */
  RAFT_MSG_HEARTBEAT,
  RAFT_MSG_HEARTBEAT_RESP,
  RAFT_MSG_TIMEOUT_NOW,       /* leader transfer: campaign now */
  RAFT_MSG_TRANSFER_LEADER,   /* a follower asks the leader to transfer to `from` */
  RAFT_MSG_READ_INDEX,        /* context = the read's id */
  RAFT_MSG_READ_INDEX_RESP,   /* index = the read index, context echoed */
  RAFT_MSG_TYPE_MAX
} raft_msg_type;

/* One flat message for every RPC. Fields a type does not use are zero. */
typedef struct raft_message {
  uint8_t type; /* raft_msg_type */
  uint64_t to;
  uint64_t from;
  uint64_t term;
  uint64_t log_term;  /* APP: term of the entry at index; votes: last log term; PROP: the term
                       * it was proposed in, only that term's leader appends it (0: any) */
  uint64_t index;     /* APP: index before entries; votes: last log index; RESP: match/hint;
                       * PROP: 0, or the proposer's applied index + 1 (raft_propose_many_at) */
  uint64_t commit;
  bool reject;
  uint64_t reject_hint;      /* APP_RESP reject: the follower's hint index */
  uint64_t reject_hint_term; /* APP_RESP reject: the term at reject_hint (0 = unknown) */
  raft_entry *entries;
  size_t n_entries;
  raft_snapshot *snapshot;   /* SNAP only */
  bool snapshot_movable;     /* SNAP: snapshot->data is malloc'd and the core may take it
                              * (leaving it empty) instead of copying it */
  raft_buf context;          /* READ_INDEX*, HEARTBEAT*: the read context; VOTE, PRE_VOTE:
                              * "CampaignTransfer" when the campaign comes from a leader
                              * transfer (TIMEOUT_NOW), which passes the lease check */
} raft_message;

/* One-line text form used in logs, traces and golden tests. Returns buf. */
const char *raft_describe_message(const raft_message *m, char *buf, size_t len);
const char *raft_msg_type_name(uint8_t type);
const char *raft_role_name(uint8_t role);

/* The read side of the stable log. The driver writes it (from ready batches); the core only
 * reads. Ownership: results with data (entries, snapshot) are allocated with malloc and owned
 * by the caller. entries() returns at least one entry when lo < hi, even past max_bytes. */
typedef struct raft_storage {
  void *ctx;
  int (*initial_state)(void *ctx, raft_hard_state *hs, raft_conf_state *cs);
  int (*entries)(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes, raft_entry **out,
                 size_t *n);
  /* Term of entry i; valid for first_index-1 (the snapshot's term) .. last_index. */
  int (*term)(void *ctx, uint64_t i, uint64_t *term);
  int (*first_index)(void *ctx, uint64_t *i);
  int (*last_index)(void *ctx, uint64_t *i);
  int (*snapshot)(void *ctx, raft_snapshot *out);
} raft_storage;

typedef void (*raft_log_fn)(void *arg, int level, const char *text);

typedef struct raft_config {
  uint64_t id;                /* this node, non-zero */
  unsigned election_tick;     /* election timeout, in ticks; randomized in [T, 2T) */
  unsigned heartbeat_tick;    /* heartbeat interval, in ticks; < election_tick */
  const raft_storage *storage;
  uint64_t applied;           /* last applied index at restart (0 = from storage's first-1) */
  uint64_t max_size_per_msg;  /* bytes of entries per APP (at least one entry is sent) */
  unsigned max_inflight_msgs; /* APPs in flight per follower in the replicate state */
  uint64_t max_uncommitted_size; /* 0 = unlimited; proposals beyond it are dropped */
  bool pre_vote;
  bool check_quorum;
  uint64_t seed;              /* PRNG seed */
  raft_log_fn log;            /* may be NULL; levels: 0 debug, 1 info, 2 warning, 3 error */
  void *log_arg;
} raft_config;

typedef struct raft_soft_state {
  uint64_t lead;
  uint8_t role; /* raft_role */
} raft_soft_state;

typedef struct raft_read_state {
  uint64_t index;
  raft_buf ctx;
} raft_read_state;

typedef struct raft_ready {
  raft_soft_state soft;
  bool soft_changed;
  raft_hard_state hs;
  bool hs_changed;
  raft_snapshot snapshot;     /* to persist and install, when has_snapshot */
  bool has_snapshot;
  raft_entry *entries;        /* to append to stable storage */
  size_t n_entries;
  raft_entry *committed;      /* to apply */
  size_t n_committed;
  raft_message *msgs;         /* to send, after persisting */
  size_t n_msgs;
  raft_read_state *reads;     /* linearizable reads now ready at their index */
  size_t n_reads;
  bool must_sync;             /* hs term/vote or entries changed: fsync the write */
} raft_ready;

typedef enum raft_progress_state {
  RAFT_PROGRESS_PROBE = 0,
  RAFT_PROGRESS_REPLICATE,
  RAFT_PROGRESS_SNAPSHOT,
} raft_progress_state;

typedef struct raft_peer_status {
  uint64_t id;
  uint64_t match;
  uint64_t next;
  uint8_t state; /* raft_progress_state */
  bool recent_active;
} raft_peer_status;

typedef struct raft_status {
  uint64_t id;
  uint8_t role;
  uint64_t term;
  uint64_t vote;
  uint64_t lead;
  uint64_t commit;
  uint64_t applied;
  uint64_t last_index;
  uint64_t lead_transferee;
  raft_conf_state conf;
  raft_peer_status peers[RAFT_MAX_VOTERS]; /* leader only; includes self */
  size_t n_peers;
} raft_status;

typedef struct raft raft;

/* Creates a node from cfg and its storage's initial state. A fresh node (no hard state, no
 * voters in storage) with no configuration stays a follower that can be added later. The
 * initial voters are not log entries, so a node joining a running cluster should start with
 * the cluster's current voters as its conf state (as etcd's initial-cluster; itself included
 * or not: it votes and campaigns only once it is in the configuration), unless it is certain
 * to receive a snapshot first (whose meta carries the configuration). */
int raft_new(const raft_config *cfg, raft **out);
void raft_free(raft *r);

/* Advances logical time by one tick (heartbeats, election and check-quorum timeouts). */
void raft_tick(raft *r);
/* Feeds a message received from a peer (or a local message type). Messages from other terms
 * follow the term rules. Returns 0, or RAFT_E_* for a malformed message or a dropped proposal. */
int raft_step(raft *r, const raft_message *m);

/* Proposes data as a normal entry. On a follower it is forwarded to the leader as MSG_PROP.
 * Returns 0 or RAFT_E_DROPPED (no leader, transfer in progress, uncommitted cap). */
int raft_propose(raft *r, const void *data, size_t len);
/* Proposes n normal entries as one batch: one append message per follower (one forward on a
 * follower) instead of n. All are taken or all are dropped (RAFT_E_DROPPED). The batch carries
 * the proposer's term (raft_term at the call): only the leader of that term appends it, so its
 * entries, if any, have that term. Once an entry of a later term is committed with none of
 * them before it, they never will be, and the driver may propose them again. */
int raft_propose_many(raft *r, const raft_buf *data, size_t n);
/* raft_propose_many, the batch also carrying `applied` + 1 in its index: the proposer's
 * applied index, below which none of its requests still waiting can be (a leader that drops
 * forwards it already appended needs it: daemon/prop_dedup.h). The core ignores it. */
int raft_propose_many_at(raft *r, const raft_buf *data, size_t n, uint64_t applied);
/* Proposes a membership change (leader or forwarded), tagged with the term as a batch of
 * raft_propose_many is. Returns 0, RAFT_E_DROPPED or RAFT_E_CONF_PENDING (the leader refuses
 * while an earlier change is unapplied). */
int raft_propose_conf_change(raft *r, const raft_conf_change *cc);
/* Applies a committed conf change entry (the driver calls this when it applies one). Returns
 * the configuration now in force in *out (may be NULL). A leader that removed itself steps
 * down. */
int raft_apply_conf_change(raft *r, const raft_conf_change *cc, raft_conf_state *out);
/* The configuration cs with cc applied (what raft_apply_conf_change does to the core's):
 * adding a voter present or removing one absent changes nothing. Pure. Returns RAFT_OK, or
 * RAFT_E_INVAL (a bad change, or RAFT_MAX_VOTERS already). */
int raft_conf_state_apply(raft_conf_state *cs, const raft_conf_change *cc);

/* Requests a linearizable read point; a raft_read_state {index, ctx} appears in a later ready
 * once a quorum confirmed this leader (never before the leader committed an entry of its own
 * term). On a follower the request goes to the leader. ctx must not be empty (RAFT_E_INVAL) and
 * should be unique: a context already pending is ignored. Returns 0 or RAFT_E_DROPPED. */
int raft_read_index(raft *r, const void *ctx, size_t len);

/* Starts an election now (also used for the first node of a cluster in tests). */
int raft_campaign(raft *r);
/* Transfers leadership to `to` (leader: directly; follower: asks the leader, which it can do
 * only for itself, to == its own id; otherwise RAFT_E_NOT_LEADER). */
int raft_transfer_leader(raft *r, uint64_t to);
/* The transport could not deliver to `id`. */
void raft_report_unreachable(raft *r, uint64_t id);
/* The driver found `id`'s process gone: a connection to it broke and its address then refused a
 * new one. A follower whose leader is `id` forgets it, so that it grants pre-votes and votes at
 * once instead of when its lease runs out; with pre-vote and check-quorum it also campaigns
 * within 2 heartbeats (after 1 to 2 * heartbeat_tick ticks, drawn at random) instead of an
 * election timeout, and while no leader is heard of, a campaign that has not won is followed
 * by another within 2 to 4 heartbeats (3 campaigns in all: one that split the vote with
 * another follower's is not left to wait an election timeout). Anything
 * else ignores it: a leader, a (pre-)candidate, a follower of another leader or of none.
 * Safety never rests on it (reads are ReadIndex, never lease-based); with pre-vote and
 * check-quorum a false report costs a pre-vote that fails where the leader is heard, never a
 * term. Returns true when the leader was forgotten. */
bool raft_report_peer_gone(raft *r, uint64_t id);
/* The snapshot sent to `id` was installed (ok) or failed. */
void raft_report_snapshot(raft *r, uint64_t id, bool ok);

bool raft_has_ready(const raft *r);
/* Fills rd with what is ready now. Call raft_advance(r, rd) after handling it, before the next
 * raft_get_ready. */
void raft_get_ready(raft *r, raft_ready *rd);
void raft_advance(raft *r, raft_ready *rd);

void raft_get_status(const raft *r, raft_status *st);
/* The current term (what raft_propose_many tags a batch with). */
uint64_t raft_term(const raft *r);
/* The leader this member knows of in its term (its own id when it leads), or RAFT_NONE. */
uint64_t raft_lead(const raft *r);
/* The index of the last entry of its log (appended, maybe not yet persisted). */
uint64_t raft_last_index(const raft *r);

/* More one-line text forms (describe.c), for traces and golden tests; each returns buf:
 *   entry:      "1/4 EntryNormal \"foo\"", a conf change decoded: "2/5 EntryConfChange AddNode:4"
 *   hard state: "Term:2 Vote:1 Commit:4"
 *   conf state: "Voters:[1 2 3]"
 *   snapshot:   "Index:5 Term:1 Voters:[1 2 3]"
 *   status:     "1 StateLeader Term:2 Vote:1 Lead:1 Commit:4 Applied:4 Last:4 Voters:[1 2 3]"
 *   peer:       "2: StateReplicate Match:4 Next:5 RecentActive" */
const char *raft_describe_entry(const raft_entry *e, char *buf, size_t len);
const char *raft_describe_hard_state(const raft_hard_state *hs, char *buf, size_t len);
const char *raft_describe_conf_state(const raft_conf_state *cs, char *buf, size_t len);
const char *raft_describe_snapshot_meta(const raft_snapshot_meta *s, char *buf, size_t len);
const char *raft_describe_status(const raft_status *st, char *buf, size_t len);
const char *raft_describe_peer(const raft_peer_status *p, char *buf, size_t len);

#endif
