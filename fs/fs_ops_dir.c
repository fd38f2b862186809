/* fs_ops_dir: directory listings. opendir takes the directory's names once (from the mirror, or
 * from the store for directories that are not mirrored), sorted by name as the server sorts
 * with sorted=true, into a buffer of dirents that readdir serves in slices. Hidden "_" keys
 * are not listed (v2 does not return them), nor FS_POST_NAME, nor remote deletes not yet
 * replayed; remote creates not yet replayed are (a lookup of one waits for its replay). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_attr.h"
#include "fs/fs_mirror.h"
#include "fs/fs_ops.h"
#include "fs/fs_store.h"

typedef struct fs_dirbuf {
  char *p;
  size_t size;
} fs_dirbuf;

static int dirbuf_add(fuse_req_t req, fs_dirbuf *b, const char *name, fuse_ino_t ino, int dir) {
  struct stat st;
  memset(&st, 0, sizeof st);
  st.st_ino = ino;
  st.st_mode = dir ? S_IFDIR : S_IFREG;
  size_t old = b->size;
  size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
  char *p = realloc(b->p, old + need);
  if (!p) return ENOMEM;
  b->p = p;
  b->size = old + need;
  fuse_add_direntry(req, b->p + old, need, name, &st, (off_t)b->size);
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

/* The listing of a mirrored directory: its mirrored children, and those a lookup read from the
 * store ahead of the watch (a name that can be opened is listed). */
static int list_mirror(fuse_req_t req, fs_node *node, fs_dirbuf *b) {
  size_t n = 0;
  for (fs_node *c = node->child; c; c = c->next_sib) n++;
  fs_node **v = n ? malloc(n * sizeof *v) : NULL;
  if (n && !v) return ENOMEM;
  size_t k = 0;
  for (fs_node *c = node->child; c; c = c->next_sib)
    if ((c->cached || c->nlookup > 0) && !c->pending && !c->is_post && fs_key_base(c->key)[0] != '_' &&
        (c->replay == FS_REPLAY_HIDDEN || fs_mirror_visible(req, c)))
      v[k++] = c;
  if (k) qsort(v, k, sizeof *v, by_name);
  int e = dirbuf_add(req, b, ".", node->ino, 1);
  if (!e) e = dirbuf_add(req, b, "..", node->ino, 1);
  for (size_t i = 0; !e && i < k; i++) e = dirbuf_add(req, b, fs_key_base(v[i]->key), v[i]->ino, v[i]->is_dir);
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
    if (e && b) {
      free(b->p);
      free(b);
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
  if (!e) e = dirbuf_add(req, b, ".", node->ino, 1);
  if (!e) e = dirbuf_add(req, b, "..", node->ino, 1);
  for (size_t i = 0; !e && i < kv.n_names; i++) {
    const char *name = kv.names[i];
    if (!*name || name[0] == '_' || strcmp(name, FS_POST_NAME) == 0) continue;
    char *key = fs_child_key(node->key, name);
    if (!key) {
      e = ENOMEM;
      break;
    }
    e = dirbuf_add(req, b, name, listed_ino(f, key), kv.names_dir[i]);
    free(key);
  }
  fs_kv_free(&kv);
  if (e && b) {
    free(b->p);
    free(b);
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
  if (fuse_reply_open(req, fi) != 0) {
    free(b->p);
    free(b);
  }
}

void fs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  (void)ino;
  fs_dirbuf *b = (fs_dirbuf *)(uintptr_t)fi->fh;
  if (off < 0 || (size_t)off >= b->size) {
    fuse_reply_buf(req, NULL, 0);
    return;
  }
  size_t n = b->size - (size_t)off;
  fuse_reply_buf(req, b->p + off, n < size ? n : size);
}

void fs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  (void)ino;
  fs_dirbuf *b = (fs_dirbuf *)(uintptr_t)fi->fh;
  if (b) {
    free(b->p);
    free(b);
  }
  fuse_reply_err(req, 0);
}
