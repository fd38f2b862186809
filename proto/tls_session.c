/* tls_session: OpenSSL sessions over memory BIOs (see the header). */
#include "proto/tls_session.h"

#include "proto/tls_policy.h"
#include "proto/tls_reload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

struct tls_session_ctx {
  SSL_CTX *ssl;
  int server;
  tls_policy policy; /* what a peer's certificate must also pass (server contexts) */
  tls_reload *reload; /* our certificate's files, read again when they change (or NULL) */
};

struct tls_session {
  SSL *ssl;
  BIO *in;  /* bytes from the socket, read by OpenSSL */
  BIO *out; /* records OpenSSL produced, for the socket */
  char err[256];
  char refused[200]; /* why the policy refused the peer's certificate */
};

/* The first queued OpenSSL error as text ("" when there is none); clears the queue. */
static void ssl_error_text(char *buf, size_t len) {
  unsigned long e = ERR_get_error();
  buf[0] = '\0';
  if (e) ERR_error_string_n(e, buf, len);
  ERR_clear_error();
}

static int ctx_fail(SSL_CTX *ssl, const char *what, const char *file, char *err, size_t errlen) {
  char why[256];
  ssl_error_text(why, sizeof why);
  snprintf(err, errlen, "TLS: cannot load %s %s: %s", what, file, why[0] ? why : "unknown error");
  SSL_CTX_free(ssl);
  return -EINVAL;
}

static int load_pair(SSL_CTX *ssl, const char *cert_file, const char *key_file, char *err,
                     size_t errlen) {
  if (SSL_CTX_use_certificate_chain_file(ssl, cert_file) != 1)
    return ctx_fail(ssl, "the certificate", cert_file, err, errlen);
  if (SSL_CTX_use_PrivateKey_file(ssl, key_file, SSL_FILETYPE_PEM) != 1) {
    int mismatch = ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH;
    return ctx_fail(ssl, mismatch ? "the private key (it does not match the certificate)"
                                  : "the private key", key_file, err, errlen);
  }
  if (SSL_CTX_check_private_key(ssl) != 1)
    return ctx_fail(ssl, "the private key (it does not match the certificate)", key_file, err,
                    errlen);
  return 0;
}

static int load_cas(SSL_CTX *ssl, const char *ca_file, char *err, size_t errlen) {
  if (ca_file && *ca_file) {
    if (SSL_CTX_load_verify_locations(ssl, ca_file, NULL) != 1)
      return ctx_fail(ssl, "the trusted CA file", ca_file, err, errlen);
  } else if (SSL_CTX_set_default_verify_paths(ssl) != 1) {
    return ctx_fail(ssl, "the system's CAs", "(default paths)", err, errlen);
  }
  return 0;
}

/* Wraps ssl; with cert_file and key_file (whose pair ssl holds), they are watched for a renewal
 * (tls_reload.h). */
static int ctx_wrap(tls_session_ctx **out, SSL_CTX *ssl, int server, const char *cert_file,
                    const char *key_file, char *err, size_t errlen) {
  tls_session_ctx *c = calloc(1, sizeof *c);
  if (c && cert_file && *cert_file && key_file && *key_file &&
      !(c->reload = tls_reload_new(cert_file, key_file))) {
    free(c);
    c = NULL;
  }
  if (!c) {
    SSL_CTX_free(ssl);
    snprintf(err, errlen, "TLS: out of memory");
    return -ENOMEM;
  }
  c->ssl = ssl;
  c->server = server;
  if (c->reload) SSL_CTX_set_cert_cb(ssl, tls_reload_cert_cb, c->reload);
  *out = c;
  return 0;
}

/* A context with the settings every one of ours shares (NULL, with a message, when out of
 * memory). */
