/* sim_node: one simulated node, a real raft core driven exactly as raft.h's contract says:
 * for each ready, persist (after a simulated disk delay, during which the node takes no input),
 * then send, then apply (state machine, conf changes, reads), then advance. Also the node's
 * lifecycle: start, crash (the volatile state is lost, and the disk keeps only what was
 * synced, maybe plus a torn prefix of the rest), restart from the durable state, and stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

static void sim_core_log(void *arg, int level, const char *text) {
  sim_node *n = arg;
  sim_world *w = n->world;
  sim_trace(w, "n%llu core: %s", (unsigned long long)n->id, text);
  if (level >= 3) {
    /* A RAFT_PANIC: the core aborts when this returns. Say which seed, and show the trace. */
    fprintf(stderr, "sim: seed %llu: node %llu: %s\n", (unsigned long long)w->seed,
            (unsigned long long)n->id, text);
    fprintf(stderr, "sim: replay with SIM_SEED=%llu (add SIM_TRACE=1 for the whole trace)\n",
            (unsigned long long)w->seed);
    fflush(stdout);
    sim_trace_print(w, 60);
    fflush(stdout);
  }
}

/* Rebuilds the chained hashes of the node's log from its disk after a (re)start. */
static void sim_node_rehash(sim_world *w, sim_node *n) {
  uint64_t off = n->disk.vol.offset;
  if (off > w->committed_max) {
    sim_fail(w, "n%llu: its log starts after index %llu, beyond anything committed (%llu)",
             (unsigned long long)n->id, (unsigned long long)off,
             (unsigned long long)w->committed_max);
    return;
  }
  n->hash_last = 0;
  sim_check_persisted(w, n, off, true);
  if (n->disk.vol.n) sim_check_persisted(w, n, off + 1, false);
}

static void sim_node_boot(sim_world *w, sim_node *n) {
  const sim_log *l = &n->disk.vol;
  if (!sim_kv_decode(&n->kv, l->snap.data.base, l->snap.data.len)) {
    sim_fail(w, "n%llu: unreadable snapshot", (unsigned long long)n->id);
    return;
  }
  n->applied = l->snap.meta.index;
  n->conf = l->conf;
  sim_node_rehash(w, n);
  raft_config cfg = {
      .id = n->id,
      .election_tick = 10 * w->p.ticks_per_hb,
      .heartbeat_tick = w->p.ticks_per_hb,
      .storage = &n->disk.storage,
      .applied = n->applied,
      .max_size_per_msg = w->p.max_size_per_msg,
      .max_inflight_msgs = w->p.max_inflight,
      .max_uncommitted_size = 0,
      .pre_vote = w->p.pre_vote,
      .check_quorum = w->p.check_quorum,
      .seed = sim_rng_next(&w->rng),
      .log = sim_core_log,
      .log_arg = n,
  };
  int rc = raft_new(&cfg, &n->r);
  if (rc != 0) {
    sim_fail(w, "n%llu: raft_new: %s", (unsigned long long)n->id, raft_strerror(rc));
    return;
  }
  n->up = true;
  n->busy = false;
  n->paused_until = 0;
  /* in memory only: a restarted node starts with none (it leads no term it led before) */
  prop_dedup_free(&n->dedup);
  prop_dedup_init(&n->dedup, (int64_t)w->p.dedup_window_ms * 1000000);
  n->n_reads = 0;
  n->lead_term = 0;
  raft_status st;
  raft_get_status(n->r, &st);
  n->last_commit = st.commit;
  n->last_term = st.term;
  if (st.term < n->durable_term)
    sim_fail(w, "n%llu restarted at term %llu, below the term %llu it had made durable",
             (unsigned long long)n->id, (unsigned long long)st.term,
             (unsigned long long)n->durable_term);
  sim_trace(w, "n%llu starts: term %llu commit %llu applied %llu last %llu voters %zu",
            (unsigned long long)n->id, (unsigned long long)st.term,
            (unsigned long long)st.commit, (unsigned long long)n->applied,
            (unsigned long long)st.last_index, st.conf.n_voters);
  sim_schedule(w, sim_rng_range(&w->rng, 1, n->tick_ms),
               (sim_event){.type = SIM_EV_TICK, .node = n->id, .inc = n->inc});
  sim_node_pump(w, n);
}

void sim_node_start(sim_world *w, sim_node *n, const raft_conf_state *bootstrap) {
  n->world = w;
  n->exists = true;
  /* clock skew: a heartbeat of 90..110 ms */
  n->tick_ms = (100 - 10 + sim_rng_below(&w->rng, 21)) / w->p.ticks_per_hb;
  n->disk_ms_max = w->p.slow_disk && sim_rng_chance(&w->rng, 0.5) ? sim_rng_range(&w->rng, 1, 60)
                                                                   : 0;
  sim_disk_init(&n->disk, bootstrap);
  sim_node_boot(w, n);
}

