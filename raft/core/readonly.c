/* readonly.c: ReadIndex (thesis §6.4). The leader records its commit index with the read's
 * context, broadcasts a heartbeat carrying the context, and once a majority (itself included)
 * acknowledged that heartbeat the read may be served at that index. Traps handled here
 * (raft.md §3.4): a new leader queues reads until it committed an entry of its own term
 * (etcd#7331); a duplicate pending context is ignored; a leader change drops every pending
 * read (reset), so a stale read state never answers a retried read. A single-voter leader
 * answers at once. */
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft_i.h"

static bool ctx_eq(const raft_buf *a, const raft_buf *b) {
  return a->len == b->len && (a->len == 0 || memcmp(a->base, b->base, a->len) == 0);
}

void raft_readonly_reset(raft_readonly *ro) {
  for (size_t i = 0; i < ro->n; i++) free(ro->q[i].ctx.base);
  ro->n = 0;
}

void raft_readonly_destroy(raft_readonly *ro) {
  raft_readonly_reset(ro);
  free(ro->q);
  ro->q = NULL;
  ro->cap = 0;
}

bool raft_readonly_add(raft_readonly *ro, uint64_t index, uint64_t from, const raft_buf *ctx) {
  for (size_t i = 0; i < ro->n; i++)
    if (ctx_eq(&ro->q[i].ctx, ctx)) return false;
  if (ro->n == ro->cap) {
    size_t cap = ro->cap ? ro->cap * 2 : 8;
    raft_read_req *p = realloc(ro->q, cap * sizeof *p);
    if (!p) RAFT_PANIC0("out of memory");
    ro->q = p;
    ro->cap = cap;
  }
  raft_read_req *q = &ro->q[ro->n];
  *q = (raft_read_req){.index = index, .from = from};
  if (raft_buf_copy(&q->ctx, ctx->base, ctx->len) != RAFT_OK) RAFT_PANIC0("out of memory");
  ro->n++;
  return true;
}

size_t raft_readonly_recv_ack(raft_readonly *ro, uint64_t from, const raft_buf *ctx) {
  for (size_t i = 0; i < ro->n; i++) {
    raft_read_req *q = &ro->q[i];
    if (!ctx_eq(&q->ctx, ctx)) continue;
    for (size_t k = 0; k < q->n_acks; k++)
      if (q->acks[k] == from) return q->n_acks;
    if (q->n_acks < RAFT_MAX_VOTERS) q->acks[q->n_acks++] = from;
    return q->n_acks;
  }
  return 0;
}

size_t raft_readonly_advance(raft_readonly *ro, const raft_buf *ctx, raft_read_req **out) {
  *out = NULL;
  size_t k = 0;
  bool found = false;
  for (; k < ro->n; k++) {
    if (ctx_eq(&ro->q[k].ctx, ctx)) {
      found = true;
      break;
    }
  }
  if (!found) return 0;
  size_t n = k + 1; /* the acked request and every earlier one */
  raft_read_req *res = malloc(n * sizeof *res);
  if (!res) RAFT_PANIC0("out of memory");
  memcpy(res, ro->q, n * sizeof *res);
  memmove(ro->q, ro->q + n, (ro->n - n) * sizeof *ro->q);
  ro->n -= n;
  *out = res;
  return n;
}

const raft_buf *raft_readonly_last_ctx(const raft_readonly *ro) {
  return ro->n ? &ro->q[ro->n - 1].ctx : NULL;
}

/* ---- node level ---- */

static void respond(raft *r, const raft_message *m, uint64_t index) {
  if (m->from == RAFT_NONE || m->from == r->id) {
    raft_add_read_state(r, index, &m->context);
    return;
  }
  raft_message resp = {.type = RAFT_MSG_READ_INDEX_RESP, .to = m->from, .index = index};
  if (raft_buf_copy(&resp.context, m->context.base, m->context.len) != RAFT_OK)
    RAFT_PANIC(r, "out of memory");
  raft_send(r, &resp);
}

int raft_leader_read_index(raft *r, const raft_message *m) {
  if (m->context.len == 0) return RAFT_E_INVAL;
  if (r->conf.n_voters == 1 && raft_progress_get(r, r->id)) {
    respond(r, m, r->log.committed);
    return RAFT_OK;
  }
  if (!raft_committed_entry_in_current_term(r)) {
    /* Our commit index may be behind the cluster's until our no-op commits (etcd#7331). */
    if (r->n_pending_reads == r->cap_pending_reads) {
      size_t cap = r->cap_pending_reads ? r->cap_pending_reads * 2 : 8;
      raft_message *p = realloc(r->pending_reads, cap * sizeof *p);
      if (!p) return RAFT_E_NOMEM;
      r->pending_reads = p;
      r->cap_pending_reads = cap;
    }
    if (raft_message_copy(&r->pending_reads[r->n_pending_reads], m) != RAFT_OK)
      return RAFT_E_NOMEM;
    r->n_pending_reads++;
    return RAFT_OK;
  }
  if (!raft_readonly_add(&r->ro, r->log.committed, m->from, &m->context)) return RAFT_OK;
  raft_readonly_recv_ack(&r->ro, r->id, &m->context);
  raft_bcast_heartbeat(r, &m->context);
  return RAFT_OK;
}

void raft_release_pending_reads(raft *r) {
  if (r->n_pending_reads == 0 || r->role != RAFT_LEADER ||
      !raft_committed_entry_in_current_term(r))
    return;
  raft_message *q = r->pending_reads;
  size_t n = r->n_pending_reads;
  r->pending_reads = NULL;
  r->n_pending_reads = r->cap_pending_reads = 0;
  for (size_t i = 0; i < n; i++) {
    raft_leader_read_index(r, &q[i]);
    raft_message_free(&q[i]);
  }
  free(q);
}

void raft_pending_reads_clear(raft *r) {
  for (size_t i = 0; i < r->n_pending_reads; i++) raft_message_free(&r->pending_reads[i]);
  r->n_pending_reads = 0;
}
