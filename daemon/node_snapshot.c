/* node_snapshot: snapshots and log compaction for the Raft driver (raft thread).
 *
 * The tree store is the state machine and is itself the snapshot: the log keeps `keep`
 * entries below the point where the store is durable, and everything older is deleted. A
 * follower that needs entries already deleted gets the whole store (store_snapshot_dump) at
 * the applied index, made while the apply thread is idle so that the dump, the index, its term
 * and the configuration agree. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/node_i.h"

int node_snapshot_make(void *arg, raft_snapshot *out) {
  node *n = arg;
  node_wait_applied(n);
  uint64_t index = store_applied(n->s);
  uint64_t term = 0;
  const raft_storage *stg = raft_ldb_storage(n->ldb);
  int rc = stg->term(stg->ctx, index, &term);
  if (rc) return rc == RAFT_E_COMPACTED ? RAFT_E_SNAP_TEMP : rc;
  char *data;
  size_t len;
  if (store_snapshot_dump(n->s, &data, &len)) return RAFT_E_STORAGE;
  memset(out, 0, sizeof *out);
  out->meta.index = index;
  out->meta.term = term;
  raft_ldb_initial(n->ldb, NULL, &out->meta.conf);
  out->data.base = (uint8_t *)data;
  out->data.len = len;
  fprintf(stderr, "quorumd: made a snapshot at index %" PRIu64 " (%zu bytes) for a follower\n",
          index, len);
  return 0;
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

void node_snapshot_install(node *n, const raft_snapshot *snap) {
  node_wait_applied(n);
  if (store_applied(n->s) >= snap->meta.index) return; /* already there */
  int rc = store_snapshot_restore(n->s, (const char *)snap->data.base, snap->data.len);
  if (rc == 0 && store_applied(n->s) != snap->meta.index) {
    fprintf(stderr, "quorumd: fatal: snapshot for index %" PRIu64 " holds index %" PRIu64 "\n",
            snap->meta.index, store_applied(n->s));
    abort();
  }
  if (rc) {
    fprintf(stderr, "quorumd: fatal: cannot install the snapshot at index %" PRIu64 "\n",
            snap->meta.index);
    abort();
  }
  atomic_store(&n->synced_applied, snap->meta.index);
  refresh_members(n);
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
  if (to < raft_ldb_first_index(n->ldb) + 1024) return;
  if (raft_ldb_compact(n->ldb, to) < 0)
    fprintf(stderr, "quorumd: compacting the raft log failed\n");
}
