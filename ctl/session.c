/* session: building the v2 client from flags and environment, the member sync, and printing
 * failures the way etcdctl v2 does. */
#include "ctl/session.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/flags.h"

int ctl_fail(int code, const char *msg) {
  fflush(stdout);
  fprintf(stderr, "Error:  %s\n", msg);
  return code;
}

int ctl_fail_transport(int code, const proto_v2_errors *e) {
  if (e->kind == PROTO_V2_CONFIG) return ctl_fail_config(e);
  char *text = proto_v2_errors_text(e);
  char *detail = proto_v2_errors_detail(e);
  fflush(stdout);
  fprintf(stderr, "Error:  %s\n", text ? text : "");
  if (e->kind == PROTO_V2_CLUSTER) fprintf(stderr, "%s\n", detail ? detail : "");
  free(text);
  free(detail);
  return code;
}

int ctl_fail_config(const proto_v2_errors *e) {
  fflush(stdout);
  fprintf(stderr, "%s\n", e->n ? e->msg[0] : "bad TLS configuration");
  return CTL_EXIT_BAD_ARGS;
}

static const char *flag_or_env(const ctl_ctx *ctx, const char *flag, const char *env) {
  const char *v = ctl_arg_str(&ctx->global, flag);
  if (!*v) v = getenv(env);
  return v ? v : "";
}

/* Go's text of an errno (its strings are glibc's, lower-cased). */
static void go_errno(char *out, size_t n, int e) {
  snprintf(out, n, "%s", strerror(e));
  if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z')) out[0] += 'a' - 'A';
}

/* ioutil.ReadFile: the whole file, NUL-terminated, or NULL with Go's *PathError text in err. */
static char *read_file(const char *path, char *err, size_t errlen) {
  char e[128];
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    go_errno(e, sizeof e, errno);
    snprintf(err, errlen, "open %s: %s", path, e);
    return NULL;
  }
  proto_v2_buf b = {0};
  proto_v2_buf_add(&b, "", 0);
  char chunk[4096];
  for (;;) {
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      go_errno(e, sizeof e, errno);
      snprintf(err, errlen, "read %s: %s", path, e);
      close(fd);
      proto_v2_buf_free(&b);
      return NULL;
    }
    if (r == 0) break;
    proto_v2_buf_add(&b, chunk, (size_t)r);
  }
  close(fd);
  if (b.oom) {
    snprintf(err, errlen, "out of memory");
    proto_v2_buf_free(&b);
    return NULL;
  }
  return b.s;
}

/* The types of the PEM blocks in s ("-----BEGIN T-----" ... "-----END T-----"), as Go's
 * pem.Decode finds them, joined by '\n' into types (truncated when too long). Returns the
 * count. */
static size_t pem_types(const char *s, char *types, size_t n) {
  size_t count = 0, k = 0;
  types[0] = 0;
  while ((s = strstr(s, "-----BEGIN ")) != NULL) {
    const char *t = s + 11;
    const char *te = strstr(t, "-----");
    const char *nl = strchr(t, '\n');
    if (!te || (nl && nl < te)) {
      s = t;
      continue;
    }
    char end[128];
    snprintf(end, sizeof end, "-----END %.*s-----", (int)(te - t), t);
    const char *e = strstr(te + 5, end);
    if (!e) {
      s = t;
      continue;
    }
    if (k + (size_t)(te - t) + 2 < n) {
      k += (size_t)snprintf(types + k, n - k, "%s%.*s", count ? "\n" : "", (int)(te - t), t);
    }
    count++;
    s = e + strlen(end);
  }
  return count;
}

static int has_suffix(const char *s, size_t len, const char *suf) {
  size_t sl = strlen(suf);
  return len >= sl && strncmp(s + len - sl, suf, sl) == 0;
}

/* Go's %v of the types list ("[A B]"). */
static void types_list(const char *types, char *out, size_t n) {
  snprintf(out, n, "[%s]", types);
  for (char *p = out; *p; p++)
    if (*p == '\n') *p = ' ';
}

/* etcd's TLSInfo.ClientConfig checks of the files, before any request: the certificate and key
 * come together, can be read and hold the right PEM blocks (tls.X509KeyPair's messages), and
 * so can the CA file. Whether the key belongs to the certificate only shows when libcurl loads
 * them for an https:// endpoint. Returns 0, or -1 with Go's message in err. */
