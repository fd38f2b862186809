/* v2_client: the libcurl transport of the v2 client (endpoints, failover, timeouts, TLS, auth,
 * member sync) and the yajl-tree parsing of v2 bodies (events, errors, members). */
#include "proto/v2_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <yajl/yajl_tree.h>

struct proto_v2_client {
  CURL *curl;
  char **eps;
  size_t n_eps;
  size_t pinned;
  proto_v2_client_opts o;
  char *cert_file, *key_file, *ca_file, *username, *password, *proxy;
  int64_t deadline_ms; /* monotonic; 0 = none */
  char errbuf[CURL_ERROR_SIZE];
  int (*cancel)(void *ud); /* polled during a transfer: nonzero aborts it */
  void *cancel_ud;
};

/* ------------------------------------------------------------------ buffers */

void proto_v2_buf_add(proto_v2_buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->s, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->s = p;
    b->cap = cap;
  }
  if (n) memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

void proto_v2_buf_adds(proto_v2_buf *b, const char *s) { proto_v2_buf_add(b, s, strlen(s)); }

void proto_v2_buf_free(proto_v2_buf *b) {
  free(b->s);
  memset(b, 0, sizeof *b);
}

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ URL pieces */

/* Go's shouldEscape for encodePath / encodeQueryComponent. */
static int keep_in_path(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return strchr("-_.~$&+,/:;=@", c) != NULL && c != 0;
}

static int keep_in_query(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return 1;
  return c == '-' || c == '_' || c == '.' || c == '~';
}

static void add_escaped_n(proto_v2_buf *b, const char *s, size_t n, int query) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *end = (const unsigned char *)s + n;
  for (const unsigned char *p = (const unsigned char *)s; p < end; p++) {
    if (query ? keep_in_query(*p) : keep_in_path(*p)) {
      proto_v2_buf_add(b, (const char *)p, 1);
    } else if (query && *p == ' ') {
      proto_v2_buf_add(b, "+", 1);
    } else {
      char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      proto_v2_buf_add(b, e, 3);
    }
  }
}

static void add_escaped(proto_v2_buf *b, const char *s, int query) {
  add_escaped_n(b, s, strlen(s), query);
}

/* path.Clean of an absolute path into out (which has room for strlen(p) + 2). */
static void clean_path(const char *p, char *out) {
  size_t n = 1;
  out[0] = '/';
  const char *s = p;
  while (*s) {
    while (*s == '/') s++;
    if (!*s) break;
    const char *e = s;
    while (*e && *e != '/') e++;
    size_t len = (size_t)(e - s);
    if (len == 1 && s[0] == '.') {
      /* nothing */
    } else if (len == 2 && s[0] == '.' && s[1] == '.') {
      while (n > 1 && out[n - 1] != '/') n--;
      if (n > 1) n--;
    } else {
      if (n > 1) out[n++] = '/';
      memcpy(out + n, s, len);
      n += len;
    }
    s = e;
  }
  out[n] = 0;
}

void proto_v2_keys_path(proto_v2_buf *b, const char *key) {
  size_t kl = strlen(key);
  char *raw = malloc(kl + 16);
  char *clean = malloc(kl + 18);
  if (!raw || !clean) {
    free(raw);
    free(clean);
    b->oom = 1;
    return;
  }
  snprintf(raw, kl + 16, "/v2/keys%s%s", (kl && key[0] == '/') ? "" : "/", key);
  clean_path(raw, clean);
  size_t cl = strlen(clean);
  if (raw[strlen(raw) - 1] == '/' && strcmp(clean, "/") != 0) {
    clean[cl++] = '/';
    clean[cl] = 0;
  }
  add_escaped(b, clean, 0);
  free(raw);
  free(clean);
}

void proto_v2_path_clean(const char *p, char *out) { clean_path(p, out); }

