/* auth_json: the JSON of /v2/auth in and out: the name lists, PUT bodies of users and roles
 * read as etcd's Go structs (auth_user_request and auth_role_request check them and turn
 * them into the record values to propose), and the objects of the answers. */
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "daemon/auth_i.h"
#include "daemon/store_i.h"
#include "proto/go_json.h"

/* ------------------------------------------------------------------ lists */

void auth_list_free(auth_list *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  *l = (auth_list){.null = true};
}

void auth_list_add(auth_list *l, const char *s) {
  char **v = realloc(l->v, (l->n + 1) * sizeof *v);
  char *c = strdup(s);
  if (!v || !c) abort();
  l->v = v;
  l->v[l->n++] = c;
  l->null = false;
}

ssize_t auth_list_find(const auth_list *l, const char *s) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->v[i], s)) return (ssize_t)i;
  return -1;
}

void auth_list_remove_at(auth_list *l, size_t i) {
  free(l->v[i]);
  l->v[i] = l->v[--l->n];
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void auth_list_sort(auth_list *l) {
  if (l->n > 1) qsort(l->v, l->n, sizeof *l->v, cmp_str);
}

void auth_list_copy(auth_list *dst, const auth_list *src) {
  *dst = (auth_list){.null = src->null};
  for (size_t i = 0; i < src->n; i++) auth_list_add(dst, src->v[i]);
  dst->null = src->null;
}

bool auth_list_equal(const auth_list *a, const auth_list *b) {
  if (a->null != b->null || a->n != b->n) return false;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->v[i], b->v[i])) return false;
  return true;
}

/* ------------------------------------------------------------------ JSON in */

static int get_str(yajl_val v, char **out) {
  if (!v || YAJL_IS_NULL(v)) {
    *out = strdup("");
  } else if (YAJL_IS_STRING(v)) {
    *out = strdup(v->u.string);
  } else {
    return -1;
  }
  if (!*out) abort();
  return 0;
}

static int get_list(yajl_val v, auth_list *out) {
  *out = (auth_list){.null = true};
  if (!v || YAJL_IS_NULL(v)) return 0;
  if (!YAJL_IS_ARRAY(v)) return -1;
  out->null = false;
  for (size_t i = 0; i < v->u.array.len; i++) {
    if (!YAJL_IS_STRING(v->u.array.values[i])) {
      auth_list_free(out);
      return -1;
    }
    auth_list_add(out, v->u.array.values[i]->u.string);
  }
  out->null = false;
  return 0;
}

/* {"kv":{"read":[...],"write":[...]}} */
static int get_perms(yajl_val v, auth_list *read, auth_list *write) {
  *read = *write = (auth_list){.null = true};
  if (!v || YAJL_IS_NULL(v)) return 0;
  if (!YAJL_IS_OBJECT(v)) return -1;
  yajl_val kv = proto_go_json_field(v, "kv");
  if (kv && !YAJL_IS_NULL(kv) && !YAJL_IS_OBJECT(kv)) return -1;
  if (get_list(proto_go_json_field(kv, "read"), read)) return -1;
  if (get_list(proto_go_json_field(kv, "write"), write)) {
    auth_list_free(read);
    return -1;
  }
  return 0;
}

void auth_user_req_free(auth_user_req *u) {
  free(u->user);
  free(u->password);
  auth_list_free(&u->roles);
  auth_list_free(&u->grant);
  auth_list_free(&u->revoke);
}

void auth_role_req_free(auth_role_req *r) {
  free(r->role);
  auth_list_free(&r->read);
  auth_list_free(&r->write);
  auth_list_free(&r->grant_read);
  auth_list_free(&r->grant_write);
  auth_list_free(&r->revoke_read);
  auth_list_free(&r->revoke_write);
}

static yajl_val parse(const char *body, size_t len) {
  char *t = malloc(len + 1);
  if (!t) abort();
  memcpy(t, body, len);
  t[len] = 0;
  yajl_val v = yajl_tree_parse(t, NULL, 0);
  free(t);
  if (v && !YAJL_IS_OBJECT(v) && !YAJL_IS_NULL(v)) { /* Go: cannot unmarshal into a struct */
    yajl_tree_free(v);
    return NULL;
  }
  return v;
}

int auth_user_req_parse(const char *body, size_t len, auth_user_req *u) {
  *u = (auth_user_req){.roles.null = true, .grant.null = true, .revoke.null = true};
  yajl_val v = parse(body, len);
  if (!v) return -1;
  int rc = get_str(proto_go_json_field(v, "user"), &u->user) ||
           get_str(proto_go_json_field(v, "password"), &u->password) ||
           get_list(proto_go_json_field(v, "roles"), &u->roles) ||
           get_list(proto_go_json_field(v, "grant"), &u->grant) ||
           get_list(proto_go_json_field(v, "revoke"), &u->revoke);
  yajl_tree_free(v);
  if (rc) auth_user_req_free(u);
  return rc ? -1 : 0;
}

