/* sim_check: the invariants of raft.md §7, asserted while the simulation runs.
 *  1 election safety          one leader per term (term -> leader map)
 *  2 leader append-only       a leader's persisted log only grows while it leads in a term
 *  3 log matching             same (index, term) => same chained hash h(i) = H(h(i-1), entry)
 *  4 leader completeness      a new leader of term T holds what was committed in terms < T
 *  5 state machine safety     every applied entry is the committed one; equal state hashes at
 *                             equal applied indexes (snapshots included: invariant 11)
 *  6 monotonic commit         per node and lifetime; the committed prefix never changes
 *  8 term and vote            the durable term never decreases, across restarts too; no node
 *                             grants two votes in one term (seen on the wire, after persist)
 *  9 ordering                 applied <= commit <= last; persisted commit <= persisted last;
 *                             must_sync set whenever term, vote or entries change
 * 10 progress                 match < next <= last + 1; at most one unapplied conf change in a
 *                             leader's log
 * Invariant 7 (acknowledged writes survive) follows from 4 and 5 plus the history check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/sim/sim.h"

#define U(x) ((unsigned long long)(x))

uint64_t sim_hash_entry(uint64_t prev, const raft_entry *e) {
  uint64_t h = prev ^ 0x84222325cbf29ce4ULL;
  h = (h ^ e->term) * 0x100000001b3ULL;
  h = (h ^ e->index) * 0x100000001b3ULL;
  h = (h ^ e->type) * 0x100000001b3ULL;
  for (size_t i = 0; i < e->data.len; i++) h = (h ^ e->data.base[i]) * 0x100000001b3ULL;
  h ^= h >> 32;
  return h ? h : 1;
}

static void sim_hash_reserve(sim_node *n, uint64_t last) {
  if (last < n->cap_hash) return;
  size_t cap = n->cap_hash ? n->cap_hash : 256;
  while (cap <= last) cap *= 2;
  uint64_t *h = realloc(n->hash, cap * sizeof *h);
  if (!h) abort();
  n->hash = h;
  n->cap_hash = cap;
}

void sim_check_persisted(sim_world *w, sim_node *n, uint64_t from, bool snapshot) {
  if (snapshot) {
    if (from > w->committed_max) {
      sim_fail(w, "n%llu holds a snapshot at %llu, beyond anything committed (%llu)", U(n->id),
               U(from), U(w->committed_max));
      return;
    }
    sim_hash_reserve(n, from);
    for (uint64_t i = 0; i <= from; i++) n->hash[i] = sim_vec_get(&w->committed, i);
    n->hash_last = from;
    return;
  }
  uint64_t last = sim_disk_last_index(&n->disk);
  if (from <= n->disk.vol.offset) from = n->disk.vol.offset + 1;
  if (from - 1 > n->hash_last) {
    sim_fail(w, "n%llu persisted entries from %llu, but its log ended at %llu", U(n->id),
             U(from), U(n->hash_last));
    return;
  }
  sim_hash_reserve(n, last);
  for (uint64_t i = from; i <= last; i++) {
    const raft_entry *e = sim_disk_entry(&n->disk, i);
    n->hash[i] = sim_hash_entry(n->hash[i - 1], e);
    uint64_t h = n->hash[i];
    if (sim_map_get_or_put(&w->entry_at, i, e->term, &h) && h != n->hash[i]) {
      sim_fail(w, "log matching: n%llu's entry %llu of term %llu follows a different log "
                  "than another node's entry with the same index and term",
               U(n->id), U(i), U(e->term));
      return;
    }
  }
  n->hash_last = last;
}

void sim_check_committed(sim_world *w, sim_node *n) {
  uint64_t c = n->disk.vol.hs.commit;
  if (c > sim_disk_last_index(&n->disk)) {
    sim_fail(w, "n%llu persisted commit %llu beyond its persisted last index %llu", U(n->id),
             U(c), U(sim_disk_last_index(&n->disk)));
    return;
  }
  if (c == 0) return;
  if (c > n->hash_last) {
    sim_fail(w, "n%llu commit %llu beyond its log (%llu)", U(n->id), U(c), U(n->hash_last));
    return;
  }
  if (c <= w->committed_max) {
    if (n->hash[c] != sim_vec_get(&w->committed, c))
      sim_fail(w, "n%llu committed a log up to %llu that differs from the committed one",
               U(n->id), U(c));
    return;
  }
  uint64_t m = w->committed_max;
  if (m && n->hash[m] != sim_vec_get(&w->committed, m)) {
    sim_fail(w, "n%llu commits up to %llu on a log whose prefix to %llu differs from the "
                "committed one",
             U(n->id), U(c), U(m));
    return;
  }
  for (uint64_t i = m + 1; i <= c; i++) {
    sim_vec_set(&w->committed, i, n->hash[i]);
    sim_vec_set(&w->commit_term, i, n->disk.vol.hs.term);
  }
  w->committed_max = c;
}

void sim_check_applied(sim_world *w, sim_node *n, uint64_t i, bool snapshot) {
  if (i > w->committed_max) {
    sim_fail(w, "n%llu applied %llu, beyond anything committed (%llu)", U(n->id), U(i),
             U(w->committed_max));
    return;
  }
  if (!snapshot && (i > n->hash_last || n->hash[i] != sim_vec_get(&w->committed, i))) {
    sim_fail(w, "n%llu applied an entry at %llu that is not the committed one%s", U(n->id),
             U(i), i > n->hash_last ? " (not in its persisted log)" : "");
    return;
  }
  uint64_t h = sim_kv_hash(&n->kv);
  uint64_t seen = sim_vec_get(&w->state_at, i);
  if (seen == 0)
    sim_vec_set(&w->state_at, i, h);
  else if (seen != h)
    sim_fail(w, "state machine safety: n%llu's state after %s %llu differs from another node's",
             U(n->id), snapshot ? "restoring the snapshot at" : "applying", U(i));
}

void sim_check_sent(sim_world *w, const raft_message *m) {
  if (m->type != RAFT_MSG_VOTE_RESP || m->reject) return;
  uint64_t cand = m->to;
  if (sim_map_get_or_put(&w->votes, m->from, m->term, &cand) && cand != m->to)
    sim_fail(w, "n%llu voted for n%llu and n%llu in term %llu", U(m->from), U(cand), U(m->to),
             U(m->term));
}

void sim_check_durable(sim_world *w, sim_node *n) {
  const sim_log *d = &n->disk.dur;
  if (d->hs.term < n->durable_term)
    sim_fail(w, "n%llu's durable term went back from %llu to %llu", U(n->id),
             U(n->durable_term), U(d->hs.term));
  else
    n->durable_term = d->hs.term;
  uint64_t last = d->offset + d->n;
  if (d->hs.commit > last && d->hs.commit > d->offset)
    sim_fail(w, "n%llu's durable commit %llu is beyond its durable log (%llu)", U(n->id),
             U(d->hs.commit), U(last));
}

/* The checks on one running node after an event. */
static void sim_check_node(sim_world *w, sim_node *n) {
  raft_status st;
  raft_get_status(n->r, &st);
  if (st.term < n->last_term)
    sim_fail(w, "n%llu's term went back from %llu to %llu", U(n->id), U(n->last_term),
             U(st.term));
  if (st.commit < n->last_commit)
    sim_fail(w, "n%llu's commit went back from %llu to %llu", U(n->id), U(n->last_commit),
             U(st.commit));
  n->last_term = st.term;
  n->last_commit = st.commit;
  if (!(st.applied <= st.commit && st.commit <= st.last_index))
    sim_fail(w, "n%llu: applied %llu, commit %llu, last %llu out of order", U(n->id),
             U(st.applied), U(st.commit), U(st.last_index));
  if (st.role != RAFT_LEADER) {
    n->lead_term = 0;
    return;
  }
  uint64_t prev = sim_vec_get(&w->term_leader, st.term);
  if (prev && prev != n->id)
    sim_fail(w, "election safety: n%llu and n%llu both lead term %llu", U(prev), U(n->id),
             U(st.term));
  sim_vec_set(&w->term_leader, st.term, n->id);
  uint64_t m = w->committed_max;
  if (n->lead_term != st.term) { /* it just became leader */
    w->elections++;
    sim_trace(w, "n%llu is leader of term %llu (log %llu, committed %llu)", U(n->id), U(st.term),
              U(n->hash_last), U(m));
    /* Only what was committed in earlier terms must be there: a leader of term T can win
     * late, after a leader of a higher term committed more. */
    while (m > 0 && sim_vec_get(&w->commit_term, m) >= st.term) m--;
    if (m > n->hash_last || n->hash[m] != sim_vec_get(&w->committed, m))
      sim_fail(w, "leader completeness: n%llu leads term %llu without the log committed before "
                  "that term, up to %llu (its log ends at %llu)",
               U(n->id), U(st.term), U(m), U(n->hash_last));
  } else if (n->lead_last > n->hash_last || n->hash[n->lead_last] != n->lead_hash) {
    sim_fail(w, "leader append-only: n%llu, leader of term %llu, lost or changed entries up to "
                "%llu",
             U(n->id), U(st.term), U(n->lead_last));
  }
  n->lead_term = st.term;
  n->lead_last = n->hash_last;
  n->lead_hash = n->hash[n->hash_last];
  for (size_t i = 0; i < st.n_peers; i++) {
    const raft_peer_status *p = &st.peers[i];
    if (!(p->match < p->next && p->next <= st.last_index + 1))
      sim_fail(w, "n%llu (leader) has peer n%llu at match %llu next %llu, last index %llu",
               U(n->id), U(p->id), U(p->match), U(p->next), U(st.last_index));
  }
  size_t ccs = 0;
  for (uint64_t i = st.applied + 1; i <= sim_disk_last_index(&n->disk); i++) {
    const raft_entry *e = sim_disk_entry(&n->disk, i);
    if (e && e->type == RAFT_ENTRY_CONF_CHANGE) ccs++;
  }
  if (ccs > 1)
    sim_fail(w, "n%llu (leader) has %zu unapplied conf changes in its log", U(n->id), ccs);
}