void proto_v2_auth_path(proto_v2_buf *b, const char *action, const char *name) {
  size_t n = strlen(action) + strlen(name) + 16;
  char *raw = malloc(n);
  char *clean = malloc(n + 2);
  if (!raw || !clean) {
    free(raw);
    free(clean);
    b->oom = 1;
    return;
  }
  /* path.Join("/v2/auth", action, name): an empty name is left out, and the result cleaned
   * (no trailing slash kept) */
  snprintf(raw, n, "/v2/auth/%s%s%s", action, *name ? "/" : "", name);
  clean_path(raw, clean);
  add_escaped(b, clean, 0);
  free(raw);
  free(clean);
}

void proto_v2_add_param(proto_v2_buf *b, const char *name, const char *value) {
  proto_v2_add_param_n(b, name, value, strlen(value));
}

void proto_v2_add_param_n(proto_v2_buf *b, const char *name, const char *value, size_t len) {
  if (b->len && b->s[b->len - 1] != '?') proto_v2_buf_add(b, "&", 1);
  add_escaped(b, name, 1);
  proto_v2_buf_add(b, "=", 1);
  add_escaped_n(b, value, len, 1);
}

/* ------------------------------------------------------------------ errors */

static void err_add(proto_v2_errors *e, int connection, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void err_add(proto_v2_errors *e, int connection, const char *fmt, ...) {
  if (e->n == 0) e->all_connection = 1;
  if (!connection) e->all_connection = 0;
  if (e->n >= PROTO_V2_MAX_ERRORS) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->msg[e->n], sizeof e->msg[e->n], fmt, ap);
  va_end(ap);
  e->n++;
}

/* Appends "<sep>error #i: <message>\n" for each endpoint's error, as etcd's client lists them. */
static void add_endpoint_errors(proto_v2_buf *b, const proto_v2_errors *e, const char *sep) {
  for (size_t i = 0; i < e->n; i++) {
    char head[48];
    snprintf(head, sizeof head, "%serror #%zu: ", sep, i);
    proto_v2_buf_adds(b, head);
    proto_v2_buf_adds(b, e->msg[i]);
    proto_v2_buf_adds(b, "\n");
  }
}

char *proto_v2_errors_text(const proto_v2_errors *e) {
  proto_v2_buf b = {0};
  if (e->kind == PROTO_V2_DEADLINE) {
    proto_v2_buf_adds(&b, "context deadline exceeded");
  } else if (e->kind == PROTO_V2_NOMEM) {
    proto_v2_buf_adds(&b, "out of memory");
  } else if (e->kind == PROTO_V2_CONFIG) {
    proto_v2_buf_adds(&b, e->n ? e->msg[0] : "bad TLS configuration");
  } else {
    proto_v2_buf_adds(&b, "client: etcd cluster is unavailable or misconfigured");
    add_endpoint_errors(&b, e, "; ");
  }
  if (!b.s) return strdup("");
  return b.s;
}

char *proto_v2_errors_detail(const proto_v2_errors *e) {
  proto_v2_buf b = {0};
  if (e->kind == PROTO_V2_CLUSTER) add_endpoint_errors(&b, e, "");
  if (!b.s) return strdup("");
  return b.s;
}

/* ------------------------------------------------------------------ client */

static char *normalise_endpoint(const char *ep) {
  if (strstr(ep, "://")) return strdup(ep);
  size_t n = strlen(ep) + 8;
  char *s = malloc(n);
  if (s) snprintf(s, n, "http://%s", ep);
  return s;
}

int proto_v2_client_set_endpoints(proto_v2_client *c, const char *const *eps, size_t n) {
  char **v = calloc(n ? n : 1, sizeof *v);
  if (!v) return -1;
  for (size_t i = 0; i < n; i++) {
    v[i] = normalise_endpoint(eps[i]);
    if (!v[i]) {
      for (size_t j = 0; j < i; j++) free(v[j]);
      free(v);
      return -1;
    }
  }
  for (size_t i = 0; i < c->n_eps; i++) free(c->eps[i]);
  free(c->eps);
  c->eps = v;
  c->n_eps = n;
  c->pinned = 0;
  return 0;
}

