/* raft.c: the node's life cycle, the step dispatcher with the term rules (§5.1), tick, role
 * transitions and the proposal/command entry points. Elections are in election.c,
 * replication in replication.c, ReadIndex in readonly.c, membership in confchange.c and the
 * ready/advance protocol in ready.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft_i.h"

/* ---- logging and panics ---- */

void raft_logf_(const raft_log_fn fn, void *arg, int level, const char *fmt, ...) {
  if (!fn) return;
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  fn(arg, level, buf);
}

void raft_panic_(const raft_log_fn fn, void *arg, const char *file, int line, const char *fmt,
                 ...) {
  char buf[512];
  int k = snprintf(buf, sizeof buf, "raft panic at %s:%d: ", file, line);
  if (k < 0) k = 0;
  if ((size_t)k >= sizeof buf) k = (int)sizeof buf - 1;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf + k, sizeof buf - (size_t)k, fmt, ap);
  va_end(ap);
  if (fn) fn(arg, 3, buf);
  abort();
}

const char *raft_strerror(int err) {
  switch (err) {
    case RAFT_OK: return "ok";
    case RAFT_E_NOMEM: return "out of memory";
    case RAFT_E_COMPACTED: return "requested index is unavailable due to compaction";
    case RAFT_E_UNAVAILABLE: return "requested entry at index is unavailable";
    case RAFT_E_SNAP_TEMP: return "snapshot is temporarily unavailable";
    case RAFT_E_DROPPED: return "raft proposal dropped";
    case RAFT_E_CONF_PENDING: return "a membership change is already pending";
    case RAFT_E_INVAL: return "invalid argument";
    case RAFT_E_NOT_LEADER: return "not the leader";
    case RAFT_E_STORAGE: return "storage failure";
    default: return "unknown raft error";
  }
}

/* ---- copies of entries, buffers, snapshots and messages ---- */

int raft_buf_copy(raft_buf *dst, const void *src, size_t len) {
  dst->base = NULL;
  dst->len = 0;
  if (len == 0) return RAFT_OK;
  dst->base = malloc(len);
  if (!dst->base) return RAFT_E_NOMEM;
  memcpy(dst->base, src, len);
  dst->len = len;
  return RAFT_OK;
}

int raft_entry_copy(raft_entry *dst, const raft_entry *src) {
  dst->term = src->term;
  dst->index = src->index;
  dst->type = src->type;
  return raft_buf_copy(&dst->data, src->data.base, src->data.len);
}

int raft_entries_copy(raft_entry **dst, const raft_entry *src, size_t n) {
  *dst = NULL;
  if (n == 0) return RAFT_OK;
  raft_entry *e = calloc(n, sizeof *e);
  if (!e) return RAFT_E_NOMEM;
  for (size_t i = 0; i < n; i++) {
    if (raft_entry_copy(&e[i], &src[i]) != RAFT_OK) {
      raft_entries_free(e, i);
      return RAFT_E_NOMEM;
    }
  }
  *dst = e;
  return RAFT_OK;
}

void raft_entries_free(raft_entry *ents, size_t n) {
  if (!ents) return;
  for (size_t i = 0; i < n; i++) free(ents[i].data.base);
  free(ents);
}

uint64_t raft_entries_size(const raft_entry *ents, size_t n) {
  uint64_t s = 0;
  for (size_t i = 0; i < n; i++) s += ents[i].data.len;
  return s;
}

int raft_snapshot_copy(raft_snapshot *dst, const raft_snapshot *src) {
  dst->meta = src->meta;
  dst->release = NULL;
  return raft_buf_copy(&dst->data, src->data.base, src->data.len);
}

void raft_snapshot_free_data(raft_snapshot *s) {
  if (s->data.base && s->release) s->release(s->data);
  else free(s->data.base);
  s->data.base = NULL;
  s->data.len = 0;
  s->release = NULL;
}

void raft_message_free(raft_message *m) {
  raft_entries_free(m->entries, m->n_entries);
  m->entries = NULL;
  m->n_entries = 0;
  if (m->snapshot) {
    raft_snapshot_free_data(m->snapshot);
    free(m->snapshot);
    m->snapshot = NULL;
  }
  free(m->context.base);
  m->context.base = NULL;
  m->context.len = 0;
}

