/* ldb_storage: the Raft log as versions before the WAL kept it, in a LevelDB of its own (the
 * data dir's log/). It is read once, by wal_import, to move such a log into a WAL; its write
 * side remains for that import's tests, which make old logs with it.
 *
 * Keys: 'e' be64(index) → be64(term) u8(type) data; 'h' → hard state; 'c' → the applied
 * configuration (conf state at the applied index); 's' → the compaction point (index, term:
 * entries at or below index are gone; the state machine holds them).
 *
 * Not thread-safe: one thread uses it. */
#ifndef QUORUM_RAFT_STORAGE_LDB_STORAGE_H
#define QUORUM_RAFT_STORAGE_LDB_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core/raft.h"

typedef struct raft_ldb raft_ldb;

/* Opens (creating when create is set) the database at path. sync: whether synced writes
 * fsync. Returns 0 or a negative errno with a message in err. */
int raft_ldb_open(raft_ldb **out, const char *path, bool create, bool sync, char *err,
                  size_t errlen);
void raft_ldb_close(raft_ldb *l);

/* The read side (the raft_storage vtable; snapshot() is never available). Valid while l is
 * open. */
const raft_storage *raft_ldb_storage(raft_ldb *l);

/* Persists one ready batch in one write: hs (NULL = unchanged), a received snapshot's meta
 * (NULL = none: the log is reset to start after it), and entries (every stored entry at or
 * above ents[0].index is deleted first). sync: fsync before returning.
 * Returns 0 or RAFT_E_STORAGE. */
int raft_ldb_save(raft_ldb *l, const raft_hard_state *hs, const raft_snapshot_meta *snap,
                  const raft_entry *ents, size_t n, bool sync);

/* Records the configuration in force at the applied index (after a conf change or a snapshot
 * is applied). Synced. */
int raft_ldb_set_conf(raft_ldb *l, const raft_conf_state *cs);
/* Deletes the entries at or below index (which must be applied and durable in the state
 * machine), remembering its term. A bounded number of deletes per call; call again until it
 * returns 0 (1 = more to delete). Returns RAFT_E_* on failure. */
int raft_ldb_compact(raft_ldb *l, uint64_t index);

uint64_t raft_ldb_first_index(const raft_ldb *l);
uint64_t raft_ldb_last_index(const raft_ldb *l);
/* The stored hard state and configuration (zero when fresh). */
void raft_ldb_initial(const raft_ldb *l, raft_hard_state *hs, raft_conf_state *cs);

#endif
