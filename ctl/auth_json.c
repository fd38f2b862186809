/* auth_json: the answers of /v2/auth read as etcd's Go client reads them with encoding/json:
 * Go's syntax check of the whole body first (its error text is what etcdctl prints for an
 * answer that is not JSON), then the value decoded into the client's structs (client.User,
 * UserRoles, Role, authError and the lists), with Go's type-error texts. */
#include "ctl/auth_json.h"

#include "proto/go_json.h"
#include "proto/v2_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Go's JSON syntax check: proto_go_json_check (proto/go_json.c). */

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int is_hex(unsigned char c) {
  return is_digit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f');
}

/* The length of the valid UTF-8 sequence at p (1-4), 0 when p does not start one. */
size_t ctl_go_utf8_seq(const unsigned char *p) { return proto_v2_utf8_seq(p, 4); }

static unsigned hex4(const unsigned char *p) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++)
    v = v << 4 | (unsigned)(is_digit(p[i]) ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
  return v;
}

/* JSON text that passed the syntax check, rewritten so that yajl reads its strings as Go's
 * decoder does: a byte that is not UTF-8 is U+FFFD, and so is a \u escape of a UTF-16
 * surrogate that is not a high one followed by a low one (yajl would give '?' or bad UTF-8). */
static void go_text(const char *body, proto_v2_buf *out) {
  const unsigned char *p = (const unsigned char *)body;
  while (*p) {
    size_t n;
    if (*p == '\\' && p[1] == 'u') {
      unsigned v = hex4(p + 2);
      n = 6;
      if (v >= 0xd800 && v <= 0xdfff) {
        if (v < 0xdc00 && p[6] == '\\' && p[7] == 'u' && is_hex(p[8]) && is_hex(p[9]) &&
            is_hex(p[10]) && is_hex(p[11]) && hex4(p + 8) >= 0xdc00 && hex4(p + 8) <= 0xdfff) {
          n = 12;
        } else {
          proto_v2_buf_adds(out, "\\ufffd");
          p += 6;
          continue;
        }
      }
    } else if (*p == '\\') {
      n = 2;
    } else if ((n = ctl_go_utf8_seq(p)) == 0) {
      proto_v2_buf_adds(out, "\xef\xbf\xbd");
      p++;
      continue;
    }
    proto_v2_buf_add(out, (const char *)p, n);
    p += n;
  }
}

/* The body as a yajl tree, or NULL with the error json.Unmarshal would give in err. */
yajl_val ctl_go_parse_body(const proto_v2_resp *r, char *err, size_t errlen) {
  const char *body = r->body ? r->body : "";
  if (proto_go_json_check(body, r->body_len, err, errlen) != 0) return NULL;
  proto_v2_buf text = {0};
  proto_v2_buf_add(&text, "", 0);
  go_text(body, &text);
  if (text.oom) {
    proto_v2_buf_free(&text);
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  char e[256] = "";
  yajl_val t = yajl_tree_parse(text.s, e, sizeof e);
  proto_v2_buf_free(&text);
  if (!t) {
    e[strcspn(e, "\n")] = 0;
    snprintf(err, errlen, "%s", *e ? e : "invalid JSON");
  }
  return t;
}

/* ------------------------------------------------------------------ Go's decoding */

/* json.Unmarshal into etcd's client structs: fields matched case-insensitively (the last one
 * given wins), null leaves a field as it is, unknown fields are skipped, and a value of the
 * wrong type is skipped too but makes the whole call fail with Go's UnmarshalTypeError text
 * (the first one), "json: cannot unmarshal X into Go struct field S.path of type T". Slices
 * remember whether they were given at all (nil and empty differ for reflect.DeepEqual). */

void ctl_go_strs_free(ctl_go_strs *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}

static void perms_free(ctl_go_perms *p) {
  ctl_go_strs_free(&p->read);
  ctl_go_strs_free(&p->write);
}

void ctl_go_role_free(ctl_go_role *r) {
  free(r->name);
  perms_free(&r->perms);
  perms_free(&r->grant);
  perms_free(&r->revoke);
  memset(r, 0, sizeof *r);
}

/* Appends a copy of s (NULL: ""); the slice becomes non-nil. */
static void strs_add(ctl_go_strs *l, const char *s) {
  char **v = realloc(l->v, (l->n + 1) * sizeof *v);
  char *c = strdup(s ? s : "");
  if (!v || !c) {
    free(c);
    if (v) l->v = v;
    return;
  }
  l->v = v;
  l->v[l->n++] = c;
  l->non_nil = 1;
}

static const char *json_kind(yajl_val v) {
  if (YAJL_IS_OBJECT(v)) return "object";
  if (YAJL_IS_ARRAY(v)) return "array";
  if (YAJL_IS_STRING(v)) return "string";
  if (YAJL_IS_NUMBER(v)) return "number";
  if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) return "bool";
  return "null";
}

