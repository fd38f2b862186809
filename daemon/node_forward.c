/* node_forward: the leader's side of writes forwarded by followers (raft thread): a forward
 * of this term is appended less the requests this leader appended in the term already (a
 * follower sends a forward again when it may have been lost: node_resend.c), and what it
 * appends is remembered (daemon/prop_dedup.h); a forward sent from too far back to tell is
 * dropped whole. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/node_i.h"

/* A forward of writes to this member as the leader of the term it was sent in: those it has
 * appended in this term already, sent again by a follower that lost messages to it
 * (node_resend.c), are dropped; the rest are appended, and remembered. */
void node_step_forward(node *n, const raft_message *m) {
  prop_dedup_term(&n->dedup, m->log_term);
  typedef struct { uint64_t member, id; } req_key;
  raft_entry ents_here[64];
  req_key keys_here[64];
  bool small = m->n_entries <= 64;
  raft_entry *ents = small ? ents_here : malloc(m->n_entries * sizeof *ents);
  req_key *keys = small ? keys_here : malloc(m->n_entries * sizeof *keys);
  if (!ents || !keys) abort();
  size_t k = 0, nk = 0;
  bool refused = false;
  for (size_t i = 0; i < m->n_entries; i++) {
    const raft_entry *e = &m->entries[i];
    proto_record rec;
    if (e->type == RAFT_ENTRY_NORMAL && e->data.len &&
        !proto_record_decode((const char *)e->data.base, e->data.len, &rec) && rec.id) {
      if (m->index && !prop_dedup_covers(&n->dedup, rec.member, m->index - 1)) {
        /* This leader has forgotten requests of that member appended above the index the
         * forward was sent at: one of these may be among them, beyond telling. They time out
         * (as etcd's would). */
        if (NODE_LOG_INFO >= node_log_level(n))
          fprintf(stderr, "quorumd: %zu request(s) from %" PRIx64 " dropped: sent at index %"
                          PRIu64 ", too far back to tell whether they are in the log already\n",
                  m->n_entries, m->from, m->index - 1);
        refused = true;
        break;
      }
      if (prop_dedup_has(&n->dedup, rec.member, rec.id)) continue;
      keys[nk++] = (req_key){rec.member, rec.id};
    }
    ents[k++] = *e;
  }
  size_t dropped = refused ? 0 : m->n_entries - k;
  if (refused) k = 0;
  if (dropped && NODE_LOG_INFO >= node_log_level(n))
    fprintf(stderr, "quorumd: %zu request(s) from %" PRIx64 " dropped: appended in this term "
                    "already (sent again after messages were lost)\n", dropped, m->from);
  if (k) {
    raft_message f = *m;
    f.entries = ents;
    f.n_entries = k;
    int rc = raft_step(n->r, &f);
    if (rc == RAFT_OK || rc == RAFT_E_CONF_PENDING) {
      int64_t now = node_mono_ns();
      uint64_t last = raft_last_index(n->r); /* (at or above theirs) */
      for (size_t i = 0; i < nk; i++) /* (one not kept raises its member's floor instead) */
        (void)prop_dedup_add(&n->dedup, keys[i].member, keys[i].id, last, now);
    }
  }
  if (!small) {
    free(ents);
    free(keys);
  }
}