void sim_check_all(sim_world *w) {
  for (uint64_t i = 1; i <= SIM_MAX_NODES && !w->failed; i++)
    if (w->nodes[i].up) sim_check_node(w, &w->nodes[i]);
}

bool sim_check_converged(sim_world *w, char *why, size_t len) {
  sim_node *l = sim_leader(w);
  if (!l) {
    snprintf(why, len, "no leader");
    return false;
  }
  raft_status st;
  raft_get_status(l->r, &st);
  if (st.commit != st.last_index || l->applied != st.commit) {
    snprintf(why, len, "leader n%llu: last %llu, commit %llu, applied %llu", U(l->id),
             U(st.last_index), U(st.commit), U(l->applied));
    return false;
  }
  uint64_t h = sim_kv_hash(&l->kv);
  for (size_t i = 0; i < st.conf.n_voters; i++) {
    uint64_t id = st.conf.voters[i];
    sim_node *n = id <= SIM_MAX_NODES ? &w->nodes[id] : NULL;
    if (!n || !n->up) {
      snprintf(why, len, "voter n%llu is not running", U(id));
      return false;
    }
    if (n->applied != l->applied || sim_kv_hash(&n->kv) != h) {
      snprintf(why, len, "voter n%llu applied %llu, leader n%llu applied %llu%s", U(id),
               U(n->applied), U(l->id), U(l->applied),
               n->applied == l->applied ? " with a different state" : "");
      return false;
    }
  }
  return true;
}
