/* metrics: /metrics in the Prometheus text format, with etcd's metric names where etcd has
 * one, so existing etcd dashboards and alerts keep working. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include "daemon/routes.h"

__attribute__((format(printf, 2, 3))) static void put(sbuf *b, const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n > 0) sbuf_put(b, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void gauge(sbuf *b, const char *name, const char *help, double v) {
  put(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.15g\n", name, help, name, name, v);
}

static void counter(sbuf *b, const char *name, const char *help, uint64_t v) {
  put(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

/* The samples of histogram h (n buckets from le first doubling, then +Inf); LABEL, when not
 * empty, goes first in each sample's labels ("method=\"GET\""). */
static void hist_samples(sbuf *b, const char *name, const char *label, stats_hist *h,
                         double first, int n) {
  const char *sep = *label ? "," : "";
  uint64_t cum = 0;
  double le = first;
  for (int i = 0; i < n; i++, le *= 2) {
    cum += atomic_load(&h->buckets[i]);
    put(b, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, label, sep, le, cum);
  }
  cum += atomic_load(&h->buckets[n]);
  put(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, label, sep, cum);
  const char *open = *label ? "{" : "", *close = *label ? "}" : "";
  put(b, "%s_sum%s%s%s %.9f\n%s_count%s%s%s %" PRIu64 "\n", name, open, label, close,
      atomic_load(&h->ns_total) / 1e9, name, open, label, close, atomic_load(&h->count));
}

/* A histogram of etcd's disk buckets (stats_hist). */
static void hist(sbuf *b, const char *name, const char *help, stats_hist *h) {
  put(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
  hist_samples(b, name, "", h, 0.001, STATS_HIST_BUCKETS);
}

/* etcd's v2 HTTP series, by method (and status): only the methods (and statuses) seen, as a
 * Prometheus vector shows only the labels it has counted. */
static void http_metrics(sbuf *b, stats *st) {
  char label[64];
  put(b, "# HELP etcd_http_received_total Counter of requests received into the system "
         "(successfully parsed and authd).\n# TYPE etcd_http_received_total counter\n");
  for (int m = 0; m < STATS_HTTP_METHODS; m++) {
    uint64_t v = atomic_load(&st->http_received[m]);
    if (v)
      put(b, "etcd_http_received_total{method=\"%s\"} %" PRIu64 "\n",
          stats_http_method_names[m], v);
  }
  put(b, "# HELP etcd_http_failed_total Counter of handle failures of requests (non-watches), "
         "by method (GET/PUT etc.) and code (400, 500 etc.).\n"
         "# TYPE etcd_http_failed_total counter\n");
  for (int m = 0; m < STATS_HTTP_METHODS; m++)
    for (int c = 0; c < 200; c++) {
      uint64_t v = atomic_load(&st->http_failed[m][c]);
      if (v)
        put(b, "etcd_http_failed_total{code=\"%d\",method=\"%s\"} %" PRIu64 "\n", c + 400,
            stats_http_method_names[m], v);
    }
  const char *ok = "etcd_http_successful_duration_seconds";
  put(b, "# HELP %s Bucketed histogram of processing time (s) of successfully handled requests "
         "(non-watches), by method (GET/PUT etc.).\n# TYPE %s histogram\n", ok, ok);
  for (int m = 0; m < STATS_HTTP_METHODS; m++) {
    if (!atomic_load(&st->http_ok[m].count)) continue;
    snprintf(label, sizeof label, "method=\"%s\"", stats_http_method_names[m]);
    hist_samples(b, ok, label, &st->http_ok[m], 0.0005, STATS_HTTP_BUCKETS);
  }
}

/* Prometheus' process collector (and etcd's os_fd_*), from /proc/self. */
static void process_metrics(sbuf *b, stats *st) {
  long pagesize = sysconf(_SC_PAGESIZE), vm_pages = 0, rss_pages = 0;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f) {
    if (fscanf(f, "%ld %ld", &vm_pages, &rss_pages) != 2) vm_pages = rss_pages = 0;
    fclose(f);
  }
  struct rusage ru;
  double cpu = 0;
  if (getrusage(RUSAGE_SELF, &ru) == 0)
    cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
          ru.ru_stime.tv_usec / 1e6;
  long fds = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    for (struct dirent *de; (de = readdir(d)) != NULL;)
      if (de->d_name[0] != '.') fds++;
    closedir(d);
    fds--; /* (the directory's own descriptor) */
  }
  struct rlimit rl;
  double max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                       ? (double)rl.rlim_cur : 0;
  gauge(b, "os_fd_limit", "The file descriptor limit.", max_fds);
  gauge(b, "os_fd_used", "The number of used file descriptors.", (double)fds);
  put(b, "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
         "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %.6f\n", cpu);
  gauge(b, "process_max_fds", "Maximum number of open file descriptors.", max_fds);
  gauge(b, "process_open_fds", "Number of open file descriptors.", (double)fds);
  gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
        (double)rss_pages * (double)pagesize);
  gauge(b, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        (double)st->start_time_ns / 1e9);
  gauge(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
        (double)vm_pages * (double)pagesize);
}

