/* wal_segment: the raft log's segment files: paths and whole reads and writes, zero-filled
 * files, the spare segment and its helper thread, starting a segment (header and START
 * record), sealing one, recycling or deleting the ones compaction freed, and making a new log
 * as DIR.tmp renamed into place. */
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

void wal_seg_path(const raft_wal *w, uint64_t seq, char *out, size_t n) {
  snprintf(out, n, "%s/%016" PRIx64 ".wal", w->dir, seq);
}

int wal_write_all(int fd, const void *p, size_t n, uint64_t off) {
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

int wal_read_all(int fd, void *p, size_t n, uint64_t off) {
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
int wal_zero_range(int fd, uint64_t off, size_t bytes, bool sync) {
  static const uint8_t zeros[65536];
  int rc = 0;
  for (size_t done = 0; done < bytes && !rc; done += sizeof zeros) {
    size_t k = bytes - done < sizeof zeros ? bytes - done : sizeof zeros;
    rc = wal_write_all(fd, zeros, k, off + done);
  }
  if (!rc && sync && fdatasync(fd) != 0) rc = -errno;
  return rc;
}

/* Writes zeros to path (created), bytes of them, and syncs it. */
static int make_zero_file(const char *path, size_t bytes) {
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  int rc = wal_zero_range(fd, 0, bytes, true);
  close(fd);
  if (rc) unlink(path);
  return rc;
}

void *wal_helper_main(void *arg) {
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
void wal_want_spare(raft_wal *w) {
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

void wal_segs_push(raft_wal *w, uint64_t seq, int fd) {
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
 * one) gets its header and START record, synced, then is renamed into place with the
 * directory synced. The previous segment, if any, must already be sealed and synced. */
int wal_new_segment(raft_wal *w, uint64_t seq) {
  char path[4096], spare[4096];
  wal_seg_path(w, seq, path, sizeof path);
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
  /* Header and START go into the spare before it gets its name: a segment file never exists
   * without them (a crash in between leaves a spare, which open deletes). */
  int fd = open(spare, O_RDWR | O_CLOEXEC);
  if (fd < 0) return -errno;
  uint8_t h[HEADER_BYTES];
  memcpy(h, WAL_MAGIC, 8);
  put64(h + 8, seq);
  put32(h + 16, (uint32_t)crc32(0L, h, 16));
  w->buf_len = 0; /* callers come between batches */
  memcpy(wal_buf_reserve(w, HEADER_BYTES), h, HEADER_BYTES);
  w->buf_len = HEADER_BYTES;
  wal_rec_start(w, seq);
  rc = wal_write_all(fd, w->buf, w->buf_len, 0);
  if (!rc && w->sync && fdatasync(fd) != 0) rc = -errno;
  if (!rc && (rename(spare, path) != 0 || fsync(w->dir_fd) != 0)) rc = -errno;
  if (rc) {
    close(fd);
    w->buf_len = 0;
    return rc;
  }
  w->off = w->start_off = w->buf_len;
  w->buf_len = 0;
  wal_segs_push(w, seq, fd);
  return 0;
}

/* Seals the current segment and starts the next. Only between batches (buffer empty). */
int wal_roll(raft_wal *w) {
  seg *s = &w->segs[w->n_segs - 1];
  w->buf_len = 0;
  uint8_t *p = wal_rec_begin(w, REC_SEAL, 0);
  wal_rec_end(p, s->seq);
  int rc = wal_write_all(s->fd, w->buf, w->buf_len, w->off);
  w->buf_len = 0;
  if (!rc && w->sync && fdatasync(s->fd) != 0) rc = -errno;
  if (rc) return rc;
  w->off += REC_HEAD;
  return wal_new_segment(w, s->seq + 1);
}

/* Removes segments [0, k) (none of them the last): recycled as the spare when there is none,
 * else unlinked; the directory is synced. */
int wal_drop_segments(raft_wal *w, size_t k) {
  if (!k) return 0;
  char path[4096], spare[4096];
  snprintf(spare, sizeof spare, "%s/%s", w->dir, SPARE_NAME);
  for (size_t i = 0; i < k; i++) {
    wal_seg_path(w, w->segs[i].seq, path, sizeof path);
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
int wal_create_fresh(raft_wal *w, const char *dir) {
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
  if (!rc) rc = wal_new_segment(w, 1);
  if (!rc && rename(tmp, final) != 0) rc = -errno;
  w->dir = final;
  free(tmp);
  if (!rc) rc = sync_parent(final);
  return rc;
}
