/* wal_i: the inside of wal_storage, shared by its files: the on-disk constants and record types,
 * struct raft_wal, and the functions one file of the module calls in another.
 *   wal_record.c   the record format and the batch buffer
 *   wal_segment.c  segment files: creating, sealing, recycling, deleting; the spare's helper
 *   wal_scan.c     replaying the segments at open
 *   wal_storage.c  the public API: the read side, appends, compaction, open and close */
#ifndef QUORUM_RAFT_STORAGE_WAL_I_H
#define QUORUM_RAFT_STORAGE_WAL_I_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/storage/wal_storage.h"

#define WAL_MAGIC "QRMWAL01"
#define HEADER_BYTES 20 /* magic(8) seq(8) crc(4) */
#define REC_HEAD 9      /* crc(4) len(4) type(1) */
#define SPARE_NAME "prealloc.tmp"

enum rec_type {
  REC_START = 1,   /* hs(24) snap_index(8) snap_term(8) conf */
  REC_ENTRY = 2,   /* index(8) term(8) etype(1) data */
  REC_HARD = 3,    /* hs(24) */
  REC_CONF = 4,    /* conf */
  REC_COMPACT = 5, /* index(8) term(8) */
  REC_RESET = 6,   /* index(8) term(8) conf: a snapshot replaces the log */
  REC_SEAL = 7,    /* empty: the log continues in the next segment */
};

typedef struct seg {
  uint64_t seq;
  int fd;
  uint64_t max_index; /* highest entry index written into it (0: none) */
} seg;

typedef struct loc {
  uint64_t term;
  uint64_t off; /* of the entry's data (after index, term, type) in its segment */
  uint64_t seq; /* its segment */
  uint32_t len;
  uint8_t type;
} loc;

typedef enum spare_state { SPARE_NONE, SPARE_PREPARING, SPARE_READY } spare_state;

struct raft_wal {
  char *dir;
  int dir_fd;
  bool sync;
  size_t seg_bytes;
  raft_storage vt;
  raft_wal_snapshot_fn snap_fn;
  void *snap_arg;

  raft_hard_state hs;
  raft_conf_state cs;
  uint64_t snap_index, snap_term; /* compaction point: entries <= snap_index are gone */
  uint64_t last;
  /* Entries base..last (base = snap_index + 1 once open); locs[i] is entry base + i. */
  uint64_t base;
  loc *locs;
  size_t n_locs, cap_locs;

  seg *segs; /* ascending seq; the last one is written */
  size_t n_segs, cap_segs;
  uint64_t off;       /* write offset in the last segment */
  uint64_t start_off; /* where its records after START begin */
  bool failed;        /* a write failed: the log refuses every further write */

  uint8_t *buf; /* records of the batch being written */
  size_t buf_len, buf_cap;

  /* The spare segment and its helper thread. */
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t helper;
  bool helper_started, want_spare, stopping;
  spare_state spare;
  int spare_err;
};

static inline void put64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static inline uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}

static inline void put32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}

static inline uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t cur_seq(const raft_wal *w) { return w->segs[w->n_segs - 1].seq; }

static inline size_t wal_conf_bytes(const raft_conf_state *cs) { return 8 + 8 * cs->n_voters; }

/* wal_record.c */
uint32_t wal_rec_crc(uint64_t seq, uint8_t type, uint32_t len, const uint8_t *payload);
void wal_put_conf(uint8_t *p, const raft_conf_state *cs);
size_t wal_get_conf(const uint8_t *p, size_t len, raft_conf_state *cs); /* 0: malformed */
void wal_put_hs(uint8_t *p, const raft_hard_state *hs);
void wal_get_hs(const uint8_t *p, raft_hard_state *hs);
uint8_t *wal_buf_reserve(raft_wal *w, size_t n);
uint8_t *wal_rec_begin(raft_wal *w, uint8_t type, size_t len);
void wal_rec_end(uint8_t *payload, uint64_t seq);
void wal_rec_start(raft_wal *w, uint64_t seq);

/* wal_segment.c */
void wal_seg_path(const raft_wal *w, uint64_t seq, char *out, size_t n);
int wal_write_all(int fd, const void *p, size_t n, uint64_t off);
int wal_read_all(int fd, void *p, size_t n, uint64_t off);
int wal_zero_range(int fd, uint64_t off, size_t bytes, bool sync);
void *wal_helper_main(void *arg);
void wal_want_spare(raft_wal *w);
void wal_segs_push(raft_wal *w, uint64_t seq, int fd);
int wal_new_segment(raft_wal *w, uint64_t seq);
int wal_roll(raft_wal *w);
int wal_drop_segments(raft_wal *w, size_t k);
int wal_create_fresh(raft_wal *w, const char *dir);

/* wal_scan.c */
int wal_load(raft_wal *w, char *err, size_t errlen);

/* wal_storage.c: state changes, at open and when writing */
void wal_apply_compact(raft_wal *w, uint64_t index, uint64_t term);
void wal_apply_reset(raft_wal *w, uint64_t index, uint64_t term, const raft_conf_state *cs);
void wal_apply_entry(raft_wal *w, uint64_t index, uint64_t term, uint8_t type, uint64_t seq,
                     uint64_t off, uint32_t len, uint64_t *hole);

#endif