proto_v2_client *proto_v2_client_new(const proto_v2_client_opts *opts) {
  proto_v2_client *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->o = *opts;
  c->cert_file = dupstr(opts->cert_file);
  c->key_file = dupstr(opts->key_file);
  c->ca_file = dupstr(opts->ca_file);
  c->username = dupstr(opts->username);
  c->password = dupstr(opts->password);
  c->proxy = dupstr(opts->proxy);
  c->o.endpoints = NULL;
  c->curl = curl_easy_init();
  if (!c->curl || proto_v2_client_set_endpoints(c, opts->endpoints, opts->n_endpoints) != 0) {
    proto_v2_client_free(c);
    return NULL;
  }
  return c;
}

void proto_v2_client_free(proto_v2_client *c) {
  if (!c) return;
  if (c->curl) curl_easy_cleanup(c->curl);
  for (size_t i = 0; i < c->n_eps; i++) free(c->eps[i]);
  free(c->eps);
  free(c->cert_file);
  free(c->key_file);
  free(c->ca_file);
  free(c->username);
  free(c->password);
  free(c->proxy);
  free(c);
}

size_t proto_v2_client_n_endpoints(const proto_v2_client *c) { return c->n_eps; }
const char *proto_v2_client_endpoint(const proto_v2_client *c, size_t i) { return c->eps[i]; }

size_t proto_v2_client_pinned(const proto_v2_client *c) { return c->pinned; }

void proto_v2_client_set_cancel(proto_v2_client *c, int (*cancel)(void *ud), void *ud) {
  c->cancel = cancel;
  c->cancel_ud = ud;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  proto_v2_client *c = ud;
  return c->cancel(c->cancel_ud) ? 1 : 0;
}

void proto_v2_client_start_clock(proto_v2_client *c) {
  c->deadline_ms = c->o.total_timeout_ms > 0 ? now_ms() + c->o.total_timeout_ms : 0;
}

void proto_v2_resp_free(proto_v2_resp *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  proto_v2_buf *b = ud;
  proto_v2_buf_add(b, p, size * n);
  return b->oom ? 0 : size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  proto_v2_resp *r = ud;
  size_t len = size * n;
  static const char name[] = "x-etcd-index:";
  if (len > sizeof name - 1 && strncasecmp(p, name, sizeof name - 1) == 0) {
    uint64_t v = 0;
    int any = 0;
    for (size_t i = sizeof name - 1; i < len; i++) {
      if (p[i] >= '0' && p[i] <= '9') {
        v = v * 10 + (uint64_t)(p[i] - '0');
        any = 1;
      } else if (any) {
        break;
      }
    }
    if (any) {
      r->has_index = 1;
      r->etcd_index = v;
    }
  }
  return len;
}

/* "host:port" of a URL as Go's dialer shows it. */
static void dial_addr(const char *url, char *out, size_t n) {
  CURLU *u = curl_url();
  char *host = NULL, *port = NULL;
  snprintf(out, n, "%s", url);
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    snprintf(out, n, "%s:%s", host, port);
  }
  curl_free(host);
  curl_free(port);
  if (u) curl_url_cleanup(u);
}

/* Length of the valid UTF-8 sequence at p (1-4), or 0 when p does not start one. */
static size_t utf8_len(const unsigned char *p) {
  size_t n;
  uint32_t cp;
  if (p[0] < 0x80) return 1;
  if (p[0] >= 0xc2 && p[0] <= 0xdf) n = 2, cp = p[0] & 0x1f;
  else if (p[0] >= 0xe0 && p[0] <= 0xef) n = 3, cp = p[0] & 0x0f;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4) n = 4, cp = p[0] & 0x07;
  else return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

