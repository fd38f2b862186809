/* sim_net: the simulated network. A sent message is deep-copied (a ready's pointers die at
 * advance) and scheduled for delivery after a random delay (so messages reorder), unless the
 * link drops it; some are duplicated. Partitions (symmetric, asymmetric, bridge, isolation)
 * block links at delivery time. A node that is busy or paused gets its messages later, in order;
 * a crashed node loses them. Snapshots are reported to their sender (ok when delivered, failed
 * when dropped), and drops at a partition sometimes as unreachable, as a transport would. */
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

static void *sim_net_alloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) abort();
  return p;
}

static raft_buf sim_net_buf(raft_buf b) {
  raft_buf c = {NULL, b.len};
  if (b.len) {
    c.base = sim_net_alloc(b.len);
    memcpy(c.base, b.base, b.len);
  }
  return c;
}

raft_message *sim_msg_copy(const raft_message *m) {
  raft_message *c = sim_net_alloc(sizeof *c);
  *c = *m;
  c->context = sim_net_buf(m->context);
  c->entries = NULL;
  if (m->n_entries) {
    c->entries = sim_net_alloc(m->n_entries * sizeof *c->entries);
    for (size_t i = 0; i < m->n_entries; i++) {
      c->entries[i] = m->entries[i];
      c->entries[i].data = sim_net_buf(m->entries[i].data);
    }
  }
  c->snapshot = NULL;
  if (m->snapshot) {
    c->snapshot = sim_net_alloc(sizeof *c->snapshot);
    c->snapshot->meta = m->snapshot->meta;
    c->snapshot->data = sim_net_buf(m->snapshot->data);
  }
  return c;
}

void sim_msg_free(raft_message *m) {
  if (!m) return;
  free(m->context.base);
  for (size_t i = 0; i < m->n_entries; i++) free(m->entries[i].data.base);
  free(m->entries);
  if (m->snapshot) free(m->snapshot->data.base);
  free(m->snapshot);
  free(m);
}

static void sim_net_report_snap(sim_world *w, const raft_message *m, bool ok) {
  if (m->type != RAFT_MSG_SNAP || m->from > SIM_MAX_NODES) return;
  sim_node *from = &w->nodes[m->from];
  sim_schedule(w, sim_rng_range(&w->rng, 1, 20),
               (sim_event){.type = SIM_EV_SNAP_REPORT, .node = m->from, .inc = from->inc,
                           .arg = m->to, .sub = ok});
}

/* The sender learns (with probability p) that a message to m->to may have been lost: its
 * connection broke or its queue was full (raft_transport_loss_epoch). */
static void sim_net_loss_known(sim_world *w, const raft_message *m, double p) {
  if (m->from == 0 || m->from > SIM_MAX_NODES || m->to > SIM_MAX_NODES) return;
  if (sim_rng_chance(&w->rng, p)) w->nodes[m->from].loss_epoch[m->to]++;
}

/* A forward to the leader of the term it was sent in: the requests it appended in this term
 * already are dropped, all of them when the forward was sent too far back to tell (what
 * quorumd's node.c does with prop_dedup). Returns the step's result. */
