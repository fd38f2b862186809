/* v2_client: an etcd v2 HTTP client on libcurl, shared by quorumctl and the FUSE client: a list
 * of endpoints tried in turn (failover, like etcd's Go client), a member sync from /v2/members,
 * per-request and total timeouts, TLS files, basic auth, and the v2 JSON bodies parsed with
 * yajl's tree API into plain structs. No globals: everything lives in a proto_v2_client. */
#ifndef QUORUM_PROTO_V2_CLIENT_H
#define QUORUM_PROTO_V2_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ errors */

/* Why a request failed before any HTTP answer could be used. */
typedef enum proto_v2_fail {
  PROTO_V2_OK = 0,
  PROTO_V2_CLUSTER,   /* every endpoint failed: see the per-endpoint messages */
  PROTO_V2_DEADLINE,  /* the total timeout ran out ("context deadline exceeded") */
  PROTO_V2_NOMEM,
  PROTO_V2_CONFIG,    /* the client's own TLS files are unusable (msg[0]; etcdctl exits 1) */
} proto_v2_fail;

#define PROTO_V2_MAX_ERRORS 16

/* Per-endpoint failures, worded as etcd's Go client words them
 * ("dial tcp 127.0.0.1:1: connect: connection refused"). */
typedef struct proto_v2_errors {
  proto_v2_fail kind;
  size_t n;
  char msg[PROTO_V2_MAX_ERRORS][256];
  int all_connection; /* every failure was a dial/read/timeout failure (etcdctl exit code 2) */
} proto_v2_errors;

/* "client: etcd cluster is unavailable or misconfigured; error #0: ...\n" (etcd's
 * ClusterError.Error()) or "context deadline exceeded". Returns a malloc'd string. */
char *proto_v2_errors_text(const proto_v2_errors *e);

/* "error #0: ...\n..." (ClusterError.Detail()); malloc'd, "" when not a cluster error. */
char *proto_v2_errors_detail(const proto_v2_errors *e);

/* ------------------------------------------------------------------ client */

typedef struct proto_v2_client_opts {
  const char *const *endpoints; /* URLs; a missing scheme means http:// */
  size_t n_endpoints;
  const char *cert_file, *key_file, *ca_file; /* TLS; NULL or "" = unused */
  const char *username, *password;            /* basic auth when username is set */
  const char *proxy;        /* an HTTP proxy for every request (NULL or "": libcurl's default,
                             * which follows the http_proxy variables) */
  long request_timeout_ms;  /* until a response (not for waits); 0 = none */
  long total_timeout_ms;    /* for the whole command (not for waits); 0 = none */
  long dial_timeout_ms;     /* connect; 0 = 30 s or the total timeout if smaller */
  int share_total;          /* a request tries each endpoint left for at most an equal share
                             * of what is left of the total timeout, and the last one for all
                             * of what is left, request_timeout_ms notwithstanding (quorumfs: a
                             * member that holds requests leaves time for the others, and a
                             * slow lone member gets the whole op_timeout); 0: the first may
                             * take all of it, as with etcdctl */
  int debug;                /* print each request as a cURL command on stderr */
  int insecure;             /* https: the server's certificate is not verified (the self-signed
                             * ones of --peer-auto-tls members, as etcd's client does) */
} proto_v2_client_opts;

typedef struct proto_v2_client proto_v2_client;

/* NULL on out-of-memory or when libcurl cannot start. */
proto_v2_client *proto_v2_client_new(const proto_v2_client_opts *opts);
void proto_v2_client_free(proto_v2_client *c);

size_t proto_v2_client_n_endpoints(const proto_v2_client *c);
const char *proto_v2_client_endpoint(const proto_v2_client *c, size_t i);
/* The index of the endpoint that gave the last answer (the one tried first next time). */
size_t proto_v2_client_pinned(const proto_v2_client *c);

/* Replaces the endpoints (the new list is copied). Returns 0, or -1 on out-of-memory. */
int proto_v2_client_set_endpoints(proto_v2_client *c, const char *const *eps, size_t n);

/* A response as it came: status, X-Etcd-Index, body (NUL-terminated). */
typedef struct proto_v2_resp {
  long status;
  int has_index;
  uint64_t etcd_index;
  char *body;
  size_t body_len;
  const char *endpoint; /* the endpoint that answered (owned by the client) */
} proto_v2_resp;

void proto_v2_resp_free(proto_v2_resp *r);

/* One request. path is the URL path (already escaped) plus an optional "?query"; body (may be
 * NULL) is sent with content_type. wait=1: no request/total timeout (watches). Tries the
 * endpoints starting with the last one that answered; a connection failure or a 5xx moves on
 * to the next. Returns 0 with *r filled, or -1 with *err filled. */
int proto_v2_do(proto_v2_client *c, const char *method, const char *path, const char *content_type,
                const char *body, int wait, proto_v2_resp *r, proto_v2_errors *err);

