/* proxy_upstream: one HTTP/1.1 request to a member (inside TLS for https:// URLs), its answer
 * parsed with http-parser and handed on as it arrives: the head, then the body's bytes (a
 * watch's events one by one), then the end. With a pool the connection is kept after a
 * complete answer, idle (read from, so that a member's close is seen), for the next request
 * to the same member: no connect and no TLS handshake per request. */
#include "daemon/proxy_upstream.h"

#include <errno.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/http_util.h"
#include "proto/tls_session.h"

struct upstream {
  uv_tcp_t tcp;
  uv_connect_t connect;
  uv_write_t write;
  uv_timer_t timer;
  upstream_cbs cbs;
  void *arg;
  char *request;
  size_t request_len;
  http_parser parser;
  http_parser_settings settings;
  sbuf headers;      /* the answer's headers that go on ("Name: value\r\n"...) */
  sbuf content_type;
  sbuf hname, hvalue;
  int in_value;
  int head_sent, done, canceled, closing, handles;
  unsigned read_timeout_ms;
  tls_session *tls;  /* https:// members */
  int sent;          /* the request has gone into the session */
  int writing;       /* u->write is in flight */
  /* keep-alive */
  upstream_pool *pool;          /* NULL: closed after this answer */
  struct sockaddr_storage addr; /* the member, as upstream_start was given it */
  struct tls_session_ctx *tls_ctx;
  char host[256];
  int complete;                 /* the answer ended (the parser stopped there) */
  int idle;                     /* in the pool, between requests */
  int reused;                   /* this request went on a kept connection */
  int got_bytes;                /* bytes of this answer have come */
  upstream *next_idle;
};

struct upstream_pool {
  upstream *idle;
  size_t n;
  int closing;
};

/* One write of bytes that must live until it is done. */
typedef struct out_write {
  uv_write_t req;
  char data[];
} out_write;

/* Headers that belong to one connection, or that the proxy's own server writes itself. */
static int dropped_header(const char *name, size_t n) {
  static const char *const names[] = {"connection", "keep-alive", "proxy-authenticate",
                                      "proxy-authorization", "te", "trailer",
                                      "transfer-encoding", "upgrade", "content-length", "date",
                                      "content-type"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i]) == n && !strncasecmp(names[i], name, n)) return 1;
  return n > 12 && !strncasecmp(name, "access-control", 14); /* (the proxy's --cors) */
}

static void closed_cb(uv_handle_t *h) {
  upstream *u = h->data;
  if (--u->handles == 0) {
    if (u->tls) tls_session_free(u->tls);
    free(u->request);
    sbuf_free(&u->headers);
    sbuf_free(&u->content_type);
    sbuf_free(&u->hname);
    sbuf_free(&u->hvalue);
    free(u);
  }
}

static void shut(upstream *u) {
  if (u->closing) return;
  u->closing = 1;
  uv_read_stop((uv_stream_t *)&u->tcp);
  uv_timer_stop(&u->timer);
  uv_close((uv_handle_t *)&u->tcp, closed_cb);
  uv_close((uv_handle_t *)&u->timer, closed_cb);
}

/* The end: reported once (unless canceled), then the handles go. */
static void finish(upstream *u, int err) {
  if (!u->done && !u->canceled) {
    u->done = 1;
    u->cbs.on_done(u->arg, err, u->head_sent, err && u->reused && !u->got_bytes);
  }
  u->done = 1;
  shut(u);
}

static void unpark(upstream *u) {
  upstream **pp = &u->pool->idle;
  while (*pp && *pp != u) pp = &(*pp)->next_idle;
  if (*pp) *pp = u->next_idle;
  u->next_idle = NULL;
  u->pool->n--;
  u->idle = 0;
}

static void timer_cb(uv_timer_t *t);

/* Between requests: nothing of the last one is kept; the read goes on (any byte or a close
 * now ends the connection). */
