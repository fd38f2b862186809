/* wal: the log thread (group-committed, fsynced appends) and the apply thread (see header).
 *
 *   loop --submit--> q --log thread: one synced write per batch--> aq --apply thread:
 *   store_apply each, one store write per group--> done --uv_async--> loop
 *
 * The log is a LevelDB of its own, so the apply thread's unsynced writes to the tree store
 * never wait behind a log fsync in LevelDB's writer queue. */
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

typedef struct item {
  char *data;
  size_t len;
  void *ctx;
  uint64_t index;
} item;

/* A queue of items, swapped out whole by its consumer. */
typedef struct queue {
  item *v;
  size_t n, cap;
} queue;

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
  leveldb_t *db;
  leveldb_options_t *opts;
  leveldb_writeoptions_t *wo;
  leveldb_readoptions_t *ro;
  pthread_t log_thread, apply_thread;
  pthread_mutex_t apply_mu; /* held while applying: by the apply thread, or the log thread
                               applying inline when the apply thread is idle */
  pthread_mutex_t mu; /* guards everything below */
  pthread_cond_t log_cv, apply_cv;
  queue q;            /* submitted, for the log thread */
  queue aq;           /* durable, for the apply thread */
  int stop;           /* no more submissions */
  int log_done;       /* the log thread has exited */
  uint64_t compact_to; /* the log thread may delete entries up to here */
  done_item *done_head, *done_tail;
  uv_async_t async;
  _Atomic uint64_t last_index;
  uint64_t compacted;      /* log thread: entries at or below are deleted */
  uint64_t synced_applied; /* apply thread: the tree store is durable up to here */
};

static int64_t mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void queue_push(queue *q, item it) {
  if (q->n == q->cap) {
    size_t nc = q->cap ? q->cap * 2 : 256;
    item *v = realloc(q->v, nc * sizeof *v);
    if (!v) abort();
    q->v = v;
    q->cap = nc;
  }
  q->v[q->n++] = it;
}

/* Swaps *a (filled) with *b (empty, reused buffer). */
static void queue_swap(queue *a, queue *b) {
  queue t = *a;
  *a = *b;
  *b = t;
  a->n = 0;
}

#define LOG_COMPACTED_KEY "c" /* be64: entries at or below are deleted */

/* The last log index present, 0 when the log is empty. ('l' keys sort last.) */
static uint64_t log_last(wal *w) {
  leveldb_iterator_t *it = leveldb_create_iterator(w->db, w->ro);
  uint64_t idx = 0;
  leveldb_iter_seek_to_last(it);
  if (leveldb_iter_valid(it)) {
    size_t kl;
    const char *k = leveldb_iter_key(it, &kl);
    if (kl == 9 && k[0] == 'l') idx = codec_get_be64(k + 1);
  }
  leveldb_iter_destroy(it);
  return idx;
}

/* Where compaction stopped (read, not searched: finding the first live entry would step over
 * every deleted one). */
static uint64_t log_compacted(wal *w) {
  char *lerr = NULL;
  size_t vl = 0;
  char *v = leveldb_get(w->db, w->ro, LOG_COMPACTED_KEY, 1, &vl, &lerr);
  uint64_t c = v && vl == 8 ? codec_get_be64(v) : 0;
  leveldb_free(v);
  leveldb_free(lerr);
  return c;
}

static void free_events(store_event **evs, size_t n) {
  for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
  free(evs);
}

