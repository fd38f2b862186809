/* v2_keys: /v2/keys: validation, dispatch to a local read, a watch, or a proposal, and the
 * response with etcd's headers. */
#include "daemon/v2_keys.h"

#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/v2_auth.h"
#include "daemon/v2_params.h"
#include "proto/v2_json.h"

#define NS_PER_S 1000000000LL

/* A request waiting for its proposal to be applied. */
typedef struct v2_pending {
  server_waiter w; /* first: the server calls w.done */
  server *s;
  http_req *r; /* NULL once the client has gone */
  int no_value_on_success;
} v2_pending;

/* A request waiting for watch events. */
typedef struct v2_watch {
  watcher w;
  server *s;
  watch_hub *hub; /* the hub of the request's loop */
  http_req *r;
} v2_watch;

/* Appends to buf at *o (room permitting) a string, or a number in decimal. */
static void hdr_puts(char *buf, size_t n, size_t *o, const char *str) {
  size_t l = strlen(str);
  if (*o + l < n) {
    memcpy(buf + *o, str, l);
    *o += l;
  }
}

static void hdr_putu(char *buf, size_t n, size_t *o, uint64_t v) {
  char d[21];
  size_t i = sizeof d - 1;
  d[i] = '\0';
  do {
    d[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  hdr_puts(buf, n, o, d + i);
}

/* The etcd headers of an answer (written by hand: this runs for every request). */
static void format_headers(server *s, char *buf, size_t n, uint64_t etcd_index, int with_raft) {
  size_t o = 0;
  hdr_puts(buf, n, &o, "X-Etcd-Cluster-Id: ");
  hdr_puts(buf, n, &o, s->cluster_hex);
  hdr_puts(buf, n, &o, "\r\nX-Etcd-Index: ");
  hdr_putu(buf, n, &o, etcd_index);
  hdr_puts(buf, n, &o, "\r\n");
  if (with_raft) {
    hdr_puts(buf, n, &o, "X-Raft-Index: ");
    hdr_putu(buf, n, &o, store_applied(s->st));
    hdr_puts(buf, n, &o, "\r\nX-Raft-Term: ");
    hdr_putu(buf, n, &o, server_term(s));
    hdr_puts(buf, n, &o, "\r\n");
  }
  buf[o] = '\0';
}

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* etcd's etcd_http_* counters: a request is counted from here (watches only when they fail,
 * as etcd's handler does), then as failed by its status or as a success with its duration. */
static void metric_begin(server *s, http_req *r, const v2_params *p) {
  int m = r->method == HTTP_HEAD     ? STATS_HTTP_HEAD
          : r->method == HTTP_PUT    ? STATS_HTTP_PUT
          : r->method == HTTP_POST   ? STATS_HTTP_POST
          : r->method == HTTP_DELETE ? STATS_HTTP_DELETE
          : p->quorum                ? STATS_HTTP_QGET
                                     : STATS_HTTP_GET;
  r->metric = m + 1;
  r->started_ns = mono_ns();
  if (!p->wait) atomic_fetch_add_explicit(&s->stats.http_received[m], 1, memory_order_relaxed);
}

static void metric_end(server *s, http_req *r, const store_result *res) {
  if (!r->metric) return;
  int m = r->metric - 1;
  r->metric = 0;
  if (res->error_code) {
    if (res->status >= 400 && res->status < 600)
      atomic_fetch_add_explicit(&s->stats.http_failed[m][res->status - 400], 1,
                                memory_order_relaxed);
  } else {
    stats_hist_add_in(&s->stats.http_ok[m], (uint64_t)(mono_ns() - r->started_ns), 500000,
                      STATS_HTTP_BUCKETS);
  }
}

static void respond_result(server *s, http_req *r, const store_result *res, int no_value) {
  char hdr[256];
  format_headers(s, hdr, sizeof hdr, res->etcd_index, res->error_code == 0);
  metric_end(s, r, res);
  if (no_value && !res->error_code && res->action != STORE_ACT_DELETE &&
      res->action != STORE_ACT_CAD && res->action != STORE_ACT_GET) {
    char body[64];
    int n = snprintf(body, sizeof body, "{\"action\":\"%s\"}\n", store_action_name(res->action));
    http_respond(r, res->status, hdr, "application/json", body, (size_t)n);
    return;
  }
  http_respond(r, res->status, hdr, "application/json", res->body, res->body_len);
}

static void respond_error(server *s, http_req *r, int code, const char *cause, uint64_t index) {
  store_result res = {0};
  store_result_error(&res, code, cause, cause ? strlen(cause) : 0, index);
  respond_result(s, r, &res, 0);
  store_result_free(&res);
}

/* ------------------------------------------------------------------ proposals */

static void pending_abort(http_req *r) {
  v2_pending *p = r->data;
  if (server_cancel(p->s, &p->w)) free(p);
  else p->r = NULL;
}

static void pending_done(server *s, server_waiter *w, store_result *res) {
  v2_pending *p = (v2_pending *)w;
  if (p->r) respond_result(s, p->r, res, p->no_value_on_success);
  free(p);
}

static void propose(server *s, http_req *r, proto_record *rec, int no_value) {
  v2_pending *p = calloc(1, sizeof *p);
  if (!p) abort();
  p->w.done = pending_done;
  p->w.shard = server_shard_of(r)->id;
  p->s = s;
  p->r = r;
  p->no_value_on_success = no_value;
  r->data = p;
  r->on_abort = pending_abort;
  if (server_propose(s, rec, &p->w)) {
    r->on_abort = NULL;
    free(p);
    respond_error(s, r, 300, "cannot propose", store_index(s->st));
  }
}

/* A quorum read waiting for its read index (ReadIndex: no log entry) to be applied here. */
typedef struct v2_read {
  server_waiter w; /* first: the server calls w.done */
  http_req *r;     /* NULL once the client has gone */
  char *key;
  size_t key_len;
  int recursive, sorted;
} v2_read;

static void read_abort(http_req *r) {
  v2_read *q = r->data;
  if (server_cancel(server_shard_of(r)->srv, &q->w)) {
    free(q->key);
    free(q);
  } else {
    q->r = NULL;
  }
}

static void read_done(server *s, server_waiter *w, store_result *res) {
  v2_read *q = (v2_read *)w;
  if (q->r) {
    q->r->on_abort = NULL;
    if (res->error_code) {
      respond_result(s, q->r, res, 0);
    } else {
      store_result out;
      store_get(s->st, q->key, q->key_len, q->recursive, q->sorted, server_now_ns(), &out);
      respond_result(s, q->r, &out, 0);
      store_result_free(&out);
    }
  }
  free(q->key);
  free(q);
}

static void quorum_read(server *s, http_req *r, const char *key, size_t key_len, int recursive,
                        int sorted) {
  v2_read *q = calloc(1, sizeof *q);
  if (!q) abort();
  q->w.done = read_done;
  q->w.shard = server_shard_of(r)->id;
  q->r = r;
  q->key = malloc(key_len + 1);
  if (!q->key) abort();
  memcpy(q->key, key, key_len);
  q->key[key_len] = 0;
  q->key_len = key_len;
  q->recursive = recursive;
  q->sorted = sorted;
  r->data = q;
  r->on_abort = read_abort;
  node_read(s->node, &q->w, &q->w.id);
}

/* ------------------------------------------------------------------ watches */

static void watch_free(v2_watch *wt) {
  free(wt->w.key);
  free(wt);
}

static void watch_abort(http_req *r) {
  v2_watch *wt = r->data;
  watch_hub_remove(wt->hub, &wt->w);
  watch_free(wt);
}

static void watch_event(watcher *w, store_event *e) {
  v2_watch *wt = w->data;
  if (!e) { /* cleared: this member installed a snapshot (etcd: error 400, and the end) */
    char body[160];
    int n = snprintf(body, sizeof body,
                     "{\"errorCode\":400,\"message\":\"watcher is cleared due to etcd "
                     "recovery\",\"cause\":\"%s\",\"index\":%" PRIu64 "}\n",
                     "watcher cleared", store_index(wt->s->st));
    http_stream_write_last(wt->r, body, (size_t)n);
    watch_free(wt);
    return;
  }
  if (w->stream) {
    http_stream_write(wt->r, e->json, e->json_len);
  } else {
    http_stream_write_last(wt->r, e->json, e->json_len); /* clears on_abort: finished */
    watch_free(wt);
  }
}

static void start_watch(server *s, http_req *r, const char *key, size_t key_len, v2_params *p) {
  v2_watch *wt = calloc(1, sizeof *wt);
  if (!wt) abort();
  wt->s = s;
  wt->r = r;
  wt->w.key = malloc(key_len + 1);
  if (!wt->w.key) abort();
  memcpy(wt->w.key, key, key_len);
  wt->w.key[key_len] = 0;
  wt->w.key_len = key_len;
  wt->w.recursive = p->recursive;
  wt->w.stream = p->stream;
  wt->w.cb = watch_event;
  wt->w.data = wt;
  watch_hub *hub = wt->hub = server_shard_of(r)->hub;
  /* This loop's hub may not have the newest events yet (they reach every loop's hub in log
   * order, the answer's loop first): what it has is scanned, later events will come, and a
   * watch from "now" starts after the store's index, as etcd's does. */
  uint64_t hub_index = watch_hub_index(hub);
  uint64_t index = store_index(s->st);
  if (index < hub_index) index = hub_index;
  store_event *hit = NULL;
  if (p->wait_index) {
    uint64_t cleared = 0;
    hit = watch_hub_scan(hub, &wt->w, p->wait_index, &cleared);
    if (cleared) {
      char cause[96];
      snprintf(cause, sizeof cause, "the requested history has been cleared [%" PRIu64 "/%" PRIu64 "]",
               cleared, p->wait_index);
      watch_free(wt);
      respond_error(s, r, 401, cause, index);
      return;
    }
  }
  char hdr[256];
  format_headers(s, hdr, sizeof hdr, index, 1);
  /* The head goes at once to a watcher that waits (as etcd flushes it), with the answer to
   * one that the history answers already. */
  http_stream_begin(r, 200, hdr, "application/json", !hit);
  if (hit && !p->stream) {
    http_stream_write_last(r, hit->json, hit->json_len);
    watch_free(wt);
    return;
  }
  uint64_t since = p->wait_index ? p->wait_index : index + 1;
  /* A stream replays every matching event still in history, then follows live ones. */
  while (hit) {
    http_stream_write(r, hit->json, hit->json_len);
    uint64_t cleared;
    since = hit->index + 1;
    hit = watch_hub_scan(hub, &wt->w, since, &cleared);
  }
  if (since <= hub_index) since = hub_index + 1;
  wt->w.since = since;
  r->data = wt;
  r->on_abort = watch_abort;
  watch_hub_add(hub, &wt->w);
}

/* ------------------------------------------------------------------ dispatch */

void v2_keys_handle(server *s, http_req *r, const char *key, size_t key_len, const char *acl_key,
                    size_t acl_len) {
  v2_params p;
  int code = v2_params_parse(&p, r);
  if (code) {
    respond_error(s, r, code, p.cause, 0);
    v2_params_free(&p);
    return;
  }
  if (auth_db_enabled(s->auth)) { /* (after the parameters, as etcd checks) */
    auth_who who;
    char cn[256];
    v2_auth_who(s, r, &who, cn, sizeof cn);
    bool write = r->method != HTTP_GET && r->method != HTTP_HEAD;
    if (!auth_db_key_access(s->auth, &who, acl_key, acl_len, p.recursive, write)) {
      respond_error(s, r, 110, "Insufficient credentials", 0);
      v2_params_free(&p);
      return;
    }
  }
  int64_t now = server_now_ns();
  proto_record rec = {.path = key, .path_len = key_len, .time = now};
  if (p.has_ttl) {
    if ((int64_t)p.ttl > (INT64_MAX - now) / NS_PER_S) {
      respond_error(s, r, 202, "invalid value for \"ttl\"", 0);
      v2_params_free(&p);
      return;
    }
    rec.flags |= PROTO_REC_TTL;
    rec.expiration = now + (int64_t)p.ttl * NS_PER_S;
  }
  metric_begin(s, r, &p); /* (a request that parsed and passed the ACL, as etcd counts) */
  if (p.dir) rec.flags |= PROTO_REC_DIR;
  if (p.recursive) rec.flags |= PROTO_REC_RECURSIVE;
  if (p.sorted) rec.flags |= PROTO_REC_SORTED;
  if (p.refresh) rec.flags |= PROTO_REC_REFRESH;
  if (p.prev_value) {
    rec.flags |= PROTO_REC_PREV_VALUE;
    rec.prev_value = p.prev_value;
    rec.prev_value_len = p.prev_value_len;
  }
  rec.prev_index = p.prev_index;
  rec.value = p.value;
  rec.value_len = p.value_len;
  switch (r->method) {
    case HTTP_GET:
    case HTTP_HEAD:
      if (p.wait) {
        start_watch(s, r, key, key_len, &p);
      } else if (p.quorum && server_voters(s) > 1) {
        /* Linearizable: ReadIndex confirms this member's view with a quorum, then the local
         * store answers once it has applied that far. (PROTO_OP_QGET, a read through the log,
         * is kept for records written by older versions.) */
        quorum_read(s, r, key, key_len, p.recursive, p.sorted);
      } else {
        /* A plain read, or a quorum read on a one-member cluster: every acknowledged write is
         * already in the store (writes are answered only after their group is written), and
         * nothing committed elsewhere can be missing, so the local read is linearizable — the
         * ReadIndex argument with a commit index this member alone decides. */
        store_result res;
        store_get(s->st, key, key_len, p.recursive, p.sorted, now, &res);
        respond_result(s, r, &res, 0);
        store_result_free(&res);
      }
      break;
    case HTTP_PUT:
      if (p.prev_exist == 1) {
        rec.op = (p.prev_index == 0 && !p.prev_value) ? PROTO_OP_UPDATE : PROTO_OP_CAS;
        rec.flags |= PROTO_REC_PREV_EXIST;
      } else if (p.prev_exist == 0) {
        rec.op = PROTO_OP_CREATE;
      } else if (p.prev_value || p.prev_index) {
        rec.op = PROTO_OP_CAS;
      } else {
        rec.op = PROTO_OP_SET;
      }
      propose(s, r, &rec, p.no_value_on_success);
      break;
    case HTTP_POST:
      rec.op = PROTO_OP_POST;
      propose(s, r, &rec, p.no_value_on_success);
      break;
    case HTTP_DELETE:
      rec.op = (p.prev_value || p.prev_index) ? PROTO_OP_CAD : PROTO_OP_DELETE;
      propose(s, r, &rec, 0);
      break;
    default:
      break;
  }
  v2_params_free(&p);
}
