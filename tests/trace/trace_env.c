/* trace_env.c: tenv, the in-process cluster a trace script drives. Each node is a real core on
 * a mem_storage (the durable part) plus a toy state machine (the applied entries' data joined by
 * ','). Ready batches are handled in the driver's order (persist → send → apply → advance) and
 * printed one item per line; sent messages wait in one network queue until delivered, and a
 * delivery across a cut link or to a crashed node drops them. Like the transport, the network
 * reports each snapshot delivered (ok) or dropped (failed) to its sender.
 *
 * Reads two private fields of the core (raft_i.h) for tick-election only: the node's
 * randomized election timeout and elapsed ticks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft_i.h"
#include "tests/trace/trace.h"

#define ULL(x) ((unsigned long long)(x))
#define DESC_LEN 1024

static void tenv_log(void *arg, int level, const char *text) {
  static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  tenv_node *n = arg;
  if (level < n->env->log_level) return;
  tb_printf(n->env->out, "  %s %s\n", level >= 0 && level <= 3 ? names[level] : "LOG", text);
}

void tenv_init(tenv *e, tb *out) {
  *e = (tenv){0};
  e->out = out;
  e->log_level = 1;
}

static void node_reset_sm(tenv_node *n, const void *data, size_t len, uint64_t index) {
  tb_clear(&n->sm);
  tb_append(&n->sm, data, len);
  n->applied = index;
  n->n_marks = 0;
}

static void node_mark(tenv_node *n) {
  if (n->n_marks == n->cap_marks) {
    n->cap_marks = n->cap_marks ? n->cap_marks * 2 : 64;
    n->marks = realloc(n->marks, n->cap_marks * sizeof *n->marks);
    if (!n->marks) abort();
  }
  n->marks[n->n_marks++] = (tenv_mark){n->applied, n->sm.len};
}

void tenv_free(tenv *e) {
  for (size_t i = 1; i <= e->n; i++) {
    tenv_node *n = e->nodes[i];
    if (!n) continue;
    raft_free(n->r);
    mem_storage_free(n->ms);
    tb_free(&n->sm);
    free(n->marks);
    free(n);
  }
  for (size_t i = 0; i < e->q.n; i++) raft_message_free(&e->q.m[i]);
  free(e->q.m);
  *e = (tenv){0};
}

tenv_node *tenv_live(tenv *e, uint64_t id) {
  if (id == 0 || id > e->n || !e->nodes[id] || !e->nodes[id]->r) return NULL;
  return e->nodes[id];
}

int tenv_add_node(tenv *e, const raft_config *cfg, const uint64_t *voters, size_t nv,
                  uint64_t snap_index) {
  if (e->n == TENV_MAX_NODES || nv > RAFT_MAX_VOTERS) return RAFT_E_INVAL;
  tenv_node *n = calloc(1, sizeof *n);
  if (!n) abort();
  n->id = e->n + 1;
  n->env = e;
  tb_init(&n->sm);
  n->ms = mem_storage_new();
  if (!n->ms) abort();
  raft_conf_state cs = {0};
  for (size_t i = 0; i < nv; i++) cs.voters[cs.n_voters++] = voters[i];
  int rc;
  if (snap_index > 0) {
    raft_snapshot snap = {.meta = {.index = snap_index, .term = 1, .conf = cs}};
    rc = mem_storage_apply_snapshot(n->ms, &snap);
  } else {
    rc = mem_storage_set_conf_state(n->ms, &cs);
  }
  n->cfg = *cfg;
  n->cfg.id = n->id;
  n->cfg.storage = mem_storage_iface(n->ms);
  n->cfg.log = tenv_log;
  n->cfg.log_arg = n;
  if (rc == RAFT_OK) rc = raft_new(&n->cfg, &n->r);
  if (rc != RAFT_OK) {
    mem_storage_free(n->ms);
    tb_free(&n->sm);
    free(n);
    return rc;
  }
  node_reset_sm(n, "", 0, snap_index);
  node_mark(n);
  e->nodes[++e->n] = n;
  return RAFT_OK;
}

/* ---- ready ---- */

