/* config: owns quorumd's reading of etcd 3.4's command-line flags and ETCD_* environment
 * variables (or of its configuration file's settings, read by config_file.c) into a `config`,
 * the defaults and checks etcd applies to them, and the --help text.
 * Every string stored in a config is malloc'd here and released by config_free. */
#include "daemon/config.h"
#include "daemon/config_file.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a flag's value is and where it goes. */
enum flag_kind {
  K_STR,        /* char * field; optional list of allowed values */
  K_URLS,       /* config_urls field: comma-separated http(s)://host:port URLs */
  K_ORIGINS,    /* char * field: comma-separated origins, each "*" or a URL as K_URLS takes */
  K_U64,        /* uint64_t field: Go ParseUint (base 0, no sign) */
  K_BOOL,       /* int field: bare means true, or =true/false (Go ParseBool spellings) */
  K_IGN_VALUE,  /* an etcd flag taking a value, accepted and ignored */
  K_IGN_BOOL,   /* an etcd boolean flag, accepted and ignored (its =value is still checked) */
  K_IGN_LEGACY, /* a pre-v3 flag etcd swallows like a boolean with any value, ignored */
  K_NO_VALUE,   /* an etcd flag taking a value that quorumd does not implement: an error when
                   set (not empty), rather than silently weaker security; choices = why */
  K_NO_BOOL,    /* the same for a boolean: an error when true */
  K_OFF_ONLY,   /* an etcd mode quorumd does not implement: only its value "off" is accepted */
};

#define F_NOENV 1u /* never read from the environment (ETCD_VERSION is often set by images) */
#define F_HELP 2u  /* like Go's -h/-help: parsing stops here */

typedef struct flag_def {
  const char *name;    /* without dashes */
  unsigned char kind;  /* enum flag_kind */
  unsigned char opts;  /* F_* bits */
  size_t off;          /* offsetof(config, field); unused for the K_IGN_* kinds */
  const char *choices; /* K_STR: allowed values separated by '|', or NULL for any;
                          K_NO_*: why the flag is refused */
} flag_def;

#define OFF(field) offsetof(config, field)

