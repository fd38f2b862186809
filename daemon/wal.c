/* wal: the storage thread: group-committed log appends (fsync), then apply in order. */
#include "daemon/wal.h"

#include <errno.h>
#include <leveldb/c.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/store_codec.h"

typedef struct pending {
  char *data;
  size_t len;
  void *ctx;
} pending;

typedef struct done_item {
  wal_done d;
  struct done_item *next;
} done_item;

struct wal {
  uv_loop_t *loop;
  store *s;
  stats *st;
  uint64_t keep;
  wal_done_cb cb;
  void *arg;
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pending *q; /* submitted, not yet taken by the thread */
  size_t qn, qcap;
  int stop;
  done_item *done_head, *done_tail; /* applied, not yet delivered */
  uv_async_t async;
  _Atomic uint64_t last_index;
  uint64_t compacted; /* log entries at or below this are deleted */
  leveldb_writeoptions_t *wsync;
  int running;
};

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t last_log_index(store *s) {
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  leveldb_iterator_t *it = leveldb_create_iterator(store_db(s), ro);
  uint64_t last = 0;
  leveldb_iter_seek(it, "m", 1); /* first key after every 'l' key */
  if (leveldb_iter_valid(it)) leveldb_iter_prev(it);
  else leveldb_iter_seek_to_last(it);
  if (leveldb_iter_valid(it)) {
    size_t kl;
    const char *k = leveldb_iter_key(it, &kl);
    if (kl == 9 && k[0] == 'l') last = codec_get_be64(k + 1);
  }
  leveldb_iter_destroy(it);
  leveldb_readoptions_destroy(ro);
  return last;
}

static uint64_t first_log_index(store *s) {
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  leveldb_iterator_t *it = leveldb_create_iterator(store_db(s), ro);
  uint64_t first = 0;
  leveldb_iter_seek(it, "l", 1);
  if (leveldb_iter_valid(it)) {
    size_t kl;
    const char *k = leveldb_iter_key(it, &kl);
    if (kl == 9 && k[0] == 'l') first = codec_get_be64(k + 1);
  }
  leveldb_iter_destroy(it);
  leveldb_readoptions_destroy(ro);
  return first;
}

static void free_events(store_event **evs, size_t n) {
  for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
  free(evs);
}

/* Applies the log entries above the applied index (recovery after a crash). */
static int replay(wal *w, char *err, size_t errlen) {
  uint64_t applied = store_applied(w->s);
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  leveldb_iterator_t *it = leveldb_create_iterator(store_db(w->s), ro);
  sbuf k = {0};
  codec_u64_key(&k, 'l', applied + 1);
  int rc = 0;
  uint64_t n = 0;
  for (leveldb_iter_seek(it, k.p, k.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    const char *key = leveldb_iter_key(it, &kl);
    if (kl != 9 || key[0] != 'l') break;
    const char *v = leveldb_iter_value(it, &vl);
    proto_record rec;
    uint64_t idx = codec_get_be64(key + 1);
    if (proto_record_decode(v, vl, &rec)) {
      snprintf(err, errlen, "log entry %llu is corrupt", (unsigned long long)idx);
      rc = -EIO;
      break;
    }
    store_result res;
    store_event **evs = NULL;
    size_t ne = 0, ce = 0;
    rc = store_apply(w->s, idx, &rec, &res, &evs, &ne, &ce);
    store_result_free(&res);
    free_events(evs, ne);
    if (rc) {
      snprintf(err, errlen, "applying log entry %llu failed", (unsigned long long)idx);
      break;
    }
    n++;
  }
  leveldb_iter_destroy(it);
  leveldb_readoptions_destroy(ro);
  sbuf_free(&k);
  if (n) fprintf(stderr, "quorumd: replayed %llu log entries\n", (unsigned long long)n);
  return rc;
}

static void deliver(wal *w) {
  pthread_mutex_lock(&w->mu);
  done_item *d = w->done_head;
  w->done_head = w->done_tail = NULL;
  pthread_mutex_unlock(&w->mu);
  while (d) {
    done_item *next = d->next;
    w->cb(w->arg, &d->d);
    free(d);
    d = next;
  }
}

static void on_async(uv_async_t *a) { deliver(a->data); }

/* Appends a batch to the log with one synced write. */
static void write_batch(wal *w, pending *b, size_t n, uint64_t first) {
  leveldb_writebatch_t *wb = leveldb_writebatch_create();
  sbuf k = {0};
  for (size_t i = 0; i < n; i++) {
    sbuf_reset(&k);
    codec_u64_key(&k, 'l', first + i);
    leveldb_writebatch_put(wb, k.p, k.len, b[i].data, b[i].len);
  }
  /* Compaction: drop applied entries beyond the kept window, a bounded number per batch. */
  uint64_t applied = store_applied(w->s);
  uint64_t upto = applied > w->keep ? applied - w->keep : 0;
  for (int c = 0; w->compacted < upto && c < 4096; c++) {
    sbuf_reset(&k);
    codec_u64_key(&k, 'l', ++w->compacted);
    leveldb_writebatch_delete(wb, k.p, k.len);
  }
  char *lerr = NULL;
  int64_t t0 = mono_ns();
  leveldb_write(store_db(w->s), w->wsync, wb, &lerr);
  if (store_sync_enabled(w->s)) stats_fsync(w->st, (uint64_t)(mono_ns() - t0));
  leveldb_writebatch_destroy(wb);
  sbuf_free(&k);
  if (lerr) {
    /* Nothing of this batch was acknowledged; continuing could acknowledge writes that are
     * not durable, so stop here as etcd does when its WAL fails. */
    fprintf(stderr, "quorumd: fatal: cannot write the log: %s\n", lerr);
    abort();
  }
}

static void *thread_main(void *arg) {
  wal *w = arg;
  pending *batch = NULL;
  size_t bcap = 0;
  for (;;) {
    pthread_mutex_lock(&w->mu);
    while (!w->qn && !w->stop) pthread_cond_wait(&w->cv, &w->mu);
    if (!w->qn && w->stop) {
      pthread_mutex_unlock(&w->mu);
      break;
    }
    /* Swap the queue out: this is the group. */
    pending *b = w->q;
    size_t n = w->qn;
    size_t cap = w->qcap;
    w->q = batch;
    w->qcap = bcap;
    w->qn = 0;
    batch = b;
    bcap = cap;
    pthread_mutex_unlock(&w->mu);

    uint64_t first = atomic_load(&w->last_index) + 1;
    write_batch(w, batch, n, first);
    atomic_store(&w->last_index, first + n - 1);

    done_item *head = NULL, *last = NULL;
    for (size_t i = 0; i < n; i++) {
      done_item *d = calloc(1, sizeof *d);
      if (!d) abort();
      d->d.ctx = batch[i].ctx;
      proto_record rec;
      size_t ce = 0;
      if (proto_record_decode(batch[i].data, batch[i].len, &rec) ||
          store_apply(w->s, first + i, &rec, &d->d.res, &d->d.events, &d->d.n_events, &ce)) {
        fprintf(stderr, "quorumd: fatal: cannot apply log entry %llu\n",
                (unsigned long long)(first + i));
        abort();
      }
      free(batch[i].data);
      if (last) last->next = d;
      else head = d;
      last = d;
    }
    atomic_fetch_add(&w->st->proposals_committed, n);
    pthread_mutex_lock(&w->mu);
    if (w->done_tail) w->done_tail->next = head;
    else w->done_head = head;
    if (last) w->done_tail = last;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->async);
  }
  free(batch);
  return NULL;
}

