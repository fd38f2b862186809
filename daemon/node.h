/* node: this member's Raft driver. It owns three threads:
 *   - the raft thread (its own libuv loop): the raft core, its tick timer, the peer transport
 *     and the Raft log in LevelDB. For each ready batch it writes the hard state and entries
 *     (one WriteBatch, fsynced when the batch must be), then sends the batch's messages, then
 *     hands committed entries to the apply thread, then advances the core. Proposals arriving
 *     while a batch is syncing go into the next one: group commit.
 *   - the apply thread: applies committed entries to the tree store in log order, one store
 *     WriteBatch per group, and hands outcomes (answers and events) to the HTTP loop.
 *   - the caller's loops (HTTP): node_submit, node_read (any thread), the request timeout timer;
 *     outcomes leave through the done callback, on the thread that made them.
 * Requests are matched to their outcome by (member id, request id) carried in the record, so a
 * write received by a follower is answered by that follower when it applies the entry. */
#ifndef QUORUM_DAEMON_NODE_H
#define QUORUM_DAEMON_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/stats.h"
#include "daemon/store.h"
#include "proto/record.h"
#include "raft/core/raft.h"

typedef struct node node;

/* The outcome of one request. ctx is what was passed to node_submit (NULL for entries
 * proposed by other members, which still carry events). */
typedef struct node_done {
  void *ctx;
  int recovered; /* the store was replaced by a snapshot (no ctx, no result) */
  store_result res;
  store_event **events;
  size_t n_events;
  struct node_done *next;
} node_done;

/* Outcomes, a list in log order linked by next, handed over on the thread that made them (the
 * apply thread, the raft thread, or the caller's loop for timeouts). The receiver owns every
 * item (free()), its res.body and its event references. */
typedef void (*node_done_cb)(void *arg, node_done *list);

#define NODE_NAME_MAX 256
#define NODE_URLS_MAX 1024

/* A member as /v2/members shows it. URLs are comma-joined. */
typedef struct node_member {
  uint64_t id;
  char name[NODE_NAME_MAX];
  char peer_urls[NODE_URLS_MAX];
  char client_urls[NODE_URLS_MAX];
} node_member;

typedef struct node_config {
  bool die_after_snapshot_install; /* test hook: SIGKILL between the store and the log */
  uint64_t id;
  uint64_t cluster_id;
  const char *log_path;     /* the raft log's directory (wal_storage) */
  const char *snapshot_dir; /* where snapshots received are spooled (NULL: in memory); must
                             * outlive the node */
  const char *old_log_path; /* a LevelDB log of an older version, imported when found */
  bool create;            /* the data dir is new: create the log */
  bool sync;              /* fsync log writes */
  uint64_t keep;          /* applied entries kept in the log below the durable point */
  uint64_t snapshot_count;
  unsigned heartbeat_ms;
  unsigned election_ms;
  const node_member *initial; /* --initial-cluster (client_urls empty but for this member) */
  size_t n_initial;
  bool join_existing;     /* --initial-cluster-state existing: wait to be added */
  bool force_new_cluster; /* --force-new-cluster: restart as a one-member cluster (node_force.c) */
  const char *peer_listen; /* the peer URL to listen on (http:// or https://), NULL = none */
  struct tls_session_ctx *peer_tls_server; /* for an https:// peer_listen (the caller's) */
  struct tls_session_ctx *peer_tls_client; /* for https:// peers (the caller's), or NULL */
  const node_member *self; /* this member's attributes, published once a leader exists */
  uint64_t request_timeout_ms;
  struct auth_db *auth;   /* PROTO_OP_AUTH records change it (auth.h) */
  int log_level;          /* NODE_LOG_*: the least level of Raft's lines that are printed */
  uint64_t request_base;  /* the first request id (datadir_request_base); 0: the wall clock's */
} node_config;

/* Log levels (--log-level, PUT /config/local/log). */
enum { NODE_LOG_DEBUG = 0, NODE_LOG_INFO, NODE_LOG_WARN, NODE_LOG_ERROR };

typedef struct node_status {
  uint8_t role;
  uint64_t term;
  uint64_t lead;
  uint64_t commit;
  uint64_t applied;
  uint64_t last_index;
  int64_t leader_since_ns; /* when this member last became leader (wall clock) */
  uint64_t leader_changes; /* times a leader (another one, or the first) became known */
  bool installing;         /* a snapshot from the leader is being installed */
  raft_status raft;        /* the core's view (peers' progress on the leader) */
} node_status;