static int is_null(yajl_val v) { return !v || YAJL_IS_NULL(v); }

/* A type error at path (NULL: the top-level value) of struct strct. */
static void dec_fail(ctl_go_dec *d, yajl_val v, const char *strct, const char *path,
                     const char *type) {
  if (d->failed) return;
  d->failed = 1;
  if (path)
    snprintf(d->err, sizeof d->err, "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
             json_kind(v), strct, path, type);
  else
    snprintf(d->err, sizeof d->err, "json: cannot unmarshal %s into Go value of type %s",
             json_kind(v), type);
}

static void sub_path(char *out, size_t n, const char *path, const char *name) {
  if (path && *path) snprintf(out, n, "%s.%s", path, name);
  else snprintf(out, n, "%s", name);
}

static void dec_string(ctl_go_dec *d, yajl_val v, const char *strct, const char *path,
                       char **out) {
  if (is_null(v)) return;
  if (!YAJL_IS_STRING(v)) {
    dec_fail(d, v, strct, path, "string");
    return;
  }
  char *s = strdup(v->u.string ? v->u.string : "");
  if (!s) return;
  free(*out);
  *out = s;
}

static void dec_strs(ctl_go_dec *d, yajl_val v, const char *strct, const char *path,
                     ctl_go_strs *out) {
  if (is_null(v)) return;
  if (!YAJL_IS_ARRAY(v)) {
    dec_fail(d, v, strct, path, "[]string");
    return;
  }
  ctl_go_strs_free(out);
  out->non_nil = 1;
  for (size_t i = 0; i < v->u.array.len; i++) {
    char *s = NULL;
    dec_string(d, v->u.array.values[i], strct, path, &s);
    strs_add(out, s);
    free(s);
  }
}

static void dec_perms(ctl_go_dec *d, yajl_val v, const char *strct, const char *path,
                      ctl_go_perms *p) {
  char kv[256], sub[300];
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, strct, path, "client.Permissions");
    return;
  }
  sub_path(kv, sizeof kv, path, "kv");
  yajl_val rw = proto_go_json_field(v, "kv");
  if (is_null(rw)) return;
  if (!YAJL_IS_OBJECT(rw)) {
    dec_fail(d, rw, "Permissions", kv, "client.rwPermission");
    return;
  }
  sub_path(sub, sizeof sub, kv, "read");
  dec_strs(d, proto_go_json_field(rw, "read"), "rwPermission", sub, &p->read);
  sub_path(sub, sizeof sub, kv, "write");
  dec_strs(d, proto_go_json_field(rw, "write"), "rwPermission", sub, &p->write);
}

/* A client.Role at path of strct (both NULL: the top-level value). */
static void dec_role(ctl_go_dec *d, yajl_val v, const char *strct, const char *path,
                     ctl_go_role *r) {
  char sub[256];
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, strct, path, "client.Role");
    return;
  }
  sub_path(sub, sizeof sub, path, "role");
  dec_string(d, proto_go_json_field(v, "role"), "Role", sub, &r->name);
  sub_path(sub, sizeof sub, path, "permissions");
  dec_perms(d, proto_go_json_field(v, "permissions"), "Role", sub, &r->perms);
  yajl_val g = proto_go_json_field(v, "grant");
  if (!is_null(g)) {
    r->has_grant = 1;
    sub_path(sub, sizeof sub, path, "grant");
    dec_perms(d, g, "Role", sub, &r->grant);
  }
  g = proto_go_json_field(v, "revoke");
  if (!is_null(g)) {
    r->has_revoke = 1;
    sub_path(sub, sizeof sub, path, "revoke");
    dec_perms(d, g, "Role", sub, &r->revoke);
  }
}

/* The role names of a []client.Role at path of strct, appended to names. */
static void dec_role_names(ctl_go_dec *d, yajl_val v, const char *strct, const char *path,
                           ctl_go_strs *names) {
  if (is_null(v)) return;
  if (!YAJL_IS_ARRAY(v)) {
    dec_fail(d, v, strct, path, "[]client.Role");
    return;
  }
  for (size_t i = 0; i < v->u.array.len; i++) {
    ctl_go_role r = {0};
    dec_role(d, v->u.array.values[i], strct, path, &r);
    strs_add(names, r.name);
    ctl_go_role_free(&r);
  }
}

