/* http_server: HTTP/1.1 connections on libuv, parsed by http-parser.
 *
 * Each connection keeps its requests in a queue in arrival order. Only the head request is
 * handed to the handler; when it has been answered and written, the next one is. So pipelined
 * requests are handled in order, each seeing the effects of those before it, and responses
 * leave in order. A connection that must close does so after its last bytes are written.
 * Connections accepted on an https:// listener run through a TLS session (tls_session): what is
 * read is decrypted before the parser sees it, and what is written is encrypted. */
#include "daemon/http_server.h"

#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "proto/tls_session.h"

struct http_server {
  uv_loop_t *loop;
  http_limits lim;
  char *cors;
  http_handler handler;
  void *arg;
  uv_tcp_t *listeners[16];
  unsigned char listener_tls[16]; /* https:// listener */
  size_t n_listeners;
  tls_session_ctx *tls;           /* for https:// listeners (owned) */
  http_conn *conns; /* all open connections */
  http_conn *close_list; /* connections to close from the idle callback */
  uv_idle_t closer;
  /* Spreading: the connections this server accepts go round-robin to spread[] (itself among
   * them); another loop's server adopts them from its inbox. */
  http_server **spread;
  size_t n_spread, next_spread;
  uv_async_t adopt_async;
  pthread_mutex_t adopt_mu;
  struct adopt_item *adopt_head; /* under adopt_mu */
  size_t n_conns;
  int closing;
  time_t date_sec;
  char date[64];
  char readbuf[65536];
  char plainbuf[65536]; /* decrypted bytes of a TLS connection, parsed at once */
};

struct http_conn {
  uv_tcp_t tcp;
  http_server *srv;
  http_conn *prev, *next;
  http_parser parser;
  http_req *head, *tail; /* queue */
  http_req *cur;         /* being parsed */
  size_t header_bytes;
  int closing;
  int close_pending;     /* on the server's close_list */
  http_conn *close_next;
  int paused;            /* stopped reading after a bad request */
  int error_status;      /* the status a parse error is answered with (0: decide later) */
  int pumping;           /* inside conn_pump (it does not recurse) */
  int close_after_writes; /* close once writes_pending drops to 0 */
  int reading_stopped;   /* backpressure: too many requests queued */
  size_t queued;         /* requests in the queue */
  unsigned writes_pending; /* uv_write requests not yet completed (keeps output in order) */
  tls_session *tls;        /* the TLS session, on an https:// listener's connection */
  int tls_started;         /* its first bytes have been seen */
  char peer[56];           /* a TLS connection's client address and port, for the log */
};

/* A connection accepted by another loop's server, on its way to this one. */
typedef struct adopt_item {
  struct adopt_item *next;
  int fd;
  tls_session *tls;
  char peer[56];
} adopt_item;

#define CONN_QUEUE_HIGH 64 /* stop reading a connection with this many requests waiting */

typedef struct write_req {
  uv_write_t w;
  uv_buf_t buf;
  http_conn *conn;
} write_req;

static const http_parser_settings parser_settings;

/* Go's net/http StatusText for the codes an etcd answer can carry; NULL for others (Go's
 * status line then says "status code N"). */
const char *http_status_text(int status) {
  switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 414: return "Request URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return NULL;
  }
}

/* ------------------------------------------------------------------ requests */

static void req_free(http_req *r) {
  if (r->ext_free) r->ext_free(r->ext);
  sbuf_free(&r->transfer_encoding);
  sbuf_free(&r->url);
  sbuf_free(&r->body);
  sbuf_free(&r->content_type);
  sbuf_free(&r->origin);
  sbuf_free(&r->host);
  sbuf_free(&r->authorization);
  sbuf_free(&r->hname);
  sbuf_free(&r->hvalue);
  sbuf_free(&r->out);
  free(r);
}

