/* fs_inode: the inode table (two chained hash maps over the same nodes, grown as needed). */
#include "fs/fs_inode.h"

#include <stdlib.h>
#include <string.h>

#define FS_ROOT_INO 1

static size_t hash_u64(uint64_t v, size_t n) {
  v ^= v >> 33;
  v *= 0xff51afd7ed558ccdULL;
  v ^= v >> 33;
  return (size_t)(v & (n - 1));
}

static size_t hash_str(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return hash_u64(h, n);
}

static void key_insert(fs_itable *t, fs_node *n) {
  size_t b = hash_str(n->key, t->n_buckets);
  n->next_key = t->by_key[b];
  t->by_key[b] = n;
  n->linked = 1;
}

/* The node of KEY's parent directory, when known. */
static fs_node *find_parent(fs_itable *t, const char *key) {
  if (t->root && strcmp(key, t->root->key) == 0) return NULL;
  const char *slash = strrchr(key, '/');
  if (!slash) return NULL;
  size_t n = slash == key ? 1 : (size_t)(slash - key);
  char buf[512];
  char *pk = n < sizeof buf ? buf : malloc(n + 1);
  if (!pk) return NULL;
  memcpy(pk, key, n);
  pk[n] = 0;
  fs_node *p = fs_itable_find(t, pk);
  if (pk != buf) free(pk);
  return p;
}

static void tree_attach(fs_itable *t, fs_node *n) {
  fs_node *p = find_parent(t, n->key);
  if (!p || p == n) return;
  n->parent = p;
  n->prev_sib = NULL;
  n->next_sib = p->child;
  if (p->child) p->child->prev_sib = n;
  p->child = n;
}

static void tree_detach(fs_node *n) {
  if (!n->parent) return;
  if (n->prev_sib) n->prev_sib->next_sib = n->next_sib;
  else n->parent->child = n->next_sib;
  if (n->next_sib) n->next_sib->prev_sib = n->prev_sib;
  n->parent = n->prev_sib = n->next_sib = NULL;
}

int fs_node_set_value(fs_node *node, const char *value, size_t len) {
  char *v = malloc(len + 1);
  if (!v) return -1;
  if (len) memcpy(v, value, len);
  v[len] = 0;
  free(node->value);
  node->value = v;
  node->vlen = len;
  return 0;
}

static void node_destroy(fs_node *n) {
  free(n->key);
  free(n->value);
  free(n);
}

static void ino_insert(fs_itable *t, fs_node *n) {
  size_t b = hash_u64(n->ino, t->n_buckets);
  n->next_ino = t->by_ino[b];
  t->by_ino[b] = n;
}

static int grow(fs_itable *t) {
  size_t nb = t->n_buckets * 2;
  fs_node **bi = calloc(nb, sizeof *bi), **bk = calloc(nb, sizeof *bk);
  if (!bi || !bk) {
    free(bi);
    free(bk);
    return -1;
  }
  fs_node **oi = t->by_ino, **ok = t->by_key;
  size_t ob = t->n_buckets;
  t->by_ino = bi;
  t->by_key = bk;
  t->n_buckets = nb;
  for (size_t i = 0; i < ob; i++) {
    for (fs_node *n = oi[i], *next; n; n = next) {
      next = n->next_ino;
      ino_insert(t, n);
    }
    for (fs_node *n = ok[i], *next; n; n = next) {
      next = n->next_key;
      key_insert(t, n);
    }
  }
  free(oi);
  free(ok);
  return 0;
}

static fs_node *node_new(fs_itable *t, const char *key, uint64_t ino) {
  if (t->count + 1 > t->n_buckets && grow(t) != 0) return NULL;
  fs_node *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  n->key = strdup(key);
  if (!n->key) {
    free(n);
    return NULL;
  }
  n->ino = ino;
  ino_insert(t, n);
  key_insert(t, n);
  tree_attach(t, n);
  t->count++;
  return n;
}

int fs_itable_init(fs_itable *t, const char *root_key) {
  memset(t, 0, sizeof *t);
  t->n_buckets = 64;
  t->by_ino = calloc(t->n_buckets, sizeof *t->by_ino);
  t->by_key = calloc(t->n_buckets, sizeof *t->by_key);
  t->next_ino = FS_ROOT_INO + 1;
  if (!t->by_ino || !t->by_key) {
    fs_itable_free(t);
    return -1;
  }
  t->root = node_new(t, root_key, FS_ROOT_INO);
  if (!t->root) {
    fs_itable_free(t);
    return -1;
  }
  t->root->is_dir = 1;
  t->root->nlookup = 1; /* never forgotten */
  return 0;
}

void fs_itable_free(fs_itable *t) {
  if (t->by_ino) {
    for (size_t i = 0; i < t->n_buckets; i++) {
      for (fs_node *n = t->by_ino[i], *next; n; n = next) {
        next = n->next_ino;
        node_destroy(n);
      }
    }
  }
  free(t->by_ino);
  free(t->by_key);
  memset(t, 0, sizeof *t);
}

fs_node *fs_itable_get(const fs_itable *t, uint64_t ino) {
  for (fs_node *n = t->by_ino[hash_u64(ino, t->n_buckets)]; n; n = n->next_ino)
    if (n->ino == ino) return n;
  return NULL;
}

fs_node *fs_itable_find(const fs_itable *t, const char *key) {
  for (fs_node *n = t->by_key[hash_str(key, t->n_buckets)]; n; n = n->next_key)
    if (strcmp(n->key, key) == 0) return n;
  return NULL;
}

fs_node *fs_itable_intern(fs_itable *t, const char *key) {
  fs_node *n = fs_itable_find(t, key);
  return n ? n : node_new(t, key, t->next_ino++);
}

void fs_itable_unlink(fs_itable *t, fs_node *node) {
  while (node->child) {
    fs_node *c = node->child;
    fs_itable_unlink(t, c); /* detaches c */
    fs_itable_maybe_free(t, c);
  }
  tree_detach(node);
  node->cached = 0;
  node->replay = FS_REPLAY_NONE;
  if (!node->linked) return;
  fs_node **pp = &t->by_key[hash_str(node->key, t->n_buckets)];
  while (*pp && *pp != node) pp = &(*pp)->next_key;
  if (*pp) *pp = node->next_key;
  node->next_key = NULL;
  node->linked = 0;
}

int fs_itable_move(fs_itable *t, fs_node *node, const char *new_key) {
  char *k = strdup(new_key);
  if (!k) return -1;
  fs_node *old = fs_itable_find(t, new_key);
  if (old && old != node) {
    fs_itable_unlink(t, old);
    fs_itable_maybe_free(t, old);
  }
  fs_itable_unlink(t, node);
  free(node->key);
  node->key = k;
  key_insert(t, node);
  tree_attach(t, node);
  return 0;
}

void fs_itable_maybe_free(fs_itable *t, fs_node *node) {
  if (node == t->root || node->nlookup > 0 || node->handles || node->child) return;
  if (node->linked && node->cached) return;
  fs_itable_unlink(t, node);
  fs_node **pp = &t->by_ino[hash_u64(node->ino, t->n_buckets)];
  while (*pp && *pp != node) pp = &(*pp)->next_ino;
  if (*pp) *pp = node->next_ino;
  t->count--;
  node_destroy(node);
}

void fs_itable_forget(fs_itable *t, fs_node *node, uint64_t n) {
  if (node == t->root) return;
  node->nlookup = n >= node->nlookup ? 0 : node->nlookup - n;
  fs_itable_maybe_free(t, node);
}
