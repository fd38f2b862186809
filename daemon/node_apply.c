/* node_apply: the apply thread of the Raft driver and what feeds it: committed entries applied
 * to the tree store in log order (one store WriteBatch per group), membership and member
 * records, ReadIndex reads released once their index is applied, outcomes handed to the loop.
 * The raft thread queues entries (node_aq_push) or, on a lone idle member, applies them
 * itself (node_apply_inline). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/auth.h"
#include "daemon/node_i.h"

/* Adds or replaces m in the in-memory table (caller holds mu). */
void node_members_set_locked(node *n, const node_member *m) {
  for (size_t i = 0; i < n->n_members; i++)
    if (n->members[i].id == m->id) {
      n->members[i] = *m;
      return;
    }
  if (n->n_members < NODE_MAX_MEMBERS) n->members[n->n_members++] = *m;
}

static void members_del_locked(node *n, uint64_t id) {
  for (size_t i = 0; i < n->n_members; i++)
    if (n->members[i].id == id) {
      n->members[i] = n->members[--n->n_members];
      return;
    }
}

const node_member *node_member_find_locked(node *n, uint64_t id) {
  for (size_t i = 0; i < n->n_members; i++)
    if (n->members[i].id == id) return &n->members[i];
  return NULL;
}

/* etcd keeps its members and cluster version in its v2 store (under /0, out of the keys API's
 * sight), so each change of them takes store indexes and counts in the store stats as the
 * write etcd makes (counts): K hidden ones here, into *dp (made when NULL), so that
 * X-Etcd-Index, every later key's indexes and /v2/stats/store are the ones etcd would give. */
static void take_indexes(node *n, node_done **dp, unsigned k, stats_counter counts, int64_t now) {
  if (!*dp) {
    *dp = calloc(1, sizeof **dp);
    if (!*dp) abort();
  }
  size_t cap = (*dp)->n_events;
  store_take_indexes(n->s, k, counts, now, &(*dp)->events, &(*dp)->n_events, &cap);
}

