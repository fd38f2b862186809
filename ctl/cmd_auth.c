/* cmd_auth: `user`, `role` and `auth`, as etcdctl v2 runs them: the requests of etcd's Go client
 * (client/auth_user.go, auth_role.go) with their JSON bodies made by yajl, the answers read the
 * way Go's encoding/json reads them into that client's structs (auth_json, so that odd answers
 * give the same output or the same error text), and etcdctl's lines and exit codes. */
#include "ctl/cmd_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "ctl/auth_json.h"
#include "ctl/session.h"
#include "proto/v2_json.h"

int ctl_auth_opens_session(const char *group) {
  return group && (strcmp(group, "user") == 0 || strcmp(group, "role") == 0 ||
                   strcmp(group, "auth") == 0);
}

/* ------------------------------------------------------------------ request bodies */

/* A string as Go's json.Marshal writes it (invalid UTF-8 as \ufffd, HTML characters escaped). */
static void gen_str(yajl_gen g, const char *s) { proto_v2_gen_str(g, s, strlen(s)); }

#define GEN_KEY(g, lit) yajl_gen_string((g), (const unsigned char *)(lit), sizeof(lit) - 1)

static char *gen_finish(yajl_gen g) {
  const unsigned char *buf;
  size_t len;
  char *s = NULL;
  if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) s = strndup((const char *)buf, len);
  yajl_gen_free(g);
  return s;
}

static void gen_list(yajl_gen g, const char *const *v, size_t n) {
  yajl_gen_array_open(g);
  for (size_t i = 0; i < n; i++) gen_str(g, v[i]);
  yajl_gen_array_close(g);
}

/* json.Marshal(client.User{...}): {"user":..,"password":..,"roles":null,"grant"|"revoke":[..]};
 * password and the list are left out when empty (omitempty). */
static char *user_body(const char *user, const char *password, const char *list_key,
                       const char *const *list, size_t n) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return NULL;
  yajl_gen_map_open(g);
  GEN_KEY(g, "user");
  gen_str(g, user);
  if (password && *password) {
    GEN_KEY(g, "password");
    gen_str(g, password);
  }
  GEN_KEY(g, "roles");
  yajl_gen_null(g);
  if (list_key && n) {
    yajl_gen_string(g, (const unsigned char *)list_key, strlen(list_key));
    gen_list(g, list, n);
  }
  yajl_gen_map_close(g);
  return gen_finish(g);
}

/* client.Permissions: {"kv":{"read":[path]|null,"write":[path]|null}} */
static void gen_perms(yajl_gen g, const char *path, int read, int write) {
  yajl_gen_map_open(g);
  GEN_KEY(g, "kv");
  yajl_gen_map_open(g);
  GEN_KEY(g, "read");
  if (read) gen_list(g, &path, 1);
  else yajl_gen_null(g);
  GEN_KEY(g, "write");
  if (write) gen_list(g, &path, 1);
  else yajl_gen_null(g);
  yajl_gen_map_close(g);
  yajl_gen_map_close(g);
}

/* json.Marshal(client.Role{...}): {"role":..,"permissions":{"kv":{"read":null,"write":null}}}
 * plus "grant" or "revoke" (change_key) with path for read and/or write. */
static char *role_body(const char *role, const char *change_key, const char *path, int read,
                       int write) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return NULL;
  yajl_gen_map_open(g);
  GEN_KEY(g, "role");
  gen_str(g, role);
  GEN_KEY(g, "permissions");
  gen_perms(g, NULL, 0, 0);
  if (change_key) {
    yajl_gen_string(g, (const unsigned char *)change_key, strlen(change_key));
    gen_perms(g, path, read, write);
  }
  yajl_gen_map_close(g);
  return gen_finish(g);
}

/* ------------------------------------------------------------------ requests and errors */

/* fmt.Fprintln(os.Stderr, msg): etcdctl's way of failing in these commands (exit 1). */
static int fail_line(const char *msg) {
  fflush(stdout);
  fprintf(stderr, "%s\n", msg ? msg : "out of memory");
  return 1;
}

static int fail_transport(const proto_v2_errors *e) {
  if (e->kind == PROTO_V2_CONFIG) return ctl_fail_config(e);
  char *text = proto_v2_errors_text(e);
  int rc = fail_line(text);
  free(text);
  return rc;
}

/* mustNewAuth*API: the client (synced unless --no-sync), and with --debug the endpoints line
 * these commands print once more. Returns 0 or the exit code after printing the error. */