/* etcd's etcd_network_* series, one per peer: bytes, failures, snapshots, active connections
 * and the heartbeat round trips. */
static void peer_metrics(sbuf *b, server *s) {
  node_peer_stats ps[RAFT_MAX_VOTERS];
  size_t k = s->node ? node_get_peers_stats(s->node, ps, RAFT_MAX_VOTERS) : 0;
  static const struct {
    const char *name, *help, *label;
    int type; /* 0 counter, 1 gauge */
  } series[] = {
      {"etcd_network_peer_sent_bytes_total", "The total number of bytes sent to peers.", "To", 0},
      {"etcd_network_peer_received_bytes_total", "The total number of bytes received from peers.",
       "From", 0},
      {"etcd_network_peer_sent_failures_total", "The total number of send failures from peers.",
       "To", 0},
      {"etcd_network_snapshot_send_success", "Total number of successful snapshot sends", "To", 0},
      {"etcd_network_snapshot_send_failures", "Total number of snapshot send failures", "To", 0},
      {"etcd_network_active_peers", "The current number of active peer connections.", NULL, 1},
  };
  for (size_t j = 0; j < sizeof series / sizeof series[0]; j++) {
    put(b, "# HELP %s %s\n# TYPE %s %s\n", series[j].name, series[j].help, series[j].name,
        series[j].type ? "gauge" : "counter");
    for (size_t i = 0; i < k; i++) {
      uint64_t v = j == 0 ? ps[i].bytes_sent : j == 1 ? ps[i].bytes_recv : j == 2 ? ps[i].fail
                   : j == 3 ? ps[i].snapshots_sent : j == 4 ? ps[i].snapshot_failures
                            : ps[i].connected;
      if (series[j].label)
        put(b, "%s{%s=\"%" PRIx64 "\"} %" PRIu64 "\n", series[j].name, series[j].label, ps[i].id,
            v);
      else if (v)
        put(b, "%s{Local=\"%s\",Remote=\"%" PRIx64 "\"} 1\n", series[j].name, s->id_hex,
            ps[i].id);
    }
  }
  const char *rtt = "etcd_network_peer_round_trip_time_seconds";
  put(b, "# HELP %s Round-Trip-Time histogram between peers\n# TYPE %s histogram\n", rtt, rtt);
  for (size_t i = 0; i < k; i++) {
    uint64_t cum = 0;
    double le = 0.0001;
    for (int j = 0; j < 16; j++, le *= 2) {
      cum += ps[i].rtt_buckets[j];
      put(b, "%s_bucket{To=\"%" PRIx64 "\",le=\"%g\"} %" PRIu64 "\n", rtt, ps[i].id, le, cum);
    }
    cum += ps[i].rtt_buckets[16];
    put(b, "%s_bucket{To=\"%" PRIx64 "\",le=\"+Inf\"} %" PRIu64 "\n", rtt, ps[i].id, cum);
    put(b, "%s_sum{To=\"%" PRIx64 "\"} %.9f\n%s_count{To=\"%" PRIx64 "\"} %" PRIu64 "\n", rtt,
        ps[i].id, ps[i].rtt_sum_s, rtt, ps[i].id, cum);
  }
}