int raft_message_copy(raft_message *dst, const raft_message *src) {
  *dst = *src;
  dst->entries = NULL;
  dst->n_entries = 0;
  dst->snapshot = NULL;
  dst->context = (raft_buf){0};
  if (raft_entries_copy(&dst->entries, src->entries, src->n_entries) != RAFT_OK) goto nomem;
  dst->n_entries = src->entries ? src->n_entries : 0;
  if (src->snapshot) {
    dst->snapshot = malloc(sizeof *dst->snapshot);
    if (!dst->snapshot || raft_snapshot_copy(dst->snapshot, src->snapshot) != RAFT_OK) {
      free(dst->snapshot);
      dst->snapshot = NULL;
      goto nomem;
    }
  }
  if (raft_buf_copy(&dst->context, src->context.base, src->context.len) != RAFT_OK) goto nomem;
  return RAFT_OK;
nomem:
  raft_message_free(dst);
  return RAFT_E_NOMEM;
}

/* ---- outgoing messages ---- */

static bool is_vote_type(uint8_t t) {
  return t == RAFT_MSG_VOTE || t == RAFT_MSG_VOTE_RESP || t == RAFT_MSG_PRE_VOTE ||
         t == RAFT_MSG_PRE_VOTE_RESP;
}

void raft_send(raft *r, raft_message *m) {
  m->from = r->id;
  if (is_vote_type(m->type)) {
    /* Votes carry the term they are about (the pre-vote's is the future term). */
    if (m->term == 0) RAFT_PANIC(r, "%s without a term", raft_msg_type_name(m->type));
  } else {
    if (m->term != 0)
      RAFT_PANIC(r, "term set on %s (%llu)", raft_msg_type_name(m->type),
                 (unsigned long long)m->term);
    /* Proposals and read requests are forwarded as local messages: no term. */
    if (m->type != RAFT_MSG_PROP && m->type != RAFT_MSG_READ_INDEX) m->term = r->term;
  }
  if (r->n_msgs == r->cap_msgs) {
    size_t cap = r->cap_msgs ? r->cap_msgs * 2 : 16;
    raft_message *p = realloc(r->msgs, cap * sizeof *p);
    if (!p) RAFT_PANIC(r, "out of memory queueing a message");
    r->msgs = p;
    r->cap_msgs = cap;
  }
  r->msgs[r->n_msgs++] = *m;
  *m = (raft_message){0};
}

void raft_add_read_state(raft *r, uint64_t index, const raft_buf *ctx) {
  if (r->n_reads == r->cap_reads) {
    size_t cap = r->cap_reads ? r->cap_reads * 2 : 8;
    raft_read_state *p = realloc(r->reads, cap * sizeof *p);
    if (!p) RAFT_PANIC(r, "out of memory");
    r->reads = p;
    r->cap_reads = cap;
  }
  raft_read_state *rs = &r->reads[r->n_reads++];
  rs->index = index;
  if (raft_buf_copy(&rs->ctx, ctx->base, ctx->len) != RAFT_OK) RAFT_PANIC(r, "out of memory");
}

/* ---- progress and role transitions ---- */

raft_progress *raft_progress_get(raft *r, uint64_t id) {
  for (size_t i = 0; i < r->conf.n_voters; i++)
    if (r->prs[i].id == id) return &r->prs[i];
  return NULL;
}

bool raft_promotable(const raft *r) {
  for (size_t i = 0; i < r->conf.n_voters; i++)
    if (r->conf.voters[i] == r->id) return true;
  return false;
}

bool raft_past_election_timeout(const raft *r) {
  return r->election_elapsed >= r->randomized_election_timeout;
}

void raft_reset_randomized_timeout(raft *r) {
  unsigned t = r->cfg.election_tick;
  r->randomized_election_timeout = t + (unsigned)raft_rng_below(&r->rng, t);
}

