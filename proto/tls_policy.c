/* tls_policy: etcd's TLS flags beyond a verified chain (see the header). */
#include "proto/tls_policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

typedef struct crl_list {
  X509_CRL **v;
  size_t n;
} crl_list;

static void crl_list_free(crl_list *l) {
  for (size_t i = 0; i < l->n; i++) X509_CRL_free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = 0;
}

static int crl_push(crl_list *l, X509_CRL *c) {
  X509_CRL **v = realloc(l->v, (l->n + 1) * sizeof *v);
  if (!v) {
    X509_CRL_free(c);
    return -1;
  }
  l->v = v;
  l->v[l->n++] = c;
  return 0;
}

/* The CRLs in path: PEM (one or more) or one DER. 0, or -1 with the reason in why. */
static int crl_read(const char *path, crl_list *out, char *why, size_t n) {
  out->v = NULL;
  out->n = 0;
  BIO *b = BIO_new_file(path, "rb");
  if (!b) {
    snprintf(why, n, "cannot read the CRL file %s: %s", path, strerror(errno ? errno : EIO));
    ERR_clear_error();
    return -1;
  }
  X509_CRL *c;
  while ((c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL)) != NULL)
    if (crl_push(out, c)) break;
  if (!out->n) {
    ERR_clear_error();
    (void)BIO_reset(b);
    c = d2i_X509_CRL_bio(b, NULL);
    if (c) crl_push(out, c);
  }
  BIO_free(b);
  ERR_clear_error();
  if (!out->n) {
    snprintf(why, n, "the CRL file %s holds no certificate revocation list (PEM or DER)", path);
    return -1;
  }
  return 0;
}

static char *dup_set(const char *s) { return s && *s ? strdup(s) : NULL; }

int tls_policy_init(tls_policy *p, const char *crl_file, const char *allowed_cn,
                    const char *allowed_host, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  p->crl_file = dup_set(crl_file);
  p->allowed_cn = dup_set(allowed_cn);
  p->allowed_host = dup_set(allowed_host);
  if ((crl_file && *crl_file && !p->crl_file) || (allowed_cn && *allowed_cn && !p->allowed_cn) ||
      (allowed_host && *allowed_host && !p->allowed_host)) {
    tls_policy_free(p);
    snprintf(err, errlen, "TLS: out of memory");
    return -ENOMEM;
  }
  if (p->crl_file) {
    crl_list l;
    char why[512];
    if (crl_read(p->crl_file, &l, why, sizeof why)) {
      snprintf(err, errlen, "TLS: %s", why);
      tls_policy_free(p);
      return -EINVAL;
    }
    crl_list_free(&l);
  }
  return 0;
}

void tls_policy_free(tls_policy *p) {
  free(p->crl_file);
  free(p->allowed_cn);
  free(p->allowed_host);
  memset(p, 0, sizeof *p);
}

int tls_policy_active(const tls_policy *p) {
  return p->crl_file || p->allowed_cn || p->allowed_host;
}

static int revoked(const crl_list *l, X509 *cert) {
  const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
  for (size_t i = 0; i < l->n; i++) {
    X509_REVOKED *r = NULL;
    if (X509_CRL_get0_by_serial(l->v[i], &r, (ASN1_INTEGER *)serial) == 1) return 1;
  }
  return 0;
}

static void serial_hex(X509 *cert, char *buf, size_t n) {
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  snprintf(buf, n, "%s", hex ? hex : "?");
  for (char *c = buf; *c; c++)
    if (*c >= 'A' && *c <= 'F') *c = (char)(*c - 'A' + 'a');
  OPENSSL_free(hex);
  BN_free(bn);
}

