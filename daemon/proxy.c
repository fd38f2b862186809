/* proxy: quorumd as etcd's v2 proxy (--proxy on|readonly). No Raft and no store: every
 * client request goes on to a member's client URL, and its answer comes back as it arrives
 * (a watch's events one by one). The members' client URLs come from GET /members on the
 * cluster's peer URLs (--initial-cluster; etcd's members and quorumd's answer it), asked
 * again every --proxy-refresh-interval; the peer URLs last found are kept, as etcd's proxy
 * keeps them, in DATA-DIR/proxy/cluster ({"PeerURLs":[...]}), which a restart starts from. A member that cannot be reached is left out for
 * --proxy-failure-wait, and the request tried on the next one as long as no answer has begun.
 * readonly: anything but GET gets 501, as etcd's. GET /v2/config/local/proxy lists the
 * members in use. */
#include "daemon/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "daemon/http_server.h"
#include "daemon/proxy_upstream.h"
#include "proto/tls_session.h"
#include "proto/v2_json.h"
#include "raft/transport/transport.h"

#define MAX_ENDPOINTS 64
#define MAX_PEERS 64

typedef struct endpoint {
  char url[256];        /* http(s)://host:port */
  char hostport[200];
  char host[200];       /* what an https:// member's certificate must name */
  int tls;
  struct sockaddr_storage addr;
  uint64_t down_until;  /* uv_now: left out until then */
} endpoint;

/* "http(s)://host:port[/...]" → the endpoint's address fields. Returns 0 or -1. */
static int endpoint_parse(const char *url, endpoint *e) {
  int tls = !strncmp(url, "https://", 8);
  if (!tls && strncmp(url, "http://", 7)) return -1;
  const char *h = url + (tls ? 8 : 7);
  size_t n = strcspn(h, "/");
  if (!n || n >= sizeof e->hostport || strlen(url) >= sizeof e->url) return -1;
  memcpy(e->hostport, h, n);
  e->hostport[n] = 0;
  if (raft_transport_parse_addr(e->hostport, &e->addr)) return -1;
  const char *colon = strrchr(e->hostport, ':');
  size_t hl = colon ? (size_t)(colon - e->hostport) : n;
  const char *hs = e->hostport;
  if (hl >= 2 && hs[0] == '[' && hs[hl - 1] == ']') { /* [v6] */
    hs++;
    hl -= 2;
  }
  memcpy(e->host, hs, hl);
  e->host[hl] = 0;
  snprintf(e->url, sizeof e->url, "%s", url);
  e->tls = tls;
  return 0;
}

struct proxy {
  const config *cfg;
  uv_loop_t *loop;
  http_server *http;
  tls_session_ctx *tls;       /* for https:// members: the --peer-* files, as etcd's proxy */
  int readonly;
  char peers[MAX_PEERS][256]; /* peer URLs to ask for /members */
  size_t n_peers;
  endpoint eps[MAX_ENDPOINTS];
  size_t n_eps;
  unsigned rr;                /* where the next request starts in eps */
  uv_timer_t refresh;
  upstream *members_up;       /* the /members request in flight */
  upstream_pool *pool;        /* kept-alive connections to the members */
  size_t peer_i;              /* which peer it went to */
  int members_status;
  sbuf members_body;
  int saved;                  /* the peer URLs are in DATA-DIR/proxy/cluster */
  uv_signal_t sigint, sigterm;
};

/* One client request on its way. */
typedef struct forward {
  proxy *p;
  http_req *r;       /* NULL once the client has gone */
  upstream *up;
  char *request;     /* the bytes sent to a member (a copy per attempt) */
  size_t request_len;
  size_t tried;      /* endpoints tried */
  size_t scanned;    /* endpoints looked at (tried, or skipped as left out) */
  char ep_url[256];  /* the one being tried */
  size_t next;       /* the next index into eps to try */
  int watch;         /* the query asks for a watch (wait=...) */
  int streaming;     /* the answer goes out chunked as it arrives */
  int status;
  sbuf headers, content_type, body; /* a whole answer, when not streaming */
} forward;

static uint64_t now_ms(proxy *p) { return uv_now(p->loop); }


/* ------------------------------------------------------------------ members */

static void refresh_soon(proxy *p, uint64_t ms);

static void cluster_file(const proxy *p, char *path, size_t n, const char *suffix) {
  snprintf(path, n, "%s/proxy/cluster%s", p->cfg->data_dir, suffix);
}

