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

typedef struct stats {
  _Atomic uint64_t store[STATS_N];
  _Atomic uint64_t watchers;          /* current watchers */
  _Atomic uint64_t http_requests;     /* requests answered */
  _Atomic uint64_t proposals_committed;
  _Atomic uint64_t proposals_pending;
  _Atomic uint64_t proposals_failed;
  stats_hist fsync;                   /* the raft log's fsyncs */
  stats_hist backend_commit;          /* the tree store's group writes (etcd's backend commit) */
  _Atomic uint64_t recv_append, send_append;
  int64_t start_time_ns;              /* set once at start */
} stats;

static inline void stats_inc(stats *s, stats_counter c) {
  if (s) atomic_fetch_add_explicit(&s->store[c], 1, memory_order_relaxed);
}

/* Names of the store counters, in enum order. */
extern const char *const stats_store_names[STATS_N];

/* Records one duration of ns in h. */
void stats_hist_add(stats_hist *h, uint64_t ns);

#endif
