/* fs_ops_tree: names. mkdir = PUT dir=true prevExist=false; rmdir = DELETE dir=true (108 ->
 * ENOTEMPTY); unlink = DELETE; rename of a file is emulated (PUT the target with the source's
 * value and TTL, then DELETE the source with prevIndex; not atomic), of a directory EXDEV.
 * The applier's mkdir/unlink/rmdir (fs_self) finish a remote change in the mirror only; with
 * -o ro everyone else's give EROFS. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_attr.h"
#include "fs/fs_handle.h"
#include "fs/fs_mirror.h"
#include "fs/fs_ops.h"
#include "fs/fs_store.h"

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE (1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

/* The key of NAME in directory PARENT, in *key (malloc'd). */
static int child_key(fs *f, fuse_ino_t parent, const char *name, char **key) {
  fs_node *dir = fs_node_of(f, parent);
  if (!dir) return ENOENT;
  if (!dir->is_dir) return ENOTDIR;
  if (strlen(name) > 255) return ENAMETOOLONG;
  *key = fs_child_key(dir->key, name);
  return *key ? 0 : ENOMEM;
}

static int mkdir_entry(fs *f, fuse_ino_t parent, const char *name, struct fuse_entry_param *ep) {
  if (strcmp(name, f->post_name) == 0) return EEXIST;
  char *key;
  int e = child_key(f, parent, name, &key);
  if (e) return e;
  fs_kv kv;
  e = fs_store_req(f, "PUT", key, NULL, "dir=true&prevExist=false", &kv);
  fs_node *node = e ? NULL : fs_itable_intern(&f->nodes, key);
  free(key);
  if (e) return e;
  if (!node) {
    fs_kv_free(&kv);
    return ENOMEM;
  }
  fs_attr_written(f, node, &kv);
  fs_kv_free(&kv);
  if (node->parent && node->parent->cached && !fs_mirror_hidden(f, node->key)) node->cached = 1;
  fs_attr_entry(f, node, ep);
  return 0;
}

void fs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  (void)mode;
  fs *f = fs_begin(req);
  struct fuse_entry_param ep;
  int e = fs_self(req) ? fs_self_create(f, parent, name, 1, &ep, NULL)
          : fs_refuse_write(req) ? EROFS
                                 : mkdir_entry(f, parent, name, &ep);
  if (e) fuse_reply_err(req, e);
  else fuse_reply_entry(req, &ep);
}

/* DELETE of KEY (QUERY: "dir=true" for rmdir); the node leaves the key map. */
static int remove_key(fuse_req_t req, fs *f, fuse_ino_t parent, const char *name, const char *query) {
  if (strcmp(name, f->post_name) == 0) return EPERM;
  if (fs_refuse_write(req)) return EROFS;
  char *key;
  int e = child_key(f, parent, name, &key);
  if (e) return e;
  fs_node *node = fs_itable_find(&f->nodes, key);
  /* A remote create being replayed, as in a lookup: the name a lookup just gave the caller is
   * hidden again while the applier makes it once more (fs_replay.c, rehide). */
  if (node && node->replay == FS_REPLAY_HIDDEN && !fs_self(req)) node = fs_mirror_wait_replay(f, key);
  if (fs_self(req)) { /* a remote delete being replayed: it is gone from the store already */
    e = node && node->replay == FS_REPLAY_DYING ? 0 : ENOENT;
  } else if (node && !fs_mirror_visible(req, node)) {
    e = ENOENT;
  } else {
    if (node) fs_handle_wait_node(f, node); /* (a close's push on the network ends first) */
    if (node && node->pending) {
      e = 0; /* never stored: forgetting the local create is the whole delete */
    } else {
      if (node) node->removing = 1; /* the handles' pushes wait for the DELETE */
      fs_kv gone;
      e = fs_store_delete(f, key, query, &gone);
      if (node) {
        node->removing = 0;
        pthread_cond_broadcast(&f->idle);
      }
      if (e == 0) {
        fs_mirror_deleted(f, key, gone.modified_index); /* (0: not known, nothing kept) */
        fs_kv_free(&gone);
      }
    }
    if (e == 0 && node) fs_handle_orphan(node); /* its open files write nowhere now */
  }
  if (e == 0 && node) {
    fs_itable_unlink(&f->nodes, node);
    node->pending = 0;
    fs_itable_maybe_free(&f->nodes, node);
  }
  free(key);
  return e;
}

