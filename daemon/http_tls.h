/* http_tls: TLS for https:// client URLs (OpenSSL over memory BIOs). The HTTP server keeps
 * its sockets and its parser: it feeds the bytes read from a connection in and gets plaintext
 * out for the parser; its plaintext answers go in and TLS records come out for the socket. The
 * handshake runs inside the first reads. A context holds the certificate, the key and, with
 * --client-cert-auth, the CAs a client certificate must chain to. */
#ifndef QUORUM_DAEMON_HTTP_TLS_H
#define QUORUM_DAEMON_HTTP_TLS_H

#include <stddef.h>
#include <sys/types.h>

#include "daemon/store_codec.h" /* sbuf */

typedef struct http_tls_ctx http_tls_ctx;
typedef struct http_tls_conn http_tls_conn;

/* Loads cert_file (a PEM certificate, optionally followed by its chain) and key_file.
 * client_cert_auth: require a client certificate that chains to ca_file (NULL: the system's
 * CAs). Returns 0, or -EINVAL with a message naming the file in err. */
int http_tls_ctx_new(http_tls_ctx **out, const char *cert_file, const char *key_file,
                     const char *ca_file, int client_cert_auth, char *err, size_t errlen);
void http_tls_ctx_free(http_tls_ctx *ctx);

/* A server-side session for one accepted connection (NULL when out of memory). */
http_tls_conn *http_tls_conn_new(http_tls_ctx *ctx);
void http_tls_conn_free(http_tls_conn *t);

/* Gives the session bytes read from the socket. Returns 0, or -1 when the session failed. */
int http_tls_feed(http_tls_conn *t, const char *data, size_t len);
/* Decrypts into buf: > 0 bytes, 0 when nothing more is available now, -2 when the client
 * closed the session cleanly, -1 when it failed (http_tls_error says why). Runs the handshake
 * first. */
ssize_t http_tls_read(http_tls_conn *t, char *buf, size_t cap);
/* Encrypts len bytes of plaintext into the pending output. Returns 0 or -1. */
int http_tls_write(http_tls_conn *t, const char *data, size_t len);
/* Appends the TLS records waiting to be sent (handshake, alerts, data) to out; returns how many
 * bytes it appended. */
size_t http_tls_take_output(http_tls_conn *t, sbuf *out);
/* Why the session failed (static or session-owned text; "" when it did not). */
const char *http_tls_error(const http_tls_conn *t);

#endif
