/* v2_auth: the /v2/auth endpoints (users, roles, enable) with etcd's paths, methods, statuses
 * and bodies, and who a request is (auth_who) for the other handlers' checks. Reads answer
 * from this member's copy of the auth state; changes are proposed as PROTO_OP_AUTH records
 * and answered when applied. */
#include "daemon/v2_auth.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/http_util.h"
#include "daemon/routes.h"

/* A change waiting to be applied. */
typedef struct auth_pending {
  server_waiter w; /* first: the server calls w.done */
  http_req *r;     /* NULL once the client has gone */
} auth_pending;

void v2_auth_who(server *s, http_req *r, auth_who *who, char *cn, size_t cn_len) {
  who->authorization = r->authorization.len ? r->authorization.p : NULL;
  who->authorization_len = r->authorization.len;
  who->cert_cn = NULL;
  who->verified = r->ext_free == auth_verify_free ? r->ext : NULL;
  if (s->cfg->client_cert_auth && !who->authorization_len && http_req_client_cn(r, cn, cn_len))
    who->cert_cn = cn;
}

/* A request waiting while its password is checked on libuv's thread pool. */
typedef struct verify_job {
  uv_work_t work;
  server *s;
  http_req *r; /* NULL once the client has gone */
  auth_verify *v;
} verify_job;

static void verify_work(uv_work_t *w) { auth_verify_run(((verify_job *)w->data)->v); }

static void verify_abort(http_req *r) {
  verify_job *j = r->data;
  j->r = NULL;
}

static void verify_after(uv_work_t *w, int status) {
  verify_job *j = w->data;
  http_req *r = j->r;
  if (!status) auth_db_verify_end(j->s->auth, j->v);
  if (!r) {
    auth_verify_free(j->v);
    free(j);
    return;
  }
  r->on_abort = NULL;
  r->data = NULL;
  r->ext = j->v; /* the verdict, for the checks of the request's handler */
  r->ext_free = auth_verify_free;
  free(j);
  routes_dispatch(http_req_arg(r), r);
}

bool v2_auth_verify_async(server *s, http_req *r) {
  if (!r->authorization.len || r->ext || !auth_db_enabled(s->auth)) return false;
  auth_who who;
  char cn[256];
  v2_auth_who(s, r, &who, cn, sizeof cn);
  auth_verify *v = auth_db_verify_begin(s->auth, &who);
  if (!v) return false;
  verify_job *j = calloc(1, sizeof *j);
  if (!j) {
    auth_verify_free(v);
    return false; /* (checked on the loop, then) */
  }
  j->work.data = j;
  j->s = s;
  j->r = r;
  j->v = v;
  r->data = j;
  r->on_abort = verify_abort;
  if (uv_queue_work(server_shard_of(r)->loop, &j->work, verify_work, verify_after)) {
    r->on_abort = NULL;
    r->data = NULL;
    auth_verify_free(v);
    free(j);
    return false;
  }
  return true;
}

bool v2_auth_root_access(server *s, http_req *r) {
  if (!auth_db_enabled(s->auth)) return true;
  auth_who who;
  char cn[256];
  v2_auth_who(s, r, &who, cn, sizeof cn);
  return auth_db_root_access(s->auth, &who);
}

void v2_auth_no_auth(server *s, http_req *r) {
  (void)s;
  static const char body[] = "{\"message\":\"Insufficient credentials\"}";
  http_respond(r, 401, NULL, "application/json", body, sizeof body - 1);
}

static void pending_abort(http_req *r) {
  auth_pending *p = r->data;
  if (server_cancel(server_shard_of(r)->srv, &p->w)) free(p);
  else p->r = NULL;
}

static void pending_done(server *s, server_waiter *w, store_result *res) {
  auth_pending *p = (auth_pending *)w;
  if (p->r) {
    p->r->on_abort = NULL;
    if (res->error_code || !res->status) /* not committed in time */
      routes_message(s, p->r, 500, "etcdserver: request timed out", 1);
    else
      routes_json(s, p->r, res->status, res->body ? res->body : "", res->body_len, 1);
  }
  free(p);
}

