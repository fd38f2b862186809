/* fs_attr: node attributes. Modes are fixed (files 0644, directories 0755, FS_POST_NAME 0222,
 * minus -o umask), owned by the mounting user or -o uid/gid; v2 has no timestamps, so all three
 * times are the moment this client first saw the node's current modifiedIndex (the mount time
 * for older ones). */
#include "fs/fs_attr.h"

#include <string.h>

#include "fs/fs_handle.h"
#include "fs/fs_mirror.h"

static void attr_set(fs *f, fs_node *node, const fs_kv *kv, int mirror);

/* The answer is another key's: the node was renamed while it was on its way (the lock is
 * released around every request). */
static int renamed(const fs_node *node, const fs_kv *kv) {
  return kv->key && strcmp(kv->key, node->key) != 0;
}

void fs_attr_update(fs *f, fs_node *node, const fs_kv *kv) {
  /* a mirrored node changes with the watch only (else a change read here first would not be
   * recognised as new when its event comes, and would raise no inotify event) */
  if ((node->cached && !node->pending) || renamed(node, kv)) return;
  attr_set(f, node, kv, 0);
}

void fs_attr_written(fs *f, fs_node *node, const fs_kv *kv) {
  /* the watch may have applied a newer state while this answer was on its way */
  if (node->cached && !node->pending && kv->modified_index < node->modified_index) return;
  if (renamed(node, kv)) return;
  attr_set(f, node, kv, 1);
}

/* MIRROR: the answer is to our own write (so the watch will know its event as ours); a read's
 * answer never enters the mirror (its event must still be replayed when it comes). */
static void attr_set(fs *f, fs_node *node, const fs_kv *kv, int mirror) {
  node->is_dir = kv->dir;
  node->size = kv->dir ? 0 : kv->len;
  node->created_index = kv->created_index;
  if (node->modified_index != kv->modified_index || (node->mtime.tv_sec == 0 && node->mtime.tv_nsec == 0)) {
    if (kv->modified_index <= f->mount_index && node->modified_index == 0)
      node->mtime = f->mount_time;
    else
      clock_gettime(CLOCK_REALTIME, &node->mtime);
    node->modified_index = kv->modified_index;
  }
  node->expires_at = kv->expires_at;
  node->pending = 0;
  if (mirror) node->replay = FS_REPLAY_NONE; /* our own write decides what the name is now */
  /* a file's answer is its whole state: into the mirror when its directory is mirrored (a
   * directory's answer lists its children but not theirs: it stays as it was) */
  if (!kv->dir && fs_node_set_value(node, kv->value, kv->len) == 0 && mirror && node->linked &&
      node->parent && node->parent->cached && !fs_mirror_hidden(f, node->key))
    node->cached = 1;
}

void fs_attr_fill(const fs *f, const fs_node *node, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = node->ino;
  st->st_uid = f->uid;
  st->st_gid = f->gid;
  if (node->is_dir) {
    st->st_mode = S_IFDIR | (0755 & ~f->umask);
    st->st_nlink = 2;
  } else {
    st->st_mode = S_IFREG | ((node->is_post ? 0222 : 0644) & ~f->umask);
    st->st_nlink = node->linked ? 1 : 0;
    st->st_size = (off_t)fs_handle_size(node);
  }
  st->st_blksize = 4096;
  st->st_blocks = (st->st_size + 511) / 512;
  st->st_mtim = node->mtime;
  st->st_ctim = node->mtime;
  st->st_atim = node->mtime;
}

double fs_attr_timeout(const fs *f, const fs_node *node) {
  if (node->pending || node->is_post || fs_key_hidden(node->key)) return 0;
  return f->attr_timeout;
}

void fs_attr_entry(fs *f, fs_node *node, struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  node->nlookup++;
  e->ino = node->ino;
  e->generation = 0;
  fs_attr_fill(f, node, &e->attr);
  e->attr_timeout = fs_attr_timeout(f, node);
  e->entry_timeout = e->attr_timeout;
}
