/* raft_test_util.h: helpers shared by the raft core's unit tests (header-only: each test file is
 * its own executable).
 *   rt_node: one core on a mem_storage; rt_drain() handles its ready batches in the driver's
 *            order (persist → send (collected) → apply → advance) and collects the messages.
 *   rt_net:  a synchronous in-process network of rt_nodes (raft.md §6 L2) with drop, cut,
 *            isolate, ignore and heal; rt_net_stabilize() delivers until nothing is left. Like
 *            the transport, it reports each snapshot delivered (ok) or dropped (failed).
 * Messages are compared through raft_describe_message's one-line text. */
#ifndef QUORUM_TESTS_UNIT_RAFT_TEST_UTIL_H
#define QUORUM_TESTS_UNIT_RAFT_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft.h"
#include "raft/core/raft_i.h"
#include "raft/storage/mem_storage.h"

#define RT_UNUSED __attribute__((unused))
#define RT_MAX 8

/* ---- message lists ---- */

typedef struct rt_msgs {
  raft_message *m;
  size_t n, cap;
} rt_msgs;

RT_UNUSED static void rt_msgs_push(rt_msgs *l, const raft_message *m) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->m = realloc(l->m, l->cap * sizeof *l->m);
    assert_non_null(l->m);
  }
  assert_int_equal(raft_message_copy(&l->m[l->n], m), RAFT_OK);
  l->n++;
}

RT_UNUSED static void rt_msgs_clear(rt_msgs *l) {
  for (size_t i = 0; i < l->n; i++) raft_message_free(&l->m[i]);
  l->n = 0;
}

RT_UNUSED static void rt_msgs_free(rt_msgs *l) {
  rt_msgs_clear(l);
  free(l->m);
  *l = (rt_msgs){0};
}

/* Removes and returns (in *out, owned by the caller) the first message; false when empty. */
RT_UNUSED static bool rt_msgs_shift(rt_msgs *l, raft_message *out) {
  if (l->n == 0) return false;
  *out = l->m[0];
  memmove(l->m, l->m + 1, (l->n - 1) * sizeof *l->m);
  l->n--;
  return true;
}

RT_UNUSED static const char *rt_desc(const raft_message *m) {
  static char buf[8][512];
  static int k;
  k = (k + 1) % 8;
  return raft_describe_message(m, buf[k], sizeof buf[k]);
}

/* Asserts the list's messages read exactly as the given lines (NULL-terminated). */
RT_UNUSED static void rt_expect_msgs_(const rt_msgs *l, const char *const *want, const char *file,
                                      int line) {
  size_t nw = 0;
  while (want[nw]) nw++;
  bool ok = nw == l->n;
  for (size_t i = 0; ok && i < nw; i++) ok = strcmp(rt_desc(&l->m[i]), want[i]) == 0;
  if (!ok) {
    fprintf(stderr, "%s:%d: messages differ\n  got (%zu):\n", file, line, l->n);
    for (size_t i = 0; i < l->n; i++) fprintf(stderr, "    %s\n", rt_desc(&l->m[i]));
    fprintf(stderr, "  want (%zu):\n", nw);
    for (size_t i = 0; i < nw; i++) fprintf(stderr, "    %s\n", want[i]);
    fail_msg("messages differ (%s:%d)", file, line);
  }
}
#define rt_expect_msgs(l, ...) \
  rt_expect_msgs_((l), (const char *const[]){__VA_ARGS__, NULL}, __FILE__, __LINE__)
#define rt_expect_no_msgs(l) rt_expect_msgs_((l), (const char *const[]){NULL}, __FILE__, __LINE__)

/* Number of messages of a type (0 = any) to a peer (0 = any). */
RT_UNUSED static size_t rt_count(const rt_msgs *l, uint8_t type, uint64_t to) {
  size_t c = 0;
  for (size_t i = 0; i < l->n; i++)
    if ((!type || l->m[i].type == type) && (!to || l->m[i].to == to)) c++;
  return c;
}

/* ---- one node ---- */

typedef struct rt_opts {
  unsigned election, heartbeat;
  bool pre_vote, check_quorum;
  uint64_t max_size_per_msg;
  unsigned max_inflight;
  uint64_t max_uncommitted;
  uint64_t seed;
} rt_opts;

RT_UNUSED static rt_opts rt_default_opts(void) {
  return (rt_opts){.election = 10, .heartbeat = 1, .max_size_per_msg = UINT64_MAX,
                   .max_inflight = 256, .seed = 42};
}

