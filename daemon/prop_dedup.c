/* prop_dedup: a leader's per-term set of the requests it appended (see prop_dedup.h). */
#include "daemon/prop_dedup.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* splitmix64's finalizer: a bijection, so distinct ids of one member never collide. */
static uint64_t mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static uint64_t key_of(uint64_t member, uint64_t id) {
  uint64_t k = mix(id ^ mix(member + 0x9e3779b97f4a7c15ULL));
  return k ? k : 1;
}

static uint64_t mark_get(const prop_dedup_marks *m, uint64_t member) {
  for (size_t i = 0; i < m->n; i++)
    if (m->member[i] == member) return m->index[i] > m->all ? m->index[i] : m->all;
  return m->all;
}

static void mark_raise(prop_dedup_marks *m, uint64_t member, uint64_t index) {
  size_t i = 0;
  while (i < m->n && m->member[i] != member) i++;
  if (i == m->n) {
    if (m->n == PROP_DEDUP_MEMBERS) { /* no room: it counts for everyone */
      if (index > m->all) m->all = index;
      return;
    }
    m->member[m->n] = member;
    m->index[m->n++] = 0;
  }
  if (index > m->index[i]) m->index[i] = index;
}

static bool gen_has(const prop_dedup_gen *g, uint64_t k) {
  if (!g->cap) return false;
  size_t mask = g->cap - 1;
  for (size_t i = (size_t)k & mask;; i = (i + 1) & mask) {
    if (g->v[i] == k) return true;
    if (g->v[i] == 0) return false;
  }
}

static void gen_put(prop_dedup_gen *g, uint64_t k) {
  size_t mask = g->cap - 1;
  size_t i = (size_t)k & mask;
  while (g->v[i] && g->v[i] != k) i = (i + 1) & mask;
  if (!g->v[i]) {
    g->v[i] = k;
    g->n++;
  }
}

/* Room for one more key at a load of at most 1/2. */
static int gen_reserve(prop_dedup_gen *g) {
  if (2 * (g->n + 1) <= g->cap) return 0;
  size_t cap = g->cap ? 2 * g->cap : 256;
  uint64_t *v = calloc(cap, sizeof *v);
  if (!v) return -ENOMEM;
  prop_dedup_gen ng = {v, 0, cap, g->max};
  for (size_t i = 0; i < g->cap; i++)
    if (g->v[i]) gen_put(&ng, g->v[i]);
  free(g->v);
  *g = ng;
  return 0;
}

static void gen_clear(prop_dedup_gen *g) {
  free(g->v);
  *g = (prop_dedup_gen){0};
}

/* Forgets what g holds (no longer covered), keeping its table for the next generation: one
 * of a steady load's size, already mapped (a new table would page-fault in and grow by
 * doubling again). */
static void gen_drop(prop_dedup *d, prop_dedup_gen *g) {
  for (size_t i = 0; i < g->max.n; i++)
    mark_raise(&d->floor, g->max.member[i], g->max.index[i] + 1);
  if (g->max.all && g->max.all + 1 > d->floor.all) d->floor.all = g->max.all + 1;
  if (g->v) memset(g->v, 0, g->cap * sizeof *g->v);
  g->n = 0;
  g->max = (prop_dedup_marks){.n = 0};
}

void prop_dedup_init(prop_dedup *d, int64_t window_ns) {
  memset(d, 0, sizeof *d);
  d->window_ns = window_ns;
}

void prop_dedup_free(prop_dedup *d) {
  gen_clear(&d->cur);
  gen_clear(&d->old);
}

void prop_dedup_term(prop_dedup *d, uint64_t term) {
  if (term == d->term) return;
  gen_clear(&d->cur);
  gen_clear(&d->old);
  d->term = term;
  d->gen_start_ns = 0;
  d->floor = (prop_dedup_marks){.n = 0};
}

bool prop_dedup_covers(const prop_dedup *d, uint64_t member, uint64_t below) {
  return below + 1 >= mark_get(&d->floor, member);
}

bool prop_dedup_has(const prop_dedup *d, uint64_t member, uint64_t id) {
  uint64_t k = key_of(member, id);
  return gen_has(&d->cur, k) || gen_has(&d->old, k);
}

int prop_dedup_add(prop_dedup *d, uint64_t member, uint64_t id, uint64_t index, int64_t now_ns) {
  if (!d->cur.n) d->gen_start_ns = now_ns;
  if (now_ns - d->gen_start_ns >= d->window_ns) {
    /* The current generation is a window old: it becomes the old one, kept one window more
     * (every key of it then a window old at least); a current older than two windows goes. */
    gen_drop(d, &d->old);
    if (now_ns - d->gen_start_ns < 2 * d->window_ns) {
      prop_dedup_gen emptied = d->old;
      d->old = d->cur;
      d->cur = emptied;
    } else {
      gen_drop(d, &d->cur);
    }
    d->gen_start_ns = now_ns;
  }
  if (gen_reserve(&d->cur)) {
    mark_raise(&d->floor, member, index + 1);
    return -ENOMEM;
  }
  gen_put(&d->cur, key_of(member, id));
  mark_raise(&d->cur.max, member, index);
  return 0;
}

size_t prop_dedup_count(const prop_dedup *d) { return d->cur.n + d->old.n; }