/* Opens the log, applies committed entries above the store's applied index, starts the
 * threads; loop runs the request timeout timer. Returns 0 or negative errno with a message in
 * err. */
int node_start(node **out, uv_loop_t *loop, store *s, stats *st, const node_config *cfg,
               node_done_cb cb, void *arg, char *err, size_t errlen);

/* Proposes rec (rec->member and rec->id are set here). The outcome reaches cb with ctx: the
 * applied result, or error 300 when it could not be committed within the request timeout.
 * Returns 0 or -ENOMEM. Any thread. */
int node_submit(node *n, proto_record *rec, void *ctx);

/* Proposes a membership change; ctx's outcome has res.error_code 0 when applied. type is a
 * raft_conf_change_type. *id: its request id (for node_cancel). Any thread. */
int node_submit_conf(node *n, uint8_t type, const node_member *m, void *ctx, uint64_t *id);

/* A linearizable read point (ReadIndex): ctx's outcome arrives (res.error_code 0, status 0)
 * once this member's store has applied everything committed when the read was asked for, so a
 * read of the store then sees every write acknowledged before; error 300 when no quorum
 * confirmed the leader in time. Any thread. Returns 0 or -ENOMEM. */
int node_read(node *n, void *ctx, uint64_t *id);

/* The client of request id has gone: its ctx is returned, and no outcome will reach cb for
 * it (nor is it proposed again, or at all if it still waits for a leader); NULL when its
 * outcome is already on its way. The entry, if in the log, may still be applied. Any thread. */
void *node_cancel(node *n, uint64_t id);

/* A consistent copy of the members (returns how many, at most max). Any thread. */
size_t node_members(node *n, node_member *out, size_t max);
/* Whether this member's publication of this start has been applied here (etcd's
 * ReadyNotify), or it has nothing to publish. Any thread. */
bool node_ready(node *n);
/* Whether id was a member and was removed (ids are never reused). Any thread. */
bool node_member_removed(node *n, uint64_t id);
void node_get_status(node *n, node_status *st);
uint64_t node_last_index(node *n);

/* The leader's view of a follower's link, as /v2/stats/leader shows it. */
typedef struct node_peer_stats {
  uint64_t id;
  double latency_ms, latency_avg_ms, latency_sd_ms, latency_min_ms, latency_max_ms;
  uint64_t samples;
  double m2; /* running sum of squared differences (Welford) */
  uint64_t success, fail;
  uint64_t last_recv; /* the peer's message count at the last sample */
  uint64_t recv_seen; /* the peer's message count at the last heartbeat tick */
  int64_t heard_ns;   /* monotonic time of the last heartbeat tick that saw a message from it */
  /* the transport's counters, as of the last heartbeat tick (/metrics) */
  bool connected;
  uint64_t bytes_sent, bytes_recv, snapshots_sent, snapshot_failures;
  /* the round trips sampled: buckets le 0.0001 * 2^i seconds, i < 16, then +Inf (etcd's
   * etcd_network_peer_round_trip_time_seconds) */
  uint64_t rtt_buckets[17];
  double rtt_sum_s;
} node_peer_stats;

/* Fills *ps for peer id (zero when unknown). Any thread. */
void node_get_peer_stats(node *n, uint64_t id, node_peer_stats *ps);
/* Every peer's stats (at most max); returns how many. Any thread. */
size_t node_get_peers_stats(node *n, node_peer_stats *out, size_t max);
/* Whether this member heard from member id within the election timeout (itself: always).
 * Meaningful on the leader, which every live member answers each heartbeat. Any thread. */
bool node_peer_active(node *n, uint64_t id);

/* Finishes what is in flight (a leader hands leadership over first), stops the threads,
 * hands over the last outcomes (errors for requests still waiting) and frees n (loop thread,
 * which then runs its close callbacks). */
void node_stop(node *n);

/* Changes the least level of the Raft and peer lines printed (NODE_LOG_*). Any thread. */
void node_set_log_level(node *n, int level);
int node_log_level(node *n);

/* Test hook: drop all peer traffic with `peer` (0 = every peer) when drop is set. */
void node_set_partition(node *n, uint64_t peer, bool drop);

/* Test hook: drop the next `count` peer messages of raft_msg_type `type` sent to `peer`. */
void node_drop_next(node *n, uint64_t peer, uint8_t type, unsigned count);

/* Test hook: close the message connection to `peer` as a reset would (what it holds is lost). */
void node_break_peer(node *n, uint64_t peer);

#endif
