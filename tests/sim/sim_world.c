/* sim_world: one seed's run. Sets up the cluster and its faults, then pops events in virtual-time
 * order, dispatches each to the node, network, client or fault code, and checks the invariants
 * after every event. After run_ms the final phase heals everything (network, pauses, crashed
 * nodes, loss) and runs until the cluster converges (a leader, every voter applied the same
 * index with the same state) or converge_ms passes; then the client history is checked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

#define U(x) ((unsigned long long)(x))

void sim_schedule(sim_world *w, uint64_t delay, sim_event ev) {
  ev.time = w->now + delay;
  sim_queue_push(&w->q, ev);
}

void sim_world_init(sim_world *w, uint64_t seed, bool soak) {
  memset(w, 0, sizeof *w);
  w->seed = seed;
  w->rng.s = seed * 0x9e3779b97f4a7c15ULL + 0x5851f42d4c957f2dULL;
  sim_fault_choose(w, soak);
  w->clients = calloc(w->p.n_clients, sizeof *w->clients);
  if (!w->clients) abort();
}

static void sim_world_start(sim_world *w) {
  raft_conf_state conf = {.n_voters = w->p.n_nodes};
  for (unsigned i = 0; i < w->p.n_nodes; i++) conf.voters[i] = i + 1;
  /* the bootstrap snapshot at index 1 (sim_disk_init) is committed from the start */
  sim_vec_set(&w->committed, 1, 0x626f6f7473747261ULL);
  w->committed_max = 1;
  for (unsigned i = 1; i <= w->p.n_nodes; i++) {
    w->nodes[i].id = i;
    sim_node_start(w, &w->nodes[i], &conf);
  }
  w->next_id = w->p.n_nodes + 1;
  for (uint64_t c = 0; c < w->p.n_clients; c++)
    sim_schedule(w, sim_rng_range(&w->rng, 100, 1500), (sim_event){.type = SIM_EV_CLIENT, .arg = c});
  const sim_params *p = &w->p;
  sim_trace(w, "seed %llu: %u nodes, %u clients, %u keys; drop %.2f dup %.2f delay %llu..%llu "
               "long %.2f; partitions %d crashes %d pauses %d slow disk %d membership %d "
               "transfers %d torn %d every %llu ms; snapshots every %llu keep %llu; pre-vote %d "
               "check-quorum %d; msg size %llu inflight %u; leader keeps requests %llu ms; %u "
               "ticks a heartbeat",
            U(w->seed), p->n_nodes, p->n_clients, p->n_keys, p->drop, p->dup, U(p->delay_lo),
            U(p->delay_hi), p->long_delay, p->partitions, p->crashes, p->pauses, p->slow_disk,
            p->membership, p->transfers, p->torn, U(p->fault_every_ms), U(p->snap_every),
            U(p->snap_trailing), p->pre_vote, p->check_quorum, U(p->max_size_per_msg),
            p->max_inflight, U(p->dedup_window_ms), p->ticks_per_hb);
}

static void sim_world_final_phase(sim_world *w) {
  w->final_phase = true;
  sim_trace(w, "final phase: heal, resume, restart; no more faults or client ops");
  sim_net_heal(w);
  for (uint64_t i = 1; i <= SIM_MAX_NODES; i++) {
    sim_node *n = &w->nodes[i];
    if (!n->exists || n->removed) continue;
    if (n->paused_until > w->now) n->paused_until = w->now;
    if (n->disk_ms_max > 20) n->disk_ms_max = 20;
    if (!n->up) sim_node_restart(w, n);
  }
  sim_schedule(w, 500, (sim_event){.type = SIM_EV_LIVENESS});
}

/* Runs ev against node n's core when n can take input; otherwise puts it back for later. */
static bool sim_world_node_input(sim_world *w, sim_event *ev, sim_node **out) {
  sim_node *n = &w->nodes[ev->node];
  *out = n;
  if (!n->up || n->inc != ev->inc) return false;
  uint64_t until;
  if (!sim_node_ready_for_input(w, n, &until)) {
    sim_schedule(w, until - w->now, *ev);
    return false;
  }
  return true;
}

