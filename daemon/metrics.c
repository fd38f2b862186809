/* metrics: /metrics in the Prometheus text format, with etcd's metric names where etcd has
 * one, so existing etcd dashboards and alerts keep working. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
  put(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void counter(sbuf *b, const char *name, const char *help, uint64_t v) {
  put(b, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

static long rss_bytes(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * sysconf(_SC_PAGESIZE);
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
  gauge(&b, "etcd_server_has_leader", "Whether or not a leader exists. 1 is existence, 0 is not.", 1);
  gauge(&b, "etcd_server_is_leader", "Whether or not this member is a leader. 1 if is, 0 otherwise.", 1);
  counter(&b, "etcd_server_leader_changes_seen_total", "The number of leader changes seen.", 1);
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
  /* The WAL fsync histogram: etcd's buckets, 1 ms doubling 14 times. */
  put(&b, "# HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.\n");
  put(&b, "# TYPE etcd_disk_wal_fsync_duration_seconds histogram\n");
  uint64_t cum = 0;
  double le = 0.001;
  for (int i = 0; i < 14; i++, le *= 2) {
    cum += atomic_load(&st->fsync_buckets[i]);
    put(&b, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", le, cum);
  }
  cum += atomic_load(&st->fsync_buckets[14]);
  put(&b, "etcd_disk_wal_fsync_duration_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
  put(&b, "etcd_disk_wal_fsync_duration_seconds_sum %.9f\n", atomic_load(&st->fsync_ns_total) / 1e9);
  put(&b, "etcd_disk_wal_fsync_duration_seconds_count %" PRIu64 "\n", atomic_load(&st->fsyncs));
  store_metrics(&b, st);
  counter(&b, "etcd_http_received_total", "Counter of requests received into the system (answered v2 requests).",
          atomic_load(&st->http_requests));
  gauge(&b, "process_resident_memory_bytes", "Resident memory size in bytes.", (double)rss_bytes());
  gauge(&b, "process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
        (double)st->start_time_ns / 1e9);
  http_respond(r, 200, NULL, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len);
  sbuf_free(&b);
}
