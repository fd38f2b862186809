/* fs_mirror: loading, event application and resync of the mirrored tree. */
#include "fs/fs_mirror.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_errno.h"
#include "fs/fs_store.h"

int fs_mirror_fetch(proto_v2_client *c, const char *prefix, proto_v2_event *ev, uint64_t *index,
                    char **why) {
  memset(ev, 0, sizeof *ev);
  *index = 0;
  proto_v2_buf path = {0};
  proto_v2_keys_path(&path, prefix);
  proto_v2_buf_adds(&path, "?recursive=true&sorted=true");
  if (path.oom) {
    proto_v2_buf_free(&path);
    return ENOMEM;
  }
  proto_v2_resp r;
  proto_v2_errors err;
  proto_v2_client_start_clock(c);
  int rc = proto_v2_do(c, "GET", path.s, NULL, NULL, 0, &r, &err);
  proto_v2_buf_free(&path);
  if (rc != 0) {
    if (why) *why = proto_v2_errors_text(&err);
    return err.kind == PROTO_V2_NOMEM ? ENOMEM : EIO;
  }
  int e = 0;
  if (r.status >= 300) {
    e = fs_errno_from_answer(r.status, r.body);
    if (e == ENOENT) {
      proto_v2_error er;
      if (proto_v2_parse_error(r.body, &er) == 0) {
        *index = er.index;
        proto_v2_error_free(&er);
      }
    }
  } else if (proto_v2_parse_event(r.body, ev) != 0 || !ev->node) {
    proto_v2_event_free(ev);
    memset(ev, 0, sizeof *ev);
    e = EIO;
  }
  if (r.has_index) *index = r.etcd_index;
  proto_v2_resp_free(&r);
  return e;
}

int fs_mirror_hidden(const fs *f, const char *key) {
  const char *rel = fs_replay_relpath(f, key);
  if (!rel) return 1;
  for (const char *p = rel; *p;) {
    if (*p == '_') return 1;
    const char *s = strchr(p, '/');
    if (!s) break;
    p = s + 1;
  }
  return 0;
}

int fs_mirror_visible(fuse_req_t req, const fs_node *node) {
  if (node->replay == FS_REPLAY_HIDDEN) return 0;
  if (node->replay == FS_REPLAY_DYING) return fs_self(req);
  return 1;
}

fs_node *fs_mirror_wait_replay(fs *f, const char *key) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_nsec += 100 * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  fs_node *n;
  while ((n = fs_itable_find(&f->nodes, key)) && n->replay == FS_REPLAY_HIDDEN)
    if (pthread_cond_timedwait(&f->idle, &f->lock, &deadline) == ETIMEDOUT) break;
  n = fs_itable_find(&f->nodes, key);
  if (n && n->replay == FS_REPLAY_HIDDEN) n->replay = FS_REPLAY_NONE;
  return n;
}

void fs_mirror_replayed(fs *f) { pthread_cond_broadcast(&f->idle); }

void fs_mirror_wait_listed(fs *f, const char *key, long ms) {
  struct timespec end;
  clock_gettime(CLOCK_REALTIME, &end);
  int64_t end_ns = (int64_t)end.tv_sec * 1000000000 + end.tv_nsec + (int64_t)ms * 1000000;
  for (;;) {
    fs_node *n = fs_itable_find(&f->nodes, key);
    if (n && n->cached && n->replay != FS_REPLAY_HIDDEN) return;
    if (__atomic_load_n(&f->watch_state, __ATOMIC_ACQUIRE) == FS_WATCH_LOST) return;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
    if (now_ns >= end_ns) return;
    int64_t step = now_ns + 10000000 < end_ns ? now_ns + 10000000 : end_ns; /* (not every
                                                                          * change broadcasts) */
    struct timespec at = {(time_t)(step / 1000000000), (long)(step % 1000000000)};
    pthread_cond_timedwait(&f->idle, &f->lock, &at);
  }
}

/* The kernel may hold DIR's inode (so someone may watch it): replay changes below it. */
static int kernel_knows(const fs *f, const fs_node *dir) {
  return f->notify_vfs && dir && (dir == f->nodes.root || dir->nlookup > 0 || dir->replay == FS_REPLAY_HIDDEN);
}