static void conn_close(http_conn *c);
static void conn_pump(http_conn *c);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* Closing a connection aborts its pending requests, which calls back into handlers; doing
 * that from inside a write (perhaps inside a handler's own loop over watchers) is unsafe, so
 * closes found while writing are deferred to the idle callback. */
static void on_closer(uv_idle_t *h) {
  http_server *s = h->data;
  while (s->close_list) {
    http_conn *c = s->close_list;
    s->close_list = c->close_next;
    conn_close(c);
  }
  uv_idle_stop(h);
}

static void conn_close_later(http_conn *c) {
  if (c->close_pending || c->closing) return;
  c->close_pending = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->close_next = c->srv->close_list;
  c->srv->close_list = c;
  uv_idle_start(&c->srv->closer, on_closer);
}

/* Closes c once everything already produced has been written. */
static void conn_close_when_written(http_conn *c) {
  if (c->writes_pending) {
    c->close_after_writes = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
  } else {
    conn_close_later(c);
  }
}

static void on_write(uv_write_t *w, int status) {
  write_req *wr = (write_req *)w;
  http_conn *c = wr->conn;
  c->writes_pending--;
  free(wr->buf.base);
  free(wr);
  if (status < 0) conn_close_later(c);
  else if (!c->writes_pending && c->close_after_writes) conn_close_later(c);
}

/* Writes bytes as they are to the socket (data is consumed). */
static void conn_send_raw(http_conn *c, sbuf *data) {
  if (!data->len || c->closing || c->close_pending) {
    sbuf_reset(data);
    return;
  }
  /* Try a plain write first: when the socket takes everything (the usual case) there is no
   * write request, no allocation, and no epoll_ctl to undo the POLLOUT interest afterwards. */
  size_t off = 0;
  if (!c->writes_pending) {
    uv_buf_t b = uv_buf_init(data->p, (unsigned)data->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0) off = (size_t)n;
    else if (n != UV_EAGAIN) {
      sbuf_reset(data);
      conn_close_later(c);
      return;
    }
    if (off == data->len) {
      sbuf_reset(data);
      return;
    }
  }
  write_req *wr = malloc(sizeof *wr);
  if (!wr) abort();
  if (off) memmove(data->p, data->p + off, data->len - off);
  wr->buf = uv_buf_init(data->p, (unsigned)(data->len - off));
  wr->conn = c;
  c->writes_pending++;
  data->p = NULL; /* ownership moves to the write */
  data->len = data->cap = 0;
  if (uv_write(&wr->w, (uv_stream_t *)&c->tcp, &wr->buf, 1, on_write)) {
    free(wr->buf.base);
    free(wr);
    conn_close_later(c);
  }
}

/* Sends a TLS session's pending records (handshake, alerts, data). */
static void conn_tls_flush(http_conn *c) {
  size_t n = 0;
  const char *p = tls_session_output(c->tls, &n);
  if (!n) return;
  sbuf enc = {0};
  sbuf_put(&enc, p, n);
  tls_session_output_clear(c->tls);
  conn_send_raw(c, &enc);
  sbuf_free(&enc);
}

/* A TLS session failed: whatever alert it made goes out, then the connection closes. */
static void conn_tls_failed(http_conn *c) {
  fprintf(stderr, "quorumd: https: closing the connection from %s: %s\n", c->peer,
          tls_session_error(c->tls));
  conn_tls_flush(c);
  conn_close_when_written(c);
}

/* Writes produced bytes (data is consumed): encrypted first on a TLS connection. */
static void conn_write(http_conn *c, sbuf *data) {
  if (!c->tls || !data->len || c->closing || c->close_pending) {
    conn_send_raw(c, data);
    return;
  }
  int rc = tls_session_write(c->tls, data->p, data->len);
  sbuf_reset(data);
  if (rc) {
    conn_tls_failed(c);
    return;
  }
  conn_tls_flush(c);
}

/* Drives the queue: writes what the head has produced, pops it once answered, and hands the
 * next complete request to the handler. Handlers may answer synchronously (re-entering here
 * through http_respond), so the work is a loop guarded against recursion. */
static void conn_pump(http_conn *c) {
  if (c->pumping) return;
  c->pumping = 1;
  while (c->head && !c->closing && !c->close_pending) {
    http_req *r = c->head;
    conn_write(c, &r->out);
    if (r->answered) {
      c->head = r->next;
      if (!c->head) c->tail = NULL;
      c->queued--;
      int keep = r->keep_alive;
      req_free(r);
      if (!keep) {
        conn_close_when_written(c);
        break;
      }
      continue;
    }
    if (r->dispatched || !r->complete) break;
    r->dispatched = 1;
    c->srv->handler(c->srv->arg, r);
  }
  if (c->reading_stopped && c->queued < CONN_QUEUE_HIGH / 4 && !c->closing && !c->close_pending &&
      !c->paused && !c->close_after_writes) {
    c->reading_stopped = 0;
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
  }
  c->pumping = 0;
}

static void format_date(http_server *s) {
  time_t now = time(NULL);
  if (now == s->date_sec) return;
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(s->date, sizeof s->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  s->date_sec = now;
}

/* etcd sends the CORS headers on every answer when any origin is allowed ("*", its
 * default), and for a listed Origin otherwise. */
static int cors_allowed(const http_server *s, const sbuf *origin) {
  if (!s->cors) return 0;
  if (!strcmp(s->cors, "*")) return 1;
  if (!origin->len) return 0;
  const char *p = s->cors;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == origin->len && !memcmp(p, origin->p, n)) return 1;
    p = e ? e + 1 : p + n;
  }
  return 0;
}