/* The body as Go's %q shows it (strconv.Quote; non-ASCII characters are kept as they are). */
static void debug_quoted(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p;) {
    size_t n = utf8_len(p);
    if (n > 1) {
      fwrite(p, 1, n, f);
      p += n;
      continue;
    }
    const char *esc = NULL;
    switch (*p) {
      case '"': esc = "\\\""; break;
      case '\\': esc = "\\\\"; break;
      case '\a': esc = "\\a"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      case '\v': esc = "\\v"; break;
      default: break;
    }
    if (esc) fputs(esc, f);
    else if (*p < 0x20 || *p >= 0x7f) fprintf(f, "\\x%02x", *p);
    else fputc(*p, f);
    p++;
  }
  fputc('"', f);
}

static void debug_curl(const char *method, const char *url, const char *body) {
  fprintf(stderr, "cURL Command: curl -X %s %s", method, url);
  if (body && *body) {
    fputs(" -d ", stderr);
    debug_quoted(stderr, body);
  }
  fprintf(stderr, "\n");
}

/* OpenSSL's alert descriptions (as in its error strings) and Go's crypto/tls alert texts. */
static const struct {
  const char *openssl, *go;
} tls_alerts[] = {
    {"alert bad certificate", "bad certificate"},
    {"alert unknown ca", "unknown certificate authority"},
    {"alert certificate required", "certificate required"},
    {"alert handshake failure", "handshake failure"},
    {"alert certificate unknown", "unknown certificate"},
    {"alert certificate expired", "expired certificate"},
    {"alert certificate revoked", "revoked certificate"},
    {"alert unsupported certificate", "unsupported certificate"},
    {"alert protocol version", "protocol version not supported"},
    {"alert decrypt error", "error decrypting message"},
    {"alert access denied", "access denied"},
    {"alert internal error", "internal error"},
    {"alert illegal parameter", "illegal parameter"},
};

/* The failures of a TLS connection, worded as Go's crypto/tls and crypto/x509 word them (which
 * is what etcdctl prints). None of them is a connection error for etcdctl (a member sync that
 * gets one goes on, and a command exits 4), except a bad client certificate/key pair, which
 * etcdctl finds before any request (PROTO_V2_CONFIG). Returns 1 when the error was added, 0 when
 * it was not a TLS failure after all. */
static int tls_failure(proto_v2_client *c, CURL *h, CURLcode rc, proto_v2_errors *err) {
  const char *eb = c->errbuf;
  if (rc == CURLE_SSL_CERTPROBLEM) {
    err->kind = PROTO_V2_CONFIG;
    err->n = 0;
    /* The files exist and hold PEM blocks of the right kinds (quorumctl checks that before
     * any request), so OpenSSL refusing the key means it does not belong to the certificate. */
    err_add(err, 0, "%s",
            strstr(eb, "private key") ? "tls: private key does not match public key"
                                       : (eb[0] ? eb : curl_easy_strerror(rc)));
    return 1;
  }
  if (rc == CURLE_SSL_CACERT_BADFILE) {
    /* a CA file without a usable certificate: Go's pool is empty, and verification fails */
    err_add(err, 0, "x509: certificate signed by unknown authority");
    return 1;
  }
  if (rc == CURLE_PEER_FAILED_VERIFICATION) {
    long v = 0;
    curl_easy_getinfo(h, CURLINFO_SSL_VERIFYRESULT, &v);
    switch (v) {
      case 2:  /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT */
      case 18: /* X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT */
      case 19: /* X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN */
      case 20: /* X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY */
      case 21: /* X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE */
        err_add(err, 0, "x509: certificate signed by unknown authority");
        return 1;
      case 9:  /* X509_V_ERR_CERT_NOT_YET_VALID */
      case 10: /* X509_V_ERR_CERT_HAS_EXPIRED */
        err_add(err, 0, "x509: certificate has expired or is not yet valid");
        return 1;
      default: /* e.g. a host name the certificate is not for: curl's own words (Go would
                * name the names the certificate is valid for) */
        err_add(err, 0, "%s", eb[0] ? eb : curl_easy_strerror(rc));
        return 1;
    }
  }
  /* The handshake itself failed (35), or the connection broke during it (55/56). */
  curl_off_t app_us = 0;
  curl_easy_getinfo(h, CURLINFO_APPCONNECT_TIME_T, &app_us);
  if (app_us > 0) return 0; /* TLS was up: an ordinary send/receive failure */
  for (size_t i = 0; i < sizeof tls_alerts / sizeof tls_alerts[0]; i++) {
    if (strstr(eb, tls_alerts[i].openssl)) {
      err_add(err, 0, "remote error: tls: %s", tls_alerts[i].go);
      return 1;
    }
  }
  if (strstr(eb, "wrong version number") || strstr(eb, "packet length too long") ||
      strstr(eb, "record layer failure")) {
    err_add(err, 0, "tls: first record does not look like a TLS handshake");
    return 1;
  }
  long oserr = 0;
  curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
  if (oserr == ECONNRESET || oserr == ENOTCONN || strstr(eb, "reset") || strstr(eb, "errno 107")) {
    /* The server dropped the connection in the middle of the handshake. A Go server does that
     * right after its alert when it requires a client certificate and did not get a valid one;
     * should the reset reach OpenSSL before the alert does, the alert's text is lost. That is
     * the usual cause: say what Go would have read. */
    err_add(err, 0, "remote error: tls: bad certificate");
    return 1;
  }
  if (strstr(eb, "SSL_ERROR_SYSCALL") || strstr(eb, "unexpected eof")) {
    /* closed without a word (etcd's port multiplexer does that to a handshake it cannot
     * place): Go's io.EOF */
    err_add(err, 0, "EOF");
    return 1;
  }
  return 0;
}

