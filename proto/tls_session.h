/* tls_session: TLS sessions over memory BIOs (OpenSSL) for programs that keep their own
 * sockets and event loop: quorumd's HTTP server (https:// client URLs) and the Raft peer
 * transport (https:// peer URLs). The caller feeds the bytes it read from a socket in and
 * reads plaintext out; it writes plaintext in and sends what tls_session_output gives. The
 * handshake runs inside the first reads (and, on a client, tls_session_start).
 *
 * A context holds one side's settings: a server's certificate and key and whether it requires
 * a client certificate (verified against a CA file); a client's CAs for the server's
 * certificate (whose name or IP must match the host it dialled) and its own certificate. */
#ifndef QUORUM_PROTO_TLS_SESSION_H
#define QUORUM_PROTO_TLS_SESSION_H

#include <stddef.h>
#include <sys/types.h>

typedef struct tls_session_ctx tls_session_ctx;
typedef struct tls_session tls_session;

/* A server context: cert_file (PEM certificate, optionally followed by its chain) and
 * key_file; with require_client_cert, a client certificate that chains to ca_file (NULL: the
 * system's CAs) is required. Returns 0, or -EINVAL/-ENOMEM with a message naming the file in
 * err. */
int tls_session_ctx_server(tls_session_ctx **out, const char *cert_file, const char *key_file,
                           const char *ca_file, int require_client_cert, char *err,
                           size_t errlen);
/* A server context with a self-signed certificate made now, in memory (etcd's --auto-tls):
 * hosts is a comma-separated list of IPs and names it is issued for. No client certificate is
 * asked for. */
int tls_session_ctx_server_auto(tls_session_ctx **out, const char *hosts, char *err,
                                size_t errlen);
/* A client context: the server's certificate must chain to ca_file (NULL: the system's CAs),
 * or is not checked at all when verify is 0 (etcd's --peer-auto-tls); cert_file/key_file
 * (both or neither) are presented when the server asks. */
int tls_session_ctx_client(tls_session_ctx **out, const char *cert_file, const char *key_file,
                           const char *ca_file, int verify, char *err, size_t errlen);
void tls_session_ctx_free(tls_session_ctx *ctx);
/* On a server context that asks for certificates: etcd's further checks of the peer's
 * (tls_policy.h: a CRL file, an allowed common name or host name; NULL or "" for none). The
 * handshake of a peer that fails them fails, with the reason as the session's error.
 * Returns 0, or -EINVAL/-ENOMEM with a message in err (an unreadable CRL file). */
int tls_session_ctx_policy(tls_session_ctx *ctx, const char *crl_file, const char *allowed_cn,
                           const char *allowed_host, char *err, size_t errlen);
/* etcd's --cipher-suites on ctx (tls_policy_ciphers). Returns 0 or -EINVAL with a message. */
int tls_session_ctx_ciphers(tls_session_ctx *ctx, const char *names, char *err, size_t errlen);

/* A session on ctx (NULL when out of memory). host: on a client context, the name or IP the
 * server's certificate must match (NULL: not checked); ignored on a server context. */
tls_session *tls_session_new(tls_session_ctx *ctx, const char *host);
void tls_session_free(tls_session *t);

/* Starts a client's handshake (its first record is then in the output). Returns 0 or -1. */
int tls_session_start(tls_session *t);
/* Gives the session bytes read from the socket. Returns 0, or -1 when the session failed. */
int tls_session_feed(tls_session *t, const void *data, size_t len);
/* Decrypts into buf: > 0 bytes, 0 when nothing more is available now, -2 when the other side
 * closed the session cleanly, -1 when it failed (tls_session_error says why). Advances the
 * handshake first. */
ssize_t tls_session_read(tls_session *t, void *buf, size_t cap);
/* Whether the handshake has completed. */
int tls_session_ready(const tls_session *t);
/* Encrypts len bytes of plaintext into the output (the handshake must be complete). Returns 0
 * or -1. */
int tls_session_write(tls_session *t, const void *data, size_t len);
/* The records waiting to be sent (handshake, alerts, data): a pointer into the session, valid
 * until the next call on it; *len 0 when there are none. Then tls_session_output_clear. */
const char *tls_session_output(tls_session *t, size_t *len);
void tls_session_output_clear(tls_session *t);
/* The verified peer certificate's subject common name into buf (NUL-terminated): 1, or 0
 * when the peer sent none, it did not verify, or it has no common name. */
int tls_session_peer_cn(const tls_session *t, char *buf, size_t n);
/* Why the session failed (session-owned text; "" when it did not). */
const char *tls_session_error(const tls_session *t);

#endif