static void set_from(fs *f, fs_node *n, const proto_v2_knode *kn, int at_load) {
  n->is_dir = kn->dir;
  const char *v = kn->dir || !kn->value ? "" : kn->value;
  fs_node_set_value(n, v, kn->dir || !kn->value ? 0 : kn->value_len);
  n->size = kn->dir ? 0 : n->vlen;
  n->created_index = kn->created_index;
  if (n->modified_index != kn->modified_index || (n->mtime.tv_sec == 0 && n->mtime.tv_nsec == 0)) {
    if (at_load) n->mtime = f->mount_time;
    else clock_gettime(CLOCK_REALTIME, &n->mtime);
    n->modified_index = kn->modified_index;
  }
  n->expires_at = fs_expiration_time(kn->expiration, kn->ttl);
  n->cached = 1;
  n->pending = 0;
}

static void load_tree(fs *f, const proto_v2_knode *kn) {
  for (size_t i = 0; i < kn->n_nodes; i++) {
    const proto_v2_knode *c = &kn->nodes[i];
    if (!c->key || fs_mirror_hidden(f, c->key)) continue;
    fs_node *n = fs_itable_intern(&f->nodes, c->key);
    if (!n) continue;
    set_from(f, n, c, 1);
    if (c->dir) load_tree(f, c);
  }
}

void fs_mirror_load(fs *f, const proto_v2_knode *root) {
  fs_node *r = f->nodes.root;
  r->is_dir = 1;
  r->cached = 1;
  if (!root) return;
  r->created_index = root->created_index;
  r->modified_index = root->modified_index;
  load_tree(f, root);
}

static char *parent_key(const fs *f, const char *key) {
  if (strcmp(key, f->prefix) == 0) return NULL;
  const char *slash = strrchr(key, '/');
  if (!slash) return NULL;
  return slash == key ? strdup("/") : strndup(key, (size_t)(slash - key));
}

static fs_node *parent_node(fs *f, const char *key) {
  char *pk = parent_key(f, key);
  fs_node *p = pk ? fs_itable_find(&f->nodes, pk) : NULL;
  free(pk);
  return p;
}

/* NODE, new to the mirror below PARENT, stays HIDDEN until the applier's own create or mkdir
 * (IN_CREATE; IN_MODIFY too for a value). */
static void replay_create(fs_node *n, const fs_node *parent, fs_rops *ops) {
  size_t before = ops->n;
  n->replay = FS_REPLAY_HIDDEN;
  fs_rops_add(ops, n->is_dir ? FS_ROP_MKDIR : FS_ROP_CREATE, n->key, parent->ino, n->ino);
  if (ops->n == before) { /* out of memory: visible at once, without its events */
    n->replay = FS_REPLAY_NONE;
    return;
  }
  ops->v[ops->n - 1].nonempty = n->vlen > 0;
  ops->v[ops->n - 1].mtime = n->mtime;
}

/* A node the mirror did not have: HIDDEN until the applier creates it, when the kernel may
 * hold its parent; else visible at once (the kernel has nothing to invalidate but the parent). */
static fs_node *add_node(fs *f, const char *key, const proto_v2_knode *kn, fs_rops *ops) {
  fs_node *parent = parent_node(f, key);
  if (!parent) return NULL;
  fs_node *n = fs_itable_intern(&f->nodes, key);
  if (!n) return NULL;
  if (kn) {
    set_from(f, n, kn, 0);
  } else { /* a directory made on the way to a deeper key */
    n->is_dir = 1;
    n->size = 0;
    clock_gettime(CLOCK_REALTIME, &n->mtime);
    n->cached = 1;
  }
  if (kernel_knows(f, parent)) {
    replay_create(n, parent, ops);
  } else {
    fs_rops_add(ops, FS_ROP_INVAL_ENTRY, key, parent->ino, 0);
    fs_rops_add(ops, FS_ROP_INVAL_INODE, key, 0, parent->ino);
  }
  return n;
}

/* The directory KEY, made (with its missing ancestors) when the mirror lacks it. */
static fs_node *ensure_dir(fs *f, const char *key, fs_rops *ops) {
  fs_node *n = fs_itable_find(&f->nodes, key);
  /* (a directory a lookup read from the store before its events came stays unmirrored: its
   * listing is read from the store, complete, until a resync) */
  if (n) return n;
  char *pk = parent_key(f, key);
  fs_node *p = pk ? ensure_dir(f, pk, ops) : NULL;
  free(pk);
  return p ? add_node(f, key, NULL, ops) : NULL;
}

