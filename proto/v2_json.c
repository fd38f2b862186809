/* v2_json: etcd v2 JSON bodies written with yajl; error code table; time formats. */
#include "proto/v2_json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS 1000000000LL

yajl_gen proto_v2_gen_new(void) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (g) yajl_gen_config(g, yajl_gen_validate_utf8, 0);
  return g;
}

size_t proto_v2_utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) len = 2, min = 0x80;
  else if (c >= 0xe0 && c <= 0xef) len = 3, min = 0x800;
  else if (c >= 0xf0 && c <= 0xf4) len = 4, min = 0x10000;
  else return 0;
  if (n < len) return 0;
  unsigned cp = c & (0x7f >> len);
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80) return 0;
    cp = cp << 6 | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

int proto_v2_utf8_valid(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t l = proto_v2_utf8_seq(u + i, n - i);
    if (!l) return 0;
    i += l;
  }
  return 1;
}

/* The string with each byte that is not UTF-8 replaced by U+FFFD, as yajl writes it (for a
 * map key, which yajl takes only as a string). */
static void gen_str_replaced(yajl_gen g, const unsigned char *u, size_t n) {
  unsigned char stackbuf[512];
  size_t cap = n * 3;
  unsigned char *out = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
  if (!out) {
    yajl_gen_string(g, (const unsigned char *)"", 0);
    return;
  }
  size_t o = 0;
  for (size_t i = 0; i < n;) {
    size_t l = proto_v2_utf8_seq(u + i, n - i);
    if (l) {
      memcpy(out + o, u + i, l);
      o += l;
      i += l;
    } else {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    }
  }
  yajl_gen_string(g, out, o);
  if (out != stackbuf) free(out);
}

/* An ASCII byte that yajl writes as Go does: printable and not HTML-escaped by Go, or one of
 * the escapes both write alike (\" \\ \n \r \t). */
static int same_in_yajl(unsigned c) {
  return (c >= 0x20 && c != '<' && c != '>' && c != '&') || c == '\n' || c == '\r' || c == '\t';
}

static int is_u2028_or_9(const unsigned char *s, size_t l) {
  return l == 3 && s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9);
}

size_t proto_v2_go_quote(const char *s, size_t n, char *dst) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *u = (const unsigned char *)s;
  unsigned char *out = (unsigned char *)dst;
  size_t o = 0;
  out[o++] = '"';
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    if (c < 0x80) {
      i++;
      if (c == '"' || c == '\\') {
        out[o++] = '\\';
        out[o++] = (unsigned char)c;
      } else if (c == '\n' || c == '\r' || c == '\t') {
        out[o++] = '\\';
        out[o++] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
      } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
        memcpy(out + o, "\\u00", 4);
        out[o + 4] = (unsigned char)hex[c >> 4];
        out[o + 5] = (unsigned char)hex[c & 15];
        o += 6;
      } else {
        out[o++] = (unsigned char)c;
      }
      continue;
    }
    size_t l = proto_v2_utf8_seq(u + i, n - i);
    if (!l) {
      memcpy(out + o, "\\ufffd", 6);
      o += 6;
      i++;
    } else if (is_u2028_or_9(u + i, l)) {
      memcpy(out + o, u[i + 2] == 0xa8 ? "\\u2028" : "\\u2029", 6);
      o += 6;
      i += 3;
    } else {
      memcpy(out + o, u + i, l);
      o += l;
      i += l;
    }
  }
  out[o++] = '"';
  return o;
}

void proto_v2_gen_str(yajl_gen g, const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t l = u[i] < 0x80 ? (size_t)same_in_yajl(u[i]) : proto_v2_utf8_seq(u + i, n - i);
    if (!l || is_u2028_or_9(u + i, l)) break;
    i += l;
  }
  if (i == n) {
    yajl_gen_string(g, u, n);
    return;
  }
  /* Rare path: quoted here as Go quotes it, then given to yajl as a finished token. */
  unsigned char stackbuf[1024];
  size_t cap = n * 6 + 2;
  unsigned char *out = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
  if (!out) {
    yajl_gen_string(g, (const unsigned char *)"", 0);
    return;
  }
  size_t o = proto_v2_go_quote(s, n, (char *)out);
  /* yajl_gen_number writes its text as it is; a map key must be a string */
  if (yajl_gen_number(g, (const char *)out, o) == yajl_gen_keys_must_be_strings)
    gen_str_replaced(g, u, n);
  if (out != stackbuf) free(out);
}

void proto_v2_gen_cstr(yajl_gen g, const char *s) {
  proto_v2_gen_str(g, s, strlen(s));
}

void proto_v2_gen_csv(yajl_gen g, const char *csv) {
  yajl_gen_array_open(g);
  while (*csv) {
    size_t n = strcspn(csv, ",");
    if (n) proto_v2_gen_str(g, csv, n);
    csv += n;
    if (*csv == ',') csv++;
  }
  yajl_gen_array_close(g);
}

size_t proto_v2_rfc3339(int64_t ns, char *out) {
  time_t sec = (time_t)(ns / NS);
  long frac = (long)(ns % NS);
  if (frac < 0) {
    frac += NS;
    sec -= 1;
  }
  struct tm tm;
  gmtime_r(&sec, &tm);
  size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
  if (frac) {
    char f[16];
    snprintf(f, sizeof f, ".%09ld", frac);
    size_t fl = strlen(f);
    while (f[fl - 1] == '0') fl--;
    memcpy(out + n, f, fl);
    n += fl;
  }
  out[n++] = 'Z';
  out[n] = 0;
  return n;
}

