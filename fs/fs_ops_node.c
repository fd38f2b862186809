/* fs_ops_node: lookup, forget, getattr, setattr. Mirrored nodes are answered from memory (also
 * while the cluster is unreachable); others (hidden keys, names the mirror does not have while
 * the watch is down) are read from the store. The kernel caches attributes for
 * fs->attr_timeout seconds (0 for hidden keys). The applier's requests (fs_self) see remote
 * deletes not yet replayed and not remote creates, and change nothing in the store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_attr.h"
#include "fs/fs_handle.h"
#include "fs/fs_mirror.h"
#include "fs/fs_ops.h"
#include "fs/fs_store.h"

fs_node *fs_node_of(fs *f, fuse_ino_t ino) { return fs_itable_get(&f->nodes, ino); }

int fs_node_refresh(fs *f, fs_node *node) {
  if (node->pending || node->is_post || !node->linked || node->cached) return 0;
  fs_kv kv;
  int e = fs_store_get(f, node->key, &kv);
  if (e) return e;
  /* the mount root is a directory even when the prefix does not exist (yet) as one */
  if (node == f->nodes.root && !kv.dir) {
    fs_kv_free(&kv);
    return ENOTDIR;
  }
  fs_attr_update(f, node, &kv);
  fs_kv_free(&kv);
  return 0;
}

static int lookup_entry(fuse_req_t req, fs *f, fuse_ino_t parent, const char *name,
                        struct fuse_entry_param *e) {
  fs_node *dir = fs_node_of(f, parent);
  if (!dir) return ENOENT;
  if (!dir->is_dir) return ENOTDIR;
  if (strlen(name) > 255) return ENAMETOOLONG;
  char *key = fs_child_key(dir->key, name);
  if (!key) return ENOMEM;
  fs_node *node = fs_itable_find(&f->nodes, key);
  int err = 0;
  if (node && node->replay == FS_REPLAY_HIDDEN && !fs_self(req)) node = fs_mirror_wait_replay(f, key);
  if (node && !fs_mirror_visible(req, node)) {
    err = ENOENT;
  } else if (node && node->cached) {
    /* from the mirror */
  } else if (strcmp(name, f->post_name) == 0) {
    node = fs_itable_intern(&f->nodes, key);
    if (node) {
      node->is_post = 1;
      node->is_dir = 0;
      if (node->mtime.tv_sec == 0) node->mtime = f->mount_time;
    }
    err = node ? 0 : ENOMEM;
  } else if (!node || !node->pending) {
    fs_kv kv;
    err = fs_store_get(f, key, &kv);
    if (err == 0) {
      node = fs_itable_intern(&f->nodes, key);
      if (node) fs_attr_update(f, node, &kv);
      else err = ENOMEM;
      fs_kv_free(&kv);
    }
  }
  free(key);
  if (err) return err;
  fs_attr_entry(f, node, e);
  return 0;
}

void fs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  fs *f = fs_begin(req);
  struct fuse_entry_param e;
  int err = lookup_entry(req, f, parent, name, &e);
  if (err) fuse_reply_err(req, err);
  else fuse_reply_entry(req, &e);
}

void fs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  fs *f = fuse_req_userdata(req);
  fs_node *node = fs_node_of(f, ino);
  if (node) fs_itable_forget(&f->nodes, node, nlookup);
  fuse_reply_none(req);
}

void fs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  fs *f = fuse_req_userdata(req);
  for (size_t i = 0; i < count; i++) {
    fs_node *node = fs_node_of(f, forgets[i].ino);
    if (node) fs_itable_forget(&f->nodes, node, forgets[i].nlookup);
  }
  fuse_reply_none(req);
}

static int getattr_node(fs *f, fuse_ino_t ino, struct stat *st, double *timeout) {
  fs_node *node = fs_node_of(f, ino);
  if (!node) return ENOENT;
  int e = fs_node_refresh(f, node);
  /* the mount root stays a directory while the cluster is unreachable (so that its
   * user.etcd.connected can be read) or its prefix is gone; everything else gives the error */
  if (node == f->nodes.root) e = 0;
  if (e) return e;
  fs_attr_fill(f, node, st);
  *timeout = fs_attr_timeout(f, node);
  return 0;
}