static const flag_def flag_table[] = {
    /* acted upon */
    {"name", K_STR, 0, OFF(name), NULL},
    {"config-file", K_STR, 0, OFF(config_file), NULL},
    {"data-dir", K_STR, 0, OFF(data_dir), NULL},
    {"listen-client-urls", K_URLS, 0, OFF(listen_client), NULL},
    {"advertise-client-urls", K_URLS, 0, OFF(advertise_client), NULL},
    {"listen-peer-urls", K_URLS, 0, OFF(listen_peer), NULL},
    {"listen-metrics-urls", K_URLS, 0, OFF(listen_metrics), NULL},
    {"initial-advertise-peer-urls", K_URLS, 0, OFF(advertise_peer), NULL},
    {"initial-cluster", K_STR, 0, OFF(initial_cluster), NULL},
    {"initial-cluster-state", K_STR, 0, OFF(initial_cluster_state), "new|existing"},
    {"initial-cluster-token", K_STR, 0, OFF(initial_cluster_token), NULL},
    {"snapshot-count", K_U64, 0, OFF(snapshot_count), NULL},
    {"heartbeat-interval", K_U64, 0, OFF(heartbeat_ms), NULL},
    {"election-timeout", K_U64, 0, OFF(election_ms), NULL},
    {"max-request-bytes", K_U64, 0, OFF(max_request_bytes), NULL},
    {"cors", K_ORIGINS, 0, OFF(cors), NULL},
    {"log-level", K_STR, 0, OFF(log_level), "debug|info|warn|error|dpanic|panic|fatal"},
    {"log-outputs", K_STR, 0, OFF(log_outputs), NULL},
    {"unsafe-no-fsync", K_BOOL, 0, OFF(unsafe_no_fsync), NULL},
    {"http-loops", K_U64, 0, OFF(http_loops), NULL},
    {"cert-file", K_STR, 0, OFF(cert_file), NULL},
    {"key-file", K_STR, 0, OFF(key_file), NULL},
    {"trusted-ca-file", K_STR, 0, OFF(trusted_ca_file), NULL},
    {"client-cert-auth", K_BOOL, 0, OFF(client_cert_auth), NULL},
    {"peer-cert-file", K_STR, 0, OFF(peer_cert_file), NULL},
    {"peer-key-file", K_STR, 0, OFF(peer_key_file), NULL},
    {"peer-trusted-ca-file", K_STR, 0, OFF(peer_trusted_ca_file), NULL},
    {"peer-client-cert-auth", K_BOOL, 0, OFF(peer_client_cert_auth), NULL},
    {"auto-tls", K_BOOL, 0, OFF(auto_tls), NULL},
    {"force-new-cluster", K_BOOL, 0, OFF(force_new_cluster), NULL},
    {"wal-dir", K_STR, 0, OFF(wal_dir), NULL},
    {"host-whitelist", K_STR, 0, OFF(host_whitelist), NULL},
    {"strict-reconfig-check", K_BOOL, 0, OFF(strict_reconfig_check), NULL},
    {"peer-auto-tls", K_BOOL, 0, OFF(peer_auto_tls), NULL},
    {"version", K_BOOL, F_NOENV, OFF(show_version), NULL},
    {"help", K_BOOL, F_NOENV | F_HELP, OFF(show_help), NULL},
    {"h", K_BOOL, F_NOENV | F_HELP, OFF(show_help), NULL},

    /* etcd 3.4 flags accepted and ignored: member */
    {"max-snapshots", K_IGN_VALUE, 0, 0, NULL},
    {"max-wals", K_IGN_VALUE, 0, 0, NULL},
    {"initial-election-tick-advance", K_IGN_BOOL, 0, 0, NULL},
    {"quota-backend-bytes", K_IGN_VALUE, 0, 0, NULL},
    {"backend-batch-interval", K_IGN_VALUE, 0, 0, NULL},
    {"backend-batch-limit", K_IGN_VALUE, 0, 0, NULL},
    {"max-txn-ops", K_IGN_VALUE, 0, 0, NULL},
    {"max-concurrent-streams", K_IGN_VALUE, 0, 0, NULL},
    {"grpc-keepalive-min-time", K_IGN_VALUE, 0, 0, NULL},
    {"grpc-keepalive-interval", K_IGN_VALUE, 0, 0, NULL},
    {"grpc-keepalive-timeout", K_IGN_VALUE, 0, 0, NULL},
    {"socket-reuse-port", K_IGN_BOOL, 0, 0, NULL},
    {"socket-reuse-address", K_IGN_BOOL, 0, 0, NULL},
    /* clustering */
    {"discovery", K_STR, 0, OFF(discovery), NULL},
    {"discovery-fallback", K_STR, 0, OFF(discovery_fallback), "exit|proxy"},
    {"discovery-proxy", K_STR, 0, OFF(discovery_proxy), NULL},
    {"discovery-srv", K_STR, 0, OFF(discovery_srv), NULL},
    {"discovery-srv-name", K_STR, 0, OFF(discovery_srv_name), NULL},
    {"enable-v2", K_IGN_BOOL, 0, 0, NULL},
    {"pre-vote", K_IGN_BOOL, 0, 0, NULL},
    {"auto-compaction-retention", K_IGN_VALUE, 0, 0, NULL},
    {"auto-compaction-mode", K_IGN_VALUE, 0, 0, NULL},
    /* proxy */
    {"proxy", K_STR, 0, OFF(proxy), "off|on|readonly"},
    {"proxy-failure-wait", K_U64, 0, OFF(proxy_failure_wait_ms), NULL},
    {"proxy-refresh-interval", K_U64, 0, OFF(proxy_refresh_ms), NULL},
    {"proxy-dial-timeout", K_U64, 0, OFF(proxy_dial_timeout_ms), NULL},
    {"proxy-write-timeout", K_IGN_VALUE, 0, 0, NULL},
    {"proxy-read-timeout", K_U64, 0, OFF(proxy_read_timeout_ms), NULL},
    /* security beyond certificates and CAs (proto/tls_policy.h) */
    {"client-crl-file", K_STR, 0, OFF(client_crl_file), NULL},
    {"client-cert-allowed-hostname", K_STR, 0, OFF(client_cert_allowed_hostname), NULL},
    {"peer-crl-file", K_STR, 0, OFF(peer_crl_file), NULL},
    {"peer-cert-allowed-cn", K_STR, 0, OFF(peer_cert_allowed_cn), NULL},
    {"peer-cert-allowed-hostname", K_STR, 0, OFF(peer_cert_allowed_hostname), NULL},
    {"cipher-suites", K_STR, 0, OFF(cipher_suites), NULL},
    /* logging, metrics, profiling, auth, gateway */
    {"logger", K_IGN_VALUE, 0, 0, NULL},
    {"log-output", K_IGN_VALUE, 0, 0, NULL},
    {"log-package-levels", K_IGN_VALUE, 0, 0, NULL},
    {"debug", K_IGN_BOOL, 0, 0, NULL},
    {"enable-pprof", K_IGN_BOOL, 0, 0, NULL},
    {"metrics", K_IGN_VALUE, 0, 0, NULL},
    {"auth-token", K_IGN_VALUE, 0, 0, NULL},
    {"auth-token-ttl", K_IGN_VALUE, 0, 0, NULL},
    {"bcrypt-cost", K_IGN_VALUE, 0, 0, NULL},
    {"enable-grpc-gateway", K_IGN_BOOL, 0, 0, NULL},
    /* experimental and unsafe */
    {"experimental-initial-corrupt-check", K_IGN_BOOL, 0, 0, NULL},
    {"experimental-corrupt-check-time", K_IGN_VALUE, 0, 0, NULL},
    {"experimental-enable-v2v3", K_IGN_VALUE, 0, 0, NULL},
    {"experimental-backend-bbolt-freelist-type", K_IGN_VALUE, 0, 0, NULL},
    {"experimental-enable-lease-checkpoint", K_IGN_BOOL, 0, 0, NULL},
    {"experimental-compaction-batch-limit", K_IGN_VALUE, 0, 0, NULL},
    {"experimental-warning-apply-duration", K_IGN_VALUE, 0, 0, NULL},
    {"experimental-peer-skip-client-san-verification", K_IGN_BOOL, 0, 0, NULL},
    {"experimental-watch-progress-notify-interval", K_IGN_VALUE, 0, 0, NULL},
    /* pre-v3 flags etcd 3.4 still swallows (its flags.IgnoredFlag) */
    {"cluster-active-size", K_IGN_LEGACY, 0, 0, NULL},
    {"cluster-remove-delay", K_IGN_LEGACY, 0, 0, NULL},
    {"cluster-sync-interval", K_IGN_LEGACY, 0, 0, NULL},
    {"config", K_IGN_LEGACY, 0, 0, NULL},
    {"force", K_IGN_LEGACY, 0, 0, NULL},
    {"max-result-buffer", K_IGN_LEGACY, 0, 0, NULL},
    {"max-retry-attempts", K_IGN_LEGACY, 0, 0, NULL},
    {"peer-heartbeat-interval", K_IGN_LEGACY, 0, 0, NULL},
    {"peer-election-timeout", K_IGN_LEGACY, 0, 0, NULL},
    {"retry-interval", K_IGN_LEGACY, 0, 0, NULL},
    {"snapshot", K_IGN_LEGACY, 0, 0, NULL},
    {"v", K_IGN_LEGACY, 0, 0, NULL},
    {"vv", K_IGN_LEGACY, 0, 0, NULL},
};

