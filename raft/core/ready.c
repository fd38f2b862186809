/* ready.c: the output side. raft_get_ready collects what changed since the last advance:
 * soft state, hard state, the unstable snapshot and entries (to persist), committed entries
 * (to apply), messages (to send after persisting) and read states. raft_advance acknowledges
 * the batch: the persisted tail becomes stable, applied moves, and only now does the leader
 * count its own new entries toward commit (etcd#14370: the leader's self-ack waits for its
 * own durable write).
 *
 * The core owns every array in a ready until raft_advance; entries in it are deep copies and
 * the snapshot's data is moved out of the log, so nothing the driver holds is invalidated by
 * calls made before advance (raft_apply_conf_change, raft_step). */
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft_i.h"

static bool soft_eq(raft_soft_state a, raft_soft_state b) {
  return a.lead == b.lead && a.role == b.role;
}

static bool hs_eq(raft_hard_state a, raft_hard_state b) {
  return a.term == b.term && a.vote == b.vote && a.commit == b.commit;
}

static raft_soft_state soft_now(const raft *r) { return (raft_soft_state){r->lead, r->role}; }

static raft_hard_state hs_now(const raft *r) {
  return (raft_hard_state){r->term, r->vote, r->log.committed};
}

bool raft_has_ready(const raft *r) {
  if (r->rd_out) return false;
  if (!soft_eq(soft_now(r), r->prev_soft)) return true;
  if (!hs_eq(hs_now(r), r->prev_hs)) return true;
  if (r->log.snap || r->log.n > 0 || r->n_msgs > 0 || r->n_reads > 0) return true;
  return raft_log_has_next_committed(&r->log);
}

void raft_get_ready(raft *r, raft_ready *rd) {
  if (r->rd_out) RAFT_PANIC(r, "raft_get_ready called again before raft_advance");
  *rd = (raft_ready){0};
  rd->soft = soft_now(r);
  rd->soft_changed = !soft_eq(rd->soft, r->prev_soft);
  rd->hs = hs_now(r);
  rd->hs_changed = !hs_eq(rd->hs, r->prev_hs);
  if (r->log.snap) {
    /* The data moves to the ready (a snapshot can be the whole state machine: one copy less);
     * the log keeps its meta until the advance. */
    rd->snapshot = *r->log.snap;
    r->log.snap->data.base = NULL; /* (len kept: raft_log_snapshot tells it apart) */
    rd->has_snapshot = true;
  }
  if (r->log.n > 0) {
    if (raft_entries_copy(&rd->entries, r->log.ents, r->log.n) != RAFT_OK)
      RAFT_PANIC(r, "out of memory");
    rd->n_entries = r->log.n;
  }
  if (raft_log_has_next_committed(&r->log)) {
    uint64_t lo = r->log.applied + 1, first = raft_log_first_index(&r->log);
    if (lo < first) RAFT_PANIC(r, "applied %llu below first index %llu",
                               (unsigned long long)r->log.applied, (unsigned long long)first);
    int rc = raft_log_slice(&r->log, lo, r->log.committed + 1, UINT64_MAX, &rd->committed,
                            &rd->n_committed);
    if (rc != RAFT_OK) RAFT_PANIC(r, "committed entries: %s", raft_strerror(rc));
  }
  rd->msgs = r->msgs;
  rd->n_msgs = r->n_msgs;
  r->msgs = NULL;
  r->n_msgs = r->cap_msgs = 0;
  rd->reads = r->reads;
  rd->n_reads = r->n_reads;
  r->reads = NULL;
  r->n_reads = r->cap_reads = 0;
  rd->must_sync = rd->hs.term != r->prev_hs.term || rd->hs.vote != r->prev_hs.vote ||
                  rd->n_entries > 0 || rd->has_snapshot;
  r->rd = *rd;
  r->rd_out = true;
}

void raft_ready_free(raft *r) {
  if (!r->rd_out) return;
  raft_ready *rd = &r->rd;
  raft_snapshot_free_data(&rd->snapshot);
  raft_entries_free(rd->entries, rd->n_entries);
  raft_entries_free(rd->committed, rd->n_committed);
  for (size_t i = 0; i < rd->n_msgs; i++) raft_message_free(&rd->msgs[i]);
  free(rd->msgs);
  for (size_t i = 0; i < rd->n_reads; i++) free(rd->reads[i].ctx.base);
  free(rd->reads);
  *rd = (raft_ready){0};
  r->rd_out = false;
}

void raft_advance(raft *r, raft_ready *rd_in) {
  (void)rd_in; /* the core kept its own record of what it handed out */
  if (!r->rd_out) return;
  raft_ready *rd = &r->rd;
  if (rd->soft_changed) r->prev_soft = rd->soft;
  r->prev_hs = rd->hs;
  if (rd->has_snapshot) {
    raft_log_stable_snap_to(&r->log, rd->snapshot.meta.index);
    if (rd->snapshot.meta.index > r->log.applied) {
      if (r->log.committed < rd->snapshot.meta.index) r->log.committed = rd->snapshot.meta.index;
      raft_log_applied_to(&r->log, rd->snapshot.meta.index);
    }
  }
  if (rd->n_entries > 0) {
    const raft_entry *last = &rd->entries[rd->n_entries - 1];
    raft_log_stable_to(&r->log, last->index, last->term);
  }
  if (rd->n_committed > 0) {
    const raft_entry *last = &rd->committed[rd->n_committed - 1];
    if (r->role == RAFT_LEADER) {
      uint64_t s = raft_entries_size(rd->committed, rd->n_committed);
      r->uncommitted_size = s < r->uncommitted_size ? r->uncommitted_size - s : 0;
    }
    if (last->index > r->log.applied) raft_log_applied_to(&r->log, last->index);
  }
  raft_ready_free(r);
  if (r->role == RAFT_LEADER) raft_leader_self_ack(r);
  if (rd_in) *rd_in = (raft_ready){0};
}
