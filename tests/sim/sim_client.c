/* sim_client: the simulated clients. Each issues one op at a time to a random node: put, cas,
 * create, delete and cad as proposals, get through raft_read_index (answered once the node has
 * applied the read index). Invoke and complete times are virtual; an op that times out is
 * unknown and never retried by its client; an op the node refused at once (proposal dropped,
 * node down) never happened and is left out, and so is an unknown write no node ever applied.
 * The node proposes a write again once a later term's entry is applied without it, and within
 * its term once the loss epoch towards the leader rose since it was sent, the leader dropping
 * those it appended already (quorumd's rules, daemon/node_resend.c, daemon/prop_dedup.h). At
 * the end the history goes through the linearizability checker. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

static const char *const sim_keys[SIM_KV_KEYS] = {"k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"};

/* The op as a lin_op: its string pointers are set here, from the op's own buffers, because
 * w->ops moves when it grows. */
static const lin_op *sim_op_view(sim_op *o) {
  o->op.value = o->value[0] ? o->value : NULL;
  o->op.prev_value = o->prev_value[0] ? o->prev_value : NULL;
  return &o->op;
}

static uint64_t sim_client_new_op(sim_world *w) {
  if (w->n_ops + 2 > w->cap_ops) {
    w->cap_ops = w->cap_ops ? 2 * w->cap_ops : 256;
    sim_op *ops = realloc(w->ops, w->cap_ops * sizeof *ops);
    if (!ops) abort();
    w->ops = ops;
  }
  uint64_t id = ++w->n_ops;
  memset(&w->ops[id], 0, sizeof w->ops[id]);
  return id;
}

static void sim_client_idle(sim_world *w, uint64_t client) {
  w->clients[client].busy_op = 0;
  sim_schedule(w, sim_rng_range(&w->rng, 1, w->p.think_ms),
               (sim_event){.type = SIM_EV_CLIENT, .arg = client});
}

/* The op finished with a definite result (or was refused: dropped). */
static void sim_client_finish(sim_world *w, sim_op *o, uint8_t result, bool has_index,
                              uint64_t index, bool dropped) {
  o->pending = false;
  o->dropped = dropped;
  o->op.result = result;
  o->op.has_index = has_index;
  o->op.index = index;
  o->op.complete = (double)w->now;
  char d[256];
  if (!dropped)
    sim_trace(w, "client %llu: %s", (unsigned long long)o->client,
              lin_describe_op(sim_op_view(o), d, sizeof d));
  sim_client *cl = &w->clients[o->client];
  unsigned key = (unsigned)(o->op.key[1] - '0');
  if (!dropped && result == LIN_OK && (o->op.kind == LIN_PUT || o->op.kind == LIN_CAS ||
                                       o->op.kind == LIN_GET)) {
    snprintf(cl->last_value[key], SIM_KV_VAL, "%s", o->value);
    cl->last_index[key] = index;
  }
  sim_client_idle(w, o->client);
}

void sim_client_next(sim_world *w, uint64_t client) {
  if (w->final_phase) return;
  uint64_t ids[SIM_MAX_NODES];
  size_t n = 0;
  for (uint64_t i = 1; i <= SIM_MAX_NODES; i++)
    if (w->nodes[i].exists && !w->nodes[i].removed) ids[n++] = i;
  if (n == 0) return;
  sim_node *node = &w->nodes[ids[sim_rng_below(&w->rng, n)]];
  if (!node->up) { /* connection refused: nothing happened */
    sim_client_idle(w, client);
    return;
  }
  sim_client *cl = &w->clients[client];
  uint64_t id = sim_client_new_op(w);
  sim_op *o = &w->ops[id];
  unsigned key = (unsigned)sim_rng_below(&w->rng, w->p.n_keys);
  o->client = client;
  o->node = node->id;
  o->inc = node->inc;
  o->pending = true;
  o->op.id = id;
  o->op.client = client;
  o->op.key = sim_keys[key];
  o->op.prev_exist = -1;
  o->op.result = LIN_UNKNOWN;
  o->op.invoke = (double)w->now;
  unsigned r = (unsigned)sim_rng_below(&w->rng, 100);
  uint8_t kind = r < 30 ? LIN_GET : r < 60 ? LIN_PUT : r < 80 ? LIN_CAS : r < 87 ? LIN_CAD
                                                          : r < 92 ? LIN_DELETE : LIN_CAS;
  o->op.kind = kind;
  if (kind == LIN_PUT || kind == LIN_CAS) {
    snprintf(o->value, sizeof o->value, "c%llu.%llu", (unsigned long long)client,
             (unsigned long long)++cl->seq);
  }
  if (kind == LIN_CAS && r >= 92) {
    o->op.prev_exist = 0; /* create */
  } else if (kind == LIN_CAS || kind == LIN_CAD) {
    unsigned c = (unsigned)sim_rng_below(&w->rng, 3);
    if (c != 1) {
      snprintf(o->prev_value, sizeof o->prev_value, "%s",
               cl->last_value[key][0] ? cl->last_value[key] : "none");
    }
    if (c != 0) {
      o->op.has_prev_index = true;
      o->op.prev_index = cl->last_index[key];
    }
  }
  cl->busy_op = id;
  sim_schedule(w, 1, (sim_event){.type = SIM_EV_SUBMIT, .arg = id});
  sim_schedule(w, w->p.op_timeout_ms, (sim_event){.type = SIM_EV_TIMEOUT, .arg = id});
}

