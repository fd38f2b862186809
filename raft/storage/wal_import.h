/* wal_import: moves a Raft log kept by earlier versions in LevelDB (ldb_storage) into a
 * write-ahead log (wal_storage): hard state, configuration, compaction point and every entry.
 * The WAL is written beside (DIR.tmp), synced, and renamed into place before the LevelDB is
 * destroyed, so a crash at any point leaves one complete log to start from. */
#ifndef QUORUM_RAFT_STORAGE_WAL_IMPORT_H
#define QUORUM_RAFT_STORAGE_WAL_IMPORT_H

#include <stddef.h>

/* Imports the LevelDB log at ldb_path into a new WAL at wal_dir (which must not exist), then
 * destroys the LevelDB. Returns 0 or a negative errno with a message in err. */
int raft_wal_import_ldb(const char *ldb_path, const char *wal_dir, char *err, size_t errlen);

#endif