/* Keeps the peer URLs in DATA-DIR/proxy/cluster (written aside, synced, renamed). */
static void save_peers(proxy *p) {
  char dir[4200], path[4200], tmp[4200];
  snprintf(dir, sizeof dir, "%s/proxy", p->cfg->data_dir);
  mkdir(p->cfg->data_dir, 0700);
  mkdir(dir, 0700);
  cluster_file(p, path, sizeof path, "");
  cluster_file(p, tmp, sizeof tmp, ".tmp");
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "PeerURLs");
  yajl_gen_array_open(g);
  for (size_t i = 0; i < p->n_peers; i++) proto_v2_gen_cstr(g, p->peers[i]);
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  int ok = fd >= 0 && write(fd, buf, len) == (ssize_t)len && fsync(fd) == 0;
  if (fd >= 0) close(fd);
  if (!ok || rename(tmp, path))
    fprintf(stderr, "quorumd: proxy: cannot write %s: %s\n", path, strerror(errno));
  yajl_gen_free(g);
}

/* The peer URLs kept by an earlier run, if any. Returns how many. */
static size_t load_peers(proxy *p) {
  char path[4200];
  cluster_file(p, path, sizeof path, "");
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char buf[16384];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  yajl_val v = yajl_tree_parse(buf, NULL, 0);
  const char *kp[] = {"PeerURLs", NULL};
  yajl_val a = v ? yajl_tree_get(v, kp, yajl_t_array) : NULL;
  size_t got = 0;
  for (size_t i = 0; a && i < a->u.array.len && got < MAX_PEERS; i++) {
    const char *u = YAJL_GET_STRING(a->u.array.values[i]);
    if (u && strlen(u) < sizeof p->peers[0]) snprintf(p->peers[got++], sizeof p->peers[0], "%s", u);
  }
  if (v) yajl_tree_free(v);
  if (got) {
    p->n_peers = got;
    fprintf(stderr, "quorumd: proxy: using the peer URLs kept in %s\n", path);
  }
  return got;
}

static void set_endpoints(proxy *p, yajl_val members) {
  endpoint eps[MAX_ENDPOINTS];
  size_t n = 0;
  char peers[MAX_PEERS][256];
  size_t np = 0;
  for (size_t i = 0; i < members->u.array.len; i++) {
    yajl_val m = members->u.array.values[i];
    const char *cpath[] = {"clientURLs", NULL}, *ppath[] = {"peerURLs", NULL};
    yajl_val cu = yajl_tree_get(m, cpath, yajl_t_array), pu = yajl_tree_get(m, ppath, yajl_t_array);
    for (size_t j = 0; cu && j < cu->u.array.len && n < MAX_ENDPOINTS; j++) {
      const char *u = YAJL_GET_STRING(cu->u.array.values[j]);
      endpoint e = {0};
      if (!u || endpoint_parse(u, &e)) continue;
      for (size_t k = 0; k < p->n_eps; k++) /* a member left out stays left out */
        if (!strcmp(p->eps[k].url, e.url)) e.down_until = p->eps[k].down_until;
      eps[n++] = e;
    }
    for (size_t j = 0; pu && j < pu->u.array.len && np < MAX_PEERS; j++) {
      const char *u = YAJL_GET_STRING(pu->u.array.values[j]);
      if (u && strlen(u) < sizeof peers[0]) snprintf(peers[np++], sizeof peers[0], "%s", u);
    }
  }
  memcpy(p->eps, eps, n * sizeof *eps);
  p->n_eps = n;
  if (np && (np != p->n_peers || memcmp(p->peers, peers, sizeof peers[0] * np) || !p->saved)) {
    memcpy(p->peers, peers, sizeof peers[0] * np);
    p->n_peers = np;
    save_peers(p);
    p->saved = 1;
  }
}

static void members_head(void *arg, int status, const char *headers, const char *ctype) {
  (void)headers;
  (void)ctype;
  ((proxy *)arg)->members_status = status;
}

static void members_body(void *arg, const char *data, size_t len) {
  proxy *p = arg;
  if (p->members_body.len < (4u << 20)) sbuf_put(&p->members_body, data, len);
}

static void ask_members(proxy *p);

static void members_done(void *arg, int err, int got_head, int stale) {
  (void)got_head;
  (void)stale;
  proxy *p = arg;
  p->members_up = NULL;
  yajl_val v = NULL;
  if (!err && p->members_status == 200) {
    sbuf_putc(&p->members_body, 0);
    v = yajl_tree_parse(p->members_body.p, NULL, 0);
  }
  sbuf_reset(&p->members_body);
  if (v && YAJL_IS_ARRAY(v) && v->u.array.len) {
    size_t before = p->n_eps;
    set_endpoints(p, v);
    yajl_tree_free(v);
    if (p->n_eps != before || !before)
      fprintf(stderr, "quorumd: proxy: %zu endpoint(s) found\n", p->n_eps);
    refresh_soon(p, p->n_eps ? p->cfg->proxy_refresh_ms : 1000);
    return;
  }
  if (v) yajl_tree_free(v);
  if (++p->peer_i < p->n_peers) {
    ask_members(p);
    return;
  }
  fprintf(stderr, "quorumd: proxy: no member answered GET /members; asking again in 1 s\n");
  refresh_soon(p, 1000);
}