/* Applies the log entries above the applied index (recovery after a crash). */
static int replay(wal *w, char *err, size_t errlen) {
  uint64_t applied = store_applied(w->s);
  leveldb_iterator_t *it = leveldb_create_iterator(w->db, w->ro);
  sbuf k = {0};
  codec_u64_key(&k, 'l', applied + 1);
  int rc = 0;
  uint64_t n = 0, expect = applied + 1;
  for (leveldb_iter_seek(it, k.p, k.len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    const char *key = leveldb_iter_key(it, &kl);
    if (kl != 9 || key[0] != 'l') break;
    const char *v = leveldb_iter_value(it, &vl);
    proto_record rec;
    uint64_t idx = codec_get_be64(key + 1);
    if (idx != expect) {
      snprintf(err, errlen, "the log has a gap: entry %llu follows the applied index %llu",
               (unsigned long long)idx, (unsigned long long)(expect - 1));
      rc = -EIO;
      break;
    }
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
    if (rc == 0 && ++n % 1024 == 0) rc = store_group_flush(w->s);
    if (rc) {
      snprintf(err, errlen, "applying log entry %llu failed", (unsigned long long)idx);
      break;
    }
    expect++;
  }
  leveldb_iter_destroy(it);
  sbuf_free(&k);
  if (rc == 0) rc = store_group_flush(w->s);
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

/* Appends a batch to the log with one synced write, plus bounded compaction deletes. */
static void log_write(wal *w, item *b, size_t n, uint64_t first, uint64_t compact_to) {
  leveldb_writebatch_t *wb = leveldb_writebatch_create();
  sbuf k = {0};
  for (size_t i = 0; i < n; i++) {
    sbuf_reset(&k);
    codec_u64_key(&k, 'l', first + i);
    leveldb_writebatch_put(wb, k.p, k.len, b[i].data, b[i].len);
  }
  if (w->compacted < compact_to) {
    for (int c = 0; w->compacted < compact_to && c < 4096; c++) {
      sbuf_reset(&k);
      codec_u64_key(&k, 'l', ++w->compacted);
      leveldb_writebatch_delete(wb, k.p, k.len);
    }
    sbuf_reset(&k);
    sbuf_put_be64(&k, w->compacted);
    leveldb_writebatch_put(wb, LOG_COMPACTED_KEY, 1, k.p, k.len);
  }
  char *lerr = NULL;
  int64_t t0 = mono_ns();
  leveldb_write(w->db, w->wo, wb, &lerr);
  if (store_sync_enabled(w->s)) stats_fsync(w->st, (uint64_t)(mono_ns() - t0));
  leveldb_writebatch_destroy(wb);
  sbuf_free(&k);
  if (lerr) {
    /* Nothing of this batch was acknowledged; going on could acknowledge writes that are not
     * durable, so stop here, as etcd does when its WAL fails. */
    fprintf(stderr, "quorumd: fatal: cannot write the log: %s\n", lerr);
    abort();
  }
}

/* Applies a durable batch in log order, writes the group to the tree store, and hands the
 * outcomes to the loop. Called with apply_mu held (by either thread), without mu. */
static void apply_batch(wal *w, queue *batch) {
  done_item *head = NULL, *last = NULL;
  for (size_t i = 0; i < batch->n; i++) {
    done_item *d = calloc(1, sizeof *d);
    if (!d) abort();
    d->d.ctx = batch->v[i].ctx;
    proto_record rec;
    size_t ce = 0;
    if (proto_record_decode(batch->v[i].data, batch->v[i].len, &rec) ||
        store_apply(w->s, batch->v[i].index, &rec, &d->d.res, &d->d.events, &d->d.n_events, &ce)) {
      fprintf(stderr, "quorumd: fatal: cannot apply log entry %llu\n",
              (unsigned long long)batch->v[i].index);
      abort();
    }
    free(batch->v[i].data);
    if (last) last->next = d;
    else head = d;
    last = d;
  }
  if (store_group_flush(w->s)) {
    fprintf(stderr, "quorumd: fatal: cannot write the tree store\n");
    abort();
  }
  /* Now and then make the tree durable, so the log below it can be compacted. */
  uint64_t applied = store_applied(w->s);
  uint64_t compact_to = 0;
  if (applied - w->synced_applied >= w->keep) {
    uint64_t durable = store_sync_applied(w->s);
    if (durable) w->synced_applied = durable;
    compact_to = w->synced_applied > w->keep ? w->synced_applied - w->keep : 0;
  }
  atomic_fetch_add(&w->st->proposals_committed, batch->n);
  batch->n = 0;
  pthread_mutex_lock(&w->mu);
  if (compact_to > w->compact_to) w->compact_to = compact_to;
  if (w->done_tail) w->done_tail->next = head;
  else w->done_head = head;
  if (last) w->done_tail = last;
  pthread_mutex_unlock(&w->mu);
  uv_async_send(&w->async);
}

static void *log_main(void *arg) {
  wal *w = arg;
  pthread_setname_np(pthread_self(), "quorumd-log");
  queue batch = {0};
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->q.n && !w->stop) pthread_cond_wait(&w->log_cv, &w->mu);
    if (!w->q.n) break; /* stopping, and nothing left */
    queue_swap(&w->q, &batch);
    uint64_t compact_to = w->compact_to;
    pthread_mutex_unlock(&w->mu);

    uint64_t first = atomic_load(&w->last_index) + 1;
    log_write(w, batch.v, batch.n, first, compact_to);
    atomic_store(&w->last_index, first + batch.n - 1);
    for (size_t i = 0; i < batch.n; i++) batch.v[i].index = first + i;

    pthread_mutex_lock(&w->mu);
    /* When no new record waits for the log, the apply thread is idle and nothing is queued
     * before this batch, apply it here: at low load that saves a thread wake-up per write.
     * Under load the batch is handed over, so the next fsync is not held up. */
    if (!w->q.n && !w->aq.n && pthread_mutex_trylock(&w->apply_mu) == 0) {
      pthread_mutex_unlock(&w->mu);
      apply_batch(w, &batch);
      pthread_mutex_unlock(&w->apply_mu);
      pthread_mutex_lock(&w->mu);
      continue;
    }
    for (size_t i = 0; i < batch.n; i++) queue_push(&w->aq, batch.v[i]);
    batch.n = 0;
    pthread_cond_signal(&w->apply_cv);
  }
  w->log_done = 1;
  pthread_cond_signal(&w->apply_cv);
  pthread_mutex_unlock(&w->mu);
  free(batch.v);
  return NULL;
}

