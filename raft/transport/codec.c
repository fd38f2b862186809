/* codec: msgpack encoding and decoding of the transport's frames (format in codec.h). Decoding
 * first checks that the payload is exactly one msgpack object whose every array and map count
 * fits in the bytes left (proto_msgpack_scan), then lets msgpack-c build the object tree, validates the
 * schema, and copies what the frame refers to into one arena. */
#include "raft/transport/codec.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto/msgpack_scan.h"

#define HANDSHAKE_FIELDS 6
#define MESSAGE_FIELDS 13 /* type .. context */
#define CHUNK_FIELDS 8
#define ACK_FIELDS 4
#define REMOVED_FIELDS 3
#define ENTRY_FIELDS 4
#define SNAPSHOT_FIELDS 4

/* ---- encoding ---- */

typedef struct codec_writer {
  raft_codec_buf *b;
  int failed;
} codec_writer;

static int writer_write(void *data, const char *src, size_t n) {
  codec_writer *w = data;
  raft_codec_buf *b = w->b;
  if (w->failed) return -1;
  if (n > SIZE_MAX - b->len) {
    w->failed = -EMSGSIZE;
    return -1;
  }
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n) cap = cap > SIZE_MAX / 2 ? b->len + n : cap * 2;
    uint8_t *p = realloc(b->base, cap);
    if (!p) {
      w->failed = -ENOMEM;
      return -1;
    }
    b->base = p;
    b->cap = cap;
  }
  memcpy(b->base + b->len, src, n);
  b->len += n;
  return 0;
}

static void pack_bin(msgpack_packer *pk, const uint8_t *p, size_t n) {
  msgpack_pack_bin(pk, n);
  if (n) msgpack_pack_bin_body(pk, p, n);
}

static void pack_bool(msgpack_packer *pk, bool v) {
  if (v) msgpack_pack_true(pk);
  else msgpack_pack_false(pk);
}

bool raft_codec_is_wire_type(uint8_t type) {
  return type >= RAFT_MSG_PROP && type < RAFT_MSG_TYPE_MAX;
}

static int check_message(const raft_message *m) {
  if (!raft_codec_is_wire_type(m->type)) return -EINVAL;
  if (m->n_entries && !m->entries) return -EINVAL;
  if (m->snapshot && m->snapshot->meta.conf.n_voters > RAFT_MAX_VOTERS) return -EINVAL;
  return 0;
}

/* The 13 message fields, from type to context. */
static void pack_message_fields(msgpack_packer *pk, const raft_message *m, bool snap_data) {
  msgpack_pack_uint8(pk, m->type);
  msgpack_pack_uint64(pk, m->to);
  msgpack_pack_uint64(pk, m->from);
  msgpack_pack_uint64(pk, m->term);
  msgpack_pack_uint64(pk, m->log_term);
  msgpack_pack_uint64(pk, m->index);
  msgpack_pack_uint64(pk, m->commit);
  pack_bool(pk, m->reject);
  msgpack_pack_uint64(pk, m->reject_hint);
  msgpack_pack_uint64(pk, m->reject_hint_term);
  msgpack_pack_array(pk, m->n_entries);
  for (size_t i = 0; i < m->n_entries; i++) {
    const raft_entry *e = &m->entries[i];
    msgpack_pack_array(pk, ENTRY_FIELDS);
    msgpack_pack_uint64(pk, e->term);
    msgpack_pack_uint64(pk, e->index);
    msgpack_pack_uint8(pk, e->type);
    pack_bin(pk, e->data.base, e->data.len);
  }
  if (m->snapshot) {
    const raft_snapshot *s = m->snapshot;
    msgpack_pack_array(pk, SNAPSHOT_FIELDS);
    msgpack_pack_uint64(pk, s->meta.index);
    msgpack_pack_uint64(pk, s->meta.term);
    msgpack_pack_array(pk, s->meta.conf.n_voters);
    for (size_t i = 0; i < s->meta.conf.n_voters; i++) msgpack_pack_uint64(pk, s->meta.conf.voters[i]);
    if (snap_data) pack_bin(pk, s->data.base, s->data.len);
    else pack_bin(pk, NULL, 0);
  } else {
    msgpack_pack_nil(pk);
  }
  pack_bin(pk, m->context.base, m->context.len);
}

