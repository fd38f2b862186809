/* wal_scan: the raft log read back at open: the segments listed in order, each replayed record
 * by record into the in-memory state; a torn tail of the last segment cut (and zeroed), a bad
 * record anywhere else refused as corruption; a new segment started when the last is sealed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "raft/storage/wal_i.h"

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
  if (size && wal_read_all(s->fd, data, size, 0)) {
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
      ok = get32(data + off) == wal_rec_crc(s->seq, type, len, p);
    }
    if (ok && !started) ok = type == REC_START;
    if (ok) {
      switch (type) {
      case REC_START: {
        raft_hard_state hs;
        raft_conf_state cs;
        if (len < 40 || !wal_get_conf(p + 40, len - 40, &cs)) {
          ok = false;
          break;
        }
        wal_get_hs(p, &hs);
        w->hs = hs;
        w->cs = cs;
        wal_apply_compact(w, get64(p + 24), get64(p + 32));
        started = true;
        w->start_off = off + REC_HEAD + len;
        break;
      }
      case REC_ENTRY:
        if (len < 17) ok = false;
        else
          wal_apply_entry(w, get64(p), get64(p + 8), p[16], s->seq, off + REC_HEAD + 17, len - 17,
                      hole);
        break;
      case REC_HARD:
        if (len != 24) ok = false;
        else wal_get_hs(p, &w->hs);
        break;
      case REC_CONF: {
        raft_conf_state cs;
        if (!wal_get_conf(p, len, &cs)) ok = false;
        else w->cs = cs;
        break;
      }
      case REC_COMPACT:
        if (len != 16) ok = false;
        else wal_apply_compact(w, get64(p), get64(p + 8));
        break;
      case REC_RESET: {
        raft_conf_state cs;
        if (len < 16 || !wal_get_conf(p + 16, len - 16, &cs)) {
          ok = false;
        } else {
          wal_apply_reset(w, get64(p), get64(p + 8), &cs);
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
    if (k < size) rc = wal_zero_range(s->fd, off, size - off, w->sync);
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
  if (*n > 1) qsort(*seqs, *n, sizeof **seqs, cmp_u64);
  return 0;
}

int wal_load(raft_wal *w, char *err, size_t errlen) {
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
    wal_seg_path(w, seqs[i], path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      rc = -errno;
      snprintf(err, errlen, "cannot open %s: %s", path, strerror(-rc));
      free(seqs);
      return rc;
    }
    wal_segs_push(w, seqs[i], fd);
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
  if (sealed) return wal_new_segment(w, cur_seq(w) + 1);
  return 0;
}
