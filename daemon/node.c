/* node: the Raft driver of one member (see header): start and stop, submissions from the
 * loop, the raft thread (core, ready batches, proposals held while there is no leader) and
 * the hand-over of outcomes to the HTTP loop. The apply thread is in node_apply.c, the table
 * of waiting requests in node_pend.c, peers in node_transport.c, snapshots in node_snapshot.c.
 *
 *   HTTP loop --inbox+async--> raft thread: propose; ready: persist (fsync) → send → aq
 *   aq --apply thread: store_apply, one group write--> done --async--> HTTP loop
 */
#include "daemon/node.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/node_i.h"
#include "raft/storage/wal_import.h"
#include "raft/storage/wal_storage.h"

int64_t node_mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void node_fatal(const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "quorumd: fatal: %s\n", msg);
  fflush(stderr);
  _exit(1);
}

static int64_t wall_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ------------------------------------------------------------------ outcomes to the loop */

void node_done_push(node *n, node_done *d) {
  d->next = NULL;
  n->cb(n->cb_arg, d);
}

void node_notify_recovered(node *n) {
  node_done *d = calloc(1, sizeof *d);
  if (!d) abort();
  d->recovered = 1;
  node_done_push(n, d);
}

/* Fails a request that could not be committed (loop thread or raft thread). */
static void fail_request(node *n, void *ctx, const char *cause) {
  node_done *d = calloc(1, sizeof *d);
  if (!d) abort();
  d->ctx = ctx;
  store_result_error(&d->res, 300, cause, strlen(cause), store_index(n->s));
  d->res.status = 500;
  node_done_push(n, d);
}

/* Every 100 ms on the loop: requests past their deadline get error 300, with etcd's cause
 * (parseProposeCtxErr): one that began in the two election timeouts before a new leader was
 * seen probably went to the leader that failed. */
static void on_expire_timer(uv_timer_t *t) {
  node *n = t->data;
  int64_t now = node_mono_ns();
  int64_t elected = atomic_load(&n->lead_elected_ns);
  int64_t window = 2 * (int64_t)n->cfg.election_ms * 1000000;
  void *expired[64];
  int64_t deadlines[64];
  size_t ne;
  do {
    ne = node_pend_expired(n, now, expired, deadlines, 64);
    for (size_t i = 0; i < ne; i++) {
      if (!expired[i]) continue;
      int64_t start = deadlines[i] - (int64_t)n->cfg.request_timeout_ms * 1000000;
      fail_request(n, expired[i],
                   elected && start > elected - window && start < elected
                       ? "etcdserver: request timed out, possibly due to previous leader failure"
                       : "etcdserver: request timed out");
    }
  } while (ne == 64);
}

/* ------------------------------------------------------------------ submission */

/* Appends to a queue of inbox items (the inbox, the held proposals, this iteration's batch). */
void node_queue_push(inbox_queue *q, inbox_item it) {
  if (q->n == q->cap) {
    size_t nc = q->cap ? q->cap * 2 : 64;
    inbox_item *v = realloc(q->v, nc * sizeof *v);
    if (!v) abort();
    q->v = v;
    q->cap = nc;
  }
  q->v[q->n++] = it;
}

void node_inbox_push(node *n, inbox_item it) {
  pthread_mutex_lock(&n->mu);
  node_queue_push(&n->inbox, it);
  int wake = n->inbox.n == 1;
  pthread_mutex_unlock(&n->mu);
  if (wake) uv_async_send(&n->wake);
}

int node_submit(node *n, proto_record *rec, void *ctx) {
  rec->member = n->cfg.id;
  rec->id = atomic_fetch_add(&n->next_id, 1) + 1;
  inbox_item it = {.kind = INBOX_PROPOSE, .conf_id = ctx ? rec->id : 0};
  size_t cap = 0;
  if (proto_record_encode(rec, &it.data, &it.len, &cap)) {
    free(it.data);
    return -ENOMEM;
  }
  if (ctx) {
    node_pend_put(n, rec->id, ctx, node_mono_ns() + (int64_t)n->cfg.request_timeout_ms * 1000000);
  }
  node_inbox_push(n, it);
  return 0;
}

int node_submit_conf(node *n, uint8_t type, const node_member *m, void *ctx, uint64_t *idp) {
  uint64_t id = atomic_fetch_add(&n->next_id, 1) + 1;
  *idp = id;
  node_member_ctx mc = {.origin = n->cfg.id, .m = *m};
  inbox_item it = {.kind = INBOX_CONF, .conf_type = type, .conf_node = m->id, .conf_id = id};
  if (node_member_encode(&mc, &it.data, &it.len)) return -ENOMEM;
  node_pend_put(n, id, ctx, node_mono_ns() + (int64_t)n->cfg.request_timeout_ms * 1000000);
  node_inbox_push(n, it);
  return 0;
}

int node_read(node *n, void *ctx, uint64_t *idp) {
  uint64_t id = atomic_fetch_add(&n->next_id, 1) + 1;
  *idp = id;
  inbox_item it = {.kind = INBOX_READ, .conf_id = id};
  node_pend_put(n, id, ctx, node_mono_ns() + (int64_t)n->cfg.request_timeout_ms * 1000000);
  node_inbox_push(n, it);
  return 0;
}