#define N_FLAGS (sizeof flag_table / sizeof flag_table[0])

/* etcd's defaults (embed.NewConfig and etcdserver). */
#define DEFAULT_NAME "default"
#define DEFAULT_CLIENT_URL "http://localhost:2379"
#define DEFAULT_PEER_URL "http://localhost:2380"
#define DEFAULT_SNAPSHOT_COUNT 100000u
#define DEFAULT_HEARTBEAT_MS 100u
#define DEFAULT_ELECTION_MS 1000u
#define DEFAULT_MAX_REQUEST_BYTES 1572864u
#define MAX_ELECTION_MS 50000u

/* Where a value came from, for messages: "--name" or "ETCD_NAME". */
typedef struct source {
  const char *prefix; /* "--" for a flag, "" for a variable */
  const char *name;
  int len;
} source;

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err && errlen > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int oom(char *err, size_t errlen) {
  return fail(err, errlen, -ENOMEM, "out of memory while reading the configuration");
}

static char *dup_range(const char *s, size_t n) {
  char *p = malloc(n + 1);
  if (p) {
    memcpy(p, s, n);
    p[n] = '\0';
  }
  return p;
}

static void urls_clear(config_urls *u) {
  for (size_t i = 0; i < CONFIG_MAX_URLS; i++) {
    free(u->url[i]);
    u->url[i] = NULL;
  }
  u->n = 0;
}

/* Index of the flag spelled name[0..len), or -1. */
static int lookup_flag(const char *name, size_t len) {
  for (size_t i = 0; i < N_FLAGS; i++) {
    if (strlen(flag_table[i].name) == len && memcmp(flag_table[i].name, name, len) == 0) {
      return (int)i;
    }
  }
  return -1;
}

/* Index of the flag whose variable (after "ETCD_") is key[0..len), or -1. */
static int lookup_env(const char *key, size_t len) {
  for (size_t i = 0; i < N_FLAGS; i++) {
    const char *n = flag_table[i].name;
    size_t j = 0;
    for (; j < len && n[j]; j++) {
      char want = n[j] == '-' ? '_' : (char)toupper((unsigned char)n[j]);
      if (key[j] != want) {
        break;
      }
    }
    if (j == len && n[j] == '\0') {
      return (int)i;
    }
  }
  return -1;
}

static int takes_no_argument(const flag_def *d) {
  return d->kind == K_BOOL || d->kind == K_IGN_BOOL || d->kind == K_IGN_LEGACY ||
         d->kind == K_NO_BOOL;
}

/* Go's strconv.ParseBool. Returns 0/1, or -1 if s is none of its spellings. */
static int parse_bool(const char *s) {
  static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
  static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcmp(s, yes[i]) == 0) {
      return 1;
    }
    if (strcmp(s, no[i]) == 0) {
      return 0;
    }
  }
  return -1;
}

/* Go's strconv.ParseUint(s, 0, 64) minus digit separators. 0 ok, -EINVAL, -ERANGE. */
static int parse_u64(const char *s, uint64_t *out) {
  if (!isdigit((unsigned char)s[0])) {
    return -EINVAL;
  }
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 0);
  if (*end != '\0') {
    return -EINVAL;
  }
  if (errno == ERANGE) {
    return -ERANGE;
  }
  *out = (uint64_t)v;
  return 0;
}

static int in_choices(const char *choices, const char *v) {
  size_t vlen = strlen(v);
  const char *p = choices;
  for (;;) {
    const char *bar = strchr(p, '|');
    size_t n = bar ? (size_t)(bar - p) : strlen(p);
    if (n == vlen && memcmp(p, v, n) == 0) {
      return 1;
    }
    if (!bar) {
      return 0;
    }
    p = bar + 1;
  }
}

/* "a|b|c" as "a, b or c" in buf. */
static const char *choices_text(const char *choices, char *buf, size_t len) {
  size_t o = 0;
  for (const char *p = choices; *p && o + 5 < len; p++) {
    if (*p != '|') {
      buf[o++] = *p;
    } else if (strchr(p + 1, '|')) {
      buf[o++] = ',';
      buf[o++] = ' ';
    } else {
      memcpy(buf + o, " or ", 4);
      o += 4;
    }
  }
  buf[o] = '\0';
  return buf;
}