/* Starts a frame: reserves the length header and opens the top array. */
static void frame_begin(codec_writer *w, msgpack_packer *pk, size_t *start, size_t fields,
                        uint8_t kind) {
  static const char zero[RAFT_CODEC_HEADER_LEN] = {0};
  *start = w->b->len;
  msgpack_packer_init(pk, w, writer_write);
  writer_write(w, zero, sizeof zero);
  msgpack_pack_array(pk, fields);
  msgpack_pack_uint8(pk, RAFT_CODEC_VERSION);
  msgpack_pack_uint8(pk, kind);
}

/* Fills in the length header, or undoes the frame on failure. */
static int frame_end(codec_writer *w, size_t start) {
  raft_codec_buf *b = w->b;
  size_t payload = b->len - start - RAFT_CODEC_HEADER_LEN;
  if (!w->failed && payload > UINT32_MAX) w->failed = -EMSGSIZE;
  if (w->failed) {
    b->len = start;
    return w->failed;
  }
  uint8_t *h = b->base + start;
  h[0] = (uint8_t)(payload >> 24);
  h[1] = (uint8_t)(payload >> 16);
  h[2] = (uint8_t)(payload >> 8);
  h[3] = (uint8_t)payload;
  return 0;
}

int raft_codec_encode_handshake(raft_codec_buf *b, const raft_codec_handshake *h) {
  codec_writer w = {b, 0};
  msgpack_packer pk;
  size_t start;
  frame_begin(&w, &pk, &start, HANDSHAKE_FIELDS, RAFT_CODEC_HANDSHAKE);
  msgpack_pack_uint64(&pk, h->cluster_id);
  msgpack_pack_uint64(&pk, h->from);
  msgpack_pack_uint64(&pk, h->to);
  msgpack_pack_uint8(&pk, h->channel);
  return frame_end(&w, start);
}

int raft_codec_encode_message(raft_codec_buf *b, const raft_message *m) {
  int rc = check_message(m);
  if (rc) return rc;
  codec_writer w = {b, 0};
  msgpack_packer pk;
  size_t start;
  frame_begin(&w, &pk, &start, 2 + MESSAGE_FIELDS, RAFT_CODEC_MESSAGE);
  pack_message_fields(&pk, m, true);
  return frame_end(&w, start);
}

int raft_codec_encode_snap_chunk(raft_codec_buf *b, const raft_codec_snap_chunk *c,
                                 const raft_message *first) {
  if (first) {
    int rc = check_message(first);
    if (rc) return rc;
  }
  codec_writer w = {b, 0};
  msgpack_packer pk;
  size_t start;
  frame_begin(&w, &pk, &start, CHUNK_FIELDS, RAFT_CODEC_SNAP_CHUNK);
  msgpack_pack_uint64(&pk, c->snap_id);
  msgpack_pack_uint64(&pk, c->offset);
  msgpack_pack_uint64(&pk, c->total);
  pack_bool(&pk, c->last);
  if (first) {
    msgpack_pack_array(&pk, MESSAGE_FIELDS);
    pack_message_fields(&pk, first, false);
  } else {
    msgpack_pack_nil(&pk);
  }
  pack_bin(&pk, c->data.base, c->data.len);
  return frame_end(&w, start);
}

int raft_codec_encode_snap_ack(raft_codec_buf *b, const raft_codec_snap_ack *a) {
  codec_writer w = {b, 0};
  msgpack_packer pk;
  size_t start;
  frame_begin(&w, &pk, &start, ACK_FIELDS, RAFT_CODEC_SNAP_ACK);
  msgpack_pack_uint64(&pk, a->snap_id);
  pack_bool(&pk, a->ok);
  return frame_end(&w, start);
}

