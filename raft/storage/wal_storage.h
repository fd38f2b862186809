/* wal_storage: the Raft log, hard state, configuration and compaction point in a write-ahead
 * log of preallocated segment files, read by the core through the raft_storage vtable and
 * written by the driver, one write (and at most one fdatasync) per ready batch.
 *
 * Why not LevelDB: a synced append to a file that grows makes fdatasync write the inode as
 * well; an overwrite inside a file whose blocks are already written does not, and measured
 * here it syncs ~25% faster. LevelDB would also copy every entry into its memtable, write it
 * again into a table and compact it away later, all on the raft thread's budget.
 *
 * Directory DIR holds segments named %016llx.wal (their sequence number, ascending) and at most
 * one spare, prealloc.tmp (a zero-filled or recycled segment made ready off the raft thread).
 * A segment starts with a header (magic, sequence number, CRC) and a START record (hard state,
 * configuration, compaction point), so that older segments can be deleted. Records:
 *   u32 crc32(sequence number, type, length, payload) | u32 length | u8 type | payload
 * The CRC covers the segment's sequence number, so records left in a recycled segment from its
 * earlier life never pass as records of its new one. A segment that is full is ended with a
 * SEAL record, synced before the next segment exists: only the last segment may end without
 * one, and there the first record that does not check out is the end of the log (a write torn
 * by a crash, never acknowledged). A bad record anywhere else is corruption: open fails.
 *
 * Entries are located by an in-memory table (term, segment, offset, length per index), built at
 * open by one scan; term() never reads a file, entries() reads with pread. Not thread-safe: one
 * thread (the raft driver) uses a raft_wal; its helper thread touches only the spare. */
#ifndef QUORUM_RAFT_STORAGE_WAL_STORAGE_H
#define QUORUM_RAFT_STORAGE_WAL_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core/raft.h"

typedef struct raft_wal raft_wal;

typedef int (*raft_wal_snapshot_fn)(void *arg, raft_snapshot *out);

typedef struct raft_wal_opts {
  bool create;          /* make DIR and a first segment when DIR does not exist */
  bool sync;            /* fdatasync synced writes (false: --unsafe-no-fsync) */
  size_t segment_bytes; /* preallocated size of a segment; 0 = RAFT_WAL_SEGMENT_BYTES */
} raft_wal_opts;

#define RAFT_WAL_SEGMENT_BYTES (8u << 20)

/* Opens the log in dir. Returns 0, or a negative errno with a message in err (-ENOENT: dir
 * does not exist and create is not set; -EIO: a corrupt log, left as it is). */
int raft_wal_open(raft_wal **out, const char *dir, const raft_wal_opts *opts, char *err,
                  size_t errlen);
void raft_wal_close(raft_wal *w);

/* The read side, for raft_config.storage. Valid while w is open. */
const raft_storage *raft_wal_storage(raft_wal *w);
void raft_wal_set_snapshotter(raft_wal *w, raft_wal_snapshot_fn fn, void *arg);

/* Persists one ready batch in one write: hs (NULL = unchanged), a received snapshot's meta
 * (NULL = none; else the log is reset to start after it), and entries (every stored entry at
 * or above ents[0].index is replaced). sync: fdatasync before returning.
 * Returns 0 or RAFT_E_STORAGE / RAFT_E_COMPACTED / RAFT_E_UNAVAILABLE (a gap). */
int raft_wal_save(raft_wal *w, const raft_hard_state *hs, const raft_snapshot_meta *snap,
                  const raft_entry *ents, size_t n, bool sync);

/* Records the configuration in force at the applied index. Synced. */
int raft_wal_set_conf(raft_wal *w, const raft_conf_state *cs);
/* Forgets the entries at or below index (applied and durable in the state machine), and
 * deletes or recycles the segments that then hold nothing needed. Returns 0 or RAFT_E_*. */
int raft_wal_compact(raft_wal *w, uint64_t index);
/* Raises the stored commit index to at least commit. Synced. */
int raft_wal_raise_commit(raft_wal *w, uint64_t commit);

uint64_t raft_wal_first_index(const raft_wal *w);
uint64_t raft_wal_last_index(const raft_wal *w);
/* The stored hard state and configuration (zero when fresh). */
void raft_wal_initial(const raft_wal *w, raft_hard_state *hs, raft_conf_state *cs);
/* Removes a log's directory (segment files and spare; a leftover DIR.tmp of a creation or an
 * import cut short). 0 when it does not exist. Returns 0 or a negative errno. */
int raft_wal_remove(const char *dir);
/* Segment files in the directory now (the spare not counted), for tests and stats. */
size_t raft_wal_segments(const raft_wal *w);

#endif
