/* replication.c: log replication (§5.3), the commit rule (§5.4.2, Figure 8), snapshots sent to
 * followers behind the first index (§7), heartbeats, and leader transfer (thesis §3.10).
 *
 * Flow control (progress.c): PROBE sends one APP and waits; REPLICATE pipelines up to
 * max_inflight_msgs APPs, advancing next on send; SNAPSHOT pauses until the driver reports.
 * Rejections carry a hint (index, term): the follower skips back over its conflicting term and
 * the leader over its own (find_conflict_by_term on both sides), so a divergent tail costs one
 * round trip per term. */
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft_i.h"

static void send_snapshot(raft *r, raft_progress *pr) {
  if (!pr->recent_active) {
    RAFT_LOG(r, 0, "%llx not sending a snapshot to %llx: not recently active",
             (unsigned long long)r->id, (unsigned long long)pr->id);
    return;
  }
  raft_snapshot *snap = calloc(1, sizeof *snap);
  if (!snap) RAFT_PANIC(r, "out of memory");
  int rc = raft_log_snapshot(&r->log, snap);
  if (rc == RAFT_E_SNAP_TEMP) {
    /* The application is making one: try again at the next heartbeat response. */
    RAFT_LOG(r, 0, "%llx failed to send snapshot to %llx: temporarily unavailable",
             (unsigned long long)r->id, (unsigned long long)pr->id);
    free(snap);
    return;
  }
  if (rc != RAFT_OK) RAFT_PANIC(r, "storage snapshot: %s", raft_strerror(rc));
  if (snap->meta.index == 0) RAFT_PANIC(r, "need a non-empty snapshot");
  RAFT_LOG(r, 1, "%llx sent snapshot [index %llu, term %llu] to %llx", (unsigned long long)r->id,
           (unsigned long long)snap->meta.index, (unsigned long long)snap->meta.term,
           (unsigned long long)pr->id);
  raft_progress_become_snapshot(pr, snap->meta.index);
  /* (the storage's snapshot is malloc'd and ours: the transport may take it, not copy it) */
  raft_message m = {.type = RAFT_MSG_SNAP, .to = pr->id, .snapshot = snap,
                    .snapshot_movable = true};
  raft_send(r, &m);
}

bool raft_maybe_send_append(raft *r, uint64_t to, bool send_if_empty) {
  raft_progress *pr = raft_progress_get(r, to);
  if (!pr || to == r->id || raft_progress_is_paused(pr)) return false;
  uint64_t prev = pr->next - 1, prev_term = 0;
  int rt = raft_log_term(&r->log, prev, &prev_term);
  raft_entry *ents = NULL;
  size_t n = 0;
  int re = RAFT_OK;
  uint64_t last = raft_log_last_index(&r->log);
  if (rt == RAFT_OK && pr->next <= last)
    re = raft_log_slice(&r->log, pr->next, last + 1, r->cfg.max_size_per_msg, &ents, &n);
  if (rt == RAFT_E_UNAVAILABLE)
    RAFT_PANIC(r, "progress of %llx: next %llu beyond last index %llu", (unsigned long long)to,
               (unsigned long long)pr->next, (unsigned long long)last);
  if (rt != RAFT_OK || re != RAFT_OK) {
    /* The entries are compacted away: send a snapshot instead. */
    raft_entries_free(ents, n);
    send_snapshot(r, pr);
    return true;
  }
  if (n == 0 && !send_if_empty) return false;
  raft_message m = {.type = RAFT_MSG_APP, .to = to, .index = prev, .log_term = prev_term,
                    .entries = ents, .n_entries = n, .commit = r->log.committed};
  raft_progress_sent_entries(pr, n, n ? ents[n - 1].index : 0);
  raft_send(r, &m);
  return true;
}

void raft_send_append(raft *r, uint64_t to) { raft_maybe_send_append(r, to, true); }

void raft_bcast_append(raft *r) {
  for (size_t i = 0; i < r->conf.n_voters; i++)
    if (r->conf.voters[i] != r->id) raft_send_append(r, r->conf.voters[i]);
}

static void send_heartbeat(raft *r, uint64_t to, const raft_buf *ctx) {
  raft_progress *pr = raft_progress_get(r, to);
  /* The follower may not have the entries up to our commit yet: never make it commit more
   * than it is known to hold. */
  uint64_t commit = pr->match < r->log.committed ? pr->match : r->log.committed;
  raft_message m = {.type = RAFT_MSG_HEARTBEAT, .to = to, .commit = commit};
  if (ctx && raft_buf_copy(&m.context, ctx->base, ctx->len) != RAFT_OK)
    RAFT_PANIC(r, "out of memory");
  raft_send(r, &m);
}

void raft_bcast_heartbeat(raft *r, const raft_buf *ctx) {
  if (!ctx) ctx = raft_readonly_last_ctx(&r->ro); /* keep pending reads being confirmed */
  for (size_t i = 0; i < r->conf.n_voters; i++)
    if (r->conf.voters[i] != r->id) send_heartbeat(r, r->conf.voters[i], ctx);
}