static void ask_members(proxy *p) {
  for (; p->peer_i < p->n_peers; p->peer_i++) {
    endpoint e;
    if (endpoint_parse(p->peers[p->peer_i], &e)) continue;
    char *req = malloc(512);
    if (!req) break;
    int n = snprintf(req, 512, "GET /members HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n",
                     e.hostport);
    upstream_cbs cbs = {members_head, members_body, members_done};
    p->members_status = 0;
    if (upstream_start(p->loop, NULL, (struct sockaddr *)&e.addr, e.tls ? p->tls : NULL, e.host,
                       req, (size_t)n, (unsigned)p->cfg->proxy_dial_timeout_ms, 5000, cbs, p,
                       &p->members_up) == 0)
      return;
  }
  refresh_soon(p, 1000);
}

static void refresh_cb(uv_timer_t *t) {
  proxy *p = t->data;
  if (p->members_up) return;
  p->peer_i = 0;
  ask_members(p);
}

static void refresh_soon(proxy *p, uint64_t ms) { uv_timer_start(&p->refresh, refresh_cb, ms, 0); }

/* ------------------------------------------------------------------ forwarding */

static void forward_free(forward *f) {
  free(f->request);
  sbuf_free(&f->headers);
  sbuf_free(&f->content_type);
  sbuf_free(&f->body);
  free(f);
}

static void on_abort(http_req *r) {
  forward *f = r->data;
  f->r = NULL;
  if (f->up) {
    upstream_cancel(f->up);
    f->up = NULL;
  }
  forward_free(f);
}

static void answer_message(http_req *r, int status, const char *msg) {
  yajl_gen g = proto_v2_gen_new();
  proto_v2_gen_message(g, msg);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  r->on_abort = NULL;
  http_respond(r, status, NULL, "application/json", (const char *)buf, len);
  yajl_gen_free(g);
}

static void up_head(void *arg, int status, const char *headers, const char *ctype) {
  forward *f = arg;
  f->status = status;
  /* A body whose length the member gave comes back whole; a watch's comes as it arrives. */
  f->streaming = f->watch && status == 200 && f->r->method != HTTP_HEAD;
  if (f->streaming) {
    http_stream_begin(f->r, status, headers[0] ? headers : NULL, ctype, 1);
    return;
  }
  sbuf_puts(&f->headers, headers);
  sbuf_putc(&f->headers, 0);
  if (ctype) {
    sbuf_puts(&f->content_type, ctype);
    sbuf_putc(&f->content_type, 0);
  }
}

static void up_body(void *arg, const char *data, size_t len) {
  forward *f = arg;
  if (f->streaming) http_stream_write(f->r, data, len);
  else sbuf_put(&f->body, data, len);
}

static int try_next(forward *f);
static int send_to(forward *f, endpoint *e, upstream_pool *pool);

static void up_done(void *arg, int err, int got_head, int stale) {
  forward *f = arg;
  proxy *p = f->p;
  f->up = NULL;
  http_req *r = f->r;
  if (!got_head && stale) { /* a kept connection the member had closed: the member again */
    for (size_t i = 0; i < p->n_eps; i++)
      if (!strcmp(p->eps[i].url, f->ep_url) && send_to(f, &p->eps[i], NULL) == 0) return;
  }
  if (!got_head) {
    for (size_t i = 0; i < p->n_eps; i++)
      if (!strcmp(p->eps[i].url, f->ep_url)) p->eps[i].down_until = now_ms(p) + p->cfg->proxy_failure_wait_ms;
    fprintf(stderr, "quorumd: proxy: %s failed (%s); left out for %" PRIu64 " ms\n", f->ep_url,
            uv_strerror(err), p->cfg->proxy_failure_wait_ms);
    if (try_next(f) == 0) return;
    char msg[96];
    snprintf(msg, sizeof msg, "httpproxy: unable to get response from %zu endpoint(s)", f->tried);
    answer_message(r, 502, msg);
    forward_free(f);
    return;
  }
  r->on_abort = NULL;
  if (f->streaming) {
    http_stream_end(r);
  } else {
    http_respond(r, f->status, f->headers.len > 1 ? f->headers.p : NULL,
                 f->content_type.len ? f->content_type.p : NULL, f->body.p ? f->body.p : "",
                 f->body.len);
  }
  forward_free(f);
}