static void put_head(http_req *r, int status, const char *headers, const char *ctype) {
  http_server *s = r->conn->srv;
  sbuf_put(&r->out, "HTTP/1.1 ", 9);
  sbuf_put_dec(&r->out, (uint64_t)status);
  sbuf_putc(&r->out, ' ');
  const char *text = http_status_text(status);
  if (text) {
    sbuf_puts(&r->out, text);
  } else {
    sbuf_puts(&r->out, "status code ");
    sbuf_put_dec(&r->out, (uint64_t)status);
  }
  sbuf_put(&r->out, "\r\n", 2);
  if (!r->no_cors && cors_allowed(s, &r->origin)) { /* (Go writes headers sorted by name) */
    static const char cors[] =
        "Access-Control-Allow-Headers: accept, content-type, authorization\r\n"
        "Access-Control-Allow-Methods: POST, GET, OPTIONS, PUT, DELETE\r\n"
        "Access-Control-Allow-Origin: ";
    sbuf_put(&r->out, cors, sizeof cors - 1);
    if (!strcmp(s->cors, "*")) sbuf_putc(&r->out, '*');
    else sbuf_put(&r->out, r->origin.p, r->origin.len);
    sbuf_put(&r->out, "\r\n", 2);
  }
  if (ctype) {
    sbuf_put(&r->out, "Content-Type: ", 14);
    sbuf_puts(&r->out, ctype);
    sbuf_put(&r->out, "\r\n", 2);
  }
  if (headers) sbuf_puts(&r->out, headers);
  format_date(s);
  sbuf_put(&r->out, "Date: ", 6);
  sbuf_puts(&r->out, s->date);
  sbuf_put(&r->out, "\r\n", 2);
  if (!r->keep_alive) sbuf_put(&r->out, "Connection: close\r\n", 19);
}

void *http_req_arg(const http_req *r) { return r->conn->srv->arg; }
int http_req_is_tls(const http_req *r) { return r->conn->tls != NULL; }
int http_req_client_cn(const http_req *r, char *buf, size_t n) {
  return r->conn->tls ? tls_session_peer_cn(r->conn->tls, buf, n) : 0;
}

static void respond(http_req *r, int status, const char *headers, const char *content_type,
                    const char *sniffed_type, const char *body, size_t len) {
  put_head(r, status, headers, content_type);
  if (status == 204 || status == 304) { /* no body, and (as Go's server) no Content-Length */
    sbuf_put(&r->out, "\r\n", 2);
  } else {
    sbuf_put(&r->out, "Content-Length: ", 16);
    sbuf_put_dec(&r->out, len);
    if (sniffed_type) {
      sbuf_put(&r->out, "\r\nContent-Type: ", 16);
      sbuf_puts(&r->out, sniffed_type);
    }
    sbuf_put(&r->out, "\r\n\r\n", 4);
    if (r->method != HTTP_HEAD) sbuf_put(&r->out, body, len);
  }
  r->answered = 1;
  r->on_abort = NULL;
  conn_pump(r->conn);
}

