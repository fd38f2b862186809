/* cmd_auth: `user`, `role` and `auth`, as etcdctl v2 runs them: the requests of etcd's Go client
 * (client/auth_user.go, auth_role.go) with their JSON bodies made by yajl, the answers read the
 * way Go's encoding/json reads them into that client's structs (so that odd answers give the
 * same output or the same error text), and etcdctl's lines and exit codes. */
#include "ctl/cmd_auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

#include "ctl/session.h"

int ctl_auth_opens_session(const char *group) {
  return group && (strcmp(group, "user") == 0 || strcmp(group, "role") == 0 ||
                   strcmp(group, "auth") == 0);
}

/* ------------------------------------------------------------------ Go's JSON syntax check */

/* json.Unmarshal first scans the whole input; its first syntax error is what etcdctl prints
 * for an answer that is not JSON (a 405 "Method Not Allowed", a proxy's HTML page, ...). */

#define GO_MAX_DEPTH 10000

typedef struct go_scan {
  const unsigned char *s;
  size_t n, i;
  int depth;
  char *err;
  size_t errlen;
} go_scan;

/* Go's quoteChar: how a syntax error names a byte. */
static void go_quote_char(unsigned char c, char *out, size_t n) {
  const char *e = NULL;
  switch (c) {
    case '\'': e = "\\'"; break;
    case '\\': e = "\\\\"; break;
    case '\a': e = "\\a"; break;
    case '\b': e = "\\b"; break;
    case '\f': e = "\\f"; break;
    case '\n': e = "\\n"; break;
    case '\r': e = "\\r"; break;
    case '\t': e = "\\t"; break;
    case '\v': e = "\\v"; break;
    default: break;
  }
  if (e) snprintf(out, n, "'%s'", e);
  else if (c < 0x20 || c == 0x7f) snprintf(out, n, "'\\x%02x'", c);
  else if (c < 0x80) snprintf(out, n, "'%c'", c);
  else if (c <= 0xa0 || c == 0xad) snprintf(out, n, "'\\u%04x'", c); /* not printable */
  else snprintf(out, n, "'%c%c'", 0xc0 | (c >> 6), 0x80 | (c & 0x3f)); /* U+00XX in UTF-8 */
}

static int scan_fail_at(go_scan *g, unsigned char c, const char *context) {
  char q[16];
  go_quote_char(c, q, sizeof q);
  snprintf(g->err, g->errlen, "invalid character %s %s", q, context);
  return -1;
}

static int scan_fail(go_scan *g, const char *context) {
  return scan_fail_at(g, g->s[g->i], context);
}

/* The end of the input where a value is still incomplete: Go's scanner is then given one more
 * space, so that a state which cannot take one reports that (a literal, number or escape cut
 * short), the others "unexpected end of JSON input". */
static int scan_end_in(go_scan *g, const char *context) { return scan_fail_at(g, ' ', context); }

static int scan_eof(go_scan *g) {
  snprintf(g->err, g->errlen, "unexpected end of JSON input");
  return -1;
}

static int at_end(const go_scan *g) { return g->i >= g->n; }

static void scan_ws(go_scan *g) {
  while (!at_end(g) && (g->s[g->i] == ' ' || g->s[g->i] == '\t' || g->s[g->i] == '\r' ||
                        g->s[g->i] == '\n'))
    g->i++;
}

static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

