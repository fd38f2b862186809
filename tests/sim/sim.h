/* sim: the deterministic Raft simulator (raft.md §6 L4). One process, no threads or sockets:
 * N nodes, each a real raft core (raft/core) over a simulated disk (sim_disk) with the small v2
 * key model as state machine (sim_kv); a network with per-link faults and partitions (sim_net);
 * clients that record a history for the linearizability checker (sim_client); faults chosen per
 * seed (sim_fault); the invariants of raft.md §7 checked after every event (sim_check). Virtual
 * time is a priority queue of (time, seq) events (sim_queue) and one seeded PRNG drives it all.
 *
 * This header is internal to tests/sim: the world and node structures the modules share. */
#ifndef QUORUM_TESTS_SIM_SIM_H
#define QUORUM_TESTS_SIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/prop_dedup.h"
#include "raft/core/raft.h"
#include "tests/lin/lin.h"
#include "tests/sim/sim_disk.h"
#include "tests/sim/sim_kv.h"
#include "tests/sim/sim_rng.h"

#define SIM_MAX_NODES 12 /* node ids 1..SIM_MAX_NODES; ids are never reused */

typedef enum sim_ev_type {
  SIM_EV_TICK = 0,      /* node, inc */
  SIM_EV_DELIVER,       /* msg to msg->to */
  SIM_EV_PERSIST,       /* node, inc: the disk finished the ready's write */
  SIM_EV_SNAP_REPORT,   /* node (the sender), inc, arg = peer, sub = ok */
  SIM_EV_UNREACHABLE,   /* node, inc, arg = peer */
  SIM_EV_CLIENT,        /* arg = client: issue its next op */
  SIM_EV_SUBMIT,        /* arg = op: the request reaches its node */
  SIM_EV_TIMEOUT,       /* arg = op */
  SIM_EV_FAULT,         /* sub = sim_fault_kind */
  SIM_EV_RESTART,       /* node */
  SIM_EV_STOP,          /* node: removed from the cluster, stop it for good */
  SIM_EV_HEAL,          /* end of a partition */
  SIM_EV_LIVENESS,      /* final phase: is the cluster converged? */
  SIM_EV_GONE,          /* node, inc, arg = peer: the driver reports peer's process gone */
} sim_ev_type;

typedef struct sim_event {
  uint64_t time, seq;
  uint8_t type;
  uint8_t sub;
  uint32_t inc;
  uint64_t node;
  uint64_t arg;
  raft_message *msg; /* DELIVER: an owned deep copy */
} sim_event;

typedef struct sim_queue {
  sim_event *heap;
  size_t n, cap;
  uint64_t seq;
} sim_queue;

void sim_queue_push(sim_queue *q, sim_event ev);
bool sim_queue_pop(sim_queue *q, sim_event *ev);
void sim_queue_free(sim_queue *q);

/* A read waiting on a node: first for its read index, then for applied >= index. */
typedef struct sim_read {
  uint64_t op;
  uint64_t index;
  bool have_index;
} sim_read;

struct sim_world;

typedef struct sim_node {
  struct sim_world *world;
  uint64_t id;
  bool exists;  /* started at least once: has a disk */
  bool up;      /* running */
  bool removed; /* removed from the cluster (or never joined): never restarted */
  uint32_t inc; /* incarnation: bumped by every crash, so old events are ignored */
  raft *r;
  sim_disk disk;
  sim_kv kv;
  uint64_t applied;
  raft_conf_state conf; /* the configuration in force at applied */
  bool busy;            /* a ready is being persisted */
  bool snap_now;        /* take a snapshot after this apply (a node was added) */
  raft_ready rd;
  uint64_t busy_until, paused_until;
  uint64_t tick_ms, disk_ms_max;
  uint64_t ticks; /* since start: client resends every ticks_per_hb of them */
  sim_read *reads;
  size_t n_reads, cap_reads;
  /* invariant tracking */
  uint64_t *hash; /* chained hash of the persisted log: hash[i] covers entries 1..i */
  size_t cap_hash;
  uint64_t hash_last; /* hash[] is valid for 0..hash_last */
  uint64_t last_commit, last_term; /* within this lifetime */
  uint64_t durable_term;           /* across lifetimes */
  uint64_t lead_term, lead_last;   /* append-only check while leader in lead_term */
  uint64_t lead_hash;
  uint64_t applied_term; /* highest term of an entry this lifetime applied */
  uint32_t snaps;        /* snapshots restored this lifetime */
  bool resend;           /* applied_term rose in this ready: sim_client_resend after it */
  /* what quorumd's transport reports (raft_transport_loss_epoch): a count per peer that rises
   * when a message to it may have been lost (the node learnt of a drop, or its connection
   * broke after delivering) */
  uint64_t loss_epoch[SIM_MAX_NODES + 1];
  prop_dedup dedup; /* as leader: the requests it appended in its term (daemon/prop_dedup.h) */
} sim_node;