/* Applies one committed entry; returns the outcome for the loop or NULL. */
static node_done *apply_entry(node *n, apply_item *e) {
  node_done *d = NULL;
  if (e->type == RAFT_ENTRY_CONF_CHANGE) {
    raft_conf_change cc;
    node_member_ctx mc;
    if (raft_conf_change_decode(e->data, e->len, &cc) == 0 &&
        node_member_decode(cc.context.base, cc.context.len, &mc) == 0) {
      if (e->index > store_applied(n->s)) {
        pthread_mutex_lock(&n->mu);
        if (cc.type == RAFT_CONF_REMOVE_NODE) members_del_locked(n, cc.node_id);
        else node_members_set_locked(n, &mc.m);
        pthread_mutex_unlock(&n->mu);
        if (cc.type == RAFT_CONF_REMOVE_NODE) {
          store_member_del(n->s, cc.node_id);
          store_removed_put(n->s, cc.node_id);
        } else {
          node_store_member_put(n, &mc.m);
        }
        /* etcd: an add creates the member's key, an update updates it, a remove deletes it
         * and creates the key that records the id as removed */
        if (cc.type == RAFT_CONF_REMOVE_NODE) {
          take_indexes(n, &d, 1, STATS_DELETE_SUCCESS, 0);
          take_indexes(n, &d, 1, STATS_CREATE_SUCCESS, 0);
        } else {
          take_indexes(n, &d, 1,
                       cc.type == RAFT_CONF_UPDATE_NODE ? STATS_UPDATE_SUCCESS : STATS_CREATE_SUCCESS,
                       0);
        }
      }
      if (mc.origin == n->cfg.id) {
        void *ctx = node_pend_take(n, cc.id);
        if (ctx) {
          if (!d) d = calloc(1, sizeof *d);
          if (!d) abort();
          d->ctx = ctx;
        }
      }
      if (d) d->res.etcd_index = store_index(n->s);
    }
    store_skip(n->s, e->index);
    return d;
  }
  if (!e->len) { /* a leader's empty entry */
    store_skip(n->s, e->index);
    return NULL;
  }
  proto_record rec;
  if (proto_record_decode((const char *)e->data, e->len, &rec)) {
    fprintf(stderr, "quorumd: fatal: log entry %" PRIu64 " is not a request record\n", e->index);
    abort();
  }
  if (rec.op == PROTO_OP_MEMBER) {
    node_member_ctx mc;
    if (e->index > store_applied(n->s) && node_member_decode((const uint8_t *)rec.value,
                                                             rec.value_len, &mc) == 0) {
      if (mc.m.id == n->cfg.id && rec.member == n->cfg.id) atomic_store(&n->published, 1);
      pthread_mutex_lock(&n->mu);
      const node_member *cur = node_member_find_locked(n, mc.m.id);
      int known = cur != NULL;
      if (known) node_members_set_locked(n, &mc.m);
      pthread_mutex_unlock(&n->mu);
      if (known) node_store_member_put(n, &mc.m);
      /* etcd's publish is a set of the member's attributes, skipped for a removed member. A
       * member publishes only once added, so "not removed by now" is etcd's "a member now",
       * decided from the log alone: a member that joined later and replays this entry knows
       * today's members, not those of then, and must take the indexes every member took. */
      if (!store_removed_has(n->s, mc.m.id))
        take_indexes(n, &d, 1, STATS_SETS_SUCCESS, rec.time);
    }
    store_skip(n->s, e->index);
    if (d) d->res.etcd_index = store_index(n->s);
    return d;
  }
  if (rec.op == PROTO_OP_BOOTSTRAP) {
    /* only first: a write committed before it (a leader that failed over before its record
     * was committed) means the indexes are already given out */
    if (e->index > store_applied(n->s) && store_index(n->s) == 0 && rec.prev_index > 1 &&
        rec.prev_index <= 2 * NODE_MAX_MEMBERS) {
      /* a create per initial member, then a set of the cluster version */
      take_indexes(n, &d, (unsigned)rec.prev_index - 1, STATS_CREATE_SUCCESS, rec.time);
      take_indexes(n, &d, 1, STATS_SETS_SUCCESS, rec.time);
    }
    store_skip(n->s, e->index);
    if (d) d->res.etcd_index = store_index(n->s);
    return d;
  }
  if (rec.op == PROTO_OP_AUTH) {
    d = calloc(1, sizeof *d);
    if (!d) abort();
    if (e->index > store_applied(n->s) && n->cfg.auth) {
      auth_writes w;
      auth_db_apply(n->cfg.auth, &rec, &d->res, &w);
      /* (d made above: take_indexes adds to it) */
      if (w.creates) take_indexes(n, &d, w.creates, STATS_CREATE_SUCCESS, rec.time);
      if (w.updates) take_indexes(n, &d, w.updates, STATS_UPDATE_SUCCESS, rec.time);
      if (w.deletes) take_indexes(n, &d, w.deletes, STATS_DELETE_SUCCESS, rec.time);
      for (unsigned i = 0; i < w.create_fails; i++) stats_inc(n->st, STATS_CREATE_FAIL);
      for (unsigned i = 0; i < w.delete_fails; i++) stats_inc(n->st, STATS_DELETE_FAIL);
    }
    store_skip(n->s, e->index);
    if (rec.member == n->cfg.id && rec.id) d->ctx = node_pend_take(n, rec.id);
    if (!d->ctx && !d->n_events) {
      store_result_free(&d->res);
      free(d->events);
      free(d);
      return NULL;
    }
    if (!d->ctx) store_result_free(&d->res);
    d->res.etcd_index = store_index(n->s);
    return d;
  }
  d = calloc(1, sizeof *d);
  if (!d) abort();
  size_t ce = 0;
  if (store_apply(n->s, e->index, &rec, &d->res, &d->events, &d->n_events, &ce)) {
    node_fatal("cannot apply log entry %" PRIu64 " (the tree store cannot be read)", e->index);
  }
  if (rec.member == n->cfg.id && rec.id) {
    d->ctx = node_pend_take(n, rec.id);
  }
  if (!d->ctx && !d->n_events) {
    store_result_free(&d->res);
    free(d->events);
    free(d);
    return NULL;
  }
  if (!d->ctx) store_result_free(&d->res);
  return d;
}