void *node_cancel(node *n, uint64_t id) { return node_pend_take(n, id); }

size_t node_members(node *n, node_member *out, size_t max) {
  pthread_mutex_lock(&n->mu);
  size_t k = n->n_members < max ? n->n_members : max;
  memcpy(out, n->members, k * sizeof *out);
  pthread_mutex_unlock(&n->mu);
  return k;
}

void node_get_status(node *n, node_status *st) {
  pthread_mutex_lock(&n->mu);
  *st = n->status;
  pthread_mutex_unlock(&n->mu);
  st->applied = store_applied(n->s);
}

uint64_t node_last_index(node *n) {
  pthread_mutex_lock(&n->mu);
  uint64_t v = n->status.last_index;
  pthread_mutex_unlock(&n->mu);
  return v;
}

void node_set_partition(node *n, uint64_t peer, bool drop) {
  inbox_item it = {.kind = INBOX_PARTITION, .conf_node = peer, .conf_type = drop};
  node_inbox_push(n, it);
}

void node_break_peer(node *n, uint64_t peer) {
  inbox_item it = {.kind = INBOX_BREAK, .conf_node = peer};
  node_inbox_push(n, it);
}

void node_drop_next(node *n, uint64_t peer, uint8_t type, unsigned count) {
  inbox_item it = {.kind = INBOX_DROP_NEXT, .conf_node = peer, .conf_type = type, .conf_id = count};
  node_inbox_push(n, it);
}

/* ------------------------------------------------------------------ raft thread */

static void raft_log_cb(void *arg, int level, const char *text) {
  node *n = arg;
  if (level >= atomic_load_explicit(&n->log_level, memory_order_relaxed))
    fprintf(stderr, "quorumd: raft: %s\n", text);
}

void node_set_log_level(node *n, int level) { atomic_store(&n->log_level, level); }
int node_log_level(node *n) { return atomic_load(&n->log_level); }

static void publish_status(node *n) {
  node_status st = {0};
  raft_get_status(n->r, &st.raft);
  st.role = st.raft.role;
  st.term = st.raft.term;
  st.lead = st.raft.lead;
  st.commit = st.raft.commit;
  st.last_index = raft_wal_last_index(n->wal);
  pthread_mutex_lock(&n->mu);
  if (st.role == RAFT_LEADER && n->status.role != RAFT_LEADER) n->leader_since_ns = wall_ns();
  st.leader_since_ns = n->leader_since_ns;
  st.leader_changes = n->status.leader_changes +
                      (st.lead != RAFT_NONE && st.lead != n->status.lead); /* (as etcd counts) */
  st.installing = n->status.installing;
  n->status = st;
  pthread_mutex_unlock(&n->mu);
}

/* Proposes a membership change item (writes go in batches: flush_props); returns 0, or
 * RAFT_E_DROPPED when there is no leader yet. */
static int propose_conf(node *n, inbox_item *it) {
  raft_conf_change cc = {.type = it->conf_type, .node_id = it->conf_node, .id = it->conf_id,
                         .context = {(uint8_t *)it->data, it->len}};
  return raft_propose_conf_change(n->r, &cc);
}

/* The request id an item answers (0: none), and for a proposal its op. */
static uint64_t item_request(const inbox_item *it, uint8_t *op) {
  *op = 0;
  if (it->kind == INBOX_CONF || it->kind == INBOX_READ) return it->conf_id;
  proto_record rec;
  if (it->kind != INBOX_PROPOSE || proto_record_decode(it->data, it->len, &rec)) return 0;
  *op = rec.op;
  return rec.id;
}

static void item_fail(node *n, inbox_item *it, const char *cause) {
  uint8_t op;
  void *ctx = node_pend_take(n, item_request(it, &op));
  if (ctx) fail_request(n, ctx, cause);
}

/* Items wait here while there is no leader; they are proposed when one appears (or expire). */
static void waiting_push(node *n, inbox_item it) { node_queue_push(&n->waiting, it); }

/* A follower whose leader has been silent for three heartbeats holds its proposals and reads
 * instead of forwarding them: a leader that died takes forwarded messages with it, and their
 * clients would wait for a timeout although a new leader is elected in about a second. */
static int leader_silent(node *n) {
  if (n->status.role == RAFT_LEADER || n->status.lead == RAFT_NONE) return 0;
  return node_mono_ns() - n->lead_contact_ns > 3 * (int64_t)n->hb_ms * 1000000;
}

/* A read to ask a read index for at the end of this iteration. */
static void reads_add(node *n, uint64_t id) {
  if (n->n_reads_new == n->cap_reads_new) {
    size_t nc = n->cap_reads_new ? n->cap_reads_new * 2 : 64;
    uint64_t *v = realloc(n->reads_new, nc * sizeof *v);
    if (!v) abort();
    n->reads_new = v;
    n->cap_reads_new = nc;
  }
  n->reads_new[n->n_reads_new++] = id;
}

static void handle_item(node *n, inbox_item *it);
static void flush_props(node *n);