/* The v2 store counters under etcd's etcd_debugging_store_* names. */
static void store_metrics(sbuf *b, stats *st) {
  static const struct {
    stats_counter c;
    const char *kind, *action;
  } map[] = {
      {STATS_GETS_SUCCESS, "reads", "get"},           {STATS_SETS_SUCCESS, "writes", "set"},
      {STATS_CREATE_SUCCESS, "writes", "create"},     {STATS_UPDATE_SUCCESS, "writes", "update"},
      {STATS_DELETE_SUCCESS, "writes", "delete"},     {STATS_CAS_SUCCESS, "writes", "compareAndSwap"},
      {STATS_CAD_SUCCESS, "writes", "compareAndDelete"},
  };
  put(b, "# HELP etcd_debugging_store_reads_total Total number of reads action by (get/getRecursive), local to this member.\n");
  put(b, "# TYPE etcd_debugging_store_reads_total counter\n");
  put(b, "etcd_debugging_store_reads_total{action=\"get\"} %" PRIu64 "\n",
      atomic_load(&st->store[STATS_GETS_SUCCESS]) + atomic_load(&st->store[STATS_GETS_FAIL]));
  put(b, "# HELP etcd_debugging_store_writes_total Total number of writes (e.g. set/compareAndDelete) seen by this member.\n");
  put(b, "# TYPE etcd_debugging_store_writes_total counter\n");
  for (size_t i = 1; i < sizeof map / sizeof map[0]; i++)
    put(b, "etcd_debugging_store_writes_total{action=\"%s\"} %" PRIu64 "\n", map[i].action,
        atomic_load(&st->store[map[i].c]) + atomic_load(&st->store[map[i].c + 1]));
  counter(b, "etcd_debugging_store_expires_total", "Total number of expired keys.",
          atomic_load(&st->store[STATS_EXPIRE_COUNT]));
  gauge(b, "etcd_debugging_store_watchers", "Count of currently active watchers.",
        (double)atomic_load(&st->watchers));
}

void metrics_handle(server *s, http_req *r) {
  sbuf b = {0};
  stats *st = &s->stats;
  node_status ns = {0};
  if (s->node) node_get_status(s->node, &ns);
  gauge(&b, "etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.",
        ns.lead != 0);
  gauge(&b, "etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.",
        ns.role == RAFT_LEADER);
  counter(&b, "etcd_server_leader_changes_seen_total", "The number of leader changes seen.",
          ns.leader_changes);
  gauge(&b, "etcd_server_snapshot_apply_in_progress_total",
        "1 if the server is applying the incoming snapshot. 0 if none.", ns.installing);
  counter(&b, "etcd_server_proposals_committed_total", "The total number of consensus proposals committed.",
          atomic_load(&st->proposals_committed));
  counter(&b, "etcd_server_proposals_applied_total", "The total number of consensus proposals applied.",
          store_applied(s->st));
  gauge(&b, "etcd_server_proposals_pending", "The current number of pending proposals to commit.",
        (double)atomic_load(&st->proposals_pending));
  counter(&b, "etcd_server_proposals_failed_total", "The total number of failed proposals seen.",
          atomic_load(&st->proposals_failed));
  put(&b, "# HELP etcd_server_id Server or member ID in hexadecimal format. 1 for 'server_id' label with current ID.\n");
  put(&b, "# TYPE etcd_server_id gauge\netcd_server_id{server_id=\"%s\"} 1\n", s->id_hex);
  put(&b, "# HELP etcd_server_version Which version is running. 1 for 'server_version' label with current version.\n");
  put(&b, "# TYPE etcd_server_version gauge\netcd_server_version{server_version=\"3.4.23\"} 1\n");
  put(&b, "# HELP etcd_cluster_version Which version is running. 1 for 'cluster_version' label with current cluster version\n");
  put(&b, "# TYPE etcd_cluster_version gauge\netcd_cluster_version{cluster_version=\"3.4\"} 1\n");
  put(&b, "# HELP quorumd_build_info quorumd's own version.\n# TYPE quorumd_build_info gauge\n");
  put(&b, "quorumd_build_info{version=\"%s\"} 1\n", QUORUM_VERSION);
  hist(&b, "etcd_disk_wal_fsync_duration_seconds", "The latency distributions of fsync called by WAL.",
       &st->fsync);
  hist(&b, "etcd_disk_backend_commit_duration_seconds",
       "The latency distributions of commit called by backend.", &st->backend_commit);
  peer_metrics(&b, s);
  store_metrics(&b, st);
  http_metrics(&b, st);
  process_metrics(&b, st);
  http_respond(r, 200, NULL, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
  sbuf_free(&b);
}
