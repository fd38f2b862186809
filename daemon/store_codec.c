/* store_codec: byte layout of the tree store's LevelDB keys and values (see the header). */
#include "daemon/store_codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void sbuf_reset(sbuf *b) { b->len = 0; }

void sbuf_free(sbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

static void sbuf_grow(sbuf *b, size_t need) {
  if (b->len + need <= b->cap) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + need) cap *= 2;
  char *p = realloc(b->p, cap);
  if (!p) abort(); /* out of memory: the daemon's policy is to stop, not to corrupt */
  b->p = p;
  b->cap = cap;
}

void sbuf_reserve(sbuf *b, size_t n) {
  if (b->len + n <= b->cap) return;
  char *p = realloc(b->p, b->len + n);
  if (!p) abort(); /* (as sbuf_grow) */
  b->p = p;
  b->cap = b->len + n;
}

void sbuf_put(sbuf *b, const void *data, size_t n) {
  if (b->len + n > b->cap) sbuf_grow(b, n);
  if (n) memcpy(b->p + b->len, data, n);
  b->len += n;
}

void sbuf_putc(sbuf *b, char c) {
  if (b->len == b->cap) sbuf_grow(b, 1);
  b->p[b->len++] = c;
}

void sbuf_puts(sbuf *b, const char *s) { sbuf_put(b, s, strlen(s)); }

void sbuf_put_dec(sbuf *b, uint64_t v) {
  char d[20];
  size_t i = sizeof d;
  do {
    d[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  sbuf_put(b, d + i, sizeof d - i);
}

void sbuf_put_be64(sbuf *b, uint64_t v) {
  unsigned char x[8];
  for (int i = 7; i >= 0; i--, v >>= 8) x[i] = (unsigned char)v;
  sbuf_put(b, x, 8);
}

void codec_put_be32(void *p, uint32_t v) {
  unsigned char *u = p;
  u[0] = (unsigned char)(v >> 24);
  u[1] = (unsigned char)(v >> 16);
  u[2] = (unsigned char)(v >> 8);
  u[3] = (unsigned char)v;
}

void sbuf_put_be32(sbuf *b, uint32_t v) {
  char x[4];
  codec_put_be32(x, v);
  sbuf_put(b, x, 4);
}

uint32_t codec_get_be32(const void *p) {
  const unsigned char *u = p;
  return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

uint64_t codec_get_be64(const void *p) {
  const unsigned char *x = p;
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | x[i];
  return v;
}

/* Bytes 0 and 1 become 1,1 and 1,2; the runs between them are copied whole. */
static void put_escaped(sbuf *b, const char *s, size_t n) {
  sbuf_grow(b, n);
  size_t run = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c > 1) continue;
    sbuf_put(b, s + run, i - run);
    sbuf_putc(b, 1);
    sbuf_putc(b, (char)(c + 1));
    run = i + 1;
  }
  sbuf_put(b, s + run, n - run);
}

void codec_node_key(sbuf *out, const char *path, size_t len) {
  size_t slash = len;
  while (slash > 0 && path[slash - 1] != '/') slash--;
  /* path[0..slash-1) is the parent ("" for the root), path[slash..len) the name. */
  sbuf_putc(out, 'n');
  put_escaped(out, path, slash ? slash - 1 : 0);
  sbuf_putc(out, 0);
  put_escaped(out, path + slash, len - slash);
}

void codec_children_prefix(sbuf *out, const char *dir, size_t len) {
  if (len == 1 && dir[0] == '/') len = 0;
  sbuf_putc(out, 'n');
  put_escaped(out, dir, len);
  sbuf_putc(out, 0);
}

void codec_deep_prefix(sbuf *out, const char *dir, size_t len) {
  sbuf_putc(out, 'n');
  put_escaped(out, dir, len);
  sbuf_putc(out, '/');
}

int codec_node_path(sbuf *out, const char *key, size_t klen) {
  if (klen < 2 || key[0] != 'n') return -EINVAL;
  int seen_sep = 0;
  for (size_t i = 1; i < klen; i++) {
    unsigned char c = (unsigned char)key[i];
    if (c == 0) {
      if (seen_sep) return -EINVAL;
      seen_sep = 1;
      sbuf_putc(out, '/');
    } else if (c == 1) {
      if (i + 1 >= klen) return -EINVAL;
      sbuf_putc(out, (char)(key[++i] - 1));
    } else {
      sbuf_putc(out, (char)c);
    }
  }
  return seen_sep ? 0 : -EINVAL;
}

void codec_expiry_key(sbuf *out, int64_t expiration, const char *path, size_t len) {
  sbuf_putc(out, 'e');
  sbuf_put_be64(out, (uint64_t)expiration);
  sbuf_put(out, path, len);
}

void codec_u64_key(sbuf *out, char tag, uint64_t v) {
  sbuf_putc(out, tag);
  sbuf_put_be64(out, v);
}

void codec_node_encode(sbuf *out, const codec_node *n) {
  sbuf_putc(out, n->dir ? CODEC_DIR : CODEC_FILE);
  sbuf_put_be64(out, n->created);
  sbuf_put_be64(out, n->modified);
  sbuf_put_be64(out, (uint64_t)n->expiration);
  if (!n->dir) sbuf_put(out, n->value, n->value_len);
}

int codec_node_decode(const char *data, size_t len, codec_node *n) {
  if (len < CODEC_NODE_HDR || (data[0] != CODEC_DIR && data[0] != CODEC_FILE)) return -EINVAL;
  n->dir = data[0] == CODEC_DIR;
  n->created = codec_get_be64(data + 1);
  n->modified = codec_get_be64(data + 9);
  n->expiration = (int64_t)codec_get_be64(data + 17);
  n->value = data + CODEC_NODE_HDR;
  n->value_len = len - CODEC_NODE_HDR;
  return 0;
}