/* Where a proposal made now goes: its term, the leader and the loss epoch towards it. */
static node_sent_how sent_how(node *n) {
  node_sent_how h = {.term = raft_term(n->r), .lead = raft_lead(n->r), .now_ns = node_mono_ns()};
  if (h.lead != RAFT_NONE && h.lead != n->cfg.id && n->tr)
    h.epoch = raft_transport_loss_epoch(n->tr, h.lead);
  return h;
}

/* Writes forwarded to this term's leader on a connection that lost messages since are sent
 * to it again (node_resend.c); it drops those it had read. */
static void retry_forwards(node *n) {
  if (!n->sent.n || n->stopping_raft || leader_silent(n)) return;
  node_sent_how now = sent_how(n);
  if (now.lead == RAFT_NONE || now.lead == n->cfg.id) return;
  now.answered = atomic_load(&n->answered); /* (before node_sent_retry sees requests waiting) */
  inbox_queue again = {0};
  size_t k = node_sent_retry(n, &now, 2 * (int64_t)n->hb_ms * 1000000, &again);
  if (k && NODE_LOG_INFO >= node_log_level(n))
    fprintf(stderr, "quorumd: sending %zu request(s) to the leader %" PRIx64 " again: messages "
                    "to it were lost since (a connection broke or a queue was full)\n",
            k, now.lead);
  /* Straight to this iteration's batch, never to `waiting`: proposed later, in another term,
   * it could meet its first forward committed by that term's leader. */
  for (size_t i = 0; i < again.n; i++) node_queue_push(&n->props_new, again.v[i]);
  free(again.v);
  flush_props(n); /* (now, in the term just checked) */
}

/* An entry of `term` is applied: what a lost leader took with it is proposed again. */
static void handle_term_applied(node *n, uint64_t term) {
  inbox_queue lost = {0};
  size_t k = node_sent_lost(n, term, &lost);
  if (k && NODE_LOG_INFO >= node_log_level(n))
    fprintf(stderr, "quorumd: proposing %zu request(s) again: their term's leader never "
                    "committed them (an entry of term %" PRIu64 " is applied without them)\n",
            k, term);
  for (size_t i = 0; i < lost.n; i++) handle_item(n, &lost.v[i]);
  free(lost.v);
}

static void handle_item(node *n, inbox_item *it) {
  if (it->kind == INBOX_TERM_APPLIED) {
    handle_term_applied(n, it->conf_id);
    return;
  }
  if (it->kind == INBOX_PARTITION) {
    node_transport_partition(n, it->conf_node, it->conf_type != 0);
    return;
  }
  if (it->kind == INBOX_BREAK) {
    node_transport_break(n, it->conf_node);
    return;
  }
  if (it->kind == INBOX_DROP_NEXT) {
    node_transport_drop_next(n, it->conf_node, it->conf_type, (unsigned)it->conf_id);
    return;
  }
  if (it->kind == INBOX_TRANSFER) {
    raft_transfer_leader(n->r, it->conf_node);
    return;
  }
  if (it->kind == INBOX_READ) {
    reads_add(n, it->conf_id);
    return;
  }
  if (leader_silent(n) && !n->stopping_raft) {
    waiting_push(n, *it);
    return;
  }
  if (it->kind == INBOX_PROPOSE) { /* proposed together at the end of the iteration */
    node_queue_push(&n->props_new, *it);
    return;
  }
  node_sent_how how = sent_how(n); /* (its term: the proposal's tag) */
  int rc = propose_conf(n, it); /* (INBOX_CONF: the other kinds returned above) */
  if (rc == RAFT_E_DROPPED && !n->stopping_raft) {
    waiting_push(n, *it);
    return;
  }
  if (rc == RAFT_E_CONF_PENDING) item_fail(n, it, "etcdserver: unhandled error: a membership change is in progress");
  else if (rc) item_fail(n, it, raft_strerror(rc));
  if (!rc && it->conf_id) node_sent_add(n, it, &how);
  else free(it->data);
}

/* Proposes every record collected in this iteration as one batch (one append message per
 * follower, one forward from a follower). */
static void flush_props(node *n) {
  size_t k = n->props_new.n;
  if (!k) return;
  raft_buf *bufs = malloc(k * sizeof *bufs);
  if (!bufs) abort();
  for (size_t i = 0; i < k; i++)
    bufs[i] = (raft_buf){(uint8_t *)n->props_new.v[i].data, n->props_new.v[i].len};
  node_sent_how how = sent_how(n); /* (its term: the batch's tag) */
  /* Below which none of these requests can be in the log (a leader deduplicating forwards
   * needs it). For a first send in this term, this member's commit index: nothing of it can be
   * appended before this forward is read, and a later send of it lands above the leader's last
   * index, which is at or above this commit (a follower applying behind still passes). For one
   * sent again, the applied index read before its request was seen waiting (it may be in the
   * log already, committed, not applied). */
  uint64_t below = n->status.commit;
  for (size_t i = 0; i < k; i++)
    if (n->props_new.v[i].answered1 && n->props_new.v[i].answered1 - 1 < below)
      below = n->props_new.v[i].answered1 - 1;
  int rc = raft_propose_many_at(n->r, bufs, k, below);
  free(bufs);
  for (size_t i = 0; i < k; i++) {
    inbox_item *it = &n->props_new.v[i];
    if (rc == RAFT_E_DROPPED && !n->stopping_raft) {
      /* One sent again in its term goes back to the sent list as it was: whether it was
       * appended in that term is for node_resend.c to tell (it is of the last term there) */
      if (it->answered1) node_queue_push(&n->sent, *it);
      else waiting_push(n, *it);
      continue;
    }
    if (rc) item_fail(n, it, raft_strerror(rc));
    if (!rc && it->conf_id) node_sent_add(n, it, &how);
    else free(it->data);
  }
  n->props_new.n = 0;
}

