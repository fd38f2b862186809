/* mem_storage.c: the in-memory raft_storage (see mem_storage.h). ents[0] is the dummy entry
 * at the snapshot's (index, term); real entries follow contiguously. */
#include "raft/storage/mem_storage.h"

#include <stdlib.h>
#include <string.h>

struct mem_storage {
  raft_storage iface;
  raft_hard_state hs;
  raft_conf_state cs;
  raft_snapshot snap; /* meta.index 0 = none */
  raft_entry *ents;   /* ents[0] = dummy */
  size_t n, cap;
  bool snap_temp;
};

static uint64_t offset(const mem_storage *ms) { return ms->ents[0].index; }
static uint64_t last(const mem_storage *ms) { return ms->ents[0].index + ms->n - 1; }

static int reserve(mem_storage *ms, size_t want) {
  if (want <= ms->cap) return RAFT_OK;
  size_t cap = ms->cap ? ms->cap * 2 : 64;
  while (cap < want) cap *= 2;
  raft_entry *p = realloc(ms->ents, cap * sizeof *p);
  if (!p) return RAFT_E_NOMEM;
  ms->ents = p;
  ms->cap = cap;
  return RAFT_OK;
}

static void truncate_to(mem_storage *ms, size_t keep) {
  for (size_t i = keep; i < ms->n; i++) free(ms->ents[i].data.base);
  if (keep < ms->n) ms->n = keep;
}

static int dup_buf(raft_buf *dst, const raft_buf *src) {
  dst->base = NULL;
  dst->len = 0;
  if (src->len == 0) return RAFT_OK;
  dst->base = malloc(src->len);
  if (!dst->base) return RAFT_E_NOMEM;
  memcpy(dst->base, src->base, src->len);
  dst->len = src->len;
  return RAFT_OK;
}

/* ---- the read vtable ---- */

static int ms_initial_state(void *ctx, raft_hard_state *hs, raft_conf_state *cs) {
  mem_storage *ms = ctx;
  *hs = ms->hs;
  *cs = ms->cs;
  return RAFT_OK;
}

static int ms_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes, raft_entry **out,
                      size_t *n) {
  mem_storage *ms = ctx;
  *out = NULL;
  *n = 0;
  if (lo <= offset(ms)) return RAFT_E_COMPACTED;
  if (hi > last(ms) + 1) return RAFT_E_UNAVAILABLE;
  if (lo >= hi) return RAFT_OK;
  size_t cnt = 0;
  uint64_t size = 0;
  for (uint64_t i = lo; i < hi; i++) {
    uint64_t s = ms->ents[i - offset(ms)].data.len;
    if (cnt > 0 && size + s > max_bytes) break;
    size += s;
    cnt++;
  }
  raft_entry *res = calloc(cnt, sizeof *res);
  if (!res) return RAFT_E_NOMEM;
  for (size_t k = 0; k < cnt; k++) {
    const raft_entry *e = &ms->ents[lo - offset(ms) + k];
    res[k] = *e;
    if (dup_buf(&res[k].data, &e->data) != RAFT_OK) {
      raft_entries_free(res, k);
      return RAFT_E_NOMEM;
    }
  }
  *out = res;
  *n = cnt;
  return RAFT_OK;
}

static int ms_term(void *ctx, uint64_t i, uint64_t *term) {
  mem_storage *ms = ctx;
  *term = 0;
  if (i < offset(ms)) return RAFT_E_COMPACTED;
  if (i > last(ms)) return RAFT_E_UNAVAILABLE;
  *term = ms->ents[i - offset(ms)].term;
  return RAFT_OK;
}

static int ms_first_index(void *ctx, uint64_t *i) {
  *i = offset(ctx) + 1;
  return RAFT_OK;
}

static int ms_last_index(void *ctx, uint64_t *i) {
  *i = last(ctx);
  return RAFT_OK;
}

static int ms_snapshot(void *ctx, raft_snapshot *out) {
  mem_storage *ms = ctx;
  *out = (raft_snapshot){0};
  if (ms->snap_temp) return RAFT_E_SNAP_TEMP;
  out->meta = ms->snap.meta;
  return dup_buf(&out->data, &ms->snap.data);
}

/* ---- life cycle and writes ---- */

mem_storage *mem_storage_new(void) {
  mem_storage *ms = calloc(1, sizeof *ms);
  if (!ms) return NULL;
  if (reserve(ms, 64) != RAFT_OK) {
    free(ms);
    return NULL;
  }
  ms->ents[0] = (raft_entry){0};
  ms->n = 1;
  ms->iface = (raft_storage){ms,          ms_initial_state, ms_entries, ms_term,
                             ms_first_index, ms_last_index,  ms_snapshot};
  return ms;
}

