/* cmd_member: the membership commands and cluster-health, printing what etcdctl v2 prints
 * (member lines, the ETCD_* lines after an add, health per member and for the cluster). */
#include "ctl/cmd_member.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl/output.h"
#include "ctl/session.h"

/* Prints err.Error() on its own line, as `fmt.Fprintln(os.Stderr, err.Error())`. */
static int fail_plain(const char *prefix, const proto_v2_errors *e) {
  if (e->kind == PROTO_V2_CONFIG) return ctl_fail_config(e);
  char *text = proto_v2_errors_text(e);
  fflush(stdout);
  fprintf(stderr, "%s%s\n", prefix, text ? text : "");
  free(text);
  return 1;
}

static int fail_msg(const char *prefix, const char *msg) {
  fflush(stdout);
  fprintf(stderr, "%s%s\n", prefix, msg);
  return 1;
}

/* GET /v2/members (with the total timeout). 0, or 1 after printing the error with prefix. */
static int list_members(ctl_ctx *ctx, proto_v2_members *ms, const char *prefix) {
  proto_v2_errors err;
  long status = 0;
  proto_v2_client_start_clock(ctx->client);
  int rc = proto_v2_list_members(ctx->client, ms, &err, &status);
  if (rc == -1) return fail_plain(prefix, &err);
  if (rc == -2) {
    char msg[64];
    if (status != 200) snprintf(msg, sizeof msg, "unexpected status code %ld", status);
    else snprintf(msg, sizeof msg, "invalid character in the member list");
    return fail_msg(prefix, msg);
  }
  return 0;
}

static void join(FILE *f, char **v, size_t n, const char *sep) {
  for (size_t i = 0; i < n; i++) fprintf(f, "%s%s", i ? sep : "", v[i]);
}

int ctl_cmd_member_list(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc != 0) return fail_msg("", "No arguments accepted");
  proto_v2_members ms;
  if (list_members(ctx, &ms, "") != 0) return 1;
  proto_v2_resp r;
  proto_v2_errors err;
  proto_v2_member leader = {0};
  int rc = 0;
  if (proto_v2_do(ctx->client, "GET", "/v2/members/leader", NULL, NULL, 0, &r, &err) != 0) {
    rc = fail_plain("Failed to get leader:  ", &err);
  } else {
    if (r.status != 200) {
      char msg[64];
      snprintf(msg, sizeof msg, "unexpected status code %ld", r.status);
      rc = fail_msg("Failed to get leader:  ", msg);
    } else if (proto_v2_parse_member(r.body, &leader) != 0) {
      rc = fail_msg("Failed to get leader:  ", "invalid JSON");
    }
    proto_v2_resp_free(&r);
  }
  for (size_t i = 0; rc == 0 && i < ms.n; i++) {
    const proto_v2_member *m = &ms.m[i];
    if (!*m->name) {
      printf("%s[unstarted]: peerURLs=", m->id);
      join(stdout, m->peer_urls, m->n_peer, ",");
      printf("\n");
    } else {
      printf("%s: name=%s peerURLs=", m->id, m->name);
      join(stdout, m->peer_urls, m->n_peer, ",");
      printf(" clientURLs=");
      join(stdout, m->client_urls, m->n_client, ",");
      printf(" isLeader=%s\n", strcmp(m->id, leader.id ? leader.id : "") == 0 ? "true" : "false");
    }
  }
  proto_v2_member_free(&leader);
  proto_v2_members_free(&ms);
  return rc;
}

/* Go's %q of a plain string. */
static void print_quoted(const char *s) {
  putchar('"');
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') printf("\\%c", *s);
    else putchar(*s);
  }
  putchar('"');
}

