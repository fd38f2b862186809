/* store_list: renders a GET — one node, one directory's children, or a whole subtree — from
 * ordered LevelDB scans. Children come out of the scan in byte order of their names, which is
 * the order sorted=true asks for, so sorting costs nothing. Hidden ('_') names are skipped with
 * everything below them. */
#include "daemon/store_i.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* A listed node: its own copy of path and value, and the indexes of its children. */
typedef struct lnode {
  char *path;
  size_t path_len;
  codec_node n;
  char *value;
  size_t *kids;
  size_t nk, ck;
} lnode;

typedef struct listing {
  lnode *v;
  size_t n, cap;
  /* open-addressing map from a directory's path to its index in v */
  size_t *slots;
  size_t nslots, used;
} listing;

static uint64_t hash_bytes(const char *p, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
  return h;
}

static void map_insert(listing *l, size_t idx);

static void map_grow(listing *l) {
  size_t *old = l->slots, on = l->nslots;
  l->nslots = on ? on * 2 : 64;
  l->slots = malloc(l->nslots * sizeof *l->slots);
  if (!l->slots) abort();
  for (size_t i = 0; i < l->nslots; i++) l->slots[i] = SIZE_MAX;
  l->used = 0;
  for (size_t i = 0; i < on; i++)
    if (old[i] != SIZE_MAX) map_insert(l, old[i]);
  free(old);
}

static void map_insert(listing *l, size_t idx) {
  if ((l->used + 1) * 2 > l->nslots) map_grow(l);
  size_t m = l->nslots - 1;
  size_t i = hash_bytes(l->v[idx].path, l->v[idx].path_len) & m;
  while (l->slots[i] != SIZE_MAX) i = (i + 1) & m;
  l->slots[i] = idx;
  l->used++;
}

static size_t map_find(const listing *l, const char *p, size_t n) {
  if (!l->nslots) return SIZE_MAX;
  size_t m = l->nslots - 1;
  for (size_t i = hash_bytes(p, n) & m; l->slots[i] != SIZE_MAX; i = (i + 1) & m) {
    const lnode *x = &l->v[l->slots[i]];
    if (x->path_len == n && !memcmp(x->path, p, n)) return l->slots[i];
  }
  return SIZE_MAX;
}

static size_t add_node(listing *l, const char *path, size_t plen, const codec_node *n) {
  if (l->n == l->cap) {
    l->cap = l->cap ? l->cap * 2 : 16;
    l->v = realloc(l->v, l->cap * sizeof *l->v);
    if (!l->v) abort();
  }
  lnode *x = &l->v[l->n];
  memset(x, 0, sizeof *x);
  x->path = malloc(plen + n->value_len + 1);
  if (!x->path) abort();
  memcpy(x->path, path, plen);
  x->path_len = plen;
  x->n = *n;
  x->value = x->path + plen;
  if (!n->dir && n->value_len) memcpy(x->value, n->value, n->value_len);
  x->n.value = x->value;
  if (n->dir) map_insert(l, l->n);
  return l->n++;
}

static void add_kid(lnode *parent, size_t kid) {
  if (parent->nk == parent->ck) {
    parent->ck = parent->ck ? parent->ck * 2 : 4;
    parent->kids = realloc(parent->kids, parent->ck * sizeof *parent->kids);
    if (!parent->kids) abort();
  }
  parent->kids[parent->nk++] = kid;
}

static void listing_free(listing *l) {
  for (size_t i = 0; i < l->n; i++) {
    free(l->v[i].path);
    free(l->v[i].kids);
  }
  free(l->v);
  free(l->slots);
}

static int is_hidden_name(const char *path, size_t len) {
  size_t i = len;
  while (i > 0 && path[i - 1] != '/') i--;
  return i < len && path[i] == '_';
}

/* Scans the keys under prefix, adding each visible node below its parent (found in the map).
 * depth_one: only direct children of l->v[0] (no map lookups). */
