/* stats: /v2/stats/self, /v2/stats/store and /v2/stats/leader, and the latency histograms. */
#include "daemon/stats.h"

#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/routes.h"
#include "daemon/store_i.h"

const char *const stats_store_names[STATS_N] = {
#define STATS_NAME(id, name) name,
    STATS_STORE_COUNTERS(STATS_NAME)
#undef STATS_NAME
};

const char *const stats_http_method_names[STATS_HTTP_METHODS] = {"GET",  "QGET",   "PUT",
                                                                  "POST", "DELETE", "HEAD"};

void stats_hist_add_in(stats_hist *h, uint64_t ns, uint64_t first_ns, int n) {
  atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&h->ns_total, ns, memory_order_relaxed);
  uint64_t le = first_ns;
  int i = 0;
  while (i < n && ns > le) {
    i++;
    le *= 2;
  }
  atomic_fetch_add_explicit(&h->buckets[i], 1, memory_order_relaxed);
}

void stats_hist_add(stats_hist *h, uint64_t ns) {
  stats_hist_add_in(h, ns, 1000000, STATS_HIST_BUCKETS);
}

/* Go's time.Duration.String for non-negative durations: "1h2m3.5s", "365.145011ms". */
static void go_duration(char *out, size_t n, int64_t ns) {
  if (ns < 1000) {
    snprintf(out, n, "%" PRId64 "ns", ns);
  } else if (ns < 1000000) {
    snprintf(out, n, "%.3f", ns / 1e3);
  } else if (ns < 1000000000) {
    snprintf(out, n, "%.6f", ns / 1e6);
  } else {
    int64_t h = ns / 3600000000000LL, m = ns / 60000000000LL % 60;
    double sec = (double)(ns % 60000000000LL) / 1e9;
    char sb[32];
    snprintf(sb, sizeof sb, "%.9f", sec);
    char *e = sb + strlen(sb) - 1;
    while (*e == '0') *e-- = 0;
    if (*e == '.') *e = 0;
    if (h) snprintf(out, n, "%" PRId64 "h%" PRId64 "m%ss", h, m, sb);
    else if (m) snprintf(out, n, "%" PRId64 "m%ss", m, sb);
    else snprintf(out, n, "%ss", sb);
    return;
  }
  /* trim trailing zeros of the fraction, then add the unit */
  char *e = out + strlen(out) - 1;
  while (*e == '0') *e-- = 0;
  if (*e == '.') *e = 0;
  strncat(out, ns < 1000000 ? "µs" : "ms", n - strlen(out) - 1);
}

static const char *state_name(uint8_t role) {
  switch (role) {
    case RAFT_LEADER: return "StateLeader";
    case RAFT_CANDIDATE:
    case RAFT_PRE_CANDIDATE: return "StateCandidate";
    default: return "StateFollower";
  }
}

/* etcd writes its stats with w.Write(json.Marshal(...)): no newline at the end. */
static void stats_reply(server *s, http_req *r, yajl_gen g) {
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  routes_json(s, r, 200, (const char *)buf, len, 0);
  yajl_gen_free(g);
}

void stats_handle_self(server *s, http_req *r) {
  node_status st;
  node_get_status(s->node, &st);
  char start[40], lstart[40], up[48], lead[17];
  int64_t since = st.leader_since_ns ? st.leader_since_ns : s->stats.start_time_ns;
  proto_v2_rfc3339(s->stats.start_time_ns, start);
  proto_v2_rfc3339(since, lstart);
  go_duration(up, sizeof up, server_now_ns() - since);
  snprintf(lead, sizeof lead, "%" PRIx64, st.lead);
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "name");
  proto_v2_gen_cstr(g, s->cfg->name);
  proto_v2_gen_cstr(g, "id");
  proto_v2_gen_cstr(g, s->id_hex);
  proto_v2_gen_cstr(g, "state");
  proto_v2_gen_cstr(g, state_name(st.role));
  proto_v2_gen_cstr(g, "startTime");
  proto_v2_gen_cstr(g, start);
  proto_v2_gen_cstr(g, "leaderInfo");
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "leader");
  proto_v2_gen_cstr(g, st.lead ? lead : "");
  proto_v2_gen_cstr(g, "uptime");
  proto_v2_gen_cstr(g, up);
  proto_v2_gen_cstr(g, "startTime");
  proto_v2_gen_cstr(g, lstart);
  yajl_gen_map_close(g);
  proto_v2_gen_cstr(g, "recvAppendRequestCnt");
  yajl_gen_integer(g, (long long)atomic_load(&s->stats.recv_append));
  proto_v2_gen_cstr(g, "sendAppendRequestCnt");
  yajl_gen_integer(g, (long long)atomic_load(&s->stats.send_append));
  yajl_gen_map_close(g);
  stats_reply(s, r, g);
}

void stats_handle_store(server *s, http_req *r) {
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_map_open(g);
  for (int i = 0; i < STATS_N; i++) {
    proto_v2_gen_cstr(g, stats_store_names[i]);
    yajl_gen_integer(g, (long long)atomic_load(&s->stats.store[i]));
  }
  proto_v2_gen_cstr(g, "watchers");
  yajl_gen_integer(g, (long long)atomic_load(&s->stats.watchers));
  yajl_gen_map_close(g);
  stats_reply(s, r, g);
}

void stats_handle_leader(server *s, http_req *r) {
  node_status st;
  node_get_status(s->node, &st);
  if (st.role != RAFT_LEADER) {
    static const char body[] = "{\"message\":\"not current leader\"}";
    routes_json(s, r, 403, body, sizeof body - 1, 0);
    return;
  }
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "leader");
  proto_v2_gen_cstr(g, s->id_hex);
  proto_v2_gen_cstr(g, "followers");
  yajl_gen_map_open(g);
  for (size_t i = 0; i < st.raft.n_peers; i++) {
    const raft_peer_status *p = &st.raft.peers[i];
    if (p->id == s->member_id) continue;
    node_peer_stats ps;
    node_get_peer_stats(s->node, p->id, &ps);
    char id[17];
    snprintf(id, sizeof id, "%" PRIx64, p->id);
    proto_v2_gen_cstr(g, id);
    yajl_gen_map_open(g);
    proto_v2_gen_cstr(g, "latency");
    yajl_gen_map_open(g);
    proto_v2_gen_cstr(g, "current");
    yajl_gen_double(g, ps.latency_ms);
    proto_v2_gen_cstr(g, "average");
    yajl_gen_double(g, ps.latency_avg_ms);
    proto_v2_gen_cstr(g, "standardDeviation");
    yajl_gen_double(g, ps.latency_sd_ms);
    proto_v2_gen_cstr(g, "minimum");
    yajl_gen_double(g, ps.latency_min_ms);
    proto_v2_gen_cstr(g, "maximum");
    yajl_gen_double(g, ps.latency_max_ms);
    yajl_gen_map_close(g);
    proto_v2_gen_cstr(g, "counts");
    yajl_gen_map_open(g);
    proto_v2_gen_cstr(g, "fail");
    yajl_gen_integer(g, (long long)ps.fail);
    proto_v2_gen_cstr(g, "success");
    yajl_gen_integer(g, (long long)ps.success);
    yajl_gen_map_close(g);
    yajl_gen_map_close(g);
  }
  yajl_gen_map_close(g);
  yajl_gen_map_close(g);
  stats_reply(s, r, g);
}
