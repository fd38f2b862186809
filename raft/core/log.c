/* log.c: the raft log as the core sees it: a stable part read through raft_storage (what the
 * driver has persisted) followed by an unstable tail (entries and possibly a snapshot the core
 * accepted but the driver has not persisted yet, handed out in the next ready).
 *
 * Invariants: applied <= committed <= last index; the unstable entries are contiguous from
 * offset; an unstable snapshot, when present, sits at offset - 1 (it replaces everything up to
 * its index). A storage error other than COMPACTED/UNAVAILABLE makes the node inoperable:
 * RAFT_PANIC. */
#include <stdlib.h>
#include <string.h>

#include "raft/core/raft_i.h"

#define LPANIC(l, ...) raft_panic_((l)->logfn, (l)->logarg, __FILE__, __LINE__, __VA_ARGS__)

static uint64_t storage_first(const raft_log *l) {
  uint64_t i = 0;
  int rc = l->storage->first_index(l->storage->ctx, &i);
  if (rc != RAFT_OK) LPANIC(l, "storage first_index: %s", raft_strerror(rc));
  return i;
}

static uint64_t storage_last(const raft_log *l) {
  uint64_t i = 0;
  int rc = l->storage->last_index(l->storage->ctx, &i);
  if (rc != RAFT_OK) LPANIC(l, "storage last_index: %s", raft_strerror(rc));
  return i;
}

int raft_log_init(raft_log *l, const raft_storage *s, raft_log_fn fn, void *arg) {
  *l = (raft_log){0};
  l->storage = s;
  l->logfn = fn;
  l->logarg = arg;
  uint64_t first = storage_first(l), last = storage_last(l);
  l->offset = last + 1;
  l->committed = first - 1;
  l->applied = first - 1;
  return RAFT_OK;
}

static void free_unstable_from(raft_log *l, size_t from) {
  for (size_t i = from; i < l->n; i++) free(l->ents[i].data.base);
  if (from < l->n) l->n = from;
}

void raft_log_destroy(raft_log *l) {
  free_unstable_from(l, 0);
  free(l->ents);
  l->ents = NULL;
  l->cap = 0;
  if (l->snap) {
    raft_snapshot_free_data(l->snap);
    free(l->snap);
    l->snap = NULL;
  }
}

uint64_t raft_log_first_index(const raft_log *l) {
  if (l->snap) return l->snap->meta.index + 1;
  return storage_first(l);
}

uint64_t raft_log_last_index(const raft_log *l) {
  if (l->n > 0) return l->offset + l->n - 1;
  if (l->snap) return l->snap->meta.index;
  return storage_last(l);
}

uint64_t raft_log_last_persisted(const raft_log *l) {
  if (l->snap) return 0;
  if (l->n > 0) return l->offset - 1;
  return storage_last(l);
}

int raft_log_term(const raft_log *l, uint64_t i, uint64_t *t) {
  uint64_t dummy = raft_log_first_index(l) - 1;
  if (i < dummy) return RAFT_E_COMPACTED;
  if (i > raft_log_last_index(l)) return RAFT_E_UNAVAILABLE;
  if (l->n > 0 && i >= l->offset) {
    *t = l->ents[i - l->offset].term;
    return RAFT_OK;
  }
  if (l->snap && i == l->snap->meta.index) {
    *t = l->snap->meta.term;
    return RAFT_OK;
  }
  int rc = l->storage->term(l->storage->ctx, i, t);
  if (rc == RAFT_OK || rc == RAFT_E_COMPACTED || rc == RAFT_E_UNAVAILABLE) return rc;
  LPANIC(l, "storage term(%llu): %s", (unsigned long long)i, raft_strerror(rc));
}

uint64_t raft_log_term_or_zero(const raft_log *l, uint64_t i) {
  uint64_t t = 0;
  if (raft_log_term(l, i, &t) != RAFT_OK) return 0;
  return t;
}

uint64_t raft_log_last_term(const raft_log *l) {
  uint64_t t = 0;
  int rc = raft_log_term(l, raft_log_last_index(l), &t);
  if (rc != RAFT_OK) LPANIC(l, "term of the last index: %s", raft_strerror(rc));
  return t;
}

bool raft_log_match_term(const raft_log *l, uint64_t i, uint64_t t) {
  uint64_t got = 0;
  if (raft_log_term(l, i, &got) != RAFT_OK) return false;
  return got == t;
}

/* §5.4.1: a log is at least as up to date when its last term is higher, or equal with an
 * index at least as large. */
