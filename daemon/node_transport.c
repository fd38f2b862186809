/* node_transport: the Raft driver's peers — the raft transport on the raft thread's loop,
 * peers added and removed as the configuration changes, messages in and out, and leadership
 * hand-over at a clean stop. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/node_i.h"

/* "http://host:port,..." → "host:port" of the first URL (with its scheme when keep_scheme).
 * Returns 0 or -1. */
static int url_hostport(const char *urls, int keep_scheme, char *out, size_t cap) {
  const char *p = strstr(urls, "://");
  const char *start = p && !keep_scheme ? p + 3 : urls;
  p = p ? p + 3 : urls;
  size_t n = (size_t)(p - start) + strcspn(p, ",/");
  if (n == (size_t)(p - start) || n >= cap) return -1;
  memcpy(out, start, n);
  out[n] = 0;
  return 0;
}

static void tr_on_message(void *arg, const raft_message *m) { node_on_message(arg, m); }

/* Transport warnings (a refused connection, a bad frame) go to the log; its other lines only
 * at the debug level. */
static void tr_log(void *arg, int level, const char *text) {
  node *n = arg;
  int least = node_log_level(n);
  if (level >= (least == NODE_LOG_DEBUG ? 0 : least > 2 ? least : 2))
    fprintf(stderr, "quorumd: peers: %s\n", text);
}

static void tr_on_unreachable(void *arg, uint64_t peer) {
  node *n = arg;
  raft_report_unreachable(n->r, peer);
  /* What was queued for the peer is lost: a publication forwarded to the leader is proposed
   * again at the next check (node_publish_self), not a request timeout later. */
  if (peer == n->status.lead && !atomic_load(&n->published)) n->publish_lead = RAFT_NONE;
}

/* The leader's process is gone (its connection broke and its address refuses a new one: a
 * crash, kill -9, the OOM killer): this follower grants votes at once and campaigns within two
 * heartbeats, where it would wait out an election timeout (1 to 2 s by default) for a leader
 * that can never answer. The other followers learn it the same way, at the same moment. */
static void tr_on_peer_gone(void *arg, uint64_t peer) {
  node *n = arg;
  if (raft_report_peer_gone(n->r, peer))
    fprintf(stderr, "quorumd: the leader %" PRIx64 " is gone (its connection broke and its peer "
                    "address refuses connections): electing another now\n", peer);
}

static void tr_on_snapshot_status(void *arg, uint64_t peer, bool ok) {
  node *n = arg;
  raft_report_snapshot(n->r, peer, ok);
}

static bool tr_is_removed(void *arg, uint64_t id) { return node_removed_has(arg, id); }

/* Another member says this one was removed (it was down when that was committed). */
static void tr_on_removed(void *arg) {
  node *n = arg;
  n->removed = 1; /* the next tick stops the server */
}

static void add_peer(node *n, const node_member *m) {
  if (m->id == n->cfg.id || !n->tr) return;
  char addr[300];
  if (url_hostport(m->peer_urls, 1, addr, sizeof addr)) return;
  int rc = raft_transport_add_peer(n->tr, m->id, addr);
  if (rc == -EEXIST) rc = raft_transport_update_peer(n->tr, m->id, addr);
  if (rc) fprintf(stderr, "quorumd: peer %" PRIx64 " at %s: %s\n", m->id, addr, strerror(-rc));
}