static int is_hex(unsigned char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int scan_string(go_scan *g) {
  g->i++; /* the opening quote */
  while (!at_end(g)) {
    unsigned char c = g->s[g->i];
    if (c == '"') {
      g->i++;
      return 0;
    }
    if (c < 0x20) return scan_fail(g, "in string literal");
    g->i++;
    if (c != '\\') continue;
    if (at_end(g)) return scan_end_in(g, "in string escape code");
    c = g->s[g->i];
    if (c == 'u') {
      g->i++;
      for (int k = 0; k < 4; k++, g->i++) {
        if (at_end(g)) return scan_end_in(g, "in \\u hexadecimal character escape");
        if (!is_hex(g->s[g->i])) return scan_fail(g, "in \\u hexadecimal character escape");
      }
      continue;
    }
    if (!c || !strchr("bfnrt\\/\"", c)) return scan_fail(g, "in string escape code");
    g->i++;
  }
  return scan_eof(g);
}

/* A number ends at the first byte that cannot continue it; the caller judges that byte. */
static int scan_number(go_scan *g) {
  if (g->s[g->i] == '-') {
    g->i++;
    if (at_end(g)) return scan_end_in(g, "in numeric literal");
    if (!is_digit(g->s[g->i])) return scan_fail(g, "in numeric literal");
  }
  if (g->s[g->i] == '0') g->i++;
  else
    while (!at_end(g) && is_digit(g->s[g->i])) g->i++;
  if (!at_end(g) && g->s[g->i] == '.') {
    g->i++;
    if (at_end(g)) return scan_end_in(g, "after decimal point in numeric literal");
    if (!is_digit(g->s[g->i])) return scan_fail(g, "after decimal point in numeric literal");
    while (!at_end(g) && is_digit(g->s[g->i])) g->i++;
  }
  if (!at_end(g) && (g->s[g->i] == 'e' || g->s[g->i] == 'E')) {
    g->i++;
    if (!at_end(g) && (g->s[g->i] == '+' || g->s[g->i] == '-')) g->i++;
    if (at_end(g)) return scan_end_in(g, "in exponent of numeric literal");
    if (!is_digit(g->s[g->i])) return scan_fail(g, "in exponent of numeric literal");
    while (!at_end(g) && is_digit(g->s[g->i])) g->i++;
  }
  return 0;
}

static int scan_literal(go_scan *g, const char *word) {
  for (size_t k = 0; word[k]; k++, g->i++) {
    if (k && (at_end(g) || g->s[g->i] != (unsigned char)word[k])) {
      char ctx[48];
      snprintf(ctx, sizeof ctx, "in literal %s (expecting '%c')", word, word[k]);
      return at_end(g) ? scan_end_in(g, ctx) : scan_fail(g, ctx);
    }
  }
  return 0;
}

static int scan_value(go_scan *g);

static int scan_container(go_scan *g) {
  int obj = g->s[g->i] == '{';
  unsigned char close = obj ? '}' : ']';
  if (++g->depth > GO_MAX_DEPTH) return scan_fail(g, "exceeded max depth");
  g->i++;
  scan_ws(g);
  if (at_end(g)) return scan_eof(g);
  if (g->s[g->i] == close) {
    g->i++;
    g->depth--;
    return 0;
  }
  for (;;) {
    if (obj) {
      scan_ws(g);
      if (at_end(g)) return scan_eof(g);
      if (g->s[g->i] != '"') return scan_fail(g, "looking for beginning of object key string");
      if (scan_string(g) != 0) return -1;
      scan_ws(g);
      if (at_end(g)) return scan_eof(g);
      if (g->s[g->i] != ':') return scan_fail(g, "after object key");
      g->i++;
    }
    if (scan_value(g) != 0) return -1;
    scan_ws(g);
    if (at_end(g)) return scan_eof(g);
    if (g->s[g->i] == ',') {
      g->i++;
      continue;
    }
    if (g->s[g->i] == close) {
      g->i++;
      g->depth--;
      return 0;
    }
    return scan_fail(g, obj ? "after object key:value pair" : "after array element");
  }
}

static int scan_value(go_scan *g) {
  scan_ws(g);
  if (at_end(g)) return scan_eof(g);
  unsigned char c = g->s[g->i];
  if (c == '{' || c == '[') return scan_container(g);
  if (c == '"') return scan_string(g);
  if (c == 't') return scan_literal(g, "true");
  if (c == 'f') return scan_literal(g, "false");
  if (c == 'n') return scan_literal(g, "null");
  if (c == '-' || is_digit(c)) return scan_number(g);
  return scan_fail(g, "looking for beginning of value");
}

/* 0 when s is one JSON value (and whitespace), else -1 with Go's error text in err. */
static int go_json_check(const char *s, size_t n, char *err, size_t errlen) {
  go_scan g = {(const unsigned char *)s, n, 0, 0, err, errlen};
  if (scan_value(&g) != 0) return -1;
  scan_ws(&g);
  if (!at_end(&g)) return scan_fail(&g, "after top-level value");
  return 0;
}

/* The length of the valid UTF-8 sequence at p (1-4), 0 when p does not start one. */
static size_t utf8_seq(const unsigned char *p) {
  size_t n = 0;
  unsigned cp = 0;
  if (*p < 0x80) return 1;
  if (*p >= 0xc2 && *p <= 0xdf) n = 2, cp = *p & 0x1fu;
  else if (*p >= 0xe0 && *p <= 0xef) n = 3, cp = *p & 0x0fu;
  else if (*p >= 0xf0 && *p <= 0xf4) n = 4, cp = *p & 0x07u;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0; /* also stops at a terminating NUL */
    cp = cp << 6 | (p[i] & 0x3fu);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
      (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return n;
}

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
    } else if ((n = utf8_seq(p)) == 0) {
      proto_v2_buf_adds(out, "\xef\xbf\xbd");
      p++;
      continue;
    }
    proto_v2_buf_add(out, (const char *)p, n);
    p += n;
  }
}