void http_respond(http_req *r, int status, const char *headers, const char *content_type,
                  const char *body, size_t len) {
  respond(r, status, headers, content_type, NULL, body, len);
}

void http_respond_sniffed(http_req *r, int status, const char *content_type, const char *body,
                          size_t len) {
  respond(r, status, NULL, NULL, content_type, body, len);
}

void http_stream_begin(http_req *r, int status, const char *headers, const char *content_type,
                       int flush) {
  put_head(r, status, headers, content_type);
  sbuf_put(&r->out, "Transfer-Encoding: chunked\r\n\r\n", 30);
  r->streaming = 1;
  if (flush) conn_pump(r->conn);
}

/* A client that does not read its stream is cut off rather than buffered without bound
 * (etcd drops a watcher whose channel is full). */
#define HTTP_STREAM_BACKLOG_MAX (16u << 20)

/* Appends one chunk; 0 when the connection is going (or cut off for not reading). */
static int stream_chunk(http_req *r, const char *data, size_t len) {
  char line[32];
  if (r->conn->close_pending || r->conn->closing) return 0;
  if (!len) return 1;
  if (r->out.len + uv_stream_get_write_queue_size((uv_stream_t *)&r->conn->tcp) > HTTP_STREAM_BACKLOG_MAX) {
    conn_close_later(r->conn);
    return 0;
  }
  int n = snprintf(line, sizeof line, "%zx\r\n", len);
  sbuf_put(&r->out, line, (size_t)n);
  sbuf_put(&r->out, data, len);
  sbuf_put(&r->out, "\r\n", 2);
  return 1;
}

void http_stream_write(http_req *r, const char *data, size_t len) {
  if (len && stream_chunk(r, data, len)) conn_pump(r->conn);
}

void http_stream_end(http_req *r) {
  sbuf_put(&r->out, "0\r\n\r\n", 5);
  r->answered = 1;
  r->on_abort = NULL;
  conn_pump(r->conn);
}

void http_stream_write_last(http_req *r, const char *data, size_t len) {
  stream_chunk(r, data, len);
  http_stream_end(r);
}

/* ------------------------------------------------------------------ parsing */

static http_conn *conn_of(http_parser *p) { return p->data; }

static int on_message_begin(http_parser *p) {
  http_conn *c = conn_of(p);
  if (c->closing || c->paused || c->close_pending) return -1;
  http_req *r = calloc(1, sizeof *r);
  if (!r) return -1;
  r->conn = c;
  c->cur = r;
  c->header_bytes = 0;
  c->error_status = 0;
  return 0;
}

static int count_header(http_conn *c, size_t n) {
  c->header_bytes += n;
  return c->header_bytes > c->srv->lim.max_header_bytes ? -1 : 0;
}

static int on_url(http_parser *p, const char *at, size_t n) {
  http_conn *c = conn_of(p);
  if (count_header(c, n)) return -1;
  sbuf_put(&c->cur->url, at, n);
  if (c->cur->url.len > c->srv->lim.max_url_bytes) {
    c->error_status = 414;
    return -1;
  }
  return 0;
}

static int name_is(const sbuf *b, const char *name) {
  size_t n = strlen(name);
  return b->len == n && !strncasecmp(b->p, name, n);
}