int raft_codec_encode_removed(raft_codec_buf *b, uint64_t member_id) {
  codec_writer w = {b, 0};
  msgpack_packer pk;
  size_t start;
  frame_begin(&w, &pk, &start, REMOVED_FIELDS, RAFT_CODEC_REMOVED);
  msgpack_pack_uint64(&pk, member_id);
  return frame_end(&w, start);
}

/* ---- framing ---- */

int raft_codec_frame_peek(const uint8_t *p, size_t avail, size_t max_frame, size_t *payload_len) {
  if (avail < RAFT_CODEC_HEADER_LEN) return 0;
  uint32_t n = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  if (n > max_frame) return -EMSGSIZE;
  if (n == 0) return -EINVAL;
  if (avail - RAFT_CODEC_HEADER_LEN < n) return 0;
  *payload_len = n;
  return 1;
}

/* ---- decoding ---- */

static int get_u64(const msgpack_object *o, uint64_t *v) {
  if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return -EINVAL;
  *v = o->via.u64;
  return 0;
}

static int get_u8(const msgpack_object *o, uint8_t *v) {
  uint64_t x;
  if (get_u64(o, &x) || x > UINT8_MAX) return -EINVAL;
  *v = (uint8_t)x;
  return 0;
}

static int get_bool(const msgpack_object *o, bool *v) {
  if (o->type != MSGPACK_OBJECT_BOOLEAN) return -EINVAL;
  *v = o->via.boolean;
  return 0;
}

static int get_bin(const msgpack_object *o) {
  return o->type == MSGPACK_OBJECT_BIN ? 0 : -EINVAL;
}

static const msgpack_object *get_array(const msgpack_object *o, size_t n) {
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != n) return NULL;
  return o->via.array.ptr;
}

/* Validates the 13 message fields at f and returns the arena bytes they need in *need. */
static int check_message_fields(const msgpack_object *f, size_t *need) {
  uint64_t u;
  uint8_t type;
  bool b;
  if (get_u8(&f[0], &type) || !raft_codec_is_wire_type(type)) return -EINVAL;
  for (int i = 1; i <= 6; i++)
    if (get_u64(&f[i], &u)) return -EINVAL;
  if (get_bool(&f[7], &b) || get_u64(&f[8], &u) || get_u64(&f[9], &u)) return -EINVAL;
  if (f[10].type != MSGPACK_OBJECT_ARRAY) return -EINVAL;
  size_t n = f[10].via.array.size;
  *need += n * sizeof(raft_entry);
  for (size_t i = 0; i < n; i++) {
    const msgpack_object *e = get_array(&f[10].via.array.ptr[i], ENTRY_FIELDS);
    uint8_t et;
    if (!e || get_u64(&e[0], &u) || get_u64(&e[1], &u) || get_u8(&e[2], &et) || get_bin(&e[3]))
      return -EINVAL;
    if (et != RAFT_ENTRY_NORMAL && et != RAFT_ENTRY_CONF_CHANGE) return -EINVAL;
    *need += e[3].via.bin.size;
  }
  if (f[11].type != MSGPACK_OBJECT_NIL) {
    const msgpack_object *s = get_array(&f[11], SNAPSHOT_FIELDS);
    if (!s || get_u64(&s[0], &u) || get_u64(&s[1], &u) || get_bin(&s[3])) return -EINVAL;
    if (s[2].type != MSGPACK_OBJECT_ARRAY || s[2].via.array.size > RAFT_MAX_VOTERS) return -EINVAL;
    for (size_t i = 0; i < s[2].via.array.size; i++)
      if (get_u64(&s[2].via.array.ptr[i], &u)) return -EINVAL;
    *need += sizeof(raft_snapshot) + s[3].via.bin.size;
  }
  if (get_bin(&f[12])) return -EINVAL;
  *need += f[12].via.bin.size;
  return 0;
}

