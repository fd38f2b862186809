/* rng.c: the per-instance PRNG (xoshiro256**, seeded through splitmix64). The core calls no
 * random function of libc: every random choice (the randomized election timeout) comes from
 * here, so a seed replays a run exactly. */
#include "raft/core/raft_i.h"

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void raft_rng_seed(raft_rng *g, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) g->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t raft_rng_next(raft_rng *g) {
  uint64_t *s = g->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

uint64_t raft_rng_below(raft_rng *g, uint64_t n) {
  /* Rejection sampling: no modulo bias. */
  uint64_t limit = UINT64_MAX - (UINT64_MAX % n);
  uint64_t v;
  do {
    v = raft_rng_next(g);
  } while (v >= limit);
  return v % n;
}
