/* Unit tests of raft/transport/codec.c: every wire message type, the handshake, snapshot chunks
 * and acks round-trip exactly; framing reports incomplete, oversized and empty frames; truncated,
 * mutated and random payloads (deterministic seed) are refused with an error, never a crash;
 * decoded frames own their memory (one arena) and do not point into the input. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "raft/transport/codec.h"

/* Deterministic PRNG for the garbage tests (xorshift64*). */
static uint64_t rng_next(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ULL;
}

/* Fills every field of m with values derived from its type; entries, snapshot and context are
 * backed by the given storage. */
static void sample_message(uint8_t type, raft_message *m, raft_entry ents[3], raft_snapshot *snap) {
  static const uint8_t d0[] = "put /a 1";
  static const uint8_t d2[] = {0, 1, 2, 0xff, 0xc1};
  static const uint8_t sdata[] = "snapshot-bytes";
  static const uint8_t ctx[] = "read-ctx-42";
  memset(m, 0, sizeof *m);
  m->type = type;
  m->to = 0x0102030405060708ULL + type;
  m->from = UINT64_MAX - type;
  m->term = 7 + type;
  m->log_term = 6;
  m->index = 0x100000000ULL + type;
  m->commit = 99;
  m->reject = type % 2;
  m->reject_hint = 55;
  m->reject_hint_term = 5;
  ents[0] = (raft_entry){.term = 6, .index = m->index + 1, .type = RAFT_ENTRY_NORMAL,
                         .data = {(uint8_t *)d0, sizeof d0 - 1}};
  ents[1] = (raft_entry){.term = 7, .index = m->index + 2, .type = RAFT_ENTRY_NORMAL};
  ents[2] = (raft_entry){.term = 7, .index = m->index + 3, .type = RAFT_ENTRY_CONF_CHANGE,
                         .data = {(uint8_t *)d2, sizeof d2}};
  m->entries = ents;
  m->n_entries = 3;
  memset(snap, 0, sizeof *snap);
  snap->meta.index = 1000;
  snap->meta.term = 4;
  snap->meta.conf.n_voters = 3;
  snap->meta.conf.voters[0] = 1;
  snap->meta.conf.voters[1] = 2;
  snap->meta.conf.voters[2] = UINT64_MAX;
  snap->data = (raft_buf){(uint8_t *)sdata, sizeof sdata - 1};
  m->snapshot = snap;
  m->context = (raft_buf){(uint8_t *)ctx, sizeof ctx - 1};
}

static void assert_buf(raft_buf a, raft_buf b) {
  assert_int_equal(a.len, b.len);
  if (a.len) assert_memory_equal(a.base, b.base, a.len);
  else assert_null(b.base);
}

static void assert_message(const raft_message *want, const raft_message *got, bool snap_data) {
  assert_int_equal(got->type, want->type);
  assert_true(got->to == want->to);
  assert_true(got->from == want->from);
  assert_true(got->term == want->term);
  assert_true(got->log_term == want->log_term);
  assert_true(got->index == want->index);
  assert_true(got->commit == want->commit);
  assert_int_equal(got->reject, want->reject);
  assert_true(got->reject_hint == want->reject_hint);
  assert_true(got->reject_hint_term == want->reject_hint_term);
  assert_int_equal(got->n_entries, want->n_entries);
  if (!want->n_entries) assert_null(got->entries);
  for (size_t i = 0; i < want->n_entries; i++) {
    assert_true(got->entries[i].term == want->entries[i].term);
    assert_true(got->entries[i].index == want->entries[i].index);
    assert_int_equal(got->entries[i].type, want->entries[i].type);
    assert_buf(want->entries[i].data, got->entries[i].data);
  }
  if (!want->snapshot) {
    assert_null(got->snapshot);
  } else {
    assert_non_null(got->snapshot);
    const raft_snapshot_meta *a = &want->snapshot->meta, *b = &got->snapshot->meta;
    assert_true(a->index == b->index);
    assert_true(a->term == b->term);
    assert_int_equal(a->conf.n_voters, b->conf.n_voters);
    for (size_t i = 0; i < a->conf.n_voters; i++) assert_true(a->conf.voters[i] == b->conf.voters[i]);
    if (snap_data) assert_buf(want->snapshot->data, got->snapshot->data);
    else assert_int_equal(got->snapshot->data.len, 0);
  }
  assert_buf(want->context, got->context);
}