/* Hands out arena space: structs first (aligned), then bytes. */
typedef struct codec_arena {
  uint8_t *base;
  size_t used;
} codec_arena;

static void *arena_take(codec_arena *a, size_t n) {
  void *p = a->base + a->used;
  a->used += n;
  return p;
}

static raft_buf arena_copy(codec_arena *a, const msgpack_object *bin) {
  raft_buf r = {NULL, bin->via.bin.size};
  if (r.len) {
    r.base = arena_take(a, r.len);
    memcpy(r.base, bin->via.bin.ptr, r.len);
  }
  return r;
}

/* Fills m from fields already checked by check_message_fields. */
static void fill_message(const msgpack_object *f, codec_arena *a, raft_message *m) {
  memset(m, 0, sizeof *m);
  m->type = (uint8_t)f[0].via.u64;
  m->to = f[1].via.u64;
  m->from = f[2].via.u64;
  m->term = f[3].via.u64;
  m->log_term = f[4].via.u64;
  m->index = f[5].via.u64;
  m->commit = f[6].via.u64;
  m->reject = f[7].via.boolean;
  m->reject_hint = f[8].via.u64;
  m->reject_hint_term = f[9].via.u64;
  m->n_entries = f[10].via.array.size;
  if (m->n_entries) m->entries = arena_take(a, m->n_entries * sizeof(raft_entry));
  if (f[11].type != MSGPACK_OBJECT_NIL) m->snapshot = arena_take(a, sizeof(raft_snapshot));
  for (size_t i = 0; i < m->n_entries; i++) {
    const msgpack_object *e = f[10].via.array.ptr[i].via.array.ptr;
    raft_entry *out = &m->entries[i];
    out->term = e[0].via.u64;
    out->index = e[1].via.u64;
    out->type = (uint8_t)e[2].via.u64;
    out->data = arena_copy(a, &e[3]);
  }
  if (m->snapshot) {
    const msgpack_object *s = f[11].via.array.ptr;
    raft_snapshot *out = m->snapshot;
    memset(out, 0, sizeof *out);
    out->meta.index = s[0].via.u64;
    out->meta.term = s[1].via.u64;
    out->meta.conf.n_voters = s[2].via.array.size;
    for (size_t i = 0; i < out->meta.conf.n_voters; i++)
      out->meta.conf.voters[i] = s[2].via.array.ptr[i].via.u64;
    out->data = arena_copy(a, &s[3]);
  }
  m->context = arena_copy(a, &f[12]);
}

static int arena_new(codec_arena *a, size_t need) {
  a->used = 0;
  a->base = NULL;
  if (!need) return 0;
  a->base = malloc(need);
  return a->base ? 0 : -ENOMEM;
}

static int decode_handshake(const msgpack_object *f, size_t n, raft_codec_frame *out) {
  raft_codec_handshake *h = &out->handshake;
  if (n != HANDSHAKE_FIELDS || get_u64(&f[2], &h->cluster_id) || get_u64(&f[3], &h->from) ||
      get_u64(&f[4], &h->to) || get_u8(&f[5], &h->channel))
    return -EINVAL;
  if (h->channel != RAFT_CODEC_CHANNEL_MESSAGES && h->channel != RAFT_CODEC_CHANNEL_SNAPSHOT)
    return -EINVAL;
  return 0;
}

static int decode_message(const msgpack_object *f, size_t n, raft_codec_frame *out) {
  size_t need = 0;
  codec_arena a;
  if (n != 2 + MESSAGE_FIELDS || check_message_fields(f + 2, &need)) return -EINVAL;
  if (arena_new(&a, need)) return -ENOMEM;
  fill_message(f + 2, &a, &out->message);
  out->has_message = true;
  out->arena = a.base;
  return 0;
}

