/* proxy_upstream: one HTTP request to a member for the proxy (daemon/proxy.c), its answer
 * handed on as it arrives; with a pool, on a kept-alive connection to that member when one is
 * idle, and the connection kept for the next once the answer is complete. Loop thread. */
#ifndef QUORUM_DAEMON_PROXY_UPSTREAM_H
#define QUORUM_DAEMON_PROXY_UPSTREAM_H

#include <stddef.h>
#include <uv.h>

typedef struct upstream upstream;
typedef struct upstream_pool upstream_pool;

typedef struct upstream_cbs {
  /* The answer's status and head: headers are "Name: value\r\n" lines without those that
   * belong to the connection or that the proxy writes itself (Date, lengths, CORS);
   * content_type NULL when none. */
  void (*on_head)(void *arg, int status, const char *headers, const char *content_type);
  void (*on_body)(void *arg, const char *data, size_t len);
  /* Last call: err 0 when the answer is complete, else negative errno / libuv error; got_head
   * says whether on_head was called (before it, another member may be tried); stale that the
   * failure came on a kept-alive connection before any byte of an answer (the member may just
   * have closed it while it was idle: the same member is worth a new connection). The upstream
   * is freed (or kept idle) after it returns. */
  void (*on_done)(void *arg, int err, int got_head, int stale);
} upstream_cbs;

/* Idle connections to members, at most UPSTREAM_POOL_IDLE per member, each closed after
 * UPSTREAM_POOL_IDLE_MS unused or when the member closes it. */
#define UPSTREAM_POOL_IDLE 64
#define UPSTREAM_POOL_IDLE_MS 90000
upstream_pool *upstream_pool_new(void);
/* Closes the idle connections and keeps no more (before the loop is to end). */
void upstream_pool_close(upstream_pool *pool);
/* Frees it: after upstream_pool_close and once the loop has closed every handle. */
void upstream_pool_free(upstream_pool *pool);

/* Connects to addr, sends request (len bytes, malloc'd: taken), and reports through cbs.
 * dial_timeout_ms bounds the connect; read_timeout_ms (0: none) each wait for bytes. With
 * tls (a client context; NULL: plain TCP) the request goes inside a TLS session whose
 * server certificate must match host. With pool (NULL: a connection of its own, closed at the
 * end) an idle connection to the same member is used when there is one, and the connection
 * is kept idle after a complete answer that does not close it (so the request should not ask
 * for Connection: close). Returns 0 (then *out) or negative errno; nothing is reported then. */
struct tls_session_ctx;
int upstream_start(uv_loop_t *loop, upstream_pool *pool, const struct sockaddr *addr,
                   struct tls_session_ctx *tls, const char *host, char *request, size_t len,
                   unsigned dial_timeout_ms, unsigned read_timeout_ms, upstream_cbs cbs,
                   void *arg, upstream **out);
/* Abandons it (the client went away): no more callbacks; freed once its handles close. */
void upstream_cancel(upstream *u);

#endif
