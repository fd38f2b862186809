/* config_file: owns reading etcd 3.4's YAML configuration file into settings (config_file.h).
 * libyaml loads the document; plain scalars are typed as go-yaml v2, which etcd 3.4 uses,
 * types them (YAML 1.1), so that a value etcd reads as a number or a boolean is one here. */
#include "daemon/config_file.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define TAG_PREFIX "tag:yaml.org,2002:"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return rc;
}

static int is_one_of(const char *s, const char *const *words) {
  for (; *words; words++)
    if (strcmp(s, *words) == 0) return 1;
  return 0;
}

static const char *const yaml_true[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE",
                                        "on", "On", "ON", NULL};
static const char *const yaml_false[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE",
                                         "off", "Off", "OFF", NULL};
static const char *const yaml_null[] = {"", "~", "null", "Null", "NULL", NULL};

/* YAML 1.1 integer syntax (go-yaml v2): [-+]? then 0b..., 0x..., 0 octal or decimal, with '_'
 * between digits. Writes the digits without sign or '_' into buf; returns the base, or 0. */
static int int_syntax(const char *s, char *buf, size_t len, int *neg) {
  *neg = 0;
  if (*s == '-' || *s == '+') *neg = *s++ == '-';
  int base = 10;
  const char *digits = "0123456789";
  if (s[0] == '0' && (s[1] == 'b' || s[1] == 'x')) {
    base = s[1] == 'b' ? 2 : 16;
    digits = s[1] == 'b' ? "01" : "0123456789abcdefABCDEF";
    s += 2;
  } else if (s[0] == '0' && s[1]) {
    base = 8;
    digits = "01234567";
    s++;
  }
  size_t n = 0;
  for (; *s; s++) {
    if (*s == '_') continue;
    if (!strchr(digits, *s) || n + 1 >= len) return 0;
    buf[n++] = *s;
  }
  buf[n] = '\0';
  return n ? base : 0;
}

static int float_syntax(const char *s) {
  if (is_one_of(s, (const char *const[]){".inf", ".Inf", ".INF", "+.inf", "-.inf", ".nan",
                                         ".NaN", ".NAN", NULL}))
    return 1;
  const char *p = s + (*s == '-' || *s == '+');
  int digits = 0, dot = 0;
  for (; *p && *p != 'e' && *p != 'E'; p++) {
    if (*p >= '0' && *p <= '9') digits++;
    else if (*p == '.' && !dot) dot = 1;
    else if (*p != '_') return 0;
  }
  if (!digits) return 0; /* (with neither a dot nor an exponent, it was an int) */
  if (*p) { /* exponent */
    p++;
    if (*p == '-' || *p == '+') p++;
    if (!*p) return 0;
    for (; *p; p++)
      if (*p < '0' || *p > '9') return 0;
  }
  return 1;
}

static config_yaml_type resolve_plain(const char *s) {
  if (is_one_of(s, yaml_null)) return CONFIG_YAML_NULL;
  if (is_one_of(s, yaml_true) || is_one_of(s, yaml_false)) return CONFIG_YAML_BOOL;
  char buf[80];
  int neg;
  if (int_syntax(s, buf, sizeof buf, &neg)) return CONFIG_YAML_INT;
  if (float_syntax(s)) return CONFIG_YAML_FLOAT;
  return CONFIG_YAML_STR;
}

static config_yaml_type scalar_type(const yaml_node_t *n) {
  const char *s = (const char *)n->data.scalar.value;
  const char *tag = (const char *)n->tag;
  if (tag && strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0 &&
      strcmp(tag + strlen(TAG_PREFIX), "str") != 0) { /* an explicit !!int, !!bool, ... */
    const char *t = tag + strlen(TAG_PREFIX);
    if (strcmp(t, "int") == 0) return CONFIG_YAML_INT;
    if (strcmp(t, "float") == 0) return CONFIG_YAML_FLOAT;
    if (strcmp(t, "bool") == 0) return CONFIG_YAML_BOOL;
    if (strcmp(t, "null") == 0) return CONFIG_YAML_NULL;
  }
  if (n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE) return CONFIG_YAML_STR;
  return resolve_plain(s);
}