typedef struct rt_node {
  uint64_t id;
  raft *r;
  mem_storage *ms;
  rt_opts opts;
  raft_entry *applied; /* normal entries applied (copies), in order */
  size_t n_applied, cap_applied;
  uint64_t applied_index;
  uint64_t snap_applied; /* index of the last snapshot applied from a ready */
  rt_msgs reads_ctx;     /* read states seen: index in .index, ctx in .context */
  unsigned n_conf_applied;
} rt_node;

RT_UNUSED static void rt_test_log(void *arg, int level, const char *text) {
  (void)arg;
  if (level >= 3 || getenv("RT_VERBOSE")) fprintf(stderr, "[raft %d] %s\n", level, text);
}

RT_UNUSED static raft *rt_start(rt_node *n) {
  raft_config cfg = {.id = n->id,
                     .election_tick = n->opts.election,
                     .heartbeat_tick = n->opts.heartbeat,
                     .storage = mem_storage_iface(n->ms),
                     .applied = n->applied_index,
                     .max_size_per_msg = n->opts.max_size_per_msg,
                     .max_inflight_msgs = n->opts.max_inflight,
                     .max_uncommitted_size = n->opts.max_uncommitted,
                     .pre_vote = n->opts.pre_vote,
                     .check_quorum = n->opts.check_quorum,
                     .seed = n->opts.seed,
                     .log = rt_test_log};
  assert_int_equal(raft_new(&cfg, &n->r), RAFT_OK);
  return n->r;
}

/* A node with voters peers[0..np) in its storage's conf state (np = 0: a fresh node). */
RT_UNUSED static rt_node *rt_node_new(uint64_t id, const uint64_t *peers, size_t np, rt_opts o) {
  rt_node *n = calloc(1, sizeof *n);
  assert_non_null(n);
  n->id = id;
  n->opts = o;
  n->ms = mem_storage_new();
  assert_non_null(n->ms);
  raft_conf_state cs = {0};
  for (size_t i = 0; i < np; i++) cs.voters[cs.n_voters++] = peers[i];
  assert_int_equal(mem_storage_set_conf_state(n->ms, &cs), RAFT_OK);
  rt_start(n);
  return n;
}

/* 1..k as the voters. */
RT_UNUSED static rt_node *rt_node_k(uint64_t id, size_t k, rt_opts o) {
  uint64_t peers[RT_MAX];
  for (size_t i = 0; i < k; i++) peers[i] = i + 1;
  return rt_node_new(id, peers, k, o);
}

RT_UNUSED static void rt_node_free(rt_node *n) {
  if (!n) return;
  raft_free(n->r);
  mem_storage_free(n->ms);
  raft_entries_free(n->applied, n->n_applied);
  rt_msgs_free(&n->reads_ctx);
  free(n);
}

/* Crash and restart: the volatile core is gone; the storage (durable) stays. */
RT_UNUSED static void rt_restart(rt_node *n) {
  raft_free(n->r);
  n->r = NULL;
  rt_start(n);
}

/* Handles one ready batch (if any) in the driver's order; messages go to *out (may be NULL).
 * Returns false when there was nothing ready. */
RT_UNUSED static bool rt_handle_ready(rt_node *n, rt_msgs *out) {
  if (!raft_has_ready(n->r)) return false;
  raft_ready rd;
  raft_get_ready(n->r, &rd);
  /* 1. persist */
  if (rd.has_snapshot) assert_int_equal(mem_storage_apply_snapshot(n->ms, &rd.snapshot), RAFT_OK);
  if (rd.n_entries) assert_int_equal(mem_storage_append(n->ms, rd.entries, rd.n_entries), RAFT_OK);
  if (rd.hs_changed) assert_int_equal(mem_storage_set_hard_state(n->ms, &rd.hs), RAFT_OK);
  /* 2. send */
  for (size_t i = 0; i < rd.n_msgs; i++)
    if (out) rt_msgs_push(out, &rd.msgs[i]);
  /* 3. apply */
  if (rd.has_snapshot) {
    n->snap_applied = rd.snapshot.meta.index;
    n->applied_index = rd.snapshot.meta.index;
  }
  for (size_t i = 0; i < rd.n_committed; i++) {
    const raft_entry *e = &rd.committed[i];
    assert_true(e->index == n->applied_index + 1);
    n->applied_index = e->index;
    if (e->type == RAFT_ENTRY_CONF_CHANGE) {
      raft_conf_change cc;
      assert_int_equal(raft_conf_change_decode(e->data.base, e->data.len, &cc), RAFT_OK);
      raft_conf_state cs;
      assert_int_equal(raft_apply_conf_change(n->r, &cc, &cs), RAFT_OK);
      assert_int_equal(mem_storage_set_conf_state(n->ms, &cs), RAFT_OK);
      n->n_conf_applied++;
      continue;
    }
    if (e->data.len == 0) continue; /* the leaders' no-op entries */
    if (n->n_applied == n->cap_applied) {
      n->cap_applied = n->cap_applied ? n->cap_applied * 2 : 16;
      n->applied = realloc(n->applied, n->cap_applied * sizeof *n->applied);
      assert_non_null(n->applied);
    }
    assert_int_equal(raft_entry_copy(&n->applied[n->n_applied++], e), RAFT_OK);
  }
  for (size_t i = 0; i < rd.n_reads; i++) {
    raft_message rm = {.index = rd.reads[i].index, .context = rd.reads[i].ctx};
    rt_msgs_push(&n->reads_ctx, &rm);
  }
  /* 4. advance */
  raft_advance(n->r, &rd);
  return true;
}