static void reset(raft *r, uint64_t term) {
  if (r->term != term) {
    r->term = term;
    r->vote = RAFT_NONE;
  }
  r->lead = RAFT_NONE;
  r->election_elapsed = 0;
  r->heartbeat_elapsed = 0;
  raft_reset_randomized_timeout(r);
  raft_abort_leader_transfer(r);
  uint64_t last = raft_log_last_index(&r->log);
  for (size_t i = 0; i < r->conf.n_voters; i++) {
    raft_progress *pr = &r->prs[i];
    r->votes[i] = -1;
    pr->match = 0;
    pr->next = last + 1;
    pr->state = RAFT_PROGRESS_PROBE;
    pr->probe_sent = false;
    pr->pending_snapshot = 0;
    pr->recent_active = false;
    raft_inflights_reset(&pr->ins);
    /* Our own log counts only as far as it is persisted (etcd#14370). */
    if (pr->id == r->id) pr->match = raft_log_last_persisted(&r->log);
  }
  r->pending_conf_index = 0;
  r->uncommitted_size = 0;
  raft_readonly_reset(&r->ro);
  raft_pending_reads_clear(r);
}

void raft_become_follower(raft *r, uint64_t term, uint64_t lead) {
  reset(r, term);
  r->lead = lead;
  if (lead != RAFT_NONE) r->hurry = 0;
  r->role = RAFT_FOLLOWER;
  RAFT_LOG(r, 1, "%llx became follower at term %llu", (unsigned long long)r->id,
           (unsigned long long)r->term);
}

void raft_become_pre_candidate(raft *r) {
  if (r->role == RAFT_LEADER) RAFT_PANIC(r, "invalid transition [leader -> pre-candidate]");
  /* Pre-candidacy changes neither the term nor the vote (thesis §9.6). */
  for (size_t i = 0; i < r->conf.n_voters; i++) r->votes[i] = -1;
  r->lead = RAFT_NONE;
  r->role = RAFT_PRE_CANDIDATE;
  raft_hurry_election(r, true);
  RAFT_LOG(r, 1, "%llx became pre-candidate at term %llu", (unsigned long long)r->id,
           (unsigned long long)r->term);
}

void raft_become_candidate(raft *r) {
  if (r->role == RAFT_LEADER) RAFT_PANIC(r, "invalid transition [leader -> candidate]");
  reset(r, r->term + 1);
  r->vote = r->id;
  r->role = RAFT_CANDIDATE;
  raft_hurry_election(r, true);
  RAFT_LOG(r, 1, "%llx became candidate at term %llu", (unsigned long long)r->id,
           (unsigned long long)r->term);
}

void raft_become_leader(raft *r) {
  if (r->role == RAFT_FOLLOWER) RAFT_PANIC(r, "invalid transition [follower -> leader]");
  reset(r, r->term);
  r->lead = r->id;
  r->role = RAFT_LEADER;
  r->hurry = 0;
  for (size_t i = 0; i < r->conf.n_voters; i++) {
    raft_progress *pr = &r->prs[i];
    /* The leader hears from itself; followers start active so check-quorum gives them one
     * election timeout to answer. */
    pr->recent_active = true;
    if (pr->id == r->id) raft_progress_become_replicate(pr);
  }
  /* Conservatively treat the whole tail as possibly holding an unapplied conf change. */
  r->pending_conf_index = raft_log_last_index(&r->log);
  /* The no-op entry of the new term: committing it commits everything before (§5.4.2). */
  raft_entry e = {.type = RAFT_ENTRY_NORMAL};
  if (!raft_append_entries_as_leader(r, &e, 1)) RAFT_PANIC(r, "empty entry dropped");
  RAFT_LOG(r, 1, "%llx became leader at term %llu", (unsigned long long)r->id,
           (unsigned long long)r->term);
}

bool raft_append_entries_as_leader(raft *r, raft_entry *ents, size_t n) {
  uint64_t size = raft_entries_size(ents, n);
  if (r->cfg.max_uncommitted_size > 0 && size > 0 && r->uncommitted_size > 0 &&
      r->uncommitted_size + size > r->cfg.max_uncommitted_size)
    return false;
  r->uncommitted_size += size;
  uint64_t li = raft_log_last_index(&r->log);
  for (size_t i = 0; i < n; i++) {
    ents[i].term = r->term;
    ents[i].index = li + 1 + i;
  }
  raft_log_append(&r->log, ents, n);
  /* No self-ack here: the leader's own match moves when the entries are persisted, in
   * raft_advance (etcd#14370). */
  return true;
}

