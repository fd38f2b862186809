/* transport_fixture.h: the fixture shared by the transport's unit tests (header-only: each
 * test file is its own executable). Up to three members on one libuv loop over real loopback
 * TCP, member i on 127.0.0.i; callbacks record deep copies of what arrives, unreachable and
 * snapshot reports and warnings; run_until drives the loop until a predicate holds. */
#ifndef QUORUM_TESTS_UNIT_RAFT_TRANSPORT_FIXTURE_H
#define QUORUM_TESTS_UNIT_RAFT_TRANSPORT_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "raft/transport/codec.h"
#include "raft/transport/transport.h"

#define TF_UNUSED __attribute__((unused))

#define CLUSTER 0xc1c1c1c1ULL
#define MAX_NODES 3

typedef struct node {
  uint64_t id;
  raft_transport *t;
  int port;
  raft_transport_config cfg;
  char host[32];       /* 127.0.0.<id>: each member on its own loopback address */
  char listen[48];
  bool stop_on_message; /* on_message stops this member's transport */
  raft_message **got; /* deep copies of what on_message delivered */
  size_t n_got, cap_got;
  unsigned unreachable[MAX_NODES + 1]; /* by peer id */
  int snap_ok[MAX_NODES + 1], snap_fail[MAX_NODES + 1];
  unsigned warnings; /* log lines at level >= 2 */
  uint64_t removed_peer; /* is_removed() answers true for it (0: nobody) */
  unsigned told_removed; /* on_removed() calls */
  unsigned gone[MAX_NODES + 1]; /* on_peer_gone() calls, by peer id */
  char last_log[320];
} node;

typedef struct fixture {
  uv_loop_t loop;
  uv_timer_t tick; /* keeps uv_run(ONCE) waking up */
  node n[MAX_NODES + 1]; /* 1-based: n[1] is member 1 */
} fixture;

/* ---- message copies ---- */

TF_UNUSED static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
  if (!n) return NULL;
  uint8_t *q = malloc(n);
  assert_non_null(q);
  memcpy(q, p, n);
  return q;
}

TF_UNUSED static raft_message *clone_msg(const raft_message *m) {
  raft_message *c = calloc(1, sizeof *c);
  assert_non_null(c);
  *c = *m;
  if (m->n_entries) {
    c->entries = calloc(m->n_entries, sizeof(raft_entry));
    for (size_t i = 0; i < m->n_entries; i++) {
      c->entries[i] = m->entries[i];
      c->entries[i].data.base = dup_bytes(m->entries[i].data.base, m->entries[i].data.len);
    }
  }
  if (m->snapshot) {
    c->snapshot = malloc(sizeof *c->snapshot);
    *c->snapshot = *m->snapshot;
    c->snapshot->data.base = dup_bytes(m->snapshot->data.base, m->snapshot->data.len);
  }
  c->context.base = dup_bytes(m->context.base, m->context.len);
  return c;
}

TF_UNUSED static void free_msg(raft_message *m) {
  for (size_t i = 0; i < m->n_entries; i++) free(m->entries[i].data.base);
  free(m->entries);
  if (m->snapshot) free(m->snapshot->data.base);
  free(m->snapshot);
  free(m->context.base);
  free(m);
}

TF_UNUSED static void assert_buf(raft_buf a, raft_buf b) {
  assert_int_equal(a.len, b.len);
  if (a.len) assert_memory_equal(a.base, b.base, a.len);
}

TF_UNUSED static void assert_message(const raft_message *want, const raft_message *got) {
  assert_int_equal(got->type, want->type);
  assert_true(got->to == want->to && got->from == want->from && got->term == want->term);
  assert_true(got->log_term == want->log_term && got->index == want->index);
  assert_true(got->commit == want->commit && got->reject == want->reject);
  assert_true(got->reject_hint == want->reject_hint);
  assert_true(got->reject_hint_term == want->reject_hint_term);
  assert_int_equal(got->n_entries, want->n_entries);
  for (size_t i = 0; i < want->n_entries; i++) {
    assert_true(got->entries[i].term == want->entries[i].term);
    assert_true(got->entries[i].index == want->entries[i].index);
    assert_int_equal(got->entries[i].type, want->entries[i].type);
    assert_buf(want->entries[i].data, got->entries[i].data);
  }
  assert_int_equal(!got->snapshot, !want->snapshot);
  if (want->snapshot) {
    assert_true(got->snapshot->meta.index == want->snapshot->meta.index);
    assert_true(got->snapshot->meta.term == want->snapshot->meta.term);
    assert_int_equal(got->snapshot->meta.conf.n_voters, want->snapshot->meta.conf.n_voters);
    assert_memory_equal(got->snapshot->meta.conf.voters, want->snapshot->meta.conf.voters,
                        want->snapshot->meta.conf.n_voters * sizeof(uint64_t));
    assert_buf(want->snapshot->data, got->snapshot->data);
  }
  if (want->type == RAFT_MSG_SNAP) return; /* the snapshot path carries no context */
  assert_buf(want->context, got->context);
}

/* ---- callbacks ---- */

TF_UNUSED static void on_message(void *arg, const raft_message *m) {
  node *n = arg;
  if (n->n_got == n->cap_got) {
    n->cap_got = n->cap_got ? n->cap_got * 2 : 64;
    n->got = realloc(n->got, n->cap_got * sizeof *n->got);
    assert_non_null(n->got);
  }
  n->got[n->n_got++] = clone_msg(m);
  if (n->stop_on_message) {
    raft_transport_stop(n->t);
    n->t = NULL;
  }
}