static void reads_defer(apply_queue *q, const apply_item *it) {
  if (q->n == q->cap) {
    size_t nc = q->cap ? q->cap * 2 : 64;
    apply_item *v = realloc(q->v, nc * sizeof *v);
    if (!v) abort();
    q->v = v;
    q->cap = nc;
  }
  q->v[q->n++] = *it;
}

/* The outcome of a read whose index is applied (the group is written before it is delivered). */
static node_done *read_ready(node *n, uint64_t read_id) {
  void *ctx = node_pend_take(n, read_id);
  if (!ctx) return NULL;
  node_done *d = calloc(1, sizeof *d);
  if (!d) abort();
  d->ctx = ctx;
  d->res.etcd_index = store_index(n->s);
  return d;
}

static void apply_batch(node *n, apply_queue *b) {
  node_done *head = NULL, *last = NULL;
  uint64_t term = n->applied_term;
  for (size_t i = 0; i < b->n; i++) {
    node_done *d;
    if (b->v[i].type == APPLY_READ) {
      reads_defer(&n->reads_waiting, &b->v[i]);
      continue;
    }
    if (b->v[i].term > term) term = b->v[i].term;
    d = apply_entry(n, &b->v[i]);
    free(b->v[i].data);
    if (!d) continue;
    if (last) last->next = d;
    else head = d;
    last = d;
  }
  int rc = store_group_flush(n->s);
  if (rc) node_fatal("cannot write the tree store: %s", strerror(-rc));
  uint64_t applied = store_applied(n->s);
  /* (after every pend_take of these entries: a request seen waiting after this is read is
   * above it, if in the log at all; node_resend.c) */
  atomic_store(&n->answered, applied);
  /* Reads whose index is now applied can be answered. */
  size_t keep = 0;
  for (size_t i = 0; i < n->reads_waiting.n; i++) {
    apply_item *it = &n->reads_waiting.v[i];
    if (it->index > applied) {
      n->reads_waiting.v[keep++] = *it;
      continue;
    }
    node_done *d = read_ready(n, it->read_id);
    if (!d) continue;
    if (last) last->next = d;
    else head = d;
    last = d;
  }
  n->reads_waiting.n = keep;
  atomic_fetch_add(&n->st->proposals_committed, b->n);
  b->n = 0;
  if (head) n->cb(n->cb_arg, head);
  /* A later term's entry applied with all before it: the raft thread proposes again what its
   * own clients sent in earlier terms and did not get (node_resend.c). */
  if (term > n->applied_term) {
    n->applied_term = term;
    node_inbox_push(n, (inbox_item){.kind = INBOX_TERM_APPLIED, .conf_id = term});
  }
  /* Now and then the store is made durable (so that the log below can be deleted): after the
   * answers are on their way, which do not depend on it (the log holds what they report). */
  if (applied - atomic_load(&n->synced_applied) >= n->cfg.keep) {
    uint64_t durable = store_sync_applied(n->s);
    if (durable) atomic_store(&n->synced_applied, durable);
  }
}

void *node_apply_main(void *arg) {
  node *n = arg;
  pthread_setname_np(pthread_self(), "quorumd-apply");
  apply_queue batch = {0};
  pthread_mutex_lock(&n->mu);
  for (;;) {
    /* applying set here means the raft thread is applying inline: wait for it. */
    while ((!n->aq.n || n->applying) && !n->raft_done) pthread_cond_wait(&n->apply_cv, &n->mu);
    while (n->applying) pthread_cond_wait(&n->idle_cv, &n->mu);
    if (!n->aq.n) break;
    apply_queue t = n->aq;
    n->aq = batch;
    batch = t;
    n->applying = 1;
    pthread_mutex_unlock(&n->mu);
    apply_batch(n, &batch);
    pthread_mutex_lock(&n->mu);
    n->applying = 0;
    pthread_cond_broadcast(&n->idle_cv);
  }
  pthread_mutex_unlock(&n->mu);
  free(batch.v);
  return NULL;
}