static void header_done(http_req *r) {
  if (!r->hname.len) return;
  sbuf *dst = NULL;
  if (name_is(&r->hname, "content-type")) dst = &r->content_type;
  else if (name_is(&r->hname, "origin")) dst = &r->origin;
  else if (name_is(&r->hname, "authorization")) dst = &r->authorization;
  else if (name_is(&r->hname, "transfer-encoding")) dst = &r->transfer_encoding;
  else if (name_is(&r->hname, "host")) {
    r->has_host = 1;
    dst = &r->host;
  }
  else if (name_is(&r->hname, "expect"))
    r->expect_continue = r->hvalue.len == 12 && !strncasecmp(r->hvalue.p, "100-continue", 12);
  if (dst) {
    sbuf_reset(dst);
    sbuf_put(dst, r->hvalue.p, r->hvalue.len);
  }
  sbuf_reset(&r->hname);
  sbuf_reset(&r->hvalue);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  http_conn *c = conn_of(p);
  if (count_header(c, n)) return -1;
  if (c->cur->hvalue.len || (c->cur->hname.len && c->cur->hname_done)) header_done(c->cur);
  c->cur->hname_done = 0;
  for (size_t i = 0; i < n; i++)
    if (at[i] == ' ' || at[i] == '\t') { /* Go: "invalid header name" */
      c->error_status = 400;
      return -1;
    }
  sbuf_put(&c->cur->hname, at, n);
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  http_conn *c = conn_of(p);
  if (count_header(c, n)) return -1;
  c->cur->hname_done = 1;
  sbuf_put(&c->cur->hvalue, at, n);
  return 0;
}

static int on_headers_complete(http_parser *p) {
  http_conn *c = conn_of(p);
  http_req *r = c->cur;
  if (r->hname.len) header_done(r);
  r->headers_done = 1;
  if (p->http_major != 1) {
    c->error_status = 505;
    return -1;
  }
  if (p->http_minor >= 1 && !r->has_host) {
    c->error_status = 400;
    return -1;
  }
  if (r->transfer_encoding.len && !(r->transfer_encoding.len == 7 &&
                                    !strncasecmp(r->transfer_encoding.p, "chunked", 7))) {
    c->error_status = 501;
    return -1;
  }
  if (p->content_length != ULLONG_MAX && p->content_length > c->srv->lim.max_body_bytes)
    r->body_error = HTTP_BODY_TOO_LARGE;
  /* Ask for the body only when this request is next in line (otherwise the client's own
   * timeout sends it anyway), so a 100 never lands between two other responses. */
  if (r->expect_continue && !c->head && p->http_minor >= 1 && !r->body_error) {
    sbuf cont = {0};
    sbuf_put(&cont, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    conn_write(c, &cont);
    sbuf_free(&cont);
  }
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  http_conn *c = conn_of(p);
  http_req *r = c->cur;
  if (r->body_error) return 0; /* read and dropped */
  if (r->body.len + n > c->srv->lim.max_body_bytes) {
    r->body_error = HTTP_BODY_TOO_LARGE;
    sbuf_free(&r->body);
    return 0;
  }
  sbuf_put(&r->body, at, n);
  return 0;
}

/* Queues r (complete, or with a body error) and lets the pump hand it over in turn. */
static void conn_enqueue(http_conn *c, http_req *r) {
  c->cur = NULL;
  r->complete = 1;
  if (c->tail) c->tail->next = r;
  else c->head = r;
  c->tail = r;
  c->queued++;
  if (c->queued >= CONN_QUEUE_HIGH && !c->reading_stopped) {
    c->reading_stopped = 1;
    uv_read_stop((uv_stream_t *)&c->tcp);
  }
}

static int on_message_complete(http_parser *p) {
  http_conn *c = conn_of(p);
  http_req *r = c->cur;
  r->method = p->method;
  r->keep_alive = http_should_keep_alive(p);
  conn_enqueue(c, r);
  return 0;
}

static const http_parser_settings parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Answers a request that could not be parsed, after the answers queued before it, and then
 * closes. A request whose headers were fine but whose body could not be read goes to the
 * handler with body_error set (etcd answers those with a v2 error). */
static void conn_bad_request(http_conn *c, int status) {
  http_req *r = c->cur;
  c->paused = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (r && r->headers_done && !status) {
    r->method = c->parser.method;
    r->keep_alive = 0;
    r->body_error = HTTP_BODY_MALFORMED;
    conn_enqueue(c, r);
    conn_pump(c);
    return;
  }
  if (r) req_free(r);
  c->cur = NULL;
  if (!status) status = 400;
  r = calloc(1, sizeof *r);
  if (!r) abort();
  r->conn = c;
  r->keep_alive = 0;
  r->dispatched = 1;
  conn_enqueue(c, r);
  char body[64];
  const char *text = http_status_text(status);
  int n = snprintf(body, sizeof body, "%d %s", status, text ? text : "");
  http_respond(r, status, NULL, "text/plain; charset=utf-8", body, (size_t)n);
}

/* Every read is parsed before on_read returns, so one buffer serves all connections. */
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  http_conn *c = (http_conn *)h;
  (void)suggested;
  buf->base = c->srv->readbuf;
  buf->len = sizeof c->srv->readbuf;
}

