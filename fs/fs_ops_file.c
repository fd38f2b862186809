/* fs_ops_file: open files. Every open takes a snapshot of the value (direct_io: reads are served
 * from it, never from a stale page cache): a read-only open of a mirrored key from the mirror,
 * without a request; a writable one from the store (the base of a read-modify-write). The
 * buffer goes to the store at flush/fsync, so errors come back from close(). RELEASE only
 * frees (it carries no caller and no error). The applier's opens and creates (fs_self) make
 * handles that never reach the store. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_attr.h"
#include "fs/fs_handle.h"
#include "fs/fs_mirror.h"
#include "fs/fs_ops.h"
#include "fs/fs_store.h"

static int writable(const struct fuse_file_info *fi) { return (fi->flags & O_ACCMODE) != O_RDONLY; }

static void set_fi(struct fuse_file_info *fi, fs_handle *h) {
  fi->fh = (uint64_t)(uintptr_t)h;
  fi->direct_io = 1;
  fi->keep_cache = 0;
  fi->noflush = h->self; /* the applier's close: no FLUSH to wait for (RELEASE is not waited) */
  h->append = (fi->flags & O_APPEND) != 0;
}

/* A handle on an existing key whose current node is KV. */
static int handle_existing(fs *f, fs_node *node, const fs_kv *kv, const struct fuse_file_info *fi,
                           fs_handle **out) {
  if (kv->dir) return EISDIR;
  fs_attr_update(f, node, kv);
  fs_handle *h;
  if (writable(fi) && (fi->flags & O_TRUNC)) {
    h = fs_handle_new(node, "", 0);
    if (h) {
      h->push = FS_PUSH_REPLACE;
      h->dirty = 1; /* ": > key" stores "" */
    }
  } else {
    h = fs_handle_new(node, kv->value, kv->len);
    if (h) {
      h->push = FS_PUSH_CAS;
      h->base_index = kv->modified_index;
    }
  }
  if (!h) return ENOMEM;
  h->expires_at = kv->expires_at;
  *out = h;
  return 0;
}

/* A handle of the applier: a replay's open/close, nothing to send. */
static int self_handle(fs_node *node, fs_handle **out) {
  fs_handle *h = fs_handle_new(node, "", 0);
  if (!h) return ENOMEM;
  h->self = 1;
  *out = h;
  return 0;
}

static int open_node(fuse_req_t req, fs *f, fuse_ino_t ino, struct fuse_file_info *fi, fs_handle **out) {
  fs_node *node = fs_node_of(f, ino);
  if (!node) return ENOENT;
  if (node->is_dir) return EISDIR;
  if (fs_self(req)) return self_handle(node, out);
  if (writable(fi) && fs_refuse_write(req)) return EROFS;
  fs_handle_push_closed(f, node); /* close-to-open: a closed "> key" is read as "" */
  if (!writable(fi) && node->cached && !node->pending) { /* from the mirror */
    fs_handle *h = fs_handle_new(node, node->value, node->vlen);
    if (!h) return ENOMEM;
    h->push = FS_PUSH_CAS;
    h->base_index = node->modified_index;
    h->expires_at = node->expires_at;
    *out = h;
    return 0;
  }
  if (node->is_post) {
    if (!writable(fi)) return EACCES;
    fs_handle *h = fs_handle_new(node, "", 0);
    if (!h) return ENOMEM;
    h->push = FS_PUSH_POST;
    *out = h;
    return 0;
  }
  if (node->pending) {
    fs_handle *h = fs_handle_new(node, "", 0);
    if (!h) return ENOMEM;
    h->push = FS_PUSH_CREATE;
    *out = h;
    return 0;
  }
  fs_kv kv;
  int e = fs_store_get(f, node->key, &kv);
  if (e) return e;
  e = handle_existing(f, node, &kv, fi, out);
  fs_kv_free(&kv);
  return e;
}

void fs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  fs *f = fs_begin(req);
  fs_handle *h = NULL;
  int e = open_node(req, f, ino, fi, &h);
  if (e) {
    fuse_reply_err(req, e);
    return;
  }
  set_fi(fi, h);
  if (fuse_reply_open(req, fi) != 0) {
    fs_node *node = h->node;
    fs_handle_free(h);
    fs_itable_maybe_free(&f->nodes, node);
  }
}