int config_file_uint(const config_file_value *v, uint64_t *out) {
  if (!v->text || (v->type != CONFIG_YAML_INT && v->type != CONFIG_YAML_FLOAT)) return -EINVAL;
  char buf[80];
  int neg;
  int base = int_syntax(v->text, buf, sizeof buf, &neg);
  if (base) {
    errno = 0;
    char *end;
    unsigned long long x = strtoull(buf, &end, base);
    if (errno == ERANGE) return -ERANGE;
    if (*end || (neg && x)) return -EINVAL;
    *out = (uint64_t)x;
    return 0;
  }
  size_t n = 0;
  for (const char *p = v->text; *p && n + 1 < sizeof buf; p++)
    if (*p != '_') buf[n++] = *p;
  buf[n] = '\0';
  char *end;
  double d = strtod(buf, &end);
  if (*end || !isfinite(d) || d < 0 || d != floor(d)) return -EINVAL;
  if (d >= 18446744073709551616.0) return -ERANGE;
  *out = (uint64_t)d;
  return 0;
}

int config_file_bool(const config_file_value *v) {
  if (!v->text || v->type != CONFIG_YAML_BOOL) return -1;
  if (is_one_of(v->text, yaml_true)) return 1;
  if (is_one_of(v->text, yaml_false)) return 0;
  return -1;
}

typedef struct reader {
  const char *path;
  yaml_document_t *doc;
  config_file_fn fn;
  void *arg;
  char *err;
  size_t errlen;
} reader;

static unsigned line_of(const yaml_node_t *n) { return (unsigned)n->start_mark.line + 1; }

/* One setting: a scalar, null, or a sequence of scalars (joined by ','). Messages give the
 * key's line (an alias's value starts where its anchor is). */
static int emit(reader *r, const char *key, const yaml_node_t *k, const yaml_node_t *val) {
  config_file_value v = {.key = key, .line = line_of(k)};
  char *joined = NULL;
  if (val->type == YAML_SCALAR_NODE) {
    v.type = scalar_type(val);
    v.text = v.type == CONFIG_YAML_NULL ? NULL : (const char *)val->data.scalar.value;
  } else if (val->type == YAML_SEQUENCE_NODE) {
    yaml_node_item_t *first = val->data.sequence.items.start, *top = val->data.sequence.items.top;
    size_t len = 1;
    for (yaml_node_item_t *i = first; i < top; i++) {
      yaml_node_t *item = yaml_document_get_node(r->doc, *i);
      if (!item || item->type != YAML_SCALAR_NODE)
        return fail(r->err, r->errlen, -EINVAL,
                    "%s, line %u: %s: a list may hold only single values", r->path,
                    item ? line_of(item) : v.line, key);
      len += item->data.scalar.length + 1;
    }
    if (!(joined = malloc(len))) return fail(r->err, r->errlen, -ENOMEM, "out of memory");
    size_t o = 0;
    for (yaml_node_item_t *i = first; i < top; i++) {
      yaml_node_t *item = yaml_document_get_node(r->doc, *i);
      if (o) joined[o++] = ',';
      memcpy(joined + o, item->data.scalar.value, item->data.scalar.length);
      o += item->data.scalar.length;
    }
    joined[o] = '\0';
    v.type = CONFIG_YAML_LIST;
    v.text = joined;
  } else {
    return fail(r->err, r->errlen, -EINVAL,
                "%s, line %u: %s: a mapping where etcd takes a single value", r->path, v.line,
                key);
  }
  int rc = r->fn(r->arg, &v, r->err, r->errlen);
  free(joined);
  return rc;
}

/* The keys of client-transport-security / peer-transport-security, and the flags they set. */
static const char *const tls_keys[][3] = {
    {"cert-file", "cert-file", "peer-cert-file"},
    {"key-file", "key-file", "peer-key-file"},
    {"client-cert-auth", "client-cert-auth", "peer-client-cert-auth"},
    {"trusted-ca-file", "trusted-ca-file", "peer-trusted-ca-file"},
    {"auto-tls", "auto-tls", "peer-auto-tls"},
};

