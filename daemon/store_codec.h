/* store_codec: how the v2 tree lives in LevelDB — the byte layout of every key and value.
 *
 *   'n' enc(parent) 0x00 enc(name)  -> node: type(1) created(8) modified(8) expiration(8) value
 *   'e' be64(expiration) path       -> "" (index of keys with a TTL, in expiry order)
 *   'l' be64(log index)             -> proto_record bytes (the durable request log)
 *   'h' be64(etcd index % 1000)     -> event history entry: only in data dirs of older versions
 *                                      and in snapshots (store_history.c imports them)
 *   'm' name                        -> metadata (format, index, applied, ...)
 *   'M' be64(member id)             -> member record (node_member.c's msgpack)
 *   'R' be64(member id)             -> "" (a member removed from the cluster)
 *   'A' 'u' name / 'A' 'r' name     -> /v2/auth user / role (JSON, auth_db.c)
 *   'A' 'e'                         -> "true" / "false": /v2/auth checking on
 *
 * enc() escapes 0x00 as 01 01 and 0x01 as 01 02, so a directory's children are one contiguous
 * range in name order, and its whole subtree is that range plus the range 'n' enc(dir) '/'. */
#ifndef QUORUM_DAEMON_STORE_CODEC_H
#define QUORUM_DAEMON_STORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* A growable byte buffer (malloc'd). */
typedef struct sbuf {
  char *p;
  size_t len, cap;
} sbuf;

void sbuf_reset(sbuf *b);
void sbuf_free(sbuf *b);
void sbuf_put(sbuf *b, const void *data, size_t n);
/* Room for exactly n more bytes (a large buffer of known size: no doubling, no copies). */
void sbuf_reserve(sbuf *b, size_t n);
void sbuf_putc(sbuf *b, char c);
void sbuf_put_be64(sbuf *b, uint64_t v);
void sbuf_put_be32(sbuf *b, uint32_t v);
/* A NUL-terminated string; an unsigned number in decimal (no printf on hot paths). */
void sbuf_puts(sbuf *b, const char *s);
void sbuf_put_dec(sbuf *b, uint64_t v);

uint64_t codec_get_be64(const void *p);
uint32_t codec_get_be32(const void *p);
void codec_put_be32(void *p, uint32_t v);

/* The node key of path (which starts with '/', is cleaned, and is not "/"). */
void codec_node_key(sbuf *out, const char *path, size_t len);
/* The prefix of the keys of dir's children ("" or "/" for the root). */
void codec_children_prefix(sbuf *out, const char *dir, size_t len);
/* The prefix of the keys of dir's grandchildren and deeper (the root: not used). */
void codec_deep_prefix(sbuf *out, const char *dir, size_t len);
/* Decodes a node key back to its path. Returns 0 or -EINVAL. */
int codec_node_path(sbuf *out, const char *key, size_t klen);

void codec_expiry_key(sbuf *out, int64_t expiration, const char *path, size_t len);
void codec_u64_key(sbuf *out, char tag, uint64_t v);

#define CODEC_NODE_HDR 25
enum { CODEC_FILE = 'f', CODEC_DIR = 'd' };

/* A decoded node value. value points into the decoded buffer. */
typedef struct codec_node {
  int dir;
  uint64_t created, modified;
  int64_t expiration;
  const char *value;
  size_t value_len;
} codec_node;

void codec_node_encode(sbuf *out, const codec_node *n);
int codec_node_decode(const char *data, size_t len, codec_node *n);

#endif
