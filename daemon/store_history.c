/* store_history: the last STORE_HISTORY events of the tree store (etcd's event history, for
 * waitIndex). They live in memory, a ring of references any thread can copy, and in two files
 * in the tree's directory (history-0, history-1), not in the LevelDB: an event's JSON is most
 * of a write's bytes, and passing it through LevelDB's log, memtable and compactions cost ~20%
 * of a PUT's CPU. The apply thread appends each group's events to the current file before
 * the group's tree write (unsynced, like the tree; synced with the tree's durable points), so
 * the files hold at least what the tree holds; when the current file has STORE_HISTORY events
 * the other one is emptied and takes over, so together they always hold the last
 * STORE_HISTORY. At open the files are read back, events above the tree's index (written
 * before a tree write that was lost) are dropped, and if the newest left is not the tree's
 * index (a power loss took the tail), the history starts empty: a waitIndex below it then gets
 * 401 (cleared), never a silent gap. History kept in LevelDB 'h' keys by older versions (and
 * put there by snapshot restores) is imported and deleted. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "daemon/store_i.h"

#define REC_HDR 8 /* len(4) crc(4), then dir(1) refresh(1) action(1) index(8) keylen(4) key json */
#define EV_HDR 15

/* The event's bytes (as the legacy 'h' values held them). */
void store_history_encode(sbuf *b, const store_event *e) {
  unsigned char hdr[3] = {e->dir, e->refresh, e->action};
  sbuf_put(b, hdr, sizeof hdr);
  sbuf_put_be64(b, e->index);
  sbuf_put_be32(b, (uint32_t)e->key_len);
  sbuf_put(b, e->key, e->key_len);
  sbuf_put(b, e->json, e->json_len);
}

static store_event *ev_decode(const unsigned char *v, size_t vl) {
  if (vl < EV_HDR) return NULL;
  size_t klen = codec_get_be32(v + 11);
  if (EV_HDR + klen > vl) return NULL;
  store_event *e = calloc(1, sizeof *e);
  if (!e) abort();
  e->refs = 1;
  e->dir = v[0];
  e->refresh = v[1];
  e->action = v[2];
  e->index = codec_get_be64(v + 3);
  e->key = malloc(klen + 1);
  e->json_len = vl - EV_HDR - klen;
  e->json = malloc(e->json_len ? e->json_len : 1);
  if (!e->key || !e->json) abort();
  memcpy(e->key, v + EV_HDR, klen);
  e->key[klen] = 0;
  e->key_len = klen;
  memcpy(e->json, v + EV_HDR + klen, e->json_len);
  return e;
}

/* A file record: len, crc of the payload, payload (an encoded event). */
static void rec_encode(sbuf *b, const store_event *e) {
  size_t at = b->len;
  sbuf_put_be32(b, 0);
  sbuf_put_be32(b, 0);
  store_history_encode(b, e);
  size_t n = b->len - at - REC_HDR;
  uint32_t crc = (uint32_t)crc32(0, (const Bytef *)b->p + at + REC_HDR, (uInt)n);
  unsigned char *h = (unsigned char *)b->p + at;
  for (int i = 0; i < 4; i++) {
    h[i] = (unsigned char)(n >> (24 - 8 * i));
    h[4 + i] = (unsigned char)(crc >> (24 - 8 * i));
  }
}

/* ------------------------------------------------------------------ reading */

int store_load_history(store *s, store_event ***out, size_t *n) {
  store_history *h = &s->hist;
  store_event **evs = calloc(STORE_HISTORY, sizeof *evs);
  if (!evs) return -ENOMEM;
  pthread_mutex_lock(&h->mu);
  for (size_t i = 0; i < h->ring.n; i++) {
    evs[i] = store_event_ring_at(&h->ring, i);
    store_event_ref(evs[i]);
  }
  *n = h->ring.n;
  pthread_mutex_unlock(&h->mu);
  *out = evs;
  return 0;
}