int node_transport_start(node *n, char *err, size_t errlen) {
  char listen[300] = "", bind_host[256] = "";
  if (n->cfg.peer_listen && url_hostport(n->cfg.peer_listen, 0, listen, sizeof listen)) {
    snprintf(err, errlen, "bad peer URL %s", n->cfg.peer_listen);
    return -EINVAL;
  }
  /* Outgoing connections leave from the address we listen on (when it is one address), so a
   * member's traffic can be told apart by address (partition tests with iptables). */
  if (listen[0] && listen[0] != '[') {
    size_t h = strcspn(listen, ":");
    if (h < sizeof bind_host && strncmp(listen, "0.0.0.0", h) && strncmp(listen, "localhost", h)) {
      memcpy(bind_host, listen, h);
      bind_host[h] = 0;
    }
  }
  raft_transport_config tc = {.self_id = n->cfg.id,
                              .cluster_id = n->cfg.cluster_id,
                              .listen_addr = listen[0] ? listen : NULL,
                              .bind_host = bind_host[0] ? bind_host : NULL,
                              .max_queue_bytes = 16u << 20,
                              .max_frame = 16u << 20,
                              .snapshot_dir = n->cfg.snapshot_dir,
                              .log = tr_log,
                              .log_arg = n,
                              .tls_server = n->cfg.peer_listen &&
                                                    !strncmp(n->cfg.peer_listen, "https://", 8)
                                                ? n->cfg.peer_tls_server
                                                : NULL,
                              .tls_client = n->cfg.peer_tls_client};
  raft_transport_callbacks cbs = {.arg = n,
                                  .on_message = tr_on_message,
                                  .on_unreachable = tr_on_unreachable,
                                  .on_snapshot_status = tr_on_snapshot_status,
                                  .is_removed = tr_is_removed,
                                  .on_removed = tr_on_removed,
                                  .on_peer_gone = tr_on_peer_gone,
                                  .http_get = node_peer_http_get};
  int rc = raft_transport_start(&n->rloop, &tc, &cbs, &n->tr);
  if (rc) {
    snprintf(err, errlen, "cannot listen for peers on %s: %s", listen, strerror(-rc));
    n->tr = NULL;
    return rc;
  }
  pthread_mutex_lock(&n->mu);
  node_member m[NODE_MAX_MEMBERS];
  size_t k = n->n_members;
  memcpy(m, n->members, k * sizeof *m);
  pthread_mutex_unlock(&n->mu);
  for (size_t i = 0; i < k; i++) add_peer(n, &m[i]);
  /* Connect to every peer now: one whose connection to this member waits out a backoff (this
   * member was down: up to 2 s) reconnects as soon as it sees it, so a restarted member hears
   * its leader, and is caught up, at once. */
  for (size_t i = 0; i < k; i++)
    if (m[i].id != n->cfg.id) (void)raft_transport_connect(n->tr, m[i].id);
  return 0;
}

void node_transport_send(node *n, const raft_message *m) {
  if (!n->tr) return;
  int rc = raft_transport_send(n->tr, m);
  if (rc == -ENOENT) raft_report_unreachable(n->r, m->to);
}

void node_transport_send_all(node *n, const raft_message *msgs, size_t k) {
  if (!n->tr || !k) return;
  raft_transport_cork(n->tr); /* each peer's messages of this batch in one write */
  for (size_t i = 0; i < k; i++) node_transport_send(n, &msgs[i]);
  raft_transport_uncork(n->tr);
}

void node_transport_conf(node *n, uint8_t type, const node_member *m) {
  if (!n->tr || m->id == n->cfg.id) return;
  if (type == RAFT_CONF_REMOVE_NODE) raft_transport_remove_peer(n->tr, m->id);
  else add_peer(n, m);
}

void node_transport_partition(node *n, uint64_t peer, bool drop) {
  if (!n->tr) return;
  if (peer) {
    raft_transport_set_drop(n->tr, peer, drop);
    return;
  }
  pthread_mutex_lock(&n->mu);
  node_member m[NODE_MAX_MEMBERS];
  size_t k = n->n_members;
  memcpy(m, n->members, k * sizeof *m);
  pthread_mutex_unlock(&n->mu);
  for (size_t i = 0; i < k; i++)
    if (m[i].id != n->cfg.id) raft_transport_set_drop(n->tr, m[i].id, drop);
}

void node_transport_break(node *n, uint64_t peer) {
  if (n->tr) raft_transport_break(n->tr, peer);
}

void node_transport_drop_next(node *n, uint64_t peer, uint8_t type, unsigned count) {
  if (n->tr) raft_transport_drop_next(n->tr, peer, type, count);
}

void node_transport_stop(node *n) {
  if (n->tr) raft_transport_stop(n->tr);
  n->tr = NULL;
}

/* Loop thread, at a clean stop: a leader with followers hands leadership to the most
 * up-to-date one and waits (up to an election timeout) for it to take over, so the cluster
 * does not wait for an election. */
void node_leader_handover(node *n) {
  node_status st;
  node_get_status(n, &st);
  if (st.role != RAFT_LEADER || st.raft.conf.n_voters < 2) return;
  uint64_t best = 0, best_match = 0;
  for (size_t i = 0; i < st.raft.n_peers; i++)
    if (st.raft.peers[i].id != n->cfg.id && st.raft.peers[i].match >= best_match) {
      best = st.raft.peers[i].id;
      best_match = st.raft.peers[i].match;
    }
  if (!best) return;
  inbox_item it = {.kind = INBOX_TRANSFER, .conf_node = best};
  node_inbox_push(n, it);
  for (unsigned waited = 0; waited < n->cfg.election_ms; waited += 10) {
    struct timespec ts = {0, 10 * 1000000};
    nanosleep(&ts, NULL);
    node_get_status(n, &st);
    if (st.lead != n->cfg.id && st.lead != RAFT_NONE) {
      fprintf(stderr, "quorumd: handed leadership to %" PRIx64 "\n", st.lead);
      return;
    }
  }
}