bool raft_committed_entry_in_current_term(const raft *r) {
  return raft_log_term_or_zero(&r->log, r->log.committed) == r->term;
}

/* ---- life cycle ---- */

int raft_new(const raft_config *cfg, raft **out) {
  *out = NULL;
  if (!cfg || cfg->id == RAFT_NONE || !cfg->storage || cfg->heartbeat_tick == 0 ||
      cfg->election_tick <= cfg->heartbeat_tick)
    return RAFT_E_INVAL;
  raft *r = calloc(1, sizeof *r);
  if (!r) return RAFT_E_NOMEM;
  r->id = cfg->id;
  r->cfg = *cfg;
  if (r->cfg.max_inflight_msgs == 0) r->cfg.max_inflight_msgs = 256;
  /* Distinct nodes with one seed still draw distinct timeouts. */
  raft_rng_seed(&r->rng, cfg->seed ^ (cfg->id * 0x9e3779b97f4a7c15ULL));
  raft_log_init(&r->log, cfg->storage, cfg->log, cfg->log_arg);

  raft_hard_state hs = {0};
  raft_conf_state cs = {0};
  int rc = cfg->storage->initial_state(cfg->storage->ctx, &hs, &cs);
  if (rc != RAFT_OK) {
    raft_log_destroy(&r->log);
    free(r);
    return rc;
  }
  if (cs.n_voters > RAFT_MAX_VOTERS) {
    raft_log_destroy(&r->log);
    free(r);
    return RAFT_E_INVAL;
  }
  raft_set_conf(r, &cs);
  if (hs.term || hs.vote || hs.commit) {
    uint64_t last = raft_log_last_index(&r->log);
    if (hs.commit < r->log.committed || hs.commit > last)
      RAFT_PANIC(r, "hard state commit %llu out of range [%llu, %llu]",
                 (unsigned long long)hs.commit, (unsigned long long)r->log.committed,
                 (unsigned long long)last);
    r->log.committed = hs.commit;
    r->term = hs.term;
    r->vote = hs.vote;
  }
  if (cfg->applied > 0) {
    if (cfg->applied > r->log.committed)
      RAFT_PANIC(r, "applied %llu beyond commit %llu", (unsigned long long)cfg->applied,
                 (unsigned long long)r->log.committed);
    if (cfg->applied > r->log.applied) r->log.applied = cfg->applied;
  }
  uint64_t vote = r->vote;
  raft_become_follower(r, r->term, RAFT_NONE);
  r->vote = vote;
  r->prev_hs = (raft_hard_state){r->term, r->vote, r->log.committed};
  r->prev_soft = (raft_soft_state){RAFT_NONE, RAFT_FOLLOWER};
  *out = r;
  return RAFT_OK;
}

void raft_free(raft *r) {
  if (!r) return;
  raft_ready_free(r);
  for (size_t i = 0; i < r->n_msgs; i++) raft_message_free(&r->msgs[i]);
  free(r->msgs);
  for (size_t i = 0; i < r->n_reads; i++) free(r->reads[i].ctx.base);
  free(r->reads);
  raft_pending_reads_clear(r);
  free(r->pending_reads);
  raft_readonly_destroy(&r->ro);
  for (size_t i = 0; i < r->conf.n_voters; i++) raft_progress_destroy(&r->prs[i]);
  raft_log_destroy(&r->log);
  free(r);
}

/* ---- tick ---- */

static void tick_election(raft *r) {
  r->election_elapsed++;
  if (raft_promotable(r) && raft_past_election_timeout(r)) {
    r->election_elapsed = 0;
    if (r->hurry) r->hurry--; /* (this campaign is hurried only while some are left) */
    raft_message m = {.type = RAFT_MSG_HUP, .from = r->id};
    raft_step(r, &m);
  }
}