/* Asks for one read index for every read collected in this iteration. */
static void flush_reads(node *n) {
  if (!n->n_reads_new) return;
  if (leader_silent(n) && !n->stopping_raft) {
    for (size_t i = 0; i < n->n_reads_new; i++)
      waiting_push(n, (inbox_item){.kind = INBOX_READ, .conf_id = n->reads_new[i]});
    n->n_reads_new = 0;
    return;
  }
  uint64_t seq = ++n->read_batch_seq;
  uint8_t ctx[8];
  for (int b = 0; b < 8; b++) ctx[b] = (uint8_t)(seq >> (56 - 8 * b));
  int rc = raft_read_index(n->r, ctx, 8);
  if (rc == 0) {
    if (n->n_read_batches == n->cap_read_batches) {
      size_t nc = n->cap_read_batches ? n->cap_read_batches * 2 : 16;
      read_batch *v = realloc(n->read_batches, nc * sizeof *v);
      if (!v) abort();
      n->read_batches = v;
      n->cap_read_batches = nc;
    }
    uint64_t *ids = malloc(n->n_reads_new * sizeof *ids);
    if (!ids) abort();
    memcpy(ids, n->reads_new, n->n_reads_new * sizeof *ids);
    n->read_batches[n->n_read_batches++] = (read_batch){seq, ids, n->n_reads_new, node_mono_ns()};
  } else {
    for (size_t i = 0; i < n->n_reads_new; i++) {
      inbox_item it = {.kind = INBOX_READ, .conf_id = n->reads_new[i]};
      if (rc == RAFT_E_DROPPED && !n->stopping_raft) waiting_push(n, it);
      else item_fail(n, &it, raft_strerror(rc));
    }
  }
  n->n_reads_new = 0;
}

/* Whether a waiting item still has a client (or needs none: SYNC and member records). A
 * client told "timed out" should not see its write happen much later. */
static int item_live(node *n, inbox_item *it) {
  uint8_t op;
  uint64_t id = item_request(it, &op);
  return op == PROTO_OP_SYNC || op == PROTO_OP_MEMBER || node_pend_has(n, id);
}

/* Drops waiting items whose requests are gone (expired on the loop). */
static void prune_waiting(node *n) {
  size_t k = 0;
  for (size_t i = 0; i < n->waiting.n; i++) {
    inbox_item *it = &n->waiting.v[i];
    if (item_live(n, it)) n->waiting.v[k++] = *it;
    else free(it->data);
  }
  n->waiting.n = k;
  /* Read batches a lost leadership will never answer: dropped once their requests expired. */
  for (size_t i = 0; i < n->n_read_batches;) {
    read_batch *rb = &n->read_batches[i];
    int live = 0;
    for (size_t j = 0; j < rb->n && !live; j++) live = node_pend_has(n, rb->ids[j]);
    if (live) {
      i++;
      continue;
    }
    free(rb->ids);
    *rb = n->read_batches[--n->n_read_batches];
  }
}

/* Read batches asked more than `after` ns ago (every one: after < 0) are asked again: the
 * request or its answer may have been lost with a connection or a leader (a restarted
 * member's first messages, a leader that stepped down or died), and any read index obtained
 * after the read arrived serves it. Their clients would otherwise wait for the request
 * timeout. */
static void reask_reads_older(node *n, int64_t after) {
  int64_t now = node_mono_ns();
  int any = 0;
  for (size_t i = 0; i < n->n_read_batches;) {
    read_batch *rb = &n->read_batches[i];
    if (after >= 0 && now - rb->asked_ns <= after) {
      i++;
      continue;
    }
    for (size_t j = 0; j < rb->n; j++)
      if (node_pend_has(n, rb->ids[j])) reads_add(n, rb->ids[j]);
    free(rb->ids);
    *rb = n->read_batches[--n->n_read_batches];
    any = 1;
  }
  if (any) flush_reads(n);
}

/* Every 10 heartbeats: those unanswered for an election timeout. */
static void reask_reads(node *n) { reask_reads_older(n, (int64_t)n->cfg.election_ms * 1000000); }

/* A leader whose store has given out no index yet (a new cluster) proposes the indexes etcd's
 * bootstrap takes: one per initial member (its member key) and one for the cluster version.
 * With every member's publication at start that makes a new cluster of N members start at
 * index 2N+1, as etcd's. Applied only while the store index is still 0, so a second proposal
 * (after a failover) or one committed behind a write changes nothing. */
