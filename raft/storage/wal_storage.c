/* wal_storage: the Raft log in preallocated segment files (see header): the record format, the
 * scan at open, appends, segment rolls, compaction and the spare segment's helper thread. */
#include "raft/storage/wal_storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

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

/* ---------- small encoders ---------- */

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | p[i];
  return v;
}
static void put32(uint8_t *p, uint32_t v) {
  for (int i = 3; i >= 0; i--, v >>= 8) p[i] = (uint8_t)v;
}
static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t rec_crc(uint64_t seq, uint8_t type, uint32_t len, const uint8_t *payload) {
  uint8_t h[13];
  put64(h, seq);
  h[8] = type;
  put32(h + 9, len);
  uLong c = crc32(0L, h, sizeof h);
  return (uint32_t)crc32(c, payload, len);
}

static size_t conf_bytes(const raft_conf_state *cs) { return 8 + 8 * cs->n_voters; }
static void put_conf(uint8_t *p, const raft_conf_state *cs) {
  put64(p, cs->n_voters);
  for (size_t i = 0; i < cs->n_voters; i++) put64(p + 8 + 8 * i, cs->voters[i]);
}
/* Returns the bytes used, or 0 when malformed. */
static size_t get_conf(const uint8_t *p, size_t len, raft_conf_state *cs) {
  if (len < 8) return 0;
  uint64_t n = get64(p);
  if (n > RAFT_MAX_VOTERS || len < 8 + 8 * n) return 0;
  cs->n_voters = n;
  for (size_t i = 0; i < n; i++) cs->voters[i] = get64(p + 8 + 8 * i);
  return 8 + 8 * n;
}
static void put_hs(uint8_t *p, const raft_hard_state *hs) {
  put64(p, hs->term);
  put64(p + 8, hs->vote);
  put64(p + 16, hs->commit);
}
static void get_hs(const uint8_t *p, raft_hard_state *hs) {
  *hs = (raft_hard_state){get64(p), get64(p + 8), get64(p + 16)};
}

/* ---------- the batch buffer ---------- */

