/* node_i: the Raft driver's private state, shared by node.c (threads, proposals, apply),
 * node_transport.c (peers), node_snapshot.c (snapshots, compaction) and node_member.c
 * (member records). */
#ifndef QUORUM_DAEMON_NODE_I_H
#define QUORUM_DAEMON_NODE_I_H

#include <pthread.h>
#include <stdatomic.h>

#include "daemon/node.h"
#include "daemon/prop_dedup.h"
#include "raft/storage/wal_storage.h"
#include "raft/transport/transport.h"

#define NODE_MAX_MEMBERS RAFT_MAX_VOTERS
#define NODE_TICKS_PER_HB 10 /* raft ticks per heartbeat interval (node.c, on_tick) */

enum { INBOX_PROPOSE = 1, INBOX_CONF, INBOX_PARTITION, INBOX_TRANSFER, INBOX_READ,
       INBOX_DROP_NEXT, INBOX_TERM_APPLIED, INBOX_BREAK };

/* Something for the raft thread. data is malloc'd (an encoded record, or a member context). */
typedef struct inbox_item {
  uint8_t kind;
  uint8_t conf_type;  /* CONF: raft_conf_change_type; PARTITION: drop; DROP_NEXT: msg type */
  uint64_t conf_node; /* CONF: the member; PARTITION, DROP_NEXT, BREAK: the peer */
  uint64_t conf_id;   /* CONF, READ, PROPOSE: the request id (PROPOSE: 0 without a client);
                       * DROP_NEXT: how many; TERM_APPLIED: the term */
  uint64_t term;      /* PROPOSE, once sent: the term it was sent in (node_resend.c) */
  uint64_t lead;      /*   the leader it was sent to (this member's id: appended here) */
  uint64_t epoch;     /*   the transport's loss epoch towards that leader when it was sent */
  int64_t sent_ns;    /*   when (monotonic) */
  uint8_t tries;      /*   how many times it was sent again in the same term */
  uint64_t answered1; /*   to be sent again in its term: n->answered + 1, read before its
                       *   request was seen waiting (0: a first send in the term) */
  char *data;
  size_t len;
} inbox_item;

typedef struct inbox_queue {
  inbox_item *v;
  size_t n, cap;
} inbox_queue;

/* A committed entry for the apply thread (data copied from the ready batch), or a read that
 * may be answered once the store has applied `index` (type APPLY_READ, read_id set). */
#define APPLY_READ 0xff
typedef struct apply_item {
  uint64_t index;
  uint64_t term;
  uint64_t read_id;
  uint8_t type;
  uint8_t *data;
  size_t len;
} apply_item;

typedef struct apply_queue {
  apply_item *v;
  size_t n, cap;
} apply_queue;

typedef struct pend_slot {
  uint64_t id; /* 0 = free */
  void *ctx;
  int64_t deadline; /* monotonic ns */
} pend_slot;

typedef struct pend_table {
  pend_slot *v;
  size_t n, cap; /* cap: a power of two */
} pend_table;

typedef struct read_batch {
  uint64_t seq;  /* the read context */
  uint64_t *ids; /* the requests it answers (malloc'd) */
  size_t n;
  int64_t asked_ns; /* when the read index was asked for (node_mono_ns) */
} read_batch;

/* The context of a membership change entry and of a member record: who proposed it and the
 * member's attributes. */
typedef struct node_member_ctx {
  uint64_t origin;
  node_member m;
} node_member_ctx;

enum { NODE_SNAP_IDLE = 0, NODE_SNAP_RUNNING, NODE_SNAP_READY };

struct node {
  node_config cfg;
  uv_loop_t *loop; /* the caller's (HTTP) loop */
  store *s;
  stats *st;
  node_done_cb cb;
  void *cb_arg;
  _Atomic int log_level; /* NODE_LOG_* */
  _Atomic uint64_t next_id; /* last request id: starts at the start's wall clock in ms << 20 */
  uv_timer_t expire_timer;   /* on the caller's loop */