static int read_tls(reader *r, const char *name, unsigned line, int peer, const yaml_node_t *map) {
  if (map->type == YAML_SCALAR_NODE && scalar_type(map) == CONFIG_YAML_NULL) return 0;
  if (map->type != YAML_MAPPING_NODE)
    return fail(r->err, r->errlen, -EINVAL,
                "%s, line %u: %s must be a mapping (cert-file, key-file, client-cert-auth, "
                "trusted-ca-file, auto-tls)", r->path, line, name);
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
    yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
    if (!k || !v || k->type != YAML_SCALAR_NODE)
      return fail(r->err, r->errlen, -EINVAL, "%s, line %u: %s: a key must be a name", r->path,
                  k ? line_of(k) : line, name);
    const char *key = (const char *)k->data.scalar.value;
    const char *flag = NULL;
    for (size_t i = 0; i < sizeof tls_keys / sizeof tls_keys[0]; i++)
      if (strcmp(key, tls_keys[i][0]) == 0) flag = tls_keys[i][1 + peer];
    char unknown[160];
    if (!flag) {
      snprintf(unknown, sizeof unknown, "%s.%s", name, key);
      flag = unknown;
    }
    int rc = emit(r, flag, k, v);
    if (rc < 0) return rc;
  }
  return 0;
}

static int read_root(reader *r, const yaml_node_t *root) {
  if (root->type == YAML_SCALAR_NODE && scalar_type(root) == CONFIG_YAML_NULL) return 0;
  if (root->type != YAML_MAPPING_NODE)
    return fail(r->err, r->errlen, -EINVAL,
                "%s, line %u: the file must be a mapping of settings (name: value)", r->path,
                line_of(root));
  yaml_node_pair_t *end = root->data.mapping.pairs.top;
  for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < end; p++) {
    yaml_node_t *k = yaml_document_get_node(r->doc, p->key);
    yaml_node_t *v = yaml_document_get_node(r->doc, p->value);
    if (!k || !v || k->type != YAML_SCALAR_NODE)
      return fail(r->err, r->errlen, -EINVAL, "%s, line %u: a key must be a name", r->path,
                  k ? line_of(k) : line_of(root));
    const char *key = (const char *)k->data.scalar.value;
    int rc;
    if (strcmp(key, "client-transport-security") == 0)
      rc = read_tls(r, key, line_of(k), 0, v);
    else if (strcmp(key, "peer-transport-security") == 0)
      rc = read_tls(r, key, line_of(k), 1, v);
    else
      rc = emit(r, key, k, v);
    if (rc < 0) return rc;
  }
  return 0;
}

int config_file_read(const char *path, config_file_fn fn, void *arg, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    return fail(err, errlen, -e, "cannot read the configuration file %s: %s", path, strerror(e));
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  if (!yaml_parser_initialize(&parser)) {
    fclose(f);
    return fail(err, errlen, -ENOMEM, "out of memory");
  }
  yaml_parser_set_input_file(&parser, f);
  int rc = 0;
  if (!yaml_parser_load(&parser, &doc)) {
    if (parser.error == YAML_READER_ERROR && ferror(f))
      rc = fail(err, errlen, -EIO, "cannot read the configuration file %s", path);
    else
      rc = fail(err, errlen, -EINVAL, "%s, line %zu, column %zu: not YAML: %s%s%s", path,
                parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                parser.problem ? parser.problem : "a syntax error",
                parser.context ? " " : "", parser.context ? parser.context : "");
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
  }
  yaml_node_t *root = yaml_document_get_root_node(&doc);
  if (root) {
    reader r = {path, &doc, fn, arg, err, errlen};
    rc = read_root(&r, root);
  }
  yaml_document_delete(&doc);
  yaml_parser_delete(&parser);
  fclose(f);
  return rc;
}