static void propose(server *s, http_req *r, const char *path, const char *value, size_t len,
                    bool del) {
  proto_record rec = {.op = PROTO_OP_AUTH,
                      .flags = del ? PROTO_REC_AUTH_DELETE : 0,
                      .time = server_now_ns(),
                      .path = path,
                      .path_len = strlen(path),
                      .value = value,
                      .value_len = len};
  auth_pending *p = calloc(1, sizeof *p);
  if (!p) abort();
  p->w.done = pending_done;
  p->w.shard = server_shard_of(r)->id;
  p->r = r;
  r->data = p;
  r->on_abort = pending_abort;
  if (server_propose(s, &rec, &p->w)) {
    r->on_abort = NULL;
    free(p);
    routes_message(s, r, 500, "etcdserver: cannot propose", 1);
  }
}

static void answer(server *s, http_req *r, int status, char *body, size_t len) {
  routes_json(s, r, status, body, len, 1);
  free(body);
}

static void enable(server *s, http_req *r) {
  if (r->method != HTTP_GET && r->method != HTTP_PUT && r->method != HTTP_DELETE) {
    routes_text(r, 405, "GET,PUT,DELETE", "Method Not Allowed\n");
    return;
  }
  if (r->method != HTTP_GET && !v2_auth_root_access(s, r)) {
    v2_auth_no_auth(s, r);
    return;
  }
  if (r->method == HTTP_GET) {
    const char *body = auth_db_enabled(s->auth) ? "{\"enabled\":true}\n" : "{\"enabled\":false}\n";
    routes_json(s, r, 200, body, strlen(body), 1);
    return;
  }
  propose(s, r, "/enable", "", 0, r->method == HTTP_DELETE);
}

static void base(server *s, http_req *r, bool users) {
  if (r->method != HTTP_GET) {
    routes_text(r, 405, "GET", "Method Not Allowed\n");
    return;
  }
  if (!v2_auth_root_access(s, r)) {
    v2_auth_no_auth(s, r);
    return;
  }
  char *body;
  size_t len;
  int status = users ? auth_db_get_users(s->auth, &body, &len) : auth_db_get_roles(s->auth, &body, &len);
  answer(s, r, status, body, len);
}

static void one(server *s, http_req *r, bool users, const char *name) {
  if (r->method != HTTP_GET && r->method != HTTP_PUT && r->method != HTTP_DELETE) {
    routes_text(r, 405, "GET,PUT,DELETE", "Method Not Allowed\n");
    return;
  }
  if (!v2_auth_root_access(s, r)) {
    v2_auth_no_auth(s, r);
    return;
  }
  char path[1100];
  snprintf(path, sizeof path, "/%s/%s", users ? "users" : "roles", name);
  if (r->method == HTTP_GET) {
    char *body;
    size_t len;
    int status = users ? auth_db_get_user(s->auth, name, &body, &len)
                       : auth_db_get_role(s->auth, name, &body, &len);
    answer(s, r, status, body, len);
  } else if (r->method == HTTP_DELETE) {
    propose(s, r, path, "", 0, true);
  } else {
    char *value = NULL;
    size_t len = 0;
    const char *msg = NULL;
    int status = users ? auth_user_request(name, r->body.p ? r->body.p : "", r->body.len, &value, &len, &msg)
                       : auth_role_request(name, r->body.p ? r->body.p : "", r->body.len, &value, &len, &msg);
    if (status) routes_message(s, r, status, msg, 1);
    else propose(s, r, path, value, len, false);
    free(value);
  }
}

void v2_auth_handle(server *s, http_req *r, const char *sub, size_t n) {
  if (n == 7 && !memcmp(sub, "/enable", 7)) {
    enable(s, r);
    return;
  }
  bool users = n >= 6 && !memcmp(sub, "/users", 6) && (n == 6 || sub[6] == '/');
  bool roles = n >= 6 && !memcmp(sub, "/roles", 6) && (n == 6 || sub[6] == '/');
  if (!users && !roles) {
    routes_text(r, 404, NULL, "404 page not found\n");
    return;
  }
  if (n == 6) {
    base(s, r, users);
    return;
  }
  /* "/users/NAME": path.Clean, then split on '/' (Go's handler). */
  sbuf clean = {0};
  http_clean_path(&clean, sub, n);
  sbuf_putc(&clean, 0);
  const char *name = clean.p + 7;
  if (clean.len - 1 <= 6) {
    base(s, r, users);
  } else if (strchr(name, '/') || strlen(name) != clean.len - 8 || strlen(name) > 1024) {
    routes_message(s, r, 400, "Invalid path", 0);
  } else {
    one(s, r, users, name);
  }
  sbuf_free(&clean);
}
