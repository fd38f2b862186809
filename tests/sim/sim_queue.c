/* sim_queue: the simulator's virtual time, a binary min-heap of events ordered by (time, seq);
 * seq is the order of scheduling, so equal times run in the order they were scheduled. */
#include <stdlib.h>

#include "tests/sim/sim.h"

static bool sim_ev_before(const sim_event *a, const sim_event *b) {
  return a->time < b->time || (a->time == b->time && a->seq < b->seq);
}

void sim_queue_push(sim_queue *q, sim_event ev) {
  if (q->n == q->cap) {
    q->cap = q->cap ? 2 * q->cap : 1024;
    sim_event *h = realloc(q->heap, q->cap * sizeof *h);
    if (!h) abort();
    q->heap = h;
  }
  ev.seq = q->seq++;
  size_t i = q->n++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!sim_ev_before(&ev, &q->heap[parent])) break;
    q->heap[i] = q->heap[parent];
    i = parent;
  }
  q->heap[i] = ev;
}

bool sim_queue_pop(sim_queue *q, sim_event *ev) {
  if (q->n == 0) return false;
  *ev = q->heap[0];
  sim_event last = q->heap[--q->n];
  size_t i = 0;
  for (;;) {
    size_t c = 2 * i + 1;
    if (c >= q->n) break;
    if (c + 1 < q->n && sim_ev_before(&q->heap[c + 1], &q->heap[c])) c++;
    if (!sim_ev_before(&q->heap[c], &last)) break;
    q->heap[i] = q->heap[c];
    i = c;
  }
  if (q->n) q->heap[i] = last;
  return true;
}

void sim_queue_free(sim_queue *q) {
  for (size_t i = 0; i < q->n; i++) sim_msg_free(q->heap[i].msg);
  free(q->heap);
  q->heap = NULL;
  q->n = q->cap = 0;
}