  /* raft thread only */
  uv_loop_t rloop;
  int rloop_ok;
  uv_async_t wake;
  uv_timer_t tick_timer;
  uv_idle_t ready_idle; /* makes the ready batch once per loop iteration */
  raft *r;
  raft_wal *wal;
  raft_transport *tr;
  inbox_queue inbox_spare;
  inbox_queue waiting; /* proposals held while there is no leader */
  inbox_queue props_new; /* proposals collected in this iteration */
  inbox_queue sent;      /* writes and membership changes with a client, sent, maybe not
                          * applied (node_resend.c) */
  apply_queue inline_q;  /* entries the raft thread applies itself (apply thread idle) */
  prop_dedup dedup;      /* leader: the forwarded requests appended in this term */
  uint64_t ticks;          /* raft ticks: NODE_TICKS_PER_HB of them per heartbeat */
  unsigned ticks_per_hb;
  unsigned hb_ms;          /* heartbeat interval */
  uint64_t persisted_vote; /* the vote in the last hard state written */
  int64_t lead_contact_ns; /* last message from the leader (monotonic) */
  _Atomic int64_t lead_elected_ns; /* when a new leader was last seen (monotonic; 0: never) */
  /* ReadIndex batching: the reads that arrived in one loop iteration share one
   * raft_read_index (one heartbeat round), as etcd's linearizable read loop does. */
  uint64_t *reads_new;     /* request ids collected in this iteration */
  size_t n_reads_new, cap_reads_new;
  struct read_batch *read_batches; /* asked for, not yet ready */
  size_t n_read_batches, cap_read_batches;
  uint64_t read_batch_seq; /* last read index context: starts as next_id does, for the same reason */
  int stopping_raft;
  int removed, removed_reported;
  /* publication (node_member.c): proposed once per leader until the apply thread has applied
   * this start's record, as etcd publishes at every start */
  atomic_int published;
  uint64_t publish_lead;
  int64_t publish_ns; /* when it was last proposed (monotonic) */

  pthread_t raft_thread, apply_thread;
  /* A snapshot for a follower, dumped on a thread of its own (node_snapshot.c). */
  pthread_t snap_thread;
  int snap_state;        /* NODE_SNAP_*; under mu */
  raft_snapshot snap_res; /* meta set at the start, data when ready */
  struct store_dump *snap_job;
  int64_t snap_started_ns;
  pthread_mutex_t mu; /* guards the fields below */
  pthread_cond_t apply_cv, idle_cv;
  inbox_queue inbox;
  apply_queue aq;
  int applying;  /* the apply thread holds a batch */
  int stop;
  int raft_done;
  node_status status;
  int64_t leader_since_ns;
  node_member members[NODE_MAX_MEMBERS];
  size_t n_members;
  node_peer_stats peer_stats[NODE_MAX_MEMBERS];
  size_t n_peer_stats;

  uint64_t *removed_ids; /* members removed from the cluster (node_member.c), under mu */
  size_t n_removed, cap_removed;

  pthread_mutex_t pmu; /* guards pend */
  pend_table pend;

  _Atomic uint64_t synced_applied; /* the tree store is durable up to here */
  _Atomic uint64_t answered;       /* applied, and the requests of entries up to here taken
                                    * from pend (stored after they are) */
  apply_queue reads_waiting;       /* apply thread: reads whose index is not applied yet */
  uint64_t applied_term; /* the applying thread: the highest term of an entry applied */
};

const node_member *node_member_find_locked(node *n, uint64_t id);

/* node_resend.c (raft thread) */
/* Where and when a proposal was sent. */
typedef struct node_sent_how {
  uint64_t term, lead, epoch;
  int64_t now_ns;
  uint64_t answered; /* node_sent_retry: n->answered, read before it is called */
} node_sent_how;
/* Keeps a proposal sent as `how` says (takes its data). */
void node_sent_add(node *n, inbox_item *it, const node_sent_how *how);
/* Forgets those whose requests are no longer waiting (applied or expired). */
void node_sent_prune(node *n);
/* An entry of applied_term has been applied with everything before it: moves the proposals
 * sent in earlier terms whose requests still wait into out (to be proposed again), forgets
 * the rest of them; returns how many moved. */
size_t node_sent_lost(node *n, uint64_t applied_term, inbox_queue *out);
/* Forgets them all (a snapshot was installed: their fate is unknown). */
void node_sent_clear(node *n);
/* The loss epoch towards leader `now->lead` is now->epoch: moves the writes sent to it in term
 * now->term, when the epoch was another, whose requests still wait, into out (to be sent
 * again: the leader drops those it holds), unless sent again less than min_gap_ns << tries
 * ago; returns how many moved. */
size_t node_sent_retry(node *n, const node_sent_how *now, int64_t min_gap_ns, inbox_queue *out);