static int open_api(ctl_ctx *ctx) {
  int rc = ctl_session_open(ctx, !ctl_arg_bool(&ctx->global, "no-sync"));
  if (rc != 0) return rc;
  if (ctl_arg_bool(&ctx->global, "debug")) {
    fprintf(stderr, "Cluster-Endpoints: ");
    for (size_t i = 0; i < proto_v2_client_n_endpoints(ctx->client); i++)
      fprintf(stderr, "%s%s", i ? ", " : "", proto_v2_client_endpoint(ctx->client, i));
    fprintf(stderr, "\n");
  }
  /* contextWithTotalTimeout: one deadline for the requests of the command */
  proto_v2_client_start_clock(ctx->client);
  return 0;
}

/* One request to /v2/auth/<action>[/<name>]; json: send Content-Type application/json, as
 * the Go client does for a body and for the lists. Returns 0, or -1 with *err. */
static int auth_send(ctl_ctx *ctx, const char *method, const char *action, const char *name,
                     const char *body, int json, proto_v2_resp *r, proto_v2_errors *err) {
  proto_v2_buf path = {0};
  proto_v2_auth_path(&path, action, name ? name : "");
  if (path.oom) {
    proto_v2_buf_free(&path);
    memset(err, 0, sizeof *err);
    memset(r, 0, sizeof *r);
    err->kind = PROTO_V2_NOMEM;
    return -1;
  }
  int rc = proto_v2_do(ctx->client, method, path.s, json ? "application/json" : NULL, body, 0, r,
                       err);
  proto_v2_buf_free(&path);
  return rc;
}

/* The same, printing a transport failure: 0, or the exit code. */
static int auth_do(ctl_ctx *ctx, const char *method, const char *action, const char *name,
                   const char *body, int json, proto_v2_resp *r) {
  proto_v2_errors err;
  if (auth_send(ctx, method, action, name, body, json, r, &err) != 0) return fail_transport(&err);
  return 0;
}

static int status_in(const proto_v2_resp *r, long a, long b) {
  return r->status == a || r->status == b;
}

/* An unwanted status: the client's authError (the "message" of the body) or, when the body
 * does not decode into one, json.Unmarshal's error, in out. */
static void answer_error(const proto_v2_resp *r, char *out, size_t n) {
  yajl_val t = ctl_go_parse_body(r, out, n);
  if (!t) return;
  ctl_go_dec d = {0};
  char *msg = NULL;
  ctl_go_dec_auth_error(&d, t, &msg);
  yajl_tree_free(t);
  snprintf(out, n, "%s", d.failed ? d.err : msg ? msg : "");
  free(msg);
}

/* The same, printed; returns 1. */
static int fail_answer(const proto_v2_resp *r) {
  char err[1024];
  answer_error(r, err, sizeof err);
  return fail_line(err);
}

/* modUser's reading of a 200 answer: client.User, or when that fails client.UserRoles (roles
 * as objects, which is what etcd sends) on top of what the first try left. Returns 0, or 1
 * after printing the error (the first try's). */
static int user_answer(const proto_v2_resp *r, char **user, ctl_go_strs *roles) {
  char err[512];
  yajl_val t = ctl_go_parse_body(r, err, sizeof err);
  if (!t) return fail_line(err);
  ctl_go_dec d = {0};
  ctl_go_dec_user(&d, t, user, roles);
  if (d.failed) {
    ctl_go_dec d2 = {0};
    char *user2 = NULL;
    ctl_go_dec_user_roles(&d2, t, &user2, roles);
    if (d2.failed) {
      free(user2);
      yajl_tree_free(t);
      return fail_line(d.err);
    }
    free(*user);
    *user = user2;
  }
  yajl_tree_free(t);
  return 0;
}

/* modRole: a 200 answer read as client.Role. Returns 0, or -1 with the error text in err. */
static int role_answer(const proto_v2_resp *r, ctl_go_role *role, char *err, size_t errlen) {
  if (r->status != 200) {
    answer_error(r, err, errlen);
    return -1;
  }
  yajl_val t = ctl_go_parse_body(r, err, errlen);
  if (!t) return -1;
  ctl_go_dec d = {0};
  ctl_go_dec_role(&d, t, role);
  yajl_tree_free(t);
  if (d.failed) {
    snprintf(err, errlen, "%s", d.err);
    return -1;
  }
  return 0;
}

