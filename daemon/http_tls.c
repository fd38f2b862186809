/* http_tls: OpenSSL sessions over memory BIOs for the HTTP server (see the header). */
#include "daemon/http_tls.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

struct http_tls_ctx {
  SSL_CTX *ssl;
};

struct http_tls_conn {
  SSL *ssl;
  BIO *in;  /* bytes from the socket, read by OpenSSL */
  BIO *out; /* records OpenSSL produced, for the socket */
  char err[256];
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

int http_tls_ctx_new(http_tls_ctx **out, const char *cert_file, const char *key_file,
                     const char *ca_file, int client_cert_auth, char *err, size_t errlen) {
  *out = NULL;
  ERR_clear_error();
  SSL_CTX *ssl = SSL_CTX_new(TLS_server_method());
  if (!ssl) {
    snprintf(err, errlen, "TLS: cannot create a context");
    return -ENOMEM;
  }
  SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
  SSL_CTX_set_options(ssl, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
  /* Idle keep-alive connections (watchers) hold no read or write buffers. */
  SSL_CTX_set_mode(ssl, SSL_MODE_RELEASE_BUFFERS);
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
  if (client_cert_auth) {
    if (ca_file && *ca_file) {
      if (SSL_CTX_load_verify_locations(ssl, ca_file, NULL) != 1)
        return ctx_fail(ssl, "the trusted CA file", ca_file, err, errlen);
      STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(ca_file);
      if (names) SSL_CTX_set_client_CA_list(ssl, names);
    } else if (SSL_CTX_set_default_verify_paths(ssl) != 1) {
      return ctx_fail(ssl, "the system's CAs", "(default paths)", err, errlen);
    }
    SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
  }
  http_tls_ctx *c = calloc(1, sizeof *c);
  if (!c) {
    SSL_CTX_free(ssl);
    snprintf(err, errlen, "TLS: out of memory");
    return -ENOMEM;
  }
  c->ssl = ssl;
  *out = c;
  return 0;
}

void http_tls_ctx_free(http_tls_ctx *ctx) {
  if (!ctx) return;
  SSL_CTX_free(ctx->ssl);
  free(ctx);
}

http_tls_conn *http_tls_conn_new(http_tls_ctx *ctx) {
  http_tls_conn *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->ssl = SSL_new(ctx->ssl);
  t->in = BIO_new(BIO_s_mem());
  t->out = BIO_new(BIO_s_mem());
  if (!t->ssl || !t->in || !t->out) {
    SSL_free(t->ssl);
    BIO_free(t->in);
    BIO_free(t->out);
    free(t);
    return NULL;
  }
  /* An empty memory BIO reports "retry" rather than end of file. */
  BIO_set_mem_eof_return(t->in, -1);
  SSL_set_bio(t->ssl, t->in, t->out); /* the session owns both BIOs now */
  SSL_set_accept_state(t->ssl);
  return t;
}

void http_tls_conn_free(http_tls_conn *t) {
  if (!t) return;
  SSL_free(t->ssl);
  free(t);
}

int http_tls_feed(http_tls_conn *t, const char *data, size_t len) {
  while (len > 0) {
    int chunk = len > (size_t)1 << 30 ? 1 << 30 : (int)len;
    int n = BIO_write(t->in, data, chunk);
    if (n <= 0) {
      snprintf(t->err, sizeof t->err, "out of memory buffering TLS input");
      return -1;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

ssize_t http_tls_read(http_tls_conn *t, char *buf, size_t cap) {
  if (t->err[0]) return -1;
  ERR_clear_error();
  int n = SSL_read(t->ssl, buf, cap > (size_t)1 << 30 ? 1 << 30 : (int)cap);
  if (n > 0) return n;
  switch (SSL_get_error(t->ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
      return 0;
    case SSL_ERROR_ZERO_RETURN: /* close_notify: the client is done */
      snprintf(t->err, sizeof t->err, "the client closed the TLS session");
      return -2;
    default: {
      char why[200];
      ssl_error_text(why, sizeof why);
      snprintf(t->err, sizeof t->err, "%s", why[0] ? why : "TLS protocol error");
      return -1;
    }
  }
}

int http_tls_write(http_tls_conn *t, const char *data, size_t len) {
  if (t->err[0]) return -1;
  while (len > 0) {
    ERR_clear_error();
    int chunk = len > (size_t)1 << 30 ? 1 << 30 : (int)len;
    int n = SSL_write(t->ssl, data, chunk);
    if (n <= 0) {
      char why[200];
      ssl_error_text(why, sizeof why);
      snprintf(t->err, sizeof t->err, "%s", why[0] ? why : "TLS write failed");
      return -1;
    }
    data += n;
    len -= (size_t)n;
  }
  return 0;
}

size_t http_tls_take_output(http_tls_conn *t, sbuf *out) {
  char *p = NULL;
  long n = BIO_get_mem_data(t->out, &p);
  if (n <= 0) return 0;
  sbuf_put(out, p, (size_t)n);
  (void)BIO_reset(t->out); /* a writable memory BIO: discards what was taken */
  return (size_t)n;
}

const char *http_tls_error(const http_tls_conn *t) { return t->err; }
