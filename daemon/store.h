/* store: the etcd v2 key tree on LevelDB. Reads run on the loop thread; apply runs on the
 * storage thread, one committed record at a time, each in one WriteBatch that also records
 * the applied log index and the event history. Errors use v2 error codes (100, 101, ...). */
#ifndef QUORUM_DAEMON_STORE_H
#define QUORUM_DAEMON_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/stats.h"
#include "proto/record.h"

typedef struct store store;
typedef struct leveldb_t leveldb_t;

typedef enum store_action {
  STORE_ACT_GET,
  STORE_ACT_SET,
  STORE_ACT_CREATE,
  STORE_ACT_UPDATE,
  STORE_ACT_CAS,
  STORE_ACT_DELETE,
  STORE_ACT_CAD,
  STORE_ACT_EXPIRE,
} store_action;

const char *store_action_name(int action);

#define STORE_HISTORY 1000

/* One change, as watchers and the history see it. Shared by an atomic reference count: every
 * HTTP loop's watcher hub holds its own references. */
typedef struct store_event {
  _Atomic int refs;
  uint8_t action;
  uint8_t dir;
  uint8_t refresh;     /* a refresh: kept in history for the window's size, never delivered */
  uint64_t index;
  char *key;           /* NUL-terminated */
  size_t key_len;
  char *json;          /* the event body with its trailing newline */
  size_t json_len;
  /* A directory's delete or expiry: the paths of the nodes removed below it, each as a 4-byte
   * length and its bytes (etcd notifies the watchers of those paths alone, not of keys below
   * that do not exist). removed_known 0: not kept (more than STORE_REMOVED_MAX bytes, or an
   * event read back from disk): every watcher below is notified. */
  char *removed;
  size_t removed_len;
  uint8_t removed_known;
} store_event;

#define STORE_REMOVED_MAX (64u << 10)

/* Whether PATH is one of e->removed (e->removed_known set). */
int store_event_removed(const store_event *e, const char *path, size_t len);

void store_event_ref(store_event *e);
void store_event_unref(store_event *e);

/* The last STORE_HISTORY events, oldest first (the store's history and each watcher hub's). */
typedef struct store_event_ring {
  store_event *ev[STORE_HISTORY];
  size_t head, n;
} store_event_ring;

/* Appends e, taking its reference; the oldest is dropped when the ring is full. */
void store_event_ring_push(store_event_ring *r, store_event *e);
void store_event_ring_clear(store_event_ring *r);
/* The i-th oldest event (i < r->n). */
static inline store_event *store_event_ring_at(const store_event_ring *r, size_t i) {
  return r->ev[(r->head + i) % STORE_HISTORY];
}

/* The answer to one request. body is malloc'd (JSON + "\n"); free with store_result_free. */
typedef struct store_result {
  int status;          /* HTTP status; 0 = nothing to answer (SYNC) */
  int error_code;      /* v2 errorCode, 0 on success */
  uint8_t action;
  uint64_t etcd_index; /* X-Etcd-Index */
  uint64_t raft_index; /* X-Raft-Index (the record's log index for applied records) */
  char *body;
  size_t body_len;
} store_result;

void store_result_free(store_result *r);
/* Fills r with a v2 error body (index as given). */
void store_result_error(store_result *r, int code, const char *cause, size_t cause_len,
                        uint64_t index);

/* Opens (creating if missing) the LevelDB database at dir. sync: whether log writes fsync.
 * Returns 0, or -EIO with a message in err. */
int store_open(store **out, const char *dir, int sync, stats *st, char *err, size_t errlen);
void store_close(store *s);
leveldb_t *store_db(store *s);
int store_sync_enabled(const store *s);

/* Current etcd index and applied log index (as last applied). Thread-safe. */
uint64_t store_index(store *s);
uint64_t store_applied(store *s);

/* GET (loop thread): a consistent read of path. */
void store_get(store *s, const char *path, size_t len, int recursive, int sorted, int64_t now_ns,
               store_result *res);

/* The earliest expiration of any key, or 0 when no key has a TTL (loop thread). */
int64_t store_next_expiry(store *s);

/* Apply (storage thread): applies the committed record at log_index. Fills *res (may be
 * status 0) and appends produced events to *events (n, cap updated; realloc'd). Records at or
 * below the applied index are skipped (res->status 0). Returns 0, or -EIO when LevelDB failed. */
int store_apply(store *s, uint64_t log_index, const proto_record *rec, store_result *res,
                store_event ***events, size_t *n_events, size_t *cap_events);

/* Writes the group applied since the last flush (one WriteBatch, not synced) and publishes
 * its index to readers. Called by the apply thread after each group. Returns 0 or -EIO. */
