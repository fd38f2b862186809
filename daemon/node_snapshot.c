/* node_snapshot: snapshots and log compaction for the Raft driver (raft thread).
 *
 * The tree store is the state machine and is itself the snapshot: the log keeps `keep`
 * entries below the point where the store is durable, and everything older is deleted. A
 * follower that needs entries already deleted gets the whole store at the applied index,
 * pinned while the apply thread is idle so that the dump, the index, its term and the
 * configuration agree, and written out on a thread of its own (node_snapshot_make). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/auth.h"
#include "daemon/node_i.h"
#include "daemon/store_codec.h"
#include "raft/storage/snap_spool.h"

static int snap_state(node *n) {
  pthread_mutex_lock(&n->mu);
  int st = n->snap_state;
  pthread_mutex_unlock(&n->mu);
  return st;
}

static void set_snap_state(node *n, int st) {
  pthread_mutex_lock(&n->mu);
  n->snap_state = st;
  pthread_mutex_unlock(&n->mu);
}

/* The dump thread: writes the pinned store out, then leaves the result for the raft thread.
 * The dump goes to a nameless file mapped in memory (raft/storage/snap_spool.h), whose pages
 * the kernel may write back and drop, rather than to anonymous memory: it is the whole tree,
 * and the transport holds it until the follower has all of it. */
static void *snap_main(void *arg) {
  node *n = arg;
  pthread_setname_np(pthread_self(), "quorumd-snap");
  store_dump *job = n->snap_job;
  raft_snapshot res = {0};
  int rc;
  size_t size = store_snapshot_size(job);
  uint8_t *map = n->cfg.snapshot_dir ? raft_spool_map(n->cfg.snapshot_dir, size) : NULL;
  if (map) {
    res.data = (raft_buf){map, size};
    res.release = raft_spool_release;
    rc = store_snapshot_write_into(job, (char *)map, size);
  } else {
    if (n->cfg.snapshot_dir)
      fprintf(stderr, "quorumd: cannot spool a snapshot of %zu bytes to %s (%s): it is made in "
                      "memory\n", size, n->cfg.snapshot_dir, strerror(errno));
    char *p = NULL;
    size_t len = 0;
    rc = store_snapshot_write(job, &p, &len);
    res.data = (raft_buf){(uint8_t *)p, len};
  }
  store_snapshot_end(job);
  if (rc) raft_snapshot_free_data(&res);
  pthread_mutex_lock(&n->mu);
  n->snap_job = NULL;
  n->snap_res.data = res.data;
  n->snap_res.release = res.release;
  n->snap_state = NODE_SNAP_READY;
  pthread_mutex_unlock(&n->mu);
  return NULL;
}

/* The storage's snapshot(), called by the core when a follower needs entries already deleted.
 * The dump of a large tree takes long (about half a second for 1M keys), and the raft thread
 * must not stop sending heartbeats meanwhile: the first call pins the store at the applied
 * index (while the apply thread is idle, so that dump, index, term and configuration agree)
 * and starts a thread to write it out, answering "temporarily unavailable"; the core asks
 * again at the next heartbeat response and gets the finished snapshot. */
int node_snapshot_make(void *arg, raft_snapshot *out) {
  node *n = arg;
  int state = snap_state(n);
  if (state == NODE_SNAP_RUNNING) return RAFT_E_SNAP_TEMP;
  if (state == NODE_SNAP_READY) {
    pthread_join(n->snap_thread, NULL);
    raft_snapshot res = n->snap_res;
    memset(&n->snap_res, 0, sizeof n->snap_res);
    set_snap_state(n, NODE_SNAP_IDLE);
    /* usable while the log still has the entries after it; else make a newer one */
    if (res.data.base && res.meta.index + 1 >= raft_wal_first_index(n->wal)) {
      *out = res;
      fprintf(stderr, "quorumd: made a snapshot at index %" PRIu64 " (%zu bytes, %.3f s) for a follower\n",
              res.meta.index, res.data.len, (double)(node_mono_ns() - n->snap_started_ns) / 1e9);
      return 0;
    }
    raft_snapshot_free_data(&res);
  }
  node_wait_applied(n);
  uint64_t index = store_applied(n->s);
  uint64_t term = 0;
  const raft_storage *stg = raft_wal_storage(n->wal);
  int rc = stg->term(stg->ctx, index, &term);
  if (rc) return rc == RAFT_E_COMPACTED ? RAFT_E_SNAP_TEMP : rc;
  store_dump *job;
  if (store_snapshot_begin(n->s, &job)) return RAFT_E_STORAGE;
  memset(&n->snap_res, 0, sizeof n->snap_res);
  n->snap_res.meta.index = index;
  n->snap_res.meta.term = term;
  raft_wal_initial(n->wal, NULL, &n->snap_res.meta.conf);
  n->snap_job = job;
  n->snap_started_ns = node_mono_ns();
  set_snap_state(n, NODE_SNAP_RUNNING);
  if (pthread_create(&n->snap_thread, NULL, snap_main, n) != 0) {
    set_snap_state(n, NODE_SNAP_IDLE);
    n->snap_job = NULL;
    store_snapshot_end(job);
  }
  return RAFT_E_SNAP_TEMP;
}