/* Why u[0..len) is not a URL etcd would take (scheme://host:port, no path), or NULL. */
static const char *url_problem(const char *u, size_t len) {
  size_t skip;
  if (len >= 7 && memcmp(u, "http://", 7) == 0) {
    skip = 7;
  } else if (len >= 8 && memcmp(u, "https://", 8) == 0) {
    skip = 8;
  } else {
    return "must start with http:// or https://";
  }
  const char *h = u + skip;
  size_t hlen = len - skip;
  for (size_t i = 0; i < hlen; i++) {
    if (h[i] == '/' || h[i] == '?' || h[i] == '#') {
      return "must not contain a path";
    }
    if (isspace((unsigned char)h[i])) {
      return "must not contain spaces";
    }
  }
  const char *at = memchr(h, '@', hlen); /* skip user info, as net/url does */
  if (at) {
    hlen -= (size_t)(at + 1 - h);
    h = at + 1;
  }
  const char *colon; /* the one before the port */
  if (hlen > 0 && h[0] == '[') {
    const char *rb = memchr(h, ']', hlen);
    if (!rb || rb + 1 == h + hlen || rb[1] != ':') {
      return "must have the form host:port";
    }
    colon = rb + 1;
  } else {
    colon = memchr(h, ':', hlen);
    if (!colon || memchr(colon + 1, ':', hlen - (size_t)(colon + 1 - h))) {
      return "must have the form host:port";
    }
  }
  const char *port = colon + 1;
  size_t plen = hlen - (size_t)(port - h);
  if (plen == 0 || plen > 5) {
    return "must have the form host:port";
  }
  unsigned long p = 0;
  for (size_t i = 0; i < plen; i++) {
    if (!isdigit((unsigned char)port[i])) {
      return "has an invalid port";
    }
    p = p * 10 + (unsigned long)(port[i] - '0');
  }
  if (p > 65535) {
    return "has an invalid port";
  }
  return NULL;
}

/* Splits val on commas into out (trimmed, duplicates dropped, each checked). */
static int parse_urls(const char *val, config_urls *out, const source *src, char *err,
                      size_t errlen) {
  const char *p = val;
  for (;;) {
    const char *comma = strchr(p, ',');
    const char *e = comma ? comma : p + strlen(p);
    const char *b = p;
    while (b < e && isspace((unsigned char)*b)) {
      b++;
    }
    while (e > b && isspace((unsigned char)e[-1])) {
      e--;
    }
    size_t n = (size_t)(e - b);
    if (n == 0) {
      return fail(err, errlen, -EINVAL, "invalid value \"%s\" for %s%.*s: empty URL", val,
                  src->prefix, src->len, src->name);
    }
    const char *why = url_problem(b, n);
    if (why) {
      return fail(err, errlen, -EINVAL, "invalid URL \"%.*s\" for %s%.*s: %s", (int)n, b,
                  src->prefix, src->len, src->name, why);
    }
    int is_dup = 0;
    for (size_t i = 0; i < out->n && !is_dup; i++) {
      is_dup = strlen(out->url[i]) == n && memcmp(out->url[i], b, n) == 0;
    }
    if (!is_dup) {
      if (out->n == CONFIG_MAX_URLS) {
        return fail(err, errlen, -EINVAL, "too many URLs for %s%.*s (at most %d)", src->prefix,
                    src->len, src->name, CONFIG_MAX_URLS);
      }
      out->url[out->n] = dup_range(b, n);
      if (!out->url[out->n]) {
        return oom(err, errlen);
      }
      out->n++;
    }
    if (!comma) {
      return 0;
    }
    p = comma + 1;
  }
}

/* Stores val for flag d into cfg; the previous value (if any) is released. */
static int set_value(config *cfg, const flag_def *d, const char *val, const source *src,
                     char *err, size_t errlen) {
  char *field = (char *)cfg + d->off;
  switch ((enum flag_kind)d->kind) {
  case K_ORIGINS:
    for (const char *p = val;;) { /* etcd: each must be "*" or scheme://host:port */
      const char *comma = strchr(p, ',');
      size_t n = comma ? (size_t)(comma - p) : strlen(p);
      const char *why = n == 0 || (n == 1 && *p == '*') ? NULL : url_problem(p, n);
      if (why) {
        return fail(err, errlen, -EINVAL, "invalid URL \"%.*s\" for %s%.*s: %s", (int)n, p,
                    src->prefix, src->len, src->name, why);
      }
      if (!comma) break;
      p = comma + 1;
    }
    /* fall through */
  case K_STR: {
    if (d->choices && !in_choices(d->choices, val)) {
      char list[128];
      return fail(err, errlen, -EINVAL, "invalid value \"%s\" for %s%.*s: must be %s", val,
                  src->prefix, src->len, src->name, choices_text(d->choices, list, sizeof list));
    }
    char *copy = strdup(val);
    if (!copy) {
      return oom(err, errlen);
    }
    char **slot = (char **)(void *)field;
    free(*slot);
    *slot = copy;
    return 0;
  }
  case K_URLS: {
    config_urls tmp;
    memset(&tmp, 0, sizeof tmp);
    int rc = parse_urls(val, &tmp, src, err, errlen);
    if (rc < 0) {
      urls_clear(&tmp);
      return rc;
    }
    config_urls *slot = (config_urls *)(void *)field;
    urls_clear(slot);
    *slot = tmp;
    return 0;
  }
  case K_U64: {
    uint64_t v = 0;
    int rc = parse_u64(val, &v);
    if (rc == -ERANGE) {
      return fail(err, errlen, -EINVAL, "invalid value \"%s\" for %s%.*s: out of range", val,
                  src->prefix, src->len, src->name);
    }
    if (rc < 0) {
      return fail(err, errlen, -EINVAL,
                  "invalid value \"%s\" for %s%.*s: not a non-negative integer", val, src->prefix,
                  src->len, src->name);
    }
    *(uint64_t *)(void *)field = v;
    return 0;
  }
  case K_BOOL:
  case K_IGN_BOOL:
  case K_NO_BOOL: {
    int b = parse_bool(val);
    if (b < 0) {
      return fail(err, errlen, -EINVAL, "invalid boolean value \"%s\" for %s%.*s", val,
                  src->prefix, src->len, src->name);
    }
    if (d->kind == K_NO_BOOL && b) {
      return fail(err, errlen, -EINVAL, "%s%.*s: %s", src->prefix, src->len, src->name,
                  d->choices);
    }
    if (d->kind == K_BOOL) {
      *(int *)(void *)field = b;
    }
    return 0;
  }
  case K_NO_VALUE:
    if (*val) {
      return fail(err, errlen, -EINVAL, "%s%.*s: %s", src->prefix, src->len, src->name,
                  d->choices);
    }
    return 0;
  case K_OFF_ONLY:
    if (strcmp(val, "off") != 0) {
      return fail(err, errlen, -EINVAL, "%s%.*s=%s: %s", src->prefix, src->len, src->name, val,
                  d->choices);
    }
    return 0;
  case K_IGN_VALUE:
  case K_IGN_LEGACY:
    return 0;
  }
  return 0;
}

