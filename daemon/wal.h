/* wal: the durable request log and its storage thread. Records submitted on the loop thread
 * are appended to the log in LevelDB with one fsync per batch (group commit: everything that
 * arrived while the previous batch was syncing goes into the next one), then applied to the
 * tree store in log order; the outcomes come back to the loop thread through a uv_async. */
#ifndef QUORUM_DAEMON_WAL_H
#define QUORUM_DAEMON_WAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "daemon/store.h"
#include "proto/record.h"

typedef struct wal wal;

/* The outcome of one record, delivered on the loop thread. The receiver owns res.body and
 * the event references; ctx is what was passed to wal_submit. */
typedef struct wal_done {
  void *ctx;
  store_result res;
  store_event **events;
  size_t n_events;
} wal_done;

typedef void (*wal_done_cb)(void *arg, wal_done *d);

/* Replays log entries above the store's applied index (at start, before serving), then starts
 * the storage thread. keep: how many applied log entries to keep before compacting.
 * Returns 0 or negative errno with a message in err. */
int wal_start(wal **out, uv_loop_t *loop, store *s, stats *st, uint64_t keep, wal_done_cb cb,
              void *arg, char *err, size_t errlen);

/* Queues rec for the log (loop thread). Returns 0 or -ENOMEM. */
int wal_submit(wal *w, const proto_record *rec, void *ctx);

/* Log index of the last record made durable. */
uint64_t wal_last_index(wal *w);

/* Finishes what was submitted, stops the thread and frees w (loop thread; runs the loop's
 * callbacks for the remaining outcomes first). */
void wal_stop(wal *w);

#endif