static int scan(store *s, const leveldb_readoptions_t *ro, listing *l, const sbuf *prefix,
                int depth_one) {
  leveldb_iterator_t *it = leveldb_create_iterator(s->db, ro);
  sbuf path = {0};
  int rc = 0;
  size_t last_parent = SIZE_MAX;
  const char *lp = NULL;
  size_t lplen = 0;
  for (leveldb_iter_seek(it, prefix->p, prefix->len); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl, vl;
    const char *k = leveldb_iter_key(it, &kl);
    if (kl < prefix->len || memcmp(k, prefix->p, prefix->len)) break;
    const char *v = leveldb_iter_value(it, &vl);
    codec_node n;
    sbuf_reset(&path);
    if (codec_node_decode(v, vl, &n) || codec_node_path(&path, k, kl)) {
      rc = -EIO;
      break;
    }
    if (is_hidden_name(path.p, path.len)) continue;
    size_t parent = 0;
    if (!depth_one) {
      size_t plen = path.len;
      while (plen > 0 && path.p[plen - 1] != '/') plen--;
      plen = plen > 1 ? plen - 1 : 1;
      if (last_parent != SIZE_MAX && plen == lplen && !memcmp(lp, path.p, plen)) {
        parent = last_parent;
      } else {
        parent = map_find(l, path.p, plen);
        if (parent == SIZE_MAX) continue; /* below a hidden directory */
        last_parent = parent;
      }
    }
    size_t idx = add_node(l, path.p, path.len, &n);
    add_kid(&l->v[parent], idx);
    lp = l->v[last_parent == SIZE_MAX ? 0 : last_parent].path;
    lplen = l->v[last_parent == SIZE_MAX ? 0 : last_parent].path_len;
  }
  leveldb_iter_destroy(it);
  sbuf_free(&path);
  return rc;
}


static proto_node lnode_proto(const lnode *x) {
  proto_node p = {0};
  if (x->path_len > 1) {
    p.key = x->path;
    p.key_len = x->path_len;
    p.created_index = x->n.created;
    p.modified_index = x->n.modified;
  }
  p.dir = x->n.dir;
  p.value = x->n.value;
  p.value_len = x->n.value_len;
  p.expiration = x->n.expiration;
  return p;
}

/* Writes node i with the children the scans attached to it (none for the directories inside a
 * one-level listing, which etcd shows without "nodes"). */
static void gen_tree(const listing *l, size_t i, int64_t now, yajl_gen g) {
  const lnode *x = &l->v[i];
  proto_node p = lnode_proto(x);
  if (!x->nk) {
    proto_v2_gen_node(g, &p, now);
    return;
  }
  proto_v2_gen_node_open(g, &p, now);
  PROTO_V2_GEN_KEY(g, "nodes");
  yajl_gen_array_open(g);
  for (size_t k = 0; k < x->nk; k++) gen_tree(l, x->kids[k], now, g);
  yajl_gen_array_close(g);
  proto_v2_gen_node_close(g, &p);
}

int store_list_gen(store *s, const leveldb_readoptions_t *ro, const char *path, size_t len,
                   const codec_node *n, int recursive, int sorted, int64_t now_ns, yajl_gen g) {
  (void)sorted; /* scans are already in key order */
  if (!n->dir) {
    proto_node p = {.key = path, .key_len = len, .value = n->value, .value_len = n->value_len,
                    .expiration = n->expiration, .created_index = n->created,
                    .modified_index = n->modified};
    proto_v2_gen_node(g, &p, now_ns);
    return 0;
  }
  listing l = {0};
  add_node(&l, path, len, n);
  sbuf prefix = {0};
  codec_children_prefix(&prefix, path, len);
  int rc = scan(s, ro, &l, &prefix, !recursive);
  if (rc == 0 && recursive && len > 1) {
    sbuf_reset(&prefix);
    codec_deep_prefix(&prefix, path, len);
    rc = scan(s, ro, &l, &prefix, 0);
  } else if (rc == 0 && recursive) {
    /* The root: everything below is every other 'n' key with a non-empty parent. */
    sbuf_reset(&prefix);
    sbuf_put(&prefix, "n/", 2);
    rc = scan(s, ro, &l, &prefix, 0);
  }
  sbuf_free(&prefix);
  if (rc == 0) gen_tree(&l, 0, now_ns, g);
  listing_free(&l);
  return rc;
}