/* The same against one absolute URL only (cluster-health's GET <client-url>/health). */
int proto_v2_get_url(proto_v2_client *c, const char *url, proto_v2_resp *r, proto_v2_errors *err);

/* CANCEL (NULL: none) is polled during every transfer (at least once a second); when it returns
 * nonzero the transfer is abandoned and the request fails like a lost connection. */
void proto_v2_client_set_cancel(proto_v2_client *c, int (*cancel)(void *ud), void *ud);

/* Starts the total-timeout clock (the whole command shares one deadline, as in etcdctl). */
void proto_v2_client_start_clock(proto_v2_client *c);

/* ------------------------------------------------------------------ members */

typedef struct proto_v2_member {
  char *id, *name;
  char **peer_urls;
  size_t n_peer;
  char **client_urls;
  size_t n_client;
} proto_v2_member;

typedef struct proto_v2_members {
  proto_v2_member *m;
  size_t n;
} proto_v2_members;

void proto_v2_members_free(proto_v2_members *ms);
void proto_v2_member_free(proto_v2_member *m);

/* Parses {"members":[...]} into *out. Returns 0 or -1. */
int proto_v2_parse_members(const char *body, proto_v2_members *out);
/* Parses one member object. Returns 0 or -1. */
int proto_v2_parse_member(const char *body, proto_v2_member *out);

/* GET /v2/members. Returns 0; -1 with *err (transport); -2 when the answer was not a member
 * list (a non-200 status or bad JSON: *status_out tells which). */
int proto_v2_list_members(proto_v2_client *c, proto_v2_members *out, proto_v2_errors *err,
                          long *status_out);

/* etcdctl's sync: the endpoints become every member's client URLs. Same returns as
 * proto_v2_list_members; 1 when the members publish no client URL (endpoints unchanged). */
int proto_v2_sync(proto_v2_client *c, proto_v2_errors *err);

/* ------------------------------------------------------------------ keys */

/* A node as the Go client decodes it: absent strings are "" and absent numbers 0. */
typedef struct proto_v2_knode {
  char *key;
  int dir;
  char *value;      /* may hold NUL bytes: value_len is its length */
  size_t value_len;
  char *expiration; /* NULL when absent */
  int64_t ttl;
  uint64_t created_index, modified_index;
  int has_nodes;    /* "nodes" was present (even empty) */
  struct proto_v2_knode *nodes;
  size_t n_nodes;
} proto_v2_knode;

typedef struct proto_v2_event {
  char *action;
  proto_v2_knode *node;      /* NULL when absent */
  proto_v2_knode *prev_node; /* NULL when absent */
  uint64_t index;            /* X-Etcd-Index */
} proto_v2_event;

typedef struct proto_v2_error {
  int code;
  char *message, *cause;
  uint64_t index;
} proto_v2_error;

void proto_v2_event_free(proto_v2_event *ev);
void proto_v2_knode_free(proto_v2_knode *n); /* frees the contents, not n itself */
void proto_v2_error_free(proto_v2_error *e);

/* Parses an event body. Returns 0 or -1 (not JSON / not an object). */
int proto_v2_parse_event(const char *body, proto_v2_event *ev);
/* Parses an error body {"errorCode":...}. Returns 0 or -1. */
int proto_v2_parse_error(const char *body, proto_v2_error *e);

/* ------------------------------------------------------------------ URL building */

/* A growable string. */
typedef struct proto_v2_buf {
  char *s;
  size_t len, cap;
  int oom;
} proto_v2_buf;

void proto_v2_buf_add(proto_v2_buf *b, const char *s, size_t n);
void proto_v2_buf_adds(proto_v2_buf *b, const char *s);
void proto_v2_buf_free(proto_v2_buf *b);

/* "/v2/keys" + key cleaned like Go's path.Clean (a trailing slash kept) and escaped like Go's
 * URL path escaping. */
void proto_v2_keys_path(proto_v2_buf *b, const char *key);

/* Go's path.Clean of p taken as an absolute path ("a/../b/" gives "/b"); out has room for
 * strlen(p) + 2 bytes. */
void proto_v2_path_clean(const char *p, char *out);

/* "/v2/auth/<action>[/<name>]" as etcd's Go client builds it (path.Join: cleaned, an empty name
 * left out), escaped like Go's URL path escaping. action: "users", "roles" or "enable". */
void proto_v2_auth_path(proto_v2_buf *b, const char *action, const char *name);

/* Appends "name=value" query-escaped (like url.Values.Encode), with '&' before when the buffer
 * does not end in '?' and is not empty. */
void proto_v2_add_param(proto_v2_buf *b, const char *name, const char *value);
/* The same for a value of LEN bytes (NUL bytes included). */
void proto_v2_add_param_n(proto_v2_buf *b, const char *name, const char *value, size_t len);

#endif