static void sim_world_dispatch(sim_world *w, sim_event *ev) {
  sim_node *n;
  char why[256];
  switch (ev->type) {
  case SIM_EV_TICK:
    if (!sim_world_node_input(w, ev, &n)) break;
    raft_tick(n->r);
    if (++n->ticks % w->p.ticks_per_hb == 0) sim_client_retry(w, n);
    sim_node_pump(w, n);
    sim_schedule(w, n->tick_ms, (sim_event){.type = SIM_EV_TICK, .node = n->id, .inc = n->inc});
    break;
  case SIM_EV_DELIVER:
    sim_net_deliver(w, ev);
    break;
  case SIM_EV_PERSIST:
    n = &w->nodes[ev->node];
    if (!n->up || n->inc != ev->inc || !n->busy) break;
    if (n->paused_until > w->now) {
      n->busy_until = n->paused_until;
      sim_schedule(w, n->paused_until - w->now, *ev);
      break;
    }
    sim_node_persist_done(w, n);
    sim_node_pump(w, n);
    break;
  case SIM_EV_SNAP_REPORT:
    if (!sim_world_node_input(w, ev, &n)) break;
    raft_report_snapshot(n->r, ev->arg, ev->sub);
    sim_node_pump(w, n);
    break;
  case SIM_EV_UNREACHABLE:
    if (!sim_world_node_input(w, ev, &n)) break;
    raft_report_unreachable(n->r, ev->arg);
    sim_node_pump(w, n);
    break;
  case SIM_EV_GONE:
    if (!sim_world_node_input(w, ev, &n)) break;
    if (raft_report_peer_gone(n->r, ev->arg)) {
      w->gone_forgotten++;
      sim_trace(w, "n%llu forgets its leader n%llu: reported gone", U(n->id), U(ev->arg));
    }
    sim_node_pump(w, n);
    break;
  case SIM_EV_CLIENT:
    sim_client_next(w, ev->arg);
    break;
  case SIM_EV_SUBMIT:
    sim_client_submit(w, ev->arg);
    break;
  case SIM_EV_TIMEOUT:
    sim_client_timeout(w, ev->arg);
    break;
  case SIM_EV_FAULT:
    sim_fault_run(w, ev->sub);
    break;
  case SIM_EV_RESTART:
    sim_node_restart(w, &w->nodes[ev->node]);
    break;
  case SIM_EV_STOP:
    sim_node_stop(w, &w->nodes[ev->node]);
    break;
  case SIM_EV_HEAL:
    if (ev->arg == w->partition_gen) sim_net_heal(w);
    break;
  case SIM_EV_LIVENESS:
    if (sim_check_converged(w, why, sizeof why)) {
      w->converged = true;
      sim_trace(w, "converged");
    } else if (w->now > w->p.run_ms + w->p.converge_ms) {
      sim_fail(w, "liveness: no convergence %llu ms after healing: %s", U(w->p.converge_ms), why);
    } else {
      sim_schedule(w, 500, (sim_event){.type = SIM_EV_LIVENESS});
    }
    break;
  default:
    break;
  }
}

bool sim_world_run(sim_world *w) {
  sim_world_start(w);
  sim_event ev;
  while (!w->failed && !w->converged) {
    if (!w->final_phase && w->q.n && w->q.heap[0].time >= w->p.run_ms) {
      w->now = w->p.run_ms;
      sim_world_final_phase(w);
      continue;
    }
    if (!sim_queue_pop(&w->q, &ev)) break;
    w->now = ev.time;
    w->events++;
    sim_world_dispatch(w, &ev);
    sim_msg_free(ev.msg);
    if (!w->failed) sim_check_all(w);
  }
  if (!w->failed && !w->converged) sim_fail(w, "the simulation ran out of events");
  if (!w->failed) sim_client_check_history(w, w->history_path);
  return !w->failed;
}

void sim_world_free(sim_world *w) {
  for (uint64_t i = 1; i <= SIM_MAX_NODES; i++) {
    sim_node *n = &w->nodes[i];
    if (n->r) raft_free(n->r);
    prop_dedup_free(&n->dedup);
    if (n->exists) sim_disk_free(&n->disk);
    free(n->hash);
    free(n->reads);
  }
  sim_queue_free(&w->q);
  free(w->clients);
  free(w->ops);
  free(w->trace);
  free(w->term_leader.v);
  free(w->committed.v);
  free(w->commit_term.v);
  free(w->state_at.v);
  sim_map_free(&w->entry_at);
  sim_map_free(&w->votes);
}