/* GET or PUT a role and read the answer: 0 with *role, or the exit code after printing. */
static int role_request(ctl_ctx *ctx, const char *method, const char *name, const char *body,
                        ctl_go_role *role) {
  proto_v2_resp r;
  int rc = auth_do(ctx, method, "roles", name, body, body != NULL, &r);
  if (rc != 0) return rc;
  char err[512];
  rc = role_answer(&r, role, err, sizeof err) == 0 ? 0 : fail_line(err);
  proto_v2_resp_free(&r);
  return rc;
}

/* `user list` and `role list`: GET /v2/auth/<action>, the names decoded by dec, one a line.
 * error_body: a status other than 200 fails with the body's error (ListUsers), or else with
 * "unexpected status code N" and the body unread (ListRoles). */
static int list_names(ctl_ctx *ctx, const ctl_args *a, const char *action,
                      void (*dec)(ctl_go_dec *, yajl_val, ctl_go_strs *), int error_body) {
  if (a->argc != 0) return fail_line("No arguments accepted");
  int rc = open_api(ctx);
  if (rc != 0) return rc;
  proto_v2_resp r;
  if ((rc = auth_do(ctx, "GET", action, NULL, NULL, 1, &r)) != 0) return rc;
  if (r.status != 200) {
    if (error_body) {
      rc = fail_answer(&r);
    } else {
      char msg[64];
      snprintf(msg, sizeof msg, "unexpected status code %ld", r.status);
      rc = fail_line(msg);
    }
    proto_v2_resp_free(&r);
    return rc;
  }
  char err[512];
  yajl_val t = ctl_go_parse_body(&r, err, sizeof err);
  proto_v2_resp_free(&r);
  if (!t) return fail_line(err);
  ctl_go_dec d = {0};
  ctl_go_strs names = {0};
  dec(&d, t, &names);
  yajl_tree_free(t);
  if (d.failed) rc = fail_line(d.err);
  else
    for (size_t i = 0; i < names.n; i++) printf("%s\n", names.v[i]);
  ctl_go_strs_free(&names);
  return rc;
}

/* ------------------------------------------------------------------ user */

int ctl_cmd_user_list(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return list_names(ctx, a, "users", ctl_go_dec_user_list, 1);
}

/* mustUserAPIAndName: exactly one argument, then the client. */
static int user_api(ctl_ctx *ctx, const ctl_args *a) {
  if (a->argc != 1) return fail_line("Please provide a username");
  return open_api(ctx);
}

int ctl_cmd_user_add(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int rc = user_api(ctx, a);
  if (rc != 0) return rc;
  /* NAME:PASSWORD, or NAME and the password asked for */
  const char *arg = a->argv[0];
  const char *colon = strchr(arg, ':');
  char *user = colon ? strndup(arg, (size_t)(colon - arg)) : strdup(arg);
  char *pass = NULL;
  if (colon) {
    pass = strdup(colon + 1);
  } else {
    char perr[256];
    pass = ctl_ask_password("New password: ", perr, sizeof perr);
    if (!pass) {
      free(user);
      fflush(stdout);
      fprintf(stderr, "Error reading password: %s\n", perr);
      return 1;
    }
  }
  char *body = user && pass ? user_body(user, pass, NULL, NULL, 0) : NULL;
  free(pass);
  if (!body) {
    free(user);
    return fail_line("out of memory");
  }
  proto_v2_resp r;
  rc = auth_do(ctx, "PUT", "users", user, body, 1, &r);
  free(body);
  if (rc == 0) {
    if (status_in(&r, 200, 201)) printf("User %s created\n", user);
    else rc = fail_answer(&r);
    proto_v2_resp_free(&r);
  }
  free(user);
  return rc;
}

int ctl_cmd_user_remove(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int rc = user_api(ctx, a);
  if (rc != 0) return rc;
  const char *name = a->argv[0];
  proto_v2_resp r;
  if ((rc = auth_do(ctx, "DELETE", "users", name, NULL, 0, &r)) != 0) return rc;
  if (status_in(&r, 200, 201)) printf("User %s removed\n", name);
  else rc = fail_answer(&r);
  proto_v2_resp_free(&r);
  return rc;
}

/* A PUT or GET of modUser: 0 with the user read from the answer, or the exit code. */
static int user_request(ctl_ctx *ctx, const char *method, const char *name, const char *body,
                        char **user, ctl_go_strs *roles) {
  proto_v2_resp r;
  int rc = auth_do(ctx, method, "users", name, body, body != NULL, &r);
  if (rc != 0) return rc;
  rc = r.status == 200 ? user_answer(&r, user, roles) : fail_answer(&r);
  proto_v2_resp_free(&r);
  return rc;
}