TF_UNUSED static void on_unreachable(void *arg, uint64_t peer) {
  node *n = arg;
  assert_true(peer >= 1 && peer <= MAX_NODES);
  n->unreachable[peer]++;
}

TF_UNUSED static void on_snapshot_status(void *arg, uint64_t peer, bool ok) {
  node *n = arg;
  assert_true(peer >= 1 && peer <= MAX_NODES);
  if (ok) n->snap_ok[peer]++;
  else n->snap_fail[peer]++;
}

TF_UNUSED static bool is_removed(void *arg, uint64_t id) {
  node *n = arg;
  return n->removed_peer && id == n->removed_peer;
}

TF_UNUSED static void on_removed(void *arg) {
  node *n = arg;
  n->told_removed++;
}

TF_UNUSED static void on_peer_gone(void *arg, uint64_t peer) {
  node *n = arg;
  assert_true(peer >= 1 && peer <= MAX_NODES);
  n->gone[peer]++;
}

TF_UNUSED static void on_log(void *arg, int level, const char *text) {
  node *n = arg;
  if (level >= 2) n->warnings++;
  snprintf(n->last_log, sizeof n->last_log, "%s", text);
}

/* ---- fixture ---- */

TF_UNUSED static void tick_cb(uv_timer_t *h) {
  (void)h;
}

TF_UNUSED static int setup(void **state) {
  fixture *f = calloc(1, sizeof *f);
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, tick_cb, 5, 5);
  for (int i = 1; i <= MAX_NODES; i++) {
    node *n = &f->n[i];
    n->id = (uint64_t)i;
    snprintf(n->host, sizeof n->host, "127.0.0.%d", i);
    snprintf(n->listen, sizeof n->listen, "127.0.0.%d:0", i);
    n->cfg = (raft_transport_config){.self_id = n->id, .cluster_id = CLUSTER,
                                     .listen_addr = n->listen, .bind_host = n->host,
                                     .log = on_log, .log_arg = n};
  }
  *state = f;
  return 0;
}

TF_UNUSED static void node_start(fixture *f, int i) {
  node *n = &f->n[i];
  raft_transport_callbacks cbs = {n, on_message, on_unreachable, on_snapshot_status, is_removed,
                                  on_removed};
  cbs.on_peer_gone = on_peer_gone;
  assert_int_equal(raft_transport_start(&f->loop, &n->cfg, &cbs, &n->t), 0);
  n->port = raft_transport_listen_port(n->t);
  assert_true(n->port > 0);
}

TF_UNUSED static void addr_of(const node *n, char *buf, size_t len) {
  snprintf(buf, len, "%s:%d", n->host, n->port);
}

/* Starts nodes 1..count and makes each a peer of every other. */
TF_UNUSED static void start_cluster(fixture *f, int count) {
  for (int i = 1; i <= count; i++) node_start(f, i);
  for (int i = 1; i <= count; i++)
    for (int j = 1; j <= count; j++) {
      if (i == j) continue;
      char a[64];
      addr_of(&f->n[j], a, sizeof a);
      assert_int_equal(raft_transport_add_peer(f->n[i].t, (uint64_t)j, a), 0);
    }
}

TF_UNUSED static void node_clear(node *n) {
  for (size_t i = 0; i < n->n_got; i++) free_msg(n->got[i]);
  n->n_got = 0;
}

TF_UNUSED static int teardown(void **state) {
  fixture *f = *state;
  for (int i = 1; i <= MAX_NODES; i++) {
    raft_transport_stop(f->n[i].t);
    f->n[i].t = NULL;
  }
  uv_close((uv_handle_t *)&f->tick, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  for (int i = 1; i <= MAX_NODES; i++) {
    node_clear(&f->n[i]);
    free(f->n[i].got);
  }
  free(f);
  return 0;
}

typedef bool (*pred_fn)(fixture *f, void *arg);

/* Runs the loop until pred holds or ms pass; returns pred's last value. */
TF_UNUSED static bool run_until(fixture *f, pred_fn pred, void *arg, unsigned ms) {
  uv_update_time(&f->loop);
  uint64_t deadline = uv_now(&f->loop) + ms;
  while (!pred(f, arg) && uv_now(&f->loop) < deadline) uv_run(&f->loop, UV_RUN_ONCE);
  return pred(f, arg);
}

TF_UNUSED static bool never(fixture *f, void *arg) {
  (void)f;
  (void)arg;
  return false;
}

TF_UNUSED static void run_for(fixture *f, unsigned ms) {
  run_until(f, never, NULL, ms);
}

typedef struct want_count {
  node *n;
  size_t count;
} want_count;

TF_UNUSED static bool has_count(fixture *f, void *arg) {
  (void)f;
  want_count *w = arg;
  return w->n->n_got >= w->count;
}

TF_UNUSED static void wait_got(fixture *f, int i, size_t count) {
  want_count w = {&f->n[i], count};
  assert_true(run_until(f, has_count, &w, 5000));
}

TF_UNUSED static raft_message heartbeat(uint64_t from, uint64_t to, uint64_t term) {
  return (raft_message){.type = RAFT_MSG_HEARTBEAT, .from = from, .to = to, .term = term,
                        .commit = term * 10};
}

typedef struct snap_wait {
  int node, peer;
} snap_wait;

TF_UNUSED static bool snap_reported(fixture *f, void *arg) {
  snap_wait *w = arg;
  return f->n[w->node].snap_ok[w->peer] + f->n[w->node].snap_fail[w->peer] > 0;
}

#endif