static void propose_bootstrap(node *n) {
  if (store_index(n->s) != 0) return;
  raft_status st;
  raft_get_status(n->r, &st);
  if (!st.conf.n_voters) return;
  proto_record rec = {.op = PROTO_OP_BOOTSTRAP, .path = "/", .path_len = 1,
                      .prev_index = st.conf.n_voters + 1, .member = n->cfg.id,
                      .time = wall_ns()};
  char *buf = NULL;
  size_t len = 0, cap = 0;
  if (proto_record_encode(&rec, &buf, &len, &cap) == 0) (void)raft_propose(n->r, buf, len);
  free(buf);
}

static void retry_waiting(node *n) {
  if (!n->waiting.n) return;
  inbox_queue w = n->waiting;
  n->waiting = (inbox_queue){0};
  for (size_t i = 0; i < w.n; i++) {
    if (item_live(n, &w.v[i])) handle_item(n, &w.v[i]);
    else free(w.v[i].data);
  }
  free(w.v);
  flush_props(n);
  flush_reads(n);
}

static void process_ready(node *n) {
  while (raft_has_ready(n->r)) {
    raft_ready rd;
    raft_get_ready(n->r, &rd);
    if (rd.has_snapshot) {
      node_sent_clear(n);
      node_snapshot_install(n, &rd.snapshot);
      if (n->cfg.die_after_snapshot_install) {
        fprintf(stderr, "quorumd: test hook: killed after installing the snapshot in the store\n");
        raise(SIGKILL);
      }
    }
    /* A leader sends before its own write (Raft thesis §10.2.1): followers append while the
     * leader syncs, and the leader counts its own entries only after raft_advance, i.e. once
     * they are durable. Not when this batch changes term or vote: those go to disk first. */
    uint8_t role = rd.soft_changed ? rd.soft.role : n->status.role;
    int send_first = role == RAFT_LEADER && n->status.role == RAFT_LEADER && !rd.has_snapshot &&
                     (!rd.hs_changed || (rd.hs.term == n->status.term &&
                                         rd.hs.vote == n->persisted_vote));
    if (send_first) node_transport_send_all(n, rd.msgs, rd.n_msgs);
    if (rd.hs_changed || rd.n_entries || rd.has_snapshot) {
      int64_t t0 = node_mono_ns();
      int rc = raft_wal_save(n->wal, rd.hs_changed ? &rd.hs : NULL,
                             rd.has_snapshot ? &rd.snapshot.meta : NULL, rd.entries, rd.n_entries,
                             rd.must_sync && n->cfg.sync);
      if (rc) {
        /* Nothing of this batch may be acknowledged or sent: stop, as etcd does when its WAL
         * fails. */
        node_fatal("cannot write the raft log: %s", raft_strerror(rc));
      }
      if (rd.must_sync && n->cfg.sync) stats_hist_add(&n->st->fsync, (uint64_t)(node_mono_ns() - t0));
    }
    if (rd.hs_changed) n->persisted_vote = rd.hs.vote;
    if (!send_first) node_transport_send_all(n, rd.msgs, rd.n_msgs);
    for (size_t i = 0; i < rd.n_committed; i++) {
      raft_entry *e = &rd.committed[i];
      if (e->type != RAFT_ENTRY_CONF_CHANGE) continue;
      raft_conf_change cc;
      node_member_ctx mc;
      if (raft_conf_change_decode(e->data.base, e->data.len, &cc)) continue;
      raft_conf_state cs;
      raft_apply_conf_change(n->r, &cc, &cs);
      raft_wal_set_conf(n->wal, &cs);
      if (node_member_decode(cc.context.base, cc.context.len, &mc) == 0)
        node_transport_conf(n, cc.type, &mc.m);
      if (cc.type == RAFT_CONF_REMOVE_NODE) node_removed_note(n, cc.node_id);
      if (cc.type == RAFT_CONF_REMOVE_NODE && cc.node_id == n->cfg.id) n->removed = 1;
    }
    if (rd.n_committed && !node_apply_inline(n, rd.committed, rd.n_committed))
      node_aq_push(n, rd.committed, rd.n_committed);
    if (rd.n_reads) node_aq_push_reads(n, rd.reads, rd.n_reads);
    uint64_t had_leader = n->status.lead;
    raft_advance(n->r, &rd);
    publish_status(n);
    /* The leader changed (or is forgotten): an answer to a read asked before can only come
     * from the one before, which the core no longer hears. Ask again now (queued until there
     * is a leader), not an election timeout after the asking. */
    if (n->status.lead != had_leader && n->n_read_batches && !n->stopping_raft)
      reask_reads_older(n, -1);
    if (n->status.lead != RAFT_NONE && n->status.lead != had_leader) {
      n->lead_contact_ns = node_mono_ns();
      atomic_store(&n->lead_elected_ns, n->lead_contact_ns);
      if (n->status.lead == n->cfg.id) propose_bootstrap(n); /* ahead of the waiting writes */
      retry_waiting(n);
      node_publish_self(n);
    }
  }
  node_compact(n);
}

/* Messages and proposals that arrive in one loop iteration share one ready batch — one log
 * write and fsync — rather than one each: the batch is made in an idle callback, which runs
 * after the iteration's timers and I/O callbacks and keeps the next poll from blocking. */
static void on_ready_idle(uv_idle_t *h) {
  node *n = h->data;
  uv_idle_stop(h);
  process_ready(n);
}

