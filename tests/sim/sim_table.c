/* sim_table: the two small containers the invariant checks use: a map from a pair of u64 to a
 * u64 (open addressing) and a growable u64 array. */
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

static size_t sim_map_slot(const sim_map *m, uint64_t a, uint64_t b) {
  uint64_t h = (a * 0x9e3779b97f4a7c15ULL) ^ (b + 0x632be59bd9b4e019ULL + (a << 6));
  h ^= h >> 29;
  size_t i = (size_t)h & (m->cap - 1);
  while ((m->keys[2 * i] || m->keys[2 * i + 1]) &&
         !(m->keys[2 * i] == a && m->keys[2 * i + 1] == b))
    i = (i + 1) & (m->cap - 1);
  return i;
}

static void sim_map_grow(sim_map *m) {
  sim_map n = {.cap = m->cap ? 2 * m->cap : 1024};
  n.keys = calloc(2 * n.cap, sizeof *n.keys);
  n.vals = calloc(n.cap, sizeof *n.vals);
  if (!n.keys || !n.vals) abort();
  for (size_t i = 0; i < m->cap; i++) {
    if (!m->keys[2 * i] && !m->keys[2 * i + 1]) continue;
    size_t j = sim_map_slot(&n, m->keys[2 * i], m->keys[2 * i + 1]);
    n.keys[2 * j] = m->keys[2 * i];
    n.keys[2 * j + 1] = m->keys[2 * i + 1];
    n.vals[j] = m->vals[i];
    n.n++;
  }
  free(m->keys);
  free(m->vals);
  *m = n;
}

bool sim_map_get_or_put(sim_map *m, uint64_t a, uint64_t b, uint64_t *val) {
  if (2 * (m->n + 1) > m->cap) sim_map_grow(m);
  size_t i = sim_map_slot(m, a, b);
  if (m->keys[2 * i] || m->keys[2 * i + 1]) {
    *val = m->vals[i];
    return true;
  }
  m->keys[2 * i] = a;
  m->keys[2 * i + 1] = b;
  m->vals[i] = *val;
  m->n++;
  return false;
}

void sim_map_free(sim_map *m) {
  free(m->keys);
  free(m->vals);
  memset(m, 0, sizeof *m);
}

uint64_t sim_vec_get(const sim_vec *v, uint64_t i) { return i < v->n ? v->v[i] : 0; }

void sim_vec_set(sim_vec *v, uint64_t i, uint64_t x) {
  if (i >= v->cap) {
    size_t cap = v->cap ? v->cap : 1024;
    while (cap <= i) cap *= 2;
    uint64_t *p = realloc(v->v, cap * sizeof *p);
    if (!p) abort();
    memset(p + v->cap, 0, (cap - v->cap) * sizeof *p);
    v->v = p;
    v->cap = cap;
  }
  v->v[i] = x;
  if (i >= v->n) v->n = (size_t)i + 1;
}