/* One attempt against one URL, with `untried` endpoints (this one included) left to try.
 * Returns 0 (answered), 1 (failed: message added), 2 (deadline). */
static int attempt(proto_v2_client *c, const char *method, const char *ep, const char *url,
                   const char *content_type, const char *body, int wait, size_t untried,
                   proto_v2_resp *r, proto_v2_errors *err) {
  CURL *h = c->curl;
  curl_easy_reset(h);
  proto_v2_buf b = {0};
  struct curl_slist *hdrs = NULL;
  long dial = c->o.dial_timeout_ms > 0 ? c->o.dial_timeout_ms : 30000;
  if (c->o.total_timeout_ms > 0 && c->o.total_timeout_ms < dial) dial = c->o.total_timeout_ms;
  long limit = 0;
  int limit_is_total = 0;
  if (!wait) {
    if (c->o.request_timeout_ms > 0) limit = c->o.request_timeout_ms;
    if (c->deadline_ms) {
      int64_t left = c->deadline_ms - now_ms();
      if (left <= 0) return 2;
      int64_t share = left;
      if (c->o.share_total && untried > 1) share = left / (int64_t)untried;
      /* sharing the total, the last endpoint left takes what is left of it: the cap on one
       * request is there to move on to the next, and there is none */
      if (limit == 0 || share <= limit || (c->o.share_total && untried == 1)) {
        limit = (long)share;
        limit_is_total = share == left;
      }
    }
  }
  if (limit > 0 && dial > limit) dial = limit;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c->errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, dial);
  if (limit > 0) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, limit);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  if (c->cancel) {
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
  }
  /* etcd's TLSInfo.ClientConfig caps the version at TLS 1.2 (so does the server side); with
   * TLS 1.2 a refused client certificate ends the handshake with the server's alert. */
  curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)(CURL_SSLVERSION_DEFAULT | CURL_SSLVERSION_MAX_TLSv1_2));
  if (c->cert_file && *c->cert_file) curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
  if (c->key_file && *c->key_file) curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
  if (c->ca_file && *c->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
  if (c->o.insecure) {
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (c->proxy && *c->proxy) curl_easy_setopt(h, CURLOPT_PROXY, c->proxy);
  if (c->username && *c->username) {
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->username);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->password ? c->password : "");
  }
  hdrs = curl_slist_append(hdrs, "Expect:");
  if (content_type) {
    char ct[128];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type);
    hdrs = curl_slist_append(hdrs, ct);
  }
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
      curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
      curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
  }
  if (c->o.debug) debug_curl(method, url, body);
  memset(r, 0, sizeof *r);
  c->errbuf[0] = 0;
  CURLcode rc = curl_easy_perform(h);
  curl_slist_free_all(hdrs);
  if (rc == CURLE_OK && !b.oom) {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    if (!b.s) proto_v2_buf_add(&b, "", 0);
    if (b.oom) {
      proto_v2_buf_free(&b);
      err->kind = PROTO_V2_NOMEM;
      return 1;
    }
    r->body = b.s;
    r->body_len = b.len;
    r->endpoint = ep;
    return 0;
  }
  proto_v2_buf_free(&b);
  long oserr = 0;
  curl_easy_getinfo(h, CURLINFO_OS_ERRNO, &oserr);
  char addr[300];
  dial_addr(url, addr, sizeof addr);
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
      if (oserr == ECONNREFUSED) {
        err_add(err, 1, "dial tcp %s: connect: connection refused", addr);
      } else {
        err_add(err, 1, "dial tcp %s: connect: %s", addr,
                oserr ? strerror((int)oserr) : (c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc)));
      }
      return 1;
    case CURLE_COULDNT_RESOLVE_HOST: {
      char host[300];
      snprintf(host, sizeof host, "%s", addr);
      char *colon = strrchr(host, ':');
      if (colon) *colon = 0;
      err_add(err, 1, "dial tcp: lookup %s: no such host", host);
      return 1;
    }
    case CURLE_OPERATION_TIMEDOUT: {
      /* connected in this transfer, or on a kept-alive connection (no connect time then, but
       * the request went out): a header timeout, and the member may have the request */
      curl_off_t connected_us = 0;
      long sent = 0;
      curl_easy_getinfo(h, CURLINFO_CONNECT_TIME_T, &connected_us);
      curl_easy_getinfo(h, CURLINFO_REQUEST_SIZE, &sent);
      if (limit_is_total) return 2;
      if (connected_us <= 0 && sent <= 0) {
        err_add(err, 1, "dial tcp %s: i/o timeout", addr);
      } else {
        /* not a connection error for etcdctl: a sync that gets it goes on */
        err_add(err, 0, "client: endpoint %s exceeded header timeout", ep);
      }
      return 1;
    }
    case CURLE_GOT_NOTHING: /* the server closed without an answer: Go's transport says EOF */
      err_add(err, 0, "EOF");
      return 1;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
      if (strncasecmp(url, "https://", 8) == 0 && tls_failure(c, h, rc, err)) return 1;
      /* fall through */
    default:
      err_add(err, 1, "%s %s: %s", method, url, c->errbuf[0] ? c->errbuf : curl_easy_strerror(rc));
      return 1;
  }
}