static void tick_heartbeat(raft *r) {
  r->heartbeat_elapsed++;
  r->election_elapsed++;
  if (r->election_elapsed >= r->cfg.election_tick) {
    r->election_elapsed = 0;
    if (r->cfg.check_quorum) {
      raft_message m = {.type = RAFT_MSG_CHECK_QUORUM, .from = r->id};
      raft_step(r, &m);
    }
    /* A transfer that did not finish within an election timeout is aborted (§3.10). */
    if (r->role == RAFT_LEADER && r->lead_transferee != RAFT_NONE) raft_abort_leader_transfer(r);
  }
  if (r->role != RAFT_LEADER) return;
  if (r->heartbeat_elapsed >= r->cfg.heartbeat_tick) {
    r->heartbeat_elapsed = 0;
    raft_message m = {.type = RAFT_MSG_BEAT, .from = r->id};
    raft_step(r, &m);
  }
}

void raft_tick(raft *r) {
  if (r->role == RAFT_LEADER)
    tick_heartbeat(r);
  else
    tick_election(r);
}

/* ---- step ---- */

static int step_leader(raft *r, const raft_message *m);
static int step_candidate(raft *r, const raft_message *m);
static int step_follower(raft *r, const raft_message *m);

static bool is_transfer_ctx(const raft_message *m) {
  size_t n = sizeof RAFT_CAMPAIGN_TRANSFER - 1;
  return m->context.len == n && m->context.base && memcmp(m->context.base, RAFT_CAMPAIGN_TRANSFER, n) == 0;
}

int raft_step(raft *r, const raft_message *m) {
  if (!m || m->type == 0 || m->type >= RAFT_MSG_TYPE_MAX) return RAFT_E_INVAL;
  if (m->n_entries > 0 && !m->entries) return RAFT_E_INVAL;
  if (m->type == RAFT_MSG_SNAP && !m->snapshot) return RAFT_E_INVAL;

  /* §5.1 term rules. */
  if (m->term == 0) {
    /* local message */
  } else if (m->term > r->term) {
    if (m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE) {
      bool force = is_transfer_ctx(m);
      bool in_lease = r->cfg.check_quorum && r->lead != RAFT_NONE &&
                      r->election_elapsed < r->cfg.election_tick;
      if (!force && in_lease) {
        /* We heard from a leader within the minimum election timeout: don't let a
         * partitioned node disrupt it (thesis §4.2.3 / §9.6). */
        RAFT_LOG(r, 1, "%llx ignored %s from %llx at term %llu: lease not expired",
                 (unsigned long long)r->id, raft_msg_type_name(m->type),
                 (unsigned long long)m->from, (unsigned long long)m->term);
        return RAFT_OK;
      }
    }
    if (m->type == RAFT_MSG_PRE_VOTE) {
      /* Never change our term in answer to a pre-vote. */
    } else if (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject) {
      /* A granted pre-vote carries the future term: we bump it when we win the pre-vote. */
    } else {
      if (m->type == RAFT_MSG_APP || m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_SNAP)
        raft_become_follower(r, m->term, m->from);
      else
        raft_become_follower(r, m->term, RAFT_NONE);
    }
  } else if (m->term < r->term) {
    if ((r->cfg.check_quorum || r->cfg.pre_vote) &&
        (m->type == RAFT_MSG_HEARTBEAT || m->type == RAFT_MSG_APP)) {
      /* A stale leader (or we ran ahead, e.g. partitioned with pre-vote off): an empty
       * APP_RESP with our term makes a stale leader step down, and frees us in turn once
       * it gets elected again. */
      raft_message resp = {.type = RAFT_MSG_APP_RESP, .to = m->from};
      raft_send(r, &resp);
    } else if (m->type == RAFT_MSG_PRE_VOTE) {
      raft_message resp = {.type = RAFT_MSG_PRE_VOTE_RESP, .to = m->from, .term = r->term,
                           .reject = true};
      raft_send(r, &resp);
    }
    /* Other stale messages are ignored. */
    return RAFT_OK;
  }

  switch (m->type) {
    case RAFT_MSG_HUP:
      return raft_hup(r, false);
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PRE_VOTE:
      return raft_step_vote_request(r, m);
    default:
      break;
  }
  switch (r->role) {
    case RAFT_LEADER:
      return step_leader(r, m);
    case RAFT_CANDIDATE:
    case RAFT_PRE_CANDIDATE:
      return step_candidate(r, m);
    default:
      return step_follower(r, m);
  }
}

