/* tls_policy: what etcd's TLS flags ask of a connection beyond a verified chain, for
 * tls_session's contexts. A server's policy on the certificate a client (or another member)
 * presents: a CRL file whose revoked serial numbers are refused (--client-crl-file,
 * --peer-crl-file; read again for every connection, as etcd does, so that an updated list
 * applies at once), and a common name or a host name the certificate must carry
 * (--peer-cert-allowed-cn, --peer-cert-allowed-hostname, --client-cert-allowed-hostname;
 * either one is enough when both are given). And --cipher-suites: the TLS 1.2 suites by their
 * IANA names, which are Go's (TLS 1.3 suites are not configurable, in Go as here). */
#ifndef QUORUM_PROTO_TLS_POLICY_H
#define QUORUM_PROTO_TLS_POLICY_H

#include <stddef.h>

#include <openssl/ssl.h>

typedef struct tls_policy {
  char *crl_file;     /* NULL: no revocation list */
  char *allowed_cn;   /* NULL: any common name */
  char *allowed_host; /* NULL: any host name */
} tls_policy;

/* Fills p with copies of the settings ("" or NULL: unset). A CRL file is read once here, so
 * that a missing or unreadable one is reported at start. Returns 0, or -EINVAL/-ENOMEM with a
 * message in err. */
int tls_policy_init(tls_policy *p, const char *crl_file, const char *allowed_cn,
                    const char *allowed_host, char *err, size_t errlen);
void tls_policy_free(tls_policy *p);
/* Whether p asks anything of a certificate. */
int tls_policy_active(const tls_policy *p);

/* Checks cert, found at depth in the peer's verified chain (0: the peer's own): 0 when p lets
 * it through, else -1 with the reason in why. Revocation is checked at every depth but the
 * self-signed root's, the names at depth 0. */
int tls_policy_check(const tls_policy *p, X509 *cert, int depth, char *why, size_t n);

/* Restricts ssl's TLS 1.2 suites to names, a comma-separated list of IANA/Go names (also Go's
 * short TLS_ECDHE_*_WITH_CHACHA20_POLY1305), in that order of preference. Returns 0, or
 * -EINVAL with etcd's message for an unknown name ("unexpected TLS cipher suite \"X\"") or one
 * that this OpenSSL cannot offer. */
int tls_policy_ciphers(SSL_CTX *ssl, const char *names, char *err, size_t errlen);

#endif