static int do_one(proto_v2_client *c, const char *method, const char *ep, const char *path,
                  const char *content_type, const char *body, int wait, size_t untried,
                  proto_v2_resp *r, proto_v2_errors *err) {
  size_t el = strlen(ep);
  while (el && ep[el - 1] == '/') el--;
  proto_v2_buf url = {0};
  proto_v2_buf_add(&url, ep, el);
  proto_v2_buf_adds(&url, path);
  if (url.oom) {
    err->kind = PROTO_V2_NOMEM;
    proto_v2_buf_free(&url);
    return 1;
  }
  int rc = attempt(c, method, ep, url.s, content_type, body, wait, untried, r, err);
  proto_v2_buf_free(&url);
  return rc;
}

int proto_v2_do(proto_v2_client *c, const char *method, const char *path, const char *content_type,
                const char *body, int wait, proto_v2_resp *r, proto_v2_errors *err) {
  memset(err, 0, sizeof *err);
  memset(r, 0, sizeof *r);
  if (c->n_eps == 0) {
    err->kind = PROTO_V2_CLUSTER;
    return -1;
  }
  for (size_t i = 0; i < c->n_eps; i++) {
    size_t k = (c->pinned + i) % c->n_eps;
    const char *ep = c->eps[k];
    int rc = do_one(c, method, ep, path, content_type, body, wait, c->n_eps - i, r, err);
    if (rc == 2) {
      err->kind = PROTO_V2_DEADLINE;
      return -1;
    }
    if (err->kind == PROTO_V2_NOMEM || err->kind == PROTO_V2_CONFIG) return -1;
    if (rc == 0 && r->status / 100 == 5) {
      if (r->status == 500 || r->status == 503) {
        err_add(err, 0, "client: etcd member %s has no leader", ep);
      } else {
        const char *txt = r->status == 501 ? "Not Implemented"
                          : r->status == 502 ? "Bad Gateway"
                          : r->status == 504 ? "Gateway Timeout"
                                             : "";
        err_add(err, 0, "client: etcd member %s returns server error [%s]", ep, txt);
      }
      proto_v2_resp_free(r);
      continue;
    }
    if (rc == 0) {
      c->pinned = k;
      return 0;
    }
  }
  err->kind = PROTO_V2_CLUSTER;
  return -1;
}

