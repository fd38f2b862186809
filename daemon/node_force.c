/* node_force: --force-new-cluster, the way back from a cluster that lost its quorum for good.
 *
 * As etcd does at such a start: the entries above the commit index are dropped (no quorum
 * has them, so no client was told they happened), and entries removing every other voter (and
 * adding this member, if it is not one) are appended after the commit index and marked
 * committed. The raft thread then applies them like any committed change: the core's
 * configuration, the transport and the member table end up with this member alone, which
 * elects itself. The data, the cluster id and the member id stay; members can be added again
 * with POST /v2/members. Done at every start with the flag, as etcd: it is meant for one. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/node_i.h"

/* The voters after the committed entries in (lo, hi] of the log, starting from cs. */
static int replay_conf(node *n, uint64_t lo, uint64_t hi, raft_conf_state *cs) {
  const raft_storage *st = raft_wal_storage(n->wal);
  for (uint64_t i = lo + 1; i <= hi;) {
    raft_entry *ents;
    size_t k;
    int rc = st->entries(st->ctx, i, hi + 1, 8u << 20, &ents, &k);
    if (rc || !k) return rc ? rc : RAFT_E_STORAGE;
    for (size_t j = 0; j < k; j++) {
      raft_conf_change cc;
      if (ents[j].type != RAFT_ENTRY_CONF_CHANGE ||
          raft_conf_change_decode(ents[j].data.base, ents[j].data.len, &cc))
        continue;
      raft_conf_state_apply(cs, &cc); /* (a voter beyond RAFT_MAX_VOTERS: never stored) */
    }
    i += k;
    raft_entries_free(ents, k);
  }
  return 0;
}

/* One committed membership change entry of this member's making. */
static int change_entry(node *n, uint8_t type, const node_member *m, uint64_t index,
                        uint64_t term, raft_entry *out) {
  node_member_ctx mc = {.origin = n->cfg.id, .m = *m};
  char *ctx;
  size_t ctx_len;
  if (node_member_encode(&mc, &ctx, &ctx_len)) return -ENOMEM;
  raft_conf_change cc = {.type = type, .node_id = m->id, .context = {(uint8_t *)ctx, ctx_len}};
  int rc = raft_conf_change_encode(&cc, &out->data);
  free(ctx);
  if (rc) return -ENOMEM;
  out->index = index;
  out->term = term;
  out->type = RAFT_ENTRY_CONF_CHANGE;
  return 0;
}

int node_force_new_cluster(node *n, char *err, size_t errlen) {
  raft_hard_state hs;
  raft_conf_state cs;
  raft_wal_initial(n->wal, &hs, &cs);
  uint64_t last = raft_wal_last_index(n->wal);
  if (n->cfg.create || (!cs.n_voters && !last)) return 0; /* new: one member anyway */
  uint64_t commit = hs.commit < last ? hs.commit : last;
  uint64_t first = raft_wal_first_index(n->wal);
  uint64_t from = store_applied(n->s);
  if (first && from < first - 1) from = first - 1;
  if (from > commit) from = commit;
  /* The configuration in the log is that of the newest committed change the raft thread saw,
   * never older than the store's applied index: replaying the changes after that index gives
   * the configuration at the commit index. */
  int rc = replay_conf(n, from, commit, &cs);
  if (rc) {
    snprintf(err, errlen, "--force-new-cluster: cannot read the raft log: %s", raft_strerror(rc));
    return -EIO;
  }
  raft_entry ents[RAFT_MAX_VOTERS + 1];
  size_t k = 0;
  uint64_t term = hs.term;
  const raft_storage *st = raft_wal_storage(n->wal);
  uint64_t t_commit = 0;
  if (st->term(st->ctx, commit, &t_commit) == 0 && t_commit > term) term = t_commit;
  int self_voter = 0;
  rc = 0;
  for (size_t i = 0; i < cs.n_voters && !rc; i++) {
    if (cs.voters[i] == n->cfg.id) {
      self_voter = 1;
      continue;
    }
    node_member m = {.id = cs.voters[i]};
    pthread_mutex_lock(&n->mu);
    const node_member *known = node_member_find_locked(n, cs.voters[i]);
    if (known) m = *known;
    pthread_mutex_unlock(&n->mu);
    rc = change_entry(n, RAFT_CONF_REMOVE_NODE, &m, commit + 1 + k, term, &ents[k]);
    if (!rc) k++;
  }
  if (!self_voter && !rc) {
    rc = change_entry(n, RAFT_CONF_ADD_NODE, n->cfg.self, commit + 1 + k, term, &ents[k]);
    if (!rc) k++;
  }
  if (!rc && !k && last == commit) return 0; /* alone already, nothing uncommitted */
  if (!rc) {
    if (!k) { /* alone already: only the uncommitted tail goes, replaced by an empty entry */
      ents[0] = (raft_entry){.index = commit + 1, .term = term, .type = RAFT_ENTRY_NORMAL};
      k = 1;
    }
    raft_hard_state nhs = {.term = term, .vote = hs.vote, .commit = commit + k};
    rc = raft_wal_save(n->wal, &nhs, NULL, ents, k, true);
    if (rc) snprintf(err, errlen, "--force-new-cluster: cannot write the raft log: %s", raft_strerror(rc));
  } else {
    snprintf(err, errlen, "--force-new-cluster: out of memory");
  }
  for (size_t i = 0; i < k; i++) free(ents[i].data.base);
  if (rc) return -EIO;
  fprintf(stderr,
          "quorumd: --force-new-cluster: %zu other member(s) removed, %" PRIu64
          " uncommitted entr%s dropped; this member (%" PRIx64 ") is now the whole cluster. "
          "Restart it without the flag once it runs.\n",
          cs.n_voters - (size_t)self_voter, last - commit, last - commit == 1 ? "y" : "ies",
          n->cfg.id);
  return 0;
}