int auth_role_req_parse(const char *body, size_t len, auth_role_req *r) {
  *r = (auth_role_req){0};
  r->read.null = r->write.null = r->grant_read.null = r->grant_write.null = true;
  r->revoke_read.null = r->revoke_write.null = true;
  yajl_val v = parse(body, len);
  if (!v) return -1;
  yajl_val g = proto_go_json_field(v, "grant"), k = proto_go_json_field(v, "revoke");
  r->has_grant = g && !YAJL_IS_NULL(g);
  r->has_revoke = k && !YAJL_IS_NULL(k);
  int rc = get_str(proto_go_json_field(v, "role"), &r->role) ||
           get_perms(proto_go_json_field(v, "permissions"), &r->read, &r->write) ||
           get_perms(g, &r->grant_read, &r->grant_write) ||
           get_perms(k, &r->revoke_read, &r->revoke_write);
  yajl_tree_free(v);
  if (rc) auth_role_req_free(r);
  return rc ? -1 : 0;
}

/* ------------------------------------------------------------------ JSON out */

void auth_gen_list(yajl_gen g, const auth_list *l) {
  if (l->null) {
    yajl_gen_null(g);
    return;
  }
  yajl_gen_array_open(g);
  for (size_t i = 0; i < l->n; i++) proto_v2_gen_cstr(g, l->v[i]);
  yajl_gen_array_close(g);
}

void auth_gen_perms(yajl_gen g, const auth_list *read, const auth_list *write) {
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "kv");
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "read");
  auth_gen_list(g, read);
  proto_v2_gen_cstr(g, "write");
  auth_gen_list(g, write);
  yajl_gen_map_close(g);
  yajl_gen_map_close(g);
}

void auth_gen_role(yajl_gen g, const auth_role *r) {
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "role");
  proto_v2_gen_cstr(g, r->name);
  proto_v2_gen_cstr(g, "permissions");
  auth_gen_perms(g, &r->read, &r->write);
  yajl_gen_map_close(g);
}

/* A user as stored (password: the hash) or as answered to a PUT (password NULL). */
void auth_gen_user(yajl_gen g, const char *name, const char *hash, const auth_list *roles) {
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "user");
  proto_v2_gen_cstr(g, name);
  if (hash) {
    proto_v2_gen_cstr(g, "password");
    proto_v2_gen_cstr(g, hash);
  }
  proto_v2_gen_cstr(g, "roles");
  auth_gen_list(g, roles);
  yajl_gen_map_close(g);
}

/* Takes g's output (with a newline when nl, as Go's json.Encoder ends a value). */
void auth_gen_take(yajl_gen g, char **body, size_t *len, bool nl) {
  store_gen_finish(g, body, len);
  yajl_gen_free(g);
  if (!nl) (*len)--;
}

/* ------------------------------------------------------------------ requests */

int auth_user_request(const char *name, const char *body, size_t len, char **value,
                      size_t *value_len, const char **msg) {
  auth_user_req q;
  if (auth_user_req_parse(body, len, &q)) {
    *msg = "Invalid JSON in request body.";
    return 400;
  }
  int status = 0;
  if (strcmp(q.user, name)) {
    *msg = "User JSON name does not match the name in the URL";
    status = 400;
  } else if ((q.grant.n || q.revoke.n) && q.roles.n) {
    *msg = "User JSON contains both roles and grant/revoke";
    status = 400;
  }
  char *hash = NULL;
  if (!status && *q.password) {
    hash = auth_password_hash(q.password, strlen(q.password));
    if (!hash) {
      *msg = "auth: cannot hash the password";
      status = 500;
    }
  }
  if (!status) {
    yajl_gen g = proto_v2_gen_new();
    yajl_gen_map_open(g);
    proto_v2_gen_cstr(g, "user");
    proto_v2_gen_cstr(g, q.user);
    proto_v2_gen_cstr(g, "password");
    proto_v2_gen_cstr(g, hash ? hash : "");
    proto_v2_gen_cstr(g, "roles");
    auth_gen_list(g, &q.roles);
    proto_v2_gen_cstr(g, "grant");
    auth_gen_list(g, &q.grant);
    proto_v2_gen_cstr(g, "revoke");
    auth_gen_list(g, &q.revoke);
    yajl_gen_map_close(g);
    auth_gen_take(g, value, value_len, false);
  }
  free(hash);
  auth_user_req_free(&q);
  return status;
}

int auth_role_request(const char *name, const char *body, size_t len, char **value,
                      size_t *value_len, const char **msg) {
  auth_role_req q;
  if (auth_role_req_parse(body, len, &q)) {
    *msg = "Invalid JSON in request body.";
    return 400;
  }
  int status = 0;
  bool changes = q.grant_read.n || q.grant_write.n || q.revoke_read.n || q.revoke_write.n;
  if (strcmp(q.role, name)) {
    *msg = "Role JSON name does not match the name in the URL";
    status = 400;
  } else if (changes && (q.read.n || q.write.n)) {
    *msg = "Role JSON contains both permissions and grant/revoke";
    status = 400;
  }
  if (!status) {
    yajl_gen g = proto_v2_gen_new();
    yajl_gen_map_open(g);
    proto_v2_gen_cstr(g, "role");
    proto_v2_gen_cstr(g, q.role);
    proto_v2_gen_cstr(g, "permissions");
    auth_gen_perms(g, &q.read, &q.write);
    if (q.has_grant) {
      proto_v2_gen_cstr(g, "grant");
      auth_gen_perms(g, &q.grant_read, &q.grant_write);
    }
    if (q.has_revoke) {
      proto_v2_gen_cstr(g, "revoke");
      auth_gen_perms(g, &q.revoke_read, &q.revoke_write);
    }
    yajl_gen_map_close(g);
    auth_gen_take(g, value, value_len, false);
  }
  auth_role_req_free(&q);
  return status;
}
