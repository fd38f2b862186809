/* store_i: the tree store's private state and helpers shared by store.c and store_list.c. */
#ifndef QUORUM_DAEMON_STORE_I_H
#define QUORUM_DAEMON_STORE_I_H

#include <leveldb/c.h>
#include <pthread.h>
#include <stdatomic.h>

#include "daemon/store.h"
#include "daemon/store_codec.h"
#include "daemon/store_overlay.h"
#include "proto/v2_json.h"

/* The event history (store_history.c). */
typedef struct store_history {
  pthread_mutex_t mu;    /* guards the ring */
  store_event_ring ring; /* the last events */
  /* apply thread */
  char *dir;
  int fd[2], cur;     /* history-0 and history-1; cur takes the appends */
  size_t in_cur;      /* events in the current file */
  store_event **staged; /* the group's events, not yet written */
  size_t n_staged, cap_staged;
  sbuf buf;           /* their file records */
} store_history;

struct store {
  int opened; /* store_open succeeded: store_close keeps the stats */
  leveldb_t *db;
  leveldb_options_t *opts;
  leveldb_cache_t *cache;
  const leveldb_filterpolicy_t *filter;
  leveldb_readoptions_t *ropts;
  leveldb_writeoptions_t *wopts_nosync;
  int sync;
  stats *st;
  _Atomic uint64_t index;   /* etcd index after the last applied batch */
  _Atomic uint64_t applied; /* log index of the last applied record */
  /* apply side (apply thread only) */
  uint64_t apply_index;        /* etcd index including the group not yet written */
  uint64_t apply_applied;      /* log index likewise */
  leveldb_writebatch_t *group; /* the group being applied */
  int group_dirty;
  overlay ovl;                 /* the group's node writes, for reads inside the group */
  overlay dirs;                /* paths known to be directories (a set: saves a read per
                                  write below them); emptied whenever any directory goes */
  leveldb_writeoptions_t *wopts_sync;
  store_history hist;
  /* the ids of removed members as of the last applied entry, the group included (apply side:
   * loaded at open and after a snapshot, added to by store_removed_put) */
  uint64_t *removed;
  size_t n_removed, cap_removed;
  /* a snapshot being installed (store_install.c) */
  char *dir;                            /* the store's directory */
  _Atomic uint64_t install_gen;         /* odd while its batches are being written */
  pthread_mutex_t pin_mu;               /* guards install_pin and pin_users */
  pthread_cond_t pin_cv;                /* pin_users fell to 0 */
  const leveldb_snapshot_t *install_pin; /* the store before the install, for readers */
  unsigned pin_users;
  size_t install_batch;                  /* bytes per batch (0: the default) */
  int (*install_hook)(void *arg, unsigned batches); /* test hook: nonzero stops the install */
  void *install_hook_arg;
};

/* A whole-store dump (store_raft.c writes it, store_install.c puts it in place): the magic,
 * then be32 key length, key, be32 value length, value, for each record. */
#define STORE_SNAP_MAGIC "QSNAP1"
#define STORE_SNAP_MAGIC_LEN 6
/* The key of the META given to store_snapshot_restore. */
#define STORE_SNAP_META_KEY "msnapmeta"

/* store_install.c: 0 when a dump is well formed, else -EINVAL; at open, completes an install
 * that a stop interrupted (0 when there was none, or a negative errno). */
int store_install_check(const char *data, size_t len);
int store_install_redo(store *s);

/* A consistent read of the store from any thread: a LevelDB snapshot, or while a snapshot is
 * being installed the store as it was before (store_install.c). */
typedef struct store_view {
  const leveldb_snapshot_t *snap;
  leveldb_readoptions_t *ro;
  int pinned;
} store_view;
void store_view_begin(store *s, store_view *v);
void store_view_end(store *s, store_view *v);

/* store_raft.c: (re)loads s->removed from the database. 0 or -ENOMEM. */
int store_removed_load(store *s);

/* store_history.c: open (read the files, import 'h' keys, settle on the tree's index) and
 * close; reload after a snapshot replaced the tree; the apply side stages a group's events,
 * writes them (before the group's tree write), publishes them (after it), and syncs. */
int store_history_open(store *s, const char *dir);
void store_history_close(store *s);
int store_history_reload(store *s);
/* A removed-paths list being built for a directory's delete or expiry (store.h): PATH added;
 * past STORE_REMOVED_MAX the list is given up (*known cleared, the buffer freed). */
void store_event_removed_add(sbuf *list, int *known, const char *path, size_t len);
/* E keeps the list (when *known), or it is freed. */
void store_event_take_removed(store_event *e, sbuf *removed, int known);

void store_history_stage(store *s, store_event *e);
int store_history_write(store *s);
void store_history_publish(store *s);
int store_history_sync(store *s);
/* An event as a record's payload and a legacy 'h' value: dir(1) refresh(1) action(1)
 * index(8) keylen(4) key json. */
void store_history_encode(sbuf *b, const store_event *e);

/* A node read from the database: the decoded header plus the value's own copy. */
typedef struct store_node {
  codec_node n;
  char *raw; /* value bytes (malloc'd by LevelDB or by us); free with store_node_release */
} store_node;

/* Reads the node at path. Returns 1 (found, *out filled), 0 (missing) or -EIO. */
int store_node_read(store *s, const leveldb_readoptions_t *ro, const char *path, size_t len,
                    store_node *out);
void store_node_release(store_node *n);

/* Renders a GET of path (already known to exist as node *n) into g. */
int store_list_gen(store *s, const leveldb_readoptions_t *ro, const char *path, size_t len,
                   const codec_node *n, int recursive, int sorted, int64_t now_ns, yajl_gen g);

/* Finishes a yajl generator into a malloc'd body with a trailing newline. */
void store_gen_finish(yajl_gen g, char **body, size_t *len);

#endif
