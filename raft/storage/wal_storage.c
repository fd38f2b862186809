/* wal_storage: the Raft log in preallocated segment files (see header): the in-memory index of
 * entries, the read side for the core, appends, compaction, open and close. The record format
 * is in wal_record.c, the segment files in wal_segment.c, the replay at open in wal_scan.c. */
#include "raft/storage/wal_storage.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "raft/storage/wal_i.h"

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
    if (wal_read_all(s->fd, tmp, span, first->off)) {
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

void wal_apply_compact(raft_wal *w, uint64_t index, uint64_t term) {
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

void wal_apply_reset(raft_wal *w, uint64_t index, uint64_t term, const raft_conf_state *cs) {
  w->snap_index = w->last = index;
  w->snap_term = term;
  w->n_locs = 0;
  w->base = index + 1;
  w->cs = *cs;
}

/* An entry record at (seq, off of its data). At open a gap (index > last + 1) is allowed: the
 * entries below it were in deleted segments and must turn out to be compacted (checked at the
 * end of the scan); *hole is raised to index - 1. */
void wal_apply_entry(raft_wal *w, uint64_t index, uint64_t term, uint8_t type, uint64_t seq,
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

/* Writes the buffer at the end of the current segment, rolling first when it would not fit
 * (a record longer than a segment goes into a segment of its own, which grows). */
static int flush(raft_wal *w, bool sync) {
  seg *s = &w->segs[w->n_segs - 1];
  int rc = wal_write_all(s->fd, w->buf, w->buf_len, w->off);
  if (!rc && sync && w->sync && fdatasync(s->fd) != 0) rc = -errno;
  if (rc) {
    fprintf(stderr, "quorumd: raft log write failed: %s\n", strerror(-rc));
    w->failed = true;
    return RAFT_E_STORAGE;
  }
  w->off += w->buf_len;
  w->buf_len = 0;
  /* Half way through a segment, make sure the next one is on its way. */
  if (w->off > w->seg_bytes / 2) wal_want_spare(w);
  return 0;
}

/* Rolls to a new segment when need bytes do not fit in this one (always when force), unless
 * this one holds nothing yet: a batch longer than a segment then makes it grow. */
static int maybe_roll(raft_wal *w, size_t need, bool force) {
  if (w->failed) return RAFT_E_STORAGE;
  if (!force && (w->off + need <= w->seg_bytes || w->off == w->start_off)) return 0;
  int rc = wal_roll(w);
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
  if (snap && snap->index) b += REC_HEAD + 16 + wal_conf_bytes(&snap->conf);
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
    uint8_t *p = wal_rec_begin(w, REC_RESET, 16 + wal_conf_bytes(&snap->conf));
    put64(p, snap->index);
    put64(p + 8, snap->term);
    wal_put_conf(p + 16, &snap->conf);
    wal_rec_end(p, seq);
  }
  if (hs) {
    uint8_t *p = wal_rec_begin(w, REC_HARD, 24);
    wal_put_hs(p, hs);
    wal_rec_end(p, seq);
  }
  uint64_t data_off0 = w->off;
  for (size_t i = 0; i < n; i++) {
    uint8_t *p = wal_rec_begin(w, REC_ENTRY, 17 + ents[i].data.len);
    put64(p, ents[i].index);
    put64(p + 8, ents[i].term);
    p[16] = ents[i].type;
    if (ents[i].data.len) memcpy(p + 17, ents[i].data.base, ents[i].data.len);
    wal_rec_end(p, seq);
  }
  /* Offsets of the entries' data, known before the buffer is flushed. */
  size_t entries_at = w->buf_len;
  for (size_t i = 0; i < n; i++) entries_at -= REC_HEAD + 17 + ents[i].data.len;
  if ((rc = flush(w, sync))) return rc;
  if (reset) wal_apply_reset(w, snap->index, snap->term, &snap->conf);
  if (hs) w->hs = *hs;
  uint64_t off = data_off0 + entries_at;
  for (size_t i = 0; i < n; i++) {
    wal_apply_entry(w, ents[i].index, ents[i].term, ents[i].type, seq, off + REC_HEAD + 17,
                (uint32_t)ents[i].data.len, NULL);
    off += REC_HEAD + 17 + ents[i].data.len;
  }
  if (reset) {
    if ((!sync && w->sync && fdatasync(w->segs[w->n_segs - 1].fd) != 0) ||
        wal_drop_segments(w, w->n_segs - 1)) {
      w->failed = true;
      return RAFT_E_STORAGE;
    }
  }
  return 0;
}

int raft_wal_set_conf(raft_wal *w, const raft_conf_state *cs) {
  int rc = maybe_roll(w, REC_HEAD + wal_conf_bytes(cs), false);
  if (rc) return rc;
  w->buf_len = 0;
  uint8_t *p = wal_rec_begin(w, REC_CONF, wal_conf_bytes(cs));
  wal_put_conf(p, cs);
  wal_rec_end(p, cur_seq(w));
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
  uint8_t *p = wal_rec_begin(w, REC_COMPACT, 16);
  put64(p, index);
  put64(p + 8, term);
  wal_rec_end(p, cur_seq(w));
  /* Not synced here: only before a segment is deleted (below). */
  if ((rc = flush(w, false))) return rc;
  wal_apply_compact(w, index, term);
  size_t k = 0;
  while (k + 1 < w->n_segs && w->segs[k].max_index <= w->snap_index) k++;
  if (!k) return 0;
  if ((w->sync && fdatasync(w->segs[w->n_segs - 1].fd) != 0) || wal_drop_segments(w, k)) {
    w->failed = true;
    return RAFT_E_STORAGE;
  }
  return 0;
}

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

/* Whether dir holds nothing but perhaps a spare (a directory made ready for the log, e.g. for
 * --wal-dir, or a creation in place cut short before its first segment). */
static bool dir_empty(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return false;
  bool empty = true;
  struct dirent *e;
  while (empty && (e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, SPARE_NAME))
      empty = false;
  closedir(d);
  return empty;
}

/* One process per log: an advisory lock on the directory, held while it is open. */
static int lock_dir(raft_wal *w, char *err, size_t errlen) {
  if (flock(w->dir_fd, LOCK_EX | LOCK_NB) == 0) return 0;
  int rc = -errno;
  snprintf(err, errlen, "the raft log in %s is locked by another process (%s)", w->dir,
           strerror(errno));
  return rc == -EWOULDBLOCK ? -EBUSY : rc;
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
    rc = wal_create_fresh(w, dir);
    if (rc) snprintf(err, errlen, "cannot create the raft log in %s: %s", dir, strerror(-rc));
    else rc = lock_dir(w, err, errlen);
  } else {
    w->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (w->dir_fd < 0) {
      rc = -errno;
      snprintf(err, errlen, "cannot open the raft log in %s: %s", dir, strerror(errno));
      raft_wal_close(w);
      return rc;
    }
    if ((rc = lock_dir(w, err, errlen))) {
      raft_wal_close(w);
      return rc;
    }
    char spare[4096];
    snprintf(spare, sizeof spare, "%s/%s", dir, SPARE_NAME);
    unlink(spare); /* a spare is never needed to read the log */
    if (opts->create && dir_empty(dir)) {
      /* An empty directory given for a new log: the first segment is made in place (made
       * whole as a spare, then renamed: a crash leaves the directory empty again). */
      rc = wal_new_segment(w, 1);
      if (rc) snprintf(err, errlen, "cannot create the raft log in %s: %s", dir, strerror(-rc));
    } else {
      rc = wal_load(w, err, errlen);
    }
  }
  if (rc) {
    raft_wal_close(w);
    return rc < 0 ? rc : -EIO;
  }
  if (pthread_create(&w->helper, NULL, wal_helper_main, w) != 0) {
    snprintf(err, errlen, "cannot start the raft log's helper thread");
    raft_wal_close(w);
    return -EAGAIN;
  }
  w->helper_started = true;
  *out = w;
  return 0;
}
