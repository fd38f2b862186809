/* fs_ops_dir: directory listings. opendir takes the directory's names once (from the mirror, or
 * from the store for directories that are not mirrored), sorted by name as the server sorts
 * with sorted=true, into an array of entries that readdir and readdirplus serve in slices (the
 * offset of an entry is its index + 1). Hidden "_" keys are not listed (v2 does not return
 * them), nor the in-order name (FS_POST_NAME), nor remote deletes not yet replayed; remote creates not yet replayed
 * are (a lookup of one waits for its replay). readdirplus gives the attributes of the mirrored
 * entries, so that `ls -l` and `find -size` make no lookup per entry; the others (a listing
 * read from the store, a name whose create has not been replayed) go without, as in readdir,
 * and the kernel looks them up. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_attr.h"
#include "fs/fs_mirror.h"
#include "fs/fs_ops.h"
#include "fs/fs_store.h"

typedef struct fs_dirent {
  char *name;
  fuse_ino_t ino;
  int dir;
} fs_dirent;

struct fs_dirbuf {
  fs_dirent *v;
  size_t n, cap;
  fs *f;                        /* set while the kernel holds it (in f->open_dirs) */
  struct fs_dirbuf *prev, *next;
};
typedef struct fs_dirbuf fs_dirbuf;

static void dirbuf_free(fs_dirbuf *b) {
  if (!b) return;
  if (b->f) { /* (under f->lock, as every request) */
    if (b->prev) b->prev->next = b->next;
    else b->f->open_dirs = b->next;
    if (b->next) b->next->prev = b->prev;
  }
  for (size_t i = 0; i < b->n; i++) free(b->v[i].name);
  free(b->v);
  free(b);
}

static int dirbuf_add(fs_dirbuf *b, const char *name, fuse_ino_t ino, int dir) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 16;
    fs_dirent *v = realloc(b->v, cap * sizeof *v);
    if (!v) return ENOMEM;
    b->v = v;
    b->cap = cap;
  }
  char *copy = strdup(name);
  if (!copy) return ENOMEM;
  b->v[b->n++] = (fs_dirent){copy, ino, dir};
  return 0;
}

/* A stable inode number for a listed child the kernel has not looked up (d_ino only). */
static fuse_ino_t listed_ino(fs *f, const char *key) {
  fs_node *n = fs_itable_find(&f->nodes, key);
  if (n) return n->ino;
  uint64_t h = 1469598103934665603ULL;
  for (const char *s = key; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return (h | (1ULL << 62)) & ~(1ULL << 63);
}

static int by_name(const void *a, const void *b) {
  return strcmp(fs_key_base((*(fs_node *const *)a)->key), fs_key_base((*(fs_node *const *)b)->key));
}

/* The listing of a mirrored directory: its mirrored children, those a lookup read from the
 * store ahead of the watch, and files created here whose value is still to be stored (a name
 * that can be opened is listed: "touch f; ls" shows f, although an empty new file goes to the
 * store at RELEASE, which the kernel sends after close() has returned). */
static int list_mirror(fuse_req_t req, fs_node *node, fs_dirbuf *b) {
  size_t n = 0;
  for (fs_node *c = node->child; c; c = c->next_sib) n++;
  fs_node **v = n ? malloc(n * sizeof *v) : NULL;
  if (n && !v) return ENOMEM;
  size_t k = 0;
  for (fs_node *c = node->child; c; c = c->next_sib)
    if ((c->cached || c->nlookup > 0 || c->pending) && !c->is_post && fs_key_base(c->key)[0] != '_' &&
        (c->replay == FS_REPLAY_HIDDEN || fs_mirror_visible(req, c)))
      v[k++] = c;
  if (k) qsort(v, k, sizeof *v, by_name);
  int e = dirbuf_add(b, ".", node->ino, 1);
  if (!e) e = dirbuf_add(b, "..", node->ino, 1);
  for (size_t i = 0; !e && i < k; i++) e = dirbuf_add(b, fs_key_base(v[i]->key), v[i]->ino, v[i]->is_dir);
  free(v);
  return e;
}

static int open_dir(fuse_req_t req, fs *f, fuse_ino_t ino, fs_dirbuf **out) {
  fs_node *node = fs_node_of(f, ino);
  if (!node) return ENOENT;
  if (node->cached) {
    if (!node->is_dir) return ENOTDIR;
    fs_dirbuf *b = calloc(1, sizeof *b);
    int e = b ? list_mirror(req, node, b) : ENOMEM;
    if (e) {
      dirbuf_free(b);
      return e;
    }
    *out = b;
    return 0;
  }
  fs_kv kv;
  int e = fs_store_get(f, node->key, &kv);
  if (e == ENOENT && node == f->nodes.root) { /* the prefix was removed: an empty root */
    memset(&kv, 0, sizeof kv);
    kv.dir = 1;
    e = 0;
  }
  if (e) return e;
  if (!kv.dir) {
    fs_kv_free(&kv);
    return ENOTDIR;
  }
  if (node != f->nodes.root) fs_attr_update(f, node, &kv);
  fs_dirbuf *b = calloc(1, sizeof *b);
  e = b ? 0 : ENOMEM;
  if (!e) e = dirbuf_add(b, ".", node->ino, 1);
  if (!e) e = dirbuf_add(b, "..", node->ino, 1);
  for (size_t i = 0; !e && i < kv.n_names; i++) {
    const char *name = kv.names[i];
    if (!*name || name[0] == '_' || strcmp(name, f->post_name) == 0) continue;
    char *key = fs_child_key(node->key, name);
    if (!key) {
      e = ENOMEM;
      break;
    }
    e = dirbuf_add(b, name, listed_ino(f, key), kv.names_dir[i]);
    free(key);
  }
  fs_kv_free(&kv);
  if (e) {
    dirbuf_free(b);
    return e;
  }
  *out = b;
  return 0;
}

void fs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  fs *f = fs_begin(req);
  fs_dirbuf *b = NULL;
  int e = open_dir(req, f, ino, &b);
  if (e) {
    fuse_reply_err(req, e);
    return;
  }
  fi->fh = (uint64_t)(uintptr_t)b;
  b->f = f;
  b->next = f->open_dirs;
  if (b->next) b->next->prev = b;
  f->open_dirs = b;
  if (fuse_reply_open(req, fi) != 0) dirbuf_free(b);
}

