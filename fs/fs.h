/* fs: the state of one quorumfs mount (the FUSE client of issue 4), reached from every request
 * through fuse_req_userdata. No globals: one struct fs per mount.
 *
 * Semantics (shared/docs/fuse.md): v2 keys are regular files, v2 directories directories;
 * hidden "_" keys are reachable by name but not listed. The whole tree under the prefix is
 * mirrored in memory (fs_mirror.c): loaded at mount, kept current by one recursive watch
 * stream (fs_watch.c), so lookups, stat, listings and read-only opens are answered without a
 * request; while the watch is down they are answered from the last known state (unknown names:
 * a GET, EIO when the cluster cannot be reached). Remote changes are replayed through the
 * mount itself (fs_replay.c) so the kernel raises the inotify events a local change would.
 * Writes edit a private whole-value buffer which reaches the store in one PUT at flush/fsync
 * (errors from close()): prevIndex for read-modify-write (101 -> ESTALE), prevExist=true after
 * O_TRUNC, prevExist=false for a create, an existing TTL kept. O_CREAT|O_EXCL creates at open.
 * A handle dirty only by O_TRUNC/create waits for a write or RELEASE, so a shell's "> key"
 * never stores a transient "". Requests are served by several session threads
 * (fs_session.c); `lock` guards the inode table and is released during network calls. */
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

/* The watch's state. CONNECTING (the zero value) until its first stream is answered, and again
 * while it watches anew after a stream ended normally: events are on their way, from the
 * history if need be. LOST after a failed attempt, until a stream is answered again. */
enum { FS_WATCH_CONNECTING = 0, FS_WATCH_SYNCED = 1, FS_WATCH_LOST = 2 };

/* The default magic write-only name in every directory (-o post_name=): writing it POSTs an
 * in-order key. */
#define FS_POST_NAME ".post"

typedef struct fs_thread fs_thread;
struct fs_watch;

typedef struct fs {
  proto_v2_client_opts client_opts; /* each session thread makes its own client from these */
  char **endpoints;          /* as given at mount */
  size_t n_endpoints;
  pthread_mutex_t ep_mu;     /* the list in use (fs_endpoints.c): the given endpoints, then the */
  char **ep_cur;             /* members' client URLs not among them, from /v2/members */
  size_t n_ep_cur;
  unsigned ep_gen;           /* bumped when ep_cur changes (atomic) */
  double sync_interval;      /* -o sync_interval=S between /v2/members reads; 0 = never */
  pthread_key_t thread_key;  /* the calling thread's fs_thread */
  fs_thread *threads;        /* every fs_thread made (freed at unmount) */
  char *prefix;            /* etcd key of the mount root: "/" or "/app" (no trailing slash) */
  char *mountpoint;        /* absolute */
  fs_itable nodes;         /* inode table */
  pthread_mutex_t lock;    /* held by every request (but not during its network calls) and by
                              the watch thread while it changes `nodes` */
  pthread_cond_t idle;     /* broadcast when a request that wrote to the store ends, and when
                              a remote create's replay is done */
  uid_t uid;
  gid_t gid;
  mode_t umask;            /* files 0644 and directories 0755, minus this */
  int read_only;           /* -o ro: every change that is not a self-replay gives EROFS */
  int notify_vfs;          /* replay remote changes as VFS calls (inotify); 0 = invalidate only */
  int lww;                 /* -o lww: a file's close writes its value whatever changed meanwhile */
  int write_clears_ttl;    /* -o write_clears_ttl: a rewrite drops the key's TTL (v2's update) */
  int quorum_reads;        /* -o quorum: reads from the store are quorum=true (linearizable) */
  int quiet;               /* -o quiet: chmod/chown succeed and change nothing (vfat's quiet) */
  int swapfiles;           /* -o swapfiles: names like vim's swap files may be created */
  const char *post_name;   /* the in-order name of every directory (FS_POST_NAME by default) */
  int watch_state;         /* FS_WATCH_*: whether the mirror is current (read atomically) */
  int applier_tid;         /* thread id of the watch thread (its requests are self-replays) */
  struct fs_dirbuf *open_dirs; /* listings the kernel holds open (fs_ops_dir.c) */
  int n_session_threads;
  struct fs_watch *watch;
  double attr_timeout;     /* kernel attr/entry cache, seconds */
  long op_timeout_ms;      /* bound of one filesystem operation across all endpoints */
  struct timespec mount_time;
  uint64_t mount_index;    /* X-Etcd-Index at mount: nodes not modified since get mount_time */
  size_t mount_ep;         /* the endpoint that answered the mount's first read: the watch's
                            * first (one listed before it may be down or holding requests) */
  uint64_t last_index;     /* X-Etcd-Index of the last answer */
  int connected;           /* the last request reached the cluster */
  struct fs_tomb *tombs;   /* own deletes the watch has not yet passed (fs_mirror.c) */
  size_t n_tombs, cap_tombs;
} fs;

/* The mount of a request, with the operation's deadline started (and the request remembered,
 * for interrupts, in the calling thread's fs_thread). */
fs *fs_begin(fuse_req_t req);

/* The calling thread's v2 client (made on first use). NULL on out-of-memory. */
proto_v2_client *fs_client(fs *f);

/* REQ comes from the applier: the VFS call replaying a remote change (fuse.md 2(a)). */
int fs_self(fuse_req_t req);

/* -o ro: a change requested by anyone but the applier gives EROFS. */
int fs_refuse_write(fuse_req_t req);

/* The etcd key of NAME in the directory whose key is DIR (malloc'd; NULL on out-of-memory). */
char *fs_child_key(const char *dir, const char *name);

/* The last component of KEY. */
const char *fs_key_base(const char *key);

/* Names beginning with '_' are hidden v2 keys: listed by nobody, reachable by name. */
int fs_key_hidden(const char *key);

#endif
