/* sim_fault: the faults of one seed, chosen "swarm" style: each seed enables its own mix of
 * fault kinds and picks its own rates (link loss, duplication, delays and reordering, clock
 * skew, snapshot frequency, core options), then injects the enabled kinds at random times:
 * partitions (split, asymmetric, bridge, isolation), crash and restart from the durable state
 * (optionally keeping a torn tail of unsynced writes), pauses, slow disks, membership changes
 * one at a time, and leader transfers. */
#include "tests/sim/sim.h"

#define U(x) ((unsigned long long)(x))

void sim_fault_choose(sim_world *w, bool soak) {
  sim_rng *r = &w->rng;
  sim_params *p = &w->p;
  static const unsigned sizes[] = {3, 5, 7};
  p->n_nodes = sizes[sim_rng_below(r, 3)];
  p->n_clients = (unsigned)sim_rng_range(r, 2, 6);
  p->n_keys = (unsigned)sim_rng_range(r, 2, 6);
  p->run_ms = soak ? 120000 : 20000;
  p->converge_ms = 60000;
  p->op_timeout_ms = sim_rng_range(r, 1000, 4000);
  p->think_ms = sim_rng_range(r, 5, 100);
  static const double drops[] = {0, 0.01, 0.05, 0.15};
  static const double dups[] = {0, 0.01, 0.05};
  static const double longs[] = {0, 0.01, 0.05};
  p->drop = drops[sim_rng_below(r, 4)];
  p->dup = dups[sim_rng_below(r, 3)];
  p->long_delay = longs[sim_rng_below(r, 3)];
  p->delay_lo = sim_rng_range(r, 1, 5);
  p->delay_hi = p->delay_lo + sim_rng_range(r, 0, 40);
  p->partitions = sim_rng_chance(r, 0.5);
  p->crashes = sim_rng_chance(r, 0.5);
  p->pauses = sim_rng_chance(r, 0.4);
  p->slow_disk = sim_rng_chance(r, 0.4);
  p->membership = sim_rng_chance(r, 0.4);
  p->transfers = sim_rng_chance(r, 0.4);
  p->torn = sim_rng_chance(r, 0.5);
  p->fault_every_ms = sim_rng_range(r, 300, 2000);
  p->snap_every = sim_rng_chance(r, 0.8) ? sim_rng_range(r, 3, 60) : 0;
  p->snap_trailing = sim_rng_range(r, 0, 10);
  p->pre_vote = sim_rng_chance(r, 0.75);
  p->check_quorum = sim_rng_chance(r, 0.75);
  static const uint64_t sizes_msg[] = {64, 1024, 1 << 20};
  p->max_size_per_msg = sizes_msg[sim_rng_below(r, 3)];
  p->max_inflight = (unsigned)sim_rng_range(r, 1, 64);
  for (int a = 1; a <= SIM_MAX_NODES; a++)
    for (int b = 1; b <= SIM_MAX_NODES; b++)
      w->link_drop[a][b] = p->drop * (sim_rng_chance(r, 0.2) ? 3 : 1);
  bool on[SIM_FAULT_KINDS] = {p->partitions, p->crashes, p->pauses, p->membership,
                              p->transfers, p->slow_disk};
  for (uint8_t k = 0; k < SIM_FAULT_KINDS; k++)
    if (on[k])
      sim_schedule(w, sim_rng_range(r, 200, 2 * p->fault_every_ms),
                   (sim_event){.type = SIM_EV_FAULT, .sub = k});
  /* (drawn last: the draws above stay those of earlier versions for each seed) */
  static const unsigned windows[] = {0, 0, 50, 300, 1000};
  unsigned wi = (unsigned)sim_rng_below(r, 5);
  p->dedup_window_ms = windows[wi] ? windows[wi] : 2 * p->op_timeout_ms;
  p->ticks_per_hb = sim_rng_chance(r, 0.5) ? 10 : 1;
  p->gone_reports = sim_rng_chance(r, 0.5);
}

/* A report reaches a member a connection break and a refused probe after the event. */
static void sim_fault_report_gone(sim_world *w, const sim_node *to, uint64_t peer) {
  uint64_t d = sim_rng_range(&w->rng, w->p.delay_lo, w->p.delay_hi + 60);
  sim_schedule(w, d, (sim_event){.type = SIM_EV_GONE, .node = to->id, .inc = to->inc, .arg = peer});
}

void sim_fault_gone_after_crash(sim_world *w, const sim_node *n) {
  if (!w->p.gone_reports) return;
  for (uint64_t i = 1; i <= SIM_MAX_NODES; i++)
    if (i != n->id && w->nodes[i].up && !w->blocked[i][n->id])
      sim_fault_report_gone(w, &w->nodes[i], n->id);
}

void sim_fault_gone_after_partition(sim_world *w) {
  if (!w->p.gone_reports) return;
  for (uint64_t i = 1; i <= SIM_MAX_NODES; i++) {
    const sim_node *y = &w->nodes[i];
    if (!y->up || !y->r) continue;
    uint64_t lead = raft_lead(y->r);
    if (lead != RAFT_NONE && lead != i && w->blocked[i][lead]) sim_fault_report_gone(w, y, lead);
  }
}