static void *apply_main(void *arg) {
  wal *w = arg;
  pthread_setname_np(pthread_self(), "quorumd-apply");
  queue batch = {0};
  pthread_mutex_lock(&w->mu);
  for (;;) {
    while (!w->aq.n && !w->log_done) pthread_cond_wait(&w->apply_cv, &w->mu);
    if (!w->aq.n) break;
    pthread_mutex_unlock(&w->mu);
    /* Take the queue only while holding apply_mu, so the log thread never applies a later
     * batch while an earlier one is between the queue and the store. */
    pthread_mutex_lock(&w->apply_mu);
    pthread_mutex_lock(&w->mu);
    queue_swap(&w->aq, &batch);
    pthread_mutex_unlock(&w->mu);
    if (batch.n) apply_batch(w, &batch);
    pthread_mutex_unlock(&w->apply_mu);
    pthread_mutex_lock(&w->mu);
  }
  pthread_mutex_unlock(&w->mu);
  free(batch.v);
  return NULL;
}

static void wal_free(wal *w) {
  if (w->db) leveldb_close(w->db);
  if (w->opts) leveldb_options_destroy(w->opts);
  if (w->wo) leveldb_writeoptions_destroy(w->wo);
  if (w->ro) leveldb_readoptions_destroy(w->ro);
  free(w->q.v);
  free(w->aq.v);
  free(w);
}

int wal_start(wal **out, uv_loop_t *loop, store *s, const char *log_path, int create, int sync,
              stats *st, uint64_t keep, wal_done_cb cb, void *arg, char *err, size_t errlen) {
  wal *w = calloc(1, sizeof *w);
  if (!w) return -ENOMEM;
  w->loop = loop;
  w->s = s;
  w->st = st;
  w->keep = keep ? keep : 1;
  w->cb = cb;
  w->arg = arg;
  w->opts = leveldb_options_create();
  leveldb_options_set_create_if_missing(w->opts, create);
  leveldb_options_set_paranoid_checks(w->opts, 1);
  leveldb_options_set_write_buffer_size(w->opts, 8 << 20);
  leveldb_options_set_compression(w->opts, leveldb_no_compression);
  w->wo = leveldb_writeoptions_create();
  leveldb_writeoptions_set_sync(w->wo, sync);
  w->ro = leveldb_readoptions_create();
  char *lerr = NULL;
  w->db = leveldb_open(w->opts, log_path, &lerr);
  if (!w->db) {
    snprintf(err, errlen, "cannot open the log in %s: %s", log_path, lerr ? lerr : "unknown");
    leveldb_free(lerr);
    wal_free(w);
    return -EIO;
  }
  int rc = replay(w, err, errlen);
  if (rc) {
    wal_free(w);
    return rc;
  }
  w->last_index = log_last(w);
  if (w->last_index < store_applied(s)) w->last_index = store_applied(s);
  w->compacted = log_compacted(w);
  w->synced_applied = store_sync_applied(s);
  pthread_mutex_init(&w->mu, NULL);
  pthread_mutex_init(&w->apply_mu, NULL);
  pthread_cond_init(&w->log_cv, NULL);
  pthread_cond_init(&w->apply_cv, NULL);
  uv_async_init(loop, &w->async, on_async);
  w->async.data = w;
  if (pthread_create(&w->log_thread, NULL, log_main, w)) abort();
  if (pthread_create(&w->apply_thread, NULL, apply_main, w)) abort();
  *out = w;
  return 0;
}

int wal_submit(wal *w, const proto_record *rec, void *ctx) {
  item it = {.ctx = ctx};
  size_t cap = 0;
  if (proto_record_encode(rec, &it.data, &it.len, &cap)) {
    free(it.data);
    return -ENOMEM;
  }
  pthread_mutex_lock(&w->mu);
  queue_push(&w->q, it);
  if (w->q.n == 1) pthread_cond_signal(&w->log_cv);
  pthread_mutex_unlock(&w->mu);
  return 0;
}

uint64_t wal_last_index(wal *w) { return atomic_load(&w->last_index); }

static void on_async_closed(uv_handle_t *h) { wal_free(h->data); }

void wal_stop(wal *w) {
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->stop = 1;
  pthread_cond_signal(&w->log_cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->log_thread, NULL);
  pthread_join(w->apply_thread, NULL);
  deliver(w);
  store_sync_applied(w->s);
  pthread_mutex_destroy(&w->mu);
  pthread_mutex_destroy(&w->apply_mu);
  pthread_cond_destroy(&w->log_cv);
  pthread_cond_destroy(&w->apply_cv);
  uv_close((uv_handle_t *)&w->async, on_async_closed);
}