void fs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)fi;
  fs *f = fs_begin(req);
  struct stat st;
  double timeout = 0;
  int e = getattr_node(f, ino, &st, &timeout);
  if (e) fuse_reply_err(req, e);
  else fuse_reply_attr(req, &st, timeout);
}

/* truncate(2) without an open file: one read-modify-write of the value. */
static int truncate_key(fs *f, fs_node *node, uint64_t size) {
  if (size > FS_MAX_VALUE) return EFBIG;
  fs_handle_push_closed(f, node); /* "> key; truncate -s N key": N zero bytes */
  fs_kv kv;
  int e = fs_store_get(f, node->key, &kv);
  if (e) return e;
  if (kv.dir) {
    fs_kv_free(&kv);
    return EISDIR;
  }
  fs_handle *h = fs_handle_new(node, kv.value, kv.len);
  if (!h) {
    fs_kv_free(&kv);
    return ENOMEM;
  }
  h->push = FS_PUSH_CAS;
  h->base_index = kv.modified_index;
  h->expires_at = kv.expires_at;
  fs_kv_free(&kv);
  e = fs_handle_truncate(h, size);
  if (!e) e = fs_handle_push(f, h);
  fs_handle_free(h);
  return e;
}

/* Created by this mount and open since: a local create not stored yet, or an O_EXCL create
 * whose first value is still to come. */
static int being_created(const fs_node *node) {
  if (node->pending) return 1;
  for (const fs_handle *h = node->handles; h; h = h->next)
    if (h->created_index && !h->orphan) return 1;
  return 0;
}

static int setattr_node(fuse_req_t req, fs *f, fuse_ino_t ino, const struct stat *attr, int to_set,
                        struct fuse_file_info *fi, struct stat *out, double *timeout) {
  fs_node *node = fs_node_of(f, ino);
  if (!node) return ENOENT;
  if (fs_self(req)) { /* the applier's utimensat (IN_MODIFY): st_mtime is the node's already */
    fs_attr_fill(f, node, out);
    *timeout = fs_attr_timeout(f, node);
    return 0;
  }
  if (fs_refuse_write(req)) return EROFS;
  struct stat cur;
  fs_attr_fill(f, node, &cur);
  /* modes and owners are fixed: refuse real changes, accept no-ops (so cp -p works); with
   * -o quiet accept every change and keep nothing. A file this mount is creating takes any
   * mode, as its create's mode is not kept either: mkstemp makes a file 0600 and fchmod()s it
   * (rsync -a does, and gives up on EPERM) */
  if (!f->quiet) {
    if ((to_set & FUSE_SET_ATTR_MODE) && (attr->st_mode & 07777) != (cur.st_mode & 07777) &&
        !being_created(node))
      return EPERM;
    if ((to_set & FUSE_SET_ATTR_UID) && attr->st_uid != cur.st_uid) return EPERM;
    if ((to_set & FUSE_SET_ATTR_GID) && attr->st_gid != cur.st_gid) return EPERM;
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    if (node->is_dir) return EISDIR;
    if (node->is_post) return 0;
    fs_handle *h = fi ? (fs_handle *)(uintptr_t)fi->fh : NULL;
    if (h) fs_handle_wait(f, h);
    int e = h ? fs_handle_truncate(h, (uint64_t)attr->st_size)
              : truncate_key(f, node, (uint64_t)attr->st_size);
    if (e) return e;
  }
  /* times: v2 keeps none; st_mtime follows modifiedIndex, so touch is accepted and ignored */
  fs_attr_fill(f, node, out);
  *timeout = fs_attr_timeout(f, node);
  return 0;
}

void fs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                struct fuse_file_info *fi) {
  fs *f = fs_begin(req);
  struct stat st;
  double timeout = 0;
  int e = setattr_node(req, f, ino, attr, to_set, fi, &st, &timeout);
  if (e) fuse_reply_err(req, e);
  else fuse_reply_attr(req, &st, timeout);
}