static void mark_dying(fs_node *n) {
  n->replay = FS_REPLAY_DYING;
  for (fs_node *c = n->child; c; c = c->next_sib) mark_dying(c);
}

/* NODE left the store: bottom-up unlink/rmdir by the applier (children only where the kernel
 * may hold the directory), or invalidation now. */
static void remove_node(fs *f, fs_node *n, fs_rops *ops) {
  fs_node *parent = n->parent;
  uint64_t pino = parent ? parent->ino : 0;
  if (kernel_knows(f, parent)) {
    n->replay = FS_REPLAY_DYING;
    if (n->is_dir && n->nlookup > 0) {
      for (fs_node *c = n->child; c; c = c->next_sib) remove_node(f, c, ops);
    } else {
      mark_dying(n);
    }
    fs_rops_add(ops, n->is_dir ? FS_ROP_RMDIR : FS_ROP_UNLINK, n->key, pino, n->ino);
    return;
  }
  fs_rops_add(ops, FS_ROP_DELETE, n->key, pino, n->ino);
  if (pino) fs_rops_add(ops, FS_ROP_INVAL_INODE, n->key, 0, pino);
  fs_rops_add(ops, FS_ROP_INVAL_INODE, n->key, 0, n->ino);
  fs_itable_unlink(&f->nodes, n);
  fs_itable_maybe_free(&f->nodes, n);
}

/* ------------------------------------------------------------------ own deletes */

typedef struct fs_tomb {
  char *key;
  uint64_t index;
} fs_tomb;

void fs_mirror_deleted(fs *f, const char *key, uint64_t index) {
  if (!index) return;
  for (size_t i = 0; i < f->n_tombs; i++)
    if (strcmp(f->tombs[i].key, key) == 0) {
      if (f->tombs[i].index < index) f->tombs[i].index = index;
      return;
    }
  if (f->n_tombs == f->cap_tombs) {
    size_t nc = f->cap_tombs ? f->cap_tombs * 2 : 8;
    fs_tomb *v = realloc(f->tombs, nc * sizeof *v);
    if (!v) return;
    f->tombs = v;
    f->cap_tombs = nc;
  }
  char *k = strdup(key);
  if (!k) return;
  f->tombs[f->n_tombs++] = (fs_tomb){k, index};
}

/* KEY at INDEX is older than a delete of KEY or of a directory above it by this mount. */
static int deleted_since(const fs *f, const char *key, uint64_t index) {
  for (size_t i = 0; i < f->n_tombs; i++) {
    const fs_tomb *t = &f->tombs[i];
    if (t->index <= index) continue;
    size_t n = strlen(t->key);
    if (strncmp(key, t->key, n) == 0 && (key[n] == 0 || key[n] == '/' || strcmp(t->key, "/") == 0))
      return 1;
  }
  return 0;
}

/* The watch has delivered everything up to INDEX: deletes at or below it are no longer needed. */
static void tombs_passed(fs *f, uint64_t index) {
  size_t k = 0;
  for (size_t i = 0; i < f->n_tombs; i++) {
    if (f->tombs[i].index <= index) free(f->tombs[i].key);
    else f->tombs[k++] = f->tombs[i];
  }
  f->n_tombs = k;
}

void fs_mirror_free(fs *f) {
  tombs_passed(f, UINT64_MAX);
  free(f->tombs);
  f->tombs = NULL;
  f->cap_tombs = 0;
}

/* ------------------------------------------------------------------ events */

static void apply_delete(fs *f, const char *key, uint64_t index, fs_rops *ops) {
  fs_node *n = fs_itable_find(&f->nodes, key);
  if (!n || n->pending || n->replay == FS_REPLAY_DYING) return; /* unknown, ours, or local */
  /* made again since: by us, or read ahead of the watch */
  if (index && (n->cached || n->linked) && n->modified_index > index) return;
  if (n == f->nodes.root) { /* the prefix itself: the root stays, empty */
    size_t cnt = 0;
    for (fs_node *c = n->child; c; c = c->next_sib) cnt++;
    fs_node **v = cnt ? malloc(cnt * sizeof *v) : NULL;
    size_t i = 0;
    for (fs_node *c = n->child; v && c; c = c->next_sib) v[i++] = c;
    for (i = 0; v && i < cnt; i++)
      if (v[i]->cached && !v[i]->pending) remove_node(f, v[i], ops);
    free(v);
    fs_rops_add(ops, FS_ROP_INVAL_INODE, key, 0, n->ino);
    return;
  }
  remove_node(f, n, ops);
}

