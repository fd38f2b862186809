/* routes: the table that maps request paths to handlers, and the mux behaviours etcd's Go
 * HTTP mux has (301 to the cleaned path, 404 and 405 texts, CORS preflight). */
#ifndef QUORUM_DAEMON_ROUTES_H
#define QUORUM_DAEMON_ROUTES_H

#include "daemon/http_server.h"
#include "daemon/server.h"
#include "proto/v2_json.h"

/* The http_server handler: arg is the server. */
void routes_dispatch(void *arg, http_req *r);
/* The handler of --listen-metrics-urls: GET /metrics and /health, 404 for the rest. */
void routes_metrics_dispatch(void *arg, http_req *r);

/* Small shared answers. */
void routes_text(http_req *r, int status, const char *allow, const char *text);
void routes_json(server *s, http_req *r, int status, const char *body, size_t len, int cluster_hdr);
/* {"message":msg} as etcd's HTTPError writes it (no newline), with or without
 * X-Etcd-Cluster-Id. */
void routes_message(server *s, http_req *r, int status, const char *msg, int cluster_hdr);
/* Answers with the JSON in g (and frees g). */
void routes_json_gen(server *s, http_req *r, int status, yajl_gen g, int cluster_hdr);

/* Handlers living in their own files. */
void stats_handle_self(server *s, http_req *r);
void stats_handle_store(server *s, http_req *r);
void stats_handle_leader(server *s, http_req *r);
void members_handle(server *s, http_req *r, const char *rest, size_t rest_len);
void members_handle_machines(server *s, http_req *r);
/* Test hook (QUORUMD_TEST_HOOKS=1 only): POST /debug/partition?peer=HEX|all&drop=1|0 drops
 * all Raft traffic with that peer, to make partitions in whole-program tests. */
void members_handle_partition(server *s, http_req *r, const char *query);
void metrics_handle(server *s, http_req *r);
/* etcd's GET /debug/vars and PUT /config/local/log (debug_vars.c). */
void debug_handle_vars(server *s, http_req *r);
void debug_handle_log(server *s, http_req *r);

#endif
