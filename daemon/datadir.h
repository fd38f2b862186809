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

/* The first request id of this start (node_config.request_base): above every request id and
 * read context an earlier start of this member used, whatever the wall clock did since (an
 * entry proposed before a restart can be applied after it, and is matched to its request by
 * id). It is max(now_ms << 20, the last start's + 2^44: no start makes 2^44 requests), recorded
 * in DIR/quorumd.requests (synced) before it is returned; *prev is the last start's (0: none).
 * 0 or a negative errno with a message in err. datadir_request_restore puts PREV back (a start
 * that fails afterwards leaves the data dir as it found it). */
#define DATADIR_REQUEST_SPAN (1ULL << 44)
int datadir_request_base(const char *dir, uint64_t now_ms, uint64_t *base, uint64_t *prev,
                         char *err, size_t errlen);
void datadir_request_restore(const char *dir, uint64_t prev);

/* Whether dir holds a member already (its format record exists). */
int datadir_exists(const char *dir);

/* FNV-1a, 64-bit, used to derive ids. */
uint64_t datadir_hash(const char *s, uint64_t seed);

#endif
