/* v2_event: reading a v2 keys answer ({"action", "node", "prevNode"}) into proto_v2_event.
 * Parsed with yajl's callbacks rather than its tree, which ends each string at its first NUL:
 * a value may hold NUL bytes (etcd stores any bytes; JSON carries them as \u0000), and each
 * value keeps its length. Unknown members are skipped; when a member appears twice the first
 * counts (as a lookup in yajl's tree finds it). */
#include "proto/v2_client.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

typedef enum { F_IGNORE, F_EVENT, F_KNODE, F_NODES } frame_kind;

/* The members read; every other name is K_OTHER. */
typedef enum {
  K_OTHER, K_ACTION, K_NODE, K_PREV, K_KEY, K_VALUE, K_DIR, K_EXP, K_TTL, K_CI, K_MI, K_NODES
} member;

typedef struct frame {
  frame_kind kind;
  proto_v2_knode *n; /* F_KNODE: the node; F_NODES: the node whose "nodes" these are */
  size_t cap;        /* F_NODES: room in n->nodes */
  member key;        /* F_EVENT, F_KNODE: the member whose value comes next */
  unsigned seen;     /* members already read (bit per member) */
} frame;

typedef struct eparse {
  proto_v2_event *ev;
  frame *stack;
  size_t depth, cap;
  int started, oom;
} eparse;

static member member_of(const unsigned char *s, size_t l) {
  static const struct {
    const char *name;
    member m;
  } names[] = {{"action", K_ACTION}, {"node", K_NODE}, {"prevNode", K_PREV}, {"key", K_KEY},
               {"value", K_VALUE}, {"dir", K_DIR}, {"expiration", K_EXP}, {"ttl", K_TTL},
               {"createdIndex", K_CI}, {"modifiedIndex", K_MI}, {"nodes", K_NODES}};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strlen(names[i].name) == l && memcmp(names[i].name, s, l) == 0) return names[i].m;
  return K_OTHER;
}

static frame *top(eparse *p) { return p->depth ? &p->stack[p->depth - 1] : NULL; }

/* The member a value in the top frame is for, or K_OTHER when it is not read (unknown, a
 * repeat, or not in an object this parser reads). */
static member take(eparse *p) {
  frame *f = top(p);
  if (!f || (f->kind != F_EVENT && f->kind != F_KNODE) || f->key == K_OTHER) return K_OTHER;
  member m = f->key;
  f->key = K_OTHER;
  if (f->seen & (1u << m)) return K_OTHER;
  f->seen |= 1u << m;
  return m;
}

static int push(eparse *p, frame_kind kind, proto_v2_knode *n) {
  if (p->depth == p->cap) {
    size_t nc = p->cap ? p->cap * 2 : 16;
    frame *s = realloc(p->stack, nc * sizeof *s);
    if (!s) return p->oom = 1, 0;
    p->stack = s;
    p->cap = nc;
  }
  p->stack[p->depth++] = (frame){.kind = kind, .n = n};
  return 1;
}

static char *dup_n(eparse *p, const unsigned char *s, size_t l) {
  char *d = malloc(l + 1);
  if (!d) {
    p->oom = 1;
    return NULL;
  }
  memcpy(d, s, l);
  d[l] = 0;
  return d;
}

static uint64_t number(const unsigned char *s, size_t l) {
  char b[32];
  if (l >= sizeof b) l = sizeof b - 1;
  memcpy(b, s, l);
  b[l] = 0;
  return strtoull(b, NULL, 10);
}

static int on_null(void *ctx) {
  eparse *p = ctx;
  take(p);
  return 1;
}

static int on_boolean(void *ctx, int b) {
  eparse *p = ctx;
  frame *f = top(p);
  if (take(p) == K_DIR && f->kind == F_KNODE) f->n->dir = b; /* not the event's own "dir" */
  return 1;
}

static int on_number(void *ctx, const char *s, size_t l) {
  eparse *p = ctx;
  frame *f = top(p);
  const unsigned char *u = (const unsigned char *)s;
  member m = take(p);
  if (m == K_OTHER || f->kind != F_KNODE) return 1; /* the event's own "ttl" is no node's */
  switch (m) {
    case K_TTL: f->n->ttl = (int64_t)number(u, l); break;
    case K_CI: f->n->created_index = number(u, l); break;
    case K_MI: f->n->modified_index = number(u, l); break;
    default: break;
  }
  return 1;
}