/* Checks the header of the single frame in b and returns its payload length. */
static size_t one_frame(const raft_codec_buf *b) {
  size_t n = 0;
  assert_int_equal(raft_codec_frame_peek(b->base, b->len, RAFT_CODEC_DEFAULT_MAX_FRAME, &n), 1);
  assert_int_equal(n + RAFT_CODEC_HEADER_LEN, b->len);
  return n;
}

/* Decodes the frame in b from a copy that is wiped before the result is checked, so the result
 * must not borrow the input. */
static int decode_copy(const raft_codec_buf *b, raft_codec_frame *f) {
  size_t n = one_frame(b);
  uint8_t *copy = malloc(n);
  assert_non_null(copy);
  memcpy(copy, b->base + RAFT_CODEC_HEADER_LEN, n);
  int rc = raft_codec_decode(copy, n, f);
  memset(copy, 0xa5, n);
  free(copy);
  return rc;
}

/* Every wire message type round-trips with entries, snapshot (conf state, data) and context. */
static void test_message_roundtrip_every_type(void **state) {
  (void)state;
  for (uint8_t t = RAFT_MSG_PROP; t < RAFT_MSG_TYPE_MAX; t++) {
    raft_message m;
    raft_entry ents[3];
    raft_snapshot snap;
    raft_codec_buf b = {0};
    raft_codec_frame f;
    sample_message(t, &m, ents, &snap);
    assert_int_equal(raft_codec_encode_message(&b, &m), 0);
    assert_int_equal(decode_copy(&b, &f), 0);
    assert_int_equal(f.kind, RAFT_CODEC_MESSAGE);
    assert_true(f.has_message);
    assert_message(&m, &f.message, true);
    raft_codec_frame_free(&f);
    assert_null(f.arena);
    free(b.base);
  }
}

/* A message with no entries, no snapshot and no context decodes to NULL pointers and no arena. */
static void test_message_roundtrip_empty(void **state) {
  (void)state;
  raft_message m = {.type = RAFT_MSG_HEARTBEAT, .to = 2, .from = 1, .term = 3, .commit = 4};
  raft_codec_buf b = {0};
  raft_codec_frame f;
  assert_int_equal(raft_codec_encode_message(&b, &m), 0);
  assert_int_equal(decode_copy(&b, &f), 0);
  assert_message(&m, &f.message, true);
  assert_null(f.arena);
  raft_codec_frame_free(&f);
  free(b.base);
}

/* Local-only types and conf states over RAFT_MAX_VOTERS are refused and leave the buffer as it
 * was; encoders append, so several frames sit back to back. */
static void test_encode_refuses_and_appends(void **state) {
  (void)state;
  raft_codec_buf b = {0};
  raft_codec_handshake h = {.cluster_id = 9, .from = 1, .to = 2};
  assert_int_equal(raft_codec_encode_handshake(&b, &h), 0);
  size_t first = b.len;
  for (uint8_t t = RAFT_MSG_HUP; t < RAFT_MSG_PROP; t++) {
    raft_message m = {.type = t};
    assert_int_equal(raft_codec_encode_message(&b, &m), -EINVAL);
    assert_int_equal(b.len, first);
  }
  raft_message bad = {.type = RAFT_MSG_TYPE_MAX};
  assert_int_equal(raft_codec_encode_message(&b, &bad), -EINVAL);
  raft_snapshot snap = {0};
  snap.meta.conf.n_voters = RAFT_MAX_VOTERS + 1;
  raft_message m = {.type = RAFT_MSG_SNAP, .snapshot = &snap};
  assert_int_equal(raft_codec_encode_message(&b, &m), -EINVAL);
  assert_int_equal(b.len, first);
  snap.meta.conf.n_voters = RAFT_MAX_VOTERS;
  for (size_t i = 0; i < RAFT_MAX_VOTERS; i++) snap.meta.conf.voters[i] = i + 1;
  assert_int_equal(raft_codec_encode_message(&b, &m), 0);
  /* Two frames: the handshake, then the message. */
  size_t n1 = 0, n2 = 0;
  raft_codec_frame f;
  assert_int_equal(raft_codec_frame_peek(b.base, b.len, 1 << 20, &n1), 1);
  assert_int_equal(raft_codec_decode(b.base + 4, n1, &f), 0);
  assert_int_equal(f.kind, RAFT_CODEC_HANDSHAKE);
  const uint8_t *p = b.base + 4 + n1;
  assert_int_equal(raft_codec_frame_peek(p, b.len - 4 - n1, 1 << 20, &n2), 1);
  assert_int_equal(4 + n1 + 4 + n2, b.len);
  assert_int_equal(raft_codec_decode(p + 4, n2, &f), 0);
  assert_message(&m, &f.message, true);
  raft_codec_frame_free(&f);
  free(b.base);
}