/* The body as a yajl tree, or NULL with the error json.Unmarshal would give in err. */
static yajl_val parse_body(const proto_v2_resp *r, char *err, size_t errlen) {
  const char *body = r->body ? r->body : "";
  if (go_json_check(body, r->body_len, err, errlen) != 0) return NULL;
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

typedef struct go_dec {
  int failed;
  char err[512];
} go_dec;

typedef struct go_strs {
  int non_nil;
  char **v;
  size_t n;
} go_strs;

typedef struct go_perms { /* client.Permissions{KV rwPermission} */
  go_strs read, write;
} go_perms;

typedef struct go_role { /* client.Role */
  char *name;
  go_perms perms;
  int has_grant, has_revoke; /* the *Permissions pointers are not nil */
  go_perms grant, revoke;
} go_role;

static void strs_free(go_strs *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
  memset(s, 0, sizeof *s);
}

static void perms_free(go_perms *p) {
  strs_free(&p->read);
  strs_free(&p->write);
}

static void role_free(go_role *r) {
  free(r->name);
  perms_free(&r->perms);
  perms_free(&r->grant);
  perms_free(&r->revoke);
  memset(r, 0, sizeof *r);
}

/* Appends a copy of s (NULL: ""); the slice becomes non-nil. */
static void strs_add(go_strs *l, const char *s) {
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
static void dec_fail(go_dec *d, yajl_val v, const char *strct, const char *path, const char *type) {
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

static yajl_val field(yajl_val o, const char *name) {
  yajl_val found = NULL;
  for (size_t i = 0; i < o->u.object.len; i++)
    if (strcasecmp(o->u.object.keys[i], name) == 0) found = o->u.object.values[i];
  return found;
}

static void dec_string(go_dec *d, yajl_val v, const char *strct, const char *path, char **out) {
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

static void dec_strs(go_dec *d, yajl_val v, const char *strct, const char *path, go_strs *out) {
  if (is_null(v)) return;
  if (!YAJL_IS_ARRAY(v)) {
    dec_fail(d, v, strct, path, "[]string");
    return;
  }
  strs_free(out);
  out->non_nil = 1;
  for (size_t i = 0; i < v->u.array.len; i++) {
    char *s = NULL;
    dec_string(d, v->u.array.values[i], strct, path, &s);
    strs_add(out, s);
    free(s);
  }
}

static void dec_perms(go_dec *d, yajl_val v, const char *strct, const char *path, go_perms *p) {
  char kv[256], sub[300];
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, strct, path, "client.Permissions");
    return;
  }
  sub_path(kv, sizeof kv, path, "kv");
  yajl_val rw = field(v, "kv");
  if (is_null(rw)) return;
  if (!YAJL_IS_OBJECT(rw)) {
    dec_fail(d, rw, "Permissions", kv, "client.rwPermission");
    return;
  }
  sub_path(sub, sizeof sub, kv, "read");
  dec_strs(d, field(rw, "read"), "rwPermission", sub, &p->read);
  sub_path(sub, sizeof sub, kv, "write");
  dec_strs(d, field(rw, "write"), "rwPermission", sub, &p->write);
}

/* A client.Role at path of strct (both NULL: the top-level value). */
static void dec_role(go_dec *d, yajl_val v, const char *strct, const char *path, go_role *r) {
  char sub[256];
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, strct, path, "client.Role");
    return;
  }
  sub_path(sub, sizeof sub, path, "role");
  dec_string(d, field(v, "role"), "Role", sub, &r->name);
  sub_path(sub, sizeof sub, path, "permissions");
  dec_perms(d, field(v, "permissions"), "Role", sub, &r->perms);
  yajl_val g = field(v, "grant");
  if (!is_null(g)) {
    r->has_grant = 1;
    sub_path(sub, sizeof sub, path, "grant");
    dec_perms(d, g, "Role", sub, &r->grant);
  }
  g = field(v, "revoke");
  if (!is_null(g)) {
    r->has_revoke = 1;
    sub_path(sub, sizeof sub, path, "revoke");
    dec_perms(d, g, "Role", sub, &r->revoke);
  }
}