static int on_string(void *ctx, const unsigned char *s, size_t l) {
  eparse *p = ctx;
  frame *f = top(p);
  switch (take(p)) {
    case K_ACTION:
      if (f->kind == F_EVENT) p->ev->action = dup_n(p, s, l);
      break;
    case K_KEY:
      if (f->kind == F_KNODE) f->n->key = dup_n(p, s, l);
      break;
    case K_VALUE:
      if (f->kind == F_KNODE && (f->n->value = dup_n(p, s, l))) f->n->value_len = l;
      break;
    case K_EXP:
      if (f->kind == F_KNODE) f->n->expiration = dup_n(p, s, l);
      break;
    default:
      break;
  }
  return !p->oom;
}

static int on_map_key(void *ctx, const unsigned char *s, size_t l) {
  frame *f = top(ctx);
  if (f && (f->kind == F_EVENT || f->kind == F_KNODE)) f->key = member_of(s, l);
  return 1;
}

static int on_start_map(void *ctx) {
  eparse *p = ctx;
  if (!p->started) {
    p->started = 1;
    return push(p, F_EVENT, NULL);
  }
  frame *f = top(p);
  if (f && f->kind == F_NODES) {
    if (f->n->n_nodes == f->cap) {
      size_t nc = f->cap * 2;
      proto_v2_knode *v = realloc(f->n->nodes, nc * sizeof *v);
      if (!v) return p->oom = 1, 0;
      f->n->nodes = v;
      f->cap = nc;
    }
    proto_v2_knode *c = &f->n->nodes[f->n->n_nodes++];
    memset(c, 0, sizeof *c);
    return push(p, F_KNODE, c);
  }
  member m = take(p);
  if (f && f->kind == F_EVENT && (m == K_NODE || m == K_PREV)) {
    proto_v2_knode *n = calloc(1, sizeof *n);
    if (!n) return p->oom = 1, 0;
    *(m == K_NODE ? &p->ev->node : &p->ev->prev_node) = n;
    return push(p, F_KNODE, n);
  }
  return push(p, F_IGNORE, NULL);
}

/* A node's key and value are "" when absent or not strings. */
static void knode_done(eparse *p, proto_v2_knode *n) {
  if (!n->key && !(n->key = strdup(""))) p->oom = 1;
  if (!n->value && !(n->value = strdup(""))) p->oom = 1;
}

static int on_end(void *ctx) {
  eparse *p = ctx;
  frame *f = top(p);
  if (!f) return 0;
  if (f->kind == F_KNODE) knode_done(p, f->n);
  p->depth--;
  return !p->oom;
}

static int on_start_array(void *ctx) {
  eparse *p = ctx;
  if (!p->started) return 0; /* the answer must be an object */
  frame *f = top(p);
  if (take(p) == K_NODES && f->kind == F_KNODE) {
    f->n->has_nodes = 1;
    f->n->nodes = calloc(4, sizeof *f->n->nodes);
    if (!f->n->nodes) return p->oom = 1, 0;
    if (!push(p, F_NODES, f->n)) return 0;
    top(p)->cap = 4;
    return 1;
  }
  return push(p, F_IGNORE, NULL);
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_boolean,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_map_key,
    .yajl_end_map = on_end,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end,
};

void proto_v2_knode_free(proto_v2_knode *n) {
  if (!n) return;
  free(n->key);
  free(n->value);
  free(n->expiration);
  for (size_t i = 0; i < n->n_nodes; i++) proto_v2_knode_free(&n->nodes[i]);
  free(n->nodes);
  memset(n, 0, sizeof *n);
}

void proto_v2_event_free(proto_v2_event *ev) {
  free(ev->action);
  if (ev->node) proto_v2_knode_free(ev->node);
  free(ev->node);
  if (ev->prev_node) proto_v2_knode_free(ev->prev_node);
  free(ev->prev_node);
  memset(ev, 0, sizeof *ev);
}

int proto_v2_parse_event(const char *body, proto_v2_event *ev) {
  memset(ev, 0, sizeof *ev);
  eparse p = {.ev = ev};
  yajl_handle h = yajl_alloc(&callbacks, NULL, &p);
  if (!h) return -1;
  size_t len = body ? strlen(body) : 0;
  int ok = yajl_parse(h, (const unsigned char *)(body ? body : ""), len) == yajl_status_ok &&
           yajl_complete_parse(h) == yajl_status_ok && p.started && !p.oom;
  yajl_free(h);
  free(p.stack);
  if (ok && !ev->action && !(ev->action = strdup(""))) ok = 0;
  if (!ok) {
    proto_v2_event_free(ev);
    return -1;
  }
  return 0;
}
