/* session: building the v2 client from flags and environment, the member sync, and printing
 * failures the way etcdctl v2 does. */
#include "ctl/session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl/flags.h"

int ctl_fail(int code, const char *msg) {
  fflush(stdout);
  fprintf(stderr, "Error:  %s\n", msg);
  return code;
}

int ctl_fail_transport(int code, const proto_v2_errors *e) {
  char *text = proto_v2_errors_text(e);
  char *detail = proto_v2_errors_detail(e);
  fflush(stdout);
  fprintf(stderr, "Error:  %s\n", text ? text : "");
  if (e->kind == PROTO_V2_CLUSTER) fprintf(stderr, "%s\n", detail ? detail : "");
  free(text);
  free(detail);
  return code;
}

static const char *flag_or_env(const ctl_ctx *ctx, const char *flag, const char *env) {
  const char *v = ctl_arg_str(&ctx->global, flag);
  if (!*v) v = getenv(env);
  return v ? v : "";
}

/* The password prompt of --username user (no ":password"), on the terminal. */
static char *ask_password(const char *prompt) {
  FILE *tty = fopen("/dev/tty", "r+");
  if (!tty) return NULL;
  struct termios old, noecho;
  int fd = fileno(tty);
  int restore = tcgetattr(fd, &old) == 0;
  if (restore) {
    noecho = old;
    noecho.c_lflag &= ~(tcflag_t)ECHO;
    tcsetattr(fd, TCSAFLUSH, &noecho);
  }
  fputs(prompt, tty);
  fflush(tty);
  char buf[1024];
  char *r = fgets(buf, sizeof buf, tty);
  if (restore) tcsetattr(fd, TCSAFLUSH, &old);
  fputs("\n", tty);
  fclose(tty);
  if (!r) return NULL;
  buf[strcspn(buf, "\r\n")] = 0;
  return strdup(buf);
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
      ctx->password_buf = ask_password("Password: ");
      if (!ctx->password_buf) {
        fprintf(stderr, "open /dev/tty: no such device or address\n");
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
  if (o.debug && !sync)
    fprintf(stderr, "Cluster-Endpoints: %s\n", proto_v2_client_endpoint(ctx->client, 0));
  if (!sync) return 0;

  proto_v2_errors err;
  proto_v2_client_start_clock(ctx->client);
  int rc = proto_v2_sync(ctx->client, &err);
  if (rc == 1) {
    fprintf(stderr, "etcd cluster has no published client endpoints.\n");
    fprintf(stderr, "Try '--no-sync' if you want to access non-published client endpoints(%s).\n",
            eps);
    return ctl_fail(CTL_EXIT_SERVER_ERROR, "client: no endpoints available");
  }
  if (rc == -1 && (err.kind == PROTO_V2_DEADLINE || (err.kind == PROTO_V2_CLUSTER && err.all_connection)))
    return ctl_fail_transport(CTL_EXIT_BAD_CONNECTION, &err);
  if (o.debug) {
    fprintf(stderr, "Cluster-Endpoints: ");
    for (size_t i = 0; i < proto_v2_client_n_endpoints(ctx->client); i++)
      fprintf(stderr, "%s%s", i ? ", " : "", proto_v2_client_endpoint(ctx->client, i));
    fprintf(stderr, "\n");
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