void sim_node_crash(sim_world *w, sim_node *n) {
  if (!n->up) return;
  size_t keep = w->p.torn && n->disk.n_journal ? (size_t)sim_rng_below(&w->rng, n->disk.n_journal + 1)
                                               : 0;
  sim_trace(w, "n%llu crashes (%s; keeps %zu of %zu unsynced writes)", (unsigned long long)n->id,
            n->busy ? "a ready was being persisted" : "idle", keep, n->disk.n_journal);
  raft_free(n->r);
  n->r = NULL;
  n->up = false;
  n->busy = false;
  n->inc++;
  n->n_reads = 0;
  sim_disk_crash(&n->disk, keep);
  sim_check_durable(w, n);
}

void sim_node_restart(sim_world *w, sim_node *n) {
  if (n->up || n->removed || !n->exists) return;
  w->restarts++;
  sim_node_boot(w, n);
}

void sim_node_stop(sim_world *w, sim_node *n) {
  if (n->removed) return;
  sim_trace(w, "n%llu stops: removed from the cluster", (unsigned long long)n->id);
  n->removed = true;
  sim_node_crash(w, n);
}

bool sim_node_ready_for_input(const sim_world *w, const sim_node *n, uint64_t *until) {
  *until = 0;
  if (!n->up) return false;
  if (n->paused_until > w->now) {
    *until = n->paused_until;
    return false;
  }
  if (n->busy) {
    *until = n->busy_until > w->now ? n->busy_until : w->now + 1;
    return false;
  }
  return true;
}

void sim_node_pump(sim_world *w, sim_node *n) {
  while (n->up && !n->busy && !w->failed && raft_has_ready(n->r)) {
    raft_get_ready(n->r, &n->rd);
    n->busy = true;
    bool writes = n->rd.hs_changed || n->rd.n_entries || n->rd.has_snapshot;
    uint64_t delay = writes && n->disk_ms_max ? sim_rng_below(&w->rng, n->disk_ms_max + 1) : 0;
    if (delay == 0) {
      sim_node_persist_done(w, n);
      continue;
    }
    n->busy_until = w->now + delay;
    sim_schedule(w, delay, (sim_event){.type = SIM_EV_PERSIST, .node = n->id, .inc = n->inc});
  }
}

/* The application's snapshot at the applied index, and compaction of the log behind it. */
static void sim_node_maybe_snapshot(sim_world *w, sim_node *n) {
  const sim_log *l = &n->disk.vol;
  bool due = w->p.snap_every && n->applied >= l->snap.meta.index + w->p.snap_every;
  if (!due && !(n->snap_now && n->applied > l->snap.meta.index)) return;
  n->snap_now = false;
  raft_snapshot_meta meta = {.index = n->applied, .term = sim_disk_term(&n->disk, n->applied),
                             .conf = n->conf};
  if (meta.term == 0) {
    sim_fail(w, "n%llu: applied index %llu is not in its log", (unsigned long long)n->id,
             (unsigned long long)n->applied);
    return;
  }
  uint8_t data[SIM_KV_SNAP_LEN];
  sim_kv_encode(&n->kv, data);
  uint64_t compact = n->applied > w->p.snap_trailing ? n->applied - w->p.snap_trailing : 0;
  const char *err = sim_disk_save_snapshot(&n->disk, &meta, data, sizeof data, compact);
  if (err) sim_fail(w, "n%llu: snapshot: %s", (unsigned long long)n->id, err);
  w->snaps_made++;
  sim_trace(w, "n%llu snapshot at %llu (term %llu), log compacted to %llu",
            (unsigned long long)n->id, (unsigned long long)meta.index,
            (unsigned long long)meta.term, (unsigned long long)n->disk.vol.offset);
  sim_check_durable(w, n);
}

