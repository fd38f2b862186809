/* http_server: HTTP/1.1 on libuv with http-parser: keep-alive, pipelining (requests of one
 * connection are handled one after the other, as Go's server does, so a GET pipelined behind
 * a PUT sees it), chunked request bodies, Expect: 100-continue, size limits, and chunked
 * streaming responses, over TLS on https:// listeners. Malformed requests get Go's answers
 * (400, 431, 501, 505) and close their connection only. */
#ifndef QUORUM_DAEMON_HTTP_SERVER_H
#define QUORUM_DAEMON_HTTP_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/store_codec.h"

typedef struct http_server http_server;
typedef struct http_conn http_conn;
typedef struct http_req http_req;

/* Called when a request is complete. The handler answers now or later with http_respond or
 * the stream calls. If the connection goes away first, on_abort (if the handler set it) is
 * called and after it returns the request is gone: the handler must not touch it again. */
typedef void (*http_handler)(void *arg, http_req *r);

struct http_req {
  http_conn *conn;
  http_req *next;        /* the connection's queue, in arrival order */
  int method;            /* enum http_method */
  sbuf url;              /* raw request target */
  sbuf body;
  sbuf content_type;
  sbuf origin;
  sbuf host;             /* the Host header's value */
  sbuf authorization;    /* the Authorization header's value */
  sbuf hname, hvalue;    /* header being parsed */
  int keep_alive;
  int complete;          /* the whole request has arrived */
  int dispatched;        /* handed to the handler */
  int answered;          /* the response has been fully produced */
  int body_error;        /* HTTP_BODY_*: the body could not be read whole */
  int has_host, expect_continue;
  int headers_done, hname_done;
  sbuf transfer_encoding;
  int streaming;
  int no_cors;           /* answer without the CORS headers (set by the handler) */
  sbuf out;              /* produced but not yet written */
  void (*on_abort)(http_req *r);
  void *data;            /* for the handler */
  int metric;            /* v2 keys: STATS_HTTP_* + 1 while counted in etcd_http_* (0: not) */
  int64_t started_ns;    /* v2 keys: when it was taken up (CLOCK_MONOTONIC) */
  void *ext;             /* kept by the handler across a re-dispatch (v2_auth: the verdict of */
  void (*ext_free)(void *); /* a password checked off the loop); freed with the request */
};

/* Why a request's body is missing: the handler answers (etcd: 210 "Invalid POST form"). */
enum { HTTP_BODY_OK = 0, HTTP_BODY_TOO_LARGE, HTTP_BODY_MALFORMED };

/* The longest request target quorumd takes (414 beyond). Every directory level of a key
 * stores the whole path above it, so a key's storage grows with the square of its depth: a
 * 40 KB key of 20,000 levels took 770 MB of disk and 1.4 GB of memory with the 64 KiB this
 * was before; 8 KiB bounds one write to ~30 MB. etcd 3.4 closes a connection whose first
 * request line passes 4 KiB (its cmux sniffer) but takes longer ones later on a kept-alive
 * connection (up to Go's 1 MiB of headers): a deliberate difference (docs/DESIGN.md). */
#define HTTP_MAX_URL_BYTES (8u << 10)

typedef struct http_limits {
  size_t max_header_bytes; /* request line + headers */
  size_t max_url_bytes;    /* request target alone (414 beyond) */
  size_t max_body_bytes;
} http_limits;

/* Creates a server on loop calling handler(arg, req). cors: NULL (no CORS headers), "*" or a
 * comma-separated origin list. Returns 0 or negative errno. */
int http_server_new(http_server **out, uv_loop_t *loop, http_limits lim, const char *cors,
                    http_handler handler, void *arg);
/* Gives the server the TLS context for https:// listeners (the server owns it from now on). */
struct tls_session_ctx;
void http_server_set_tls(http_server *s, struct tls_session_ctx *tls);
/* Listens on an http:// or https:// URL's host and port (https needs http_server_set_tls
 * first). Returns 0 or negative errno (message in err). */
int http_server_listen(http_server *s, const char *url, char *err, size_t errlen);
/* Spreads the connections s accepts round-robin over to[0..n) (s may be among them): each is
 * served by its server, on that server's loop (a server of another loop is handed the
 * socket). to must outlive s's listeners. */
void http_server_spread(http_server *s, http_server **to, size_t n);
/* Closes listeners and connections (aborting pending requests), on the server's loop. */
void http_server_close(http_server *s);
size_t http_server_connections(const http_server *s);

/* The arg that the request's server passes to its handler. */
void *http_req_arg(const http_req *r);
/* Whether the request came over TLS. */
int http_req_is_tls(const http_req *r);
/* The common name of the client certificate of a TLS request's connection, verified; into
 * buf (NUL-terminated). Returns 1, or 0 when there is none. */
int http_req_client_cn(const http_req *r, char *buf, size_t n);
/* A complete response. headers: extra header lines, each ending in "\r\n" (or NULL). */
void http_respond(http_req *r, int status, const char *headers, const char *content_type,
                  const char *body, size_t len);
/* The same for a handler whose etcd counterpart sets no Content-Type: Go's server then adds
 * the type it sniffed from the body, after Content-Length. */
void http_respond_sniffed(http_req *r, int status, const char *content_type, const char *body,
                          size_t len);
/* A chunked response: begin sends the head (at once when flush is set, else with the first
 * chunk); write sends one chunk; end finishes; write_last sends a last chunk and finishes in
 * one write to the socket (a watcher's answer costs one system call, not two). */
void http_stream_begin(http_req *r, int status, const char *headers, const char *content_type,
                       int flush);
void http_stream_write(http_req *r, const char *data, size_t len);
void http_stream_end(http_req *r);
void http_stream_write_last(http_req *r, const char *data, size_t len);

const char *http_status_text(int status);

#endif