int64_t proto_v2_ttl(int64_t expiration_ns, int64_t now_ns) {
  int64_t d = expiration_ns - now_ns;
  int64_t t = d / NS;
  if (d % NS > 0) t++;
  return t;
}

/* Decimal digits by hand: snprintf's format parsing was 1-2% of a GET's CPU. */
static void gen_u64(yajl_gen g, uint64_t v) {
  char b[20];
  size_t i = sizeof b;
  do {
    b[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  yajl_gen_number(g, b + i, sizeof b - i);
}

void proto_v2_gen_node_open(yajl_gen g, const proto_node *n, int64_t now_ns) {
  yajl_gen_map_open(g);
  if (n->key) {
    PROTO_V2_GEN_KEY(g, "key");
    proto_v2_gen_str(g, n->key, n->key_len);
  }
  if (n->dir) {
    PROTO_V2_GEN_KEY(g, "dir");
    yajl_gen_bool(g, 1);
  } else if (!n->no_value) {
    PROTO_V2_GEN_KEY(g, "value");
    proto_v2_gen_str(g, n->value, n->value_len);
  }
  if (n->expiration) {
    char ts[40];
    size_t tl = proto_v2_rfc3339(n->expiration, ts);
    PROTO_V2_GEN_KEY(g, "expiration");
    yajl_gen_string(g, (const unsigned char *)ts, tl);
    int64_t ttl = n->omit_ttl ? 0 : proto_v2_ttl(n->expiration, now_ns);
    if (ttl) {
      PROTO_V2_GEN_KEY(g, "ttl");
      yajl_gen_integer(g, ttl);
    }
  }
}

void proto_v2_gen_node_close(yajl_gen g, const proto_node *n) {
  if (n->key) {
    PROTO_V2_GEN_KEY(g, "modifiedIndex");
    gen_u64(g, n->modified_index);
    PROTO_V2_GEN_KEY(g, "createdIndex");
    gen_u64(g, n->created_index);
  }
  yajl_gen_map_close(g);
}

void proto_v2_gen_node(yajl_gen g, const proto_node *n, int64_t now_ns) {
  proto_v2_gen_node_open(g, n, now_ns);
  if (n->n_nodes) {
    PROTO_V2_GEN_KEY(g, "nodes");
    yajl_gen_array_open(g);
    for (size_t i = 0; i < n->n_nodes; i++) proto_v2_gen_node(g, &n->nodes[i], now_ns);
    yajl_gen_array_close(g);
  }
  proto_v2_gen_node_close(g, n);
}

typedef struct v2_error_def {
  int code;
  int status;
  const char *message;
} v2_error_def;

static const v2_error_def v2_errors[] = {
    {100, 404, "Key not found"},
    {101, 412, "Compare failed"},
    {102, 403, "Not a file"},
    {104, 400, "Not a directory"},
    {105, 412, "Key already exists"},
    {107, 400, "Root is read only"},
    {108, 403, "Directory not empty"},
    {110, 401, "The request requires user authentication"},
    {201, 400, "PrevValue is Required in POST form"},
    {202, 400, "The given TTL in POST form is not a number"},
    {203, 400, "The given index in POST form is not a number"},
    {209, 400, "Invalid field"},
    {210, 400, "Invalid POST form"},
    {211, 400, "Value provided on refresh"},
    {212, 400, "A TTL must be provided on refresh"},
    {300, 500, "Raft Internal Error"},
    {301, 500, "During Leader Election"},
    {400, 400, "watcher is cleared due to etcd recovery"},
    {401, 400, "The event in requested index is outdated and cleared"},
};

static const v2_error_def *error_def(int code) {
  for (size_t i = 0; i < sizeof v2_errors / sizeof v2_errors[0]; i++)
    if (v2_errors[i].code == code) return &v2_errors[i];
  return NULL;
}

const char *proto_v2_error_message(int code) {
  const v2_error_def *d = error_def(code);
  return d ? d->message : "Unknown error";
}

int proto_v2_error_status(int code) {
  const v2_error_def *d = error_def(code);
  return d ? d->status : 500;
}

void proto_v2_gen_message(yajl_gen g, const char *msg) {
  yajl_gen_map_open(g);
  PROTO_V2_GEN_KEY(g, "message");
  proto_v2_gen_cstr(g, msg);
  yajl_gen_map_close(g);
}

void proto_v2_gen_error(yajl_gen g, int code, const char *cause, size_t cause_len, uint64_t index) {
  const char *msg = proto_v2_error_message(code);
  yajl_gen_map_open(g);
  PROTO_V2_GEN_KEY(g, "errorCode");
  yajl_gen_integer(g, code);
  PROTO_V2_GEN_KEY(g, "message");
  yajl_gen_string(g, (const unsigned char *)msg, strlen(msg));
  if (cause && cause_len) { /* etcd omits an empty cause */
    PROTO_V2_GEN_KEY(g, "cause");
    proto_v2_gen_str(g, cause, cause_len);
  }
  PROTO_V2_GEN_KEY(g, "index");
  gen_u64(g, index);
  yajl_gen_map_close(g);
}