/* Reads argv. seen[i] is set for each flag given. *stop is set when -h/--help ends parsing. */
static int parse_args(config *cfg, int argc, char **argv, unsigned char *seen, int *stop,
                      char *err, size_t errlen) {
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || a[1] == '\0') {
      break; /* first non-flag argument: Go's flag package stops here */
    }
    const char *name = a + 1;
    if (*name == '-') {
      name++;
      if (*name == '\0') {
        i++; /* "--" ends the flags */
        break;
      }
    }
    if (*name == '-' || *name == '=') {
      return fail(err, errlen, -EINVAL, "bad flag syntax: %s", a);
    }
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    int idx = lookup_flag(name, nlen);
    if (idx < 0) {
      return fail(err, errlen, -EINVAL, "unknown flag: %.*s", (int)(name + nlen - a), a);
    }
    const flag_def *d = &flag_table[idx];
    const char *val;
    if (eq) {
      val = eq + 1;
    } else if (takes_no_argument(d)) {
      val = "true"; /* a bare boolean never consumes the next argument */
    } else if (i + 1 < argc) {
      val = argv[++i];
    } else {
      return fail(err, errlen, -EINVAL, "flag needs an argument: --%s", d->name);
    }
    source src = {"--", d->name, (int)strlen(d->name)};
    int rc = set_value(cfg, d, val, &src, err, errlen);
    if (rc < 0) {
      return rc;
    }
    seen[idx] = 1;
    if ((d->opts & F_HELP) && cfg->show_help) {
      *stop = 1;
      return 0;
    }
  }
  if (i < argc) {
    return fail(err, errlen, -EINVAL, "unexpected argument: \"%s\" (quorumd takes only flags)",
                argv[i]);
  }
  return 0;
}