static int leader_propose(raft *r, const raft_message *m) {
  if (m->n_entries == 0) return RAFT_E_INVAL;
  if (!raft_progress_get(r, r->id)) return RAFT_E_DROPPED; /* removed from the config */
  if (m->log_term && m->log_term != r->term) {
    /* A batch sent for another term's leader: appending it now could commit it after its
     * proposer has seen a later term's entry committed without it and proposed it again. */
    RAFT_LOG(r, 0, "%llx [term %llu] dropping a proposal sent in term %llu",
             (unsigned long long)r->id, (unsigned long long)r->term,
             (unsigned long long)m->log_term);
    return RAFT_E_DROPPED;
  }
  if (r->lead_transferee != RAFT_NONE) {
    RAFT_LOG(r, 0, "%llx [term %llu] transfer to %llx in progress; dropping proposal",
             (unsigned long long)r->id, (unsigned long long)r->term,
             (unsigned long long)r->lead_transferee);
    return RAFT_E_DROPPED;
  }
  raft_entry *ents = NULL;
  if (raft_entries_copy(&ents, m->entries, m->n_entries) != RAFT_OK) return RAFT_E_NOMEM;
  int rc = RAFT_OK;
  uint64_t last = raft_log_last_index(&r->log);
  for (size_t i = 0; i < m->n_entries; i++) {
    if (ents[i].type != RAFT_ENTRY_CONF_CHANGE) continue;
    if (r->pending_conf_index > r->log.applied) {
      /* One change at a time (single-step membership): the refused change becomes a no-op
       * so the other entries of the batch still go in. */
      free(ents[i].data.base);
      ents[i].data = (raft_buf){0};
      ents[i].type = RAFT_ENTRY_NORMAL;
      rc = RAFT_E_CONF_PENDING;
    } else {
      r->pending_conf_index = last + i + 1;
    }
  }
  if (!raft_append_entries_as_leader(r, ents, m->n_entries)) {
    raft_entries_free(ents, m->n_entries);
    return RAFT_E_DROPPED;
  }
  raft_entries_free(ents, m->n_entries);
  raft_bcast_append(r);
  return rc;
}

static int step_leader(raft *r, const raft_message *m) {
  switch (m->type) {
    case RAFT_MSG_BEAT:
      raft_bcast_heartbeat(r, NULL);
      return RAFT_OK;
    case RAFT_MSG_CHECK_QUORUM:
      raft_step_check_quorum(r);
      return RAFT_OK;
    case RAFT_MSG_PROP:
      return leader_propose(r, m);
    case RAFT_MSG_READ_INDEX:
      return raft_leader_read_index(r, m);
    default:
      break;
  }
  /* The rest are from a follower. */
  raft_progress *pr = raft_progress_get(r, m->from);
  if (!pr) return RAFT_OK;
  switch (m->type) {
    case RAFT_MSG_APP_RESP:
      raft_leader_append_resp(r, m);
      break;
    case RAFT_MSG_HEARTBEAT_RESP:
      raft_leader_heartbeat_resp(r, m);
      break;
    case RAFT_MSG_SNAP_STATUS:
      if (pr->state != RAFT_PROGRESS_SNAPSHOT) break;
      if (m->reject) pr->pending_snapshot = 0; /* failed: probe from match + 1 */
      raft_progress_become_probe(pr);
      /* Wait for a heartbeat response (or an APP_RESP) before the next probe: the
       * snapshot may still be being applied. */
      pr->probe_sent = true;
      break;
    case RAFT_MSG_UNREACHABLE:
      /* Optimistic pipelining to an unreachable peer only loses APPs: probe instead. */
      if (pr->state == RAFT_PROGRESS_REPLICATE) raft_progress_become_probe(pr);
      break;
    case RAFT_MSG_TRANSFER_LEADER:
      raft_leader_transfer(r, m->from);
      break;
    default:
      break;
  }
  return RAFT_OK;
}

