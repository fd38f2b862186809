/* codec: the peer wire format of raft/transport — msgpack frames carrying raft messages, the
 * connection handshake and the chunks of a snapshot. Pure: no I/O, no clock, no globals.
 *
 * Framing: a 4-byte big-endian payload length, then the payload. The payload is one msgpack
 * array of positional fields whose first two fields are the protocol version and the frame kind:
 *
 *   HANDSHAKE  [1, 1, cluster_id, from, to, channel]
 *   MESSAGE    [1, 2, type, to, from, term, log_term, index, commit, reject, reject_hint,
 *               reject_hint_term, entries, snapshot, context]
 *   SNAP_CHUNK [1, 3, snap_id, offset, total, last, message, data]
 *   SNAP_ACK   [1, 4, snap_id, ok]
 *   REMOVED    [1, 5, member_id]   (the answer to a handshake from a member that was removed
 *               from the cluster: "member_id is no longer a member"; the connection closes)
 *
 *   entries  = [[term, index, type, data], ...]       data, context: bin
 *   snapshot = nil | [index, term, [voter, ...], data]
 *   message  (in SNAP_CHUNK) = nil, or on the chunk at offset 0 the 13 MESSAGE fields from
 *              `type` on as one array; its snapshot's data is empty (the chunks carry it).
 *
 * Only wire message types (RAFT_MSG_PROP .. RAFT_MSG_READ_INDEX_RESP) are encoded or accepted.
 * A frame of another version decodes to -EPROTONOSUPPORT whatever its shape, so a peer that
 * speaks a newer protocol is told apart from garbage.
 *
 * Errors are negative errno: -EINVAL malformed, -EMSGSIZE too large, -EPROTONOSUPPORT another
 * protocol version, -ENOMEM. Malformed input of any kind never crashes: input is checked to be
 * one well-bounded msgpack object before msgpack-c (which allocates every declared array size
 * up front) unpacks it. */
#ifndef QUORUM_RAFT_TRANSPORT_CODEC_H
#define QUORUM_RAFT_TRANSPORT_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core/raft.h"

#define RAFT_CODEC_VERSION 1
#define RAFT_CODEC_HEADER_LEN 4
/* Default largest payload accepted (the transport makes it configurable). */
#define RAFT_CODEC_DEFAULT_MAX_FRAME (8u << 20)

typedef enum raft_codec_kind {
  RAFT_CODEC_HANDSHAKE = 1,
  RAFT_CODEC_MESSAGE = 2,
  RAFT_CODEC_SNAP_CHUNK = 3,
  RAFT_CODEC_SNAP_ACK = 4,
  RAFT_CODEC_REMOVED = 5,
} raft_codec_kind;

/* Which outbound connection of the sender this is. */
typedef enum raft_codec_channel {
  RAFT_CODEC_CHANNEL_MESSAGES = 0,
  RAFT_CODEC_CHANNEL_SNAPSHOT = 1,
} raft_codec_channel;

/* The first frame on every connection. `to` is the member the sender believes it talks to. */
typedef struct raft_codec_handshake {
  uint64_t cluster_id;
  uint64_t from;
  uint64_t to;
  uint8_t channel; /* raft_codec_channel */
} raft_codec_handshake;

/* One piece of a snapshot's data. The chunk at offset 0 also carries the MSG_SNAP message. */
typedef struct raft_codec_snap_chunk {
  uint64_t snap_id; /* chosen by the sender, unique per connection */
  uint64_t offset;  /* of data within the snapshot's data */
  uint64_t total;   /* length of the whole snapshot data */
  bool last;
  raft_buf data;
} raft_codec_snap_chunk;

typedef struct raft_codec_snap_ack {
  uint64_t snap_id;
  bool ok;
} raft_codec_snap_ack;

/* A decoded frame. Which members are set depends on kind: handshake (HANDSHAKE), message
 * (MESSAGE, and SNAP_CHUNK when has_message), chunk (SNAP_CHUNK), ack (SNAP_ACK), removed_id
 * (REMOVED).
 * Ownership: every pointer inside (message.entries and their data, message.snapshot and its
 * data, message.context, chunk.data) points into one arena owned by the frame, independent of
 * the input buffer; raft_codec_frame_free releases it in one call. */
typedef struct raft_codec_frame {
  uint8_t kind; /* raft_codec_kind */
  raft_codec_handshake handshake;
  raft_message message;
  bool has_message;
  raft_codec_snap_chunk chunk;
  raft_codec_snap_ack ack;
  uint64_t removed_id;
  void *arena;
} raft_codec_frame;

/* A growable output buffer; base is malloc'd, the caller frees it (free(b->base)). */
typedef struct raft_codec_buf {
  uint8_t *base;
  size_t len;
  size_t cap;
} raft_codec_buf;

/* Each encoder appends one whole frame (length header + payload) to b and returns 0, or returns
 * an error and leaves b->len as it was: -EINVAL for a local-only message type or more than
 * RAFT_MAX_VOTERS voters, -EMSGSIZE for a payload over 4 GiB, -ENOMEM. Nothing is retained. */
int raft_codec_encode_handshake(raft_codec_buf *b, const raft_codec_handshake *h);
int raft_codec_encode_message(raft_codec_buf *b, const raft_message *m);
/* first: the MSG_SNAP message on the chunk at offset 0 (its snapshot's data is not encoded),
 * NULL on the others. */
int raft_codec_encode_snap_chunk(raft_codec_buf *b, const raft_codec_snap_chunk *c,
                                 const raft_message *first);
int raft_codec_encode_snap_ack(raft_codec_buf *b, const raft_codec_snap_ack *a);
int raft_codec_encode_removed(raft_codec_buf *b, uint64_t member_id);

/* Looks at the start of a byte stream. Returns 1 and sets *payload_len when a whole frame
 * (header + payload) is in the avail bytes at p, 0 when more bytes are needed, -EMSGSIZE when
 * the header announces a payload over max_frame, -EINVAL when it announces an empty one. */
int raft_codec_frame_peek(const uint8_t *p, size_t avail, size_t max_frame, size_t *payload_len);

/* Decodes one payload (without its header) into *f. On success the caller owns f's arena and
 * calls raft_codec_frame_free; on error *f holds nothing to free. */
int raft_codec_decode(const uint8_t *payload, size_t len, raft_codec_frame *f);
void raft_codec_frame_free(raft_codec_frame *f);

/* True for the types that travel between peers. */
bool raft_codec_is_wire_type(uint8_t type);

#endif
