/* fs_ops_xattr: node metadata as extended attributes.
 *   user.etcd.ttl            rw: seconds left; set N = refresh the TTL; set "" or remove = clear
 *   user.etcd.expiration     ro, RFC 3339 (only with a TTL)
 *   user.etcd.createdIndex   ro
 *   user.etcd.modifiedIndex  ro
 *   user.etcd.key            ro
 *   user.etcd.index          ro, mount root only: the store's current X-Etcd-Index
 *   user.etcd.connected      ro, mount root only: "1" when the last request reached the cluster
 * Other user.* names have no value (ENODATA). The other namespaces (security.* such as SELinux
 * labels, system.* POSIX ACLs, trusted.*) are not supported: reading one gives ENOTSUP, which
 * ls, cp and rsync take as "this file system has none" and stop asking (`ls -l` asked three
 * per file, each a round trip through FUSE).
 * Setting or removing a read-only name gives ENOTSUP, as do names outside user.etcd.*: tools
 * that copy a tree with its attributes (mv of a directory, which is copied: EXDEV) then go on
 * quietly, as they do where a file system does not support an attribute (with EPERM mv prints a
 * warning per file and attribute). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_attr.h"
#include "fs/fs_handle.h"
#include "fs/fs_ops.h"
#include "fs/fs_store.h"

#define XA "user.etcd."


/* The node's etcd key, or NULL when INO is unknown; is_root tells the mount root. */
static fs_node *xattr_node(fs *f, fuse_ino_t ino, int *is_root) {
  fs_node *node = fs_node_of(f, ino);
  *is_root = node && node == f->nodes.root;
  return node;
}

/* The value of NAME into out (size n). Returns 0 or an errno (ENODATA when it has none). */
static int xattr_value(fs *f, fs_node *node, int is_root, const char *name, char *out, size_t n) {
  if (strncmp(name, "user.", 5) != 0) return ENOTSUP;
  if (strncmp(name, XA, sizeof XA - 1) != 0) return ENODATA;
  if (node->is_post || node->pending) return ENODATA;
  if (strcmp(name, XA "key") == 0) {
    snprintf(out, n, "%s", node->key);
    return 0;
  }
  if (is_root && strcmp(name, XA "connected") == 0) {
    fs_kv kv;
    int e = fs_store_get(f, node->key, &kv); /* a probe: connected means reachable now */
    if (!e) fs_kv_free(&kv);
    snprintf(out, n, "%d", f->connected);
    return 0;
  }
  fs_kv kv;
  int e = fs_store_get(f, node->key, &kv);
  if (e) return e;
  if (node != f->nodes.root) fs_attr_update(f, node, &kv);
  e = 0;
  if (is_root && strcmp(name, XA "index") == 0) {
    snprintf(out, n, "%llu", (unsigned long long)kv.etcd_index);
  } else if (strcmp(name, XA "ttl") == 0) {
    if (kv.expiration) snprintf(out, n, "%lld", (long long)kv.ttl);
    else e = ENODATA;
  } else if (strcmp(name, XA "expiration") == 0) {
    if (kv.expiration) snprintf(out, n, "%s", kv.expiration);
    else e = ENODATA;
  } else if (strcmp(name, XA "createdIndex") == 0 && kv.created_index) {
    snprintf(out, n, "%llu", (unsigned long long)kv.created_index);
  } else if (strcmp(name, XA "modifiedIndex") == 0 && kv.modified_index) {
    snprintf(out, n, "%llu", (unsigned long long)kv.modified_index);
  } else {
    e = ENODATA;
  }
  fs_kv_free(&kv);
  return e;
}

static void reply_bytes(fuse_req_t req, const char *v, size_t len, size_t size) {
  if (size == 0) fuse_reply_xattr(req, len);
  else if (size < len) fuse_reply_err(req, ERANGE);
  else fuse_reply_buf(req, v, len);
}

void fs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
  fs *f = fs_begin(req);
  int is_root;
  fs_node *node = xattr_node(f, ino, &is_root);
  char *v = malloc(4096 + (node ? strlen(node->key) : 0));
  int e = !node ? ENOENT : !v ? ENOMEM : xattr_value(f, node, is_root, name, v, 4096 + strlen(node->key));
  if (e) fuse_reply_err(req, e);
  else reply_bytes(req, v, strlen(v), size);
  free(v);
}

static int list_names(fs *f, fs_node *node, int is_root, proto_v2_buf *b) {
  if (node->is_post || node->pending) return 0;
  fs_kv kv;
  int e = fs_store_get(f, node->key, &kv);
  if (e) return e;
  const char *names[8];
  size_t n = 0;
  names[n++] = XA "key";
  if (kv.created_index) names[n++] = XA "createdIndex";
  if (kv.modified_index) names[n++] = XA "modifiedIndex";
  if (kv.expiration) {
    names[n++] = XA "ttl";
    names[n++] = XA "expiration";
  }
  if (is_root) {
    names[n++] = XA "index";
    names[n++] = XA "connected";
  }
  for (size_t i = 0; i < n; i++) proto_v2_buf_add(b, names[i], strlen(names[i]) + 1);
  fs_kv_free(&kv);
  return b->oom ? ENOMEM : 0;
}