void node_snapshot_stop(node *n) {
  if (snap_state(n) == NODE_SNAP_IDLE) return;
  pthread_join(n->snap_thread, NULL);
  raft_snapshot_free_data(&n->snap_res);
  memset(&n->snap_res, 0, sizeof n->snap_res);
  n->snap_state = NODE_SNAP_IDLE;
}

static void refresh_members(node *n) {
  node_member m[NODE_MAX_MEMBERS];
  size_t k = node_store_members_load(n, m, NODE_MAX_MEMBERS);
  pthread_mutex_lock(&n->mu);
  memcpy(n->members, m, k * sizeof *m);
  n->n_members = k;
  pthread_mutex_unlock(&n->mu);
  for (size_t i = 0; i < k; i++)
    if (m[i].id != n->cfg.id) node_transport_conf(n, RAFT_CONF_ADD_NODE, &m[i]);
}

/* A snapshot's index, term and configuration: be64 index, term, voter count, voters. */
static void meta_encode(const raft_snapshot_meta *m, sbuf *out) {
  sbuf_put_be64(out, m->index);
  sbuf_put_be64(out, m->term);
  sbuf_put_be64(out, m->conf.n_voters);
  for (size_t i = 0; i < m->conf.n_voters; i++) sbuf_put_be64(out, m->conf.voters[i]);
}

static int meta_decode(const uint8_t *p, size_t len, raft_snapshot_meta *m) {
  if (len < 24) return -1;
  memset(m, 0, sizeof *m);
  m->index = codec_get_be64(p);
  m->term = codec_get_be64(p + 8);
  uint64_t nv = codec_get_be64(p + 16);
  if (nv > RAFT_MAX_VOTERS || len != 24 + 8 * nv) return -1;
  m->conf.n_voters = (size_t)nv;
  for (size_t i = 0; i < nv; i++) m->conf.voters[i] = codec_get_be64(p + 24 + 8 * i);
  return 0;
}

int node_snapshot_finish_install(node *n) {
  uint64_t applied = store_applied(n->s);
  if (applied <= raft_wal_last_index(n->wal)) return 0;
  char *v = NULL;
  size_t len = 0;
  raft_snapshot_meta m;
  int rc = store_snapshot_meta_get(n->s, &v, &len);
  if (rc == 1 && meta_decode((const uint8_t *)v, len, &m) == 0 && m.index == applied) {
    fprintf(stderr, "quorumd: completing the install of the snapshot at index %" PRIu64
                    " (the member stopped between its store and its log)\n", m.index);
    rc = raft_wal_save(n->wal, NULL, &m, NULL, 0, true) ? -EIO : 0;
  } else {
    rc = -EIO; /* the store is ahead of the log, and no install explains it */
  }
  free(v);
  return rc;
}

static void set_installing(node *n, bool on) {
  pthread_mutex_lock(&n->mu);
  n->status.installing = on;
  pthread_mutex_unlock(&n->mu);
}

void node_snapshot_install(node *n, const raft_snapshot *snap) {
  node_wait_applied(n);
  if (store_applied(n->s) >= snap->meta.index) return; /* already there */
  set_installing(n, true);
  if (n->cfg.auth) auth_db_restore_begin(n->cfg.auth);
  /* The store goes first, synced, with the snapshot's Raft state beside it: the log's reset
   * follows (process_ready), and a member stopped in between completes it at its next start
   * (node_snapshot_finish_install). The other way round, a stop in between would leave a log
   * that starts after a state the store does not hold. */
  sbuf meta = {0};
  meta_encode(&snap->meta, &meta);
  int rc = store_snapshot_restore(n->s, (const char *)snap->data.base, snap->data.len, meta.p,
                                  meta.len);
  sbuf_free(&meta);
  if (n->cfg.auth) auth_db_restore_end(n->cfg.auth); /* (before anything answers from it) */
  if (rc == 0 && store_applied(n->s) != snap->meta.index) {
    fprintf(stderr, "quorumd: fatal: snapshot for index %" PRIu64 " holds index %" PRIu64 "\n",
            snap->meta.index, store_applied(n->s));
    abort();
  }
  if (rc) node_fatal("cannot install the snapshot at index %" PRIu64 ": %s", snap->meta.index,
                     strerror(rc < 0 ? -rc : EIO));
  set_installing(n, false);
  atomic_store(&n->synced_applied, snap->meta.index);
  /* (the requests of the entries it holds are not answered; those sent before it are not sent
   * again: node_sent_clear) */
  atomic_store(&n->answered, snap->meta.index);
  refresh_members(n);
  node_removed_load(n);
  node_notify_recovered(n);
  fprintf(stderr, "quorumd: installed a snapshot at index %" PRIu64 " (%zu bytes)\n",
          snap->meta.index, snap->data.len);
}

void node_compact(node *n) {
  uint64_t durable = atomic_load(&n->synced_applied);
  if (durable <= n->cfg.keep) return;
  uint64_t to = durable - n->cfg.keep;
  /* Compact in steps of at least 1024 entries, so a busy member does not delete a few entries
   * after every batch. */
  if (to < raft_wal_first_index(n->wal) + 1024) return;
  if (raft_wal_compact(n->wal, to) < 0)
    fprintf(stderr, "quorumd: compacting the raft log failed\n");
}
