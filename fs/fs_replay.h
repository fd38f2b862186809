/* fs_replay: remote changes made visible to inotify (shared/docs/fuse.md 2(a), "self-VFS").
 * FUSE has no notification that raises IN_CREATE, IN_MODIFY or IN_DELETE, so the watch thread
 * (the "applier") makes the VFS call a local change would have made on its own mount, and the
 * kernel raises the events itself:
 *   file created    open(O_CREAT|O_EXCL|O_WRONLY) [+ futimens(mtime) when not empty] + close
 *                   -> IN_CREATE, IN_OPEN, [IN_MODIFY,] IN_CLOSE_WRITE
 *   file changed    utimensat(mtime only) + open(O_WRONLY) + close
 *                   -> IN_MODIFY, IN_OPEN, IN_CLOSE_WRITE
 *   dir created     mkdir -> IN_CREATE|IN_ISDIR
 *   deleted/expired unlink, or rmdir after the children the kernel knows -> IN_DELETE
 *                   (IN_DELETE|IN_ISDIR)
 * The handlers recognise these requests by the caller's thread id (fs_self) and answer them
 * from the mirror without a request to the store. The applier holds no lock during a call, so
 * a handler never waits for it. A change whose call fails (or every change with -o
 * notify=inval) falls back to invalidating the kernel's caches. */
#ifndef QUORUM_FS_REPLAY_H
#define QUORUM_FS_REPLAY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "fs/fs.h"

typedef enum fs_rop_kind {
  FS_ROP_CREATE,      /* a file: node HIDDEN until the self create */
  FS_ROP_MKDIR,       /* a directory: node HIDDEN until the self mkdir */
  FS_ROP_MODIFY,      /* a file's value changed */
  FS_ROP_UNLINK,      /* a file: node DYING until the self unlink */
  FS_ROP_RMDIR,       /* a directory: node DYING until the self rmdir */
  FS_ROP_INVAL_INODE, /* invalidation only: ino */
  FS_ROP_INVAL_ENTRY, /* invalidation only: parent + name */
  FS_ROP_DELETE,      /* invalidation only: notify_delete(parent, ino, name) */
} fs_rop_kind;

typedef struct fs_rop {
  fs_rop_kind kind;
  char *key;
  uint64_t ino, parent;
  int nonempty;       /* FS_ROP_CREATE: a value to report with IN_MODIFY */
  struct timespec mtime;
} fs_rop;

typedef struct fs_rops {
  fs_rop *v;
  size_t n, cap;
} fs_rops;

/* Appends an operation (KEY copied). */
void fs_rops_add(fs_rops *l, fs_rop_kind kind, const char *key, uint64_t parent, uint64_t ino);
void fs_rops_free(fs_rops *l);

/* Makes the calls of L in order, on the calling (applier) thread, with no lock held; *ROOTFD is
 * an O_PATH descriptor of the mount root, opened on first use and closed at the end (-1). Frees
 * L's contents. */
void fs_replay_run(fs *f, struct fuse_session *se, const char *mountpoint, int *rootfd, fs_rops *l);

/* The path of KEY relative to the mount root ("" for the root itself); NULL when not below it. */
const char *fs_replay_relpath(const fs *f, const char *key);

#endif
