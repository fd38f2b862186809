/* fuzz_raft_codec: the peer wire format (raft/transport/codec.c), what a member reads from any
 * TCP peer. Any payload: the frame peek and the decoder never crash, and whatever decodes
 * encodes again to a payload that decodes to the same frame (round trip). */
#include <stdlib.h>
#include <string.h>

#include "raft/transport/codec.h"
#include "tests/fuzz/fuzz.h"

static int buf_eq(raft_buf a, raft_buf b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.base, b.base, a.len) == 0);
}

static int message_eq(const raft_message *a, const raft_message *b, int with_snap_data) {
  if (a->type != b->type || a->to != b->to || a->from != b->from || a->term != b->term ||
      a->log_term != b->log_term || a->index != b->index || a->commit != b->commit ||
      a->reject != b->reject || a->reject_hint != b->reject_hint ||
      a->reject_hint_term != b->reject_hint_term || a->n_entries != b->n_entries ||
      !buf_eq(a->context, b->context) || !a->snapshot != !b->snapshot)
    return 0;
  for (size_t i = 0; i < a->n_entries; i++) {
    const raft_entry *x = &a->entries[i], *y = &b->entries[i];
    if (x->term != y->term || x->index != y->index || x->type != y->type || !buf_eq(x->data, y->data))
      return 0;
  }
  if (a->snapshot) {
    const raft_snapshot *x = a->snapshot, *y = b->snapshot;
    if (x->meta.index != y->meta.index || x->meta.term != y->meta.term ||
        x->meta.conf.n_voters != y->meta.conf.n_voters ||
        memcmp(x->meta.conf.voters, y->meta.conf.voters, x->meta.conf.n_voters * sizeof(uint64_t)) != 0)
      return 0;
    if (with_snap_data && !buf_eq(x->data, y->data)) return 0;
  }
  return 1;
}

static int encode_again(const raft_codec_frame *f, raft_codec_buf *b) {
  switch (f->kind) {
    case RAFT_CODEC_HANDSHAKE: return raft_codec_encode_handshake(b, &f->handshake);
    case RAFT_CODEC_MESSAGE: return raft_codec_encode_message(b, &f->message);
    case RAFT_CODEC_SNAP_CHUNK:
      return raft_codec_encode_snap_chunk(b, &f->chunk, f->has_message ? &f->message : NULL);
    case RAFT_CODEC_SNAP_ACK: return raft_codec_encode_snap_ack(b, &f->ack);
    case RAFT_CODEC_REMOVED: return raft_codec_encode_removed(b, f->removed_id);
    default: return -1;
  }
}