void mem_storage_free(mem_storage *ms) {
  if (!ms) return;
  truncate_to(ms, 0);
  free(ms->ents);
  free(ms->snap.data.base);
  free(ms);
}

const raft_storage *mem_storage_iface(mem_storage *ms) { return &ms->iface; }

int mem_storage_append(mem_storage *ms, const raft_entry *ents, size_t n) {
  if (n == 0) return RAFT_OK;
  uint64_t first = offset(ms) + 1;
  /* Skip what the snapshot already covers. */
  size_t skip = 0;
  while (skip < n && ents[skip].index < first) skip++;
  if (skip == n) return RAFT_OK;
  ents += skip;
  n -= skip;
  for (size_t k = 1; k < n; k++)
    if (ents[k].index != ents[0].index + k) return RAFT_E_INVAL;
  if (ents[0].index > last(ms) + 1) return RAFT_E_INVAL;
  truncate_to(ms, (size_t)(ents[0].index - offset(ms)));
  if (reserve(ms, ms->n + n) != RAFT_OK) return RAFT_E_NOMEM;
  for (size_t k = 0; k < n; k++) {
    ms->ents[ms->n] = ents[k];
    if (dup_buf(&ms->ents[ms->n].data, &ents[k].data) != RAFT_OK) return RAFT_E_NOMEM;
    ms->n++;
  }
  return RAFT_OK;
}

int mem_storage_set_hard_state(mem_storage *ms, const raft_hard_state *hs) {
  ms->hs = *hs;
  return RAFT_OK;
}

void mem_storage_hard_state(const mem_storage *ms, raft_hard_state *hs) { *hs = ms->hs; }

int mem_storage_set_conf_state(mem_storage *ms, const raft_conf_state *cs) {
  if (cs->n_voters > RAFT_MAX_VOTERS) return RAFT_E_INVAL;
  ms->cs = *cs;
  return RAFT_OK;
}

int mem_storage_apply_snapshot(mem_storage *ms, const raft_snapshot *snap) {
  if (snap->meta.index < ms->snap.meta.index) return RAFT_E_INVAL;
  raft_buf data;
  if (dup_buf(&data, &snap->data) != RAFT_OK) return RAFT_E_NOMEM;
  free(ms->snap.data.base);
  ms->snap.meta = snap->meta;
  ms->snap.data = data;
  ms->cs = snap->meta.conf;
  truncate_to(ms, 0);
  ms->ents[0] = (raft_entry){.term = snap->meta.term, .index = snap->meta.index};
  ms->n = 1;
  return RAFT_OK;
}

int mem_storage_create_snapshot(mem_storage *ms, uint64_t index, const raft_conf_state *cs,
                                const void *data, size_t len) {
  if (index <= ms->snap.meta.index) return RAFT_E_INVAL;
  if (index > last(ms) || index < offset(ms)) return RAFT_E_UNAVAILABLE;
  raft_buf src = {(uint8_t *)data, len}, copy;
  if (dup_buf(&copy, &src) != RAFT_OK) return RAFT_E_NOMEM;
  free(ms->snap.data.base);
  ms->snap.meta.index = index;
  ms->snap.meta.term = ms->ents[index - offset(ms)].term;
  if (cs) ms->cs = *cs;
  ms->snap.meta.conf = ms->cs;
  ms->snap.data = copy;
  return RAFT_OK;
}

int mem_storage_compact(mem_storage *ms, uint64_t index) {
  if (index <= offset(ms)) return RAFT_E_COMPACTED;
  if (index > last(ms)) return RAFT_E_UNAVAILABLE;
  size_t k = (size_t)(index - offset(ms));
  for (size_t i = 0; i < k; i++) free(ms->ents[i].data.base);
  free(ms->ents[k].data.base);
  ms->ents[0] = (raft_entry){.term = ms->ents[k].term, .index = index};
  memmove(&ms->ents[1], &ms->ents[k + 1], (ms->n - k - 1) * sizeof *ms->ents);
  ms->n -= k;
  return RAFT_OK;
}

void mem_storage_set_snapshot_temp_unavailable(mem_storage *ms, bool on) { ms->snap_temp = on; }

void mem_storage_snapshot_meta(const mem_storage *ms, raft_snapshot_meta *meta) {
  *meta = ms->snap.meta;
}