static uint64_t w_now(const sim_node *n) { return n->world->now; }

/* Proposes write op id on n, tagged with n's term (one-entry batch), with the index below which
 * it cannot be in the log: for a first send in its term, n's commit index (no entry of it can
 * be appended before this forward is read, and one of a later send of it lands above the
 * leader's last index, at or above this commit); sent again in its term (again), n's applied
 * index (it may be appended already, not applied). */
static int sim_client_propose(sim_node *n, sim_op *o, uint64_t id, bool again) {
  sim_cmd c = {.req = id, .kind = o->op.kind, .key = (uint8_t)(o->op.key[1] - '0'),
               .prev_exist = (int8_t)o->op.prev_exist, .has_prev_index = o->op.has_prev_index,
               .prev_index = o->op.prev_index};
  snprintf(c.value, sizeof c.value, "%s", o->value);
  snprintf(c.prev_value, sizeof c.prev_value, "%s", o->prev_value);
  uint8_t buf[SIM_CMD_LEN];
  sim_cmd_encode(&c, buf);
  uint64_t term = raft_term(n->r), lead = raft_lead(n->r);
  raft_buf b = {buf, sizeof buf};
  raft_status st;
  raft_get_status(n->r, &st);
  int rc = raft_propose_many_at(n->r, &b, 1, again ? n->applied : st.commit);
  if (rc == 0) {
    o->sent_term = term;
    o->sent_snaps = n->snaps;
    o->sent_lead = lead;
    o->sent_epoch = lead <= SIM_MAX_NODES ? n->loss_epoch[lead] : 0;
    o->sent_at = w_now(n);
  }
  return rc;
}

void sim_client_submit(sim_world *w, uint64_t id) {
  sim_op *o = &w->ops[id];
  sim_node *n = &w->nodes[o->node];
  if (!o->pending || n->inc != o->inc || !n->up) return; /* lost with the node: times out */
  uint64_t until;
  if (!sim_node_ready_for_input(w, n, &until)) {
    sim_schedule(w, until - w->now, (sim_event){.type = SIM_EV_SUBMIT, .arg = id});
    return;
  }
  int rc;
  if (o->op.kind == LIN_GET) {
    uint8_t ctx[8];
    for (int i = 0; i < 8; i++) ctx[i] = (uint8_t)(id >> (8 * i));
    rc = raft_read_index(n->r, ctx, sizeof ctx);
    if (rc == 0) {
      if (n->n_reads == n->cap_reads) {
        n->cap_reads = n->cap_reads ? 2 * n->cap_reads : 16;
        sim_read *r = realloc(n->reads, n->cap_reads * sizeof *r);
        if (!r) abort();
        n->reads = r;
      }
      n->reads[n->n_reads++] = (sim_read){.op = id};
    }
  } else {
    rc = sim_client_propose(n, o, id, false);
  }
  char d[256];
  sim_trace(w, "client %llu -> n%llu: %s%s", (unsigned long long)o->client,
            (unsigned long long)n->id, lin_describe_op(sim_op_view(o), d, sizeof d),
            rc ? " (refused)" : "");
  if (rc != 0) {
    sim_client_finish(w, o, LIN_UNKNOWN, false, 0, true);
    return;
  }
  sim_node_pump(w, n);
}

void sim_client_timeout(sim_world *w, uint64_t id) {
  sim_op *o = &w->ops[id];
  if (!o->pending) return;
  o->pending = false;
  o->op.result = LIN_UNKNOWN;
  char d[256];
  sim_trace(w, "client %llu times out: %s", (unsigned long long)o->client,
            lin_describe_op(sim_op_view(o), d, sizeof d));
  sim_client_idle(w, o->client);
}

void sim_client_resend(sim_world *w, sim_node *n) {
  for (uint64_t id = 1; id <= w->n_ops; id++) {
    sim_op *o = &w->ops[id];
    if (!o->pending || o->node != n->id || o->inc != n->inc || o->op.kind == LIN_GET ||
        !o->sent_term || o->sent_term >= n->applied_term || o->sent_snaps != n->snaps)
      continue;
    int rc = sim_client_propose(n, o, id, false);
    char d[256];
    sim_trace(w, "n%llu proposes again (sent in term %llu, term %llu applied): %s%s",
              (unsigned long long)n->id, (unsigned long long)o->sent_term,
              (unsigned long long)n->applied_term, lin_describe_op(sim_op_view(o), d, sizeof d),
              rc ? " (refused)" : "");
    if (rc) o->sent_term = 0; /* refused: it times out */
    else w->resent++;
  }
}

/* Each heartbeat: writes sent to this term's leader before the loss epoch towards it rose are sent
 * again, no sooner than 2 heartbeats after the last send, doubling (node_sent_retry). */