static void schedule_ready(node *n) {
  if (!uv_is_active((uv_handle_t *)&n->ready_idle)) uv_idle_start(&n->ready_idle, on_ready_idle);
}

static void on_wake(uv_async_t *a) {
  node *n = a->data;
  pthread_mutex_lock(&n->mu);
  inbox_queue q = n->inbox;
  n->inbox = n->inbox_spare;
  n->inbox.n = 0;
  int stop = n->stop;
  pthread_mutex_unlock(&n->mu);
  for (size_t i = 0; i < q.n; i++) handle_item(n, &q.v[i]);
  q.n = 0;
  n->inbox_spare = q;
  flush_props(n);
  flush_reads(n);
  if (stop && !n->stopping_raft) {
    process_ready(n);
    n->stopping_raft = 1;
    node_raft_shutdown(n);
  } else if (!n->stopping_raft) {
    schedule_ready(n);
  }
}

/* Raft's clock ticks ten times per heartbeat: the randomized election timeout then takes one of
 * 10 * election/heartbeat values, not one of election/heartbeat (10 by default), and two
 * followers of a dead leader time out together (a split vote, one more election timeout) on
 * about one election in a hundred, not one in ten. The rest of the housekeeping runs once per
 * heartbeat. */
static void on_tick(uv_timer_t *t) {
  node *n = t->data;
  raft_tick(n->r);
  if (++n->ticks % n->ticks_per_hb == 0) {
    node_transport_collect(n);
    node_sent_prune(n);
    retry_forwards(n);
    if (n->ticks % (10u * n->ticks_per_hb) == 0) {
      prune_waiting(n);
      if (!n->stopping_raft) reask_reads(n);
      if (!n->stopping_raft) node_publish_self(n);
    }
  }
  process_ready(n);
  if (n->removed && !n->removed_reported) {
    n->removed_reported = 1;
    fprintf(stderr, "quorumd: this member was removed from the cluster; stopping (to add it "
                    "again: member add, an empty data dir, --initial-cluster-state existing)\n");
    raise(SIGTERM);
  }
}

/* Called by the transport (raft thread) for each message received. */
void node_on_message(node *n, const raft_message *m) {
  if (m->type == RAFT_MSG_PROP && m->n_entries && m->log_term &&
      m->log_term == raft_term(n->r) && raft_lead(n->r) == n->cfg.id)
    node_step_forward(n, m);
  else
    raft_step(n->r, m);
  if (m->from == n->status.lead) {
    int was_silent = leader_silent(n);
    n->lead_contact_ns = node_mono_ns();
    if (was_silent && n->waiting.n) retry_waiting(n);
  }
  if (!n->stopping_raft) schedule_ready(n);
}

static void *raft_main(void *arg) {
  node *n = arg;
  pthread_setname_np(pthread_self(), "quorumd-raft");
  uv_run(&n->rloop, UV_RUN_DEFAULT);
  return NULL;
}

/* ------------------------------------------------------------------ start and stop */

/* Opens the raft log, importing the LevelDB log of an older version when that is what the data
 * dir holds. */
static int node_open_log(node *n, const node_config *cfg, char *err, size_t errlen) {
  if (cfg->old_log_path && access(cfg->log_path, F_OK) != 0 &&
      access(cfg->old_log_path, F_OK) == 0) {
    int rc = raft_wal_import_ldb(cfg->old_log_path, cfg->log_path, err, errlen);
    if (rc) return rc;
    fprintf(stderr, "quorumd: moved the raft log from %s into %s\n", cfg->old_log_path,
            cfg->log_path);
  }
  return raft_wal_open(&n->wal, cfg->log_path,
                       &(raft_wal_opts){.create = cfg->create, .sync = cfg->sync}, err, errlen);
}

static int bootstrap(node *n, char *err, size_t errlen) {
  raft_hard_state hs;
  raft_conf_state cs;
  raft_wal_initial(n->wal, &hs, &cs);
  pthread_mutex_lock(&n->mu);
  n->n_members = node_store_members_load(n, n->members, NODE_MAX_MEMBERS);
  pthread_mutex_unlock(&n->mu);
  if (cs.n_voters || raft_wal_last_index(n->wal)) return 0; /* a restart */
  /* A fresh log. A new cluster starts with --initial-cluster as its configuration. A member
   * joining a running one starts with the members it names but itself (the voters of today:
   * they are not in the log, which only holds later changes); the entry that added it follows
   * in the log, and a snapshot, if one comes, replaces all of it. */
  memset(&cs, 0, sizeof cs);
  for (size_t i = 0; i < n->cfg.n_initial && cs.n_voters < RAFT_MAX_VOTERS; i++) {
    uint64_t id = n->cfg.initial[i].id;
    if (n->cfg.join_existing && id == n->cfg.id) continue;
    size_t j = cs.n_voters;
    while (j > 0 && cs.voters[j - 1] > id) {
      cs.voters[j] = cs.voters[j - 1];
      j--;
    }
    if (j > 0 && cs.voters[j - 1] == id) continue;
    cs.voters[j] = id;
    cs.n_voters++;
  }
  pthread_mutex_lock(&n->mu);
  for (size_t i = 0; i < n->cfg.n_initial; i++) {
    if (n->cfg.join_existing && n->cfg.initial[i].id == n->cfg.id) continue;
    node_members_set_locked(n, &n->cfg.initial[i]);
    node_store_member_put(n, &n->cfg.initial[i]);
  }
  pthread_mutex_unlock(&n->mu);
  if (store_group_flush(n->s) || (store_sync_applied(n->s), 0) ||
      raft_wal_set_conf(n->wal, &cs)) {
    snprintf(err, errlen, "cannot write the initial configuration");
    return -EIO;
  }
  return 0;
}

