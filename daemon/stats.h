/* stats: the v2 store counters (/v2/stats/store), the member's own stats (/v2/stats/self),
 * and request counters for /metrics. Counters are atomics: the apply thread and the loop
 * thread both count. */
#ifndef QUORUM_DAEMON_STATS_H
#define QUORUM_DAEMON_STATS_H

#include <stdatomic.h>
#include <stdint.h>

#define STATS_STORE_COUNTERS(X) \
  X(GETS_SUCCESS, "getsSuccess") \
  X(GETS_FAIL, "getsFail") \
  X(SETS_SUCCESS, "setsSuccess") \
  X(SETS_FAIL, "setsFail") \
  X(DELETE_SUCCESS, "deleteSuccess") \
  X(DELETE_FAIL, "deleteFail") \
  X(UPDATE_SUCCESS, "updateSuccess") \
  X(UPDATE_FAIL, "updateFail") \
  X(CREATE_SUCCESS, "createSuccess") \
  X(CREATE_FAIL, "createFail") \
  X(CAS_SUCCESS, "compareAndSwapSuccess") \
  X(CAS_FAIL, "compareAndSwapFail") \
  X(CAD_SUCCESS, "compareAndDeleteSuccess") \
  X(CAD_FAIL, "compareAndDeleteFail") \
  X(EXPIRE_COUNT, "expireCount")

typedef enum stats_counter {
#define STATS_ENUM(id, name) STATS_##id,
  STATS_STORE_COUNTERS(STATS_ENUM)
#undef STATS_ENUM
  STATS_N
} stats_counter;

/* A latency histogram with etcd's disk buckets: le 0.001 * 2^i seconds, i < 14, then +Inf. */
#define STATS_HIST_BUCKETS 14
typedef struct stats_hist {
  _Atomic uint64_t count;
  _Atomic uint64_t ns_total;
  _Atomic uint64_t buckets[STATS_HIST_BUCKETS + 1];
} stats_hist;

/* The v2 keys requests by etcd's method label (etcd_http_*): QGET is a GET with quorum=true. */
enum { STATS_HTTP_GET, STATS_HTTP_QGET, STATS_HTTP_PUT, STATS_HTTP_POST, STATS_HTTP_DELETE,
       STATS_HTTP_HEAD, STATS_HTTP_METHODS };
extern const char *const stats_http_method_names[STATS_HTTP_METHODS];
/* etcd_http_successful_duration_seconds' buckets: le 0.0005 * 2^i seconds, i < 13. */
#define STATS_HTTP_BUCKETS 13

typedef struct stats {
  _Atomic uint64_t store[STATS_N];
  _Atomic uint64_t watchers;          /* current watchers */
  _Atomic uint64_t proposals_committed;
  _Atomic uint64_t proposals_pending;
  _Atomic uint64_t proposals_failed;
  stats_hist fsync;                   /* the raft log's fsyncs */
  stats_hist backend_commit;          /* the tree store's group writes (etcd's backend commit) */
  _Atomic uint64_t recv_append, send_append;
  /* v2 keys requests: received (not counting watches, as etcd), failed by status 400-599, and
   * the durations of the successful ones */
  _Atomic uint64_t http_received[STATS_HTTP_METHODS];
  _Atomic uint64_t http_failed[STATS_HTTP_METHODS][200];
  stats_hist http_ok[STATS_HTTP_METHODS];
  int64_t start_time_ns;              /* set once at start */
} stats;

static inline void stats_inc(stats *s, stats_counter c) {
  if (s) atomic_fetch_add_explicit(&s->store[c], 1, memory_order_relaxed);
}

/* Names of the store counters, in enum order. */
extern const char *const stats_store_names[STATS_N];

/* Records one duration of ns in h: etcd's disk buckets (le 1 ms doubling, STATS_HIST_BUCKETS),
 * or buckets of its own (le first_ns doubling, n of them; n <= STATS_HIST_BUCKETS). */
void stats_hist_add(stats_hist *h, uint64_t ns);
void stats_hist_add_in(stats_hist *h, uint64_t ns, uint64_t first_ns, int n);

#endif