static uint8_t *buf_reserve(raft_wal *w, size_t n) {
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
static uint8_t *rec_begin(raft_wal *w, uint8_t type, size_t len) {
  uint8_t *p = buf_reserve(w, REC_HEAD + len);
  put32(p + 4, (uint32_t)len);
  p[8] = type;
  w->buf_len += REC_HEAD + len;
  return p + REC_HEAD;
}
static void rec_end(uint8_t *payload, uint64_t seq) {
  uint8_t *h = payload - REC_HEAD;
  put32(h, rec_crc(seq, h[8], get32(h + 4), payload));
}

static uint64_t cur_seq(const raft_wal *w) { return w->segs[w->n_segs - 1].seq; }

static void rec_start(raft_wal *w, uint64_t seq) {
  uint8_t *p = rec_begin(w, REC_START, 40 + conf_bytes(&w->cs));
  put_hs(p, &w->hs);
  put64(p + 24, w->snap_index);
  put64(p + 32, w->snap_term);
  put_conf(p + 40, &w->cs);
  rec_end(p, seq);
}

/* ---------- entry locations ---------- */

static loc *loc_at(raft_wal *w, uint64_t i) { return &w->locs[i - w->base]; }

static void locs_truncate(raft_wal *w, uint64_t from) { /* drops entries >= from */
  if (from < w->base) w->n_locs = 0;
  else if (from - w->base < w->n_locs) w->n_locs = from - w->base;
}

static void locs_drop_through(raft_wal *w, uint64_t index) { /* drops entries <= index */
  if (index < w->base) return;
  uint64_t k = index - w->base + 1;
  if (k >= w->n_locs) {
    w->n_locs = 0;
  } else {
    memmove(w->locs, w->locs + k, (w->n_locs - k) * sizeof *w->locs);
    w->n_locs -= k;
  }
  w->base = index + 1;
}

static void locs_push(raft_wal *w, const loc *l) {
  if (w->n_locs == w->cap_locs) {
    size_t nc = w->cap_locs ? w->cap_locs * 2 : 1024;
    loc *v = realloc(w->locs, nc * sizeof *v);
    if (!v) abort();
    w->locs = v;
    w->cap_locs = nc;
  }
  w->locs[w->n_locs++] = *l;
}

static seg *seg_by_seq(raft_wal *w, uint64_t seq) {
  for (size_t i = w->n_segs; i-- > 0;)
    if (w->segs[i].seq == seq) return &w->segs[i];
  return NULL;
}

/* ---------- files ---------- */

static void seg_path(const raft_wal *w, uint64_t seq, char *out, size_t n) {
  snprintf(out, n, "%s/%016" PRIx64 ".wal", w->dir, seq);
}

static int write_all(int fd, const void *p, size_t n, uint64_t off) {
  const uint8_t *b = p;
  while (n) {
    ssize_t k = pwrite(fd, b, n, (off_t)off);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    b += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 0;
}

static int read_all(int fd, void *p, size_t n, uint64_t off) {
  uint8_t *b = p;
  while (n) {
    ssize_t k = pread(fd, b, n, (off_t)off);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (k == 0) return -EIO;
    b += k;
    n -= (size_t)k;
    off += (uint64_t)k;
  }
  return 0;
}

/* Writes bytes zeros at off in fd, synced when sync. */
static int zero_range(int fd, uint64_t off, size_t bytes, bool sync) {
  static const uint8_t zeros[65536];
  int rc = 0;
  for (size_t done = 0; done < bytes && !rc; done += sizeof zeros) {
    size_t k = bytes - done < sizeof zeros ? bytes - done : sizeof zeros;
    rc = write_all(fd, zeros, k, off + done);
  }
  if (!rc && sync && fdatasync(fd) != 0) rc = -errno;
  return rc;
}

/* Writes zeros to path (created), bytes of them, and syncs it. */
static int make_zero_file(const char *path, size_t bytes) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  int rc = zero_range(fd, 0, bytes, true);
  close(fd);
  if (rc) unlink(path);
  return rc;
}

/* ---------- the spare segment's helper ---------- */

static void *helper_main(void *arg) {
  raft_wal *w = arg;
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", w->dir, SPARE_NAME);
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->want_spare && !w->stopping) pthread_cond_wait(&w->cv, &w->mu);
    if (w->stopping) break;
    w->want_spare = false;
    pthread_mutex_unlock(&w->mu);
    int rc = make_zero_file(path, w->seg_bytes);
    pthread_mutex_lock(&w->mu);
    w->spare = rc ? SPARE_NONE : SPARE_READY;
    w->spare_err = rc;
    pthread_cond_broadcast(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

/* Asks the helper for a spare when there is none. */
static void want_spare(raft_wal *w) {
  pthread_mutex_lock(&w->mu);
  if (w->spare == SPARE_NONE) {
    w->spare = SPARE_PREPARING;
    w->want_spare = true;
    pthread_cond_signal(&w->cv);
  }
  pthread_mutex_unlock(&w->mu);
}

static spare_state spare_state_now(raft_wal *w) {
  pthread_mutex_lock(&w->mu);
  spare_state s = w->spare;
  pthread_mutex_unlock(&w->mu);
  return s;
}

/* ---------- segments ---------- */

static void segs_push(raft_wal *w, uint64_t seq, int fd) {
  if (w->n_segs == w->cap_segs) {
    size_t nc = w->cap_segs ? w->cap_segs * 2 : 8;
    seg *v = realloc(w->segs, nc * sizeof *v);
    if (!v) abort();
    w->segs = v;
    w->cap_segs = nc;
  }
  w->segs[w->n_segs++] = (seg){.seq = seq, .fd = fd, .max_index = 0};
}

/* Makes segment seq the one written: a file (the spare when ready, else a fresh zero-filled
 * one), renamed into place with the directory synced, then its header and START record,
 * synced. The previous segment, if any, must already be sealed and synced. */
static int new_segment(raft_wal *w, uint64_t seq) {
  char path[4096], spare[4096];
  seg_path(w, seq, path, sizeof path);
  snprintf(spare, sizeof spare, "%s/%s", w->dir, SPARE_NAME);
  int rc = 0;
  if (spare_state_now(w) != SPARE_READY) {
    /* Wait for a helper already at work (about 10 ms for 8 MiB); else make one here. */
    pthread_mutex_lock(&w->mu);
    while (w->spare == SPARE_PREPARING) pthread_cond_wait(&w->cv, &w->mu);
    spare_state s = w->spare;
    pthread_mutex_unlock(&w->mu);
    if (s != SPARE_READY && (rc = make_zero_file(spare, w->seg_bytes))) return rc;
  }
  pthread_mutex_lock(&w->mu);
  w->spare = SPARE_NONE;
  pthread_mutex_unlock(&w->mu);
  if (rename(spare, path) != 0 || fsync(w->dir_fd) != 0) return -errno;
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  uint8_t h[HEADER_BYTES];
  memcpy(h, WAL_MAGIC, 8);
  put64(h + 8, seq);
  put32(h + 16, (uint32_t)crc32(0L, h, 16));
  w->buf_len = 0; /* callers come between batches */
  memcpy(buf_reserve(w, HEADER_BYTES), h, HEADER_BYTES);
  w->buf_len = HEADER_BYTES;
  rec_start(w, seq);
  rc = write_all(fd, w->buf, w->buf_len, 0);
  if (!rc && w->sync && fdatasync(fd) != 0) rc = -errno;
  if (rc) {
    close(fd);
    w->buf_len = 0;
    return rc;
  }
  w->off = w->start_off = w->buf_len;
  w->buf_len = 0;
  segs_push(w, seq, fd);
  return 0;
}

/* Seals the current segment and starts the next. Only between batches (buffer empty). */
static int roll(raft_wal *w) {
  seg *s = &w->segs[w->n_segs - 1];
  w->buf_len = 0;
  uint8_t *p = rec_begin(w, REC_SEAL, 0);
  rec_end(p, s->seq);
  int rc = write_all(s->fd, w->buf, w->buf_len, w->off);
  w->buf_len = 0;
  if (!rc && w->sync && fdatasync(s->fd) != 0) rc = -errno;
  if (rc) return rc;
  w->off += REC_HEAD;
  return new_segment(w, s->seq + 1);
}

/* Removes segments [0, k) (none of them the last): recycled as the spare when there is none,
 * else unlinked; the directory is synced. */
static int drop_segments(raft_wal *w, size_t k) {
  if (!k) return 0;
  char path[4096], spare[4096];
  snprintf(spare, sizeof spare, "%s/%s", w->dir, SPARE_NAME);
  for (size_t i = 0; i < k; i++) {
    seg_path(w, w->segs[i].seq, path, sizeof path);
    close(w->segs[i].fd);
    bool recycle = false;
    pthread_mutex_lock(&w->mu);
    if (w->spare == SPARE_NONE) {
      struct stat st;
      if (stat(path, &st) == 0 && (size_t)st.st_size >= w->seg_bytes) {
        recycle = true;
        w->spare = SPARE_READY; /* set before the rename: the helper is idle (NONE) */
      }
    }
    pthread_mutex_unlock(&w->mu);
    int rc = recycle ? rename(path, spare) : unlink(path);
    if (rc != 0) {
      rc = -errno;
      if (recycle) {
        pthread_mutex_lock(&w->mu);
        w->spare = SPARE_NONE;
        pthread_mutex_unlock(&w->mu);
      }
      memmove(w->segs, w->segs + i + 1, (w->n_segs - i - 1) * sizeof *w->segs);
      w->n_segs -= i + 1;
      return rc;
    }
  }
  memmove(w->segs, w->segs + k, (w->n_segs - k) * sizeof *w->segs);
  w->n_segs -= k;
  if (fsync(w->dir_fd) != 0) return -errno;
  return 0;
}

/* ---------- the read side ---------- */

static int st_term(void *ctx, uint64_t i, uint64_t *term) {
  raft_wal *w = ctx;
  if (i == w->snap_index) {
    *term = w->snap_term;
    return 0;
  }
  if (i < w->snap_index) return RAFT_E_COMPACTED;
  if (i > w->last) return RAFT_E_UNAVAILABLE;
  *term = loc_at(w, i)->term;
  return 0;
}

static int st_initial(void *ctx, raft_hard_state *hs, raft_conf_state *cs) {
  raft_wal_initial(ctx, hs, cs);
  return 0;
}

static int st_first(void *ctx, uint64_t *i) {
  *i = ((raft_wal *)ctx)->snap_index + 1;
  return 0;
}

static int st_last(void *ctx, uint64_t *i) {
  *i = ((raft_wal *)ctx)->last;
  return 0;
}

static int st_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes, raft_entry **out,
                      size_t *n) {
  raft_wal *w = ctx;
  *out = NULL;
  *n = 0;
  if (lo <= w->snap_index) return RAFT_E_COMPACTED;
  if (hi > w->last + 1) return RAFT_E_UNAVAILABLE;
  if (lo >= hi) return 0;
  /* How many fit in max_bytes (at least one). */
  size_t cnt = 0;
  uint64_t bytes = 0;
  for (uint64_t i = lo; i < hi; i++) {
    uint32_t len = loc_at(w, i)->len;
    if (cnt && bytes + len > max_bytes) break;
    bytes += len;
    cnt++;
  }
  raft_entry *v = calloc(cnt, sizeof *v);
  if (!v) return RAFT_E_NOMEM;
  int rc = 0;
  size_t done = 0;
  /* Reads runs of entries stored back to back in one segment with one pread each. */
  while (done < cnt && !rc) {
    const loc *first = loc_at(w, lo + done);
    size_t k = 1;
    uint64_t end = first->off + first->len;
    while (done + k < cnt) {
      const loc *nx = loc_at(w, lo + done + k);
      if (nx->seq != first->seq || nx->off != end + REC_HEAD + 17) break;
      end = nx->off + nx->len;
      k++;
    }
    seg *s = seg_by_seq(w, first->seq);
    if (!s) {
      rc = RAFT_E_STORAGE;
      break;
    }
    size_t span = (size_t)(end - first->off);
    uint8_t *tmp = malloc(span ? span : 1);
    if (!tmp) {
      rc = RAFT_E_NOMEM;
      break;
    }
    if (read_all(s->fd, tmp, span, first->off)) {
      free(tmp);
      rc = RAFT_E_STORAGE;
      break;
    }
    for (size_t j = 0; j < k && !rc; j++) {
      const loc *l = loc_at(w, lo + done + j);
      raft_entry *e = &v[done + j];
      e->index = lo + done + j;
      e->term = l->term;
      e->type = l->type;
      e->data.len = l->len;
      if (l->len) {
        e->data.base = malloc(l->len);
        if (!e->data.base) {
          rc = RAFT_E_NOMEM;
          break;
        }
        memcpy(e->data.base, tmp + (l->off - first->off), l->len);
      }
    }
    free(tmp);
    if (!rc) done += k;
  }
  if (rc) {
    raft_entries_free(v, cnt);
    return rc;
  }
  *out = v;
  *n = cnt;
  return 0;
}

static int st_snapshot(void *ctx, raft_snapshot *out) {
  raft_wal *w = ctx;
  memset(out, 0, sizeof *out);
  if (!w->snap_fn) return RAFT_E_SNAP_TEMP;
  return w->snap_fn(w->snap_arg, out);
}

const raft_storage *raft_wal_storage(raft_wal *w) { return &w->vt; }

void raft_wal_set_snapshotter(raft_wal *w, raft_wal_snapshot_fn fn, void *arg) {
  w->snap_fn = fn;
  w->snap_arg = arg;
}

uint64_t raft_wal_first_index(const raft_wal *w) { return w->snap_index + 1; }
uint64_t raft_wal_last_index(const raft_wal *w) { return w->last; }
size_t raft_wal_segments(const raft_wal *w) { return w->n_segs; }

void raft_wal_initial(const raft_wal *w, raft_hard_state *hs, raft_conf_state *cs) {
  if (hs) *hs = w->hs;
  if (cs) *cs = w->cs;
}

/* ---------- applying records (at open and when writing) ---------- */

static void apply_compact(raft_wal *w, uint64_t index, uint64_t term) {
  if (index <= w->snap_index) return;
  w->snap_index = index;
  w->snap_term = term;
  if (w->last < index) {
    w->last = index;
    w->n_locs = 0;
    w->base = index + 1;
  } else {
    locs_drop_through(w, index);
  }
}

static void apply_reset(raft_wal *w, uint64_t index, uint64_t term, const raft_conf_state *cs) {
  w->snap_index = w->last = index;
  w->snap_term = term;
  w->n_locs = 0;
  w->base = index + 1;
  w->cs = *cs;
}

/* An entry record at (seq, off of its data). At open a gap (index > last + 1) is allowed: the
 * entries below it were in deleted segments and must turn out to be compacted (checked at the
 * end of the scan); *hole is raised to index - 1. */
static void apply_entry(raft_wal *w, uint64_t index, uint64_t term, uint8_t type, uint64_t seq,
                        uint64_t off, uint32_t len, uint64_t *hole) {
  if (index <= w->snap_index) return;
  if (index <= w->last) {
    locs_truncate(w, index);
  } else if (index > w->last + 1) {
    if (hole && *hole < index - 1) *hole = index - 1;
    w->n_locs = 0;
    w->base = index;
  }
  if (w->n_locs == 0) w->base = index;
  locs_push(w, &(loc){.term = term, .off = off, .seq = seq, .len = len, .type = type});
  w->last = index;
  seg *s = seg_by_seq(w, seq);
  if (s && s->max_index < index) s->max_index = index;
}

/* ---------- scanning at open ---------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* Replays one segment's records. is_last: the first bad record ends the log (its offset goes
 * to w->off). Returns 0, 1 (a last segment whose header is not written: to be discarded) or
 * -EIO with a message. *sealed tells whether it ended with SEAL. */
static int scan_segment(raft_wal *w, seg *s, bool is_last, uint64_t *hole, bool *sealed,
                        char *err, size_t errlen) {
  struct stat st;
  if (fstat(s->fd, &st) != 0) {
    snprintf(err, errlen, "cannot stat raft log segment %016" PRIx64 ": %s", s->seq,
             strerror(errno));
    return -EIO;
  }
  size_t size = (size_t)st.st_size;
  uint8_t *data = malloc(size ? size : 1);
  if (!data) return -ENOMEM;
  if (size && read_all(s->fd, data, size, 0)) {
    free(data);
    snprintf(err, errlen, "cannot read raft log segment %016" PRIx64, s->seq);
    return -EIO;
  }
  *sealed = false;
  if (size < HEADER_BYTES || memcmp(data, WAL_MAGIC, 8) || get64(data + 8) != s->seq ||
      get32(data + 16) != (uint32_t)crc32(0L, data, 16)) {
    free(data);
    if (is_last) return 1;
    snprintf(err, errlen, "raft log segment %016" PRIx64 " has a bad header", s->seq);
    return -EIO;
  }
  size_t off = HEADER_BYTES;
  int rc = 0;
  bool started = false;
  for (;;) {
    bool ok = off + REC_HEAD <= size;
    uint32_t len = 0;
    uint8_t type = 0;
    const uint8_t *p = NULL;
    if (ok) {
      len = get32(data + off + 4);
      type = data[off + 8];
      ok = len <= size - off - REC_HEAD;
    }
    if (ok) {
      p = data + off + REC_HEAD;
      ok = get32(data + off) == rec_crc(s->seq, type, len, p);
    }
    if (ok && !started) ok = type == REC_START;
    if (ok) {
      switch (type) {
      case REC_START: {
        raft_hard_state hs;
        raft_conf_state cs;
        if (len < 40 || !get_conf(p + 40, len - 40, &cs)) {
          ok = false;
          break;
        }
        get_hs(p, &hs);
        w->hs = hs;
        w->cs = cs;
        apply_compact(w, get64(p + 24), get64(p + 32));
        started = true;
        w->start_off = off + REC_HEAD + len;
        break;
      }
      case REC_ENTRY:
        if (len < 17) ok = false;
        else
          apply_entry(w, get64(p), get64(p + 8), p[16], s->seq, off + REC_HEAD + 17, len - 17,
                      hole);
        break;
      case REC_HARD:
        if (len != 24) ok = false;
        else get_hs(p, &w->hs);
        break;
      case REC_CONF: {
        raft_conf_state cs;
        if (!get_conf(p, len, &cs)) ok = false;
        else w->cs = cs;
        break;
      }
      case REC_COMPACT:
        if (len != 16) ok = false;
        else apply_compact(w, get64(p), get64(p + 8));
        break;
      case REC_RESET: {
        raft_conf_state cs;
        if (len < 16 || !get_conf(p + 16, len - 16, &cs)) {
          ok = false;
        } else {
          apply_reset(w, get64(p), get64(p + 8), &cs);
          *hole = 0;
        }
        break;
      }
      case REC_SEAL:
        *sealed = true;
        break;
      default:
        ok = false;
      }
    }
    if (!ok) {
      if (!is_last) {
        snprintf(err, errlen,
                 "raft log segment %016" PRIx64 " is corrupt at offset %zu (not its last "
                 "segment, so this is not a torn write); refusing to start",
                 s->seq, off);
        rc = -EIO;
      } else if (!started) {
        rc = 1; /* header written, START torn: never used */
      }
      break;
    }
    off += REC_HEAD + len;
    if (*sealed) break;
  }
  if (rc == 0) w->off = off;
  if (rc == 0 && is_last && !*sealed) {
    /* What follows the end may hold intact records of a torn batch (same sequence number):
     * a later write ending where one starts would bring it back. Zero it before writing. */
    size_t k = off;
    while (k < size && !data[k]) k++;
    if (k < size) rc = zero_range(s->fd, off, size - off, w->sync);
    if (rc) {
      snprintf(err, errlen, "cannot clear the end of raft log segment %016" PRIx64 ": %s",
               s->seq, strerror(-rc));
      rc = -EIO;
    }
  }
  free(data);
  return rc;
}

static int list_segments(raft_wal *w, uint64_t **seqs, size_t *n) {
  *seqs = NULL;
  *n = 0;
  DIR *d = opendir(w->dir);
  if (!d) return -errno;
  size_t cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    size_t l = strlen(de->d_name);
    if (l != 20 || strcmp(de->d_name + 16, ".wal")) continue;
    char *end;
    uint64_t seq = strtoull(de->d_name, &end, 16);
    if (end != de->d_name + 16) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 8;
      uint64_t *v = realloc(*seqs, cap * sizeof *v);
      if (!v) abort();
      *seqs = v;
    }
    (*seqs)[(*n)++] = seq;
  }
  closedir(d);
  qsort(*seqs, *n, sizeof **seqs, cmp_u64);
  return 0;
}