static void apply_entry(tenv *e, tenv_node *n, const raft_entry *ent) {
  char d[DESC_LEN];
  tb_printf(e->out, "  apply: %s\n", raft_describe_entry(ent, d, sizeof d));
  if (ent->index != n->applied + 1)
    tb_printf(e->out, "  error: applied %llu, then %llu\n", ULL(n->applied), ULL(ent->index));
  n->applied = ent->index;
  if (ent->type == RAFT_ENTRY_CONF_CHANGE) {
    raft_conf_change cc;
    raft_conf_state cs;
    int rc = raft_conf_change_decode(ent->data.base, ent->data.len, &cc);
    if (rc == RAFT_OK) rc = raft_apply_conf_change(n->r, &cc, &cs);
    if (rc == RAFT_OK) rc = mem_storage_set_conf_state(n->ms, &cs);
    if (rc == RAFT_OK)
      tb_printf(e->out, "  conf: %s\n", raft_describe_conf_state(&cs, d, sizeof d));
    else
      tb_printf(e->out, "  error: conf change: %s\n", raft_strerror(rc));
  } else if (ent->data.len > 0) {
    if (n->sm.len > 0) tb_append(&n->sm, ",", 1);
    tb_append(&n->sm, (const char *)ent->data.base, ent->data.len);
  }
  node_mark(n);
}

static void queue_push(tenv *e, const raft_message *m) {
  if (e->q.n == e->q.cap) {
    e->q.cap = e->q.cap ? e->q.cap * 2 : 64;
    e->q.m = realloc(e->q.m, e->q.cap * sizeof *e->q.m);
    if (!e->q.m) abort();
  }
  if (raft_message_copy(&e->q.m[e->q.n], m) != RAFT_OK) abort();
  e->q.n++;
}

static void check(tenv *e, int rc, const char *what) {
  if (rc != RAFT_OK) tb_printf(e->out, "  error: %s: %s\n", what, raft_strerror(rc));
}

bool tenv_process_ready(tenv *e, uint64_t id) {
  tenv_node *n = tenv_live(e, id);
  if (!n || !raft_has_ready(n->r)) return false;
  char d[DESC_LEN];
  raft_ready rd;
  raft_get_ready(n->r, &rd);
  tb_printf(e->out, "> %llx handling ready%s\n", ULL(id), rd.must_sync ? " (must sync)" : "");
  if (rd.soft_changed)
    tb_printf(e->out, "  state: %s Lead:%llx\n", raft_role_name(rd.soft.role), ULL(rd.soft.lead));
  if (rd.hs_changed)
    tb_printf(e->out, "  hard: %s\n", raft_describe_hard_state(&rd.hs, d, sizeof d));
  /* 1. persist */
  if (rd.has_snapshot) {
    tb_printf(e->out, "  snapshot: %s\n", raft_describe_snapshot_meta(&rd.snapshot.meta, d, sizeof d));
    check(e, mem_storage_apply_snapshot(n->ms, &rd.snapshot), "persist snapshot");
  }
  for (size_t i = 0; i < rd.n_entries; i++)
    tb_printf(e->out, "  persist: %s\n", raft_describe_entry(&rd.entries[i], d, sizeof d));
  if (rd.n_entries) check(e, mem_storage_append(n->ms, rd.entries, rd.n_entries), "persist");
  if (rd.hs_changed) check(e, mem_storage_set_hard_state(n->ms, &rd.hs), "persist hard state");
  /* 2. send */
  for (size_t i = 0; i < rd.n_msgs; i++) {
    tb_printf(e->out, "  send: %s\n", raft_describe_message(&rd.msgs[i], d, sizeof d));
    queue_push(e, &rd.msgs[i]);
  }
  /* 3. apply */
  if (rd.has_snapshot) {
    node_reset_sm(n, rd.snapshot.data.base, rd.snapshot.data.len, rd.snapshot.meta.index);
    node_mark(n);
  }
  for (size_t i = 0; i < rd.n_committed; i++) apply_entry(e, n, &rd.committed[i]);
  for (size_t i = 0; i < rd.n_reads; i++) {
    const raft_read_state *rs = &rd.reads[i];
    tb_printf(e->out, "  read: Index:%llu Context:\"%.*s\"%s\n", ULL(rs->index), (int)rs->ctx.len,
              (const char *)rs->ctx.base, n->applied >= rs->index ? "" : " (wait for apply)");
  }
  /* 4. advance */
  raft_advance(n->r, &rd);
  return true;
}

