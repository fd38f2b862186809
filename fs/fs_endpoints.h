/* fs_endpoints: a mount's endpoint list kept current from the cluster's members, as etcd's
 * client sync does, so that a long-lived mount follows members replaced one by one. */
#ifndef QUORUM_FS_ENDPOINTS_H
#define QUORUM_FS_ENDPOINTS_H

#include "fs/fs.h"

typedef struct fs_endpoints fs_endpoints;

/* Starts the thread that asks GET /v2/members every f->sync_interval seconds; NULL when the
 * interval is 0 (never) or the thread cannot start (the mount keeps its given endpoints). */
fs_endpoints *fs_endpoints_start(fs *f);
void fs_endpoints_stop(fs_endpoints *e);

/* Brings c up to the mount's current list if it changed since *gen (any thread; *gen is the
 * caller's, 0 at first). Returns 1 when c's list was replaced. */
int fs_endpoints_refresh(fs *f, proto_v2_client *c, unsigned *gen);

/* A copy of the current list (malloc'd strings and array, free with fs_endpoints_free_copy)
 * and its generation; 0, or -1 on out-of-memory. */
int fs_endpoints_copy(fs *f, char ***eps, size_t *n, unsigned *gen);
void fs_endpoints_free_copy(char **eps, size_t n);

#endif