static int load(raft_wal *w, char *err, size_t errlen) {
  uint64_t *seqs;
  size_t n;
  int rc = list_segments(w, &seqs, &n);
  if (rc) {
    snprintf(err, errlen, "cannot list the raft log in %s: %s", w->dir, strerror(-rc));
    return rc;
  }
  w->base = 1;
  uint64_t hole = 0;
  bool sealed = false;
  for (size_t i = 0; i < n; i++) {
    if (i && seqs[i] != seqs[i - 1] + 1) {
      snprintf(err, errlen, "the raft log in %s misses segment %016" PRIx64, w->dir,
               seqs[i - 1] + 1);
      free(seqs);
      return -EIO;
    }
    char path[4096];
    seg_path(w, seqs[i], path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      rc = -errno;
      snprintf(err, errlen, "cannot open %s: %s", path, strerror(-rc));
      free(seqs);
      return rc;
    }
    segs_push(w, seqs[i], fd);
    bool is_last = i + 1 == n, prev_sealed = sealed;
    rc = scan_segment(w, &w->segs[w->n_segs - 1], is_last, &hole, &sealed, err, errlen);
    if (rc < 0) {
      free(seqs);
      return rc;
    }
    if (rc == 1) {
      /* The newest segment was being created by a crash: the previous one must be sealed. */
      if (i == 0 || !prev_sealed) {
        snprintf(err, errlen, "raft log segment %016" PRIx64 " has a bad header", seqs[i]);
        free(seqs);
        return -EIO;
      }
      close(fd);
      w->n_segs--;
      unlink(path);
      sealed = true;
    } else if (!is_last && !sealed) {
      snprintf(err, errlen, "raft log segment %016" PRIx64 " ends without its seal", seqs[i]);
      free(seqs);
      return -EIO;
    }
  }
  free(seqs);
  if (!w->n_segs) {
    snprintf(err, errlen, "the raft log in %s has no segments", w->dir);
    return -EIO;
  }
  if (hole > w->snap_index) {
    snprintf(err, errlen, "the raft log in %s misses entries up to %" PRIu64, w->dir, hole);
    return -EIO;
  }
  if (w->base != w->snap_index + 1 && w->n_locs == 0) w->base = w->snap_index + 1;
  if (w->n_locs && w->base != w->snap_index + 1) {
    /* Entries above a deleted segment's: those below base were compacted (hole <= snap). */
    snprintf(err, errlen, "the raft log in %s misses entries from %" PRIu64, w->dir,
             w->snap_index + 1);
    return -EIO;
  }
  if (sealed) return new_segment(w, cur_seq(w) + 1);
  return 0;
}