static int sim_net_step_forward(sim_world *w, sim_node *to, const raft_message *m) {
  prop_dedup_term(&to->dedup, m->log_term);
  raft_entry keep[8];
  uint64_t reqs[8], members[8];
  if (m->n_entries > 8) return raft_step(to->r, m); /* (the sim proposes one at a time) */
  size_t k = 0, nr = 0;
  for (size_t i = 0; i < m->n_entries; i++) {
    sim_cmd c;
    const raft_entry *e = &m->entries[i];
    if (e->type == RAFT_ENTRY_NORMAL && e->data.len && sim_cmd_decode(e->data.base, e->data.len, &c) &&
        c.req && c.req <= w->n_ops) {
      uint64_t member = w->ops[c.req].node; /* (the proposer, as a record names it) */
      if (m->index && !prop_dedup_covers(&to->dedup, member, m->index - 1)) {
        w->too_old++;
        sim_trace(w, "n%llu drops a forward from n%llu: sent at index %llu, too far back",
                  (unsigned long long)to->id, (unsigned long long)m->from,
                  (unsigned long long)(m->index - 1));
        return RAFT_E_DROPPED;
      }
      if (prop_dedup_has(&to->dedup, member, c.req)) {
        w->deduped++;
        sim_trace(w, "n%llu drops request %llu from n%llu: appended in term %llu already",
                  (unsigned long long)to->id, (unsigned long long)c.req,
                  (unsigned long long)m->from, (unsigned long long)m->log_term);
        continue;
      }
      members[nr] = member;
      reqs[nr++] = c.req;
    }
    keep[k++] = *e;
  }
  if (!k) return RAFT_OK;
  raft_message f = *m;
  f.entries = keep;
  f.n_entries = k;
  int rc = raft_step(to->r, &f);
  if (rc == RAFT_OK || rc == RAFT_E_CONF_PENDING) {
    uint64_t last = raft_last_index(to->r);
    for (size_t i = 0; i < nr; i++)
      prop_dedup_add(&to->dedup, members[i], reqs[i], last, (int64_t)w->now * 1000000);
  }
  return rc;
}

void sim_net_send(sim_world *w, const raft_message *m) {
  char d[512];
  w->msgs++;
  if (m->to == 0 || m->to > SIM_MAX_NODES || m->to == m->from) {
    sim_trace(w, "n%llu drops a message to nobody: %s", (unsigned long long)m->from,
              raft_describe_message(m, d, sizeof d));
    return;
  }
  if (m->type == RAFT_MSG_SNAP) w->snaps_sent++;
  double drop = w->final_phase ? 0 : w->link_drop[m->from][m->to];
  if (sim_rng_chance(&w->rng, drop)) {
    w->drops++;
    sim_trace(w, "lost %s", raft_describe_message(m, d, sizeof d));
    sim_net_report_snap(w, m, false);
    sim_net_loss_known(w, m, 0.5);
    return;
  }
  /* Proposals are never duplicated: TCP does not, and a duplicate would be a second write. */
  int copies = 1;
  if (!w->final_phase && m->type != RAFT_MSG_PROP && sim_rng_chance(&w->rng, w->p.dup)) copies = 2;
  for (int i = 0; i < copies; i++) {
    uint64_t delay = sim_rng_range(&w->rng, w->p.delay_lo, w->p.delay_hi);
    if (!w->final_phase && sim_rng_chance(&w->rng, w->p.long_delay)) delay *= 10;
    /* now and then a message from the distant past: seconds late, across term changes */
    if (!w->final_phase && sim_rng_chance(&w->rng, w->p.long_delay / 10)) delay *= 100;
    sim_schedule(w, delay, (sim_event){.type = SIM_EV_DELIVER, .node = m->to,
                                       .msg = sim_msg_copy(m)});
  }
}

void sim_net_deliver(sim_world *w, sim_event *ev) {
  raft_message *m = ev->msg;
  sim_node *to = &w->nodes[m->to];
  char d[512];
  if (w->blocked[m->from][m->to] || !to->up) {
    w->drops++;
    sim_trace(w, "%s %s", to->up ? "partitioned" : "to a down node",
              raft_describe_message(m, d, sizeof d));
    sim_net_report_snap(w, m, false);
    sim_net_loss_known(w, m, 0.5);
    if (to->up && m->from <= SIM_MAX_NODES && sim_rng_chance(&w->rng, 0.3))
      sim_schedule(w, 1, (sim_event){.type = SIM_EV_UNREACHABLE, .node = m->from,
                                     .inc = w->nodes[m->from].inc, .arg = m->to});
    sim_msg_free(m);
    ev->msg = NULL;
    return;
  }
  uint64_t until;
  if (!sim_node_ready_for_input(w, to, &until)) {
    sim_event again = *ev;
    sim_schedule(w, until - w->now, again); /* keeps the message; it arrives later */
    ev->msg = NULL;
    return;
  }
  sim_trace(w, "n%llu <- %s", (unsigned long long)m->to, raft_describe_message(m, d, sizeof d));
  int rc;
  if (m->type == RAFT_MSG_PROP && m->log_term && m->log_term == raft_term(to->r) &&
      raft_lead(to->r) == to->id)
    rc = sim_net_step_forward(w, to, m);
  else
    rc = raft_step(to->r, m);
  /* now and then the connection breaks after it delivered: a loss the sender cannot rule out */
  if (m->type == RAFT_MSG_PROP) sim_net_loss_known(w, m, 0.05);
  if (rc != 0 && rc != RAFT_E_DROPPED)
    sim_trace(w, "n%llu step: %s", (unsigned long long)m->to, raft_strerror(rc));
  if (m->type == RAFT_MSG_SNAP) sim_net_report_snap(w, m, true);
  sim_msg_free(m);
  ev->msg = NULL;
  sim_node_pump(w, to);
}