/* Adds a line to cfg->env_notes. */
static int note(config *cfg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int note(config *cfg, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  size_t old = cfg->env_notes ? strlen(cfg->env_notes) : 0, add = strlen(line);
  char *p = realloc(cfg->env_notes, old + add + 2);
  if (!p) {
    return -ENOMEM;
  }
  memcpy(p + old, line, add);
  p[old + add] = '\n';
  p[old + add + 1] = '\0';
  cfg->env_notes = p;
  return 0;
}

/* Applies ETCD_* variables for flags not given on the command line; the first occurrence of a
 * variable counts (as with getenv) and empty values are skipped. What etcd's pkg/flags logs
 * about them goes to cfg->env_notes: each variable used; a variable that is no flag's (a typo),
 * or empty; and one shadowed by its flag (etcd 3.4 refuses to start then; here the command line
 * wins, as etcd 3.3 did, with the same warning). ETCD_VERSION is left alone: images set it. */
static int apply_env(config *cfg, char **envp, unsigned char *seen, char *err, size_t errlen) {
  for (char **e = envp; e && *e; e++) {
    const char *kv = *e;
    if (strncmp(kv, "ETCD_", 5) != 0) {
      continue;
    }
    const char *eq = strchr(kv, '=');
    if (!eq) {
      continue;
    }
    int klen = (int)(eq - kv);
    int idx = lookup_env(kv + 5, (size_t)(eq - (kv + 5)));
    int rc = 0;
    if (idx >= 0 && (flag_table[idx].opts & F_NOENV)) {
      continue;
    } else if (idx >= 0 && seen[idx] == 1) {
      rc = note(cfg, "warning: recognized environment variable %.*s, but unused: shadowed by "
                     "corresponding flag", klen, kv);
    } else if (idx < 0 || eq[1] == '\0') {
      rc = note(cfg, "warning: unrecognized environment variable %s", kv);
    } else if (!seen[idx]) {
      source src = {"", kv, klen};
      rc = set_value(cfg, &flag_table[idx], eq + 1, &src, err, errlen);
      if (rc < 0) {
        return rc;
      }
      seen[idx] = 2;
      rc = note(cfg, "recognized and used environment variable %s", kv);
    }
    if (rc < 0) {
      return oom(err, errlen);
    }
  }
  return 0;
}

static int default_str(char **slot, const char *value) {
  if (*slot) {
    return 0;
  }
  *slot = strdup(value);
  return *slot ? 0 : -ENOMEM;
}

static int default_urls(config_urls *u, const char *value) {
  if (u->n > 0) {
    return 0;
  }
  u->url[0] = strdup(value);
  if (!u->url[0]) {
    return -ENOMEM;
  }
  u->n = 1;
  return 0;
}

/* Fills everything not given, in etcd's way. */
static int fill_defaults(config *cfg) {
  if (default_str(&cfg->name, DEFAULT_NAME) < 0 ||
      default_urls(&cfg->listen_client, DEFAULT_CLIENT_URL) < 0 ||
      default_urls(&cfg->advertise_client, DEFAULT_CLIENT_URL) < 0 ||
      default_urls(&cfg->listen_peer, DEFAULT_PEER_URL) < 0 ||
      default_urls(&cfg->advertise_peer, DEFAULT_PEER_URL) < 0 ||
      default_str(&cfg->initial_cluster_state, "new") < 0 ||
      default_str(&cfg->initial_cluster_token, "etcd-cluster") < 0 ||
      default_str(&cfg->log_level, "info") < 0 || default_str(&cfg->proxy, "off") < 0 ||
      default_str(&cfg->log_outputs, "default") < 0 ||
      default_str(&cfg->discovery_fallback, "proxy") < 0) {
    return -ENOMEM;
  }
  if (cfg->cors && cfg->cors[0] == '\0') { /* etcd: empty means allow all */
    free(cfg->cors);
    cfg->cors = NULL;
  }
  if (default_str(&cfg->cors, "*") < 0) {
    return -ENOMEM;
  }
  if (cfg->data_dir && cfg->data_dir[0] == '\0') { /* etcd: empty means the default */
    free(cfg->data_dir);
    cfg->data_dir = NULL;
  }
  if (!cfg->data_dir) {
    size_t n = strlen(cfg->name) + sizeof ".quorumd";
    cfg->data_dir = malloc(n);
    if (!cfg->data_dir) {
      return -ENOMEM;
    }
    snprintf(cfg->data_dir, n, "%s.quorumd", cfg->name);
  }
  if (cfg->initial_cluster && cfg->initial_cluster[0] == '\0') {
    free(cfg->initial_cluster);
    cfg->initial_cluster = NULL;
  }
  if (cfg->discovery && cfg->discovery[0] == '\0') {
    free(cfg->discovery);
    cfg->discovery = NULL;
  }
  if (cfg->discovery_srv && cfg->discovery_srv[0] == '\0') {
    free(cfg->discovery_srv);
    cfg->discovery_srv = NULL;
  }
  if (!cfg->initial_cluster && !cfg->discovery && !cfg->discovery_srv) { /* (else: what they find) */
    const char *member = cfg->name[0] ? cfg->name : DEFAULT_NAME;
    size_t n = strlen(member) + 1 + strlen(cfg->advertise_peer.url[0]) + 1;
    cfg->initial_cluster = malloc(n);
    if (!cfg->initial_cluster) {
      return -ENOMEM;
    }
    snprintf(cfg->initial_cluster, n, "%s=%s", member, cfg->advertise_peer.url[0]);
  }
  if (cfg->snapshot_count == 0) { /* etcdserver: 0 means the default */
    cfg->snapshot_count = DEFAULT_SNAPSHOT_COUNT;
  }
  return 0;
}

/* etcd's embed.Config.Validate checks on the timers. */
static int check_timers(const config *cfg, char *err, size_t errlen) {
  if (cfg->heartbeat_ms == 0) {
    return fail(err, errlen, -EINVAL, "--heartbeat-interval must be >0 (set to 0ms)");
  }
  if (cfg->election_ms == 0) {
    return fail(err, errlen, -EINVAL, "--election-timeout must be >0 (set to 0ms)");
  }
  if (cfg->heartbeat_ms > cfg->election_ms / 5) {
    return fail(err, errlen, -EINVAL,
                "--election-timeout[%" PRIu64 "ms] should be at least as 5 times as "
                "--heartbeat-interval[%" PRIu64 "ms]",
                cfg->election_ms, cfg->heartbeat_ms);
  }
  if (cfg->election_ms > MAX_ELECTION_MS) {
    return fail(err, errlen, -EINVAL,
                "--election-timeout[%" PRIu64 "ms] is too long, and should be set less than %ums",
                cfg->election_ms, MAX_ELECTION_MS);
  }
  if (cfg->http_loops > 8) {
    return fail(err, errlen, -EINVAL, "--http-loops must be at most 8 (set to %" PRIu64 ")",
                cfg->http_loops);
  }
  return 0;
}

static int is_https(const char *u) { return strncmp(u, "https://", 8) == 0; }

static int is_set(const char *s) { return s && *s; }

/* etcd's TLS checks: an https:// client URL needs a certificate and key, and so does an
 * https:// peer URL of this member (its peer certificate). */
static int check_tls(const config *cfg, char *err, size_t errlen) {
  for (size_t i = 0; i < cfg->listen_client.n; i++) {
    if (is_https(cfg->listen_client.url[i]) && !cfg->auto_tls &&
        (!is_set(cfg->cert_file) || !is_set(cfg->key_file))) {
      return fail(err, errlen, -EINVAL,
                  "TLS key/cert (--cert-file, --key-file) must be provided for client url %s "
                  "with HTTPS scheme",
                  cfg->listen_client.url[i]);
    }
  }
  const config_urls *peer[] = {&cfg->listen_peer, &cfg->advertise_peer};
  for (size_t k = 0; k < 2; k++) {
    for (size_t i = 0; i < peer[k]->n; i++) {
      if (is_https(peer[k]->url[i]) && !cfg->peer_auto_tls &&
          (!is_set(cfg->peer_cert_file) || !is_set(cfg->peer_key_file))) {
        return fail(err, errlen, -EINVAL,
                    "TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer "
                    "url %s with HTTPS scheme",
                    peer[k]->url[i]);
      }
    }
  }
  for (size_t i = 0; i < cfg->listen_metrics.n; i++) {
    if (is_https(cfg->listen_metrics.url[i])) {
      return fail(err, errlen, -EINVAL,
                  "--listen-metrics-urls %s: only http:// metrics URLs are supported",
                  cfg->listen_metrics.url[i]);
    }
  }
  if (cfg->client_cert_auth && !is_set(cfg->cert_file)) { /* (not with a self-signed one) */
    return fail(err, errlen, -EINVAL,
                "--client-cert-auth needs TLS: --cert-file and --key-file and an https:// "
                "client URL");
  }
  if (cfg->peer_client_cert_auth && !is_set(cfg->peer_cert_file)) {
    return fail(err, errlen, -EINVAL,
                "--peer-client-cert-auth needs TLS: --peer-cert-file and --peer-key-file and "
                "https:// peer URLs");
  }
  if (is_set(cfg->peer_cert_file) != is_set(cfg->peer_key_file)) {
    return fail(err, errlen, -EINVAL, "--peer-cert-file and --peer-key-file go together");
  }
  return 0;
}

/* The values a config holds before anything is read: etcd's defaults that are not strings. */
static void init_values(config *cfg, int argc, char **argv) {
  memset(cfg, 0, sizeof *cfg);
  cfg->argc = argc;
  cfg->argv = argv;
  cfg->snapshot_count = DEFAULT_SNAPSHOT_COUNT;
  cfg->heartbeat_ms = DEFAULT_HEARTBEAT_MS;
  cfg->proxy_failure_wait_ms = 5000; /* etcd's proxy defaults */
  cfg->proxy_refresh_ms = 30000;
  cfg->proxy_dial_timeout_ms = 1000;
  cfg->election_ms = DEFAULT_ELECTION_MS;
  cfg->max_request_bytes = DEFAULT_MAX_REQUEST_BYTES;
  cfg->strict_reconfig_check = 1;
}

/* A value of the wrong YAML type, for a message: `the string "200"`. */
static void yaml_value_text(const config_file_value *v, char *buf, size_t len) {
  static const char *const what[] = {"null", "the string", "the integer", "the number",
                                     "the boolean", "the list"};
  snprintf(buf, len, v->type == CONFIG_YAML_STR ? "%s \"%s\"" : "%s %s", what[v->type],
           v->text ? v->text : "");
}

/* One setting of the configuration file: a key is a flag's name, its value of the flag's type
 * as etcd's YAML reading types it (a quoted number is a string, and etcd refuses it for a
 * number); a string flag takes any single value as written. Null leaves the default. */
static int file_set(void *arg, const config_file_value *v, char *err, size_t errlen) {
  config *cfg = arg;
  int idx = lookup_flag(v->key, strlen(v->key));
  if (idx < 0 || (flag_table[idx].opts & F_NOENV) || strcmp(v->key, "config-file") == 0) {
    /* etcd ignores a key it does not know, silently: a typo gets a warning here */
    return note(cfg, "warning: %s, line %u: unknown key \"%s\", ignored", cfg->config_file,
                v->line, v->key) < 0 ? oom(err, errlen) : 0;
  }
  const flag_def *d = &flag_table[idx];
  if (v->type == CONFIG_YAML_NULL || d->kind == K_IGN_VALUE || d->kind == K_IGN_LEGACY) {
    return 0;
  }
  static const char unquote[] = " (write it without quotes)";
  char where[512], got[200], num[32];
  snprintf(where, sizeof where, "%s in %s, line %u", v->key, cfg->config_file, v->line);
  source src = {"", where, (int)strlen(where)};
  yaml_value_text(v, got, sizeof got);
  const char *text = v->text;
  if (d->kind == K_U64) {
    uint64_t x;
    int rc = config_file_uint(v, &x);
    if (rc < 0) {
      return fail(err, errlen, -EINVAL, "%s: %s, not %s%s", where,
                  rc == -ERANGE ? "a smaller integer is needed"
                                : "a non-negative integer is needed",
                  got, v->type == CONFIG_YAML_STR && !parse_u64(v->text, &x) ? unquote : "");
    }
    snprintf(num, sizeof num, "%" PRIu64, x);
    text = num;
  } else if (takes_no_argument(d)) {
    int b = config_file_bool(v);
    if (b < 0) {
      return fail(err, errlen, -EINVAL, "%s: true or false is needed, not %s%s", where, got,
                  v->type == CONFIG_YAML_STR && parse_bool(v->text) >= 0 ? unquote : "");
    }
    text = b ? "true" : "false";
  } else if (v->type == CONFIG_YAML_LIST && strcmp(v->key, "log-outputs") != 0 &&
             strcmp(v->key, "cipher-suites") != 0) {
    return fail(err, errlen, -EINVAL, "%s: one value is needed, not %s (for several, write them "
                "in one string separated by commas)", where, got);
  }
  return set_value(cfg, d, text, &src, err, errlen);
}

/* etcd 3.4's file mode: the flags (already checked) and the ETCD_* variables are ignored, and
 * the file's settings apply over the defaults. */
static int load_file(config *cfg, const char *path, char *err, size_t errlen) {
  char *keep = strdup(path);
  if (!keep) {
    return oom(err, errlen);
  }
  int argc = cfg->argc;
  char **argv = cfg->argv;
  config_free(cfg);
  init_values(cfg, argc, argv);
  cfg->config_file = keep;
  if (note(cfg, "Loading server configuration from \"%s\". Other configuration command line "
                "flags and environment variables will be ignored if provided.", keep) < 0) {
    return oom(err, errlen);
  }
  return config_file_read(keep, file_set, cfg, err, errlen);
}

static const char *env_value(char **envp, const char *name) {
  size_t n = strlen(name);
  for (char **e = envp; e && *e; e++) {
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=') {
      return *e + n + 1;
    }
  }
  return NULL;
}