void fs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  fs *f = fs_begin(req);
  fuse_reply_err(req, remove_key(req, f, parent, name, "dir=true"));
}

void fs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  fs *f = fs_begin(req);
  fuse_reply_err(req, remove_key(req, f, parent, name, NULL));
}

/* A file still being created (open, never stored) is renamed here alone: its node takes the
 * new name, and its close stores it there (replacing what the store has, as a local rename
 * replaces the target). -1 when the file was stored meanwhile (the caller renames it as any). */
static int rename_pending(fs *f, const char *src, const char *dst, unsigned int flags) {
  if (flags & RENAME_NOREPLACE) {
    fs_kv kv;
    int e = fs_store_get(f, dst, &kv);
    if (e == 0) {
      fs_kv_free(&kv);
      return EEXIST;
    }
    if (e != ENOENT) return e;
  }
  fs_node *node = fs_itable_find(&f->nodes, src);
  if (!node) return ENOENT;
  /* a close storing it is on its way: once it is answered, the file is stored (or not) */
  fs_handle_wait_node(f, node);
  node = fs_itable_find(&f->nodes, src);
  if (!node) return ENOENT;
  if (!node->pending) return -1;
  fs_node *old = fs_itable_find(&f->nodes, dst);
  if (old && old != node) fs_handle_orphan(old); /* replaced: its open files write nowhere */
  return fs_itable_move(&f->nodes, node, dst) != 0 ? ENOMEM : 0;
}

/* One try of a rename: GET the source, PUT its value at the target (the target's open files
 * held meanwhile, then orphans: their name now holds another file), DELETE the source if it
 * still holds the value moved. *WROTE tells whether the target was written; then KV (the
 * source as read) and PUT (the target's answer) are the caller's to free, and the result is
 * the DELETE's. */
static int move_once(fs *f, const char *src, const char *dst, int noreplace, fs_kv *kv,
                     fs_kv *put, int *wrote) {
  *wrote = 0;
  int e = fs_store_get(f, src, kv);
  if (e) return e;
  if (kv->dir) {
    fs_kv_free(kv);
    return EXDEV; /* mv falls back to copy + remove */
  }
  fs_node *target = fs_itable_find(&f->nodes, dst);
  int hold = target && target->handles;
  if (hold) target->removing = 1;
  proto_v2_buf form = {0};
  fs_form_add_value(&form, kv->value, kv->len);
  if (kv->expires_at > 0) fs_form_add_u64(&form, "ttl", (uint64_t)fs_ttl_left(kv->expires_at));
  if (noreplace) fs_form_add(&form, "prevExist", "false");
  e = form.oom ? ENOMEM : fs_store_req(f, "PUT", dst, NULL, form.s, put);
  proto_v2_buf_free(&form);
  if (hold) {
    target->removing = 0;
    pthread_cond_broadcast(&f->idle);
    if (!e) fs_handle_orphan(target);
  }
  if (e) {
    fs_kv_free(kv);
    return e;
  }
  *wrote = 1;
  proto_v2_buf q = {0};
  fs_form_add_u64(&q, "prevIndex", kv->modified_index);
  fs_kv gone;
  e = q.oom ? ENOMEM : fs_store_delete(f, src, q.s, &gone);
  proto_v2_buf_free(&q);
  if (!e) {
    fs_mirror_deleted(f, src, gone.modified_index);
    fs_kv_free(&gone);
  }
  return e;
}