/* The ids of the nodes that exist and are not removed. */
static size_t sim_net_members(const sim_world *w, uint64_t *ids) {
  size_t n = 0;
  for (uint64_t i = 1; i <= SIM_MAX_NODES; i++)
    if (w->nodes[i].exists && !w->nodes[i].removed) ids[n++] = i;
  return n;
}

static void sim_net_block(sim_world *w, uint64_t a, uint64_t b) { w->blocked[a][b] = true; }

void sim_net_partition(sim_world *w) {
  uint64_t ids[SIM_MAX_NODES];
  size_t n = sim_net_members(w, ids);
  if (n < 2) return;
  for (size_t i = n - 1; i > 0; i--) { /* shuffle */
    size_t j = (size_t)sim_rng_below(&w->rng, i + 1);
    uint64_t t = ids[i];
    ids[i] = ids[j];
    ids[j] = t;
  }
  const char *kind;
  switch (sim_rng_below(&w->rng, 4)) {
  case 0: { /* symmetric split: ids[0..k) | ids[k..n) */
    size_t k = 1 + (size_t)sim_rng_below(&w->rng, n - 1);
    for (size_t i = 0; i < k; i++)
      for (size_t j = k; j < n; j++) sim_net_block(w, ids[i], ids[j]), sim_net_block(w, ids[j], ids[i]);
    kind = "split";
    break;
  }
  case 1: /* asymmetric: some links one way */
    for (size_t i = 0; i < n; i++)
      for (size_t j = 0; j < n; j++)
        if (i != j && sim_rng_chance(&w->rng, 0.3)) sim_net_block(w, ids[i], ids[j]);
    kind = "asymmetric";
    break;
  case 2: { /* bridge: ids[0] talks to both halves, the halves not to each other */
    if (n < 3) return;
    size_t k = 1 + (size_t)sim_rng_range(&w->rng, 1, n - 2);
    for (size_t i = 1; i < k; i++)
      for (size_t j = k; j < n; j++) sim_net_block(w, ids[i], ids[j]), sim_net_block(w, ids[j], ids[i]);
    kind = "bridge";
    break;
  }
  default: { /* isolate one node, often the leader */
    sim_node *l = sim_leader(w);
    uint64_t x = l && sim_rng_chance(&w->rng, 0.6) ? l->id : ids[0];
    for (size_t i = 0; i < n; i++)
      if (ids[i] != x) sim_net_block(w, x, ids[i]), sim_net_block(w, ids[i], x);
    kind = "isolate";
    break;
  }
  }
  w->partitions++;
  char desc[200] = "";
  size_t len = 0;
  for (uint64_t a = 1; a <= SIM_MAX_NODES; a++)
    for (uint64_t b = 1; b <= SIM_MAX_NODES; b++)
      if (w->blocked[a][b] && len + 12 < sizeof desc)
        len += (size_t)snprintf(desc + len, sizeof desc - len, " %llu>%llu",
                                (unsigned long long)a, (unsigned long long)b);
  sim_trace(w, "partition (%s):%s", kind, desc);
}

void sim_net_heal(sim_world *w) {
  memset(w->blocked, 0, sizeof w->blocked);
  sim_trace(w, "heal the network");
}