static int frame_eq(const raft_codec_frame *a, const raft_codec_frame *b) {
  if (a->kind != b->kind) return 0;
  switch (a->kind) {
    case RAFT_CODEC_HANDSHAKE:
      return a->handshake.cluster_id == b->handshake.cluster_id &&
             a->handshake.from == b->handshake.from && a->handshake.to == b->handshake.to &&
             a->handshake.channel == b->handshake.channel;
    case RAFT_CODEC_MESSAGE: return message_eq(&a->message, &b->message, 1);
    case RAFT_CODEC_SNAP_CHUNK:
      return a->chunk.snap_id == b->chunk.snap_id && a->chunk.offset == b->chunk.offset &&
             a->chunk.total == b->chunk.total && a->chunk.last == b->chunk.last &&
             buf_eq(a->chunk.data, b->chunk.data) && a->has_message == b->has_message &&
             (!a->has_message || message_eq(&a->message, &b->message, 0));
    case RAFT_CODEC_SNAP_ACK: return a->ack.snap_id == b->ack.snap_id && a->ack.ok == b->ack.ok;
    case RAFT_CODEC_REMOVED: return a->removed_id == b->removed_id;
    default: return 0;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  size_t payload_len = 0;
  int peek = raft_codec_frame_peek(data, size, 1u << 20, &payload_len);
  FUZZ_CHECK(peek <= 0 || payload_len + RAFT_CODEC_HEADER_LEN <= size);
  raft_codec_frame f;
  if (raft_codec_decode(data, size, &f) != 0) return 0;
  raft_codec_buf b = {0};
  int e = encode_again(&f, &b);
  FUZZ_CHECK(e == 0); /* what the decoder accepts, the encoder writes */
  if (e == 0) {
    FUZZ_CHECK(b.len >= RAFT_CODEC_HEADER_LEN);
    raft_codec_frame g;
    FUZZ_CHECK(raft_codec_decode(b.base + RAFT_CODEC_HEADER_LEN, b.len - RAFT_CODEC_HEADER_LEN, &g) == 0);
    FUZZ_CHECK(frame_eq(&f, &g));
    raft_codec_frame_free(&g);
  }
  free(b.base);
  raft_codec_frame_free(&f);
  return 0;
}

static void emit_frame(fuzz_emit emit, void *ctx, raft_codec_buf *b) {
  if (b->len > RAFT_CODEC_HEADER_LEN) emit(ctx, b->base + RAFT_CODEC_HEADER_LEN, b->len - RAFT_CODEC_HEADER_LEN);
  b->len = 0;
}

void fuzz_seeds(fuzz_emit emit, void *ctx) {
  raft_codec_buf b = {0};
  raft_codec_handshake h = {.cluster_id = 0xabcdef, .from = 1, .to = 2, .channel = 1};
  if (raft_codec_encode_handshake(&b, &h) == 0) emit_frame(emit, ctx, &b);
  uint8_t d1[] = "put /a 1", d2[] = {0, 1, 2, 0xff};
  raft_entry ents[2] = {{.term = 3, .index = 10, .type = RAFT_ENTRY_NORMAL, .data = {d1, sizeof d1 - 1}},
                        {.term = 3, .index = 11, .type = RAFT_ENTRY_CONF_CHANGE, .data = {d2, sizeof d2}}};
  raft_message app = {.type = RAFT_MSG_APP, .to = 2, .from = 1, .term = 3, .log_term = 2, .index = 9,
                      .commit = 8, .entries = ents, .n_entries = 2};
  if (raft_codec_encode_message(&b, &app) == 0) emit_frame(emit, ctx, &b);
  raft_message resp = {.type = RAFT_MSG_APP_RESP, .to = 1, .from = 2, .term = 3, .index = 7,
                       .reject = true, .reject_hint = 5, .reject_hint_term = 2};
  if (raft_codec_encode_message(&b, &resp) == 0) emit_frame(emit, ctx, &b);
  uint8_t rctx[] = "read-17";
  raft_message hb = {.type = RAFT_MSG_HEARTBEAT, .to = 3, .from = 1, .term = 4, .commit = 11,
                     .context = {rctx, sizeof rctx - 1}};
  if (raft_codec_encode_message(&b, &hb) == 0) emit_frame(emit, ctx, &b);
  uint8_t sdata[] = "snapshot bytes";
  raft_snapshot snap = {.meta = {.index = 100, .term = 3, .conf = {.voters = {1, 2, 3}, .n_voters = 3}},
                        .data = {sdata, sizeof sdata - 1}};
  raft_message sm = {.type = RAFT_MSG_SNAP, .to = 2, .from = 1, .term = 3, .snapshot = &snap};
  if (raft_codec_encode_message(&b, &sm) == 0) emit_frame(emit, ctx, &b);
  raft_codec_snap_chunk c0 = {.snap_id = 7, .offset = 0, .total = 14, .last = false, .data = {sdata, 6}};
  if (raft_codec_encode_snap_chunk(&b, &c0, &sm) == 0) emit_frame(emit, ctx, &b);
  raft_codec_snap_chunk c1 = {.snap_id = 7, .offset = 6, .total = 14, .last = true, .data = {sdata + 6, 8}};
  if (raft_codec_encode_snap_chunk(&b, &c1, NULL) == 0) emit_frame(emit, ctx, &b);
  raft_codec_snap_ack ack = {.snap_id = 7, .ok = true};
  if (raft_codec_encode_snap_ack(&b, &ack) == 0) emit_frame(emit, ctx, &b);
  if (raft_codec_encode_removed(&b, 42) == 0) emit_frame(emit, ctx, &b);
  free(b.base);
}