/* Returns 1 when the set replaces a file by a directory (v2's set with dir=true over a file)
 * and SPLIT allows it in two steps: only the file's removal is in OPS, and the event is to be
 * applied again once they have run. The applier's unlink must find the old node under the key
 * (it is the one the kernel holds) before the directory's node can take it, so that a watcher
 * sees IN_DELETE and then IN_CREATE|IN_ISDIR. */
static int apply_set(fs *f, const proto_v2_knode *kn, fs_rops *ops, int split) {
  fs_node *n = fs_itable_find(&f->nodes, kn->key);
  if (n && n->pending) return 0; /* a local create still being written owns the name */
  if (deleted_since(f, kn->key, kn->modified_index)) return 0; /* we deleted it after this */
  if (n == f->nodes.root) {
    n->created_index = kn->created_index;
    n->modified_index = kn->modified_index;
    fs_rops_add(ops, FS_ROP_INVAL_INODE, kn->key, 0, n->ino);
    return 0;
  }
  if (n && n->cached && n->modified_index >= kn->modified_index) return 0; /* ours, or older */
  /* a read (lookup, open) ahead of the watch saw a newer state: this event is history; its
   * own event will make the node part of the mirror, without a second st_mtime */
  if (n && !n->cached && n->linked && n->modified_index > kn->modified_index) return 0;
  /* a file such a read found before its create reached the mirror: the kernel holds its name
   * already and would raise no IN_CREATE; it forgets the name (open descriptors stay), and the
   * applier creates it as any remote create. (A directory keeps its dentry: another one for
   * the same inode would be an alias.) */
  if (n && !n->cached && n->linked && !n->is_dir && !kn->dir && !n->is_post && n->parent &&
      n->parent->cached && kernel_knows(f, n->parent)) {
    set_from(f, n, kn, 0);
    fs_rops_add(ops, FS_ROP_INVAL_ENTRY, kn->key, n->parent->ino, 0);
    replay_create(n, n->parent, ops);
    return 0;
  }
  if (n && n->is_dir != kn->dir) { /* a kind change: gone, then new */
    if (n->replay != FS_REPLAY_DYING) remove_node(f, n, ops); /* (a resync's removed it) */
    if (split && fs_itable_find(&f->nodes, kn->key) == n) return 1; /* the applier unlinks it */
    n = NULL;
  }
  if (!n) {
    char *pk = parent_key(f, kn->key);
    fs_node *p = pk ? ensure_dir(f, pk, ops) : NULL;
    free(pk);
    if (p && p->is_dir) add_node(f, kn->key, kn, ops);
    return 0;
  }
  int was_cached = n->cached;
  set_from(f, n, kn, 0);
  if (!n->is_dir && was_cached && kernel_knows(f, n->parent)) {
    fs_rops_add(ops, FS_ROP_MODIFY, n->key, n->parent->ino, n->ino);
    if (ops->n) ops->v[ops->n - 1].mtime = n->mtime;
  } else {
    fs_rops_add(ops, FS_ROP_INVAL_INODE, n->key, 0, n->ino);
  }
  return 0;
}

int fs_mirror_apply(fs *f, const proto_v2_event *ev, fs_rops *ops, int again) {
  const proto_v2_knode *kn = ev->node;
  if (!kn || !kn->key || !ev->action || fs_mirror_hidden(f, kn->key)) return 0;
  const char *a = ev->action;
  int rc = 0;
  if (strcmp(a, "delete") == 0 || strcmp(a, "compareAndDelete") == 0 || strcmp(a, "expire") == 0)
    apply_delete(f, kn->key, kn->modified_index, ops);
  else
    rc = apply_set(f, kn, ops, !again);
  if (!rc && f->n_tombs) tombs_passed(f, kn->modified_index);
  return rc;
}

/* ------------------------------------------------------------------ resync */

typedef struct flat {
  const proto_v2_knode **v;
  size_t n, cap;
} flat;

static void flatten(flat *fl, const proto_v2_knode *kn) {
  for (size_t i = 0; i < kn->n_nodes; i++) {
    if (fl->n == fl->cap) {
      size_t nc = fl->cap ? fl->cap * 2 : 64;
      const proto_v2_knode **v = realloc(fl->v, nc * sizeof *v);
      if (!v) return;
      fl->v = v;
      fl->cap = nc;
    }
    fl->v[fl->n++] = &kn->nodes[i];
    if (kn->nodes[i].dir) flatten(fl, &kn->nodes[i]);
  }
}

