/* sim_trace: the run's trace (a ring of the last lines, or printed live with SIM_TRACE=1) and
 * the first failure of a run. Tracing is off in a plain run; a failing seed is run again with
 * the trace on, which is exact because a seed replays deterministically. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "tests/sim/sim.h"

void sim_trace(sim_world *w, const char *fmt, ...) {
  if (!w->tracing) return;
  char line[240];
  int k = snprintf(line, sizeof line, "[%7llu] ", (unsigned long long)w->now);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + k, sizeof line - (size_t)k, fmt, ap);
  va_end(ap);
  if (w->trace_live) {
    printf("%s\n", line);
    return;
  }
  memcpy(w->trace[w->trace_n % w->trace_cap], line, sizeof line);
  w->trace_n++;
}

void sim_fail(sim_world *w, const char *fmt, ...) {
  if (w->failed) return;
  w->failed = true;
  int k = snprintf(w->failure, sizeof w->failure, "t=%llu: ", (unsigned long long)w->now);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(w->failure + k, sizeof w->failure - (size_t)k, fmt, ap);
  va_end(ap);
  sim_trace(w, "FAILED: %s", w->failure);
}

void sim_trace_print(const sim_world *w, size_t last) {
  if (!w->trace || w->trace_live) return;
  size_t n = w->trace_n < w->trace_cap ? w->trace_n : w->trace_cap;
  if (n > last) n = last;
  for (size_t i = w->trace_n - n; i < w->trace_n; i++) printf("  %s\n", w->trace[i % w->trace_cap]);
}
