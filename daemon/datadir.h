/* datadir: the data directory: its format record (quorumd.meta), identity (member and cluster
 * ids) and the paths of its two LevelDB databases. A directory of another format or program is refused, untouched. */
#ifndef QUORUM_DAEMON_DATADIR_H
#define QUORUM_DAEMON_DATADIR_H

#include <stddef.h>
#include <stdint.h>

#define DATADIR_FORMAT "quorumd-data 2" /* 2: the log is a Raft log */

typedef struct datadir {
  char tree_path[4096]; /* the tree store's LevelDB */
  char log_path[4096];  /* the raft log (wal_storage) */
  char old_log_path[4096]; /* where versions before the WAL kept it (a LevelDB), imported */
  uint64_t member_id;
  uint64_t cluster_id;
  int created; /* initialised by this call */
} datadir;

/* Opens or initialises dir. For a new directory the member id is member_id when it is not 0
 * (a member joining a running cluster takes the id the cluster gave it), else derived from
 * peer_urls (comma-joined) and token; the cluster id from cluster_seed and token. wal_dir
 * (NULL or "": dir/wal) is where the raft log lives. Returns 0 or negative errno with a
 * one-line message in err. */
int datadir_open(datadir *d, const char *dir, const char *wal_dir, const char *name,
                 const char *peer_urls, uint64_t member_id, const char *cluster_seed,
                 const char *token, char *err, size_t errlen);

/* The format record DIR/quorumd.meta: read (the ids into d, the member's name into NAME when
 * given; -EINVAL for another format), and written atomically (synced). 0 or a negative errno
 * with a message in err. quorumctl backup uses both. */
int datadir_read_meta(const char *dir, datadir *d, char *name, size_t nlen, char *err,
                      size_t errlen);
int datadir_write_meta(const char *dir, const datadir *d, const char *name, char *err,
                       size_t errlen);

/* Whether dir holds a member already (its format record exists). */
int datadir_exists(const char *dir);

/* FNV-1a, 64-bit, used to derive ids. */
uint64_t datadir_hash(const char *s, uint64_t seed);

#endif