/* Raft thread: queues committed entries for the apply thread (copies their data). */
void node_aq_push(node *n, const raft_entry *ents, size_t k) {
  pthread_mutex_lock(&n->mu);
  if (n->aq.n + k > n->aq.cap) {
    size_t nc = n->aq.cap ? n->aq.cap : 256;
    while (nc < n->aq.n + k) nc *= 2;
    apply_item *v = realloc(n->aq.v, nc * sizeof *v);
    if (!v) abort();
    n->aq.v = v;
    n->aq.cap = nc;
  }
  for (size_t i = 0; i < k; i++) {
    apply_item *a = &n->aq.v[n->aq.n++];
    a->index = ents[i].index;
    a->term = ents[i].term;
    a->type = ents[i].type;
    a->len = ents[i].data.len;
    a->data = NULL;
    if (a->len) {
      a->data = malloc(a->len);
      if (!a->data) abort();
      memcpy(a->data, ents[i].data.base, a->len);
    }
  }
  pthread_cond_signal(&n->apply_cv);
  pthread_mutex_unlock(&n->mu);
}

/* Raft thread: applies committed entries itself when the apply thread is idle and nothing is
 * queued, saving a thread hand-over per write at low load (the apply thread takes over as soon
 * as batches queue up). In a cluster only small batches, so that the raft thread stays free
 * for its peers when the load is high. Returns whether it applied them. */
#define NODE_INLINE_MAX_CLUSTER 4

int node_apply_inline(node *n, const raft_entry *ents, size_t k) {
  if (n->status.raft.conf.n_voters != 1 && k > NODE_INLINE_MAX_CLUSTER) return 0;
  pthread_mutex_lock(&n->mu);
  int ok = !n->aq.n && !n->applying;
  if (ok) n->applying = 1;
  pthread_mutex_unlock(&n->mu);
  if (!ok) return 0;
  apply_queue *q = &n->inline_q;
  if (k > q->cap) {
    apply_item *v = realloc(q->v, k * sizeof *v);
    if (!v) abort();
    q->v = v;
    q->cap = k;
  }
  q->n = k;
  for (size_t i = 0; i < k; i++) {
    apply_item *a = &q->v[i];
    *a = (apply_item){.index = ents[i].index, .term = ents[i].term, .type = ents[i].type,
                      .len = ents[i].data.len};
    if (a->len) {
      a->data = malloc(a->len);
      if (!a->data) abort();
      memcpy(a->data, ents[i].data.base, a->len);
    }
  }
  apply_batch(n, q);
  pthread_mutex_lock(&n->mu);
  n->applying = 0;
  pthread_cond_broadcast(&n->idle_cv);
  pthread_cond_signal(&n->apply_cv);
  pthread_mutex_unlock(&n->mu);
  return 1;
}

/* Raft thread: queues ready reads behind the committed entries queued so far. */
void node_aq_push_reads(node *n, const raft_read_state *rs, size_t k) {
  pthread_mutex_lock(&n->mu);
  for (size_t i = 0; i < k; i++) {
    uint64_t seq = 0;
    if (rs[i].ctx.len != 8) continue;
    for (int b = 0; b < 8; b++) seq = seq << 8 | rs[i].ctx.base[b];
    read_batch *rb = NULL;
    for (size_t j = 0; j < n->n_read_batches; j++)
      if (n->read_batches[j].seq == seq) rb = &n->read_batches[j];
    if (!rb) continue;
    if (n->aq.n + rb->n > n->aq.cap) {
      size_t nc = n->aq.cap ? n->aq.cap : 256;
      while (nc < n->aq.n + rb->n) nc *= 2;
      apply_item *v = realloc(n->aq.v, nc * sizeof *v);
      if (!v) abort();
      n->aq.v = v;
      n->aq.cap = nc;
    }
    for (size_t j = 0; j < rb->n; j++)
      n->aq.v[n->aq.n++] =
          (apply_item){.index = rs[i].index, .read_id = rb->ids[j], .type = APPLY_READ};
    free(rb->ids);
    *rb = n->read_batches[--n->n_read_batches];
  }
  pthread_cond_signal(&n->apply_cv);
  pthread_mutex_unlock(&n->mu);
}

/* Raft thread: waits until everything queued is applied (before installing a snapshot or
 * making one). */
void node_wait_applied(node *n) {
  pthread_mutex_lock(&n->mu);
  while (n->aq.n || n->applying) pthread_cond_wait(&n->idle_cv, &n->mu);
  pthread_mutex_unlock(&n->mu);
}