static int check_tls_files(const char *cert, const char *key, const char *ca, char *err,
                           size_t errlen) {
  char types[512], list[600];
  if (*cert || *key) {
    if (!*cert || !*key) {
      snprintf(err, errlen, "KeyFile and CertFile must both be present[key: %s, cert: %s]", key,
               cert);
      return -1;
    }
    char *cpem = read_file(cert, err, errlen);
    if (!cpem) return -1;
    char *kpem = read_file(key, err, errlen);
    if (!kpem) {
      free(cpem);
      return -1;
    }
    int rc = -1;
    size_t nc = pem_types(cpem, types, sizeof types), ncert = 0;
    char skipped[512] = "";
    size_t ns = 0, sk = 0;
    for (char *t = types; nc && *t;) {
      size_t len = strcspn(t, "\n");
      if (len == 11 && strncmp(t, "CERTIFICATE", 11) == 0) {
        ncert++;
      } else {
        sk += (size_t)snprintf(skipped + sk, sizeof skipped - sk, "%s%.*s", ns ? "\n" : "",
                               (int)len, t);
        if (sk >= sizeof skipped) sk = sizeof skipped - 1;
        ns++;
      }
      t += len + (t[len] == '\n');
    }
    if (ncert == 0) {
      if (ns == 0) {
        snprintf(err, errlen, "tls: failed to find any PEM data in certificate input");
      } else if (ns == 1 && has_suffix(skipped, strlen(skipped), "PRIVATE KEY")) {
        snprintf(err, errlen,
                 "tls: failed to find certificate PEM data in certificate input, but did find a "
                 "private key; PEM inputs may have been switched");
      } else {
        types_list(skipped, list, sizeof list);
        snprintf(err, errlen,
                 "tls: failed to find \"CERTIFICATE\" PEM block in certificate input after "
                 "skipping PEM blocks of the following types: %s",
                 list);
      }
      goto done;
    }
    size_t nk = pem_types(kpem, types, sizeof types);
    int found = 0;
    ns = 0;
    sk = 0;
    skipped[0] = 0;
    for (char *t = types; nk && *t && !found;) {
      size_t len = strcspn(t, "\n");
      if ((len == 11 && strncmp(t, "PRIVATE KEY", 11) == 0) || has_suffix(t, len, " PRIVATE KEY")) {
        found = 1;
      } else {
        sk += (size_t)snprintf(skipped + sk, sizeof skipped - sk, "%s%.*s", ns ? "\n" : "",
                               (int)len, t);
        if (sk >= sizeof skipped) sk = sizeof skipped - 1;
        ns++;
      }
      t += len + (t[len] == '\n');
    }
    if (!found) {
      if (ns == 0) {
        snprintf(err, errlen, "tls: failed to find any PEM data in key input");
      } else if (ns == 1 && strcmp(skipped, "CERTIFICATE") == 0) {
        snprintf(err, errlen, "tls: found a certificate rather than a key in the PEM for the "
                              "private key");
      } else {
        types_list(skipped, list, sizeof list);
        snprintf(err, errlen,
                 "tls: failed to find PEM block with type ending in \"PRIVATE KEY\" in key input "
                 "after skipping PEM blocks of the following types: %s",
                 list);
      }
      goto done;
    }
    rc = 0;
  done:
    free(cpem);
    free(kpem);
    if (rc != 0) return rc;
  }
  if (*ca) {
    char *pem = read_file(ca, err, errlen);
    if (!pem) return -1;
    size_t nb = pem_types(pem, types, sizeof types);
    free(pem);
    /* NewCertPool parses every block as a certificate; a key (PKCS#1, #8 or EC: a SEQUENCE
     * that starts with an INTEGER) fails x509.ParseCertificate this way. */
    for (char *t = types; nb && *t;) {
      size_t len = strcspn(t, "\n");
      if (!(len == 11 && strncmp(t, "CERTIFICATE", 11) == 0)) {
        snprintf(err, errlen, "x509: malformed tbs certificate");
        return -1;
      }
      t += len + (t[len] == '\n');
    }
  }
  return 0;
}

/* speakeasy.Ask, which etcdctl uses for --username user (no ":password"): the prompt on stdout,
 * `/bin/stty -echo` run on the same standard streams (so its complaints, when standard input
 * is not a terminal, show as they do for etcdctl), one line read from standard input a byte at
 * a time, `/bin/stty echo`, and a newline on stdout. NULL (err set) when stty cannot start. */
extern char **environ;

static int run_stty(const char *arg) {
  char *argv[] = {(char *)"stty", (char *)arg, NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/stty", NULL, NULL, argv, environ);
  if (rc != 0) return rc;
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
  }
  return 0;
}

