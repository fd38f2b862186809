/* sim_main: the simulator's command line.
 *
 *   sim                       the CI range (smaller in a sanitizer build, so it stays < 60 s)
 *   sim --seeds A..B          every seed from A to B
 *   sim --soak [--seeds A..B] longer runs (60 s of faults per seed instead of 8 s)
 *   sim --skip S1,S2,...      leave out seeds listed in tests/sim/FINDINGS.md
 *   SIM_SEED=n sim            replay one seed exactly; SIM_TRACE=1 prints its whole trace,
 *                             SIM_HISTORY=path writes its client history (JSON lines, lincheck)
 *
 * A failing seed prints why, then is replayed with the trace on and its last lines printed.
 * Exit status: 0 when every seed passed, 1 otherwise, 2 on bad usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/sim/sim.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIM_SANITIZED 1
#endif
#endif
#ifndef SIM_SANITIZED
#define SIM_SANITIZED 0
#endif

/* The CI ranges: chosen so one ctest entry stays well under 60 s on a loaded 2-core machine. */
#define SIM_CI_SEEDS (SIM_SANITIZED ? 400 : 2000)
#define SIM_TRACE_LINES 80

typedef struct sim_opts {
  uint64_t from, to;
  bool soak;
  uint64_t *skip;
  size_t n_skip;
} sim_opts;

static bool sim_skipped(const sim_opts *o, uint64_t seed) {
  for (size_t i = 0; i < o->n_skip; i++)
    if (o->skip[i] == seed) return true;
  return false;
}

static void sim_summary(const sim_world *w) {
  printf("seed %" PRIu64 ": %u nodes, %" PRIu64 " events, %" PRIu64 " msgs (%" PRIu64
         " lost), %" PRIu64 " elections, %" PRIu64 " crashes, %" PRIu64 " partitions, %" PRIu64
         " pauses, %" PRIu64 " conf changes, %" PRIu64 " transfers, %" PRIu64
         " snapshots made, %" PRIu64 " sent, %" PRIu64 " writes proposed again, %" PRIu64
         " sent again in their term (%" PRIu64 " dropped as held, %" PRIu64 " forwards too old), %"
         PRIu64 " leaders forgotten as gone, %" PRIu64 " ops %s, commit %" PRIu64 "\n",
         w->seed, w->p.n_nodes, w->events, w->msgs, w->drops, w->elections, w->crashes,
         w->partitions, w->pauses, w->conf_changes, w->transfers, w->snaps_made, w->snaps_sent,
         w->resent, w->retried, w->deduped, w->too_old, w->gone_forgotten, w->lin_ops, w->lin_gave_up ? "NOT checked (search budget)" : "checked",
         w->committed_max);
}

/* Runs one seed; on failure replays it with the trace on. Returns true when it passed. */
static bool sim_run_seed(uint64_t seed, bool soak, bool verbose, bool live, const char *hist,
                         uint64_t *gave_up) {
  sim_world *w = malloc(sizeof *w);
  if (!w) abort();
  sim_world_init(w, seed, soak);
  w->history_path = hist;
  if (live) {
    w->tracing = w->trace_live = true;
  }
  bool ok = sim_world_run(w);
  if (w->lin_gave_up && gave_up) ++*gave_up;
  if (verbose || !ok) sim_summary(w);
  if (!ok) {
    printf("seed %" PRIu64 " FAILED: %s\n", seed, w->failure);
    if (!live) {
      char failure[sizeof w->failure];
      memcpy(failure, w->failure, sizeof failure);
      sim_world_free(w);
      sim_world_init(w, seed, soak);
      w->tracing = true;
      w->trace_cap = 4096;
      w->trace = calloc(w->trace_cap, sizeof *w->trace);
      if (!w->trace) abort();
      sim_world_run(w);
      if (strcmp(failure, w->failure) != 0)
        printf("(the replay failed differently: %s)\n", w->failure);
      printf("last %d trace lines of seed %" PRIu64 ":\n", SIM_TRACE_LINES, seed);
      sim_trace_print(w, SIM_TRACE_LINES);
    }
    printf("replay: SIM_SEED=%" PRIu64 "%s tests/sim/sim\n", seed, soak ? " SIM_SOAK=1" : "");
  }
  sim_world_free(w);
  free(w);
  fflush(stdout);
  return ok;
}

static int sim_usage(void) {
  fprintf(stderr, "usage: sim [--seeds A..B] [--soak] [--skip S1,S2,...]\n"
                  "       SIM_SEED=n [SIM_TRACE=1] [SIM_HISTORY=path] [SIM_SOAK=1] sim\n");
  return 2;
}

static int sim_parse(int argc, char **argv, sim_opts *o) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--seeds") == 0 && i + 1 < argc) {
      unsigned long long a, b;
      char tail;
      if (sscanf(argv[++i], "%llu..%llu%c", &a, &b, &tail) != 2 || a > b) return -1;
      o->from = a;
      o->to = b;
    } else if (strcmp(argv[i], "--soak") == 0) {
      o->soak = true;
    } else if (strcmp(argv[i], "--skip") == 0 && i + 1 < argc) {
      for (char *s = argv[++i]; *s;) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (end == s) return -1;
        uint64_t *k = realloc(o->skip, (o->n_skip + 1) * sizeof *k);
        if (!k) abort();
        o->skip = k;
        o->skip[o->n_skip++] = v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
      }
    } else {
      return -1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  sim_opts o = {.from = 1, .to = SIM_CI_SEEDS};
  if (sim_parse(argc, argv, &o) != 0) {
    free(o.skip);
    return sim_usage();
  }
  const char *one = getenv("SIM_SEED");
  const char *soak_env = getenv("SIM_SOAK");
  if (soak_env && *soak_env && strcmp(soak_env, "0") != 0) o.soak = true;
  if (one && *one) {
    const char *tr = getenv("SIM_TRACE");
    bool live = tr && *tr && strcmp(tr, "0") != 0;
    bool ok = sim_run_seed(strtoull(one, NULL, 10), o.soak, true, live, getenv("SIM_HISTORY"), NULL);
    free(o.skip);
    return ok ? 0 : 1;
  }
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t passed = 0, failed = 0, skipped = 0, gave_up = 0;
  for (uint64_t s = o.from; s <= o.to; s++) {
    if (sim_skipped(&o, s)) {
      skipped++;
      continue;
    }
    if (sim_run_seed(s, o.soak, false, false, NULL, &gave_up))
      passed++;
    else
      failed++;
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("sim: seeds %" PRIu64 "..%" PRIu64 "%s: %" PRIu64 " passed, %" PRIu64 " failed, %" PRIu64
         " skipped; %" PRIu64 " histories too hard to check (%.1f s)\n",
         o.from, o.to, o.soak ? " (soak)" : "", passed, failed, skipped, gave_up, secs);
  free(o.skip);
  return failed ? 1 : 0;
}