/* The role names of a []client.Role at path of strct, appended to names. */
static void dec_role_names(go_dec *d, yajl_val v, const char *strct, const char *path,
                           go_strs *names) {
  if (is_null(v)) return;
  if (!YAJL_IS_ARRAY(v)) {
    dec_fail(d, v, strct, path, "[]client.Role");
    return;
  }
  for (size_t i = 0; i < v->u.array.len; i++) {
    go_role r = {0};
    dec_role(d, v->u.array.values[i], strct, path, &r);
    strs_add(names, r.name);
    role_free(&r);
  }
}

/* client.User: user, password, roles, grant, revoke (the strings of the roles). */
static void dec_user(go_dec *d, yajl_val v, char **user, go_strs *roles) {
  go_strs skip = {0};
  char *pw = NULL;
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "client.User");
    return;
  }
  dec_string(d, field(v, "user"), "User", "user", user);
  dec_string(d, field(v, "password"), "User", "password", &pw);
  dec_strs(d, field(v, "roles"), "User", "roles", roles);
  dec_strs(d, field(v, "grant"), "User", "grant", &skip);
  strs_free(&skip);
  dec_strs(d, field(v, "revoke"), "User", "revoke", &skip);
  strs_free(&skip);
  free(pw);
}

/* client.UserRoles: user, and roles as role objects. */
static void dec_user_roles(go_dec *d, yajl_val v, char **user, go_strs *names) {
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "client.UserRoles");
    return;
  }
  dec_string(d, field(v, "user"), "UserRoles", "user", user);
  dec_role_names(d, field(v, "roles"), "UserRoles", "roles", names);
}

/* ListUsers' struct{Users []userListEntry}: the user names. */
static void dec_user_list(go_dec *d, yajl_val v, go_strs *names) {
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "struct { Users []client.userListEntry \"json:\\\"users\\\"\" }");
    return;
  }
  yajl_val us = field(v, "users");
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
      go_strs skip = {0};
      dec_string(d, field(e, "user"), "userListEntry", "users.user", &name);
      dec_role_names(d, field(e, "roles"), "userListEntry", "users.roles", &skip);
      strs_free(&skip);
    }
    strs_add(names, name);
    free(name);
  }
}

/* ListRoles' struct{Roles []Role}: the role names. */
static void dec_role_list(go_dec *d, yajl_val v, go_strs *names) {
  if (is_null(v)) return;
  if (!YAJL_IS_OBJECT(v)) {
    dec_fail(d, v, NULL, NULL, "struct { Roles []client.Role \"json:\\\"roles\\\"\" }");
    return;
  }
  dec_role_names(d, field(v, "roles"), "", "roles", names);
}

/* reflect.DeepEqual of two client.Role values. */
static int strs_equal(const go_strs *a, const go_strs *b) {
  if (a->non_nil != b->non_nil || a->n != b->n) return 0;
  for (size_t i = 0; i < a->n; i++)
    if (strcmp(a->v[i], b->v[i]) != 0) return 0;
  return 1;
}

static int perms_equal(const go_perms *a, const go_perms *b) {
  return strs_equal(&a->read, &b->read) && strs_equal(&a->write, &b->write);
}

static int role_equal(const go_role *a, const go_role *b) {
  return strcmp(a->name ? a->name : "", b->name ? b->name : "") == 0 &&
         perms_equal(&a->perms, &b->perms) && a->has_grant == b->has_grant &&
         (!a->has_grant || perms_equal(&a->grant, &b->grant)) && a->has_revoke == b->has_revoke &&
         (!a->has_revoke || perms_equal(&a->revoke, &b->revoke));
}

/* ------------------------------------------------------------------ request bodies */

/* A string for yajl. Go's json.Marshal writes each byte that is not valid UTF-8 as the escape
 * \ufffd: such a byte is given to yajl as a NUL (which a C string cannot hold otherwise), which
 * yajl writes as \u0000 and go_escapes turns into \ufffd. */