/* ---------- the write side ---------- */

/* Writes the buffer at the end of the current segment, rolling first when it would not fit
 * (a record longer than a segment goes into a segment of its own, which grows). */
static int flush(raft_wal *w, bool sync) {
  seg *s = &w->segs[w->n_segs - 1];
  int rc = write_all(s->fd, w->buf, w->buf_len, w->off);
  if (!rc && sync && w->sync && fdatasync(s->fd) != 0) rc = -errno;
  if (rc) {
    fprintf(stderr, "quorumd: raft log write failed: %s\n", strerror(-rc));
    w->failed = true;
    return RAFT_E_STORAGE;
  }
  w->off += w->buf_len;
  w->buf_len = 0;
  /* Half way through a segment, make sure the next one is on its way. */
  if (w->off > w->seg_bytes / 2) want_spare(w);
  return 0;
}

/* Rolls to a new segment when need bytes do not fit in this one (always when force), unless
 * this one holds nothing yet: a batch longer than a segment then makes it grow. */
static int maybe_roll(raft_wal *w, size_t need, bool force) {
  if (w->failed) return RAFT_E_STORAGE;
  if (!force && (w->off + need <= w->seg_bytes || w->off == w->start_off)) return 0;
  int rc = roll(w);
  if (rc) {
    fprintf(stderr, "quorumd: raft log segment roll failed: %s\n", strerror(-rc));
    w->failed = true;
    return RAFT_E_STORAGE;
  }
  return 0;
}