/* node_forward.c (raft thread) */
/* A forward of writes m (MSG_PROP of this leader's term) stepped into the core, less the
 * requests appended in this term already. */
void node_step_forward(node *n, const raft_message *m);

/* node_pend.c (any thread) */
void node_pend_put(node *n, uint64_t id, void *ctx, int64_t deadline);
void *node_pend_take(node *n, uint64_t id);
int node_pend_has(node *n, uint64_t id);
/* live[i] = whether the request of v[i] (its conf_id) still waits, for k items (one lock). */
void node_pend_live(node *n, const inbox_item *v, size_t k, unsigned char *live);
/* Takes up to max requests past their deadline into out; returns how many. */
size_t node_pend_expired(node *n, int64_t now, void **out, int64_t *deadlines, size_t max);

/* node_apply.c */
void node_members_set_locked(node *n, const node_member *m); /* mu held */
void *node_apply_main(void *arg);                              /* the apply thread */
void node_aq_push(node *n, const raft_entry *ents, size_t k);  /* raft thread */
void node_aq_push_reads(node *n, const raft_read_state *rs, size_t k);
int node_apply_inline(node *n, const raft_entry *ents, size_t k);
void node_done_push(node *n, node_done *d);

/* node_member.c */
int node_member_encode(const node_member_ctx *mc, char **out, size_t *len);
int node_member_decode(const uint8_t *data, size_t len, node_member_ctx *mc);
void node_publish_self(node *n);
void node_store_member_put(node *n, const node_member *m);
size_t node_store_members_load(node *n, node_member *out, size_t max);
/* The removed members: noted as removals commit (raft thread), loaded from the store at start
 * and after a snapshot; any thread (they take mu). */
void node_removed_note(node *n, uint64_t id);
void node_removed_load(node *n);
bool node_removed_has(node *n, uint64_t id);
/* --force-new-cluster at start, before the core is made (node_force.c). 0 or -errno + err. */
int node_force_new_cluster(node *n, char *err, size_t errlen);

/* node_transport.c (raft thread) */
int node_transport_start(node *n, char *err, size_t errlen);
void node_transport_send(node *n, const raft_message *m);
void node_transport_send_all(node *n, const raft_message *msgs, size_t k);
void node_transport_conf(node *n, uint8_t type, const node_member *m);
void node_transport_partition(node *n, uint64_t peer, bool drop);
void node_transport_drop_next(node *n, uint64_t peer, uint8_t type, unsigned count);
void node_transport_break(node *n, uint64_t peer);
/* The peer port's HTTP answers (node_peer_http.c): a raft_transport http_get callback. */
char *node_peer_http_get(void *arg, const char *path, size_t path_len, size_t *len);
void node_transport_stop(node *n);
void node_transport_collect(node *n);
void node_on_message(node *n, const raft_message *m);

/* node_snapshot.c (raft thread) */
int node_snapshot_make(void *arg, raft_snapshot *out);
void node_snapshot_install(node *n, const raft_snapshot *snap);
/* At start: a store ahead of the log is a snapshot install interrupted between the two; the
 * log's reset is written from the snapshot state kept beside the store. 0, or -EIO when the
 * store is ahead and nothing explains it. */
int node_snapshot_finish_install(node *n);
void node_compact(node *n);
/* Waits for a snapshot dump in progress and drops any unused one (the node is stopping). */
void node_snapshot_stop(node *n);
void node_wait_applied(node *n);
/* CLOCK_MONOTONIC in nanoseconds. */
int64_t node_mono_ns(void);
/* A write to the data dir failed (a full disk, an I/O error): prints "quorumd: fatal: ..." and
 * exits with status 1 at once, as etcd does (no core dump, no exit handlers running under the
 * other threads). Everything acknowledged is in the fsynced Raft log, so a restart (after the
 * cause is fixed) finds it. */
void node_fatal(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
/* Tells the loop that the store was replaced (watchers cleared, history reloaded). */
void node_notify_recovered(node *n);

/* node.c */
/* Appends to a queue of inbox items (growing it; aborts when out of memory). */
void node_queue_push(inbox_queue *q, inbox_item it);
void node_raft_shutdown(node *n);
void node_inbox_push(node *n, inbox_item it);
void node_leader_handover(node *n);
void node_free_cb(uv_handle_t *h);

#endif