static char *ask_password(const char *prompt, char *err, size_t errlen) {
  fputs(prompt, stdout);
  fflush(stdout);
  int rc = run_stty("-echo");
  if (rc != 0) {
    char e[128];
    go_errno(e, sizeof e, rc);
    snprintf(err, errlen,
             "failed turning off console echo for password entry:\n\tfork/exec /bin/stty: %s", e);
    fputs("\n", stdout);
    fflush(stdout);
    return NULL;
  }
  proto_v2_buf b = {0};
  proto_v2_buf_add(&b, "", 0);
  for (;;) {
    char ch;
    ssize_t r = read(STDIN_FILENO, &ch, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || ch == '\n') break;
    proto_v2_buf_add(&b, &ch, 1);
  }
  run_stty("echo");
  fputs("\n", stdout);
  fflush(stdout);
  if (b.oom) {
    proto_v2_buf_free(&b);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  /* strings.TrimSpace */
  char *p = b.s;
  size_t len = strlen(p);
  while (len && strchr(" \t\r\n\v\f", p[len - 1])) p[--len] = 0;
  size_t lead = strspn(p, " \t\r\n\v\f");
  memmove(p, p + lead, len - lead + 1);
  return p;
}

char *ctl_ask_password(const char *prompt, char *err, size_t errlen) {
  return ask_password(prompt, err, errlen);
}

/* --debug's lines about the client's endpoints, as etcdctl prints them. */
static void debug_endpoints(ctl_ctx *ctx, const char *before, const char *sep, const char *after) {
  fputs(before, stderr);
  for (size_t i = 0; i < proto_v2_client_n_endpoints(ctx->client); i++)
    fprintf(stderr, "%s%s", i ? sep : "", proto_v2_client_endpoint(ctx->client, i));
  fputs(after, stderr);
}

int ctl_session_open(ctl_ctx *ctx, int sync) {
  const char *eps = ctl_arg_str(&ctx->global, "endpoints");
  if (!*eps) eps = getenv("ETCDCTL_ENDPOINTS") ? getenv("ETCDCTL_ENDPOINTS") : "";
  if (!*eps) eps = ctl_arg_str(&ctx->global, "endpoint");
  if (!*eps) eps = getenv("ETCDCTL_ENDPOINT") ? getenv("ETCDCTL_ENDPOINT") : "";
  if (!*eps) eps = ctl_arg_str(&ctx->global, "peers");
  if (!*eps) eps = getenv("ETCDCTL_PEERS") ? getenv("ETCDCTL_PEERS") : "";
  if (!*eps) eps = "http://127.0.0.1:2379,http://127.0.0.1:4001";

  char *copy = strdup(eps);
  size_t n = 1;
  for (const char *p = eps; *p; p++) n += *p == ',';
  const char **list = calloc(n, sizeof *list);
  if (!copy || !list) {
    free(copy);
    free(list);
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  size_t k = 0;
  /* strings.Split keeps empty fields; so do we. */
  char *p = copy;
  for (;;) {
    char *comma = strchr(p, ',');
    if (comma) *comma = 0;
    list[k++] = p;
    if (!comma) break;
    p = comma + 1;
  }

  proto_v2_client_opts o = {0};
  o.endpoints = list;
  o.n_endpoints = k;
  o.ca_file = flag_or_env(ctx, "ca-file", "ETCDCTL_CA_FILE");
  o.cert_file = flag_or_env(ctx, "cert-file", "ETCDCTL_CERT_FILE");
  o.key_file = flag_or_env(ctx, "key-file", "ETCDCTL_KEY_FILE");
  char tls_err[1024];
  if (check_tls_files(o.cert_file, o.key_file, o.ca_file, tls_err, sizeof tls_err) != 0) {
    free(copy);
    free(list);
    /* cluster-health builds its transport itself and reports with handleError (exit 4) */
    if (!sync && ctx->health) return ctl_fail(CTL_EXIT_SERVER_ERROR, tls_err);
    fflush(stdout);
    fprintf(stderr, "%s\n", tls_err);
    return CTL_EXIT_BAD_ARGS;
  }
  o.request_timeout_ms = ctl_arg(&ctx->global, "timeout")->ms;
  o.total_timeout_ms = ctl_arg(&ctx->global, "total-timeout")->ms;
  o.debug = ctl_arg_bool(&ctx->global, "debug");

  const char *user = flag_or_env(ctx, "username", "ETCDCTL_USERNAME");
  char *uname = NULL;
  if (*user) {
    const char *colon = strchr(user, ':');
    if (colon) {
      uname = strndup(user, (size_t)(colon - user));
      ctx->password_buf = strdup(colon + 1);
    } else {
      uname = strdup(user);
      char perr[256];
      ctx->password_buf = ask_password("Password: ", perr, sizeof perr);
      if (!ctx->password_buf) {
        fprintf(stderr, "%s\n", perr);
        free(uname);
        free(copy);
        free(list);
        return 1;
      }
    }
    o.username = uname;
    o.password = ctx->password_buf;
  }
  ctx->client = proto_v2_client_new(&o);
  free(uname);
  free(copy);
  free(list);
  if (!ctx->client) {
    fprintf(stderr, "cannot start the HTTP client\n");
    return 1;
  }
  if (o.debug && !sync) debug_endpoints(ctx, "Cluster-Endpoints: ", ", ", "\n");
  if (!sync) return 0;

  proto_v2_errors err;
  if (o.debug) debug_endpoints(ctx, "start to sync cluster using endpoints(", ",", ")\n");
  proto_v2_client_start_clock(ctx->client);
  int rc = proto_v2_sync(ctx->client, &err);
  if (rc == 1) {
    fprintf(stderr, "etcd cluster has no published client endpoints.\n");
    fprintf(stderr, "Try '--no-sync' if you want to access non-published client endpoints(%s).\n",
            eps);
    return ctl_fail(CTL_EXIT_SERVER_ERROR, "client: no endpoints available");
  }
  if (rc == -1 && err.kind == PROTO_V2_CONFIG) return ctl_fail_config(&err);
  if (rc == -1 && (err.kind == PROTO_V2_DEADLINE || (err.kind == PROTO_V2_CLUSTER && err.all_connection)))
    return ctl_fail_transport(CTL_EXIT_BAD_CONNECTION, &err);
  if (o.debug) {
    debug_endpoints(ctx, "got endpoints(", ",", ") after sync\n");
    debug_endpoints(ctx, "Cluster-Endpoints: ", ", ", "\n");
  }
  return 0;
}

void ctl_session_close(ctl_ctx *ctx) {
  proto_v2_client_free(ctx->client);
  ctx->client = NULL;
  free(ctx->password_buf);
  ctx->password_buf = NULL;
}

int ctl_keys(ctl_ctx *ctx, const char *method, const char *key, const char *query,
             const char *form, int wait, proto_v2_event *ev) {
  return ctl_keys_ex(ctx, method, key, query, form, wait, ev, NULL);
}

int ctl_keys_ex(ctl_ctx *ctx, const char *method, const char *key, const char *query,
                const char *form, int wait, proto_v2_event *ev, proto_v2_error *v2err) {
  proto_v2_buf path = {0};
  proto_v2_keys_path(&path, key);
  if (query && *query) {
    proto_v2_buf_add(&path, "?", 1);
    proto_v2_buf_adds(&path, query);
  }
  if (path.oom) {
    proto_v2_buf_free(&path);
    return ctl_fail(CTL_EXIT_SERVER_ERROR, "out of memory");
  }
  proto_v2_resp r;
  proto_v2_errors err;
  int code = 0;
  for (;;) {
    if (!wait) proto_v2_client_start_clock(ctx->client);
    if (proto_v2_do(ctx->client, method, path.s,
                    form ? "application/x-www-form-urlencoded" : NULL, form, wait, &r, &err) != 0) {
      code = ctl_fail_transport(CTL_EXIT_SERVER_ERROR, &err);
      break;
    }
    if (r.status == 200 || r.status == 201) {
      if (r.body_len == 0 && wait) { /* etcd's client retries an empty watch answer */
        proto_v2_resp_free(&r);
        continue;
      }
      if (proto_v2_parse_event(r.body, ev) != 0) {
        code = ctl_fail(CTL_EXIT_SERVER_ERROR,
                        "client: response is invalid json. The endpoint is probably not valid etcd "
                        "cluster endpoint.");
      } else {
        ev->index = r.has_index ? r.etcd_index : 0;
      }
      break;
    }
    proto_v2_error e;
    if (v2err && proto_v2_parse_error(r.body, v2err) == 0) {
      code = -1;
    } else if (proto_v2_parse_error(r.body, &e) != 0) {
      code = ctl_fail(CTL_EXIT_SERVER_ERROR,
                      "client: response is invalid json. The endpoint is probably not valid etcd "
                      "cluster endpoint.");
    } else {
      char *msg = NULL;
      size_t len = strlen(e.message) + strlen(e.cause) + 64;
      msg = malloc(len);
      if (msg) snprintf(msg, len, "%d: %s (%s) [%llu]", e.code, e.message, e.cause,
                        (unsigned long long)e.index);
      code = ctl_fail(CTL_EXIT_SERVER_ERROR, msg ? msg : "out of memory");
      free(msg);
      proto_v2_error_free(&e);
    }
    break;
  }
  proto_v2_resp_free(&r);
  proto_v2_buf_free(&path);
  return code;
}