int proto_v2_get_url(proto_v2_client *c, const char *url, proto_v2_resp *r, proto_v2_errors *err) {
  memset(err, 0, sizeof *err);
  memset(r, 0, sizeof *r);
  int rc = attempt(c, "GET", url, url, NULL, NULL, 1, 1, r, err);
  if (rc == 0) return 0;
  if (err->kind == PROTO_V2_CONFIG || err->kind == PROTO_V2_NOMEM) return -1;
  err->kind = rc == 2 ? PROTO_V2_DEADLINE : PROTO_V2_CLUSTER;
  return -1;
}

/* ------------------------------------------------------------------ JSON helpers */

static yajl_val obj_get(yajl_val o, const char *name) {
  if (!YAJL_IS_OBJECT(o)) return NULL;
  for (size_t i = 0; i < o->u.object.len; i++)
    if (strcmp(o->u.object.keys[i], name) == 0) return o->u.object.values[i];
  return NULL;
}

static char *str_or_empty(yajl_val v) {
  const char *s = YAJL_IS_STRING(v) ? YAJL_GET_STRING(v) : NULL;
  return strdup(s ? s : "");
}

static uint64_t get_u64(yajl_val v) {
  if (YAJL_IS_INTEGER(v)) return (uint64_t)YAJL_GET_INTEGER(v);
  if (YAJL_IS_NUMBER(v) && v->u.number.r) return strtoull(v->u.number.r, NULL, 10);
  return 0;
}

static char **str_array(yajl_val v, size_t *n) {
  *n = 0;
  if (!YAJL_IS_ARRAY(v)) return calloc(1, sizeof(char *));
  char **a = calloc(v->u.array.len + 1, sizeof *a);
  if (!a) return NULL;
  for (size_t i = 0; i < v->u.array.len; i++) a[(*n)++] = str_or_empty(v->u.array.values[i]);
  return a;
}

static yajl_val parse_json(const char *body) {
  char ebuf[128];
  return yajl_tree_parse(body, ebuf, sizeof ebuf);
}

/* ------------------------------------------------------------------ members */

static void member_from(yajl_val o, proto_v2_member *m) {
  memset(m, 0, sizeof *m);
  m->id = str_or_empty(obj_get(o, "id"));
  m->name = str_or_empty(obj_get(o, "name"));
  m->peer_urls = str_array(obj_get(o, "peerURLs"), &m->n_peer);
  m->client_urls = str_array(obj_get(o, "clientURLs"), &m->n_client);
}

void proto_v2_member_free(proto_v2_member *m) {
  free(m->id);
  free(m->name);
  for (size_t i = 0; i < m->n_peer; i++) free(m->peer_urls[i]);
  free(m->peer_urls);
  for (size_t i = 0; i < m->n_client; i++) free(m->client_urls[i]);
  free(m->client_urls);
  memset(m, 0, sizeof *m);
}