/* A client op and what became of it. */
typedef struct sim_op {
  lin_op op;
  char value[SIM_KV_VAL], prev_value[SIM_KV_VAL];
  uint64_t node;
  uint32_t inc;
  uint64_t client;
  bool pending;
  bool dropped; /* refused before it was sent: not part of the history */
  bool effective; /* some node applied it (a write) */
  /* A write is proposed as a batch tagged with the term (raft_propose_many). The driver rule
   * quorumd follows: once its node applies an entry of a later term without it, and no
   * snapshot came in since it was sent, it is proposed again (it can never commit). */
  uint64_t sent_term;
  uint32_t sent_snaps;    /* the node's snapshot restores when it was sent */
  /* Within its term, it is sent again once the loss epoch towards the leader it went to has
   * risen since (node_resend.c); the leader drops it if it holds it already. */
  uint64_t sent_lead, sent_epoch, sent_at;
  uint8_t tries;
  uint64_t applied_index; /* where it was applied (a request in the log twice is a bug) */
} sim_op;

typedef struct sim_client {
  uint64_t busy_op; /* 0 = idle */
  uint64_t seq;
  char last_value[SIM_KV_KEYS][SIM_KV_VAL];
  uint64_t last_index[SIM_KV_KEYS];
} sim_client;

/* A map from a pair of u64 to a u64 (open addressing), for the (index, term) -> hash and the
 * (node, term) -> vote checks. */
typedef struct sim_map {
  uint64_t *keys; /* 2 per slot; slot empty when both 0 */
  uint64_t *vals;
  size_t n, cap;
} sim_map;

/* Returns true and *val if present; otherwise inserts val and returns false. */
bool sim_map_get_or_put(sim_map *m, uint64_t a, uint64_t b, uint64_t *val);
void sim_map_free(sim_map *m);

/* A growable u64 array indexed from 0; reads past the end give 0. */
typedef struct sim_vec {
  uint64_t *v;
  size_t n, cap;
} sim_vec;

uint64_t sim_vec_get(const sim_vec *v, uint64_t i);
void sim_vec_set(sim_vec *v, uint64_t i, uint64_t x);

/* The swarm parameters of one seed. */
typedef struct sim_params {
  unsigned n_nodes, n_clients, n_keys;
  uint64_t run_ms;       /* faults and clients run this long; then heal and converge */
  uint64_t converge_ms;  /* how long the final phase may take */
  uint64_t op_timeout_ms;
  uint64_t think_ms;
  double drop, dup;      /* base probabilities (some links get more) */
  uint64_t delay_lo, delay_hi; /* ms */
  double long_delay;     /* probability of a 10x delay (reordering) */
  bool partitions, crashes, pauses, slow_disk, membership, transfers, torn;
  uint64_t fault_every_ms;
  uint64_t snap_every, snap_trailing;
  bool pre_vote, check_quorum;
  uint64_t max_size_per_msg;
  unsigned max_inflight;
  /* how long a leader keeps what it appended (prop_dedup's window): quorumd keeps twice the
   * request timeout; shorter ones here, down to well below a message's delay, check that
   * safety does not rest on it (prop_dedup_covers) */
  uint64_t dedup_window_ms;
  /* raft ticks per heartbeat: 1 (10 per election timeout) or 10, as quorumd runs its core */
  unsigned ticks_per_hb;
  /* quorumd's report that a peer's process is gone (raft_report_peer_gone): after a crash, to
   * each member (its connection broke, the probe was refused: even when the member is back by
   * then, a report that arrives late); after a partition, to each member cut off from its
   * leader (a firewall that rejects, where the leader lives on: a false report) */
  bool gone_reports;
} sim_params;

typedef enum sim_fault_kind {
  SIM_FAULT_PARTITION = 0,
  SIM_FAULT_CRASH,
  SIM_FAULT_PAUSE,
  SIM_FAULT_MEMBER,
  SIM_FAULT_TRANSFER,
  SIM_FAULT_DISK,
  SIM_FAULT_KINDS
} sim_fault_kind;

