/* sim_disk: a node's simulated disk and its raft_storage. It keeps two copies of the log
 * (hard state, configuration, snapshot, entries): the volatile one the node reads and writes,
 * and the durable one that survives a crash. Writes go to the volatile copy at once and to a
 * journal; a sync replays the journal onto the durable copy. A crash keeps the durable copy plus
 * a prefix of the unsynced journal (a torn tail), like a log-structured store would. */
#ifndef QUORUM_TESTS_SIM_SIM_DISK_H
#define QUORUM_TESTS_SIM_SIM_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core/raft.h"

typedef struct sim_log {
  raft_hard_state hs;
  raft_conf_state conf;      /* the bootstrap configuration, or the snapshot's */
  raft_snapshot snap;        /* meta.index 0: none; data owned */
  uint64_t offset, offset_term; /* entries[0] has index offset + 1; term(offset) is known */
  raft_entry *ents;          /* data owned */
  size_t n, cap;
} sim_log;

typedef enum sim_write_kind {
  SIM_WRITE_HS = 0,
  SIM_WRITE_ENTRIES,
  SIM_WRITE_SNAPSHOT, /* install: replaces the whole log */
  SIM_WRITE_SAVE_SNAPSHOT, /* the application's own snapshot: the log stays */
  SIM_WRITE_COMPACT,
} sim_write_kind;

typedef struct sim_write {
  uint8_t kind;
  raft_hard_state hs;
  raft_snapshot snap;        /* data owned */
  raft_entry *ents;          /* data owned */
  size_t n;
  uint64_t compact;          /* COMPACT: discard entries <= this */
} sim_write;

typedef struct sim_disk {
  sim_log vol;
  sim_log dur;
  sim_write *journal; /* writes applied to vol but not yet to dur, in order */
  size_t n_journal, cap_journal;
  raft_storage storage; /* reads vol */
  uint64_t syncs, writes; /* counters for the summary */
} sim_disk;

/* An empty disk; bootstrap (may be NULL) is the initial configuration of a founding member. */
void sim_disk_init(sim_disk *d, const raft_conf_state *bootstrap);
void sim_disk_free(sim_disk *d);

/* The write of one ready: snapshot, entries, hard state, in one step; synced when sync.
 * Returns NULL or a text describing a write the core must never ask for (a gap in the log). */
const char *sim_disk_write_ready(sim_disk *d, const raft_ready *rd, bool sync);
/* The application's snapshot at meta->index (data copied) and the compaction of the log up to
 * compact_to; synced. Returns NULL or an error text. */
const char *sim_disk_save_snapshot(sim_disk *d, const raft_snapshot_meta *meta, const void *data,
                                   size_t len, uint64_t compact_to);
void sim_disk_sync(sim_disk *d);
/* A crash: the volatile copy becomes the durable one plus the first `keep` unsynced writes. */
void sim_disk_crash(sim_disk *d, size_t keep);

uint64_t sim_disk_last_index(const sim_disk *d);
/* The term of entry i in the volatile log, or 0 when it is not there. */
uint64_t sim_disk_term(const sim_disk *d, uint64_t i);
/* The volatile entry at index i, or NULL (compacted or beyond the end). */
const raft_entry *sim_disk_entry(const sim_disk *d, uint64_t i);

#endif