static size_t batch_bytes(const raft_hard_state *hs, const raft_snapshot_meta *snap,
                          const raft_entry *ents, size_t n) {
  size_t b = 0;
  if (hs) b += REC_HEAD + 24;
  if (snap && snap->index) b += REC_HEAD + 16 + conf_bytes(&snap->conf);
  for (size_t i = 0; i < n; i++) b += REC_HEAD + 17 + ents[i].data.len;
  return b;
}

int raft_wal_save(raft_wal *w, const raft_hard_state *hs, const raft_snapshot_meta *snap,
                  const raft_entry *ents, size_t n, bool sync) {
  bool reset = snap && snap->index;
  uint64_t new_snap = reset ? snap->index : w->snap_index;
  uint64_t new_last = reset ? snap->index : w->last;
  if (n) {
    if (ents[0].index <= new_snap) return RAFT_E_COMPACTED;
    if (ents[0].index > new_last + 1) return RAFT_E_UNAVAILABLE;
  }
  if (!hs && !reset && !n) return 0;
  int rc;
  /* A snapshot starts a segment of its own, so every older one can go once it is durable. */
  if ((rc = maybe_roll(w, batch_bytes(hs, snap, ents, n), reset))) return rc;
  uint64_t seq = cur_seq(w);
  w->buf_len = 0;
  if (reset) {
    uint8_t *p = rec_begin(w, REC_RESET, 16 + conf_bytes(&snap->conf));
    put64(p, snap->index);
    put64(p + 8, snap->term);
    put_conf(p + 16, &snap->conf);
    rec_end(p, seq);
  }
  if (hs) {
    uint8_t *p = rec_begin(w, REC_HARD, 24);
    put_hs(p, hs);
    rec_end(p, seq);
  }
  uint64_t data_off0 = w->off;
  for (size_t i = 0; i < n; i++) {
    uint8_t *p = rec_begin(w, REC_ENTRY, 17 + ents[i].data.len);
    put64(p, ents[i].index);
    put64(p + 8, ents[i].term);
    p[16] = ents[i].type;
    if (ents[i].data.len) memcpy(p + 17, ents[i].data.base, ents[i].data.len);
    rec_end(p, seq);
  }
  /* Offsets of the entries' data, known before the buffer is flushed. */
  size_t entries_at = w->buf_len;
  for (size_t i = 0; i < n; i++) entries_at -= REC_HEAD + 17 + ents[i].data.len;
  if ((rc = flush(w, sync))) return rc;
  if (reset) apply_reset(w, snap->index, snap->term, &snap->conf);
  if (hs) w->hs = *hs;
  uint64_t off = data_off0 + entries_at;
  for (size_t i = 0; i < n; i++) {
    apply_entry(w, ents[i].index, ents[i].term, ents[i].type, seq, off + REC_HEAD + 17,
                (uint32_t)ents[i].data.len, NULL);
    off += REC_HEAD + 17 + ents[i].data.len;
  }
  if (reset) {
    if ((!sync && w->sync && fdatasync(w->segs[w->n_segs - 1].fd) != 0) ||
        drop_segments(w, w->n_segs - 1)) {
      w->failed = true;
      return RAFT_E_STORAGE;
    }
  }
  return 0;
}