typedef struct sim_world {
  uint64_t seed;
  sim_rng rng;
  uint64_t now;
  sim_queue q;
  sim_params p;
  sim_node nodes[SIM_MAX_NODES + 1];
  uint64_t next_id;
  bool final_phase;
  bool converged;
  /* network */
  bool blocked[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
  uint64_t partition_gen; /* a HEAL event ends only the partition it was scheduled for */
  double link_drop[SIM_MAX_NODES + 1][SIM_MAX_NODES + 1];
  /* clients and history */
  sim_client *clients;
  sim_op *ops; /* ops[0] unused: op ids start at 1 */
  size_t n_ops, cap_ops;
  /* invariant state */
  sim_vec term_leader;   /* term -> leader id */
  sim_vec committed;     /* index -> chained hash, for 1..committed_max */
  uint64_t committed_max;
  sim_vec commit_term;   /* index -> the term in which it was first known committed */
  sim_vec state_at;      /* applied index -> state machine hash */
  sim_map entry_at;      /* (index, term) -> chained hash */
  sim_map votes;         /* (voter, term) -> candidate */
  /* failure and trace */
  bool failed;
  char failure[1024];
  bool tracing, trace_live;
  char (*trace)[240];
  size_t trace_cap, trace_n;
  /* counters for the summary */
  uint64_t events, msgs, drops, crashes, restarts, snaps_made, snaps_sent, conf_changes,
      transfers, partitions, pauses, elections;
  uint64_t resent; /* writes proposed again after a later term's entry was applied */
  uint64_t gone_forgotten; /* leaders forgotten on a report that their process was gone */
  uint64_t retried; /* writes sent again within their term after a loss towards the leader */
  uint64_t deduped; /* requests a leader dropped: it had appended them in its term already */
  uint64_t too_old; /* forwards a leader dropped: sent too far back to tell */
  uint64_t lin_ops;
  bool lin_gave_up; /* the history was too hard to check within the budget */
  const char *history_path; /* SIM_HISTORY: write the client history there (JSON lines) */
} sim_world;

/* sim_world.c */
void sim_world_init(sim_world *w, uint64_t seed, bool soak);
void sim_world_free(sim_world *w);
/* Runs the whole seed; returns true when every check passed (else w->failure says why). */
bool sim_world_run(sim_world *w);
void sim_schedule(sim_world *w, uint64_t delay, sim_event ev);

/* sim_trace.c */
__attribute__((format(printf, 2, 3))) void sim_trace(sim_world *w, const char *fmt, ...);
__attribute__((format(printf, 2, 3))) void sim_fail(sim_world *w, const char *fmt, ...);
void sim_trace_print(const sim_world *w, size_t last);

/* sim_node.c */
void sim_node_start(sim_world *w, sim_node *n, const raft_conf_state *bootstrap);
void sim_node_crash(sim_world *w, sim_node *n);
/* With gone_reports: schedules the reports a crash of n, or a new partition, brings. */
void sim_fault_gone_after_crash(sim_world *w, const sim_node *n);
void sim_fault_gone_after_partition(sim_world *w);
void sim_node_restart(sim_world *w, sim_node *n);
void sim_node_stop(sim_world *w, sim_node *n);
/* Whether the node can take an input now; if not, *until is when to retry (0 = never). */
bool sim_node_ready_for_input(const sim_world *w, const sim_node *n, uint64_t *until);
/* Handles whatever the core has ready (persist, send, apply, advance), repeatedly. */
void sim_node_pump(sim_world *w, sim_node *n);
void sim_node_persist_done(sim_world *w, sim_node *n);
sim_node *sim_leader(sim_world *w);

/* sim_net.c */
raft_message *sim_msg_copy(const raft_message *m);
void sim_msg_free(raft_message *m);
void sim_net_send(sim_world *w, const raft_message *m);
void sim_net_deliver(sim_world *w, sim_event *ev);
void sim_net_partition(sim_world *w);
void sim_net_heal(sim_world *w);

/* sim_client.c */
void sim_client_next(sim_world *w, uint64_t client);
void sim_client_submit(sim_world *w, uint64_t op);
void sim_client_timeout(sim_world *w, uint64_t op);
/* A node applied the write of op req with this result. */
void sim_client_applied(sim_world *w, sim_node *n, uint64_t req, uint8_t result, uint64_t index);
/* n applied an entry of a term above its last: proposes again its writes lost in earlier
 * terms (after raft_advance). */
void sim_client_resend(sim_world *w, sim_node *n);
void sim_client_retry(sim_world *w, sim_node *n);
/* A node got a read index for a read (ctx = op id). */
void sim_client_read_index(sim_world *w, sim_node *n, const raft_read_state *rs);
/* Answers the node's reads whose index has been applied. */
void sim_client_answer_reads(sim_world *w, sim_node *n);
/* Builds the history and checks it; false (with w->failure) when it is not linearizable. */
bool sim_client_check_history(sim_world *w, const char *dump_path);

/* sim_fault.c */
void sim_fault_choose(sim_world *w, bool soak);
void sim_fault_run(sim_world *w, uint8_t kind);

/* sim_check.c */
uint64_t sim_hash_entry(uint64_t prev, const raft_entry *e);
/* Invariants after every event. */
void sim_check_all(sim_world *w);
/* The node persisted entries from index `from` (or a snapshot): update its chained hashes. */
void sim_check_persisted(sim_world *w, sim_node *n, uint64_t from, bool snapshot);
/* The node's persisted commit index: record or compare the committed prefix. */
void sim_check_committed(sim_world *w, sim_node *n);
/* The node applied entry i (or restored a snapshot at i, when snapshot). */
void sim_check_applied(sim_world *w, sim_node *n, uint64_t i, bool snapshot);
/* A message left a node (after persist): votes are recorded here. */
void sim_check_sent(sim_world *w, const raft_message *m);
/* The node's disk synced: its durable term never goes back. */
void sim_check_durable(sim_world *w, sim_node *n);
/* Final phase: a leader, all voters applied the same index with the same state. */
bool sim_check_converged(sim_world *w, char *why, size_t len);

#endif