static SSL_CTX *ctx_base(const SSL_METHOD *method, char *err, size_t errlen) {
  ERR_clear_error();
  SSL_CTX *ssl = SSL_CTX_new(method);
  if (!ssl) {
    snprintf(err, errlen, "TLS: cannot create a context");
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
  SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
  /* Idle connections (watchers, quiet peers) hold no read or write buffers. */
  SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
  return ssl;
}

int tls_session_ctx_server(tls_session_ctx **out, const char *cert_file, const char *key_file,
                           const char *ca_file, int require_client_cert, char *err,
                           size_t errlen) {
  *out = NULL;
  SSL_CTX *ssl = ctx_base(TLS_server_method(), err, errlen);
  if (!ssl) return -ENOMEM;
  SSL_CTX_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
  int rc = load_pair(ssl, cert_file, key_file, err, errlen);
  if (rc) return rc;
  if (require_client_cert) {
    if ((rc = load_cas(ssl, ca_file, err, errlen))) return rc;
    if (ca_file && *ca_file) {
      STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
      if (names) SSL_CTX_set_client_CA_list(ssl, names);
    }
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  return ctx_wrap(out, ssl, 1, cert_file, key_file, err, errlen);
}

/* A self-signed EC P-256 certificate for hosts (comma-separated IPs and names), valid for a
 * year, installed in ssl. Returns 0 or -EINVAL/-ENOMEM with a message. */
static int self_signed(SSL_CTX *ssl, const char *hosts, char *err, size_t errlen) {
  int rc = -ENOMEM;
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  char san[2048] = "";
  size_t o = 0;
  for (const char *p = hosts; p && *p;) {
    size_t n = strcspn(p, ",");
    char host[256];
    if (n && n < sizeof host) {
      memcpy(host, p, n);
      host[n] = '\0';
      unsigned char ip[16];
      int is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
      int w = snprintf(san + o, sizeof san - o, "%s%s:%s", o ? "," : "", is_ip ? "IP" : "DNS", host);
      if (w > 0 && (size_t)w < sizeof san - o) o += (size_t)w;
    }
    p += n + (p[n] == ',');
  }
  if (!key || !x) goto done;
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), (long)(time(NULL) & 0x7fffffff));
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400);
  X509_set_pubkey(x, key);
  X509_NAME *nm = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(nm, "O", MBSTRING_ASC, (const unsigned char *)"quorumd", -1, -1, 0);
  X509_set_issuer_name(x, nm);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  const char *exts[][2] = {{"subjectAltName", san},
                           {"keyUsage", "critical,digitalSignature,keyEncipherment"},
                           {"extendedKeyUsage", "serverAuth,clientAuth"}};
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
    if (!exts[i][1][0]) continue;
    X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &v3, exts[i][0], exts[i][1]);
    if (!e) {
      rc = -EINVAL;
      snprintf(err, errlen, "TLS: cannot make a certificate for \"%s\"", hosts);
      goto done;
    }
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  if (X509_sign(x, key, EVP_sha256()) <= 0 || SSL_CTX_use_certificate(ssl, x) != 1 ||
      SSL_CTX_use_PrivateKey(ssl, key) != 1) {
    rc = -EINVAL;
    snprintf(err, errlen, "TLS: cannot make a self-signed certificate");
    goto done;
  }
  rc = 0;
done:
  if (rc == -ENOMEM) snprintf(err, errlen, "TLS: out of memory making a certificate");
  X509_free(x);
  EVP_PKEY_free(key);
  return rc;
}

int tls_session_ctx_server_auto(tls_session_ctx **out, const char *hosts, char *err,
                                size_t errlen) {
  *out = NULL;
  SSL_CTX *ssl = ctx_base(TLS_server_method(), err, errlen);
  if (!ssl) return -ENOMEM;
  int rc = self_signed(ssl, hosts, err, errlen);
  if (rc) {
    SSL_CTX_free(ssl);
    return rc;
  }
  return ctx_wrap(out, ssl, 1, NULL, NULL, err, errlen);
}

int tls_session_ctx_client(tls_session_ctx **out, const char *cert_file, const char *key_file,
                           const char *ca_file, int verify, char *err, size_t errlen) {
  *out = NULL;
  SSL_CTX *ssl = ctx_base(TLS_client_method(), err, errlen);
  if (!ssl) return -ENOMEM;
  int rc = verify ? load_cas(ssl, ca_file, err, errlen) : 0;
  if (rc) return rc;
  if (cert_file && *cert_file && (rc = load_pair(ssl, cert_file, key_file, err, errlen)))
    return rc;
  SSL_CTX_set_verify(ssl, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  return ctx_wrap(out, ssl, 0, cert_file, key_file, err, errlen);
}

void tls_session_ctx_free(tls_session_ctx *ctx) {
  if (!ctx) return;
  SSL_CTX_free(ctx->ssl);
  tls_policy_free(&ctx->policy);
  tls_reload_free(ctx->reload);
  free(ctx);
}

/* OpenSSL's verdict on each certificate of the peer's chain, then the policy's. */
static int verify_with_policy(int ok, X509_STORE_CTX *st) {
  if (!ok) return 0;
  SSL *ssl = X509_STORE_CTX_get_ex_data(st, SSL_get_ex_data_X509_STORE_CTX_idx());
  const tls_session_ctx *c = ssl ? SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)) : NULL;
  if (!c || !tls_policy_active(&c->policy)) return 1;
  tls_session *t = SSL_get_app_data(ssl);
  char why[200];
  if (tls_policy_check(&c->policy, X509_STORE_CTX_get_current_cert(st),
                       X509_STORE_CTX_get_error_depth(st), why, sizeof why) == 0)
    return 1;
  if (t) snprintf(t->refused, sizeof t->refused, "%s", why);
  X509_STORE_CTX_set_error(st, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

int tls_session_ctx_policy(tls_session_ctx *ctx, const char *crl_file, const char *allowed_cn,
                           const char *allowed_host, char *err, size_t errlen) {
  tls_policy_free(&ctx->policy);
  int rc = tls_policy_init(&ctx->policy, crl_file, allowed_cn, allowed_host, err, errlen);
  if (rc) return rc;
  if (tls_policy_active(&ctx->policy)) {
    SSL_CTX_set_app_data(ctx->ssl, ctx);
    SSL_CTX_set_verify(ctx->ssl, SSL_CTX_get_verify_mode(ctx->ssl), verify_with_policy);
  }
  return 0;
}

int tls_session_ctx_ciphers(tls_session_ctx *ctx, const char *names, char *err, size_t errlen) {
  return tls_policy_ciphers(ctx->ssl, names, err, errlen);
}

tls_session *tls_session_new(tls_session_ctx *ctx, const char *host) {
  tls_session *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = SSL_new(ctx->ssl);
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->in || !t->out) goto fail;
  /* An empty memory BIO reports "retry" rather than end of file. */
  BIO_set_mem_eof_return(t->in, -1);
  SSL_set_app_data(t->ssl, t);
  SSL_set_bio(t->ssl, t->in, t->out); /* the session owns both BIOs now */
  t->in = t->out = NULL;
  if (ctx->server) {
    SSL_set_accept_state(t->ssl);
  } else {
    SSL_set_connect_state(t->ssl);
    if (host && *host) {
      X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
      if (X509_VERIFY_PARAM_set1_ip_asc(vp, host) != 1) { /* not an IP: a DNS name */
        if (X509_VERIFY_PARAM_set1_host(vp, host, 0) != 1) goto fail;
        SSL_set_tlsext_host_name(t->ssl, host);
      }
    }
  }
  t->out = SSL_get_wbio(t->ssl);
  return t;
fail:
  SSL_free(t->ssl);
  BIO_free(t->in);
  BIO_free(t->out);
  free(t);
  return NULL;
}