int store_group_flush(store *s);

/* Makes everything applied so far durable (a synced write). Returns the applied log index it
 * covers, or 0 on failure. Apply thread. */
uint64_t store_sync_applied(store *s);

/* Loads the last STORE_HISTORY events (oldest first) into out (caller frees each with unref and
 * the array with free). */
int store_load_history(store *s, store_event ***out, size_t *n);

/* store_raft.c: what the Raft driver keeps here besides keys (apply thread, or before it runs).
 * Member records go into the current group; store_skip advances the applied index over an
 * entry that changes no key; a snapshot is every record of the database (dump: consistent,
 * any thread; restore: replaces everything, synced, then reloads the indexes). */
void store_member_put(store *s, uint64_t id, const void *data, size_t len);
void store_member_del(store *s, uint64_t id);
void store_members_each(store *s, void (*fn)(void *arg, const void *data, size_t len), void *arg);
/* Members removed from the cluster (ids are never reused): kept so that one started again with
 * its old data dir can be told, however long after. */
void store_removed_put(store *s, uint64_t id);
void store_removed_each(store *s, void (*fn)(void *arg, uint64_t id), void *arg);
/* Whether id was removed as of the entry being applied (apply side): the same answer on every
 * member at the same log index, whatever each knows of the membership of today. */
bool store_removed_has(const store *s, uint64_t id);
/* Other state machine records ('A': /v2/auth's users, roles and switch): put and delete go
 * into the current group; each calls fn for every record whose key starts with prefix. */
void store_meta_put(store *s, const char *key, size_t klen, const char *val, size_t vlen);
void store_meta_del(store *s, const char *key, size_t klen);
void store_meta_each(store *s, const char *prefix, size_t plen,
                     void (*fn)(void *arg, const char *k, size_t kl, const char *v, size_t vl),
                     void *arg);
void store_skip(store *s, uint64_t log_index);
/* Takes count etcd indexes for changes etcd makes outside the keys (/v2/auth's state, which
 * etcd keeps as values under /2/, auth.h says how many; members and the cluster version,
 * under /0/): hidden events in the history, which count in its 1000-event window as etcd's do
 * and are never delivered to a watcher (as refreshes); they are added to *events for the
 * watcher hubs' histories. Each also counts as one `counts` in the store stats (STATS_N:
 * none). */
void store_take_indexes(store *s, unsigned count, stats_counter counts, int64_t now,
                        store_event ***events,
                        size_t *n_events, size_t *cap_events);
/* A snapshot is every record of the database, made in steps so that the long one can run on
 * another thread: begin (with nothing being applied) pins the store as it is; write produces
 * the dump of that state while writes go on, from any thread; end releases it. */
typedef struct store_dump store_dump;
int store_snapshot_begin(store *s, store_dump **out);
int store_snapshot_write(store_dump *d, char **out, size_t *len); /* into malloc'd memory */
/* The dump's exact size (a pass over the pinned store), and the dump into dst of that size
 * (a mapped file, say): 0, or -EOVERFLOW when it would not fit. */
size_t store_snapshot_size(store_dump *d);
int store_snapshot_write_into(store_dump *d, char *dst, size_t cap);
void store_snapshot_end(store_dump *d);
/* restore (raft thread, nothing being applied) replaces the whole tree by a dump, META (the
 * Raft snapshot's state, or NULL) beside it; readers see the old tree until all of the new one
 * is in place, and a crash in between is completed at the next store_open (store_install.c).
 * 0, -EINVAL (not a dump: nothing changed) or another negative errno. */
int store_snapshot_restore(store *s, const char *data, size_t len, const void *meta,
                           size_t meta_len);
/* The META given to the last store_snapshot_restore (the Raft snapshot's index, term and
 * configuration, written in the same synced batch as the store): 1 with *out (malloc'd), 0
 * when there is none, or a negative errno. */
int store_snapshot_meta_get(store *s, char **out, size_t *len);
/* While a snapshot's batches are being written the tree holds the key STORE_INSTALL_MARK,
 * and its directory the synced copy STORE_INSTALL_FILE that completes the install at the next
 * store_open (quorumctl backup copies it with the tree). */
#define STORE_INSTALL_MARK "minstalling"
#define STORE_INSTALL_FILE "snapshot.install"
/* Test hook: store_snapshot_restore writes batches of about BATCH bytes (0: the default),
 * and calls HOOK after each but the last; a nonzero return stops the install there, as a
 * crash would (the next store_open completes it). */
void store_set_install_hook(store *s, size_t batch, int (*hook)(void *arg, unsigned batches),
                            void *arg);
/* Rereads the etcd index and applied index from the database. */
int store_reload_meta(store *s);

#endif