/* The handshake and the snapshot ack round-trip. */
static void test_handshake_and_ack_roundtrip(void **state) {
  (void)state;
  raft_codec_handshake h = {.cluster_id = 0xdeadbeefcafef00dULL, .from = 3, .to = UINT64_MAX,
                            .channel = RAFT_CODEC_CHANNEL_SNAPSHOT};
  raft_codec_snap_ack a = {.snap_id = 77, .ok = true};
  raft_codec_buf b = {0};
  raft_codec_frame f;
  assert_int_equal(raft_codec_encode_handshake(&b, &h), 0);
  assert_int_equal(decode_copy(&b, &f), 0);
  assert_int_equal(f.kind, RAFT_CODEC_HANDSHAKE);
  assert_true(f.handshake.cluster_id == h.cluster_id);
  assert_true(f.handshake.from == 3 && f.handshake.to == UINT64_MAX);
  assert_int_equal(f.handshake.channel, RAFT_CODEC_CHANNEL_SNAPSHOT);
  assert_false(f.has_message);
  raft_codec_frame_free(&f);
  b.len = 0;
  assert_int_equal(raft_codec_encode_snap_ack(&b, &a), 0);
  assert_int_equal(decode_copy(&b, &f), 0);
  assert_int_equal(f.kind, RAFT_CODEC_SNAP_ACK);
  assert_true(f.ack.snap_id == 77 && f.ack.ok);
  raft_codec_frame_free(&f);
  /* REMOVED names the member told; member 0 is no member and does not decode. */
  b.len = 0;
  assert_int_equal(raft_codec_encode_removed(&b, 0xabcdef0123456789ULL), 0);
  assert_int_equal(decode_copy(&b, &f), 0);
  assert_int_equal(f.kind, RAFT_CODEC_REMOVED);
  assert_true(f.removed_id == 0xabcdef0123456789ULL);
  raft_codec_frame_free(&f);
  b.len = 0;
  assert_int_equal(raft_codec_encode_removed(&b, 0), 0);
  assert_int_equal(decode_copy(&b, &f), -EINVAL);
  free(b.base);
}

/* Snapshot chunks: the first carries the MSG_SNAP message without the data, every chunk its
 * piece; offsets, totals and the last flag must agree. */