int raft_wal_set_conf(raft_wal *w, const raft_conf_state *cs) {
  int rc = maybe_roll(w, REC_HEAD + conf_bytes(cs), false);
  if (rc) return rc;
  w->buf_len = 0;
  uint8_t *p = rec_begin(w, REC_CONF, conf_bytes(cs));
  put_conf(p, cs);
  rec_end(p, cur_seq(w));
  if ((rc = flush(w, true))) return rc;
  w->cs = *cs;
  return 0;
}

int raft_wal_raise_commit(raft_wal *w, uint64_t commit) {
  if (w->hs.commit >= commit) return 0;
  raft_hard_state hs = w->hs;
  hs.commit = commit;
  return raft_wal_save(w, &hs, NULL, NULL, 0, true);
}

int raft_wal_compact(raft_wal *w, uint64_t index) {
  if (index > w->last) index = w->last;
  if (index <= w->snap_index) return 0;
  uint64_t term;
  int rc = st_term(w, index, &term);
  if (rc) return rc;
  if ((rc = maybe_roll(w, REC_HEAD + 16, false))) return rc;
  w->buf_len = 0;
  uint8_t *p = rec_begin(w, REC_COMPACT, 16);
  put64(p, index);
  put64(p + 8, term);
  rec_end(p, cur_seq(w));
  /* Not synced here: only before a segment is deleted (below). */
  if ((rc = flush(w, false))) return rc;
  apply_compact(w, index, term);
  size_t k = 0;
  while (k + 1 < w->n_segs && w->segs[k].max_index <= w->snap_index) k++;
  if (!k) return 0;
  if ((w->sync && fdatasync(w->segs[w->n_segs - 1].fd) != 0) || drop_segments(w, k)) {
    w->failed = true;
    return RAFT_E_STORAGE;
  }
  return 0;
}

