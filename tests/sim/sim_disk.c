/* sim_disk: the simulated disk (volatile and durable copies of a node's log, a journal of
 * unsynced writes) and the raft_storage read side over the volatile copy. */
#include "tests/sim/sim_disk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *sim_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) {
    fprintf(stderr, "sim: out of memory\n");
    abort();
  }
  return p;
}

static raft_buf sim_buf_copy(const uint8_t *base, size_t len) {
  raft_buf b = {NULL, len};
  if (len) {
    b.base = sim_xmalloc(len);
    memcpy(b.base, base, len);
  }
  return b;
}

static void sim_entry_copy(raft_entry *dst, const raft_entry *src) {
  *dst = *src;
  dst->data = sim_buf_copy(src->data.base, src->data.len);
}

static void sim_log_free(sim_log *l) {
  for (size_t i = 0; i < l->n; i++) free(l->ents[i].data.base);
  free(l->ents);
  free(l->snap.data.base);
  memset(l, 0, sizeof *l);
}

static void sim_log_copy(sim_log *dst, const sim_log *src) {
  *dst = *src;
  dst->snap.data = sim_buf_copy(src->snap.data.base, src->snap.data.len);
  dst->cap = src->n;
  dst->ents = src->n ? sim_xmalloc(src->n * sizeof *dst->ents) : NULL;
  for (size_t i = 0; i < src->n; i++) sim_entry_copy(&dst->ents[i], &src->ents[i]);
}

static void sim_log_truncate(sim_log *l, size_t keep) {
  for (size_t i = keep; i < l->n; i++) free(l->ents[i].data.base);
  if (keep < l->n) l->n = keep;
}

/* Applies w to l (copying its data). Returns NULL or an error text. */
static const char *sim_log_apply(sim_log *l, const sim_write *w) {
  switch (w->kind) {
  case SIM_WRITE_HS:
    l->hs = w->hs;
    return NULL;
  case SIM_WRITE_SNAPSHOT:
    free(l->snap.data.base);
    l->snap.meta = w->snap.meta;
    l->snap.data = sim_buf_copy(w->snap.data.base, w->snap.data.len);
    l->conf = w->snap.meta.conf;
    sim_log_truncate(l, 0);
    l->offset = w->snap.meta.index;
    l->offset_term = w->snap.meta.term;
    return NULL;
  case SIM_WRITE_SAVE_SNAPSHOT:
    free(l->snap.data.base);
    l->snap.meta = w->snap.meta;
    l->snap.data = sim_buf_copy(w->snap.data.base, w->snap.data.len);
    l->conf = w->snap.meta.conf;
    return NULL;
  case SIM_WRITE_COMPACT: {
    if (w->compact <= l->offset) return NULL;
    if (w->compact > l->offset + l->n) return "compaction beyond the last index";
    size_t k = (size_t)(w->compact - l->offset);
    l->offset_term = l->ents[k - 1].term;
    for (size_t i = 0; i < k; i++) free(l->ents[i].data.base);
    memmove(l->ents, l->ents + k, (l->n - k) * sizeof *l->ents);
    l->n -= k;
    l->offset = w->compact;
    return NULL;
  }
  case SIM_WRITE_ENTRIES: {
    size_t from = 0;
    while (from < w->n && w->ents[from].index <= l->offset) from++; /* already compacted */
    if (from == w->n) return NULL;
    uint64_t first = w->ents[from].index;
    if (first > l->offset + l->n + 1) return "entries leave a gap after the last index";
    sim_log_truncate(l, (size_t)(first - l->offset - 1));
    if (l->n + (w->n - from) > l->cap) {
      l->cap = (l->n + (w->n - from)) * 2;
      raft_entry *e = realloc(l->ents, l->cap * sizeof *e);
      if (!e) abort();
      l->ents = e;
    }
    for (size_t i = from; i < w->n; i++) {
      if (w->ents[i].index != l->offset + l->n + 1) return "entries are not contiguous";
      sim_entry_copy(&l->ents[l->n++], &w->ents[i]);
    }
    return NULL;
  }
  default:
    return "unknown write";
  }
}

static void sim_write_free(sim_write *w) {
  free(w->snap.data.base);
  for (size_t i = 0; i < w->n; i++) free(w->ents[i].data.base);
  free(w->ents);
}

/* Applies w to the volatile copy and keeps it (owned) in the journal. */
static const char *sim_disk_do(sim_disk *d, sim_write *w) {
  const char *err = sim_log_apply(&d->vol, w);
  if (d->n_journal == d->cap_journal) {
    d->cap_journal = d->cap_journal ? 2 * d->cap_journal : 16;
    sim_write *j = realloc(d->journal, d->cap_journal * sizeof *j);
    if (!j) abort();
    d->journal = j;
  }
  d->journal[d->n_journal++] = *w;
  d->writes++;
  return err;
}

void sim_disk_sync(sim_disk *d) {
  for (size_t i = 0; i < d->n_journal; i++) {
    sim_log_apply(&d->dur, &d->journal[i]);
    sim_write_free(&d->journal[i]);
  }
  d->n_journal = 0;
  d->syncs++;
}

void sim_disk_crash(sim_disk *d, size_t keep) {
  for (size_t i = 0; i < d->n_journal; i++) {
    if (i < keep) sim_log_apply(&d->dur, &d->journal[i]);
    sim_write_free(&d->journal[i]);
  }
  d->n_journal = 0;
  sim_log_free(&d->vol);
  sim_log_copy(&d->vol, &d->dur);
}