static void gen_str(yajl_gen g, const char *s) {
  const unsigned char *p = (const unsigned char *)s;
  proto_v2_buf b = {0};
  proto_v2_buf_add(&b, "", 0);
  while (*p) {
    size_t n = utf8_seq(p);
    if (n) {
      proto_v2_buf_add(&b, (const char *)p, n);
      p += n;
    } else {
      proto_v2_buf_add(&b, "", 1);
      p++;
    }
  }
  if (b.oom) yajl_gen_string(g, (const unsigned char *)"", 0);
  else yajl_gen_string(g, (const unsigned char *)b.s, b.len);
  proto_v2_buf_free(&b);
}

#define GEN_KEY(g, lit) yajl_gen_string((g), (const unsigned char *)(lit), sizeof(lit) - 1)

/* yajl's text with the escapes Go's encoder chooses instead of yajl's (the same JSON value):
 * "<", ">", "&", U+2028 and U+2029 escaped, \b and \f as \u0008 and \u000c, lower-case hex;
 * and \u0000 (gen_str's mark of a byte that is not UTF-8) as \ufffd. malloc'd; NULL on
 * out-of-memory. */
static char *go_escapes(const unsigned char *s, size_t n) {
  proto_v2_buf b = {0};
  proto_v2_buf_add(&b, "", 0);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = s[i];
    if (c == '\\' && i + 1 < n) {
      unsigned char e = s[++i];
      if (e == 'b') {
        proto_v2_buf_adds(&b, "\\u0008");
      } else if (e == 'f') {
        proto_v2_buf_adds(&b, "\\u000c");
      } else if (e == 'u' && i + 4 < n) {
        char u[7] = {'\\', 'u', 0, 0, 0, 0, 0};
        for (int k = 0; k < 4; k++) {
          unsigned char h = s[++i];
          u[2 + k] = (char)(h >= 'A' && h <= 'F' ? h - 'A' + 'a' : h);
        }
        proto_v2_buf_add(&b, strcmp(u, "\\u0000") == 0 ? "\\ufffd" : u, 6);
      } else {
        char pair[2] = {'\\', (char)e};
        proto_v2_buf_add(&b, pair, 2);
      }
    } else if (c == '<' || c == '>' || c == '&') {
      char u[7];
      snprintf(u, sizeof u, "\\u%04x", c);
      proto_v2_buf_adds(&b, u);
    } else if (c == 0xe2 && i + 2 < n && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
      proto_v2_buf_adds(&b, s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029");
      i += 2;
    } else {
      proto_v2_buf_add(&b, (const char *)&c, 1);
    }
  }
  if (b.oom) {
    proto_v2_buf_free(&b);
    return NULL;
  }
  return b.s;
}

