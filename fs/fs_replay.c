/* fs_replay: the applier's VFS calls on its own mount, and the fallbacks when one fails. */
#include "fs/fs_replay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void fs_rops_add(fs_rops *l, fs_rop_kind kind, const char *key, uint64_t parent, uint64_t ino) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 16;
    fs_rop *v = realloc(l->v, nc * sizeof *v);
    if (!v) return;
    l->v = v;
    l->cap = nc;
  }
  char *k = strdup(key);
  if (!k) return;
  fs_rop *op = &l->v[l->n++];
  memset(op, 0, sizeof *op);
  op->kind = kind;
  op->key = k;
  op->parent = parent;
  op->ino = ino;
}

void fs_rops_free(fs_rops *l) {
  for (size_t i = 0; i < l->n; i++) free(l->v[i].key);
  free(l->v);
  memset(l, 0, sizeof *l);
}

const char *fs_replay_relpath(const fs *f, const char *key) {
  if (strcmp(f->prefix, "/") == 0) return key[0] == '/' ? key + 1 : NULL;
  size_t n = strlen(f->prefix);
  if (strncmp(key, f->prefix, n) != 0) return NULL;
  if (key[n] == 0) return key + n;
  return key[n] == '/' ? key + n + 1 : NULL;
}

/* The self call failed: make the state final and invalidate instead. */
static void fallback(fs *f, struct fuse_session *se, const fs_rop *op) {
  const char *name = fs_key_base(op->key);
  uint64_t ino = 0, parent = op->parent;
  int deleted = 0;
  pthread_mutex_lock(&f->lock);
  fs_node *n = fs_itable_find(&f->nodes, op->key);
  if (n && n->replay == FS_REPLAY_HIDDEN) {
    n->replay = FS_REPLAY_NONE;
    pthread_cond_broadcast(&f->idle);
  } else if (n && n->replay == FS_REPLAY_DYING) {
    ino = n->ino;
    deleted = 1;
    fs_itable_unlink(&f->nodes, n);
    fs_itable_maybe_free(&f->nodes, n);
  } else if (n) {
    ino = n->ino;
  }
  pthread_mutex_unlock(&f->lock);
  if (deleted && parent) {
    if (fuse_lowlevel_notify_delete(se, parent, ino, name, strlen(name)) != 0)
      fuse_lowlevel_notify_inval_entry(se, parent, name, strlen(name));
  } else if (parent) {
    fuse_lowlevel_notify_inval_entry(se, parent, name, strlen(name));
  }
  if (parent) fuse_lowlevel_notify_inval_inode(se, parent, 0, 0);
  if (ino) fuse_lowlevel_notify_inval_inode(se, ino, 0, 0);
}

/* Opened per batch, never kept: an open descriptor would make the mount busy for umount. */
static int open_root(const char *mountpoint, int *rootfd) {
  if (*rootfd < 0) *rootfd = open(mountpoint, O_PATH | O_DIRECTORY | O_CLOEXEC);
  return *rootfd;
}

/* The self create of a file found the name in the kernel already: a lookup read the file from
 * the store while its create event was being applied, and its answer gave the kernel the name
 * (after waiting for this replay in vain: the kernel's lookup held the directory). When the
 * node is still that remote file, it is HIDDEN again, for one more try once the kernel has
 * forgotten the name. */
static int rehide(fs *f, const fs_rop *op) {
  pthread_mutex_lock(&f->lock);
  fs_node *n = fs_itable_find(&f->nodes, op->key);
  int ok = n && n->ino == op->ino && n->linked && n->cached && !n->is_dir && !n->pending &&
           n->replay != FS_REPLAY_DYING;
  if (ok) n->replay = FS_REPLAY_HIDDEN;
  pthread_mutex_unlock(&f->lock);
  return ok;
}

/* One self call; 0 or -1 (errno). */
static int self_call(fs *f, struct fuse_session *se, int root, const fs_rop *op) {
  const char *rel = fs_replay_relpath(f, op->key);
  if (!rel || !*rel) {
    errno = EINVAL;
    return -1;
  }
  struct timespec times[2] = {{0, UTIME_OMIT}, op->mtime};
  switch (op->kind) {
    case FS_ROP_CREATE: {
      int fd = openat(root, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (fd < 0 && errno == EEXIST && rehide(f, op)) { /* a lookup answered meanwhile */
        const char *name = fs_key_base(op->key);
        fuse_lowlevel_notify_inval_entry(se, op->parent, name, strlen(name));
        fd = openat(root, rel, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      }
      if (fd < 0) return -1;
      if (op->nonempty) futimens(fd, times); /* IN_MODIFY: the value is there */
      close(fd);
      return 0;
    }
    case FS_ROP_MKDIR:
      return mkdirat(root, rel, 0755);
    case FS_ROP_MODIFY: {
      if (op->ino) fuse_lowlevel_notify_inval_inode(se, op->ino, 0, 0);
      int rc = utimensat(root, rel, times, 0); /* mtime only: IN_MODIFY */
      int fd = openat(root, rel, O_WRONLY | O_CLOEXEC);
      if (fd >= 0) close(fd); /* IN_CLOSE_WRITE */
      return rc == 0 || fd >= 0 ? 0 : -1;
    }
    case FS_ROP_UNLINK:
      return unlinkat(root, rel, 0);
    case FS_ROP_RMDIR:
      return unlinkat(root, rel, AT_REMOVEDIR);
    default:
      errno = EINVAL;
      return -1;
  }
}

void fs_replay_run(fs *f, struct fuse_session *se, const char *mountpoint, int *rootfd, fs_rops *l) {
  for (size_t i = 0; i < l->n; i++) {
    fs_rop *op = &l->v[i];
    const char *name = fs_key_base(op->key);
    switch (op->kind) {
      case FS_ROP_INVAL_INODE:
        fuse_lowlevel_notify_inval_inode(se, op->ino, 0, 0);
        break;
      case FS_ROP_INVAL_ENTRY:
        fuse_lowlevel_notify_inval_entry(se, op->parent, name, strlen(name));
        break;
      case FS_ROP_DELETE:
        if (fuse_lowlevel_notify_delete(se, op->parent, op->ino, name, strlen(name)) != 0)
          fuse_lowlevel_notify_inval_entry(se, op->parent, name, strlen(name));
        break;
      default: {
        int root = open_root(mountpoint, rootfd);
        /* on success the self request's handler finished the change */
        if ((root < 0 || self_call(f, se, root, op) != 0) && op->kind != FS_ROP_MODIFY)
          fallback(f, se, op); /* (a failed modify has invalidated already) */
        break;
      }
    }
  }
  if (*rootfd >= 0) close(*rootfd);
  *rootfd = -1;
  fs_rops_free(l);
}
