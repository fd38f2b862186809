/* node_pend: the requests of this member waiting for their entry, read or membership change:
 * request id -> caller's context and deadline. Ids grow by one per request, so a table indexed
 * by id modulo its size rarely collides (linear probing, doubling at half full). Every function
 * takes the table's lock (pmu); any thread. */
#include <stdlib.h>

#include "daemon/node_i.h"

static void pend_grow(pend_table *t) {
  size_t nc = t->cap ? t->cap * 2 : 1024;
  pend_slot *v = calloc(nc, sizeof *v);
  if (!v) abort();
  for (size_t i = 0; i < t->cap; i++)
    if (t->v[i].id) {
      size_t j = t->v[i].id & (nc - 1);
      while (v[j].id) j = (j + 1) & (nc - 1);
      v[j] = t->v[i];
    }
  free(t->v);
  t->v = v;
  t->cap = nc;
}

static void pend_put(pend_table *t, uint64_t id, void *ctx, int64_t deadline) {
  if (t->n * 2 >= t->cap) pend_grow(t);
  size_t j = id & (t->cap - 1);
  while (t->v[j].id) j = (j + 1) & (t->cap - 1);
  t->v[j] = (pend_slot){id, ctx, deadline};
  t->n++;
}

/* Removes id; returns its ctx or NULL. */
static void *pend_take(pend_table *t, uint64_t id) {
  if (!t->cap || !id) return NULL;
  size_t j = id & (t->cap - 1);
  while (t->v[j].id) {
    if (t->v[j].id == id) {
      void *ctx = t->v[j].ctx;
      /* Backward-shift deletion keeps probe chains intact. */
      size_t hole = j, k = j;
      for (;;) {
        k = (k + 1) & (t->cap - 1);
        if (!t->v[k].id) break;
        size_t home = t->v[k].id & (t->cap - 1);
        if (((k - home) & (t->cap - 1)) >= ((k - hole) & (t->cap - 1))) {
          t->v[hole] = t->v[k];
          hole = k;
        }
      }
      t->v[hole] = (pend_slot){0};
      t->n--;
      return ctx;
    }
    j = (j + 1) & (t->cap - 1);
  }
  return NULL;
}

static int pend_has(const pend_table *t, uint64_t id) {
  if (t->cap && id)
    for (size_t j = id & (t->cap - 1); t->v[j].id; j = (j + 1) & (t->cap - 1))
      if (t->v[j].id == id) return 1;
  return 0;
}

int node_pend_has(node *n, uint64_t id) {
  pthread_mutex_lock(&n->pmu);
  int live = pend_has(&n->pend, id);
  pthread_mutex_unlock(&n->pmu);
  return live;
}

void node_pend_live(node *n, const inbox_item *v, size_t k, unsigned char *live) {
  pthread_mutex_lock(&n->pmu);
  for (size_t i = 0; i < k; i++) live[i] = (unsigned char)pend_has(&n->pend, v[i].conf_id);
  pthread_mutex_unlock(&n->pmu);
}


void node_pend_put(node *n, uint64_t id, void *ctx, int64_t deadline) {
  pthread_mutex_lock(&n->pmu);
  pend_put(&n->pend, id, ctx, deadline);
  pthread_mutex_unlock(&n->pmu);
}

void *node_pend_take(node *n, uint64_t id) {
  pthread_mutex_lock(&n->pmu);
  void *ctx = pend_take(&n->pend, id);
  pthread_mutex_unlock(&n->pmu);
  return ctx;
}

size_t node_pend_expired(node *n, int64_t now, void **out, int64_t *deadlines, size_t max) {
  size_t ne = 0;
  pthread_mutex_lock(&n->pmu);
  for (size_t i = 0; i < n->pend.cap && ne < max; i++) {
    pend_slot *p = &n->pend.v[i];
    if (p->id && p->deadline < now) {
      deadlines[ne] = p->deadline;
      out[ne++] = pend_take(&n->pend, p->id);
      i = (size_t)-1; /* the table shifted: rescan */
    }
  }
  pthread_mutex_unlock(&n->pmu);
  return ne;
}