static void sim_node_apply(sim_world *w, sim_node *n, const raft_entry *e) {
  if (e->index != n->applied + 1) {
    sim_fail(w, "n%llu: applies index %llu after %llu", (unsigned long long)n->id,
             (unsigned long long)e->index, (unsigned long long)n->applied);
    return;
  }
  if (e->type == RAFT_ENTRY_NORMAL && e->data.len) {
    sim_cmd c;
    if (!sim_cmd_decode(e->data.base, e->data.len, &c)) {
      sim_fail(w, "n%llu: undecodable entry at %llu", (unsigned long long)n->id,
               (unsigned long long)e->index);
      return;
    }
    if (c.req && c.req <= w->n_ops) {
      sim_op *o = &w->ops[c.req];
      if (o->applied_index && o->applied_index != e->index) {
        sim_fail(w, "request %llu is in the log twice: at %llu and %llu",
                 (unsigned long long)c.req, (unsigned long long)o->applied_index,
                 (unsigned long long)e->index);
        return;
      }
      o->applied_index = e->index;
    }
    uint8_t result;
    uint64_t index;
    sim_kv_apply(&n->kv, &c, &result, &index);
    sim_client_applied(w, n, c.req, result, index);
  } else if (e->type == RAFT_ENTRY_CONF_CHANGE) {
    raft_conf_change cc;
    int rc = raft_conf_change_decode(e->data.base, e->data.len, &cc);
    if (rc == 0) rc = raft_apply_conf_change(n->r, &cc, &n->conf);
    if (rc != 0) {
      sim_fail(w, "n%llu: conf change at %llu: %s", (unsigned long long)n->id,
               (unsigned long long)e->index, raft_strerror(rc));
      return;
    }
    sim_trace(w, "n%llu applies conf change %s n%llu at %llu: %zu voters",
              (unsigned long long)n->id, cc.type == RAFT_CONF_ADD_NODE ? "add" : "remove",
              (unsigned long long)cc.node_id, (unsigned long long)e->index, n->conf.n_voters);
    /* Driver rule (FINDINGS.md, finding 2): the core refuses a snapshot whose configuration
     * does not hold the receiver, so a snapshot sent to a new node must postdate its addition.
     * Take one right after applying an add. */
    if (cc.type == RAFT_CONF_ADD_NODE) n->snap_now = true;
    if (cc.type == RAFT_CONF_REMOVE_NODE && cc.node_id <= SIM_MAX_NODES &&
        !w->nodes[cc.node_id].removed)
      sim_schedule(w, 0, (sim_event){.type = SIM_EV_STOP, .node = cc.node_id});
  }
  n->applied = e->index;
  if (e->term > n->applied_term) {
    n->applied_term = e->term;
    n->resend = true;
  }
  sim_check_applied(w, n, e->index, false);
}

void sim_node_persist_done(sim_world *w, sim_node *n) {
  raft_ready *rd = &n->rd;
  raft_hard_state before = n->disk.vol.hs;
  if (!rd->must_sync && (rd->n_entries || rd->has_snapshot ||
                         (rd->hs_changed && (rd->hs.term != before.term ||
                                             rd->hs.vote != before.vote))))
    sim_fail(w, "n%llu: a ready changes term, vote or entries but must_sync is false",
             (unsigned long long)n->id);
  const char *err = sim_disk_write_ready(&n->disk, rd, rd->must_sync || rd->has_snapshot);
  if (err) sim_fail(w, "n%llu: disk write: %s", (unsigned long long)n->id, err);
  if (rd->must_sync || rd->has_snapshot) sim_check_durable(w, n);
  if (rd->has_snapshot) sim_check_persisted(w, n, rd->snapshot.meta.index, true);
  if (rd->n_entries) sim_check_persisted(w, n, rd->entries[0].index, false);
  sim_check_committed(w, n);
  char d[512];
  for (size_t i = 0; i < rd->n_msgs; i++) {
    sim_trace(w, "n%llu -> %s", (unsigned long long)n->id,
              raft_describe_message(&rd->msgs[i], d, sizeof d));
    sim_check_sent(w, &rd->msgs[i]);
    sim_net_send(w, &rd->msgs[i]);
  }
  if (rd->has_snapshot) {
    const raft_snapshot *s = &rd->snapshot;
    if (!sim_kv_decode(&n->kv, s->data.base, s->data.len))
      sim_fail(w, "n%llu: unreadable snapshot at %llu", (unsigned long long)n->id,
               (unsigned long long)s->meta.index);
    n->applied = s->meta.index;
    n->conf = s->meta.conf;
    n->snaps++;
    sim_trace(w, "n%llu restores the snapshot at %llu", (unsigned long long)n->id,
              (unsigned long long)s->meta.index);
    sim_check_applied(w, n, s->meta.index, true);
  }
  for (size_t i = 0; i < rd->n_committed && !w->failed; i++) sim_node_apply(w, n, &rd->committed[i]);
  for (size_t i = 0; i < rd->n_reads; i++) sim_client_read_index(w, n, &rd->reads[i]);
  raft_advance(n->r, rd);
  n->busy = false;
  if (n->resend && !w->failed) {
    n->resend = false;
    sim_client_resend(w, n);
  }
  sim_client_answer_reads(w, n);
  sim_node_maybe_snapshot(w, n);
}

sim_node *sim_leader(sim_world *w) {
  sim_node *best = NULL;
  uint64_t best_term = 0;
  for (uint64_t i = 1; i <= SIM_MAX_NODES; i++) {
    sim_node *n = &w->nodes[i];
    if (!n->up) continue;
    raft_status st;
    raft_get_status(n->r, &st);
    if (st.role == RAFT_LEADER && st.term >= best_term) {
      best = n;
      best_term = st.term;
    }
  }
  return best;
}