int wal_start(wal **out, uv_loop_t *loop, store *s, stats *st, uint64_t keep, wal_done_cb cb,
              void *arg, char *err, size_t errlen) {
  wal *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  w->loop = loop;
  w->s = s;
  w->st = st;
  w->keep = keep;
  w->cb = cb;
  w->arg = arg;
  int rc = replay(w, err, errlen);
  if (rc) {
    free(w);
    return rc;
  }
  w->last_index = last_log_index(s);
  if (w->last_index < store_applied(s)) w->last_index = store_applied(s);
  uint64_t first = first_log_index(s);
  w->compacted = first ? first - 1 : store_applied(s);
  w->wsync = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(w->wsync, store_sync_enabled(s));
  pthread_mutex_init(&w->mu, NULL);
  pthread_cond_init(&w->cv, NULL);
  uv_async_init(loop, &w->async, on_async);
  w->async.data = w;
  if (pthread_create(&w->thread, NULL, thread_main, w)) {
    snprintf(err, errlen, "cannot start the storage thread");
    uv_close((uv_handle_t *)&w->async, NULL);
    free(w);
    return -EAGAIN;
  }
  w->running = 1;
  *out = w;
  return 0;
}

int wal_submit(wal *w, const proto_record *rec, void *ctx) {
  char *buf = NULL;
  size_t len = 0, cap = 0;
  if (proto_record_encode(rec, &buf, &len, &cap)) {
    free(buf);
    return -ENOMEM;
  }
  pthread_mutex_lock(&w->mu);
  if (w->qn == w->qcap) {
    size_t nc = w->qcap ? w->qcap * 2 : 256;
    pending *q = realloc(w->q, nc * sizeof *q);
    if (!q) {
      pthread_mutex_unlock(&w->mu);
      free(buf);
      return -ENOMEM;
    }
    w->q = q;
    w->qcap = nc;
  }
  w->q[w->qn++] = (pending){buf, len, ctx};
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

uint64_t wal_last_index(wal *w) { return atomic_load(&w->last_index); }

static void on_async_closed(uv_handle_t *h) { free(h->data); }

void wal_stop(wal *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->thread, NULL);
  deliver(w);
  free(w->q);
  leveldb_writeoptions_destroy(w->wsync);
  pthread_mutex_destroy(&w->mu);
  pthread_cond_destroy(&w->cv);
  uv_close((uv_handle_t *)&w->async, on_async_closed);
}