static void park(upstream *u) {
  free(u->request);
  u->request = NULL;
  u->request_len = 0;
  u->cbs = (upstream_cbs){0};
  u->arg = NULL;
  u->idle = 1;
  u->next_idle = u->pool->idle;
  u->pool->idle = u;
  u->pool->n++;
  uv_timer_start(&u->timer, timer_cb, UPSTREAM_POOL_IDLE_MS, 0);
}

/* The answer is complete (clean: nothing follows it in what was read): reported, then the
 * connection is kept when the member keeps it open, else closed. */
static void answered(upstream *u, int clean) {
  int keep = clean && u->pool && !u->pool->closing && !u->canceled && !u->done && !u->writing &&
             http_should_keep_alive(&u->parser) && u->pool->n < UPSTREAM_POOL_IDLE;
  if (!u->done && !u->canceled) {
    u->done = 1;
    u->cbs.on_done(u->arg, 0, u->head_sent, 0);
  }
  u->done = 1;
  if (keep) park(u);
  else shut(u);
}

static void flush_header(upstream *u) {
  if (!u->hname.len) return;
  if (u->hname.len == 12 && !strncasecmp(u->hname.p, "content-type", 12)) {
    sbuf_reset(&u->content_type);
    sbuf_put(&u->content_type, u->hvalue.p, u->hvalue.len);
    sbuf_putc(&u->content_type, 0);
  } else if (!dropped_header(u->hname.p, u->hname.len)) {
    sbuf_put(&u->headers, u->hname.p, u->hname.len);
    sbuf_put(&u->headers, ": ", 2);
    sbuf_put(&u->headers, u->hvalue.p, u->hvalue.len);
    sbuf_put(&u->headers, "\r\n", 2);
  }
  sbuf_reset(&u->hname);
  sbuf_reset(&u->hvalue);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  upstream *u = p->data;
  if (u->in_value) flush_header(u);
  u->in_value = 0;
  sbuf_put(&u->hname, at, n);
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  upstream *u = p->data;
  u->in_value = 1;
  sbuf_put(&u->hvalue, at, n);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  upstream *u = p->data;
  flush_header(u);
  sbuf_putc(&u->headers, 0);
  u->head_sent = 1;
  if (!u->canceled)
    u->cbs.on_head(u->arg, p->status_code, u->headers.p,
                   u->content_type.len ? u->content_type.p : NULL);
  /* the answer to a HEAD has no body whatever its Content-Length says (1: none follows) */
  return u->request_len >= 5 && !memcmp(u->request, "HEAD ", 5);
}

static int on_body(http_parser *p, const char *at, size_t n) {
  upstream *u = p->data;
  if (!u->canceled) u->cbs.on_body(u->arg, at, n);
  return 0;
}