/* Parses n bytes of the request stream. Returns 0, or -1 after a malformed request (answered;
 * the connection reads no more). */
static int conn_parse(http_conn *c, const char *p, size_t n) {
  size_t done = http_parser_execute(&c->parser, &parser_settings, p, n);
  enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
  if (e == HPE_OK && done == n) return 0;
  /* 0: a body error, which the handler answers; else the status to answer with. */
  int status = c->error_status;
  if (!status && (e == HPE_CB_url || e == HPE_CB_header_field || e == HPE_CB_header_value ||
                  e == HPE_HEADER_OVERFLOW))
    status = 431;
  if (!status && !(c->cur && c->cur->headers_done)) status = 400;
  if (!c->closing && !c->paused && !c->close_pending) conn_bad_request(c, status);
  return -1;
}

/* Whether a TLS connection's first bytes are a plain HTTP request (Go's server checks the
 * same five prefixes). */
static int looks_like_http(const char *p, size_t n) {
  static const char *const starts[] = {"GET /", "HEAD ", "POST ", "PUT /", "OPTIO"};
  if (n < 5) return 0;
  for (size_t i = 0; i < sizeof starts / sizeof starts[0]; i++)
    if (!memcmp(p, starts[i], 5)) return 1;
  return 0;
}

/* A TLS connection's bytes: into the session, then every decrypted byte into the parser (all
 * of it now: nothing may stay buffered in the session while the socket is not read). */
static void conn_read_tls(http_conn *c, const char *p, size_t n) {
  http_server *s = c->srv;
  if (!c->tls_started) {
    c->tls_started = 1;
    if (looks_like_http(p, n)) { /* answered in plain text, as Go's server does */
      static const char msg[] =
          "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";
      sbuf b = {0};
      sbuf_put(&b, msg, sizeof msg - 1);
      conn_send_raw(c, &b);
      sbuf_free(&b);
      c->paused = 1;
      conn_close_when_written(c);
      return;
    }
  }
  if (c->paused || c->closing || c->close_pending) return;
  if (tls_session_feed(c->tls, p, n)) {
    conn_tls_failed(c);
    return;
  }
  for (;;) {
    ssize_t k = tls_session_read(c->tls, s->plainbuf, sizeof s->plainbuf);
    if (k == 0) break;
    if (k == -2) { /* the client's close_notify: answers already produced still go out */
      conn_tls_flush(c);
      conn_close_when_written(c);
      return;
    }
    if (k < 0) {
      conn_tls_failed(c);
      return;
    }
    if (c->paused || c->closing || c->close_pending) continue; /* read and dropped */
    if (conn_parse(c, s->plainbuf, (size_t)k)) {
      conn_tls_flush(c);
      return;
    }
  }
  conn_tls_flush(c); /* handshake records */
  conn_pump(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf) {
  http_conn *c = (http_conn *)st;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread > 0 && c->tls) {
    conn_read_tls(c, buf->base, (size_t)nread);
    return;
  }
  if (nread > 0 && !c->paused) {
    if (conn_parse(c, buf->base, (size_t)nread)) return;
    conn_pump(c);
  }
}

static void on_conn_closed(uv_handle_t *h) { free(h); }