static int step_candidate(raft *r, const raft_message *m) {
  uint8_t my_resp = r->role == RAFT_PRE_CANDIDATE ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP;
  switch (m->type) {
    case RAFT_MSG_PROP:
      return RAFT_E_DROPPED;
    case RAFT_MSG_READ_INDEX:
      return RAFT_E_DROPPED;
    case RAFT_MSG_APP:
      /* A leader of our term exists (§5.2: return to follower). */
      raft_become_follower(r, m->term, m->from);
      raft_handle_append(r, m);
      return RAFT_OK;
    case RAFT_MSG_HEARTBEAT:
      raft_become_follower(r, m->term, m->from);
      raft_handle_heartbeat(r, m);
      return RAFT_OK;
    case RAFT_MSG_SNAP:
      raft_become_follower(r, m->term, m->from);
      raft_handle_snapshot(r, m);
      return RAFT_OK;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PRE_VOTE_RESP: {
      if (m->type != my_resp) return RAFT_OK;
      raft_vote_result res = raft_poll(r, m->from, !m->reject);
      if (res == RAFT_VOTE_WON) {
        if (r->role == RAFT_PRE_CANDIDATE) {
          raft_campaign_(r, false, false);
        } else {
          raft_become_leader(r);
          raft_bcast_append(r);
        }
      } else if (res == RAFT_VOTE_LOST) {
        /* A higher-term rejection already made us a follower of that term. */
        raft_become_follower(r, r->term, RAFT_NONE);
      }
      return RAFT_OK;
    }
    default:
      return RAFT_OK; /* TIMEOUT_NOW and the rest are ignored */
  }
}

/* A follower passes a proposal or a read request on to the leader it knows, as a local message
 * (no term); without a leader it is dropped. */
static int forward_to_leader(raft *r, const raft_message *m) {
  if (r->lead == RAFT_NONE) return RAFT_E_DROPPED;
  raft_message f = {0};
  if (raft_message_copy(&f, m) != RAFT_OK) return RAFT_E_NOMEM;
  f.to = r->lead;
  f.term = 0;
  raft_send(r, &f);
  return RAFT_OK;
}

static int step_follower(raft *r, const raft_message *m) {
  switch (m->type) {
    case RAFT_MSG_PROP:
      return forward_to_leader(r, m);
    case RAFT_MSG_APP:
      r->election_elapsed = 0;
      r->lead = m->from;
      r->hurry = 0;
      raft_handle_append(r, m);
      return RAFT_OK;
    case RAFT_MSG_HEARTBEAT:
      r->election_elapsed = 0;
      r->lead = m->from;
      r->hurry = 0;
      raft_handle_heartbeat(r, m);
      return RAFT_OK;
    case RAFT_MSG_SNAP:
      r->election_elapsed = 0;
      r->lead = m->from;
      r->hurry = 0;
      raft_handle_snapshot(r, m);
      return RAFT_OK;
    case RAFT_MSG_TRANSFER_LEADER:
      /* Only the leader acts on a transfer request; a follower asks for itself through
       * raft_transfer_leader. */
      return RAFT_OK;
    case RAFT_MSG_TIMEOUT_NOW:
      /* Leader transfer: campaign at once, skipping pre-vote and the lease (§3.10). */
      RAFT_LOG(r, 1, "%llx [term %llu] received TimeoutNow from %llx; campaigning",
               (unsigned long long)r->id, (unsigned long long)r->term,
               (unsigned long long)m->from);
      return raft_hup(r, true);
    case RAFT_MSG_READ_INDEX:
      return forward_to_leader(r, m);
    case RAFT_MSG_READ_INDEX_RESP:
      if (m->from != r->lead) return RAFT_OK;
      raft_add_read_state(r, m->index, &m->context);
      return RAFT_OK;
    default:
      return RAFT_OK;
  }
}

/* ---- proposals and commands ---- */

int raft_propose(raft *r, const void *data, size_t len) {
  raft_entry e = {.type = RAFT_ENTRY_NORMAL, .data = {(uint8_t *)data, len}};
  raft_message m = {.type = RAFT_MSG_PROP, .from = r->id, .entries = &e, .n_entries = 1};
  return raft_step(r, &m);
}

