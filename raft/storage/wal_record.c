/* wal_record: the record format of the raft log's segments (see wal_storage.h): the CRC over
 * the segment's sequence number, type, length and payload; the encoders of hard state and
 * configuration; the buffer a batch's records are built in before one write. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "raft/storage/wal_i.h"

uint32_t wal_rec_crc(uint64_t seq, uint8_t type, uint32_t len, const uint8_t *payload) {
  uint8_t h[13];
  put64(h, seq);
  h[8] = type;
  put32(h + 9, len);
  uLong c = crc32(0L, h, sizeof h);
  return (uint32_t)crc32(c, payload, len);
}

void wal_put_conf(uint8_t *p, const raft_conf_state *cs) {
  put64(p, cs->n_voters);
  for (size_t i = 0; i < cs->n_voters; i++) put64(p + 8 + 8 * i, cs->voters[i]);
}

/* Returns the bytes used, or 0 when malformed. */
size_t wal_get_conf(const uint8_t *p, size_t len, raft_conf_state *cs) {
  if (len < 8) return 0;
  uint64_t n = get64(p);
  if (n > RAFT_MAX_VOTERS || len < 8 + 8 * n) return 0;
  cs->n_voters = n;
  for (size_t i = 0; i < n; i++) cs->voters[i] = get64(p + 8 + 8 * i);
  return 8 + 8 * n;
}

void wal_put_hs(uint8_t *p, const raft_hard_state *hs) {
  put64(p, hs->term);
  put64(p + 8, hs->vote);
  put64(p + 16, hs->commit);
}

void wal_get_hs(const uint8_t *p, raft_hard_state *hs) {
  *hs = (raft_hard_state){get64(p), get64(p + 8), get64(p + 16)};
}

uint8_t *wal_buf_reserve(raft_wal *w, size_t n) {
  if (w->buf_len + n > w->buf_cap) {
    size_t nc = w->buf_cap ? w->buf_cap : 4096;
    while (nc < w->buf_len + n) nc *= 2;
    uint8_t *b = realloc(w->buf, nc);
    if (!b) abort();
    w->buf = b;
    w->buf_cap = nc;
  }
  return w->buf + w->buf_len;
}

/* Starts a record of type with payload length len in the buffer; returns where the payload
 * goes. rec_end computes its CRC once the payload is there. */
uint8_t *wal_rec_begin(raft_wal *w, uint8_t type, size_t len) {
  uint8_t *p = wal_buf_reserve(w, REC_HEAD + len);
  put32(p + 4, (uint32_t)len);
  p[8] = type;
  w->buf_len += REC_HEAD + len;
  return p + REC_HEAD;
}

void wal_rec_end(uint8_t *payload, uint64_t seq) {
  uint8_t *h = payload - REC_HEAD;
  put32(h, wal_rec_crc(seq, h[8], get32(h + 4), payload));
}

void wal_rec_start(raft_wal *w, uint64_t seq) {
  uint8_t *p = wal_rec_begin(w, REC_START, 40 + wal_conf_bytes(&w->cs));
  wal_put_hs(p, &w->hs);
  put64(p + 24, w->snap_index);
  put64(p + 32, w->snap_term);
  wal_put_conf(p + 40, &w->cs);
  wal_rec_end(p, seq);
}