int node_start(node **out, uv_loop_t *loop, store *s, stats *st, const node_config *cfg,
               node_done_cb cb, void *arg, char *err, size_t errlen) {
  node *n = calloc(1, sizeof *n);
  if (!n) return -ENOMEM;
  n->cfg = *cfg;
  /* A request is matched to its entry by (member id, request id) when the entry is applied, and
   * entries this member proposed before a restart can still be committed and applied after it
   * (forwarded ones the leader had). So the ids of every start lie above those of the starts
   * before it: the data dir records each start's first id (datadir_request_base), which is
   * time-based as etcd's are but never below the last start's + 2^44, so that a clock set back
   * between two starts cannot make them meet. */
  atomic_store(&n->next_id, cfg->request_base ? cfg->request_base
                                              : (uint64_t)(wall_ns() / 1000000) << 20);
  n->read_batch_seq = atomic_load(&n->next_id); /* read index contexts likewise */
  n->loop = loop;
  n->s = s;
  n->st = st;
  n->cb = cb;
  n->cb_arg = arg;
  n->log_level = getenv("QUORUMD_RAFT_DEBUG") ? NODE_LOG_DEBUG : cfg->log_level;
  if (!n->cfg.keep) n->cfg.keep = 1;
  if (!n->cfg.request_timeout_ms) n->cfg.request_timeout_ms = 5000 + 2 * cfg->election_ms;
  /* a follower stops sending a request at its timeout: keep what was appended twice that */
  prop_dedup_init(&n->dedup, 2 * (int64_t)n->cfg.request_timeout_ms * 1000000);
  pthread_mutex_init(&n->mu, NULL);
  pthread_mutex_init(&n->pmu, NULL);
  pthread_cond_init(&n->apply_cv, NULL);
  pthread_cond_init(&n->idle_cv, NULL);
  int rc = node_open_log(n, cfg, err, errlen);
  if (rc) goto fail;
  if ((rc = bootstrap(n, err, errlen))) goto fail;
  node_removed_load(n);
  if (node_snapshot_finish_install(n)) {
    snprintf(err, errlen, "the tree store is at index %" PRIu64 ", beyond the raft log (%" PRIu64
                          ")", store_applied(s), raft_wal_last_index(n->wal));
    rc = -EIO;
    goto fail;
  }
  /* A member that applied its own removal is not one any more; it would sit there, outside the
   * configuration, never asking anyone (etcd refuses to start it, as the removed member it is). */
  if (node_removed_has(n, n->cfg.id) && !cfg->force_new_cluster) {
    snprintf(err, errlen, "this member was removed from the cluster (to add it again: member add, "
                          "an empty data dir, --initial-cluster-state existing)");
    rc = -EPERM;
    goto fail;
  }
  atomic_store(&n->answered, store_applied(s)); /* (no request of this start is in the log) */
  /* The store applied it, so it was committed, even if the hard state saying so was lost. */
  if (raft_wal_raise_commit(n->wal, store_applied(s))) {
    snprintf(err, errlen, "cannot write the raft hard state");
    rc = -EIO;
    goto fail;
  }
  if (cfg->force_new_cluster && (rc = node_force_new_cluster(n, err, errlen))) goto fail;
  raft_wal_set_snapshotter(n->wal, node_snapshot_make, n);
  {
    raft_hard_state hs0;
    raft_wal_initial(n->wal, &hs0, NULL);
    n->persisted_vote = hs0.vote;
  }
  n->synced_applied = store_sync_applied(s);
  unsigned hb = cfg->heartbeat_ms ? cfg->heartbeat_ms : 100;
  n->hb_ms = hb;
  unsigned tick_ms = hb / NODE_TICKS_PER_HB ? hb / NODE_TICKS_PER_HB : 1;
  n->ticks_per_hb = hb / tick_ms;
  unsigned et = cfg->election_ms / tick_ms;
  if (et < 2 * n->ticks_per_hb) et = 2 * n->ticks_per_hb;
  raft_config rc_cfg = {.id = cfg->id,
                        .election_tick = et,
                        .heartbeat_tick = n->ticks_per_hb,
                        .storage = raft_wal_storage(n->wal),
                        .applied = store_applied(s),
                        .max_size_per_msg = 1 << 20,
                        .max_inflight_msgs = 256,
                        .max_uncommitted_size = 64u << 20,
                        .pre_vote = true,
                        .check_quorum = true,
                        .seed = cfg->id ^ (uint64_t)wall_ns(),
                        .log = raft_log_cb,
                        .log_arg = n};
  if ((rc = raft_new(&rc_cfg, &n->r))) {
    snprintf(err, errlen, "cannot start raft: %s", raft_strerror(rc));
    rc = -EIO;
    goto fail;
  }
  if ((rc = uv_loop_init(&n->rloop))) {
    snprintf(err, errlen, "cannot create the raft loop: %s", uv_strerror(rc));
    rc = -EIO;
    goto fail;
  }
  n->rloop_ok = 1;
  if ((rc = node_transport_start(n, err, errlen))) goto fail;
  uv_async_init(&n->rloop, &n->wake, on_wake);
  n->wake.data = n;
  uv_idle_init(&n->rloop, &n->ready_idle);
  n->ready_idle.data = n;
  uv_timer_init(&n->rloop, &n->tick_timer);
  n->tick_timer.data = n;
  uv_timer_start(&n->tick_timer, on_tick, tick_ms, tick_ms);
  uv_timer_init(loop, &n->expire_timer);
  n->expire_timer.data = n;
  uv_timer_start(&n->expire_timer, on_expire_timer, 100, 100);
  /* Committed entries above the store's applied index (a restart) are applied first. */
  raft_conf_state cs;
  raft_wal_initial(n->wal, NULL, &cs);
  if (cs.n_voters == 1 && cs.voters[0] == cfg->id) raft_campaign(n->r); /* alone: lead now */
  process_ready(n);
  /* Forced alone (the committed changes above were just applied): lead now, not after an
   * election timeout. */
  if (cfg->force_new_cluster && n->status.raft.conf.n_voters == 1 &&
      n->status.raft.conf.voters[0] == cfg->id && n->status.role != RAFT_LEADER) {
    raft_campaign(n->r);
    process_ready(n);
  }
  publish_status(n);
  if (pthread_create(&n->apply_thread, NULL, node_apply_main, n)) abort();
  if (pthread_create(&n->raft_thread, NULL, raft_main, n)) abort();
  *out = n;
  return 0;
fail:
  if (n->r) raft_free(n->r);
  if (n->rloop_ok) {
    /* A transport that could not listen (its port taken since listen_check) is freed by its
     * handles' close callbacks: run them. */
    uv_run(&n->rloop, UV_RUN_DEFAULT);
    uv_loop_close(&n->rloop);
  }
  raft_wal_close(n->wal);
  pthread_mutex_destroy(&n->mu);
  pthread_mutex_destroy(&n->pmu);
  pthread_cond_destroy(&n->apply_cv);
  pthread_cond_destroy(&n->idle_cv);
  free(n->removed_ids);
  free(n);
  return rc;
}

