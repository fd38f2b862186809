/* confchange.c: single-step membership changes (paper §6 / thesis §4.1). One voter is added or
 * removed per entry; the change takes effect when the driver applies the entry
 * (raft_apply_conf_change), not when it is appended. The leader refuses a new change while an
 * earlier one is unapplied (pending_conf_index; a new leader sets it to its last index). A
 * leader that removed itself steps down. Node ids are never reused.
 *
 * Entry encoding (fixed, little-endian):
 *   u8 version (1) | u8 type | u64 node_id | u64 id | u32 context length | context bytes */
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft_i.h"

#define CC_VERSION 1
#define CC_HEADER (1 + 1 + 8 + 8 + 4)

static void put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

int raft_conf_change_encode(const raft_conf_change *cc, raft_buf *out) {
  out->base = NULL;
  out->len = 0;
  if (!cc || cc->type > RAFT_CONF_UPDATE_NODE || cc->node_id == RAFT_NONE ||
      cc->context.len > UINT32_MAX || (cc->context.len && !cc->context.base))
    return RAFT_E_INVAL;
  size_t len = CC_HEADER + cc->context.len;
  uint8_t *p = malloc(len);
  if (!p) return RAFT_E_NOMEM;
  p[0] = CC_VERSION;
  p[1] = cc->type;
  put64(p + 2, cc->node_id);
  put64(p + 10, cc->id);
  uint32_t cl = (uint32_t)cc->context.len;
  for (int i = 0; i < 4; i++) p[18 + i] = (uint8_t)(cl >> (8 * i));
  if (cl) memcpy(p + CC_HEADER, cc->context.base, cl);
  out->base = p;
  out->len = len;
  return RAFT_OK;
}

int raft_conf_change_decode(const uint8_t *data, size_t len, raft_conf_change *cc) {
  *cc = (raft_conf_change){0};
  if (!data || len < CC_HEADER || data[0] != CC_VERSION || data[1] > RAFT_CONF_UPDATE_NODE)
    return RAFT_E_INVAL;
  uint32_t cl = 0;
  for (int i = 0; i < 4; i++) cl |= (uint32_t)data[18 + i] << (8 * i);
  if ((size_t)cl != len - CC_HEADER) return RAFT_E_INVAL;
  uint64_t node = get64(data + 2);
  if (node == RAFT_NONE) return RAFT_E_INVAL;
  cc->type = data[1];
  cc->node_id = node;
  cc->id = get64(data + 10);
  cc->context.base = cl ? (uint8_t *)data + CC_HEADER : NULL;
  cc->context.len = cl;
  return RAFT_OK;
}

void raft_set_conf(raft *r, const raft_conf_state *cs) {
  raft_progress np[RAFT_MAX_VOTERS];
  int8_t nv[RAFT_MAX_VOTERS];
  bool kept[RAFT_MAX_VOTERS] = {false};
  uint64_t last = raft_log_last_index(&r->log);
  if (cs->n_voters > RAFT_MAX_VOTERS) RAFT_PANIC(r, "too many voters: %zu", cs->n_voters);
  for (size_t i = 0; i < cs->n_voters; i++) {
    if (i > 0 && cs->voters[i] <= cs->voters[i - 1])
      RAFT_PANIC(r, "conf state voters not sorted/unique");
    bool found = false;
    for (size_t k = 0; k < r->conf.n_voters; k++) {
      if (r->prs[k].id == cs->voters[i]) {
        np[i] = r->prs[k];
        nv[i] = r->votes[k];
        kept[k] = found = true;
        break;
      }
    }
    if (!found) {
      /* next = last (not last + 1): the first probe carries the last entry (as etcd). */
      if (raft_progress_init(&np[i], cs->voters[i], last ? last : 1, r->cfg.max_inflight_msgs) !=
          RAFT_OK)
        RAFT_PANIC(r, "out of memory");
      /* A new member gets one election timeout before check-quorum counts it absent. */
      np[i].recent_active = true;
      nv[i] = -1;
    }
  }
  for (size_t k = 0; k < r->conf.n_voters; k++)
    if (!kept[k]) raft_progress_destroy(&r->prs[k]);
  memcpy(r->prs, np, cs->n_voters * sizeof *np);
  memcpy(r->votes, nv, cs->n_voters * sizeof *nv);
  r->conf = *cs;
}

bool raft_has_unapplied_conf_change(const raft *r) {
  if (r->log.committed <= r->log.applied) return false;
  uint64_t lo = r->log.applied + 1, first = raft_log_first_index(&r->log);
  if (lo < first) lo = first;
  raft_entry *ents = NULL;
  size_t n = 0;
  if (raft_log_slice(&r->log, lo, r->log.committed + 1, UINT64_MAX, &ents, &n) != RAFT_OK)
    return false;
  bool found = false;
  for (size_t i = 0; i < n && !found; i++) found = ents[i].type == RAFT_ENTRY_CONF_CHANGE;
  raft_entries_free(ents, n);
  return found;
}

int raft_conf_state_apply(raft_conf_state *cs, const raft_conf_change *cc) {
  if (!cc || cc->node_id == RAFT_NONE || cc->type > RAFT_CONF_UPDATE_NODE) return RAFT_E_INVAL;
  size_t at = 0;
  while (at < cs->n_voters && cs->voters[at] < cc->node_id) at++;
  bool present = at < cs->n_voters && cs->voters[at] == cc->node_id;
  switch (cc->type) {
    case RAFT_CONF_ADD_NODE:
      if (present) break;
      if (cs->n_voters == RAFT_MAX_VOTERS) return RAFT_E_INVAL;
      memmove(&cs->voters[at + 1], &cs->voters[at], (cs->n_voters - at) * sizeof cs->voters[0]);
      cs->voters[at] = cc->node_id;
      cs->n_voters++;
      break;
    case RAFT_CONF_REMOVE_NODE:
      if (!present) break;
      memmove(&cs->voters[at], &cs->voters[at + 1],
              (cs->n_voters - at - 1) * sizeof cs->voters[0]);
      cs->n_voters--;
      break;
    default:
      break; /* UPDATE_NODE: attributes only */
  }
  return RAFT_OK;
}

int raft_apply_conf_change(raft *r, const raft_conf_change *cc, raft_conf_state *out) {
  raft_conf_state cs = r->conf;
  int rc = raft_conf_state_apply(&cs, cc);
  if (rc != RAFT_OK) return rc;
  raft_set_conf(r, &cs);
  if (r->role == RAFT_LEADER) {
    if (!raft_progress_get(r, r->id)) {
      RAFT_LOG(r, 1, "%llx removed itself from the configuration; stepping down",
               (unsigned long long)r->id);
      raft_become_follower(r, r->term, RAFT_NONE);
    } else {
      if (r->lead_transferee != RAFT_NONE && !raft_progress_get(r, r->lead_transferee))
        raft_abort_leader_transfer(r);
      /* A smaller quorum may commit more; a new member gets probed at once. */
      if (raft_maybe_commit(r)) {
        raft_bcast_append(r);
      } else {
        for (size_t i = 0; i < r->conf.n_voters; i++)
          if (r->conf.voters[i] != r->id) raft_maybe_send_append(r, r->conf.voters[i], false);
      }
    }
  }
  if (out) *out = r->conf;
  return RAFT_OK;
}
