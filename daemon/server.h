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
#include "daemon/wal.h"
#include "daemon/watch_hub.h"

typedef struct server {
  const config *cfg;
  uv_loop_t *loop;
  store *st;
  wal *log;
  watch_hub *hub;
  http_server *http;
  stats stats;
  uint64_t member_id;
  uint64_t cluster_id;
  uint64_t raft_term;
  unsigned members;        /* voting members in the cluster */
  uint64_t next_request_id;
  int64_t leader_since_ns; /* when this member became leader (wall clock) */
  uv_timer_t ttl_timer;
  uv_signal_t sigint, sigterm;
  int sync_pending;        /* a SYNC record is in the log and not yet applied */
  char id_hex[17];
  char cluster_hex[17];
} server;

/* Opens the data dir, recovers, listens. Returns 0 or negative errno with err filled. */
int server_start(server *s, const config *cfg, uv_loop_t *loop, char *err, size_t errlen);
/* Stops serving, drains the log and frees everything (loop thread). */
void server_stop(server *s);

/* Wall clock in ns since the epoch. */
int64_t server_now_ns(void);

/* Proposes rec; the outcome reaches done(ctx, ...) through the wal callback. */
int server_propose(server *s, proto_record *rec, void *ctx);

#endif