bool raft_log_is_up_to_date(const raft_log *l, uint64_t last_index, uint64_t term) {
  uint64_t lt = raft_log_last_term(l);
  return term > lt || (term == lt && last_index >= raft_log_last_index(l));
}

uint64_t raft_log_find_conflict(const raft_log *l, const raft_entry *ents, size_t n) {
  for (size_t k = 0; k < n; k++)
    if (!raft_log_match_term(l, ents[k].index, ents[k].term)) return ents[k].index;
  return 0;
}

uint64_t raft_log_find_conflict_by_term(const raft_log *l, uint64_t index, uint64_t term,
                                        uint64_t *out_term) {
  for (;;) {
    uint64_t t = 0;
    if (raft_log_term(l, index, &t) != RAFT_OK) {
      *out_term = 0;
      return index;
    }
    if (t <= term) {
      *out_term = t;
      return index;
    }
    if (index == 0) break;
    index--;
  }
  *out_term = 0;
  return 0;
}

static void reserve(raft_log *l, size_t want) {
  if (want <= l->cap) return;
  size_t cap = l->cap ? l->cap * 2 : 16;
  while (cap < want) cap *= 2;
  raft_entry *p = realloc(l->ents, cap * sizeof *p);
  if (!p) LPANIC(l, "out of memory growing the unstable log to %zu", cap);
  l->ents = p;
  l->cap = cap;
}

uint64_t raft_log_append(raft_log *l, const raft_entry *ents, size_t n) {
  if (n == 0) return raft_log_last_index(l);
  uint64_t from = ents[0].index;
  if (from - 1 < l->committed)
    LPANIC(l, "append at %llu would overwrite committed %llu", (unsigned long long)from,
           (unsigned long long)l->committed);
  if (from == l->offset + l->n) {
    /* contiguous: plain append */
  } else if (from <= l->offset) {
    /* replaces the whole unstable tail (the driver's append truncates storage too) */
    free_unstable_from(l, 0);
    l->offset = from;
  } else {
    free_unstable_from(l, (size_t)(from - l->offset));
  }
  reserve(l, l->n + n);
  for (size_t k = 0; k < n; k++) {
    if (raft_entry_copy(&l->ents[l->n], &ents[k]) != RAFT_OK) LPANIC(l, "out of memory");
    if (ents[k].index != l->offset + l->n)
      LPANIC(l, "append: index %llu out of order", (unsigned long long)ents[k].index);
    l->n++;
  }
  return raft_log_last_index(l);
}

bool raft_log_maybe_append(raft_log *l, uint64_t index, uint64_t log_term, uint64_t committed,
                           const raft_entry *ents, size_t n, uint64_t *last_new) {
  if (!raft_log_match_term(l, index, log_term)) return false;
  uint64_t lastnew = index + n;
  uint64_t ci = raft_log_find_conflict(l, ents, n);
  if (ci != 0) {
    if (ci <= l->committed)
      LPANIC(l, "entry %llu conflicts with committed entry (committed %llu)",
             (unsigned long long)ci, (unsigned long long)l->committed);
    size_t skip = (size_t)(ci - (index + 1));
    raft_log_append(l, ents + skip, n - skip);
  }
  raft_log_commit_to(l, committed < lastnew ? committed : lastnew);
  if (last_new) *last_new = lastnew;
  return true;
}