/* Raft thread, every heartbeat: the transport's per-peer counters into the table /v2/stats reads
 * (latency from heartbeat round trips), and the append counters into stats. */
void node_transport_collect(node *n) {
  if (!n->tr) return;
  uint64_t app_sent = 0, app_recv = 0;
  pthread_mutex_lock(&n->mu);
  for (size_t i = 0; i < n->n_members; i++) {
    uint64_t id = n->members[i].id;
    raft_transport_stats ts;
    if (id == n->cfg.id || raft_transport_peer_stats(n->tr, id, &ts)) continue;
    app_sent += ts.append_sent;
    app_recv += ts.append_recv;
    node_peer_stats *ps = NULL;
    for (size_t j = 0; j < n->n_peer_stats; j++)
      if (n->peer_stats[j].id == id) ps = &n->peer_stats[j];
    if (!ps && n->n_peer_stats < NODE_MAX_MEMBERS) {
      ps = &n->peer_stats[n->n_peer_stats++];
      memset(ps, 0, sizeof *ps);
      ps->id = id;
    }
    if (!ps) continue;
    if (ts.msgs_recv != ps->recv_seen) {
      ps->recv_seen = ts.msgs_recv;
      ps->heard_ns = node_mono_ns();
    }
    ps->success = ts.msgs_sent;
    ps->fail = ts.send_failures;
    ps->connected = ts.connected;
    ps->bytes_sent = ts.bytes_sent;
    ps->bytes_recv = ts.bytes_recv;
    ps->snapshots_sent = ts.snapshots_sent;
    ps->snapshot_failures = ts.snapshot_failures;
    /* A new sample only when something arrived from the peer since the last heartbeat tick (the
     * transport keeps the last heartbeat round trip; it does not change between them). */
    if (ts.rtt_us && ts.msgs_recv != ps->last_recv) {
      ps->last_recv = ts.msgs_recv;
      double x = ts.rtt_us / 1000.0;
      ps->latency_ms = x;
      ps->samples++;
      double d = x - ps->latency_avg_ms;
      ps->latency_avg_ms += d / (double)ps->samples;
      ps->m2 += d * (x - ps->latency_avg_ms);
      ps->latency_sd_ms = ps->samples > 1 ? __builtin_sqrt(ps->m2 / (double)ps->samples) : 0;
      if (ps->samples == 1 || x < ps->latency_min_ms) ps->latency_min_ms = x;
      if (x > ps->latency_max_ms) ps->latency_max_ms = x;
      double le = 0.0001;
      int bk = 0;
      while (bk < 16 && x / 1000.0 > le) {
        bk++;
        le *= 2;
      }
      ps->rtt_buckets[bk]++;
      ps->rtt_sum_s += x / 1000.0;
    }
  }
  pthread_mutex_unlock(&n->mu);
  atomic_store(&n->st->send_append, app_sent);
  atomic_store(&n->st->recv_append, app_recv);
}

void node_get_peer_stats(node *n, uint64_t id, node_peer_stats *ps) {
  memset(ps, 0, sizeof *ps);
  pthread_mutex_lock(&n->mu);
  for (size_t j = 0; j < n->n_peer_stats; j++)
    if (n->peer_stats[j].id == id) *ps = n->peer_stats[j];
  pthread_mutex_unlock(&n->mu);
}

size_t node_get_peers_stats(node *n, node_peer_stats *out, size_t max) {
  pthread_mutex_lock(&n->mu);
  size_t k = n->n_peer_stats < max ? n->n_peer_stats : max;
  memcpy(out, n->peer_stats, k * sizeof *out);
  pthread_mutex_unlock(&n->mu);
  return k;
}

bool node_peer_active(node *n, uint64_t id) {
  if (id == n->cfg.id) return true;
  node_peer_stats ps;
  node_get_peer_stats(n, id, &ps);
  return ps.heard_ns && node_mono_ns() - ps.heard_ns < (int64_t)n->cfg.election_ms * 1000000;
}