static void conn_close(http_conn *c) {
  if (c->closing) return;
  c->closing = 1;
  http_server *s = c->srv;
  if (c->close_pending) {
    for (http_conn **pp = &s->close_list; *pp; pp = &(*pp)->close_next)
      if (*pp == c) {
        *pp = c->close_next;
        break;
      }
  }
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->n_conns--;
  /* Abort what is still pending; the handler detaches, then the request goes. */
  http_req *r = c->head;
  while (r) {
    http_req *next = r->next;
    if (r->on_abort && !r->answered) r->on_abort(r);
    req_free(r);
    r = next;
  }
  c->head = c->tail = NULL;
  if (c->cur) req_free(c->cur);
  c->cur = NULL;
  tls_session_free(c->tls);
  c->tls = NULL;
  uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

/* Starts serving c, whose tcp handle is open on s's loop. */
static void conn_begin(http_server *s, http_conn *c) {
  uv_tcp_nodelay(&c->tcp, 1);
  c->srv = s;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

/* "host:port" of a TLS connection's client, for the log. */
static void peer_name(uv_tcp_t *tcp, char *out, size_t n) {
  struct sockaddr_storage sa;
  int len = sizeof sa;
  char host[48] = "?";
  int port = 0;
  if (!uv_tcp_getpeername(tcp, (struct sockaddr *)&sa, &len)) {
    if (sa.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&sa, host, sizeof host);
      port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&sa, host, sizeof host);
      port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    }
  }
  snprintf(out, n, "%s:%d", host, port);
}

/* Hands an accepted connection to another loop's server: the socket is duplicated (the handle
 * that accepted it closes its own descriptor) and queued in the target's inbox. */
static void conn_hand_over(http_server *to, uv_tcp_t *tcp, tls_session *tls, const char *peer) {
  uv_os_fd_t fd;
  adopt_item *it = calloc(1, sizeof *it);
  if (!it || uv_fileno((uv_handle_t *)tcp, &fd) || (it->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
    free(it);
    tls_session_free(tls);
    return;
  }
  it->tls = tls;
  snprintf(it->peer, sizeof it->peer, "%s", peer);
  pthread_mutex_lock(&to->adopt_mu);
  it->next = to->adopt_head;
  to->adopt_head = it;
  pthread_mutex_unlock(&to->adopt_mu);
  uv_async_send(&to->adopt_async);
}

static void on_adopt(uv_async_t *a) {
  http_server *s = a->data;
  pthread_mutex_lock(&s->adopt_mu);
  adopt_item *it = s->adopt_head;
  s->adopt_head = NULL;
  pthread_mutex_unlock(&s->adopt_mu);
  while (it) {
    adopt_item *next = it->next;
    http_conn *c = calloc(1, sizeof *c);
    if (!c || uv_tcp_init(s->loop, &c->tcp)) {
      free(c);
      close(it->fd);
      tls_session_free(it->tls);
    } else if (uv_tcp_open(&c->tcp, it->fd)) {
      close(it->fd);
      tls_session_free(it->tls);
      uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    } else {
      c->tls = it->tls;
      memcpy(c->peer, it->peer, sizeof c->peer);
      conn_begin(s, c);
    }
    free(it);
    it = next;
  }
}

static void on_connection(uv_stream_t *l, int status) {
  http_server *s = l->data;
  if (status < 0) return;
  http_conn *c = calloc(1, sizeof *c);
  if (!c) return;
  uv_tcp_init(s->loop, &c->tcp);
  if (uv_accept(l, (uv_stream_t *)&c->tcp)) {
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    return;
  }
  for (size_t i = 0; i < s->n_listeners; i++)
    if ((uv_stream_t *)s->listeners[i] == l && s->listener_tls[i]) {
      c->tls = tls_session_new(s->tls, NULL);
      if (!c->tls) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        return;
      }
      peer_name(&c->tcp, c->peer, sizeof c->peer);
    }
  http_server *to = s->n_spread ? s->spread[s->next_spread++ % s->n_spread] : s;
  if (to != s) {
    conn_hand_over(to, &c->tcp, c->tls, c->peer);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
    return;
  }
  conn_begin(s, c);
}

/* ------------------------------------------------------------------ server */