/* O_CREAT|O_EXCL: the key is created at once (prevExist=false), so EEXIST comes from open(). */
static int create_now(fs *f, const char *key, fs_node **out, fs_kv *kv) {
  proto_v2_buf form = {0};
  fs_form_add(&form, "value", "");
  fs_form_add(&form, "prevExist", "false");
  int e = form.oom ? ENOMEM : fs_store_req(f, "PUT", key, NULL, form.s, kv);
  proto_v2_buf_free(&form);
  if (e) return e;
  fs_node *node = fs_itable_intern(&f->nodes, key);
  if (!node) {
    fs_kv_free(kv);
    return ENOMEM;
  }
  fs_attr_written(f, node, kv);
  *out = node;
  return 0;
}

/* The applier's create/mknod/mkdir of a remote create (fs_replay.h): the HIDDEN node becomes
 * visible. EEXIST when there is none (the applier then falls back to invalidation). */
int fs_self_create(fs *f, fuse_ino_t parent, const char *name, int dir, struct fuse_entry_param *ep,
                   fs_node **out) {
  fs_node *d = fs_node_of(f, parent);
  char *key = d ? fs_child_key(d->key, name) : NULL;
  fs_node *node = key ? fs_itable_find(&f->nodes, key) : NULL;
  free(key);
  if (!node || node->replay != FS_REPLAY_HIDDEN || !node->is_dir != !dir) return EEXIST;
  node->replay = FS_REPLAY_NONE;
  fs_mirror_replayed(f);
  fs_attr_entry(f, node, ep);
  if (out) *out = node;
  return 0;
}

/* vim's swap file names: ".NAME.sw" and a letter (.swp, then .swo, ...; .swx is its probe).
 * Their contents are binary, which no v2 value holds, and each edit would show other clients
 * keys made and deleted: unless -o swapfiles, creating one is refused (EACCES), and vim takes
 * the next directory of its 'directory' option (/var/tmp, /tmp) without a word. */
static int swap_name(const fs *f, const char *name) {
  size_t n = strlen(name);
  return !f->swapfiles && n >= 6 && name[0] == '.' && memcmp(name + n - 4, ".sw", 3) == 0 &&
         name[n - 1] >= 'a' && name[n - 1] <= 'z';
}

static int create_node(fuse_req_t req, fs *f, fuse_ino_t parent, const char *name, mode_t mode,
                       struct fuse_file_info *fi, struct fuse_entry_param *ep, fs_handle **out) {
  if (!S_ISREG(mode)) return EPERM;
  if (fs_self(req)) {
    fs_node *node;
    int e = fs_self_create(f, parent, name, 0, ep, &node);
    if (!e && self_handle(node, out) != 0) e = ENOMEM; /* (the kernel's lookup is counted) */
    return e;
  }
  if (fs_refuse_write(req)) return EROFS;
  fs_node *dir = fs_node_of(f, parent);
  if (!dir) return ENOENT;
  if (strlen(name) > 255) return ENAMETOOLONG;
  if (strcmp(name, f->post_name) == 0) return EEXIST;
  if (swap_name(f, name)) return EACCES;
  char *key = fs_child_key(dir->key, name);
  if (!key) return ENOMEM;
  fs_node *node = NULL;
  fs_handle *h = NULL;
  fs_kv kv;
  int e;
  if (fi->flags & O_EXCL) {
    e = create_now(f, key, &node, &kv);
    if (!e) {
      h = fs_handle_new(node, "", 0);
      if (h) {
        h->push = FS_PUSH_CAS;
        h->base_index = h->created_index = kv.modified_index;
      }
      e = h ? 0 : ENOMEM;
      fs_kv_free(&kv);
    }
  } else {
    e = fs_store_get(f, key, &kv);
    if (e == 0) { /* it exists after all (created elsewhere): open it */
      node = fs_itable_intern(&f->nodes, key);
      e = node ? handle_existing(f, node, &kv, fi, &h) : ENOMEM;
      fs_kv_free(&kv);
    } else if (e == ENOENT) { /* pending until the first flush sends the whole value */
      node = fs_itable_intern(&f->nodes, key);
      h = node ? fs_handle_new(node, "", 0) : NULL;
      e = h ? 0 : ENOMEM;
      if (h) {
        node->pending = 1;
        node->is_dir = 0;
        node->size = 0;
        node->modified_index = 0;
        clock_gettime(CLOCK_REALTIME, &node->mtime);
        h->push = FS_PUSH_CREATE;
        h->dirty = 1;
      }
    }
  }
  free(key);
  if (e) {
    if (node) fs_itable_maybe_free(&f->nodes, node);
    return e;
  }
  fs_attr_entry(f, node, ep);
  *out = h;
  return 0;
}