void ctl_go_dec_role(ctl_go_dec *d, yajl_val v, ctl_go_role *r) { dec_role(d, v, NULL, NULL, r); }

/* client.User: user, password, roles, grant, revoke (the strings of the roles). */
void ctl_go_dec_user(ctl_go_dec *d, yajl_val v, char **user, ctl_go_strs *roles) {
  ctl_go_strs skip = {0};
  char *pw = NULL;
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "client.User");
    return;
  }
  dec_string(d, proto_go_json_field(v, "user"), "User", "user", user);
  dec_string(d, proto_go_json_field(v, "password"), "User", "password", &pw);
  dec_strs(d, proto_go_json_field(v, "roles"), "User", "roles", roles);
  dec_strs(d, proto_go_json_field(v, "grant"), "User", "grant", &skip);
  ctl_go_strs_free(&skip);
  dec_strs(d, proto_go_json_field(v, "revoke"), "User", "revoke", &skip);
  ctl_go_strs_free(&skip);
  free(pw);
}

/* client.UserRoles: user, and roles as role objects. */
void ctl_go_dec_user_roles(ctl_go_dec *d, yajl_val v, char **user, ctl_go_strs *names) {
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "client.UserRoles");
    return;
  }
  dec_string(d, proto_go_json_field(v, "user"), "UserRoles", "user", user);
  dec_role_names(d, proto_go_json_field(v, "roles"), "UserRoles", "roles", names);
}

/* ListUsers' struct{Users []userListEntry}: the user names. */
void ctl_go_dec_user_list(ctl_go_dec *d, yajl_val v, ctl_go_strs *names) {
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "struct { Users []client.userListEntry \"json:\\\"users\\\"\" }");
    return;
  }
  yajl_val us = proto_go_json_field(v, "users");
  if (is_null(us)) return;
  if (!YAJL_IS_ARRAY(us)) {
    dec_fail(d, us, "", "users", "[]client.userListEntry");
    return;
  }
  for (size_t i = 0; i < us->u.array.len; i++) {
    yajl_val e = us->u.array.values[i];
    char *name = NULL;
    if (!is_null(e) && !YAJL_IS_OBJECT(e)) {
      dec_fail(d, e, "", "users", "client.userListEntry");
    } else if (!is_null(e)) {
      ctl_go_strs skip = {0};
      dec_string(d, proto_go_json_field(e, "user"), "userListEntry", "users.user", &name);
      dec_role_names(d, proto_go_json_field(e, "roles"), "userListEntry", "users.roles", &skip);
      ctl_go_strs_free(&skip);
    }
    strs_add(names, name);
    free(name);
  }
}

/* ListRoles' struct{Roles []Role}: the role names. */
void ctl_go_dec_role_list(ctl_go_dec *d, yajl_val v, ctl_go_strs *names) {
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "struct { Roles []client.Role \"json:\\\"roles\\\"\" }");
    return;
  }
  dec_role_names(d, proto_go_json_field(v, "roles"), "", "roles", names);
}

/* client.authError: its message. */
void ctl_go_dec_auth_error(ctl_go_dec *d, yajl_val v, char **msg) {
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "client.authError");
    return;
  }
  dec_string(d, proto_go_json_field(v, "message"), "authError", "message", msg);
}

/* reflect.DeepEqual of two client.Role values. */
static int strs_equal(const ctl_go_strs *a, const ctl_go_strs *b) {
  if (a->non_nil != b->non_nil || a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->v[i], b->v[i]) != 0) return 0;
  return 1;
}

static int perms_equal(const ctl_go_perms *a, const ctl_go_perms *b) {
  return strs_equal(&a->read, &b->read) && strs_equal(&a->write, &b->write);
}

int ctl_go_role_equal(const ctl_go_role *a, const ctl_go_role *b) {
  return strcmp(a->name ? a->name : "", b->name ? b->name : "") == 0 &&
         perms_equal(&a->perms, &b->perms) && a->has_grant == b->has_grant &&
         (!a->has_grant || perms_equal(&a->grant, &b->grant)) && a->has_revoke == b->has_revoke &&
         (!a->has_revoke || perms_equal(&a->revoke, &b->revoke));
}
