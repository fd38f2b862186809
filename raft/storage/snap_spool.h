/* snap_spool: a snapshot's bytes in a nameless file, mapped, instead of in anonymous memory.
 * A snapshot can be the whole state machine; held in malloc'd memory it must stay resident,
 * while the pages of a mapped file are the kernel's to write back and drop under pressure.
 * The transport receives snapshots this way, and the daemon dumps its own this way. */
#ifndef QUORUM_RAFT_STORAGE_SNAP_SPOOL_H
#define QUORUM_RAFT_STORAGE_SNAP_SPOOL_H

#include <stdint.h>

#include "raft/core/raft.h"

/* A writable shared mapping of a new file of `size` (> 0) bytes in dir. The file has no name
 * (O_TMPFILE; or it loses its name at once where that is not supported), so nothing is left
 * behind by a crash, and its blocks are reserved now: a disk too full fails here, not halfway.
 * Returns the mapping, or NULL with errno set. */
uint8_t *raft_spool_map(const char *dir, uint64_t size);

/* Unmaps such a mapping (the file goes with it): a raft_snapshot's release. */
void raft_spool_release(raft_buf data);

#endif
