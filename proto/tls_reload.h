/* tls_reload: a member's own certificate and key, read again from their files when these
 * change, as etcd reads them at each handshake: a certificate renewed on disk (cert-manager,
 * an ACME client, a short-lived CA) is presented on the next connection, with no restart.
 * Each handshake costs two stat calls; the files are parsed only when their identity (inode,
 * size, modification time) changed. A pair that does not read or does not match (a rotation
 * half written) is not taken: the last good one stays, and the files are tried again at the
 * next handshake. The CA file is read once, at start, as etcd 3.4 reads it. */
#ifndef QUORUM_PROTO_TLS_RELOAD_H
#define QUORUM_PROTO_TLS_RELOAD_H

#include <openssl/ssl.h>

typedef struct tls_reload tls_reload;

/* Watches cert_file (PEM, the certificate then its chain) and key_file, whose current
 * contents the caller has just loaded into its context. NULL when out of memory. */
tls_reload *tls_reload_new(const char *cert_file, const char *key_file);
void tls_reload_free(tls_reload *r);

/* OpenSSL's certificate callback (SSL_CTX_set_cert_cb, arg = the tls_reload): reads the pair
 * again when its files changed, and gives the session the newest good one. Always 1. */
int tls_reload_cert_cb(SSL *ssl, void *arg);

#endif