static int by_key(const void *a, const void *b) {
  const proto_v2_knode *x = *(const proto_v2_knode *const *)a, *y = *(const proto_v2_knode *const *)b;
  return strcmp(x->key ? x->key : "", y->key ? y->key : "");
}

static const proto_v2_knode *flat_find(const flat *fl, const char *key) {
  proto_v2_knode probe;
  memset(&probe, 0, sizeof probe);
  probe.key = (char *)key;
  const proto_v2_knode *pp = &probe;
  const proto_v2_knode **hit = fl->n ? bsearch(&pp, fl->v, fl->n, sizeof *fl->v, by_key) : NULL;
  return hit ? *hit : NULL;
}

typedef struct keys {
  char **v;
  size_t n, cap;
} keys;

/* Mirror nodes below DIR that the fresh tree does not have (as it has them), top-most only. */
static void collect_gone(fs *f, const fs_node *dir, const flat *fl, keys *out) {
  for (const fs_node *c = dir->child; c; c = c->next_sib) {
    if (!c->cached || c->pending || fs_mirror_hidden(f, c->key)) continue;
    const proto_v2_knode *kn = flat_find(fl, c->key);
    if (kn && !kn->dir == !c->is_dir) {
      if (c->is_dir) collect_gone(f, c, fl, out);
      continue;
    }
    if (out->n == out->cap) {
      size_t nc = out->cap ? out->cap * 2 : 16;
      char **v = realloc(out->v, nc * sizeof *v);
      if (!v) return;
      out->v = v;
      out->cap = nc;
    }
    char *k = strdup(c->key);
    if (k) out->v[out->n++] = k;
  }
}

int fs_mirror_resync(fs *f, const proto_v2_knode *root, uint64_t index, fs_rops *ops, int again) {
  tombs_passed(f, index);
  int split = 0;
  flat fl = {0};
  if (root) flatten(&fl, root);
  if (fl.n) qsort(fl.v, fl.n, sizeof *fl.v, by_key);
  keys gone = {0};
  collect_gone(f, f->nodes.root, &fl, &gone);
  for (size_t i = 0; i < gone.n; i++) {
    apply_delete(f, gone.v[i], 0, ops);
    free(gone.v[i]);
  }
  free(gone.v);
  /* parents sort before their children ("/a" < "/a/b"), so creates come top-down */
  for (size_t i = 0; i < fl.n; i++) {
    const proto_v2_knode *kn = fl.v[i];
    if (!kn->key || fs_mirror_hidden(f, kn->key)) continue;
    fs_node *n = fs_itable_find(&f->nodes, kn->key);
    if (!n || !n->cached || n->modified_index != kn->modified_index)
      split |= apply_set(f, kn, ops, !again);
  }
  free(fl.v);
  return split;
}

/* ------------------------------------------------------------------ reset */

/* NODE and those below it: the fresh tree's indexes where it holds them unchanged (same kind,
 * same value), else index 0, which any state of the fresh tree replaces. */
static void forget_indexes(fs_node *n, const flat *fl) {
  for (fs_node *c = n->child; c; c = c->next_sib) {
    if (c->pending) continue;
    const proto_v2_knode *kn = flat_find(fl, c->key);
    const char *v = kn && !kn->dir && kn->value ? kn->value : "";
    size_t vlen = kn && !kn->dir && kn->value ? kn->value_len : 0;
    if (kn && c->cached && !kn->dir == !c->is_dir &&
        (c->is_dir || (c->vlen == vlen && memcmp(c->value ? c->value : "", v, vlen) == 0))) {
      c->created_index = kn->created_index;
      c->modified_index = kn->modified_index;
      c->expires_at = fs_expiration_time(kn->expiration, kn->ttl);
    } else {
      c->modified_index = 0;
    }
    forget_indexes(c, fl);
  }
}

int fs_mirror_reset(fs *f, const proto_v2_knode *root, uint64_t index, fs_rops *ops, int again) {
  if (!again) {
    tombs_passed(f, UINT64_MAX);
    flat fl = {0};
    if (root) flatten(&fl, root);
    if (fl.n) qsort(fl.v, fl.n, sizeof *fl.v, by_key);
    forget_indexes(f->nodes.root, &fl);
    free(fl.v);
  }
  return fs_mirror_resync(f, root, index, ops, again);
}