/* Handles ready batches until none is left. */
RT_UNUSED static void rt_drain(rt_node *n, rt_msgs *out) {
  while (rt_handle_ready(n, out)) {
  }
}

/* Drains n and returns its messages in *out (cleared first). */
RT_UNUSED static void rt_read(rt_node *n, rt_msgs *out) {
  rt_msgs_clear(out);
  rt_drain(n, out);
}

RT_UNUSED static void rt_step(rt_node *n, raft_message m) {
  raft_step(n->r, &m);
}

RT_UNUSED static void rt_ticks(rt_node *n, unsigned k) {
  for (unsigned i = 0; i < k; i++) raft_tick(n->r);
}

RT_UNUSED static raft_status rt_status(const rt_node *n) {
  raft_status st;
  raft_get_status(n->r, &st);
  return st;
}

/* Entries in the node's (stable + unstable) log, as "term/index" words. */
RT_UNUSED static const char *rt_log_terms(rt_node *n) {
  static char buf[4096];
  size_t at = 0;
  buf[0] = 0;
  uint64_t first = raft_log_first_index(&n->r->log), last = raft_log_last_index(&n->r->log);
  for (uint64_t i = first; i <= last && at < sizeof buf - 32; i++)
    at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%llu", i > first ? " " : "",
                           (unsigned long long)raft_log_term_or_zero(&n->r->log, i));
  return buf;
}

/* ---- network ---- */

typedef struct rt_net {
  size_t n;
  rt_node *nodes[RT_MAX + 1]; /* by id, 1..n */
  bool cut[RT_MAX + 1][RT_MAX + 1];
  unsigned drop_pct[RT_MAX + 1][RT_MAX + 1];
  bool ignore[RAFT_MSG_TYPE_MAX];
  rt_msgs queue;
  rt_msgs delivered; /* a log of delivered messages (cleared by tests at will) */
  uint64_t rng;
  unsigned dropped_count;
} rt_net;

RT_UNUSED static rt_net *rt_net_new(size_t n, rt_opts o) {
  rt_net *net = calloc(1, sizeof *net);
  assert_non_null(net);
  net->n = n;
  net->rng = 0x1234567;
  for (size_t i = 1; i <= n; i++) {
    rt_opts oi = o;
    net->nodes[i] = rt_node_k(i, n, oi);
  }
  return net;
}

RT_UNUSED static void rt_net_free(rt_net *net) {
  for (size_t i = 1; i <= net->n; i++) rt_node_free(net->nodes[i]);
  rt_msgs_free(&net->queue);
  rt_msgs_free(&net->delivered);
  free(net);
}

static unsigned rt_net_rand100(rt_net *net) {
  net->rng = net->rng * 6364136223846793005ULL + 1442695040888963407ULL;
  return (unsigned)((net->rng >> 33) % 100);
}

/* A dropped snapshot is reported failed to its sender, as the transport does. */
static void rt_net_dropped(rt_net *net, const raft_message *m) {
  net->dropped_count++;
  if (m->type == RAFT_MSG_SNAP && m->from >= 1 && m->from <= net->n && net->nodes[m->from])
    raft_report_snapshot(net->nodes[m->from]->r, m->to, false);
}

/* Queues m unless a filter drops it. */
RT_UNUSED static void rt_net_send(rt_net *net, const raft_message *m) {
  if (m->to == 0 || m->to > net->n || !net->nodes[m->to]) return;
  bool drop = (m->from <= RT_MAX && net->cut[m->from][m->to]) || net->ignore[m->type];
  unsigned p = m->from <= RT_MAX ? net->drop_pct[m->from][m->to] : 0;
  if (!drop && p && rt_net_rand100(net) < p) drop = true;
  if (drop) {
    rt_net_dropped(net, m);
    return;
  }
  rt_msgs_push(&net->queue, m);
}

