/* record: msgpack encoding of proto_record as a fixed-order array:
 * [version, op, flags, id, expiration, time, prev_index, path, value, prev_value, member].
 * A record of 10 fields (written before `member` existed) decodes with member 0. */
#include "proto/record.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msgpack_scan.h"

#define RECORD_FIELDS 11

typedef struct growbuf {
  char **buf;
  size_t *len;
  size_t *cap;
  int failed;
} growbuf;

static int growbuf_write(void *data, const char *src, size_t n) {
  growbuf *g = data;
  if (*g->len + n > *g->cap) {
    size_t cap = *g->cap ? *g->cap : 256;
    while (cap < *g->len + n) cap *= 2;
    char *p = realloc(*g->buf, cap);
    if (!p) {
      g->failed = 1;
      return -1;
    }
    *g->buf = p;
    *g->cap = cap;
  }
  memcpy(*g->buf + *g->len, src, n);
  *g->len += n;
  return 0;
}

static void pack_str(msgpack_packer *pk, const char *s, size_t n) {
  msgpack_pack_bin(pk, n);
  msgpack_pack_bin_body(pk, s ? s : "", n);
}

int proto_record_encode(const proto_record *rec, char **buf, size_t *len, size_t *cap) {
  growbuf g = {buf, len, cap, 0};
  msgpack_packer pk;
  msgpack_packer_init(&pk, &g, growbuf_write);
  msgpack_pack_array(&pk, RECORD_FIELDS);
  msgpack_pack_uint8(&pk, PROTO_RECORD_VERSION);
  msgpack_pack_uint8(&pk, rec->op);
  msgpack_pack_uint32(&pk, rec->flags);
  msgpack_pack_uint64(&pk, rec->id);
  msgpack_pack_int64(&pk, rec->expiration);
  msgpack_pack_int64(&pk, rec->time);
  msgpack_pack_uint64(&pk, rec->prev_index);
  pack_str(&pk, rec->path, rec->path_len);
  pack_str(&pk, rec->value, rec->value_len);
  pack_str(&pk, rec->prev_value, rec->prev_value_len);
  msgpack_pack_uint64(&pk, rec->member);
  return g.failed ? -ENOMEM : 0;
}

static int get_u64(const msgpack_object *o, uint64_t *v) {
  if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) *v = o->via.u64;
  else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) *v = (uint64_t)o->via.i64;
  else return -EINVAL;
  return 0;
}

static int get_bin(const msgpack_object *o, const char **s, size_t *n) {
  if (o->type == MSGPACK_OBJECT_BIN) {
    *s = o->via.bin.ptr;
    *n = o->via.bin.size;
  } else if (o->type == MSGPACK_OBJECT_STR) {
    *s = o->via.str.ptr;
    *n = o->via.str.size;
  } else {
    return -EINVAL;
  }
  return 0;
}

int proto_record_decode(const char *data, size_t len, proto_record *rec) {
  msgpack_unpacked up;
  size_t off = 0;
  uint64_t v[7];
  int rc = -EINVAL;
  memset(rec, 0, sizeof *rec);
  if (proto_msgpack_scan((const uint8_t *)data, len)) return -EINVAL;
  msgpack_unpacked_init(&up);
  if (msgpack_unpack_next(&up, data, len, &off) != MSGPACK_UNPACK_SUCCESS || off != len) goto out;
  const msgpack_object *o = &up.data;
  if (o->type != MSGPACK_OBJECT_ARRAY || (o->via.array.size != RECORD_FIELDS && o->via.array.size != RECORD_FIELDS - 1))
    goto out;
  const msgpack_object *f = o->via.array.ptr;
  for (int i = 0; i < 7; i++)
    if (get_u64(&f[i], &v[i])) goto out;
  if (v[0] != PROTO_RECORD_VERSION || v[1] == 0 || v[1] >= PROTO_OP_MAX || v[2] > UINT32_MAX) goto out;
  rec->op = (uint8_t)v[1];
  rec->flags = (uint32_t)v[2];
  rec->id = v[3];
  rec->expiration = (int64_t)v[4];
  rec->time = (int64_t)v[5];
  rec->prev_index = v[6];
  /* Strings and bins reference `data` (msgpack-c does not copy them), so they outlive `up`. */
  if (get_bin(&f[7], &rec->path, &rec->path_len) || get_bin(&f[8], &rec->value, &rec->value_len) ||
      get_bin(&f[9], &rec->prev_value, &rec->prev_value_len))
    goto out;
  if (o->via.array.size == RECORD_FIELDS && get_u64(&f[10], &rec->member)) goto out;
  rc = 0;
out:
  msgpack_unpacked_destroy(&up);
  return rc;
}