const char *sim_disk_write_ready(sim_disk *d, const raft_ready *rd, bool sync) {
  const char *err = NULL;
  if (rd->has_snapshot) {
    sim_write w = {.kind = SIM_WRITE_SNAPSHOT, .snap = rd->snapshot};
    w.snap.data = sim_buf_copy(rd->snapshot.data.base, rd->snapshot.data.len);
    err = sim_disk_do(d, &w);
  }
  if (!err && rd->n_entries) {
    sim_write w = {.kind = SIM_WRITE_ENTRIES, .n = rd->n_entries};
    w.ents = sim_xmalloc(rd->n_entries * sizeof *w.ents);
    for (size_t i = 0; i < rd->n_entries; i++) sim_entry_copy(&w.ents[i], &rd->entries[i]);
    err = sim_disk_do(d, &w);
  }
  if (!err && rd->hs_changed) {
    sim_write w = {.kind = SIM_WRITE_HS, .hs = rd->hs};
    err = sim_disk_do(d, &w);
  }
  if (sync) sim_disk_sync(d);
  return err;
}

const char *sim_disk_save_snapshot(sim_disk *d, const raft_snapshot_meta *meta, const void *data,
                                   size_t len, uint64_t compact_to) {
  sim_write w = {.kind = SIM_WRITE_SAVE_SNAPSHOT};
  w.snap.meta = *meta;
  w.snap.data = sim_buf_copy(data, len);
  const char *err = sim_disk_do(d, &w);
  if (!err) {
    sim_write c = {.kind = SIM_WRITE_COMPACT, .compact = compact_to};
    err = sim_disk_do(d, &c);
  }
  sim_disk_sync(d);
  return err;
}

uint64_t sim_disk_last_index(const sim_disk *d) { return d->vol.offset + d->vol.n; }

const raft_entry *sim_disk_entry(const sim_disk *d, uint64_t i) {
  if (i <= d->vol.offset || i > d->vol.offset + d->vol.n) return NULL;
  return &d->vol.ents[i - d->vol.offset - 1];
}

uint64_t sim_disk_term(const sim_disk *d, uint64_t i) {
  if (i == d->vol.offset) return d->vol.offset_term;
  const raft_entry *e = sim_disk_entry(d, i);
  return e ? e->term : 0;
}

/* ---- raft_storage over the volatile copy ---- */

static int sim_st_initial(void *ctx, raft_hard_state *hs, raft_conf_state *cs) {
  const sim_disk *d = ctx;
  *hs = d->vol.hs;
  *cs = d->vol.conf;
  return RAFT_OK;
}

static int sim_st_entries(void *ctx, uint64_t lo, uint64_t hi, uint64_t max_bytes,
                          raft_entry **out, size_t *n) {
  const sim_disk *d = ctx;
  *out = NULL;
  *n = 0;
  if (lo <= d->vol.offset) return RAFT_E_COMPACTED;
  if (hi > sim_disk_last_index(d) + 1 || lo > hi) return RAFT_E_UNAVAILABLE;
  if (lo == hi) return RAFT_OK;
  raft_entry *e = sim_xmalloc((size_t)(hi - lo) * sizeof *e);
  uint64_t bytes = 0;
  size_t k = 0;
  for (uint64_t i = lo; i < hi; i++) {
    const raft_entry *src = sim_disk_entry(d, i);
    bytes += src->data.len;
    if (k > 0 && bytes > max_bytes) break;
    sim_entry_copy(&e[k++], src);
  }
  *out = e;
  *n = k;
  return RAFT_OK;
}

static int sim_st_term(void *ctx, uint64_t i, uint64_t *term) {
  const sim_disk *d = ctx;
  if (i < d->vol.offset) return RAFT_E_COMPACTED;
  if (i > sim_disk_last_index(d)) return RAFT_E_UNAVAILABLE;
  *term = sim_disk_term(d, i);
  return RAFT_OK;
}

static int sim_st_first(void *ctx, uint64_t *i) {
  *i = ((const sim_disk *)ctx)->vol.offset + 1;
  return RAFT_OK;
}

static int sim_st_last(void *ctx, uint64_t *i) {
  *i = sim_disk_last_index(ctx);
  return RAFT_OK;
}

static int sim_st_snapshot(void *ctx, raft_snapshot *out) {
  const sim_disk *d = ctx;
  out->meta = d->vol.snap.meta;
  if (out->meta.index == 0) out->meta.conf = d->vol.conf;
  out->data = sim_buf_copy(d->vol.snap.data.base, d->vol.snap.data.len);
  return RAFT_OK;
}

void sim_disk_init(sim_disk *d, const raft_conf_state *bootstrap) {
  memset(d, 0, sizeof *d);
  if (bootstrap) {
    /* A founding member starts from a snapshot at index 1, term 1, holding the configuration
     * and the empty store, so the bootstrap configuration is part of the replicated state: a
     * node added later gets it with the snapshot (see FINDINGS.md, finding 1). */
    sim_log *l[2] = {&d->vol, &d->dur};
    for (int i = 0; i < 2; i++) {
      l[i]->conf = *bootstrap;
      l[i]->hs = (raft_hard_state){.term = 1, .commit = 1};
      l[i]->snap.meta = (raft_snapshot_meta){.index = 1, .term = 1, .conf = *bootstrap};
      l[i]->offset = l[i]->offset_term = 1;
    }
  }
  d->storage = (raft_storage){.ctx = d,
                              .initial_state = sim_st_initial,
                              .entries = sim_st_entries,
                              .term = sim_st_term,
                              .first_index = sim_st_first,
                              .last_index = sim_st_last,
                              .snapshot = sim_st_snapshot};
}

void sim_disk_free(sim_disk *d) {
  for (size_t i = 0; i < d->n_journal; i++) sim_write_free(&d->journal[i]);
  free(d->journal);
  sim_log_free(&d->vol);
  sim_log_free(&d->dur);
}