static int on_message_complete(http_parser *p) {
  ((upstream *)p->data)->complete = 1;
  return 1; /* the parser stops here: answered() decides what becomes of the connection */
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void timer_cb(uv_timer_t *t) {
  upstream *u = t->data;
  if (u->idle) { /* unused too long */
    unpark(u);
    shut(u);
    return;
  }
  finish(u, -ETIMEDOUT);
}

static void out_written(uv_write_t *w, int status) {
  upstream *u = w->data;
  free(w);
  if (status < 0 && !u->done) finish(u, status);
}

/* Sends what the TLS session has to send. Returns 0 or a libuv error. */
static int tls_flush(upstream *u) {
  size_t n;
  const char *p = tls_session_output(u->tls, &n);
  if (!n) return 0;
  out_write *w = malloc(sizeof *w + n);
  if (!w) return UV_ENOMEM;
  memcpy(w->data, p, n);
  tls_session_output_clear(u->tls);
  w->req.data = u;
  uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
  int rc = uv_write(&w->req, (uv_stream_t *)&u->tcp, &b, 1, out_written);
  if (rc < 0) free(w);
  return rc;
}

static void parse(upstream *u, const char *data, size_t n) {
  size_t k = http_parser_execute(&u->parser, &u->settings, data, n);
  if (u->complete && !u->done) answered(u, k == n);
  else if (!u->done && k != n) finish(u, -EPROTO);
}

/* The member closed the connection: that ends an answer without a length. */
static void parse_eof(upstream *u) {
  http_parser_execute(&u->parser, &u->settings, NULL, 0);
  if (u->complete && !u->done) answered(u, 0);
}

/* Ciphertext read: into the session; the request once the handshake is done; the plaintext
 * of the answer to the parser. */
static void tls_in(upstream *u, const char *data, size_t n) {
  if (tls_session_feed(u->tls, data, n)) {
    finish(u, -EPROTO);
    return;
  }
  char plain[16384];
  ssize_t k = 0;
  while (!u->done && (k = tls_session_read(u->tls, plain, sizeof plain)) > 0) parse(u, plain, (size_t)k);
  if (u->done) return;
  if (k == -1) {
    finish(u, -EPROTO);
    return;
  }
  if (!u->sent && tls_session_ready(u->tls)) {
    u->sent = 1;
    if (tls_session_write(u->tls, u->request, u->request_len)) {
      finish(u, -EPROTO);
      return;
    }
  }
  int rc = tls_flush(u);
  if (rc < 0) finish(u, rc);
  else if (k == -2) parse_eof(u); /* closed */
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  upstream *u = s->data;
  if (u->idle && nread != 0) { /* the member closed it (or sent what nobody asked for) */
    unpark(u);
    shut(u);
  } else if (nread > 0 && !u->done) {
    u->got_bytes = 1;
    if (u->read_timeout_ms) uv_timer_start(&u->timer, timer_cb, u->read_timeout_ms, 0);
    if (u->tls) tls_in(u, buf->base, (size_t)nread);
    else parse(u, buf->base, (size_t)nread);
  } else if (nread < 0 && !u->done) {
    /* A close ends an answer without a length; anything else is a failure. */
    if (nread == UV_EOF) parse_eof(u);
    if (!u->done) finish(u, nread == UV_EOF ? -ECONNRESET : (int)nread);
  }
  free(buf->base);
}

static void write_cb(uv_write_t *w, int status) {
  upstream *u = w->data;
  u->writing = 0;
  if (status < 0 && !u->done) finish(u, status);
}

/* Sends the request: inside the session on TLS, else as it is. Returns 0 or a libuv error. */
static int send_request(upstream *u) {
  if (u->tls) {
    u->sent = 1;
    return tls_session_write(u->tls, u->request, u->request_len) ? UV_EPROTO : tls_flush(u);
  }
  uv_buf_t b = uv_buf_init(u->request, (unsigned)u->request_len);
  u->write.data = u;
  int rc = uv_write(&u->write, (uv_stream_t *)&u->tcp, &b, 1, write_cb);
  if (rc == 0) u->writing = 1;
  return rc;
}

static void connect_cb(uv_connect_t *c, int status) {
  upstream *u = c->data;
  if (u->done || u->closing) return;
  if (status < 0) {
    finish(u, status);
    return;
  }
  uv_timer_stop(&u->timer);
  if (u->read_timeout_ms) uv_timer_start(&u->timer, timer_cb, u->read_timeout_ms, 0);
  uv_tcp_nodelay(&u->tcp, 1);
  int rc;
  if (u->tls) /* the request goes once the handshake is done (tls_in) */
    rc = tls_session_start(u->tls) ? UV_EPROTO : tls_flush(u);
  else
    rc = send_request(u);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&u->tcp, alloc_cb, read_cb);
  if (rc < 0) finish(u, rc);
}

static size_t addr_len(const struct sockaddr *a) {
  return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static int same_member(const upstream *u, const struct sockaddr *addr,
                       const struct tls_session_ctx *tls, const char *host) {
  if (u->tls_ctx != tls || strcmp(u->host, host ? host : "")) return 0;
  const struct sockaddr *k = (const struct sockaddr *)&u->addr;
  if (k->sa_family != addr->sa_family) return 0;
  if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6 *a = (const void *)addr, *b = (const void *)k;
    return a->sin6_port == b->sin6_port && !memcmp(&a->sin6_addr, &b->sin6_addr, 16);
  }
  const struct sockaddr_in *a = (const void *)addr, *b = (const void *)k;
  return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
}