int ctl_cmd_user_get(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int rc = user_api(ctx, a);
  if (rc != 0) return rc;
  char *user = NULL;
  ctl_go_strs roles = {0};
  rc = user_request(ctx, "GET", a->argv[0], NULL, &user, &roles);
  if (rc == 0) {
    printf("User: %s\nRoles: ", user ? user : "");
    for (size_t i = 0; i < roles.n; i++) printf("%s%s", i ? " " : "", roles.v[i]);
    printf("\n");
  }
  free(user);
  ctl_go_strs_free(&roles);
  return rc;
}

int ctl_cmd_user_passwd(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int rc = user_api(ctx, a);
  if (rc != 0) return rc;
  const char *name = a->argv[0];
  char perr[256];
  char *pass = ctl_ask_password("New password: ", perr, sizeof perr);
  if (!pass) {
    fflush(stdout);
    fprintf(stderr, "Error reading password: %s\n", perr);
    return 1;
  }
  char *body = user_body(name, pass, NULL, NULL, 0);
  free(pass);
  if (!body) return fail_line("out of memory");
  char *user = NULL;
  ctl_go_strs roles = {0};
  rc = user_request(ctx, "PUT", name, body, &user, &roles);
  free(body);
  free(user);
  ctl_go_strs_free(&roles);
  if (rc == 0) printf("Password updated\n");
  return rc;
}

static int user_grant_revoke(ctl_ctx *ctx, ctl_args *a, int grant) {
  const ctl_flag_val *v = ctl_arg(a, "roles");
  const char **roles = v ? v->list : NULL;
  size_t n = v ? v->n_list : 0;
  /* urfave/cli's StringSlice lookup drops the flag's default ([""]) from a value that differs
   * from it: the first empty role goes, unless it is the only role given. */
  for (size_t i = 0; n > 1 && i < n; i++)
    if (!*roles[i]) {
      memmove(&roles[i], &roles[i + 1], (n - i - 1) * sizeof *roles);
      n--;
      break;
    }
  if (n == 0) return fail_line("No roles specified; please use `--roles`");
  int rc = user_api(ctx, a);
  if (rc != 0) return rc;
  const char *name = a->argv[0];
  char *body = user_body(name, NULL, grant ? "grant" : "revoke", roles, n);
  if (!body) return fail_line("out of memory");
  char *user = NULL;
  ctl_go_strs got = {0};
  rc = user_request(ctx, "PUT", name, body, &user, &got);
  free(body);
  free(user);
  ctl_go_strs_free(&got);
  if (rc == 0) printf("User %s updated\n", name);
  return rc;
}

int ctl_cmd_user_grant(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return user_grant_revoke(ctx, a, 1);
}

int ctl_cmd_user_revoke(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return user_grant_revoke(ctx, a, 0);
}

/* ------------------------------------------------------------------ role */

int ctl_cmd_role_list(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return list_names(ctx, a, "roles", ctl_go_dec_role_list, 0);
}

/* mustRoleAPIAndName */
static int role_api(ctl_ctx *ctx, const ctl_args *a) {
  if (a->argc != 1) return fail_line("Please provide a role name");
  return open_api(ctx);
}

int ctl_cmd_role_add(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int rc = role_api(ctx, a);
  if (rc != 0) return rc;
  const char *name = a->argv[0];
  /* a role that can be read already exists; any failure of that look-up is ignored */
  proto_v2_resp r;
  proto_v2_errors err;
  if (auth_send(ctx, "GET", "roles", name, NULL, 0, &r, &err) == 0) {
    ctl_go_role cur = {0};
    char e[512];
    int exists = role_answer(&r, &cur, e, sizeof e) == 0;
    ctl_go_role_free(&cur);
    proto_v2_resp_free(&r);
    if (exists) {
      fflush(stdout);
      fprintf(stderr, "Role %s already exists\n", name);
      return 1;
    }
  }
  char *body = role_body(name, NULL, NULL, 0, 0);
  if (!body) return fail_line("out of memory");
  rc = auth_do(ctx, "PUT", "roles", name, body, 1, &r);
  free(body);
  if (rc != 0) return rc;
  if (status_in(&r, 200, 201)) printf("Role %s created\n", name);
  else rc = fail_answer(&r);
  proto_v2_resp_free(&r);
  return rc;
}