/* ---------- open / close ---------- */

void raft_wal_close(raft_wal *w) {
  if (!w) return;
  if (w->helper_started) {
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->helper, NULL);
  }
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  for (size_t i = 0; i < w->n_segs; i++) close(w->segs[i].fd);
  if (w->dir_fd >= 0) close(w->dir_fd);
  free(w->segs);
  free(w->locs);
  free(w->buf);
  free(w->dir);
  free(w);
}


static int sync_parent(const char *dir) {
  char *p = strdup(dir);
  if (!p) return -ENOMEM;
  char *slash = strrchr(p, '/');
  if (slash == p) slash[1] = 0;
  else if (slash) *slash = 0;
  else strcpy(p, ".");
  int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(p);
  if (fd < 0) return -errno;
  int rc = fsync(fd) ? -errno : 0;
  close(fd);
  return rc;
}

int raft_wal_remove(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return errno == ENOENT ? 0 : -errno;
  struct dirent *de;
  char path[4096 + 256];
  int rc = 0;
  while ((de = readdir(d))) {
    if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
    if (unlink(path) != 0) rc = -errno;
  }
  closedir(d);
  if (!rc && rmdir(dir) != 0) rc = -errno;
  return rc;
}

/* A new log is made as DIR.tmp and renamed into place once its first segment is durable, so a
 * crash while it is made never leaves a DIR that cannot be opened. */