/* types.NewURLs' check of one peer URL: NULL when fine, else Go's message (static). */
static const char *check_peer_url(const char *u, char *buf, size_t n) {
  const char *colon = strstr(u, "://");
  if (!colon) {
    snprintf(buf, n, "URL scheme must be http, https, unix, or unixs: %s", u);
    return buf;
  }
  size_t sl = (size_t)(colon - u);
  if (!((sl == 4 && !strncmp(u, "http", 4)) || (sl == 5 && !strncmp(u, "https", 5)) ||
        (sl == 4 && !strncmp(u, "unix", 4)) || (sl == 5 && !strncmp(u, "unixs", 5)))) {
    snprintf(buf, n, "URL scheme must be http, https, unix, or unixs: %s", u);
    return buf;
  }
  const char *host = colon + 3;
  const char *end = host + strcspn(host, "/?#");
  if (!memchr(host, ':', (size_t)(end - host))) {
    snprintf(buf, n, "URL address does not have the form \"host:port\": %s", u);
    return buf;
  }
  if (*end && strcmp(end, "/") != 0 && *end == '/') {
    snprintf(buf, n, "URL must not contain a path: %s", u);
    return buf;
  }
  return NULL;
}

/* {"peerURLs":[...]} from a comma-separated list. */
static char *peer_urls_json(char **urls, size_t n) {
  size_t len = 32;
  for (size_t i = 0; i < n; i++) len += strlen(urls[i]) * 6 + 4;
  char *s = malloc(len);
  if (!s) return NULL;
  FILE *f = fmemopen(s, len, "w");
  if (!f) {
    free(s);
    return NULL;
  }
  fputs("{\"peerURLs\":[", f);
  for (size_t i = 0; i < n; i++) {
    if (i) fputc(',', f);
    ctl_json_string(f, urls[i]);
  }
  fputs("]}", f);
  fputc(0, f);
  fclose(f);
  return s;
}

/* The error of a members API answer that is not one of want (0-terminated). NULL when fine. */
static int members_status_error(const proto_v2_resp *r, const long *want, const long *json_err,
                                char *buf, size_t n) {
  for (const long *w = want; *w; w++)
    if (r->status == *w) return 0;
  for (const long *w = json_err; w && *w; w++)
    if (r->status == *w) {
      proto_v2_error e;
      /* membersError: {"message": "..."} */
      if (proto_v2_parse_error(r->body, &e) == 0) {
        snprintf(buf, n, "%s", e.message);
        proto_v2_error_free(&e);
      } else {
        snprintf(buf, n, "invalid character in the response");
      }
      return 1;
    }
  snprintf(buf, n, "unexpected status code %ld", r->status);
  return 1;
}

int ctl_cmd_member_add(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc != 2) return fail_msg("", "Provide a name and a single member peerURL");
  const char *name = a->argv[0];
  char msg[512];
  const char *bad = check_peer_url(a->argv[1], msg, sizeof msg);
  if (bad) return fail_msg("", bad);
  char *body = peer_urls_json(&a->argv[1], 1);
  if (!body) return fail_msg("", "out of memory");
  proto_v2_resp r;
  proto_v2_errors err;
  proto_v2_client_start_clock(ctx->client);
  int rc = proto_v2_do(ctx->client, "POST", "/v2/members", "application/json", body, 0, &r, &err);
  free(body);
  if (rc != 0) return fail_plain("", &err);
  static const long want[] = {201, 0}, json_err[] = {409, 0};
  proto_v2_member m = {0};
  if (members_status_error(&r, want, json_err, msg, sizeof msg)) {
    proto_v2_resp_free(&r);
    return fail_msg("", msg);
  }
  rc = proto_v2_parse_member(r.body, &m);
  proto_v2_resp_free(&r);
  if (rc != 0) return fail_msg("", "invalid JSON in the answer");
  printf("Added member named %s with ID %s to cluster\n", name, m.id);
  proto_v2_members ms;
  if (list_members(ctx, &ms, "") != 0) {
    proto_v2_member_free(&m);
    return 1;
  }
  printf("\nETCD_NAME=");
  print_quoted(name);
  printf("\nETCD_INITIAL_CLUSTER=\"");
  int first = 1;
  for (size_t i = 0; i < ms.n; i++) {
    const char *n = strcmp(ms.m[i].id, m.id) == 0 ? name : ms.m[i].name;
    for (size_t j = 0; j < ms.m[i].n_peer; j++) {
      printf("%s%s=%s", first ? "" : ",", n, ms.m[i].peer_urls[j]);
      first = 0;
    }
  }
  printf("\"\nETCD_INITIAL_CLUSTER_STATE=\"existing\"\n");
  proto_v2_members_free(&ms);
  proto_v2_member_free(&m);
  return 0;
}

