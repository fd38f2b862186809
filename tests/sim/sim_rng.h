/* sim_rng: the simulator's one seeded PRNG (splitmix64). Everything random in a run (faults,
 * delays, client ops, the cores' seeds) is drawn from it, so a seed replays a run exactly. */
#ifndef QUORUM_TESTS_SIM_SIM_RNG_H
#define QUORUM_TESTS_SIM_SIM_RNG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct sim_rng {
  uint64_t s;
} sim_rng;

static inline uint64_t sim_rng_next(sim_rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* Uniform in [0, n); n > 0. */
static inline uint64_t sim_rng_below(sim_rng *r, uint64_t n) { return sim_rng_next(r) % n; }

/* Uniform in [lo, hi]. */
static inline uint64_t sim_rng_range(sim_rng *r, uint64_t lo, uint64_t hi) {
  return lo + sim_rng_below(r, hi - lo + 1);
}

/* True with probability p (0..1). */
static inline bool sim_rng_chance(sim_rng *r, double p) {
  return (double)(sim_rng_next(r) >> 11) * (1.0 / 9007199254740992.0) < p;
}

#endif