static char *gen_finish(yajl_gen g) {
  const unsigned char *buf;
  size_t len;
  char *s = NULL;
  if (yajl_gen_get_buf(g, &buf, &len) == yajl_gen_status_ok) s = go_escapes(buf, len);
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
  yajl_val t = parse_body(r, out, n);
  if (!t) return;
  go_dec d = {0};
  char *msg = NULL;
  if (!is_null(t) && !YAJL_IS_OBJECT(t)) dec_fail(&d, t, NULL, NULL, "client.authError");
  else if (!is_null(t)) dec_string(&d, field(t, "message"), "authError", "message", &msg);
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
static int user_answer(const proto_v2_resp *r, char **user, go_strs *roles) {
  char err[512];
  yajl_val t = parse_body(r, err, sizeof err);
  if (!t) return fail_line(err);
  go_dec d = {0};
  dec_user(&d, t, user, roles);
  if (d.failed) {
    go_dec d2 = {0};
    char *user2 = NULL;
    dec_user_roles(&d2, t, &user2, roles);
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
static int role_answer(const proto_v2_resp *r, go_role *role, char *err, size_t errlen) {
  if (r->status != 200) {
    answer_error(r, err, errlen);
    return -1;
  }
  yajl_val t = parse_body(r, err, errlen);
  if (!t) return -1;
  go_dec d = {0};
  dec_role(&d, t, NULL, NULL, role);
  yajl_tree_free(t);
  if (d.failed) {
    snprintf(err, errlen, "%s", d.err);
    return -1;
  }
  return 0;
}

/* GET or PUT a role and read the answer: 0 with *role, or the exit code after printing. */
static int role_request(ctl_ctx *ctx, const char *method, const char *name, const char *body,
                        go_role *role) {
  proto_v2_resp r;
  int rc = auth_do(ctx, method, "roles", name, body, body != NULL, &r);
  if (rc != 0) return rc;
  char err[512];
  rc = role_answer(&r, role, err, sizeof err) == 0 ? 0 : fail_line(err);
  proto_v2_resp_free(&r);
  return rc;
}

/* ------------------------------------------------------------------ user */

int ctl_cmd_user_list(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc != 0) return fail_line("No arguments accepted");
  int rc = open_api(ctx);
  if (rc != 0) return rc;
  proto_v2_resp r;
  if ((rc = auth_do(ctx, "GET", "users", NULL, NULL, 1, &r)) != 0) return rc;
  if (r.status != 200) {
    rc = fail_answer(&r);
    proto_v2_resp_free(&r);
    return rc;
  }
  char err[512];
  yajl_val t = parse_body(&r, err, sizeof err);
  proto_v2_resp_free(&r);
  if (!t) return fail_line(err);
  go_dec d = {0};
  go_strs names = {0};
  dec_user_list(&d, t, &names);
  yajl_tree_free(t);
  if (d.failed) rc = fail_line(d.err);
  else
    for (size_t i = 0; i < names.n; i++) printf("%s\n", names.v[i]);
  strs_free(&names);
  return rc;
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
                        char **user, go_strs *roles) {
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
  go_strs roles = {0};
  rc = user_request(ctx, "GET", a->argv[0], NULL, &user, &roles);
  if (rc == 0) {
    printf("User: %s\nRoles: ", user ? user : "");
    for (size_t i = 0; i < roles.n; i++) printf("%s%s", i ? " " : "", roles.v[i]);
    printf("\n");
  }
  free(user);
  strs_free(&roles);
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
  go_strs roles = {0};
  rc = user_request(ctx, "PUT", name, body, &user, &roles);
  free(body);
  free(user);
  strs_free(&roles);
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
  go_strs got = {0};
  rc = user_request(ctx, "PUT", name, body, &user, &got);
  free(body);
  free(user);
  strs_free(&got);
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
  if (a->argc != 0) return fail_line("No arguments accepted");
  int rc = open_api(ctx);
  if (rc != 0) return rc;
  proto_v2_resp r;
  if ((rc = auth_do(ctx, "GET", "roles", NULL, NULL, 1, &r)) != 0) return rc;
  if (r.status != 200) { /* ListRoles does not read error bodies */
    char msg[64];
    snprintf(msg, sizeof msg, "unexpected status code %ld", r.status);
    proto_v2_resp_free(&r);
    return fail_line(msg);
  }
  char err[512];
  yajl_val t = parse_body(&r, err, sizeof err);
  proto_v2_resp_free(&r);
  if (!t) return fail_line(err);
  go_dec d = {0};
  go_strs names = {0};
  dec_role_list(&d, t, &names);
  yajl_tree_free(t);
  if (d.failed) rc = fail_line(d.err);
  else
    for (size_t i = 0; i < names.n; i++) printf("%s\n", names.v[i]);
  strs_free(&names);
  return rc;
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
    go_role cur = {0};
    char e[512];
    int exists = role_answer(&r, &cur, e, sizeof e) == 0;
    role_free(&cur);
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
  go_role role = {0};
  rc = role_request(ctx, "GET", a->argv[0], NULL, &role);
  if (rc == 0) {
    printf("Role: %s\nKV Read:\n", role.name ? role.name : "");
    for (size_t i = 0; i < role.perms.read.n; i++) printf("\t%s\n", role.perms.read.v[i]);
    printf("KV Write:\n");
    for (size_t i = 0; i < role.perms.write.n; i++) printf("\t%s\n", role.perms.write.v[i]);
  }
  role_free(&role);
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
  go_role cur = {0}, upd = {0};
  char *body = NULL;
  rc = role_request(ctx, "GET", name, NULL, &cur);
  if (rc == 0) {
    body = role_body(name, grant ? "grant" : "revoke", path, read || rw, write || rw);
    rc = body ? role_request(ctx, "PUT", name, body, &upd) : fail_line("out of memory");
  }
  if (rc == 0) {
    if (role_equal(&upd, &cur))
      printf("%s", grant ? "Role unchanged; already granted" : "Role unchanged; already revoked");
    printf("Role %s updated\n", name);
  }
  free(body);
  role_free(&cur);
  role_free(&upd);
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