static void test_snap_chunk_roundtrip(void **state) {
  (void)state;
  raft_message m;
  raft_entry ents[3];
  raft_snapshot snap;
  sample_message(RAFT_MSG_SNAP, &m, ents, &snap);
  m.entries = NULL;
  m.n_entries = 0;
  uint8_t data[100];
  for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 7);
  raft_codec_snap_chunk c1 = {.snap_id = 5, .offset = 0, .total = 100, .data = {data, 60}};
  raft_codec_snap_chunk c2 = {.snap_id = 5, .offset = 60, .total = 100, .last = true,
                              .data = {data + 60, 40}};
  raft_codec_buf b = {0};
  raft_codec_frame f;
  assert_int_equal(raft_codec_encode_snap_chunk(&b, &c1, &m), 0);
  assert_int_equal(decode_copy(&b, &f), 0);
  assert_int_equal(f.kind, RAFT_CODEC_SNAP_CHUNK);
  assert_true(f.has_message);
  assert_message(&m, &f.message, false);
  assert_true(f.chunk.snap_id == 5 && f.chunk.offset == 0 && f.chunk.total == 100);
  assert_false(f.chunk.last);
  assert_buf(c1.data, f.chunk.data);
  raft_codec_frame_free(&f);
  b.len = 0;
  assert_int_equal(raft_codec_encode_snap_chunk(&b, &c2, NULL), 0);
  assert_int_equal(decode_copy(&b, &f), 0);
  assert_false(f.has_message);
  assert_true(f.chunk.offset == 60 && f.chunk.last);
  assert_buf(c2.data, f.chunk.data);
  raft_codec_frame_free(&f);
  /* Inconsistent chunks are malformed: last flag wrong, past the total, message not at 0. */
  raft_codec_snap_chunk bad[] = {
      {.snap_id = 1, .offset = 60, .total = 100, .last = false, .data = {data, 40}},
      {.snap_id = 1, .offset = 0, .total = 100, .last = true, .data = {data, 60}},
      {.snap_id = 1, .offset = 80, .total = 100, .last = true, .data = {data, 40}},
      {.snap_id = 1, .offset = 101, .total = 100, .last = true},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    b.len = 0;
    assert_int_equal(raft_codec_encode_snap_chunk(&b, &bad[i], NULL), 0);
    assert_int_equal(decode_copy(&b, &f), -EINVAL);
  }
  b.len = 0;
  assert_int_equal(raft_codec_encode_snap_chunk(&b, &c2, &m), 0);
  assert_int_equal(decode_copy(&b, &f), -EINVAL);
  /* The message on a chunk must be a MSG_SNAP with a snapshot. */
  raft_message app = {.type = RAFT_MSG_APP};
  b.len = 0;
  assert_int_equal(raft_codec_encode_snap_chunk(&b, &c1, &app), 0);
  assert_int_equal(decode_copy(&b, &f), -EINVAL);
  free(b.base);
}

/* frame_peek: short headers and short payloads need more bytes, an announced payload over the
 * limit is -EMSGSIZE, an empty one -EINVAL. */
static void test_frame_peek(void **state) {
  (void)state;
  uint8_t buf[16] = {0, 0, 0, 8};
  size_t n = 0;
  for (size_t avail = 0; avail < 12; avail++)
    assert_int_equal(raft_codec_frame_peek(buf, avail, 100, &n), 0);
  assert_int_equal(raft_codec_frame_peek(buf, 12, 100, &n), 1);
  assert_int_equal(n, 8);
  assert_int_equal(raft_codec_frame_peek(buf, 16, 100, &n), 1);
  assert_int_equal(raft_codec_frame_peek(buf, 12, 7, &n), -EMSGSIZE);
  assert_int_equal(raft_codec_frame_peek(buf, 12, 8, &n), 1);
  uint8_t big[4] = {0xff, 0xff, 0xff, 0xff};
  assert_int_equal(raft_codec_frame_peek(big, 4, RAFT_CODEC_DEFAULT_MAX_FRAME, &n), -EMSGSIZE);
  uint8_t empty[4] = {0};
  assert_int_equal(raft_codec_frame_peek(empty, 4, 100, &n), -EINVAL);
}

/* Every proper prefix of every kind of payload is refused with -EINVAL. */
static void test_truncated_at_every_length(void **state) {
  (void)state;
  raft_message m;
  raft_entry ents[3];
  raft_snapshot snap;
  sample_message(RAFT_MSG_APP, &m, ents, &snap);
  raft_codec_buf frames[4] = {{0}};
  raft_codec_handshake h = {.cluster_id = 1, .from = 2, .to = 3};
  raft_codec_snap_chunk c = {.snap_id = 1, .total = 3, .last = true, .data = {(uint8_t *)"abc", 3}};
  raft_codec_snap_ack a = {.snap_id = 1, .ok = false};
  raft_message sm;
  sample_message(RAFT_MSG_SNAP, &sm, ents, &snap);
  assert_int_equal(raft_codec_encode_message(&frames[0], &m), 0);
  assert_int_equal(raft_codec_encode_handshake(&frames[1], &h), 0);
  assert_int_equal(raft_codec_encode_snap_chunk(&frames[2], &c, &sm), 0);
  assert_int_equal(raft_codec_encode_snap_ack(&frames[3], &a), 0);
  for (int k = 0; k < 4; k++) {
    size_t n = one_frame(&frames[k]);
    for (size_t len = 0; len < n; len++) {
      uint8_t *p = malloc(len ? len : 1);
      memcpy(p, frames[k].base + 4, len);
      raft_codec_frame f;
      assert_int_equal(raft_codec_decode(p, len, &f), -EINVAL);
      assert_null(f.arena);
      free(p);
    }
    /* And the whole payload still decodes; one extra byte is refused. */
    uint8_t *p = malloc(n + 1);
    memcpy(p, frames[k].base + 4, n);
    p[n] = 0xc0;
    raft_codec_frame f;
    assert_int_equal(raft_codec_decode(p, n, &f), 0);
    raft_codec_frame_free(&f);
    assert_int_equal(raft_codec_decode(p, n + 1, &f), -EINVAL);
    free(p);
    free(frames[k].base);
  }
}

