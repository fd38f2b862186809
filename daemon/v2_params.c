/* v2_params: /v2/keys parameters, validated in etcd's order (see the header). */
#include "daemon/v2_params.h"

#include <http_parser.h>
#include <string.h>
#include <strings.h>

int v2_parse_u64(const char *s, size_t n, uint64_t *out) {
  uint64_t v = 0;
  if (!n) return -1;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    uint64_t d = (uint64_t)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = v;
  return 0;
}

int v2_parse_bool(const char *s) {
  static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (!strcmp(s, yes[i])) return 1;
    if (!strcmp(s, no[i])) return 0;
  }
  return -1;
}

static int is_form(const http_req *r) {
  const char *ct = "application/x-www-form-urlencoded";
  size_t n = strlen(ct);
  if (r->content_type.len < n || strncasecmp(r->content_type.p, ct, n)) return 0;
  return r->content_type.len == n || r->content_type.p[n] == ';' || r->content_type.p[n] == ' ';
}

/* A parameter's boolean value: 0/1, -1 when invalid (a NUL inside the value included). */
static int param_bool(const http_param *x) {
  return strlen(x->value) == x->value_len ? v2_parse_bool(x->value) : -1;
}

/* A boolean parameter: 0 when absent; -1 when invalid. */
static int get_bool(const v2_params *p, const char *name) {
  const http_param *x = http_params_get(&p->ps, name);
  return x ? param_bool(x) : 0;
}

int v2_params_parse(v2_params *p, const http_req *r) {
  memset(p, 0, sizeof *p);
  p->prev_exist = -1;
  p->value = "";
  /* Form body first: its values win over the query's. Like Go's ParseForm, only PUT, POST
   * and PATCH bodies are read (a DELETE's body is ignored). */
  int body_method = r->method == HTTP_PUT || r->method == HTTP_POST || r->method == HTTP_PATCH;
  if (body_method && r->body_error) {
    p->cause = r->body_error == HTTP_BODY_TOO_LARGE ? "http: POST too large"
                                                    : "http: malformed chunked encoding";
    return 210;
  }
  if (body_method && is_form(r) && r->body.len && http_params_parse(&p->ps, r->body.p, r->body.len)) {
    p->cause = p->ps.error;
    return 210;
  }
  const char *q = r->url.len ? memchr(r->url.p, '?', r->url.len) : NULL;
  if (q && http_params_parse(&p->ps, q + 1, r->url.len - (size_t)(q + 1 - r->url.p))) {
    p->cause = p->ps.error;
    return 210;
  }
  const http_param *x;
  if ((x = http_params_get(&p->ps, "prevIndex")) && v2_parse_u64(x->value, x->value_len, &p->prev_index)) {
    p->cause = "invalid value for \"prevIndex\"";
    return 203;
  }
  if ((x = http_params_get(&p->ps, "waitIndex")) && v2_parse_u64(x->value, x->value_len, &p->wait_index)) {
    p->cause = "invalid value for \"waitIndex\"";
    return 203;
  }
  static const struct {
    const char *name;
    size_t off;
    const char *cause;
  } bools[] = {
      {"recursive", offsetof(v2_params, recursive), "invalid value for \"recursive\""},
      {"sorted", offsetof(v2_params, sorted), "invalid value for \"sorted\""},
      {"wait", offsetof(v2_params, wait), "invalid value for \"wait\""},
      {"dir", offsetof(v2_params, dir), "invalid value for \"dir\""},
      {"quorum", offsetof(v2_params, quorum), "invalid value for \"quorum\""},
      {"stream", offsetof(v2_params, stream), "invalid value for \"stream\""},
  };
  for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++) {
    int v = get_bool(p, bools[i].name);
    if (v < 0) {
      p->cause = bools[i].cause;
      return 209;
    }
    *(int *)((char *)p + bools[i].off) = v;
  }
  if (p->wait && r->method != HTTP_GET) {
    p->cause = "\"wait\" can only be used with GET requests";
    return 209;
  }
  if ((x = http_params_get(&p->ps, "prevValue"))) {
    if (!x->value_len) {
      p->cause = "\"prevValue\" cannot be empty";
      return 201;
    }
    p->prev_value = x->value;
    p->prev_value_len = x->value_len;
  }
  if ((p->no_value_on_success = get_bool(p, "noValueOnSuccess")) < 0) {
    p->cause = "invalid value for \"noValueOnSuccess\"";
    return 209;
  }
  if ((x = http_params_get(&p->ps, "ttl")) && x->value_len) {
    /* A TTL whose nanoseconds overflow int64 is refused (etcd 3.4 silently keeps the key). */
    if (v2_parse_u64(x->value, x->value_len, &p->ttl) || p->ttl > (uint64_t)INT64_MAX / 1000000000ULL) {
      p->cause = "invalid value for \"ttl\"";
      return 202;
    }
    p->has_ttl = 1;
  }
  if ((x = http_params_get(&p->ps, "prevExist"))) {
    if ((p->prev_exist = param_bool(x)) < 0) {
      p->cause = "invalid value for prevExist";
      return 209;
    }
  }
  if ((x = http_params_get(&p->ps, "value"))) {
    p->value = x->value;
    p->value_len = x->value_len;
  }
  if ((x = http_params_get(&p->ps, "refresh"))) {
    if ((p->refresh = param_bool(x)) < 0) {
      p->cause = "invalid value for refresh";
      return 209;
    }
    if (p->refresh && p->value_len) {
      p->cause = "A value was provided on a refresh";
      return 211;
    }
    if (p->refresh && !p->has_ttl) {
      p->cause = "No TTL value set";
      return 212;
    }
  }
  return 0;
}

void v2_params_free(v2_params *p) { http_params_free(&p->ps); }