int config_parse(config *cfg, int argc, char **argv, char **envp, char *err, size_t errlen) {
  init_values(cfg, argc, argv);
  if (err && errlen > 0) {
    err[0] = '\0';
  }

  unsigned char seen[N_FLAGS];
  memset(seen, 0, sizeof seen);
  int stop = 0;
  int rc = parse_args(cfg, argc, argv, seen, &stop, err, errlen);
  if (rc < 0) {
    return rc;
  }
  /* Like etcd, --help and --version act before the environment is read or anything checked. */
  if (!stop && !cfg->show_version) {
    const char *file = cfg->config_file && cfg->config_file[0]
                           ? cfg->config_file : env_value(envp, "ETCD_CONFIG_FILE");
    if (file && file[0]) {
      char *path = strdup(file); /* (load_file frees cfg->config_file) */
      rc = path ? load_file(cfg, path, err, errlen) : oom(err, errlen);
      free(path);
    } else {
      rc = apply_env(cfg, envp, seen, err, errlen);
    }
    if (rc < 0) {
      return rc;
    }
    if ((cfg->discovery && cfg->discovery[0]) + (cfg->initial_cluster && cfg->initial_cluster[0]) +
            (cfg->discovery_srv && cfg->discovery_srv[0]) > 1) {
      return fail(err, errlen, -EINVAL,
                  "multiple discovery or bootstrap flags are set. Choose one of "
                  "\"initial-cluster\", \"discovery\" or \"discovery-srv\"");
    }
    int proxy = cfg->proxy && strcmp(cfg->proxy, "off"); /* (a proxy advertises nothing) */
    if (cfg->listen_client.n > 0 && cfg->advertise_client.n == 0 && !proxy &&
        !(cfg->config_file && cfg->config_file[0])) { /* (etcd's file mode: default URLs) */
      return fail(err, errlen, -EINVAL,
                  "--advertise-client-urls is required when --listen-client-urls is set "
                  "explicitly");
    }
  }
  if (fill_defaults(cfg) < 0) {
    return oom(err, errlen);
  }
  if (stop || cfg->show_version) {
    return 0;
  }
  rc = check_timers(cfg, err, errlen);
  return rc < 0 ? rc : check_tls(cfg, err, errlen);
}

