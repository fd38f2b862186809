/* wal: the durable request log and the two threads behind it. Records submitted on the loop
 * thread are appended to the log (its own LevelDB) with one fsync per batch — group commit:
 * everything that arrived while the previous batch was syncing goes into the next — and then
 * applied to the tree store, in log order, by the apply thread, one WriteBatch per group, while
 * the log thread already syncs the next batch. Outcomes return to the loop through a uv_async. */
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

/* Opens the log database at log_path (creating it when create is set), applies the entries
 * above the store's applied index (recovery), then starts the threads. keep: applied entries
 * kept in the log below the durable applied index. sync: fsync log writes.
 * Returns 0 or negative errno with a message in err. */
int wal_start(wal **out, uv_loop_t *loop, store *s, const char *log_path, int create, int sync,
              stats *st, uint64_t keep, wal_done_cb cb, void *arg, char *err, size_t errlen);

/* Queues rec for the log (loop thread). Returns 0 or -ENOMEM. */
int wal_submit(wal *w, const proto_record *rec, void *ctx);

/* Log index of the last record made durable. */
uint64_t wal_last_index(wal *w);

/* Finishes what was submitted, stops the threads, delivers the last outcomes and frees w. */
void wal_stop(wal *w);

#endif
