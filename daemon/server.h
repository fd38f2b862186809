/* server: one quorumd member: its loop, store, log, watcher hub, HTTP server, identity and
 * timers, wired together. Everything the HTTP handlers need is reached from here. */
#ifndef QUORUM_DAEMON_SERVER_H
#define QUORUM_DAEMON_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/http_server.h"
#include "daemon/stats.h"
#include "daemon/store.h"
#include "daemon/node.h"
#include "daemon/watch_hub.h"

typedef struct server server;

/* What waits for a proposal's outcome: the first member of every proposal context. */
typedef struct server_waiter {
  void (*done)(server *s, struct server_waiter *w, store_result *res);
} server_waiter;

struct server {
  const config *cfg;
  uv_loop_t *loop;
  store *st;
  node *node;
  watch_hub *hub;
  http_server *http;
  stats stats;
  uint64_t member_id;
  uint64_t cluster_id;
  node_member *initial;    /* --initial-cluster, ids computed */
  size_t n_initial;
  node_member self;
  int test_hooks;          /* QUORUMD_TEST_HOOKS=1: /debug/partition answers */
  uv_timer_t ttl_timer;
  uv_signal_t sigint, sigterm;
  int sync_pending;        /* a SYNC record is in the log and not yet applied */
  char id_hex[17];
  char cluster_hex[17];
  struct tls_session_ctx *peer_tls_server; /* https:// peer URLs (owned) */
  struct tls_session_ctx *peer_tls_client;
};

/* Opens the data dir, recovers, listens. Returns 0 or negative errno with err filled. */
int server_start(server *s, const config *cfg, uv_loop_t *loop, char *err, size_t errlen);
/* Stops serving, drains the log and frees everything (loop thread). */
void server_stop(server *s);

/* Wall clock in ns since the epoch. */
int64_t server_now_ns(void);

/* Proposes rec; the outcome reaches w->done on the loop thread. */
int server_propose(server *s, proto_record *rec, server_waiter *w);

/* The Raft term and the number of voting members now. */
uint64_t server_term(server *s);
size_t server_voters(server *s);

#endif