static void close_cb(uv_handle_t *h) { (void)h; }

/* Raft thread, at stop: hand leadership over if others can take it, then close handles. */
void node_raft_shutdown(node *n) {
  node_transport_stop(n);
  uv_close((uv_handle_t *)&n->tick_timer, close_cb);
  uv_close((uv_handle_t *)&n->ready_idle, close_cb);
  uv_close((uv_handle_t *)&n->wake, close_cb);
}

void node_stop(node *n) {
  if (!n) return;
  node_leader_handover(n);
  pthread_mutex_lock(&n->mu);
  n->stop = 1;
  pthread_mutex_unlock(&n->mu);
  uv_async_send(&n->wake);
  pthread_join(n->raft_thread, NULL);
  pthread_mutex_lock(&n->mu);
  n->raft_done = 1;
  pthread_cond_signal(&n->apply_cv);
  pthread_mutex_unlock(&n->mu);
  pthread_join(n->apply_thread, NULL);
  node_snapshot_stop(n);
  /* Whatever still waits gets its error now. */
  node_done *head = NULL;
  for (size_t i = 0; i < n->waiting.n; i++) free(n->waiting.v[i].data);
  free(n->waiting.v);
  pthread_mutex_lock(&n->pmu);
  for (size_t i = 0; i < n->pend.cap; i++)
    if (n->pend.v[i].id) {
      node_done *d = calloc(1, sizeof *d);
      if (!d) abort();
      d->ctx = n->pend.v[i].ctx;
      store_result_error(&d->res, 300, "etcdserver: server stopped", 26, store_index(n->s));
      d->res.status = 500;
      d->next = head;
      head = d;
    }
  free(n->pend.v);
  n->pend = (pend_table){0};
  pthread_mutex_unlock(&n->pmu);
  if (head) n->cb(n->cb_arg, head);
  store_sync_applied(n->s);
  uv_loop_close(&n->rloop);
  raft_free(n->r);
  raft_wal_close(n->wal);
  free(n->inbox.v);
  free(n->inbox_spare.v);
  free(n->aq.v);
  free(n->inline_q.v);
  free(n->reads_waiting.v);
  for (size_t i = 0; i < n->n_read_batches; i++) free(n->read_batches[i].ids);
  free(n->read_batches);
  free(n->reads_new);
  free(n->removed_ids);
  free(n->props_new.v);
  node_sent_clear(n);
  free(n->sent.v);
  prop_dedup_free(&n->dedup);
  uv_close((uv_handle_t *)&n->expire_timer, node_free_cb);
}

void node_free_cb(uv_handle_t *h) {
  node *n = h->data;
  pthread_mutex_destroy(&n->mu);
  pthread_mutex_destroy(&n->pmu);
  pthread_cond_destroy(&n->apply_cv);
  pthread_cond_destroy(&n->idle_cv);
  free(n);
}