void tls_session_free(tls_session *t) {
  if (!t) return;
  SSL_free(t->ssl);
  free(t);
}

/* Records why an OpenSSL call failed; returns -1. */
static int fail_with(tls_session *t, const char *fallback) {
  char why[200];
  ssl_error_text(why, sizeof why);
  if (t->refused[0]) { /* the policy's reason says more than OpenSSL's */
    snprintf(t->err, sizeof t->err, "%s", t->refused);
    return -1;
  }
  long vr = SSL_get_verify_result(t->ssl);
  if (vr != X509_V_OK)
    snprintf(t->err, sizeof t->err, "%s (%s)", why[0] ? why : fallback,
             X509_verify_cert_error_string(vr));
  else
    snprintf(t->err, sizeof t->err, "%s", why[0] ? why : fallback);
  return -1;
}

int tls_session_start(tls_session *t) {
  ERR_clear_error();
  int rc = SSL_do_handshake(t->ssl);
  if (rc == 1) return 0;
  int e = SSL_get_error(t->ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return 0;
  return fail_with(t, "TLS handshake failed");
}

int tls_session_feed(tls_session *t, const void *data, size_t len) {
  BIO *in = SSL_get_rbio(t->ssl);
  const char *p = data;
  while (len > 0) {
    int chunk = len > (size_t)1 << 30 ? 1 << 30 : (int)len;
    int n = BIO_write(in, p, chunk);
    if (n <= 0) {
      snprintf(t->err, sizeof t->err, "out of memory buffering TLS input");
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

ssize_t tls_session_read(tls_session *t, void *buf, size_t cap) {
  if (t->err[0]) return -1;
  ERR_clear_error();
  int n = SSL_read(t->ssl, buf, cap > (size_t)1 << 30 ? 1 << 30 : (int)cap);
  if (n > 0) return n;
  switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return 0;
    case SSL_ERROR_ZERO_RETURN: /* close_notify: the other side is done */
      snprintf(t->err, sizeof t->err, "the TLS session was closed");
      return -2;
    default:
      return fail_with(t, "TLS protocol error");
  }
}

int tls_session_ready(const tls_session *t) { return SSL_is_init_finished(t->ssl); }

int tls_session_write(tls_session *t, const void *data, size_t len) {
  if (t->err[0]) return -1;
  const char *p = data;
  while (len > 0) {
    ERR_clear_error();
    int chunk = len > (size_t)1 << 30 ? 1 << 30 : (int)len;
    int n = SSL_write(t->ssl, p, chunk);
    if (n <= 0) return fail_with(t, "TLS write failed");
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

const char *tls_session_output(tls_session *t, size_t *len) {
  char *p = NULL;
  long n = BIO_get_mem_data(t->out, &p);
  *len = n > 0 ? (size_t)n : 0;
  return p;
}

void tls_session_output_clear(tls_session *t) {
  (void)BIO_reset(t->out); /* a writable memory BIO: discards what it holds */
}

const char *tls_session_error(const tls_session *t) { return t->err; }

int tls_session_peer_cn(const tls_session *t, char *buf, size_t n) {
  if (!t->ssl || !n || SSL_get_verify_result(t->ssl) != X509_V_OK) return 0;
  X509 *cert = SSL_get1_peer_certificate(t->ssl);
  if (!cert) return 0;
  int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, (int)n);
  X509_free(cert);
  if (len <= 0 || (size_t)len >= n) {
    buf[0] = 0;
    return 0;
  }
  return 1;
}