static int create_fresh(raft_wal *w, const char *dir) {
  size_t l = strlen(dir);
  char *tmp = malloc(l + 5);
  if (!tmp) return -ENOMEM;
  memcpy(tmp, dir, l);
  memcpy(tmp + l, ".tmp", 5);
  int rc = raft_wal_remove(tmp);
  if (!rc && mkdir(tmp, 0755) != 0) rc = -errno;
  if (rc) {
    free(tmp);
    return rc;
  }
  char *final = w->dir;
  w->dir = tmp;
  w->dir_fd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (w->dir_fd < 0) rc = -errno;
  if (!rc) rc = new_segment(w, 1);
  if (!rc && rename(tmp, final) != 0) rc = -errno;
  w->dir = final;
  free(tmp);
  if (!rc) rc = sync_parent(final);
  return rc;
}

int raft_wal_open(raft_wal **out, const char *dir, const raft_wal_opts *opts, char *err,
                  size_t errlen) {
  raft_wal *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  w->dir_fd = -1;
  w->dir = strdup(dir);
  if (!w->dir) {
    free(w);
    return -ENOMEM;
  }
  w->sync = opts->sync;
  w->seg_bytes = opts->segment_bytes ? opts->segment_bytes : RAFT_WAL_SEGMENT_BYTES;
  w->vt = (raft_storage){.ctx = w,
                         .initial_state = st_initial,
                         .entries = st_entries,
                         .term = st_term,
                         .first_index = st_first,
                         .last_index = st_last,
                         .snapshot = st_snapshot};
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  w->base = 1;
  bool fresh = false;
  struct stat st;
  if (stat(dir, &st) != 0) {
    if (errno != ENOENT || !opts->create) {
      int rc = -errno;
      snprintf(err, errlen, "cannot open the raft log in %s: %s", dir, strerror(errno));
      raft_wal_close(w);
      return rc;
    }
    fresh = true;
  }
  int rc;
  if (fresh) {
    rc = create_fresh(w, dir);
    if (rc) snprintf(err, errlen, "cannot create the raft log in %s: %s", dir, strerror(-rc));
  } else {
    w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dir_fd < 0) {
      rc = -errno;
      snprintf(err, errlen, "cannot open the raft log in %s: %s", dir, strerror(errno));
      raft_wal_close(w);
      return rc;
    }
    char spare[4096];
    snprintf(spare, sizeof spare, "%s/%s", dir, SPARE_NAME);
    unlink(spare); /* a spare is never needed to read the log */
    rc = load(w, err, errlen);
  }
  if (rc) {
    raft_wal_close(w);
    return rc < 0 ? rc : -EIO;
  }
  if (pthread_create(&w->helper, NULL, helper_main, w) != 0) {
    snprintf(err, errlen, "cannot start the raft log's helper thread");
    raft_wal_close(w);
    return -EAGAIN;
  }
  w->helper_started = true;
  *out = w;
  return 0;
}