int ctl_cmd_member_remove(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc != 1) return fail_msg("", "Provide a single member ID");
  const char *id = a->argv[0];
  proto_v2_members ms;
  if (list_members(ctx, &ms, "Error while verifying ID against known members: ") != 0) return 1;
  int found = 0;
  for (size_t i = 0; i < ms.n; i++) {
    if (strcmp(ms.m[i].id, id) == 0) found = 1;
    if (strcmp(ms.m[i].name, id) == 0) {
      fprintf(stderr,
              "Found a member named %s; if this is correct, please use its ID, eg:\n\tetcdctl "
              "member remove %s\n",
              ms.m[i].name, ms.m[i].id);
      fprintf(stderr,
              "For more details, read the documentation at "
              "https://github.com/etcd-io/etcd/blob/master/Documentation/"
              "runtime-configuration.md#remove-a-member\n\n");
    }
  }
  proto_v2_members_free(&ms);
  if (!found) {
    fprintf(stderr, "Couldn't find a member in the cluster with an ID of %s.\n", id);
    return 1;
  }
  proto_v2_buf path = {0};
  proto_v2_buf_adds(&path, "/v2/members/");
  proto_v2_buf_adds(&path, id);
  proto_v2_resp r;
  proto_v2_errors err;
  int rc = proto_v2_do(ctx->client, "DELETE", path.s ? path.s : "/v2/members/", NULL, NULL, 0, &r, &err);
  proto_v2_buf_free(&path);
  if (rc != 0 && err.kind == PROTO_V2_CONFIG) return ctl_fail_config(&err);
  if (rc != 0) {
    char *text = proto_v2_errors_text(&err);
    fprintf(stderr, "Received an error trying to remove member %s: %s", id, text ? text : "");
    free(text);
    return 1;
  }
  static const long want[] = {204, 410, 0};
  char msg[256];
  rc = members_status_error(&r, want, NULL, msg, sizeof msg);
  proto_v2_resp_free(&r);
  if (rc) {
    fprintf(stderr, "Received an error trying to remove member %s: %s", id, msg);
    return 1;
  }
  printf("Removed member %s from cluster\n", id);
  return 0;
}

int ctl_cmd_member_update(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc != 2)
    return fail_msg("", "Provide an ID and a list of comma separated peerURL (0xabcd "
                        "http://example.com,http://example1.com)");
  const char *id = a->argv[0];
  char *list = strdup(a->argv[1]);
  if (!list) return fail_msg("", "out of memory");
  size_t n = 1;
  for (char *p = list; *p; p++) n += *p == ',';
  char **urls = calloc(n, sizeof *urls);
  if (!urls) {
    free(list);
    return fail_msg("", "out of memory");
  }
  size_t k = 0;
  for (char *p = list;;) {
    char *c = strchr(p, ',');
    if (c) *c = 0;
    urls[k++] = p;
    if (!c) break;
    p = c + 1;
  }
  char msg[512];
  const char *bad = NULL;
  for (size_t i = 0; !bad && i < k; i++) bad = check_peer_url(urls[i], msg, sizeof msg);
  char *body = bad ? NULL : peer_urls_json(urls, k);
  free(urls);
  free(list);
  if (bad) return fail_msg("", bad);
  if (!body) return fail_msg("", "out of memory");
  proto_v2_buf path = {0};
  proto_v2_buf_adds(&path, "/v2/members/");
  proto_v2_buf_adds(&path, id);
  proto_v2_resp r;
  proto_v2_errors err;
  proto_v2_client_start_clock(ctx->client);
  int rc = proto_v2_do(ctx->client, "PUT", path.s ? path.s : "/v2/members/", "application/json",
                       body, 0, &r, &err);
  free(body);
  proto_v2_buf_free(&path);
  if (rc != 0) return fail_plain("", &err);
  static const long want[] = {204, 0}, json_err[] = {404, 409, 0};
  rc = members_status_error(&r, want, json_err, msg, sizeof msg);
  proto_v2_resp_free(&r);
  if (rc) return fail_msg("", msg);
  printf("Updated member with ID %s in cluster\n", id);
  return 0;
}