/* Collects every node's ready output into the queue. Returns whether anything was ready. */
RT_UNUSED static bool rt_net_flush(rt_net *net) {
  bool any = false;
  rt_msgs out = {0};
  for (size_t i = 1; i <= net->n; i++) {
    if (!net->nodes[i]) continue;
    while (rt_handle_ready(net->nodes[i], &out)) any = true;
  }
  for (size_t k = 0; k < out.n; k++) rt_net_send(net, &out.m[k]);
  rt_msgs_free(&out);
  return any;
}

/* Delivers until nothing is left to deliver (bounded, to catch livelocks). */
RT_UNUSED static void rt_net_stabilize(rt_net *net) {
  for (unsigned guard = 0; guard < 100000; guard++) {
    rt_net_flush(net);
    raft_message m;
    if (!rt_msgs_shift(&net->queue, &m)) return;
    rt_msgs_push(&net->delivered, &m);
    raft_step(net->nodes[m.to]->r, &m);
    /* the transport reports a snapshot it delivered */
    if (m.type == RAFT_MSG_SNAP && m.from >= 1 && m.from <= net->n && net->nodes[m.from])
      raft_report_snapshot(net->nodes[m.from]->r, m.to, true);
    raft_message_free(&m);
  }
  fail_msg("network did not stabilize");
}

RT_UNUSED static rt_node *rt_net_node(rt_net *net, uint64_t id) { return net->nodes[id]; }
RT_UNUSED static raft *rt_net_raft(rt_net *net, uint64_t id) { return net->nodes[id]->r; }

RT_UNUSED static void rt_net_campaign(rt_net *net, uint64_t id) {
  raft_campaign(net->nodes[id]->r);
  rt_net_stabilize(net);
}

RT_UNUSED static int rt_net_propose(rt_net *net, uint64_t id, const char *data) {
  int rc = raft_propose(net->nodes[id]->r, data, strlen(data));
  rt_net_stabilize(net);
  return rc;
}

RT_UNUSED static void rt_net_cut(rt_net *net, uint64_t a, uint64_t b) {
  net->cut[a][b] = net->cut[b][a] = true;
}

RT_UNUSED static void rt_net_isolate(rt_net *net, uint64_t id) {
  for (size_t i = 1; i <= net->n; i++)
    if (i != id) rt_net_cut(net, id, i);
}

RT_UNUSED static void rt_net_drop(rt_net *net, uint64_t from, uint64_t to, unsigned pct) {
  net->drop_pct[from][to] = pct;
}

RT_UNUSED static void rt_net_ignore(rt_net *net, uint8_t type) { net->ignore[type] = true; }

RT_UNUSED static void rt_net_heal(rt_net *net) {
  memset(net->cut, 0, sizeof net->cut);
  memset(net->drop_pct, 0, sizeof net->drop_pct);
  memset(net->ignore, 0, sizeof net->ignore);
}

/* Ticks node id k times, delivering after each tick. */
RT_UNUSED static void rt_net_tick(rt_net *net, uint64_t id, unsigned k) {
  for (unsigned i = 0; i < k; i++) {
    raft_tick(net->nodes[id]->r);
    rt_net_stabilize(net);
  }
}

/* Ticks every node k times, delivering after each round. */
RT_UNUSED static void rt_net_tick_all(rt_net *net, unsigned k) {
  for (unsigned i = 0; i < k; i++) {
    for (size_t j = 1; j <= net->n; j++)
      if (net->nodes[j]) raft_tick(net->nodes[j]->r);
    rt_net_stabilize(net);
  }
}

/* Sends a local message to one node and delivers. */
RT_UNUSED static void rt_net_step(rt_net *net, uint64_t id, raft_message m) {
  raft_step(net->nodes[id]->r, &m);
  rt_net_stabilize(net);
}

RT_UNUSED static uint8_t rt_role(rt_net *net, uint64_t id) { return net->nodes[id]->r->role; }
RT_UNUSED static uint64_t rt_term(rt_net *net, uint64_t id) { return net->nodes[id]->r->term; }
RT_UNUSED static uint64_t rt_commit(rt_net *net, uint64_t id) {
  return net->nodes[id]->r->log.committed;
}
RT_UNUSED static uint64_t rt_last(rt_net *net, uint64_t id) {
  return raft_log_last_index(&net->nodes[id]->r->log);
}

/* The applied normal entries of a node, joined with ',' (for assertions). */
RT_UNUSED static const char *rt_applied_str(const rt_node *n) {
  static char buf[4096];
  size_t at = 0;
  buf[0] = 0;
  for (size_t i = 0; i < n->n_applied && at < sizeof buf - 64; i++)
    at += (size_t)snprintf(buf + at, sizeof buf - at, "%s%.*s", i ? "," : "",
                           (int)n->applied[i].data.len, (const char *)n->applied[i].data.base);
  return buf;
}

#endif