/* Packs an arbitrary msgpack array into a fresh sbuffer (for hand-made bad payloads). */
static int decode_sbuf(msgpack_sbuffer *sb) {
  raft_codec_frame f;
  int rc = raft_codec_decode((const uint8_t *)sb->data, sb->size, &f);
  if (rc == 0) raft_codec_frame_free(&f);
  msgpack_sbuffer_clear(sb);
  return rc;
}

/* Another protocol version is -EPROTONOSUPPORT whatever follows; schema violations are -EINVAL. */
static void test_version_and_schema(void **state) {
  (void)state;
  msgpack_sbuffer sb;
  msgpack_packer pk;
  msgpack_sbuffer_init(&sb);
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  /* [2, 1, "whatever"] */
  msgpack_pack_array(&pk, 3);
  msgpack_pack_uint8(&pk, 2);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_str_with_body(&pk, "whatever", 8);
  assert_int_equal(decode_sbuf(&sb), -EPROTONOSUPPORT);
  /* [0, 1] */
  msgpack_pack_array(&pk, 2);
  msgpack_pack_uint8(&pk, 0);
  msgpack_pack_uint8(&pk, 1);
  assert_int_equal(decode_sbuf(&sb), -EPROTONOSUPPORT);
  /* [1, 9]: unknown kind */
  msgpack_pack_array(&pk, 2);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_uint8(&pk, 9);
  assert_int_equal(decode_sbuf(&sb), -EINVAL);
  /* [-1, 1, ...]: a negative version is not a version */
  msgpack_pack_array(&pk, 2);
  msgpack_pack_int8(&pk, -1);
  msgpack_pack_uint8(&pk, 1);
  assert_int_equal(decode_sbuf(&sb), -EINVAL);
  /* Not an array at all. */
  msgpack_pack_uint8(&pk, 1);
  assert_int_equal(decode_sbuf(&sb), -EINVAL);
  /* Handshake with a bad channel, then a good one, then one with a str where ints belong. */
  uint64_t hs[][4] = {{1, 2, 3, 2}, {1, 2, 3, 1}};
  int want[] = {-EINVAL, 0};
  for (int i = 0; i < 2; i++) {
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, RAFT_CODEC_HANDSHAKE);
    for (int j = 0; j < 4; j++) msgpack_pack_uint64(&pk, hs[i][j]);
    assert_int_equal(decode_sbuf(&sb), want[i]);
  }
  msgpack_pack_array(&pk, 6);
  msgpack_pack_uint8(&pk, 1);
  msgpack_pack_uint8(&pk, RAFT_CODEC_HANDSHAKE);
  msgpack_pack_str_with_body(&pk, "1", 1);
  msgpack_pack_uint8(&pk, 2);
  msgpack_pack_uint8(&pk, 3);
  msgpack_pack_uint8(&pk, 0);
  assert_int_equal(decode_sbuf(&sb), -EINVAL);
  /* A message whose entry has an unknown entry type, or whose snapshot has 17 voters, or whose
   * context is a str, or whose type is local. */
  for (int variant = 0; variant < 5; variant++) {
    msgpack_pack_array(&pk, 15);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_uint8(&pk, RAFT_CODEC_MESSAGE);
    msgpack_pack_uint8(&pk, variant == 3 ? RAFT_MSG_HUP : RAFT_MSG_APP);
    for (int j = 0; j < 6; j++) msgpack_pack_uint64(&pk, (uint64_t)j + 1);
    msgpack_pack_false(&pk);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_uint64(&pk, 0);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 2);
    msgpack_pack_uint8(&pk, variant == 0 ? 2 : 1);
    msgpack_pack_bin(&pk, 0);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_uint64(&pk, 1);
    size_t nv = variant == 1 ? RAFT_MAX_VOTERS + 1 : RAFT_MAX_VOTERS;
    msgpack_pack_array(&pk, nv);
    for (size_t j = 0; j < nv; j++) msgpack_pack_uint64(&pk, j + 1);
    msgpack_pack_bin(&pk, 0);
    if (variant == 2) msgpack_pack_str_with_body(&pk, "x", 1);
    else msgpack_pack_bin_with_body(&pk, "x", 1);
    assert_int_equal(decode_sbuf(&sb), variant == 4 ? 0 : -EINVAL);
  }
  msgpack_sbuffer_destroy(&sb);
}