/* Sends the request to e (on a kept connection from pool when one is idle). Returns 0 or
 * negative errno. */
static int send_to(forward *f, endpoint *e, upstream_pool *pool) {
  proxy *p = f->p;
  snprintf(f->ep_url, sizeof f->ep_url, "%s", e->url);
  char *copy = malloc(f->request_len);
  if (!copy) return -ENOMEM;
  memcpy(copy, f->request, f->request_len);
  upstream_cbs cbs = {up_head, up_body, up_done};
  return upstream_start(p->loop, pool, (struct sockaddr *)&e->addr, e->tls ? p->tls : NULL,
                        e->host, copy, f->request_len, (unsigned)p->cfg->proxy_dial_timeout_ms,
                        (unsigned)p->cfg->proxy_read_timeout_ms, cbs, f, &f->up);
}

/* Sends the request to the next endpoint not left out. Returns 0, or -1 when none is left. A
 * watch gets a connection of its own (it is held until the event); anything else goes on a
 * kept-alive one. */
static int try_next(forward *f) {
  proxy *p = f->p;
  uint64_t now = now_ms(p);
  while (f->scanned < p->n_eps) { /* each endpoint once per request */
    endpoint *e = &p->eps[f->next % p->n_eps];
    f->next++;
    f->scanned++;
    if (e->down_until > now) continue;
    f->tried++;
    if (send_to(f, e, f->watch ? NULL : p->pool) == 0) return 0;
    e->down_until = now + p->cfg->proxy_failure_wait_ms;
  }
  return -1;
}

static void config_answer(proxy *p, http_req *r) {
  if (r->method != HTTP_GET) {
    http_respond(r, 405, "Allow: GET\r\n", "text/plain; charset=utf-8", "Method Not Allowed\n", 19);
    return;
  }
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "endpoints");
  yajl_gen_array_open(g);
  uint64_t now = now_ms(p);
  for (size_t i = 0; i < p->n_eps; i++)
    if (p->eps[i].down_until <= now) proto_v2_gen_cstr(g, p->eps[i].url);
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  sbuf b = {0};
  sbuf_put(&b, buf, len);
  sbuf_putc(&b, '\n');
  http_respond(r, 200, NULL, "application/json", b.p, b.len);
  sbuf_free(&b);
  yajl_gen_free(g);
}

static void handle(void *arg, http_req *r) {
  proxy *p = arg;
  if (r->url.len >= 22 && !memcmp(r->url.p, "/v2/config/local/proxy", 22) &&
      (r->url.len == 22 || r->url.p[22] == '?')) {
    config_answer(p, r);
    return;
  }
  if (p->readonly && r->method != HTTP_GET) {
    http_respond(r, 501, NULL, NULL, "", 0);
    return;
  }
  size_t up = 0;
  uint64_t now = now_ms(p);
  for (size_t i = 0; i < p->n_eps; i++) up += p->eps[i].down_until <= now;
  if (!up) {
    answer_message(r, 503, "httpproxy: zero endpoints currently available");
    return;
  }
  forward *f = calloc(1, sizeof *f);
  sbuf req = {0};
  if (!f) abort();
  f->p = p;
  f->r = r;
  sbuf_puts(&req, http_method_str((enum http_method)r->method));
  sbuf_putc(&req, ' ');
  sbuf_put(&req, r->url.p, r->url.len);
  sbuf_puts(&req, " HTTP/1.1\r\nHost: ");
  sbuf_put(&req, r->host.p, r->host.len);
  if (r->content_type.len) {
    sbuf_puts(&req, "\r\nContent-Type: ");
    sbuf_put(&req, r->content_type.p, r->content_type.len);
  }
  if (r->authorization.len) {
    sbuf_puts(&req, "\r\nAuthorization: ");
    sbuf_put(&req, r->authorization.p, r->authorization.len);
  }
  const char *q = memchr(r->url.p, '?', r->url.len);
  f->watch = q && memmem(q, r->url.len - (size_t)(q - r->url.p), "wait=", 5) != NULL;
  sbuf_puts(&req, "\r\nContent-Length: ");
  sbuf_put_dec(&req, r->body.len);
  sbuf_puts(&req, f->watch ? "\r\nConnection: close\r\n\r\n" : "\r\n\r\n");
  sbuf_put(&req, r->body.p, r->body.len);
  f->request = req.p;
  f->request_len = req.len;
  f->next = p->rr++;
  r->data = f;
  r->on_abort = on_abort;
  if (try_next(f)) {
    answer_message(r, 502, "httpproxy: unable to get response from 0 endpoint(s)");
    forward_free(f);
  }
}