int raft_propose_many(raft *r, const raft_buf *data, size_t n) {
  return raft_propose_many_at(r, data, n, UINT64_MAX);
}

int raft_propose_many_at(raft *r, const raft_buf *data, size_t n, uint64_t applied) {
  if (n == 0) return RAFT_E_INVAL;
  raft_entry *ents = calloc(n, sizeof *ents);
  if (!ents) return RAFT_E_NOMEM;
  for (size_t i = 0; i < n; i++) ents[i] = (raft_entry){.type = RAFT_ENTRY_NORMAL, .data = data[i]};
  raft_message m = {.type = RAFT_MSG_PROP, .from = r->id, .entries = ents, .n_entries = n,
                    .log_term = r->term, .index = applied + 1}; /* (UINT64_MAX: 0, none) */
  int rc = raft_step(r, &m);
  free(ents);
  return rc;
}

int raft_propose_conf_change(raft *r, const raft_conf_change *cc) {
  raft_buf b = {0};
  int rc = raft_conf_change_encode(cc, &b);
  if (rc != RAFT_OK) return rc;
  if (r->role == RAFT_LEADER && r->pending_conf_index > r->log.applied) {
    free(b.base);
    return RAFT_E_CONF_PENDING;
  }
  raft_entry e = {.type = RAFT_ENTRY_CONF_CHANGE, .data = b};
  raft_message m = {.type = RAFT_MSG_PROP, .from = r->id, .entries = &e, .n_entries = 1,
                    .log_term = r->term};
  rc = raft_step(r, &m);
  free(b.base);
  return rc;
}

int raft_read_index(raft *r, const void *ctx, size_t len) {
  if (len == 0 || !ctx) return RAFT_E_INVAL;
  raft_message m = {.type = RAFT_MSG_READ_INDEX, .from = r->id,
                    .context = {(uint8_t *)ctx, len}};
  return raft_step(r, &m);
}

int raft_campaign(raft *r) {
  raft_message m = {.type = RAFT_MSG_HUP, .from = r->id};
  return raft_step(r, &m);
}

int raft_transfer_leader(raft *r, uint64_t to) {
  if (to == RAFT_NONE) return RAFT_E_INVAL;
  if (r->role == RAFT_LEADER) {
    raft_leader_transfer(r, to);
    return RAFT_OK;
  }
  if (r->lead == RAFT_NONE) return RAFT_E_DROPPED;
  if (to != r->id) {
    /* A follower can only ask the leader to transfer to itself over the wire. */
    return RAFT_E_NOT_LEADER;
  }
  raft_message f = {.type = RAFT_MSG_TRANSFER_LEADER, .to = r->lead};
  raft_send(r, &f);
  return RAFT_OK;
}

void raft_report_unreachable(raft *r, uint64_t id) {
  raft_message m = {.type = RAFT_MSG_UNREACHABLE, .from = id};
  raft_step(r, &m);
}

void raft_report_snapshot(raft *r, uint64_t id, bool ok) {
  raft_message m = {.type = RAFT_MSG_SNAP_STATUS, .from = id, .reject = !ok};
  raft_step(r, &m);
}

uint64_t raft_term(const raft *r) { return r->term; }

uint64_t raft_lead(const raft *r) { return r->lead; }

uint64_t raft_last_index(const raft *r) { return raft_log_last_index(&r->log); }

void raft_get_status(const raft *r, raft_status *st) {
  *st = (raft_status){0};
  st->id = r->id;
  st->role = r->role;
  st->term = r->term;
  st->vote = r->vote;
  st->lead = r->lead;
  st->commit = r->log.committed;
  st->applied = r->log.applied;
  st->last_index = raft_log_last_index(&r->log);
  st->lead_transferee = r->lead_transferee;
  st->conf = r->conf;
  if (r->role == RAFT_LEADER) {
    for (size_t i = 0; i < r->conf.n_voters; i++) {
      const raft_progress *pr = &r->prs[i];
      st->peers[i] = (raft_peer_status){pr->id, pr->match, pr->next, pr->state,
                                        pr->recent_active};
    }
    st->n_peers = r->conf.n_voters;
  }
}