void sim_client_retry(sim_world *w, sim_node *n) {
  uint64_t lead = raft_lead(n->r), term = raft_term(n->r);
  if (lead == RAFT_NONE || lead == n->id || lead > SIM_MAX_NODES) return;
  uint64_t epoch = n->loss_epoch[lead];
  for (uint64_t id = 1; id <= w->n_ops; id++) {
    sim_op *o = &w->ops[id];
    if (!o->pending || o->node != n->id || o->inc != n->inc || o->op.kind == LIN_GET ||
        o->sent_term != term || o->sent_lead != lead || o->sent_epoch == epoch ||
        o->sent_snaps != n->snaps)
      continue;
    uint64_t gap = (2 * n->tick_ms * w->p.ticks_per_hb) << (o->tries < 4 ? o->tries : 4);
    if (w->now - o->sent_at < gap) continue;
    o->tries++;
    int rc = sim_client_propose(n, o, id, true);
    char d[256];
    sim_trace(w, "n%llu sends again to n%llu (term %llu, a loss since): %s%s",
              (unsigned long long)n->id, (unsigned long long)lead, (unsigned long long)term,
              lin_describe_op(sim_op_view(o), d, sizeof d), rc ? " (refused)" : "");
    if (rc) o->sent_term = 0; /* refused: it times out */
    else w->retried++;
  }
}

void sim_client_applied(sim_world *w, sim_node *n, uint64_t req, uint8_t result, uint64_t index) {
  if (req == 0 || req > w->n_ops) return;
  sim_op *o = &w->ops[req];
  o->effective = true;
  if (!o->pending || o->node != n->id || o->inc != n->inc) return;
  sim_client_finish(w, o, result, result == LIN_OK, index, false);
}

void sim_client_read_index(sim_world *w, sim_node *n, const raft_read_state *rs) {
  (void)w;
  if (rs->ctx.len != 8) return;
  uint64_t id = 0;
  for (int i = 0; i < 8; i++) id |= (uint64_t)rs->ctx.base[i] << (8 * i);
  for (size_t i = 0; i < n->n_reads; i++)
    if (n->reads[i].op == id && !n->reads[i].have_index) {
      n->reads[i].index = rs->index;
      n->reads[i].have_index = true;
    }
}

void sim_client_answer_reads(sim_world *w, sim_node *n) {
  size_t k = 0;
  for (size_t i = 0; i < n->n_reads; i++) {
    sim_read *r = &n->reads[i];
    sim_op *o = &w->ops[r->op];
    if (!o->pending) continue; /* timed out: forget it */
    if (!r->have_index || n->applied < r->index) {
      n->reads[k++] = *r;
      continue;
    }
    const sim_kv_slot *s = &n->kv.slots[o->op.key[1] - '0'];
    if (s->exists) {
      snprintf(o->value, sizeof o->value, "%s", s->value);
      sim_client_finish(w, o, LIN_OK, true, s->modified, false);
    } else {
      sim_client_finish(w, o, LIN_NOT_FOUND, false, 0, false);
    }
  }
  n->n_reads = k;
}

bool sim_client_check_history(sim_world *w, const char *dump_path) {
  lin_history *h = lin_history_new();
  FILE *dump = dump_path ? fopen(dump_path, "w") : NULL;
  char err[256], line[512];
  bool ok = true;
  for (uint64_t id = 1; id <= w->n_ops && h; id++) {
    sim_op *o = &w->ops[id];
    if (o->dropped) continue;
    if (o->pending) o->op.result = LIN_UNKNOWN;
    /* A write of unknown outcome that no node ever applied never took effect: after
     * convergence every entry left in the leader's log is applied, so the simulator knows.
     * Leaving it out keeps the search small; a write that did take effect stays unknown. */
    if (o->op.result == LIN_UNKNOWN && o->op.kind != LIN_GET && !o->effective) continue;
    if (o->op.kind == LIN_GET && o->op.result != LIN_OK) o->value[0] = '\0';
    if (lin_history_add(h, sim_op_view(o), err, sizeof err) != 0) {
      sim_fail(w, "op %" PRIu64 " is malformed: %s", id, err);
      ok = false;
      break;
    }
    if (dump && lin_op_to_json(sim_op_view(o), line, sizeof line) > 0) fprintf(dump, "%s\n", line);
  }
  if (dump) fclose(dump);
  if (!h) abort();
  lin_report rep;
  /* A budget per key: many writes of unknown outcome on one key make the search exponential;
   * such a seed counts as unchecked (lin_gave_up), not as failed. */
  lin_options opt = {.max_steps = 300000};
  if (ok && lin_check(h, &opt, &rep) == 0) {
    w->lin_ops = rep.n_ops;
    if (rep.verdict == LIN_GAVE_UP) {
      w->lin_gave_up = true;
      sim_trace(w, "the linearizability search gave up on key %s", rep.key);
    } else if (rep.verdict != LIN_LINEARIZABLE) {
      printf("history not linearizable on key %s:\n%s", rep.key, rep.explanation);
      sim_fail(w, "the client history is not linearizable (key %s)", rep.key);
      ok = false;
    }
    lin_report_free(&rep);
  }
  lin_history_free(h);
  return ok;
}