/* ---- network ---- */

static void report_snapshot(tenv *e, const raft_message *m, bool ok) {
  tenv_node *from = tenv_live(e, m->from);
  if (!from) return;
  tb_printf(e->out, "  snapshot status: %llx->%llx %s\n", ULL(m->from), ULL(m->to),
            ok ? "delivered" : "failed");
  raft_report_snapshot(from->r, m->to, ok);
}

bool tenv_deliver(tenv *e, uint64_t id) {
  /* Take the messages to id out of the queue first: a delivery may queue nothing (only
   * process-ready sends), but keeps the queue simple to reason about. */
  tenv_msgq mine = {0};
  size_t keep = 0;
  for (size_t i = 0; i < e->q.n; i++) {
    if (e->q.m[i].to == id) {
      if (mine.n == mine.cap) {
        mine.cap = mine.cap ? mine.cap * 2 : 16;
        mine.m = realloc(mine.m, mine.cap * sizeof *mine.m);
        if (!mine.m) abort();
      }
      mine.m[mine.n++] = e->q.m[i];
    } else {
      e->q.m[keep++] = e->q.m[i];
    }
  }
  e->q.n = keep;
  if (mine.n == 0) return false;
  tb_printf(e->out, "> %llx receiving\n", ULL(id));
  char d[DESC_LEN];
  for (size_t i = 0; i < mine.n; i++) {
    raft_message *m = &mine.m[i];
    raft_describe_message(m, d, sizeof d);
    tenv_node *to = tenv_live(e, id);
    const char *why = !to ? "node down"
                      : (m->from <= TENV_MAX_NODES && e->cut[m->from][id]) ? "partitioned"
                                                                            : NULL;
    if (why) {
      tb_printf(e->out, "  %s [dropped: %s]\n", d, why);
      if (m->type == RAFT_MSG_SNAP) report_snapshot(e, m, false);
    } else {
      tb_printf(e->out, "  %s\n", d);
      int rc = raft_step(to->r, m);
      if (rc != RAFT_OK) tb_printf(e->out, "  error: step: %s\n", raft_strerror(rc));
      if (m->type == RAFT_MSG_SNAP) report_snapshot(e, m, true);
    }
    raft_message_free(m);
  }
  free(mine.m);
  return true;
}

bool tenv_stabilize(tenv *e) {
  for (int round = 0; round < 1000; round++) {
    bool any = false;
    for (uint64_t id = 1; id <= e->n; id++) any |= tenv_process_ready(e, id);
    for (uint64_t id = 1; id <= e->n; id++) any |= tenv_deliver(e, id);
    if (!any) return true;
  }
  return false;
}

/* ---- time, crash, restart, compaction ---- */

void tenv_tick(tenv *e, uint64_t id, unsigned n) {
  tenv_node *nd = tenv_live(e, id);
  for (unsigned i = 0; nd && i < n; i++) raft_tick(nd->r);
}