/* ------------------------------------------------------------------ files */

static int file_open(store_history *h, int i, int trunc) {
  char path[4096];
  snprintf(path, sizeof path, "%s/history-%d", h->dir, i);
  if (h->fd[i] >= 0) close(h->fd[i]);
  h->fd[i] = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0644);
  return h->fd[i] < 0 ? -errno : 0;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    if (w == 0) return -EIO;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Reads the events of file i in order, up to the first damaged record, into evs (appending). */
static void file_read(store_history *h, int i, store_event ***evs, size_t *n, size_t *cap) {
  if (h->fd[i] < 0) return;
  off_t size = lseek(h->fd[i], 0, SEEK_END);
  if (size <= 0) return;
  unsigned char *buf = malloc((size_t)size);
  if (!buf) abort();
  ssize_t got = pread(h->fd[i], buf, (size_t)size, 0);
  size_t len = got > 0 ? (size_t)got : 0;
  for (size_t o = 0; o + REC_HDR <= len;) {
    uint32_t rl = codec_get_be32(buf + o), crc = codec_get_be32(buf + o + 4);
    if (rl > len - o - REC_HDR || (uint32_t)crc32(0, buf + o + REC_HDR, rl) != crc) break;
    store_event *e = ev_decode(buf + o + REC_HDR, rl);
    if (!e) break;
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 1024;
      *evs = realloc(*evs, *cap * sizeof **evs);
      if (!*evs) abort();
    }
    (*evs)[(*n)++] = e;
    o += REC_HDR + rl;
  }
  free(buf);
}

/* History that older versions kept in 'h' keys (or that a snapshot from one brought): read
 * into evs and deleted from the tree. */
static void legacy_take(store *s, store_event ***evs, size_t *n, size_t *cap) {
  leveldb_writebatch_t *wb = leveldb_writebatch_create();
  leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
  int found = 0;
  for (leveldb_iter_seek(it, "h", 1); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    const char *k = leveldb_iter_key(it, &kl);
    if (!kl || k[0] != 'h') break;
    leveldb_writebatch_delete(wb, k, kl);
    found = 1;
    const unsigned char *v = (const unsigned char *)leveldb_iter_value(it, &vl);
    store_event *e = ev_decode(v, vl);
    if (!e) continue;
    if (*n == *cap) {
      *cap = *cap ? *cap * 2 : 1024;
      *evs = realloc(*evs, *cap * sizeof **evs);
      if (!*evs) abort();
    }
    (*evs)[(*n)++] = e;
  }
  leveldb_iter_destroy(it);
  if (found) {
    char *lerr = NULL;
    leveldb_write(s->db, s->wopts_nosync, wb, &lerr);
    leveldb_free(lerr);
  }
  leveldb_writebatch_destroy(wb);
}

static int event_older(const void *x, const void *y) {
  const store_event *a = *(store_event *const *)x, *b = *(store_event *const *)y;
  return a->index < b->index ? -1 : a->index > b->index;
}

/* Makes the ring the consecutive run of evs ending at the tree's index (an index found twice,
 * an entry applied again after a crash, is the same event: one is kept), and rewrites the files
 * to hold it. */
static int settle(store *s, store_event **evs, size_t n) {
  store_history *h = &s->hist;
  uint64_t top = atomic_load(&s->index);
  if (n) qsort(evs, n, sizeof *evs, event_older);
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    if (m && evs[m - 1]->index == evs[i]->index) store_event_unref(evs[i]);
    else evs[m++] = evs[i];
  }
  while (m && evs[m - 1]->index > top) store_event_unref(evs[--m]);
  size_t first = m;
  if (m && evs[m - 1]->index == top) {
    first = m - 1;
    while (first > 0 && evs[first - 1]->index + 1 == evs[first]->index &&
           m - first < STORE_HISTORY)
      first--;
  }
  pthread_mutex_lock(&h->mu);
  store_event_ring_clear(&h->ring);
  for (size_t i = 0; i < m; i++) {
    if (i >= first) store_event_ring_push(&h->ring, evs[i]);
    else store_event_unref(evs[i]);
  }
  pthread_mutex_unlock(&h->mu);
  /* The files start over holding the ring: file 0 current, file 1 empty. */
  sbuf b = {0};
  for (size_t i = 0; i < h->ring.n; i++) rec_encode(&b, store_event_ring_at(&h->ring, i));
  int rc = file_open(h, 1, 1);
  if (!rc) rc = file_open(h, 0, 1);
  if (!rc) rc = write_all(h->fd[0], b.p, b.len);
  sbuf_free(&b);
  h->cur = 0;
  h->in_cur = h->ring.n;
  return rc;
}