void config_free(config *cfg) {
  if (!cfg) {
    return;
  }
  free(cfg->env_notes);
  free(cfg->config_file);
  free(cfg->name);
  free(cfg->data_dir);
  free(cfg->wal_dir);
  free(cfg->host_whitelist);
  urls_clear(&cfg->listen_client);
  urls_clear(&cfg->advertise_client);
  urls_clear(&cfg->listen_peer);
  urls_clear(&cfg->listen_metrics);
  urls_clear(&cfg->advertise_peer);
  free(cfg->initial_cluster);
  free(cfg->discovery);
  free(cfg->discovery_proxy);
  free(cfg->discovery_srv);
  free(cfg->discovery_srv_name);
  free(cfg->initial_cluster_state);
  free(cfg->initial_cluster_token);
  free(cfg->cert_file);
  free(cfg->key_file);
  free(cfg->trusted_ca_file);
  free(cfg->peer_cert_file);
  free(cfg->peer_key_file);
  free(cfg->peer_trusted_ca_file);
  free(cfg->client_crl_file);
  free(cfg->client_cert_allowed_hostname);
  free(cfg->peer_crl_file);
  free(cfg->peer_cert_allowed_cn);
  free(cfg->peer_cert_allowed_hostname);
  free(cfg->cipher_suites);
  free(cfg->cors);
  free(cfg->log_level);
  free(cfg->log_outputs);
  free(cfg->proxy);
  free(cfg->discovery_fallback);
  memset(cfg, 0, sizeof *cfg);
}