bool raft_maybe_commit(raft *r) {
  uint64_t match[RAFT_MAX_VOTERS];
  for (size_t i = 0; i < r->conf.n_voters; i++) match[i] = r->prs[i].match;
  uint64_t mci = raft_quorum_commit_index(match, r->conf.n_voters);
  if (!raft_log_maybe_commit(&r->log, mci, r->term)) return false;
  raft_release_pending_reads(r);
  return true;
}

void raft_leader_self_ack(raft *r) {
  raft_progress *pr = raft_progress_get(r, r->id);
  if (!pr) return;
  raft_progress_maybe_update(pr, raft_log_last_persisted(&r->log));
  if (raft_maybe_commit(r)) raft_bcast_append(r);
}

/* ---- follower side ---- */

void raft_handle_append(raft *r, const raft_message *m) {
  if (m->index < r->log.committed) {
    /* Everything up to our commit is known to match: tell the leader where we are. */
    raft_message resp = {.type = RAFT_MSG_APP_RESP, .to = m->from, .index = r->log.committed};
    raft_send(r, &resp);
    return;
  }
  uint64_t last_new = 0;
  if (raft_log_maybe_append(&r->log, m->index, m->log_term, m->commit, m->entries, m->n_entries,
                            &last_new)) {
    raft_message resp = {.type = RAFT_MSG_APP_RESP, .to = m->from, .index = last_new};
    raft_send(r, &resp);
    return;
  }
  /* §5.3: reject on a mismatched (index, log_term). Hint at the largest index whose term is
   * <= the leader's log_term, so the leader skips our whole conflicting term. */
  uint64_t last = raft_log_last_index(&r->log);
  uint64_t hint = m->index < last ? m->index : last, hint_term = 0;
  hint = raft_log_find_conflict_by_term(&r->log, hint, m->log_term, &hint_term);
  RAFT_LOG(r, 0, "%llx [log_term %llu, index %llu] rejected APP [log_term %llu, index %llu] from %llx",
           (unsigned long long)r->id, (unsigned long long)raft_log_term_or_zero(&r->log, m->index),
           (unsigned long long)m->index, (unsigned long long)m->log_term,
           (unsigned long long)m->index, (unsigned long long)m->from);
  raft_message resp = {.type = RAFT_MSG_APP_RESP, .to = m->from, .index = m->index,
                       .reject = true, .reject_hint = hint, .reject_hint_term = hint_term};
  raft_send(r, &resp);
}

void raft_handle_heartbeat(raft *r, const raft_message *m) {
  raft_log_commit_to(&r->log, m->commit);
  raft_message resp = {.type = RAFT_MSG_HEARTBEAT_RESP, .to = m->from};
  if (raft_buf_copy(&resp.context, m->context.base, m->context.len) != RAFT_OK)
    RAFT_PANIC(r, "out of memory");
  raft_send(r, &resp);
}

static bool in_conf(const raft_conf_state *cs, uint64_t id) {
  for (size_t i = 0; i < cs->n_voters; i++)
    if (cs->voters[i] == id) return true;
  return false;
}

/* Installs snapshot s unless we already have it: returns whether the log was replaced. */
static bool restore(raft *r, raft_snapshot *s, bool take) {
  if (s->meta.index <= r->log.committed) return false;
  if (r->role != RAFT_FOLLOWER) {
    RAFT_LOG(r, 2, "%llx attempted to restore snapshot as %s; becoming follower",
             (unsigned long long)r->id, raft_role_name(r->role));
    raft_become_follower(r, r->term + 1, RAFT_NONE);
    return false;
  }
  if (!in_conf(&s->meta.conf, r->id)) {
    RAFT_LOG(r, 2, "%llx attempted to restore snapshot but it is not in the config",
             (unsigned long long)r->id);
    return false;
  }
  if (raft_log_match_term(&r->log, s->meta.index, s->meta.term)) {
    /* We hold the snapshot's last entry: fast-forward the commit instead. */
    raft_log_commit_to(&r->log, s->meta.index);
    return false;
  }
  raft_log_restore(&r->log, s, take);
  raft_set_conf(r, &s->meta.conf);
  RAFT_LOG(r, 1, "%llx restored snapshot [index %llu, term %llu]", (unsigned long long)r->id,
           (unsigned long long)s->meta.index, (unsigned long long)s->meta.term);
  return true;
}

void raft_handle_snapshot(raft *r, const raft_message *m) {
  bool restored = restore(r, m->snapshot, m->snapshot_movable);
  uint64_t index = restored ? raft_log_last_index(&r->log) : r->log.committed;
  raft_message resp = {.type = RAFT_MSG_APP_RESP, .to = m->from, .index = index};
  raft_send(r, &resp);
}

/* ---- leader side ---- */