int store_history_open(store *s, const char *dir) {
  store_history *h = &s->hist;
  pthread_mutex_init(&h->mu, NULL);
  h->fd[0] = h->fd[1] = -1;
  h->dir = strdup(dir);
  if (!h->dir) return -ENOMEM;
  store_event **evs = NULL;
  size_t n = 0, cap = 0;
  int rc = file_open(h, 0, 0);
  if (!rc) rc = file_open(h, 1, 0);
  if (rc) return rc;
  file_read(h, 0, &evs, &n, &cap);
  file_read(h, 1, &evs, &n, &cap);
  legacy_take(s, &evs, &n, &cap);
  rc = settle(s, evs, n);
  free(evs);
  return rc;
}

int store_history_reload(store *s) {
  store_event **evs = NULL;
  size_t n = 0, cap = 0;
  legacy_take(s, &evs, &n, &cap); /* a snapshot brings its history as 'h' keys */
  int rc = settle(s, evs, n);
  free(evs);
  return rc;
}

void store_history_close(store *s) {
  store_history *h = &s->hist;
  if (!h->dir) return;
  for (int i = 0; i < 2; i++)
    if (h->fd[i] >= 0) close(h->fd[i]);
  for (size_t i = 0; i < h->n_staged; i++) store_event_unref(h->staged[i]);
  free(h->staged);
  sbuf_free(&h->buf);
  store_event_ring_clear(&h->ring);
  pthread_mutex_destroy(&h->mu);
  free(h->dir);
  h->dir = NULL;
}

/* ------------------------------------------------------------------ the apply side */

void store_history_stage(store *s, store_event *e) {
  store_history *h = &s->hist;
  if (h->n_staged == h->cap_staged) {
    h->cap_staged = h->cap_staged ? h->cap_staged * 2 : 64;
    h->staged = realloc(h->staged, h->cap_staged * sizeof *h->staged);
    if (!h->staged) abort();
  }
  store_event_ref(e);
  h->staged[h->n_staged++] = e;
  rec_encode(&h->buf, e);
}

int store_history_write(store *s) {
  store_history *h = &s->hist;
  if (!h->n_staged) return 0;
  int rc = 0;
  if (h->in_cur >= STORE_HISTORY) { /* the other file takes over, emptied */
    rc = file_open(h, !h->cur, 1);
    if (rc) return rc;
    h->cur = !h->cur;
    h->in_cur = 0;
  }
  rc = write_all(h->fd[h->cur], h->buf.p, h->buf.len);
  h->in_cur += h->n_staged;
  sbuf_reset(&h->buf);
  return rc;
}

void store_history_publish(store *s) {
  store_history *h = &s->hist;
  if (!h->n_staged) return;
  pthread_mutex_lock(&h->mu);
  for (size_t i = 0; i < h->n_staged; i++) store_event_ring_push(&h->ring, h->staged[i]);
  pthread_mutex_unlock(&h->mu);
  h->n_staged = 0;
}

int store_history_sync(store *s) {
  store_history *h = &s->hist;
  for (int i = 0; i < 2; i++)
    if (h->fd[i] >= 0 && fdatasync(h->fd[i])) return -errno;
  return 0;
}