static int rename_keys(fs *f, const char *src, const char *dst, unsigned int flags) {
  if (strcmp(src, dst) == 0) return 0;
  if (strcmp(fs_key_base(src), f->post_name) == 0 || strcmp(fs_key_base(dst), f->post_name) == 0)
    return EPERM;
  /* ("> f; mv f g": g is ""; each push may release the lock: nodes are found again after) */
  fs_node *node = fs_itable_find(&f->nodes, src);
  if (node) fs_handle_push_closed(f, node);
  fs_node *target = fs_itable_find(&f->nodes, dst);
  if (target) fs_handle_push_closed(f, target);
  target = fs_itable_find(&f->nodes, dst);
  if (target) fs_handle_wait_node(f, target); /* (no close of it lands after the rename) */
  node = fs_itable_find(&f->nodes, src);
  if (node && node->pending) {
    int pe = rename_pending(f, src, dst, flags);
    if (pe != -1) return pe;
  }
  /* v2 has no rename. A source changed meanwhile (ESTALE) is moved again, with its new value:
   * the rename then comes after that change. A source removed meanwhile (ENOENT) is gone as a
   * rename would leave it: the target holds what it was. */
  fs_kv kv, put;
  int e, moved = 0;
  for (int attempt = 0;; attempt++) {
    int wrote;
    e = move_once(f, src, dst, (flags & RENAME_NOREPLACE) && !moved, &kv, &put, &wrote);
    if (!wrote) return moved && e == ENOENT ? 0 : e; /* (removed after a try moved it: done) */
    moved = 1;
    if (e == 0 || e == ENOENT) { /* (ENOENT: removed by someone else since it was read) */
      e = 0;
      break;
    }
    fs_kv_free(&kv);
    fs_kv_free(&put);
    if (e != ESTALE || attempt == 3) {
      fprintf(stderr, "quorumfs: rename %s -> %s: the target was written but the source could not "
                      "be removed (errno %d)\n", src, dst, e);
      return e;
    }
  }
  node = fs_itable_find(&f->nodes, src);
  if (node) {
    if (fs_itable_move(&f->nodes, node, dst) != 0) {
      e = ENOMEM;
    } else {
      fs_attr_written(f, node, &put);
      /* its open files read the value moved: their check is now against its new index */
      for (fs_handle *h = node->handles; h; h = h->next)
        if (h->push == FS_PUSH_CAS && h->base_index == kv.modified_index)
          h->base_index = put.modified_index;
    }
  } else {
    fs_node *old = fs_itable_find(&f->nodes, dst);
    if (old) {
      fs_itable_unlink(&f->nodes, old);
      fs_itable_maybe_free(&f->nodes, old);
    }
  }
  fs_kv_free(&put);
  fs_kv_free(&kv);
  return e;
}

static int rename_names(fs *f, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                        const char *newname, unsigned int flags) {
  if (flags & RENAME_EXCHANGE) return EINVAL;
  if (flags & ~(unsigned)RENAME_NOREPLACE) return EINVAL;
  char *src, *dst;
  int e = child_key(f, parent, name, &src);
  if (e) return e;
  e = child_key(f, newparent, newname, &dst);
  if (e) {
    free(src);
    return e;
  }
  e = rename_keys(f, src, dst, flags);
  free(src);
  free(dst);
  return e;
}

void fs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
               const char *newname, unsigned int flags) {
  fs *f = fs_begin(req);
  fuse_reply_err(req, fs_refuse_write(req) ? EROFS : rename_names(f, parent, name, newparent, newname, flags));
}

void fs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
  (void)link;
  (void)parent;
  (void)name;
  fuse_reply_err(req, EPERM); /* only regular files and directories exist in v2 */
}

void fs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  (void)ino;
  (void)newparent;
  (void)newname;
  fuse_reply_err(req, EPERM);
}