void fs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
               struct fuse_file_info *fi) {
  fs *f = fs_begin(req);
  struct fuse_entry_param ep;
  fs_handle *h = NULL;
  int e = create_node(req, f, parent, name, mode, fi, &ep, &h);
  if (e) {
    fuse_reply_err(req, e);
    return;
  }
  set_fi(fi, h);
  if (fuse_reply_create(req, &ep, fi) != 0) {
    fs_node *node = h->node;
    if (node->pending) fs_itable_unlink(&f->nodes, node);
    fs_handle_free(h);
    fs_itable_forget(&f->nodes, node, 1);
  }
}

void fs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  (void)rdev;
  fs *f = fs_begin(req);
  fs_node *dir = fs_node_of(f, parent);
  if (!S_ISREG(mode)) {
    fuse_reply_err(req, EPERM);
    return;
  }
  if (fs_self(req) || fs_refuse_write(req)) {
    struct fuse_entry_param sep;
    int se = fs_refuse_write(req) ? EROFS : fs_self_create(f, parent, name, 0, &sep, NULL);
    if (se) fuse_reply_err(req, se);
    else fuse_reply_entry(req, &sep);
    return;
  }
  if (!dir || swap_name(f, name)) {
    fuse_reply_err(req, dir ? EACCES : ENOENT);
    return;
  }
  char *key = fs_child_key(dir->key, name);
  fs_node *node = NULL;
  fs_kv kv;
  int e = key ? create_now(f, key, &node, &kv) : ENOMEM;
  free(key);
  if (e) {
    fuse_reply_err(req, e);
    return;
  }
  fs_kv_free(&kv);
  struct fuse_entry_param ep;
  fs_attr_entry(f, node, &ep);
  fuse_reply_entry(req, &ep);
}

void fs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino;
  fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
  if (h->push == FS_PUSH_POST || off < 0 || (size_t)off >= h->len) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  size_t n = h->len - (size_t)off;
  fuse_reply_buf(req, h->buf + off, n < size ? n : size);
}

void fs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
              struct fuse_file_info *fi) {
  (void)ino;
  fs *f = fs_begin(req);
  fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
  fs_handle_wait(f, h);
  h->append = (fi->flags & O_APPEND) != 0; /* the file's flags now (fcntl may change them) */
  int e = fs_handle_write(h, buf, size, off);
  if (e) fuse_reply_err(req, e);
  else fuse_reply_write(req, size);
}

/* A shell's "> key" opens, dup2()s and closes the first fd before writing: a handle that is
 * dirty only because of O_TRUNC or a create waits for a write, for RELEASE, or for the next
 * use of the key (fs_handle_push_closed), so the store never sees the transient empty value. */
void fs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  fs *f = fs_begin(req);
  fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
  fs_handle_wait(f, h);
  if (!h->written && h->dirty) h->flushed = 1;
  fuse_reply_err(req, h->written ? fs_handle_push(f, h) : 0);
}

void fs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  (void)ino;
  (void)datasync;
  fs *f = fs_begin(req);
  fuse_reply_err(req, fs_handle_push(f, (fs_handle *)(uintptr_t)fi->fh));
}

void fs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  fs *f = fs_begin(req);
  fs_handle *h = (fs_handle *)(uintptr_t)fi->fh;
  fs_node *node = h->node;
  fs_handle_wait(f, h); /* (a push of it by another request's fs_handle_push_closed) */
  /* ": > key" and "touch new": nothing was written, the empty value goes now (an error can
   * only be logged: RELEASE has no caller to return it to) */
  if (h->dirty) {
    int e = fs_handle_push(f, h);
    if (e) fprintf(stderr, "quorumfs: %s: storing the value at release failed: %s\n", node->key, strerror(e));
  }
  fs_handle_free(h);
  /* a local create whose value never reached the store does not exist */
  if (node->pending && !node->handles) fs_itable_unlink(&f->nodes, node);
  fs_itable_maybe_free(&f->nodes, node);
  fuse_reply_err(req, 0);
}