int ctl_cmd_role_remove(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int rc = role_api(ctx, a);
  if (rc != 0) return rc;
  const char *name = a->argv[0];
  proto_v2_resp r;
  if ((rc = auth_do(ctx, "DELETE", "roles", name, NULL, 0, &r)) != 0) return rc;
  if (status_in(&r, 200, 201)) printf("Role %s removed\n", name);
  else rc = fail_answer(&r);
  proto_v2_resp_free(&r);
  return rc;
}

int ctl_cmd_role_get(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int rc = role_api(ctx, a);
  if (rc != 0) return rc;
  ctl_go_role role = {0};
  rc = role_request(ctx, "GET", a->argv[0], NULL, &role);
  if (rc == 0) {
    printf("Role: %s\nKV Read:\n", role.name ? role.name : "");
    for (size_t i = 0; i < role.perms.read.n; i++) printf("\t%s\n", role.perms.read.v[i]);
    printf("KV Write:\n");
    for (size_t i = 0; i < role.perms.write.n; i++) printf("\t%s\n", role.perms.write.v[i]);
  }
  ctl_go_role_free(&role);
  return rc;
}

/* pathutil.CanonicalURLPath: absolute and cleaned, a trailing slash kept. malloc'd. */
static char *canonical_path(const char *p) {
  size_t n = strlen(p);
  char *abs = malloc(n + 2);
  char *out = malloc(n + 5);
  if (!abs || !out) {
    free(abs);
    free(out);
    return NULL;
  }
  snprintf(abs, n + 2, "%s%s", p[0] == '/' ? "" : "/", p);
  proto_v2_path_clean(abs, out);
  size_t an = strlen(abs), on = strlen(out);
  if (abs[an - 1] == '/' && strcmp(out, "/") != 0) {
    out[on] = '/';
    out[on + 1] = 0;
  }
  free(abs);
  return out;
}

static int role_grant_revoke(ctl_ctx *ctx, ctl_args *a, int grant) {
  const char *path = ctl_arg_str(a, "path");
  if (!*path) return fail_line("No path specified; please use `--path`");
  char *canon = canonical_path(path);
  if (!canon) return fail_line("out of memory");
  if (strcmp(canon, path) != 0) {
    fflush(stdout);
    fprintf(stderr, "Not canonical path; please use `--path=%s`\n", canon);
    free(canon);
    return 1;
  }
  free(canon);
  int read = ctl_arg_bool(a, "read"), write = ctl_arg_bool(a, "write");
  int rw = ctl_arg_bool(a, "readwrite");
  if (read + write + rw != 1)
    return fail_line("Please specify exactly one of --read, --write or --readwrite");
  int rc = role_api(ctx, a);
  if (rc != 0) return rc;
  const char *name = a->argv[0];
  ctl_go_role cur = {0}, upd = {0};
  char *body = NULL;
  rc = role_request(ctx, "GET", name, NULL, &cur);
  if (rc == 0) {
    body = role_body(name, grant ? "grant" : "revoke", path, read || rw, write || rw);
    rc = body ? role_request(ctx, "PUT", name, body, &upd) : fail_line("out of memory");
  }
  if (rc == 0) {
    if (ctl_go_role_equal(&upd, &cur))
      printf("%s", grant ? "Role unchanged; already granted" : "Role unchanged; already revoked");
    printf("Role %s updated\n", name);
  }
  free(body);
  ctl_go_role_free(&cur);
  ctl_go_role_free(&upd);
  return rc;
}

int ctl_cmd_role_grant(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return role_grant_revoke(ctx, a, 1);
}

int ctl_cmd_role_revoke(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return role_grant_revoke(ctx, a, 0);
}

/* ------------------------------------------------------------------ auth */

static int auth_enable_disable(ctl_ctx *ctx, ctl_args *a, int enable) {
  if (a->argc != 0) return fail_line("No arguments accepted");
  int rc = open_api(ctx);
  if (rc != 0) return rc;
  proto_v2_resp r;
  if ((rc = auth_do(ctx, enable ? "PUT" : "DELETE", "enable", NULL, NULL, 0, &r)) != 0) return rc;
  if (status_in(&r, 200, 201))
    printf("%s\n", enable ? "Authentication Enabled" : "Authentication Disabled");
  else
    rc = fail_answer(&r);
  proto_v2_resp_free(&r);
  return rc;
}

int ctl_cmd_auth_enable(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return auth_enable_disable(ctx, a, 1);
}

int ctl_cmd_auth_disable(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return auth_enable_disable(ctx, a, 0);
}