void raft_leader_append_resp(raft *r, const raft_message *m) {
  raft_progress *pr = raft_progress_get(r, m->from);
  pr->recent_active = true;
  if (m->reject) {
    uint64_t next_probe = m->reject_hint;
    if (m->reject_hint_term > 0) {
      /* Skip our own entries of terms above the follower's hint term (both-sides skip). */
      uint64_t t = 0;
      next_probe = raft_log_find_conflict_by_term(&r->log, m->reject_hint, m->reject_hint_term, &t);
    }
    if (raft_progress_maybe_decr_to(pr, m->index, next_probe)) {
      if (pr->state == RAFT_PROGRESS_REPLICATE) raft_progress_become_probe(pr);
      raft_send_append(r, m->from);
    }
    return;
  }
  bool was_paused = raft_progress_is_paused(pr);
  /* A probe acked at the current match (e.g. after UNREACHABLE) also resumes replication,
   * unless the follower still needs a snapshot (it refused the one it got, e.g. one that does
   * not name it): the next snapshot then waits for a heartbeat response rather than going out
   * at once, again and again. */
  if (!raft_progress_maybe_update(pr, m->index) &&
      !(pr->match == m->index && pr->state == RAFT_PROGRESS_PROBE &&
        pr->match + 1 >= raft_log_first_index(&r->log)))
    return;
  switch (pr->state) {
    case RAFT_PROGRESS_PROBE:
      raft_progress_become_replicate(pr);
      break;
    case RAFT_PROGRESS_SNAPSHOT:
      if (pr->match + 1 >= raft_log_first_index(&r->log)) {
        /* The follower caught up (the snapshot or entries got through): replicate. */
        raft_progress_become_probe(pr);
        raft_progress_become_replicate(pr);
      }
      break;
    case RAFT_PROGRESS_REPLICATE:
      raft_inflights_free_le(&pr->ins, m->index);
      break;
  }
  if (raft_maybe_commit(r)) {
    raft_bcast_append(r);
  } else if (was_paused) {
    raft_send_append(r, m->from);
  }
  /* Fill the pipeline as far as flow control allows. */
  while (raft_maybe_send_append(r, m->from, false)) {
  }
  if (m->from == r->lead_transferee && pr->match == raft_log_last_index(&r->log)) {
    RAFT_LOG(r, 1, "%llx sent TimeoutNow to %llx after it caught up", (unsigned long long)r->id,
             (unsigned long long)m->from);
    raft_send_timeout_now(r, m->from);
  }
}

void raft_leader_heartbeat_resp(raft *r, const raft_message *m) {
  raft_progress *pr = raft_progress_get(r, m->from);
  pr->recent_active = true;
  pr->probe_sent = false;
  /* A full pipeline frees one slot per heartbeat response, so a lost APP_RESP cannot wedge
   * it. */
  if (pr->state == RAFT_PROGRESS_REPLICATE && raft_inflights_full(&pr->ins))
    raft_inflights_free_first_one(&pr->ins);
  if (pr->match < raft_log_last_index(&r->log)) raft_send_append(r, m->from);
  if (m->context.len == 0) return;
  size_t acks = raft_readonly_recv_ack(&r->ro, m->from, &m->context);
  if (acks < raft_quorum_majority(r->conf.n_voters)) return;
  raft_read_req *done = NULL;
  size_t n = raft_readonly_advance(&r->ro, &m->context, &done);
  for (size_t i = 0; i < n; i++) {
    raft_read_req *q = &done[i];
    if (q->from == RAFT_NONE || q->from == r->id) {
      raft_add_read_state(r, q->index, &q->ctx);
    } else {
      raft_message resp = {.type = RAFT_MSG_READ_INDEX_RESP, .to = q->from, .index = q->index};
      resp.context = q->ctx; /* ownership moves to the message */
      q->ctx = (raft_buf){0};
      raft_send(r, &resp);
    }
    free(q->ctx.base);
  }
  free(done);
}

void raft_send_timeout_now(raft *r, uint64_t to) {
  raft_message m = {.type = RAFT_MSG_TIMEOUT_NOW, .to = to};
  raft_send(r, &m);
}

void raft_abort_leader_transfer(raft *r) { r->lead_transferee = RAFT_NONE; }

void raft_leader_transfer(raft *r, uint64_t to) {
  raft_progress *pr = raft_progress_get(r, to);
  if (!pr) return;
  if (r->lead_transferee != RAFT_NONE) {
    if (r->lead_transferee == to) return; /* already on its way */
    raft_abort_leader_transfer(r);
  }
  if (to == r->id) return;
  /* The transfer must finish within one election timeout. */
  r->election_elapsed = 0;
  r->lead_transferee = to;
  RAFT_LOG(r, 1, "%llx [term %llu] starts to transfer leadership to %llx",
           (unsigned long long)r->id, (unsigned long long)r->term, (unsigned long long)to);
  if (pr->match == raft_log_last_index(&r->log))
    raft_send_timeout_now(r, to);
  else
    raft_send_append(r, to);
}
