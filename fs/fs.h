/* fs: the state of one quorumfs mount (the FUSE client of issue 4), reached from every request
 * through fuse_req_userdata. No globals: one struct fs per mount.
 *
 * Semantics (shared/docs/fuse.md): v2 keys are regular files, v2 directories directories;
 * hidden "_" keys are reachable by name but not listed. Every open takes a fresh snapshot of
 * the value (direct_io); writes edit a private whole-value buffer which reaches the store in
 * one PUT at flush/fsync (errors from close()): prevIndex for read-modify-write (101 ->
 * ESTALE), prevExist=true after O_TRUNC, prevExist=false for a create, an existing TTL kept.
 * O_CREAT|O_EXCL creates at open. A handle dirty only by O_TRUNC/create (nothing written)
 * waits for a write or RELEASE, so a shell's "> key" never stores a transient "". A watch
 * thread (fs_watch.c) follows the prefix and invalidates the kernel's caches on every remote
 * change; attributes are cached attr_timeout seconds (0 for hidden keys). The session loop is
 * single-threaded and requests are synchronous, each operation bounded by op_timeout; each
 * request runs under `lock`, which the watch thread takes to update the inode table. */
#ifndef QUORUM_FS_FS_H
#define QUORUM_FS_FS_H

#define FUSE_USE_VERSION 35
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "fs/fs_inode.h"
#include "proto/v2_client.h"

/* The magic write-only name in every directory: writing it POSTs an in-order key. */
#define FS_POST_NAME ".post"

typedef struct fs {
  proto_v2_client *client;
  char *prefix;            /* etcd key of the mount root: "/" or "/app" (no trailing slash) */
  fs_itable nodes;         /* inode table */
  pthread_mutex_t lock;    /* held by every request and by the watch thread on `nodes` */
  uid_t uid;
  gid_t gid;
  double attr_timeout;     /* kernel attr/entry cache, seconds */
  long op_timeout_ms;      /* bound of one filesystem operation across all endpoints */
  struct timespec mount_time;
  uint64_t mount_index;    /* X-Etcd-Index at mount: nodes not modified since get mount_time */
  uint64_t last_index;     /* X-Etcd-Index of the last answer */
  int connected;           /* the last request reached the cluster */
} fs;

/* The mount of a request, with the operation's deadline started. */
fs *fs_begin(fuse_req_t req);

/* The etcd key of NAME in the directory whose key is DIR (malloc'd; NULL on out-of-memory). */
char *fs_child_key(const char *dir, const char *name);

/* The last component of KEY. */
const char *fs_key_base(const char *key);

/* Names beginning with '_' are hidden v2 keys: listed by nobody, reachable by name. */
int fs_key_hidden(const char *key);

#endif