/* The next request on a kept connection u (out of the pool). Returns 0 or a libuv error. */
static int reuse(upstream *u, char *request, size_t len, unsigned read_timeout_ms,
                 upstream_cbs cbs, void *arg) {
  u->cbs = cbs;
  u->arg = arg;
  u->request = request;
  u->request_len = len;
  u->read_timeout_ms = read_timeout_ms;
  u->done = u->complete = u->head_sent = u->canceled = u->got_bytes = u->in_value = 0;
  u->reused = 1;
  sbuf_reset(&u->headers);
  sbuf_reset(&u->content_type);
  sbuf_reset(&u->hname);
  sbuf_reset(&u->hvalue);
  http_parser_init(&u->parser, HTTP_RESPONSE);
  u->parser.data = u;
  uv_timer_stop(&u->timer);
  if (read_timeout_ms) uv_timer_start(&u->timer, timer_cb, read_timeout_ms, 0);
  return send_request(u);
}

upstream_pool *upstream_pool_new(void) { return calloc(1, sizeof(upstream_pool)); }

void upstream_pool_close(upstream_pool *pool) {
  if (!pool) return;
  pool->closing = 1;
  while (pool->idle) {
    upstream *u = pool->idle;
    unpark(u);
    shut(u);
  }
}

void upstream_pool_free(upstream_pool *pool) { free(pool); }

int upstream_start(uv_loop_t *loop, upstream_pool *pool, const struct sockaddr *addr,
                   struct tls_session_ctx *tls, const char *host, char *request, size_t len,
                   unsigned dial_timeout_ms, unsigned read_timeout_ms, upstream_cbs cbs,
                   void *arg, upstream **out) {
  for (upstream *k = pool ? pool->idle : NULL; k; k = k->next_idle) {
    if (!same_member(k, addr, tls, host)) continue;
    unpark(k);
    if (reuse(k, request, len, read_timeout_ms, cbs, arg) == 0) {
      *out = k;
      return 0;
    }
    k->request = NULL; /* (a fresh connection below takes the request) */
    k->done = 1;
    shut(k);
    break;
  }
  upstream *u = calloc(1, sizeof *u);
  if (u && tls && !(u->tls = tls_session_new(tls, host))) {
    free(u);
    u = NULL;
  }
  if (!u) {
    free(request);
    return -ENOMEM;
  }
  u->cbs = cbs;
  u->arg = arg;
  u->request = request;
  u->request_len = len;
  u->read_timeout_ms = read_timeout_ms;
  u->pool = pool;
  memcpy(&u->addr, addr, addr_len(addr));
  u->tls_ctx = tls;
  snprintf(u->host, sizeof u->host, "%s", host ? host : "");
  http_parser_init(&u->parser, HTTP_RESPONSE);
  u->parser.data = u;
  u->settings.on_header_field = on_header_field;
  u->settings.on_header_value = on_header_value;
  u->settings.on_headers_complete = on_headers_complete;
  u->settings.on_body = on_body;
  u->settings.on_message_complete = on_message_complete;
  uv_tcp_init(loop, &u->tcp);
  uv_timer_init(loop, &u->timer);
  u->tcp.data = u->timer.data = u->connect.data = u;
  u->handles = 2;
  int rc = uv_tcp_connect(&u->connect, &u->tcp, addr, connect_cb);
  if (rc < 0) {
    u->done = 1;
    shut(u);
    return rc;
  }
  uv_timer_start(&u->timer, timer_cb, dial_timeout_ms ? dial_timeout_ms : 1000, 0);
  *out = u;
  return 0;
}

void upstream_cancel(upstream *u) {
  u->canceled = 1;
  u->done = 1;
  shut(u);
}