static int names_match(const tls_policy *p, X509 *cert) {
  if (p->allowed_cn) {
    char cn[256];
    int len = X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn,
                                        (int)sizeof cn);
    if (len > 0 && (size_t)len < sizeof cn && strcmp(cn, p->allowed_cn) == 0) return 1;
  }
  if (p->allowed_host) {
    unsigned char ip[16];
    int is_ip = inet_pton(AF_INET, p->allowed_host, ip) == 1 ||
                inet_pton(AF_INET6, p->allowed_host, ip) == 1;
    int ok = is_ip ? X509_check_ip_asc(cert, p->allowed_host, 0)
                   : X509_check_host(cert, p->allowed_host, 0, 0, NULL);
    if (ok == 1) return 1;
  }
  return !p->allowed_cn && !p->allowed_host;
}

int tls_policy_check(const tls_policy *p, X509 *cert, int depth, char *why, size_t n) {
  if (p->crl_file && !(X509_get_extension_flags(cert) & EXFLAG_SS)) {
    crl_list l;
    if (crl_read(p->crl_file, &l, why, n)) return -1; /* unreadable now: refuse, as etcd */
    int r = revoked(&l, cert);
    crl_list_free(&l);
    if (r) {
      char hex[128];
      serial_hex(cert, hex, sizeof hex);
      snprintf(why, n, "certificate serial %s revoked", hex);
      return -1;
    }
  }
  if (depth == 0 && !names_match(p, cert)) {
    snprintf(why, n, "client certificate authentication failed");
    return -1;
  }
  return 0;
}

/* The OpenSSL cipher whose IANA name is name (also Go's short CHACHA20 names), or NULL. */
static const SSL_CIPHER *cipher_named(STACK_OF(SSL_CIPHER) *all, const char *name) {
  for (int i = 0; i < sk_SSL_CIPHER_num(all); i++) {
    const SSL_CIPHER *c = sk_SSL_CIPHER_value(all, i);
    const char *std = SSL_CIPHER_standard_name(c);
    if (!std) continue;
    if (strcmp(std, name) == 0) return c;
    size_t ln = strlen(name);
    if (strstr(name, "_WITH_CHACHA20_POLY1305") && strncmp(std, name, ln) == 0 &&
        strcmp(std + ln, "_SHA256") == 0)
      return c;
  }
  return NULL;
}

int tls_policy_ciphers(SSL_CTX *ssl, const char *names, char *err, size_t errlen) {
  if (!names || !*names) return 0;
  SSL_CTX *every = SSL_CTX_new(TLS_method());
  size_t cap = strlen(names) * 2 + 64;
  char *list = calloc(1, cap);
  char *copy = strdup(names);
  int rc = -ENOMEM;
  if (!every || !list || !copy) {
    snprintf(err, errlen, "TLS: out of memory");
    goto out;
  }
  (void)SSL_CTX_set_cipher_list(every, "ALL:COMPLEMENTOFALL:@SECLEVEL=0");
  STACK_OF(SSL_CIPHER) *all = SSL_CTX_get_ciphers(every);
  size_t o = 0;
  char *save = NULL;
  rc = -EINVAL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    size_t tl = strlen(tok);
    while (tl && tok[tl - 1] == ' ') tok[--tl] = 0;
    if (!*tok) continue;
    const SSL_CIPHER *c = cipher_named(all, tok);
    if (!c) {
      snprintf(err, errlen, "unexpected TLS cipher suite \"%s\"", tok);
      goto out;
    }
    if (strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0) continue; /* not configurable, as in Go */
    int w = snprintf(list + o, cap - o, "%s%s", o ? ":" : "", SSL_CIPHER_get_name(c));
    if (w < 0 || (size_t)w >= cap - o) {
      snprintf(err, errlen, "--cipher-suites: too long");
      goto out;
    }
    o += (size_t)w;
  }
  ERR_clear_error();
  if (!o) {
    /* only TLS 1.3 suites named: TLS 1.2 has none left */
    rc = SSL_CTX_set_min_proto_version(ssl, TLS1_3_VERSION) == 1 ? 0 : -EINVAL;
  } else if (SSL_CTX_set_cipher_list(ssl, list) != 1) {
    snprintf(err, errlen, "--cipher-suites: this OpenSSL cannot offer %s", names);
  } else {
    rc = 0;
  }
  ERR_clear_error();
out:
  SSL_CTX_free(every);
  free(list);
  free(copy);
  return rc;
}
