/* go_json: Go's encoding/json syntax check, with Go's error texts ("invalid character 'x'
 * looking for beginning of value", "unexpected end of JSON input", ...): etcd's and
 * etcdctl's answers to a body that is not JSON quote them, and quorumd and quorumctl answer
 * the same. */
#include "proto/go_json.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* json.Unmarshal first scans the whole input; its first syntax error is what etcdctl prints
 * for an answer that is not JSON (a 405 "Method Not Allowed", a proxy's HTML page, ...). */

#define GO_MAX_DEPTH 10000

typedef struct go_scan {
  const unsigned char *s;
  size_t n, i;
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

/* An object's key and its colon (at the key's opening quote, or where one should be). */
static int scan_key(go_scan *g) {
  scan_ws(g);
  if (at_end(g)) return scan_eof(g);
  if (g->s[g->i] != '"') return scan_fail(g, "looking for beginning of object key string");
  if (scan_string(g) != 0) return -1;
  scan_ws(g);
  if (at_end(g)) return scan_eof(g);
  if (g->s[g->i] != ':') return scan_fail(g, "after object key");
  g->i++;
  return 0;
}

/* One JSON value. Iterative: `open` holds one byte per container still open, up to Go's
 * depth limit, so that nesting costs no C stack (the recursive version overflowed 8 MiB of
 * stack at 5,790 levels in a libFuzzer build: tests/fuzz/fuzz_v2_request). */
static int scan_value(go_scan *g) {
  unsigned char open[GO_MAX_DEPTH];
  size_t depth = 0;
  for (;;) {
    /* a value is expected */
    scan_ws(g);
    if (at_end(g)) return scan_eof(g);
    unsigned char c = g->s[g->i];
    int e = 0, opened = 0;
    if (c == '{' || c == '[') {
      if (depth >= GO_MAX_DEPTH) return scan_fail(g, "exceeded max depth");
      open[depth++] = c;
      g->i++;
      scan_ws(g);
      if (at_end(g)) return scan_eof(g);
      if (g->s[g->i] == (c == '{' ? '}' : ']')) {
        g->i++;
        depth--;
      } else {
        if (c == '{' && scan_key(g) != 0) return -1;
        opened = 1;
      }
    } else if (c == '"') {
      e = scan_string(g);
    } else if (c == 't') {
      e = scan_literal(g, "true");
    } else if (c == 'f') {
      e = scan_literal(g, "false");
    } else if (c == 'n') {
      e = scan_literal(g, "null");
    } else if (c == '-' || is_digit(c)) {
      e = scan_number(g);
    } else {
      return scan_fail(g, "looking for beginning of value");
    }
    if (e) return -1;
    if (opened) continue; /* the container's first value */
    /* after a value: close the containers it ends, or go on after a comma */
    for (;;) {
      if (depth == 0) return 0;
      int obj = open[depth - 1] == '{';
      scan_ws(g);
      if (at_end(g)) return scan_eof(g);
      if (g->s[g->i] == ',') {
        g->i++;
        if (obj && scan_key(g) != 0) return -1;
        break;
      }
      if (g->s[g->i] == (obj ? '}' : ']')) {
        g->i++;
        depth--;
        continue;
      }
      return scan_fail(g, obj ? "after object key:value pair" : "after array element");
    }
  }
}

/* 0 when s is one JSON value (and whitespace), else -1 with Go's error text in err. */
int proto_go_json_check(const char *s, size_t n, char *err, size_t errlen) {
  go_scan g = {(const unsigned char *)s, n, 0, err, errlen};
  if (scan_value(&g) != 0) return -1;
  scan_ws(&g);
  if (!at_end(&g)) return scan_fail(&g, "after top-level value");
  return 0;
}

yajl_val proto_go_json_field(yajl_val obj, const char *name) {
  yajl_val found = NULL;
  if (!YAJL_IS_OBJECT(obj)) return NULL;
  for (size_t i = 0; i < obj->u.object.len; i++)
    if (!strcasecmp(obj->u.object.keys[i], name)) found = obj->u.object.values[i];
  return found;
}