int raft_log_slice(const raft_log *l, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                   raft_entry **out, size_t *n) {
  *out = NULL;
  *n = 0;
  uint64_t first = raft_log_first_index(l), last = raft_log_last_index(l);
  if (lo < first) return RAFT_E_COMPACTED;
  if (hi > last + 1)
    LPANIC(l, "slice [%llu, %llu) out of bound [%llu, %llu]", (unsigned long long)lo,
           (unsigned long long)hi, (unsigned long long)first, (unsigned long long)last);
  if (lo > hi) LPANIC(l, "invalid slice %llu > %llu", (unsigned long long)lo, (unsigned long long)hi);
  if (lo == hi) return RAFT_OK;
  raft_entry *res = NULL;
  size_t cnt = 0;
  uint64_t size = 0;
  bool full = false;
  if (lo < l->offset) {
    uint64_t shi = hi < l->offset ? hi : l->offset;
    raft_entry *se = NULL;
    size_t sn = 0;
    int rc = l->storage->entries(l->storage->ctx, lo, shi, max_bytes, &se, &sn);
    if (rc == RAFT_E_COMPACTED) return rc;
    if (rc != RAFT_OK)
      LPANIC(l, "storage entries [%llu, %llu): %s", (unsigned long long)lo,
             (unsigned long long)shi, raft_strerror(rc));
    if (sn == 0) LPANIC(l, "storage returned no entries for [%llu, %llu)", (unsigned long long)lo,
                        (unsigned long long)shi);
    res = se;
    cnt = sn;
    /* Enforce the limit ourselves too (storage may return more). */
    size_t keep = 0;
    for (; keep < cnt; keep++) {
      uint64_t s = res[keep].data.len;
      if (keep > 0 && size + s > max_bytes) break;
      size += s;
    }
    if (keep < cnt) {
      for (size_t k = keep; k < cnt; k++) free(res[k].data.base);
      cnt = keep;
      full = true;
    }
    if (cnt < shi - lo) full = true;
  }
  if (!full && hi > l->offset) {
    uint64_t ulo = lo > l->offset ? lo : l->offset;
    size_t want = cnt + (size_t)(hi - ulo);
    raft_entry *p = realloc(res, want * sizeof *p);
    if (!p) LPANIC(l, "out of memory");
    res = p;
    for (uint64_t i = ulo; i < hi; i++) {
      const raft_entry *e = &l->ents[i - l->offset];
      if (cnt > 0 && size + e->data.len > max_bytes) break;
      size += e->data.len;
      if (raft_entry_copy(&res[cnt], e) != RAFT_OK) LPANIC(l, "out of memory");
      cnt++;
    }
  }
  *out = res;
  *n = cnt;
  return RAFT_OK;
}

void raft_log_commit_to(raft_log *l, uint64_t to) {
  if (l->committed >= to) return;
  if (raft_log_last_index(l) < to)
    LPANIC(l, "commit %llu is out of range [last index %llu]", (unsigned long long)to,
           (unsigned long long)raft_log_last_index(l));
  l->committed = to;
}

/* Figure 8: only an entry of the current term is committed by counting replicas. */
bool raft_log_maybe_commit(raft_log *l, uint64_t max_index, uint64_t term) {
  if (max_index > l->committed && max_index != UINT64_MAX &&
      raft_log_term_or_zero(l, max_index) == term) {
    raft_log_commit_to(l, max_index);
    return true;
  }
  return false;
}

void raft_log_applied_to(raft_log *l, uint64_t i) {
  if (i == 0) return;
  if (l->committed < i || i < l->applied)
    LPANIC(l, "applied %llu out of range [applied %llu, committed %llu]", (unsigned long long)i,
           (unsigned long long)l->applied, (unsigned long long)l->committed);
  l->applied = i;
}

int raft_log_snapshot(const raft_log *l, raft_snapshot *out) {
  /* (an unstable snapshot handed to the driver has lent it its data until the advance) */
  if (l->snap && !l->snap->data.base && l->snap->data.len) return RAFT_E_SNAP_TEMP;
  if (l->snap) return raft_snapshot_copy(out, l->snap);
  *out = (raft_snapshot){0};
  return l->storage->snapshot(l->storage->ctx, out);
}

void raft_log_restore(raft_log *l, raft_snapshot *s, bool take) {
  l->committed = s->meta.index;
  free_unstable_from(l, 0);
  l->offset = s->meta.index + 1;
  if (l->snap) {
    raft_snapshot_free_data(l->snap);
  } else {
    l->snap = malloc(sizeof *l->snap);
    if (!l->snap) LPANIC(l, "out of memory");
  }
  if (take) { /* (the snapshot's data is moved, not copied: it can be large) */
    *l->snap = *s;
    s->data = (raft_buf){0};
  } else if (raft_snapshot_copy(l->snap, s) != RAFT_OK) {
    LPANIC(l, "out of memory");
  }
}

bool raft_log_has_next_committed(const raft_log *l) {
  if (l->snap) return false; /* the snapshot is applied first */
  return l->committed > l->applied;
}

void raft_log_stable_to(raft_log *l, uint64_t i, uint64_t t) {
  uint64_t gt = 0;
  if (raft_log_term(l, i, &gt) != RAFT_OK) return;
  /* Only if the entry is still the one persisted (the tail may have been replaced since). */
  if (gt == t && l->n > 0 && i >= l->offset) {
    size_t k = (size_t)(i - l->offset + 1);
    for (size_t j = 0; j < k; j++) free(l->ents[j].data.base);
    memmove(l->ents, l->ents + k, (l->n - k) * sizeof *l->ents);
    l->n -= k;
    l->offset = i + 1;
  }
}

void raft_log_stable_snap_to(raft_log *l, uint64_t i) {
  if (l->snap && l->snap->meta.index == i) {
    raft_snapshot_free_data(l->snap);
    free(l->snap);
    l->snap = NULL;
  }
}