void tenv_tick_election(tenv *e, uint64_t id) {
  tenv_node *nd = tenv_live(e, id);
  if (!nd) return;
  const raft *r = nd->r;
  unsigned timeout = r->role == RAFT_LEADER ? r->cfg.election_tick : r->randomized_election_timeout;
  unsigned n = r->election_elapsed < timeout ? timeout - r->election_elapsed : 1;
  tenv_tick(e, id, n);
}

void tenv_crash(tenv *e, uint64_t id) {
  tenv_node *n = tenv_live(e, id);
  if (!n) return;
  raft_free(n->r);
  n->r = NULL;
  node_reset_sm(n, "", 0, 0);
}

int tenv_restart(tenv *e, uint64_t id) {
  if (id == 0 || id > e->n || !e->nodes[id] || e->nodes[id]->r) return RAFT_E_INVAL;
  tenv_node *n = e->nodes[id];
  /* The state machine comes back from the last snapshot; the core replays the rest. */
  raft_snapshot snap = {0};
  const raft_storage *st = mem_storage_iface(n->ms);
  int rc = st->snapshot(st->ctx, &snap);
  if (rc != RAFT_OK) return rc;
  node_reset_sm(n, snap.data.base, snap.data.len, snap.meta.index);
  node_mark(n);
  free(snap.data.base);
  n->cfg.applied = 0;
  return raft_new(&n->cfg, &n->r);
}

int tenv_compact(tenv *e, uint64_t id, uint64_t index) {
  tenv_node *n = tenv_live(e, id);
  if (!n || index > n->applied) return RAFT_E_INVAL;
  const tenv_mark *mk = NULL;
  for (size_t i = 0; i < n->n_marks; i++)
    if (n->marks[i].index == index) mk = &n->marks[i];
  if (!mk) return RAFT_E_COMPACTED;
  int rc = mem_storage_create_snapshot(n->ms, index, NULL, n->sm.s, mk->len);
  if (rc == RAFT_OK) rc = mem_storage_compact(n->ms, index);
  return rc;
}

/* ---- dumps ---- */

void tenv_print_log(tenv *e, uint64_t id) {
  tenv_node *n = e->nodes[id];
  const raft_storage *st = mem_storage_iface(n->ms);
  char d[DESC_LEN];
  raft_snapshot_meta meta;
  mem_storage_snapshot_meta(n->ms, &meta);
  if (meta.index > 0)
    tb_printf(e->out, "snapshot: %s\n", raft_describe_snapshot_meta(&meta, d, sizeof d));
  uint64_t first = 0, last = 0;
  st->first_index(st->ctx, &first);
  st->last_index(st->ctx, &last);
  if (last < first) {
    tb_printf(e->out, "log is empty\n");
    return;
  }
  raft_entry *ents = NULL;
  size_t k = 0;
  int rc = st->entries(st->ctx, first, last + 1, UINT64_MAX, &ents, &k);
  if (rc != RAFT_OK) {
    tb_printf(e->out, "error: entries: %s\n", raft_strerror(rc));
    return;
  }
  for (size_t i = 0; i < k; i++) tb_printf(e->out, "%s\n", raft_describe_entry(&ents[i], d, sizeof d));
  raft_entries_free(ents, k);
}

void tenv_print_state(tenv *e, uint64_t id, bool detailed) {
  tenv_node *n = tenv_live(e, id);
  char d[DESC_LEN];
  if (!n) {
    raft_hard_state hs;
    mem_storage_hard_state(e->nodes[id]->ms, &hs);
    tb_printf(e->out, "%llx down (durable %s)\n", ULL(id), raft_describe_hard_state(&hs, d, sizeof d));
    return;
  }
  raft_status st;
  raft_get_status(n->r, &st);
  tb_printf(e->out, "%s\n", raft_describe_status(&st, d, sizeof d));
  if (!detailed) return;
  for (size_t i = 0; i < st.n_peers; i++)
    tb_printf(e->out, "  %s\n", raft_describe_peer(&st.peers[i], d, sizeof d));
  tb_printf(e->out, "  data: \"%s\"\n", n->sm.s);
}