void fs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  fs *f = fs_begin(req);
  int is_root;
  fs_node *node = xattr_node(f, ino, &is_root);
  proto_v2_buf b = {0};
  int e = node ? list_names(f, node, is_root, &b) : ENOENT;
  if (e) fuse_reply_err(req, e);
  else reply_bytes(req, b.s ? b.s : "", b.len, size);
  proto_v2_buf_free(&b);
}

/* Whether someone has NODE open (not the applier). */
static int open_here(const fs_node *node) {
  for (const fs_handle *h = node->handles; h; h = h->next)
    if (!h->self) return 1;
  return 0;
}

/* A TTL change made here (the key at modifiedIndex before, kv after) is no concurrent change of
 * the value: the node's open handles take the new modifiedIndex as their base and the new TTL,
 * so that their close neither fails (ESTALE) nor undoes the TTL. (mv of a directory and cp -a
 * copy a key, set its attributes through the open file, then close it.) */
static void handles_follow(fs_node *node, uint64_t before, const fs_kv *kv) {
  for (fs_handle *h = node->handles; h; h = h->next) {
    if (h->self) continue;
    if (h->push == FS_PUSH_CAS && h->base_index == before) h->base_index = kv->modified_index;
    h->expires_at = kv->expires_at;
  }
}

/* ttl "" (or removexattr): PUT with ttl= and the same value (prevIndex, so a concurrent change
 * is not overwritten); on a directory an update (prevExist=true). */
static int clear_ttl(fs *f, fs_node *node) {
  fs_kv kv;
  int e = fs_store_get(f, node->key, &kv);
  if (e) return e;
  proto_v2_buf form = {0};
  if (kv.dir) {
    fs_form_add(&form, "dir", "true");
    fs_form_add(&form, "prevExist", "true");
  } else {
    fs_form_add_value(&form, kv.value, kv.len);
    fs_form_add_u64(&form, "prevIndex", kv.modified_index);
  }
  fs_form_add(&form, "ttl", "");
  uint64_t before = kv.modified_index;
  fs_kv_free(&kv);
  e = form.oom ? ENOMEM : fs_store_req(f, "PUT", node->key, NULL, form.s, &kv);
  proto_v2_buf_free(&form);
  if (e) return e;
  fs_attr_written(f, node, &kv);
  handles_follow(node, before, &kv);
  fs_kv_free(&kv);
  return 0;
}

/* ttl N: refresh=true&prevExist=true&ttl=N (the value and createdIndex stay). */
static int refresh_ttl(fs *f, fs_node *node, const char *value, size_t size) {
  while (size && (value[size - 1] == '\n' || value[size - 1] == ' ')) size--;
  if (size == 0) return clear_ttl(f, node);
  if (size > 19) return EINVAL;
  char num[24];
  memcpy(num, value, size);
  num[size] = 0;
  for (size_t i = 0; i < size; i++)
    if (num[i] < '0' || num[i] > '9') return EINVAL;
  if (strtoull(num, NULL, 10) == 0) return clear_ttl(f, node);
  proto_v2_buf form = {0};
  fs_form_add(&form, "refresh", "true");
  fs_form_add(&form, "prevExist", "true");
  fs_form_add(&form, "ttl", num);
  fs_kv kv;
  uint64_t before = 0;
  if (open_here(node)) { /* the index the refresh moves from, for the open handles */
    int e = fs_store_get(f, node->key, &kv);
    if (e) {
      proto_v2_buf_free(&form);
      return e;
    }
    before = kv.modified_index;
    int dir = kv.dir;
    fs_kv_free(&kv);
    if (!dir) fs_form_add_u64(&form, "prevIndex", before);
  }
  int e = form.oom ? ENOMEM : fs_store_req(f, "PUT", node->key, NULL, form.s, &kv);
  proto_v2_buf_free(&form);
  if (e) return e;
  fs_attr_written(f, node, &kv);
  if (before) handles_follow(node, before, &kv);
  fs_kv_free(&kv);
  return 0;
}

static int set_name(fs *f, fuse_ino_t ino, const char *name, const char *value, size_t size) {
  int is_root;
  fs_node *node = xattr_node(f, ino, &is_root);
  if (!node) return ENOENT;
  if (strncmp(name, XA, sizeof XA - 1) != 0) return ENOTSUP;
  if (strcmp(name, XA "ttl") != 0) return ENOTSUP; /* read-only (all but ttl) or unknown */
  if (node->is_post || node->pending || (is_root && strcmp(node->key, "/") == 0)) return EPERM;
  return value ? refresh_ttl(f, node, value, size) : clear_ttl(f, node);
}

void fs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
                 int flags) {
  (void)flags;
  fs *f = fs_begin(req);
  fuse_reply_err(req, fs_refuse_write(req) ? EROFS : set_name(f, ino, name, value, size));
}

void fs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name) {
  fs *f = fs_begin(req);
  fuse_reply_err(req, fs_refuse_write(req) ? EROFS : set_name(f, ino, name, NULL, 0));
}
