/* node_resend: the proposals of this member's clients (writes and membership changes) that
 * were sent and are not applied yet, kept (raft thread) so that those a change of leader lost
 * are proposed again at once instead of failing at the request timeout.
 *
 * The rule (raft_propose_many, raft_propose_conf_change): a proposal sent in term t becomes
 * entries of term t or nothing.
 * Committed entries' terms never decrease along the log, so once the store has applied an
 * entry of a term above t, a request of that batch not applied by then never will be: it went
 * to a leader that died, stepped down or was transferring, and proposing it again cannot make
 * it happen twice. A snapshot hides which entries it holds, so the list is dropped when one is
 * installed (those requests wait for their timeout, as before).
 *
 * Within a term, a forward can be lost while its leader lives on: in a peer connection that
 * broke, or dropped by a full transport queue. The transport's loss epoch towards the leader
 * rises then, and the writes sent before the rise are sent again; the leader appends only
 * those it has not appended in this term (prop_dedup), so a second forward of one it read
 * is dropped there. */
#include <stdlib.h>
#include <string.h>

#include "daemon/node_i.h"

void node_sent_add(node *n, inbox_item *it, const node_sent_how *how) {
  it->term = how->term;
  it->lead = how->lead;
  it->epoch = how->epoch;
  it->sent_ns = how->now_ns;
  node_queue_push(&n->sent, *it);
}

/* Drops the first k items, freeing those not moved out (data set to NULL). */
static void sent_shift(inbox_queue *q, size_t k) {
  for (size_t i = 0; i < k; i++) free(q->v[i].data);
  if (k && q->n > k) memmove(q->v, q->v + k, (q->n - k) * sizeof *q->v);
  q->n -= k;
}

/* Every heartbeat, the whole list: one lost proposal must not keep those after it (applied) for the
 * request timeout. The pend table's lock is taken once per chunk. */
void node_sent_prune(node *n) {
  inbox_queue *q = &n->sent;
  unsigned char live[256];
  size_t keep = 0;
  for (size_t i = 0; i < q->n; i += sizeof live) {
    size_t m = q->n - i < sizeof live ? q->n - i : sizeof live;
    node_pend_live(n, q->v + i, m, live);
    for (size_t j = 0; j < m; j++) {
      if (live[j]) q->v[keep++] = q->v[i + j];
      else free(q->v[i + j].data);
    }
  }
  q->n = keep;
}

size_t node_sent_lost(node *n, uint64_t applied_term, inbox_queue *out) {
  inbox_queue *q = &n->sent;
  size_t k = 0, lost = 0;
  for (; k < q->n && q->v[k].term < applied_term; k++) {
    inbox_item *it = &q->v[k];
    if (!node_pend_has(n, it->conf_id)) continue; /* applied, or its client gave up */
    it->answered1 = 0;
    node_queue_push(out, *it);
    it->data = NULL;
    lost++;
  }
  sent_shift(q, k);
  return lost;
}

void node_sent_clear(node *n) { sent_shift(&n->sent, n->sent.n); }

size_t node_sent_retry(node *n, const node_sent_how *now, int64_t min_gap_ns, inbox_queue *out) {
  inbox_queue *q = &n->sent;
  size_t keep = 0, moved = 0;
  for (size_t i = 0; i < q->n; i++) {
    inbox_item *it = &q->v[i];
    int64_t gap = min_gap_ns << (it->tries < 4 ? it->tries : 4);
    if (it->kind == INBOX_PROPOSE && it->term == now->term && it->lead == now->lead &&
        it->epoch != now->epoch && now->now_ns - it->sent_ns >= gap &&
        node_pend_has(n, it->conf_id)) {
      it->tries++;
      it->answered1 = now->answered + 1;
      node_queue_push(out, *it);
      moved++;
      continue;
    }
    q->v[keep++] = *it;
  }
  q->n = keep;
  return moved;
}