/* Arrays and maps announcing more elements than bytes remain are refused before msgpack-c would
 * allocate for them (4 G elements in a 5-byte input). */
static void test_huge_counts_refused(void **state) {
  (void)state;
  static const uint8_t inputs[][9] = {
      {0xdd, 0x7f, 0xff, 0xff, 0xff},
      {0xdf, 0xff, 0xff, 0xff, 0xff},
      {0x92, 0x01, 0xdc, 0xff, 0xff},
      {0xc6, 0xff, 0xff, 0xff, 0xf0, 0x00},
      {0x93, 0x01, 0x02, 0xdd, 0x00, 0x00, 0x00, 0x03, 0x01},
  };
  static const size_t lens[] = {5, 5, 5, 6, 9};
  for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
    raft_codec_frame f;
    assert_int_equal(raft_codec_decode(inputs[i], lens[i], &f), -EINVAL);
  }
}

/* Thousands of random payloads and mutated valid payloads (fixed seed) never crash; whatever
 * decodes is freed cleanly. */
static void test_garbage_never_crashes(void **state) {
  (void)state;
  uint64_t seed = 0x9e3779b97f4a7c15ULL;
  raft_message m;
  raft_entry ents[3];
  raft_snapshot snap;
  raft_codec_buf valid = {0};
  sample_message(RAFT_MSG_APP, &m, ents, &snap);
  assert_int_equal(raft_codec_encode_message(&valid, &m), 0);
  size_t vlen = valid.len - 4;
  uint8_t buf[512];
  int decoded = 0, refused = 0;
  for (int i = 0; i < 20000; i++) {
    size_t len;
    if (i % 2 == 0) {
      len = rng_next(&seed) % sizeof buf;
      for (size_t j = 0; j < len; j++) buf[j] = (uint8_t)rng_next(&seed);
      /* Bias half of them to start like a frame: an array with our version. */
      if (len > 2 && i % 4 == 0) {
        buf[0] = (uint8_t)(0x90 | (rng_next(&seed) % 16));
        buf[1] = 1;
      }
    } else {
      len = vlen;
      memcpy(buf, valid.base + 4, vlen);
      int flips = 1 + (int)(rng_next(&seed) % 4);
      for (int k = 0; k < flips; k++) buf[rng_next(&seed) % len] = (uint8_t)rng_next(&seed);
      if (rng_next(&seed) % 4 == 0) len = rng_next(&seed) % len;
    }
    raft_codec_frame f;
    int rc = raft_codec_decode(buf, len, &f);
    if (rc == 0) {
      decoded++;
      if (f.has_message) {
        /* Touch everything the decoder handed out. */
        uint64_t sum = 0;
        for (size_t e = 0; e < f.message.n_entries; e++)
          for (size_t k = 0; k < f.message.entries[e].data.len; k++)
            sum += f.message.entries[e].data.base[k];
        (void)sum;
      }
      raft_codec_frame_free(&f);
    } else {
      assert_true(rc == -EINVAL || rc == -EPROTONOSUPPORT);
      refused++;
    }
  }
  assert_int_equal(decoded + refused, 20000);
  assert_true(refused > 10000);
  assert_true(decoded > 100);
  free(valid.base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_message_roundtrip_every_type),
      cmocka_unit_test(test_message_roundtrip_empty),
      cmocka_unit_test(test_encode_refuses_and_appends),
      cmocka_unit_test(test_handshake_and_ack_roundtrip),
      cmocka_unit_test(test_snap_chunk_roundtrip),
      cmocka_unit_test(test_frame_peek),
      cmocka_unit_test(test_truncated_at_every_length),
      cmocka_unit_test(test_version_and_schema),
      cmocka_unit_test(test_huge_counts_refused),
      cmocka_unit_test(test_garbage_never_crashes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