void proto_v2_members_free(proto_v2_members *ms) {
  for (size_t i = 0; i < ms->n; i++) proto_v2_member_free(&ms->m[i]);
  free(ms->m);
  ms->m = NULL;
  ms->n = 0;
}

int proto_v2_parse_member(const char *body, proto_v2_member *out) {
  yajl_val t = parse_json(body);
  if (!YAJL_IS_OBJECT(t)) {
    yajl_tree_free(t);
    return -1;
  }
  member_from(t, out);
  yajl_tree_free(t);
  return 0;
}

int proto_v2_parse_members(const char *body, proto_v2_members *out) {
  memset(out, 0, sizeof *out);
  yajl_val t = parse_json(body);
  yajl_val arr = obj_get(t, "members");
  if (!YAJL_IS_OBJECT(t) || (arr && !YAJL_IS_ARRAY(arr) && !YAJL_IS_NULL(arr))) {
    yajl_tree_free(t);
    return -1;
  }
  size_t n = YAJL_IS_ARRAY(arr) ? arr->u.array.len : 0;
  out->m = calloc(n ? n : 1, sizeof *out->m);
  if (!out->m) {
    yajl_tree_free(t);
    return -1;
  }
  for (size_t i = 0; i < n; i++) member_from(arr->u.array.values[i], &out->m[out->n++]);
  yajl_tree_free(t);
  return 0;
}

int proto_v2_list_members(proto_v2_client *c, proto_v2_members *out, proto_v2_errors *err,
                          long *status_out) {
  proto_v2_resp r;
  memset(out, 0, sizeof *out);
  if (status_out) *status_out = 0;
  if (proto_v2_do(c, "GET", "/v2/members", NULL, NULL, 0, &r, err) != 0) return -1;
  if (status_out) *status_out = r.status;
  int rc = (r.status == 200 && proto_v2_parse_members(r.body, out) == 0) ? 0 : -2;
  proto_v2_resp_free(&r);
  return rc;
}

int proto_v2_sync(proto_v2_client *c, proto_v2_errors *err) {
  proto_v2_members ms;
  int rc = proto_v2_list_members(c, &ms, err, NULL);
  if (rc != 0) return rc;
  size_t total = 0;
  for (size_t i = 0; i < ms.n; i++) total += ms.m[i].n_client;
  if (total == 0) {
    proto_v2_members_free(&ms);
    return 1;
  }
  const char **eps = calloc(total, sizeof *eps);
  if (!eps) {
    proto_v2_members_free(&ms);
    err->kind = PROTO_V2_NOMEM;
    return -1;
  }
  size_t k = 0;
  for (size_t i = 0; i < ms.n; i++)
    for (size_t j = 0; j < ms.m[i].n_client; j++) eps[k++] = ms.m[i].client_urls[j];
  /* Keep the pinned endpoint when the list did not change (as etcd's client does). */
  int same = k == c->n_eps;
  for (size_t i = 0; same && i < k; i++) same = strcmp(eps[i], c->eps[i]) == 0;
  rc = same ? 0 : proto_v2_client_set_endpoints(c, eps, k);
  if (rc != 0) err->kind = PROTO_V2_NOMEM;
  free(eps);
  proto_v2_members_free(&ms);
  return rc;
}

/* ------------------------------------------------------------------ keys */

/* (events: v2_event.c) */

void proto_v2_error_free(proto_v2_error *e) {
  free(e->message);
  free(e->cause);
  memset(e, 0, sizeof *e);
}

int proto_v2_parse_error(const char *body, proto_v2_error *e) {
  memset(e, 0, sizeof *e);
  yajl_val t = parse_json(body);
  if (!YAJL_IS_OBJECT(t)) {
    yajl_tree_free(t);
    return -1;
  }
  e->code = (int)get_u64(obj_get(t, "errorCode"));
  e->message = str_or_empty(obj_get(t, "message"));
  e->cause = str_or_empty(obj_get(t, "cause"));
  e->index = get_u64(obj_get(t, "index"));
  yajl_tree_free(t);
  return 0;
}
