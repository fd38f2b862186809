/* mem_storage: an in-memory raft_storage (the read vtable) plus the write operations a driver
 * performs from ready batches. Used by the core's tests and the simulator; not thread-safe.
 *
 * Layout as etcd's MemoryStorage: a dummy entry at the snapshot's index/term precedes the
 * entries, so term(first_index - 1) is the snapshot's term; first_index = snapshot index + 1.
 * The conf state returned by initial_state is the one set last (set_conf_state, a snapshot
 * applied or created with a conf); drivers set it when they apply a conf change. */
#ifndef QUORUM_RAFT_STORAGE_MEM_STORAGE_H
#define QUORUM_RAFT_STORAGE_MEM_STORAGE_H

#include "raft/core/raft.h"

typedef struct mem_storage mem_storage;

mem_storage *mem_storage_new(void);
void mem_storage_free(mem_storage *ms);
/* The read vtable (ctx = ms); valid as long as ms. */
const raft_storage *mem_storage_iface(mem_storage *ms);

/* Appends copies of ents, first deleting every stored entry with index >= ents[0].index.
 * Entries at or below the snapshot index are skipped. A gap after the last index is
 * RAFT_E_INVAL. */
int mem_storage_append(mem_storage *ms, const raft_entry *ents, size_t n);
int mem_storage_set_hard_state(mem_storage *ms, const raft_hard_state *hs);
void mem_storage_hard_state(const mem_storage *ms, raft_hard_state *hs);
int mem_storage_set_conf_state(mem_storage *ms, const raft_conf_state *cs);
/* Replaces everything with the snapshot (its conf becomes the conf state). A snapshot older
 * than the current one is refused with RAFT_E_INVAL. */
int mem_storage_apply_snapshot(mem_storage *ms, const raft_snapshot *snap);
/* Makes a snapshot at index (<= last index) holding data; cs NULL = the current conf state.
 * Older than the current snapshot: RAFT_E_INVAL. */
int mem_storage_create_snapshot(mem_storage *ms, uint64_t index, const raft_conf_state *cs,
                                const void *data, size_t len);
/* Discards entries up to and including index (it becomes the dummy). index <= the first index
 * - 1: RAFT_E_COMPACTED; beyond the last: RAFT_E_UNAVAILABLE. */
int mem_storage_compact(mem_storage *ms, uint64_t index);
/* Test hook: snapshot() answers RAFT_E_SNAP_TEMP while set. */
void mem_storage_set_snapshot_temp_unavailable(mem_storage *ms, bool on);
/* The current snapshot's meta (index 0 when none). */
void mem_storage_snapshot_meta(const mem_storage *ms, raft_snapshot_meta *meta);

#endif
