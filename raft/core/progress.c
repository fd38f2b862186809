/* progress.c: the leader's view of one follower (raft.md §1 "flow control").
 *   PROBE: at most one APP per heartbeat interval (probe_sent pauses until an answer);
 *   REPLICATE: optimistic pipelining, next advanced on send, bounded by the inflights ring
 *              (a count cap of max_inflight_msgs APPs);
 *   SNAPSHOT: paused until the snapshot is reported installed or failed.
 * Invariant: match < next. */
#include <stdlib.h>

#include "raft/core/raft_i.h"

int raft_inflights_init(raft_inflights *in, size_t size) {
  if (size == 0) size = 1;
  in->buf = calloc(size, sizeof *in->buf);
  if (!in->buf) return RAFT_E_NOMEM;
  in->size = size;
  in->start = in->count = 0;
  return RAFT_OK;
}

void raft_inflights_destroy(raft_inflights *in) {
  free(in->buf);
  in->buf = NULL;
  in->size = in->start = in->count = 0;
}

bool raft_inflights_full(const raft_inflights *in) { return in->count >= in->size; }

void raft_inflights_add(raft_inflights *in, uint64_t last) {
  if (raft_inflights_full(in)) RAFT_PANIC0("inflights: add to a full ring");
  size_t at = (in->start + in->count) % in->size;
  in->buf[at] = last;
  in->count++;
}

void raft_inflights_free_le(raft_inflights *in, uint64_t to) {
  while (in->count > 0 && in->buf[in->start] <= to) {
    in->start = (in->start + 1) % in->size;
    in->count--;
  }
  if (in->count == 0) in->start = 0;
}

void raft_inflights_free_first_one(raft_inflights *in) {
  if (in->count == 0) return;
  raft_inflights_free_le(in, in->buf[in->start]);
}

void raft_inflights_reset(raft_inflights *in) { in->start = in->count = 0; }

int raft_progress_init(raft_progress *pr, uint64_t id, uint64_t next, size_t max_inflight) {
  *pr = (raft_progress){0};
  pr->id = id;
  pr->next = next ? next : 1;
  pr->state = RAFT_PROGRESS_PROBE;
  return raft_inflights_init(&pr->ins, max_inflight);
}

void raft_progress_destroy(raft_progress *pr) { raft_inflights_destroy(&pr->ins); }

static void reset_state(raft_progress *pr, uint8_t state) {
  pr->probe_sent = false;
  pr->pending_snapshot = 0;
  pr->state = state;
  raft_inflights_reset(&pr->ins);
}

void raft_progress_become_probe(raft_progress *pr) {
  if (pr->state == RAFT_PROGRESS_SNAPSHOT) {
    /* After a snapshot, probe from the snapshot's index on (if it was installed the follower
     * answers at once; if not, a rejection walks back). */
    uint64_t pending = pr->pending_snapshot;
    reset_state(pr, RAFT_PROGRESS_PROBE);
    pr->next = (pr->match + 1 > pending + 1) ? pr->match + 1 : pending + 1;
  } else {
    reset_state(pr, RAFT_PROGRESS_PROBE);
    pr->next = pr->match + 1;
  }
}

void raft_progress_become_replicate(raft_progress *pr) {
  reset_state(pr, RAFT_PROGRESS_REPLICATE);
  pr->next = pr->match + 1;
}

void raft_progress_become_snapshot(raft_progress *pr, uint64_t snap_index) {
  reset_state(pr, RAFT_PROGRESS_SNAPSHOT);
  pr->pending_snapshot = snap_index;
}

bool raft_progress_maybe_update(raft_progress *pr, uint64_t n) {
  bool updated = false;
  if (pr->match < n) {
    pr->match = n;
    updated = true;
    pr->probe_sent = false;
  }
  if (pr->next < n + 1) pr->next = n + 1;
  return updated;
}

bool raft_progress_maybe_decr_to(raft_progress *pr, uint64_t rejected, uint64_t match_hint) {
  if (pr->state == RAFT_PROGRESS_REPLICATE) {
    /* A rejection below match is stale (an older APP). */
    if (rejected <= pr->match) return false;
    pr->next = pr->match + 1;
    return true;
  }
  /* In PROBE only the last APP sent (at next-1) can be rejected meaningfully. */
  if (pr->next == 0 || pr->next - 1 != rejected) return false;
  uint64_t n = rejected < match_hint + 1 ? rejected : match_hint + 1;
  if (n < pr->match + 1) n = pr->match + 1;
  if (n < 1) n = 1;
  pr->next = n;
  pr->probe_sent = false;
  return true;
}

bool raft_progress_is_paused(const raft_progress *pr) {
  switch (pr->state) {
    case RAFT_PROGRESS_PROBE:
      return pr->probe_sent;
    case RAFT_PROGRESS_REPLICATE:
      return raft_inflights_full(&pr->ins);
    default:
      return true;
  }
}

void raft_progress_sent_entries(raft_progress *pr, size_t n, uint64_t last) {
  switch (pr->state) {
    case RAFT_PROGRESS_REPLICATE:
      if (n > 0) {
        pr->next = last + 1;
        raft_inflights_add(&pr->ins, last);
      }
      break;
    case RAFT_PROGRESS_PROBE:
      pr->probe_sent = true;
      break;
    default:
      RAFT_PANIC0("progress %llu: sending entries in state %s", (unsigned long long)pr->id,
                  raft_progress_state_name(pr->state));
  }
}

const char *raft_progress_state_name(uint8_t s) {
  switch (s) {
    case RAFT_PROGRESS_PROBE:
      return "StateProbe";
    case RAFT_PROGRESS_REPLICATE:
      return "StateReplicate";
    case RAFT_PROGRESS_SNAPSHOT:
      return "StateSnapshot";
    default:
      return "StateUnknown";
  }
}