/* The attributes of entry D of directory DIR for readdirplus: a mirrored child the kernel may
 * know (its lookup count is taken), else only d_ino and the type (e->ino 0: not looked up). */
static void plus_entry(fuse_req_t req, fs *f, const fs_node *dir, const fs_dirent *d,
                       struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  e->attr.st_ino = d->ino;
  e->attr.st_mode = d->dir ? S_IFDIR : S_IFREG;
  if (!dir || !dir->cached || strcmp(d->name, ".") == 0 || strcmp(d->name, "..") == 0) return;
  char *key = fs_child_key(dir->key, d->name);
  fs_node *c = key ? fs_itable_find(&f->nodes, key) : NULL;
  free(key);
  if (c && c->cached && c->replay == FS_REPLAY_NONE && !c->pending && !c->is_post &&
      fs_mirror_visible(req, c))
    fs_attr_entry(f, c, e);
}

static void serve_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi, int plus) {
  fs *f = fs_begin(req);
  fs_dirbuf *b = (fs_dirbuf *)(uintptr_t)fi->fh;
  const fs_node *dir = plus ? fs_node_of(f, ino) : NULL;
  char *buf = size ? malloc(size) : NULL;
  if (size && !buf) {
    fuse_reply_err(req, ENOMEM);
    return;
  }
  size_t used = 0;
  for (size_t i = off < 0 ? b->n : (size_t)off; i < b->n; i++) {
    const fs_dirent *d = &b->v[i];
    size_t need;
    if (plus) { /* the size does not depend on the attributes: measure before any lookup */
      struct fuse_entry_param none;
      memset(&none, 0, sizeof none);
      need = fuse_add_direntry_plus(req, NULL, 0, d->name, &none, 0);
      if (used + need > size) break;
      struct fuse_entry_param e;
      plus_entry(req, f, dir, d, &e);
      fuse_add_direntry_plus(req, buf + used, size - used, d->name, &e, (off_t)(i + 1));
    } else {
      struct stat st;
      memset(&st, 0, sizeof st);
      st.st_ino = d->ino;
      st.st_mode = d->dir ? S_IFDIR : S_IFREG;
      need = fuse_add_direntry(req, NULL, 0, d->name, NULL, 0);
      if (used + need > size) break;
      fuse_add_direntry(req, buf + used, size - used, d->name, &st, (off_t)(i + 1));
    }
    used += need;
  }
  fuse_reply_buf(req, buf, used);
  free(buf);
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  serve_dir(req, ino, size, off, fi, 0);
}

void fs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
  serve_dir(req, ino, size, off, fi, 1);
}

void fs_dirs_free_all(fs *f) {
  while (f->open_dirs) dirbuf_free(f->open_dirs);
}

void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  dirbuf_free((fs_dirbuf *)(uintptr_t)fi->fh);
  fuse_reply_err(req, 0);
}