int http_server_new(http_server **out, uv_loop_t *loop, http_limits lim, const char *cors,
                    http_handler handler, void *arg) {
  http_server *s = calloc(1, sizeof *s);
  if (!s) return -ENOMEM;
  s->loop = loop;
  s->lim = lim;
  s->cors = cors && *cors ? strdup(cors) : NULL;
  s->handler = handler;
  s->arg = arg;
  /* http-parser's own header limit is a process-wide setting; make it ours (Go allows 1 MiB). */
  http_parser_set_max_header_size((uint32_t)lim.max_header_bytes + 1024);
  uv_idle_init(loop, &s->closer);
  s->closer.data = s;
  pthread_mutex_init(&s->adopt_mu, NULL);
  uv_async_init(loop, &s->adopt_async, on_adopt);
  s->adopt_async.data = s;
  *out = s;
  return 0;
}

void http_server_spread(http_server *s, http_server **to, size_t n) {
  s->spread = to;
  s->n_spread = n;
}

void http_server_set_tls(http_server *s, tls_session_ctx *tls) {
  tls_session_ctx_free(s->tls);
  s->tls = tls;
}

int http_server_listen(http_server *s, const char *url, char *err, size_t errlen) {
  char host[256];
  int port = 0;
  int https = !strncmp(url, "https://", 8);
  if (https && !s->tls) {
    snprintf(err, errlen, "cannot listen on %s: no TLS certificate and key", url);
    return -EINVAL;
  }
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  const char *colon = strrchr(p, ':');
  if (!colon || (size_t)(colon - p) >= sizeof host || sscanf(colon + 1, "%d", &port) != 1 ||
      port < 0 || port > 65535) {
    snprintf(err, errlen, "cannot listen on %s: expected http://HOST:PORT", url);
    return -EINVAL;
  }
  memcpy(host, p, (size_t)(colon - p));
  host[colon - p] = 0;
  if (!strcmp(host, "localhost")) strcpy(host, "127.0.0.1");
  if (host[0] == '[') { /* [::1] */
    memmove(host, host + 1, strlen(host));
    char *e = strchr(host, ']');
    if (e) *e = 0;
  }
  struct sockaddr_storage addr;
  int rc = strchr(host, ':') ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr)
                             : uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
  if (rc) {
    snprintf(err, errlen, "cannot listen on %s: bad address %s", url, host);
    return -EINVAL;
  }
  if (s->n_listeners == sizeof s->listeners / sizeof s->listeners[0]) return -ENOSPC;
  uv_tcp_t *l = calloc(1, sizeof *l);
  if (!l) return -ENOMEM;
  uv_tcp_init(s->loop, l);
  l->data = s;
  if ((rc = uv_tcp_bind(l, (struct sockaddr *)&addr, 0)) || (rc = uv_listen((uv_stream_t *)l, 4096, on_connection))) {
    snprintf(err, errlen, "cannot listen on %s: %s", url, uv_strerror(rc));
    uv_close((uv_handle_t *)l, on_conn_closed);
    return rc;
  }
  s->listener_tls[s->n_listeners] = (unsigned char)https;
  s->listeners[s->n_listeners++] = l;
  return 0;
}

static void on_adopt_closed(uv_handle_t *h) {
  http_server *s = h->data;
  pthread_mutex_destroy(&s->adopt_mu);
  tls_session_ctx_free(s->tls);
  free(s->cors);
  free(s);
}

size_t http_server_connections(const http_server *s) { return s->n_conns; }

void http_server_close(http_server *s) {
  if (!s) return;
  for (size_t i = 0; i < s->n_listeners; i++) uv_close((uv_handle_t *)s->listeners[i], on_conn_closed);
  s->n_listeners = 0;
  while (s->conns) conn_close(s->conns);
  s->close_list = NULL;
  pthread_mutex_lock(&s->adopt_mu); /* connections still on their way are closed */
  adopt_item *it = s->adopt_head;
  s->adopt_head = NULL;
  pthread_mutex_unlock(&s->adopt_mu);
  while (it) {
    adopt_item *next = it->next;
    close(it->fd);
    tls_session_free(it->tls);
    free(it);
    it = next;
  }
  uv_close((uv_handle_t *)&s->closer, NULL);
  uv_close((uv_handle_t *)&s->adopt_async, on_adopt_closed);
}