static int decode_chunk(const msgpack_object *f, size_t n, raft_codec_frame *out) {
  raft_codec_snap_chunk *c = &out->chunk;
  const msgpack_object *mf = NULL;
  size_t need = 0;
  codec_arena a;
  if (n != CHUNK_FIELDS || get_u64(&f[2], &c->snap_id) || get_u64(&f[3], &c->offset) ||
      get_u64(&f[4], &c->total) || get_bool(&f[5], &c->last) || get_bin(&f[7]))
    return -EINVAL;
  if (f[6].type != MSGPACK_OBJECT_NIL) {
    mf = get_array(&f[6], MESSAGE_FIELDS);
    if (!mf || check_message_fields(mf, &need) || mf[0].via.u64 != RAFT_MSG_SNAP ||
        mf[11].type == MSGPACK_OBJECT_NIL || c->offset != 0)
      return -EINVAL;
  }
  uint64_t len = f[7].via.bin.size;
  if (c->offset > c->total || len > c->total - c->offset) return -EINVAL;
  if (c->last != (c->offset + len == c->total)) return -EINVAL;
  need += len;
  if (arena_new(&a, need)) return -ENOMEM;
  if (mf) {
    fill_message(mf, &a, &out->message);
    out->has_message = true;
  }
  c->data = arena_copy(&a, &f[7]);
  out->arena = a.base;
  return 0;
}

static int decode_ack(const msgpack_object *f, size_t n, raft_codec_frame *out) {
  if (n != ACK_FIELDS || get_u64(&f[2], &out->ack.snap_id) || get_bool(&f[3], &out->ack.ok))
    return -EINVAL;
  return 0;
}

static int decode_removed(const msgpack_object *f, size_t n, raft_codec_frame *out) {
  if (n != REMOVED_FIELDS || get_u64(&f[2], &out->removed_id) || out->removed_id == 0)
    return -EINVAL;
  return 0;
}

int raft_codec_decode(const uint8_t *payload, size_t len, raft_codec_frame *f) {
  msgpack_unpacked up;
  size_t off = 0;
  uint64_t version;
  uint8_t kind;
  int rc = -EINVAL;
  memset(f, 0, sizeof *f);
  if (proto_msgpack_scan(payload, len)) return -EINVAL;
  msgpack_unpacked_init(&up);
  int ur = msgpack_unpack_next(&up, (const char *)payload, len, &off);
  if (ur == MSGPACK_UNPACK_NOMEM_ERROR) {
    rc = -ENOMEM;
    goto out;
  }
  if (ur != MSGPACK_UNPACK_SUCCESS || off != len) goto out;
  const msgpack_object *o = &up.data;
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2) goto out;
  const msgpack_object *a = o->via.array.ptr;
  size_t n = o->via.array.size;
  if (get_u64(&a[0], &version)) goto out;
  if (version != RAFT_CODEC_VERSION) {
    rc = -EPROTONOSUPPORT;
    goto out;
  }
  if (get_u8(&a[1], &kind)) goto out;
  f->kind = kind;
  switch (kind) {
    case RAFT_CODEC_HANDSHAKE: rc = decode_handshake(a, n, f); break;
    case RAFT_CODEC_MESSAGE: rc = decode_message(a, n, f); break;
    case RAFT_CODEC_SNAP_CHUNK: rc = decode_chunk(a, n, f); break;
    case RAFT_CODEC_SNAP_ACK: rc = decode_ack(a, n, f); break;
    case RAFT_CODEC_REMOVED: rc = decode_removed(a, n, f); break;
    default: rc = -EINVAL; break;
  }
out:
  msgpack_unpacked_destroy(&up);
  if (rc) {
    free(f->arena);
    memset(f, 0, sizeof *f);
  }
  return rc;
}

void raft_codec_frame_free(raft_codec_frame *f) {
  if (!f) return;
  free(f->arena);
  memset(f, 0, sizeof *f);
}
