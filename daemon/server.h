/* server: one quorumd member: its loop, store, log, watcher hub, HTTP server, identity and
 * timers, wired together. Everything the HTTP handlers need is reached from here. */
#ifndef QUORUM_DAEMON_SERVER_H
#define QUORUM_DAEMON_SERVER_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/http_server.h"
#include "daemon/stats.h"
#include "daemon/store.h"
#include "daemon/node.h"
#include "daemon/watch_hub.h"

typedef struct server server;

/* What waits for a proposal's outcome: the first member of every proposal context. done runs
 * on the loop of shard `shard` (the one the request came in on). */
typedef struct server_waiter {
  void (*done)(server *s, struct server_waiter *w, store_result *res);
  unsigned shard;
  uint64_t id;     /* the node's request id (set when it is submitted) */
  uint8_t counted; /* a write: counted in proposals_pending */
} server_waiter;

/* The context of SYNC proposals: no request waits (shard 0 clears sync_pending). */
#define SERVER_SYNC_CTX ((void *)1)

#define SERVER_MAX_SHARDS 8

typedef struct routes_held routes_held;

/* One HTTP loop (server_shard.c): its HTTP server, its watcher hub, and the outcomes queued
 * for it. Shard 0 is the main loop. */
typedef struct server_shard {
  server *srv;
  unsigned id;
  uv_loop_t *loop;
  watch_hub *hub;
  http_server *http;
  uv_async_t out_async;   /* outcomes are queued */
  uv_async_t stop_async;  /* shards > 0: close and end the loop */
  pthread_mutex_t mu;     /* guards the queue and out_closed */
  node_done *out_head, *out_tail;
  int out_closed;         /* out_async is closed: queue without waking */
  uv_loop_t own;          /* the loop of a shard > 0 */
  int own_ok, running;
  int out_ok;             /* out_async is initialized */
  uint64_t loaded;        /* the newest event of the history the hub was opened with */
  unsigned lag_ms;        /* test hook: outcomes are delivered this late (lag_timer) */
  uv_timer_t lag_timer;
  pthread_t thread;
  uv_timer_t ready_timer; /* requests held until the member is ready (routes_ready.c) */
  int ready_timer_ok;
  struct routes_held *held_head, *held_tail;
} server_shard;

struct server {
  const config *cfg;
  uv_loop_t *loop;
  store *st;
  struct auth_db *auth;    /* /v2/auth's state (auth.h) */
  node *node;
  server_shard *shards;   /* the HTTP loops */
  unsigned n_shards;
  http_server **spread;   /* their HTTP servers */
  http_server *metrics_http; /* --listen-metrics-urls, on the main loop (or NULL) */
  stats stats;
  uint64_t member_id;
  uint64_t cluster_id;
  node_member *initial;    /* --initial-cluster, ids computed */
  size_t n_initial;
  node_member self;
  int test_hooks;          /* QUORUMD_TEST_HOOKS=1: /debug/partition answers */
  uv_timer_t ttl_timer;
  uv_timer_t ready_notify;  /* until the member is ready: then systemd's READY=1 (main loop) */
  uv_signal_t sigint, sigterm;
  int sync_pending;        /* a SYNC record is in the log and not yet applied */
  char id_hex[17];
  char cluster_hex[17];
  char *fallback_cluster;  /* server_start's -EUSERS: discovery found the cluster full; this is
                            * it, in --initial-cluster form (the caller frees it) */
  struct tls_session_ctx *peer_tls_server; /* https:// peer URLs (owned) */
  struct tls_session_ctx *peer_tls_client;
};

/* Opens the data dir, recovers, listens. Returns 0 or negative errno with err filled. */
int server_start(server *s, const config *cfg, uv_loop_t *loop, char *err, size_t errlen);
/* Stops serving, drains the log and frees everything (loop thread). */
void server_stop(server *s);

/* server_shard.c. Makes the queues and loops of n HTTP loops (shard 0 on s->loop), before
 * the node starts: it may hand outcomes over at once. Returns 0 or negative errno. */
int server_shards_init(server *s, unsigned n, char *err, size_t errlen);
/* Gives every shard its hub and HTTP server, shard 0 listening on the client URLs with tls
 * (owned from now on) and spreading connections over all, and starts the other loops'
 * threads. Returns 0 or negative errno with err filled. */
int server_shards_open(server *s, http_limits lim, struct tls_session_ctx *tls, char *err,
                       size_t errlen);
/* The node's outcome callback (any thread). */
void server_shards_sink(void *arg, node_done *list);
/* Closes listeners and connections and ends the other loops (main loop thread). */
void server_shards_stop(server *s);
/* After the node has stopped: runs the last outcomes and frees the shards. */
void server_shards_free(server *s);
/* The shard a request came in on. */
server_shard *server_shard_of(http_req *r);
/* The number of HTTP loops when not configured: one per two CPUs, 1 to SERVER_MAX_SHARDS. */
unsigned server_default_loops(void);

/* Wall clock in ns since the epoch. */
int64_t server_now_ns(void);

/* Proposes rec; the outcome reaches w->done on the loop thread. */
int server_propose(server *s, proto_record *rec, server_waiter *w);
/* w's client has gone (an on_abort): true when w was withdrawn (no done will come, the caller
 * frees it; a write is then not proposed again after losing its leader), false when its
 * outcome is already on its way to done. Loop thread. */
bool server_cancel(server *s, server_waiter *w);

/* The Raft term and the number of voting members now. */
uint64_t server_term(server *s);
size_t server_voters(server *s);

#endif