/* ------------------------------------------------------------------ start and stop */

static void closed_cb(uv_handle_t *h) { (void)h; }

static void on_signal(uv_signal_t *s, int signum) {
  proxy *p = s->data;
  fprintf(stderr, "quorumd: received signal %d, shutting down\n", signum);
  http_server_close(p->http);
  if (p->members_up) upstream_cancel(p->members_up);
  p->members_up = NULL;
  upstream_pool_close(p->pool);
  uv_close((uv_handle_t *)&p->refresh, closed_cb);
  uv_close((uv_handle_t *)&p->sigint, closed_cb);
  uv_close((uv_handle_t *)&p->sigterm, closed_cb);
}

int proxy_start(proxy **out, const config *cfg, uv_loop_t *loop, char *err, size_t errlen) {
  proxy *p = calloc(1, sizeof *p);
  if (!p) return -ENOMEM;
  p->cfg = cfg;
  p->loop = loop;
  p->readonly = !strcmp(cfg->proxy, "readonly");
  /* The peer URLs kept by an earlier run, else those of --initial-cluster ("name=url,...";
   * a name may have several). */
  const char *ic = load_peers(p) ? "" : cfg->initial_cluster ? cfg->initial_cluster : "";
  while (*ic && p->n_peers < MAX_PEERS) {
    size_t k = strcspn(ic, ",");
    const char *eq = memchr(ic, '=', k);
    const char *u = eq ? eq + 1 : ic;
    size_t ul = (size_t)(ic + k - u);
    if (ul && ul < sizeof p->peers[0]) {
      memcpy(p->peers[p->n_peers], u, ul);
      p->peers[p->n_peers++][ul] = 0;
    }
    ic += k;
    if (*ic == ',') ic++;
  }
  if (!p->n_peers) {
    snprintf(err, errlen, "proxy: --initial-cluster names no peer URL to find the members at");
    free(p);
    return -EINVAL;
  }
  /* https:// members are reached with the peer TLS settings, as etcd's proxy does. */
  int peer_files = cfg->peer_cert_file && *cfg->peer_cert_file;
  int rc = tls_session_ctx_client(&p->tls, peer_files ? cfg->peer_cert_file : NULL,
                                  peer_files ? cfg->peer_key_file : NULL,
                                  cfg->peer_trusted_ca_file && *cfg->peer_trusted_ca_file
                                      ? cfg->peer_trusted_ca_file
                                      : NULL,
                                  !cfg->peer_auto_tls, err, errlen);
  if (!rc && (rc = tls_session_ctx_ciphers(p->tls, cfg->cipher_suites, err, errlen)))
    tls_session_ctx_free(p->tls);
  if (rc) {
    free(p);
    return rc;
  }
  p->pool = upstream_pool_new();
  if (!p->pool) {
    tls_session_ctx_free(p->tls);
    free(p);
    return -ENOMEM;
  }
  http_limits lim = {.max_header_bytes = 1 << 20, .max_url_bytes = HTTP_MAX_URL_BYTES,
                     .max_body_bytes = cfg->max_request_bytes + (64u << 10)};
  rc = http_server_new(&p->http, loop, lim, cfg->cors, handle, p);
  for (size_t i = 0; rc == 0 && i < cfg->listen_client.n; i++) {
    if (!strncmp(cfg->listen_client.url[i], "https://", 8)) {
      snprintf(err, errlen, "proxy: https:// client URLs are not supported in proxy mode");
      rc = -EINVAL;
      break;
    }
    rc = http_server_listen(p->http, cfg->listen_client.url[i], err, errlen);
  }
  if (rc) {
    if (p->http) http_server_close(p->http);
    tls_session_ctx_free(p->tls);
    upstream_pool_free(p->pool);
    free(p);
    return rc;
  }
  uv_timer_init(loop, &p->refresh);
  p->refresh.data = p;
  uv_signal_init(loop, &p->sigint);
  uv_signal_init(loop, &p->sigterm);
  p->sigint.data = p->sigterm.data = p;
  uv_signal_start(&p->sigint, on_signal, SIGINT);
  uv_signal_start(&p->sigterm, on_signal, SIGTERM);
  ask_members(p);
  *out = p;
  return 0;
}

void proxy_free(proxy *p) {
  upstream_pool_free(p->pool);
  tls_session_ctx_free(p->tls);
  sbuf_free(&p->members_body);
  free(p);
}
