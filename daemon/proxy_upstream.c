/* proxy_upstream: one HTTP/1.1 request to a member's http:// client URL over a connection of
 * its own (Connection: close), its answer parsed with http-parser and handed on as it
 * arrives: the head, then the body's bytes (a watch's events one by one), then the end. */
#include "daemon/proxy_upstream.h"

#include <errno.h>
#include <http_parser.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/http_util.h"

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
};

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
    u->cbs.on_done(u->arg, err, u->head_sent);
  }
  u->done = 1;
  shut(u);
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
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  upstream *u = p->data;
  if (!u->canceled) u->cbs.on_body(u->arg, at, n);
  return 0;
}

static int on_message_complete(http_parser *p) {
  finish(p->data, 0);
  return 1; /* (nothing more is read from this connection) */
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  buf->base = malloc(suggested);
  buf->len = buf->base ? suggested : 0;
}

static void timer_cb(uv_timer_t *t) {
  upstream *u = t->data;
  finish(u, -ETIMEDOUT);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  upstream *u = s->data;
  if (nread > 0 && !u->done) {
    if (u->read_timeout_ms) uv_timer_start(&u->timer, timer_cb, u->read_timeout_ms, 0);
    size_t k = http_parser_execute(&u->parser, &u->settings, buf->base, (size_t)nread);
    if (!u->done && k != (size_t)nread) finish(u, -EPROTO);
  } else if (nread < 0 && !u->done) {
    /* A close ends an answer without a length; anything else is a failure. */
    if (nread == UV_EOF) http_parser_execute(&u->parser, &u->settings, NULL, 0);
    if (!u->done) finish(u, nread == UV_EOF ? -ECONNRESET : (int)nread);
  }
  free(buf->base);
}

static void write_cb(uv_write_t *w, int status) {
  upstream *u = w->data;
  if (status < 0 && !u->done) finish(u, status);
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
  uv_buf_t b = uv_buf_init(u->request, (unsigned)u->request_len);
  u->write.data = u;
  int rc = uv_write(&u->write, (uv_stream_t *)&u->tcp, &b, 1, write_cb);
  if (rc == 0) rc = uv_read_start((uv_stream_t *)&u->tcp, alloc_cb, read_cb);
  if (rc < 0) finish(u, rc);
}

int upstream_start(uv_loop_t *loop, const struct sockaddr *addr, char *request, size_t len,
                   unsigned dial_timeout_ms, unsigned read_timeout_ms, upstream_cbs cbs,
                   void *arg, upstream **out) {
  upstream *u = calloc(1, sizeof *u);
  if (!u) {
    free(request);
    return -ENOMEM;
  }
  u->cbs = cbs;
  u->arg = arg;
  u->request = request;
  u->request_len = len;
  u->read_timeout_ms = read_timeout_ms;
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