/* The health of one member: 1 healthy, 0 unhealthy, -1 unreachable (lines printed). */
static int member_health(ctl_ctx *ctx, const proto_v2_member *m) {
  for (size_t j = 0; j < m->n_client; j++) {
    const char *url = m->client_urls[j];
    size_t n = strlen(url) + 8;
    char *h = malloc(n);
    if (!h) return -1;
    snprintf(h, n, "%s/health", url);
    proto_v2_resp r;
    proto_v2_errors err;
    if (proto_v2_get_url(ctx->client, h, &r, &err) != 0) {
      printf("failed to check the health of member %s on %s: Get \"%s\": %s\n", m->id, url, h,
             err.n ? err.msg[0] : "context deadline exceeded");
      free(h);
      continue;
    }
    free(h);
    /* {"health":"true"} (etcd 3.4) or {"health":true} */
    const char *b = r.body;
    const char *k = strstr(b, "\"health\"");
    int ok = -1;
    if (k) {
      const char *v = k + 8;
      while (*v == ' ' || *v == ':') v++;
      if (strncmp(v, "\"true\"", 6) == 0 || strncmp(v, "true", 4) == 0) ok = 1;
      else ok = 0;
    }
    proto_v2_resp_free(&r);
    if (ok < 0) {
      printf("failed to check the health of member %s on %s: invalid character in the answer\n",
             m->id, url);
      continue;
    }
    if (ok) printf("member %s is healthy: got healthy result from %s\n", m->id, url);
    else printf("member %s is unhealthy: got unhealthy result from %s\n", m->id, url);
    return ok;
  }
  printf("member %s is unreachable: [", m->id);
  join(stdout, m->client_urls, m->n_client, " ");
  printf("] are all unreachable\n");
  return -1;
}

static void exit_on_interrupt(int sig) {
  (void)sig;
  _exit(0);
}

int ctl_cmd_cluster_health(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int forever = ctl_arg_bool(a, "forever");
  if (forever) signal(SIGINT, exit_on_interrupt); /* etcdctl: Ctrl+C ends it with status 0 */
  proto_v2_members ms;
  proto_v2_errors err;
  long status = 0;
  int rc = proto_v2_list_members(ctx->client, &ms, &err, &status);
  if (rc == -1 && err.kind == PROTO_V2_CONFIG) /* getTransport's failure in etcdctl */
    return ctl_fail(CTL_EXIT_SERVER_ERROR, err.n ? err.msg[0] : "bad TLS configuration");
  if (rc != 0) {
    printf("cluster may be unhealthy: failed to list members\n");
    if (rc == -1) return ctl_fail_transport(CTL_EXIT_SERVER_ERROR, &err);
    char msg[64];
    snprintf(msg, sizeof msg, "unexpected status code %ld", status);
    return ctl_fail(CTL_EXIT_SERVER_ERROR, msg);
  }
  for (;;) {
    size_t healthy = 0;
    for (size_t i = 0; i < ms.n; i++) {
      if (ms.m[i].n_client == 0) {
        printf("member %s is unreachable: no available published client urls\n", ms.m[i].id);
        continue;
      }
      if (member_health(ctx, &ms.m[i]) == 1) healthy++;
    }
    if (healthy == ms.n) printf("cluster is healthy\n");
    else if (healthy == 0) printf("cluster is unavailable\n");
    else printf("cluster is degraded\n");
    if (!forever) {
      int code = healthy == ms.n ? CTL_EXIT_SUCCESS : CTL_EXIT_CLUSTER_NOT_HEALTHY;
      proto_v2_members_free(&ms);
      return code;
    }
    printf("\nnext check after 10 second...\n\n");
    fflush(stdout);
    sleep(10);
  }
}