/* A random running node that is not removed, or NULL. */
static sim_node *sim_fault_pick_up(sim_world *w) {
  uint64_t ids[SIM_MAX_NODES];
  size_t n = 0;
  for (uint64_t i = 1; i <= SIM_MAX_NODES; i++)
    if (w->nodes[i].up && !w->nodes[i].removed) ids[n++] = i;
  return n ? &w->nodes[ids[sim_rng_below(&w->rng, n)]] : NULL;
}

/* The leader, if it can take an input now. */
static sim_node *sim_fault_leader(sim_world *w, raft_status *st) {
  sim_node *l = sim_leader(w);
  uint64_t until;
  if (!l || !sim_node_ready_for_input(w, l, &until)) return NULL;
  raft_get_status(l->r, st);
  return l;
}

static void sim_fault_member(sim_world *w) {
  raft_status st;
  sim_node *l = sim_fault_leader(w, &st);
  if (!l) return;
  bool can_add = st.conf.n_voters < 7 && w->next_id <= SIM_MAX_NODES;
  bool can_remove = st.conf.n_voters > 3;
  if (!can_add && !can_remove) return;
  bool add = can_add && (!can_remove || sim_rng_chance(&w->rng, 0.5));
  raft_conf_change cc = {.type = add ? RAFT_CONF_ADD_NODE : RAFT_CONF_REMOVE_NODE};
  sim_node *x = NULL;
  if (add) {
    cc.node_id = w->next_id++;
    x = &w->nodes[cc.node_id];
    x->id = cc.node_id;
    sim_node_start(w, x, NULL); /* an empty node; the leader brings it up to date */
  } else {
    cc.node_id = st.conf.voters[sim_rng_below(&w->rng, st.conf.n_voters)];
  }
  cc.id = w->conf_changes + 1;
  int rc = raft_propose_conf_change(l->r, &cc);
  sim_trace(w, "n%llu proposes to %s n%llu: %s", U(l->id), add ? "add" : "remove",
            U(cc.node_id), rc ? raft_strerror(rc) : "ok");
  if (rc == 0) w->conf_changes++;
  if (rc != 0 && x) sim_node_stop(w, x); /* never joined; its id is not reused */
  sim_node_pump(w, l);
}

static void sim_fault_transfer(sim_world *w) {
  raft_status st;
  sim_node *l = sim_fault_leader(w, &st);
  if (!l || st.conf.n_voters < 2) return;
  uint64_t to = st.conf.voters[sim_rng_below(&w->rng, st.conf.n_voters)];
  if (to == l->id) return;
  int rc = raft_transfer_leader(l->r, to);
  sim_trace(w, "n%llu transfers leadership to n%llu: %s", U(l->id), U(to),
            rc ? raft_strerror(rc) : "ok");
  w->transfers++;
  sim_node_pump(w, l);
}

void sim_fault_run(sim_world *w, uint8_t kind) {
  if (w->final_phase) return;
  sim_node *n;
  switch (kind) {
  case SIM_FAULT_PARTITION:
    sim_net_heal(w);
    sim_net_partition(w);
    sim_fault_gone_after_partition(w);
    w->partition_gen++;
    sim_schedule(w, sim_rng_range(&w->rng, 300, 4000),
                 (sim_event){.type = SIM_EV_HEAL, .arg = w->partition_gen});
    break;
  case SIM_FAULT_CRASH:
    if ((n = sim_fault_pick_up(w))) {
      w->crashes++;
      sim_node_crash(w, n);
      sim_fault_gone_after_crash(w, n);
      sim_schedule(w, sim_rng_range(&w->rng, 100, 5000),
                   (sim_event){.type = SIM_EV_RESTART, .node = n->id});
    }
    break;
  case SIM_FAULT_PAUSE:
    if ((n = sim_fault_pick_up(w))) {
      w->pauses++;
      uint64_t d = sim_rng_range(&w->rng, 200, 3000);
      if (n->paused_until < w->now + d) n->paused_until = w->now + d;
      sim_trace(w, "n%llu pauses for %llu ms", U(n->id), U(d));
    }
    break;
  case SIM_FAULT_MEMBER:
    sim_fault_member(w);
    break;
  case SIM_FAULT_TRANSFER:
    sim_fault_transfer(w);
    break;
  case SIM_FAULT_DISK:
    if ((n = sim_fault_pick_up(w))) {
      n->disk_ms_max = sim_rng_chance(&w->rng, 0.5) ? sim_rng_range(&w->rng, 1, 100) : 0;
      sim_trace(w, "n%llu's disk now takes up to %llu ms", U(n->id), U(n->disk_ms_max));
    }
    break;
  default:
    return;
  }
  uint64_t e = w->p.fault_every_ms;
  sim_schedule(w, sim_rng_range(&w->rng, e / 2, e + e / 2),
               (sim_event){.type = SIM_EV_FAULT, .sub = kind});
}
