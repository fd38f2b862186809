/* node_member: member records — the msgpack context of membership changes and of the record a
 * member proposes to publish its name and client URLs — and that publication; and the set of
 * members removed from the cluster. */
#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/node_i.h"
#include "proto/msgpack_scan.h"

static void pack_cstr(msgpack_packer *pk, const char *s) {
  size_t n = strlen(s);
  msgpack_pack_str(pk, n);
  msgpack_pack_str_body(pk, s, n);
}

int node_member_encode(const node_member_ctx *mc, char **out, size_t *len) {
  msgpack_sbuffer sb;
  msgpack_sbuffer_init(&sb);
  msgpack_packer pk;
  msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, 5);
  msgpack_pack_uint64(&pk, mc->origin);
  msgpack_pack_uint64(&pk, mc->m.id);
  pack_cstr(&pk, mc->m.name);
  pack_cstr(&pk, mc->m.peer_urls);
  pack_cstr(&pk, mc->m.client_urls);
  *out = sb.data; /* malloc'd by msgpack's sbuffer */
  *len = sb.size;
  return *out ? 0 : -ENOMEM;
}

static int get_str(const msgpack_object *o, char *dst, size_t cap) {
  if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap) return -EINVAL;
  if (o->via.str.size) memcpy(dst, o->via.str.ptr, o->via.str.size); /* "" may have no ptr */
  dst[o->via.str.size] = 0;
  return 0;
}

int node_member_decode(const uint8_t *data, size_t len, node_member_ctx *mc) {
  memset(mc, 0, sizeof *mc);
  if (!data || !len || proto_msgpack_scan(data, len)) return -EINVAL;
  msgpack_unpacked up;
  msgpack_unpacked_init(&up);
  size_t off = 0;
  int rc = -EINVAL;
  if (msgpack_unpack_next(&up, (const char *)data, len, &off) != MSGPACK_UNPACK_SUCCESS) goto out;
  const msgpack_object *o = &up.data;
  if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 5) goto out;
  const msgpack_object *f = o->via.array.ptr;
  if (f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
    goto out;
  mc->origin = f[0].via.u64;
  mc->m.id = f[1].via.u64;
  if (get_str(&f[2], mc->m.name, sizeof mc->m.name) ||
      get_str(&f[3], mc->m.peer_urls, sizeof mc->m.peer_urls) ||
      get_str(&f[4], mc->m.client_urls, sizeof mc->m.client_urls))
    goto out;
  rc = 0;
out:
  msgpack_unpacked_destroy(&up);
  return rc;
}

/* Raft thread, when a leader is known: proposes this member's name and client URLs, at every
 * start, as etcd publishes (each publication takes a store index there, which clients see).
 * Proposed again to each new leader, after the transport lost what it had queued for the
 * leader (node_transport.c), and, as etcd retries, after each request timeout, until applied:
 * the member serves clients only once it is (node_ready). */
void node_publish_self(node *n) {
  const node_member *self = n->cfg.self;
  if (!self || atomic_load(&n->published) || n->status.lead == RAFT_NONE) return;
  int64_t now = node_mono_ns();
  if (n->publish_lead == n->status.lead &&
      now - n->publish_ns < (int64_t)n->cfg.request_timeout_ms * 1000000)
    return;
  node_member_ctx mc = {.origin = n->cfg.id, .m = *self};
  pthread_mutex_lock(&n->mu);
  const node_member *cur = node_member_find_locked(n, self->id);
  if (cur) memcpy(mc.m.peer_urls, cur->peer_urls, sizeof mc.m.peer_urls);
  pthread_mutex_unlock(&n->mu);
  char *val;
  size_t vlen;
  if (node_member_encode(&mc, &val, &vlen)) return;
  proto_record rec = {.op = PROTO_OP_MEMBER, .path = "/", .path_len = 1, .value = val,
                      .value_len = vlen, .member = n->cfg.id};
  char *buf = NULL;
  size_t len = 0, cap = 0;
  if (proto_record_encode(&rec, &buf, &len, &cap) == 0 && raft_propose(n->r, buf, len) == 0) {
    n->publish_lead = n->status.lead;
    n->publish_ns = now;
  }
  free(buf);
  free(val);
}

/* Writes m into the tree store's current group (apply thread, or before it runs). */
void node_store_member_put(node *n, const node_member *m) {
  node_member_ctx mc = {.m = *m};
  char *buf;
  size_t len;
  if (node_member_encode(&mc, &buf, &len)) abort();
  store_member_put(n->s, m->id, buf, len);
  free(buf);
}

typedef struct load_ctx {
  node_member *out;
  size_t n, max;
} load_ctx;

static void load_one(void *arg, const void *data, size_t len) {
  load_ctx *c = arg;
  node_member_ctx mc;
  if (c->n < c->max && node_member_decode(data, len, &mc) == 0) c->out[c->n++] = mc.m;
}

size_t node_store_members_load(node *n, node_member *out, size_t max) {
  load_ctx c = {out, 0, max};
  store_members_each(n->s, load_one, &c);
  return c.n;
}

static bool removed_has_locked(node *n, uint64_t id) {
  for (size_t i = 0; i < n->n_removed; i++)
    if (n->removed_ids[i] == id) return true;
  return false;
}

static void removed_add_locked(node *n, uint64_t id) {
  if (removed_has_locked(n, id)) return;
  if (n->n_removed == n->cap_removed) {
    size_t nc = n->cap_removed ? n->cap_removed * 2 : 8;
    uint64_t *v = realloc(n->removed_ids, nc * sizeof *v);
    if (!v) abort();
    n->removed_ids = v;
    n->cap_removed = nc;
  }
  n->removed_ids[n->n_removed++] = id;
}

void node_removed_note(node *n, uint64_t id) {
  pthread_mutex_lock(&n->mu);
  removed_add_locked(n, id);
  pthread_mutex_unlock(&n->mu);
}

bool node_removed_has(node *n, uint64_t id) {
  pthread_mutex_lock(&n->mu);
  bool r = removed_has_locked(n, id);
  pthread_mutex_unlock(&n->mu);
  return r;
}

static void note_one(void *arg, uint64_t id) { removed_add_locked(arg, id); }

void node_removed_load(node *n) {
  pthread_mutex_lock(&n->mu);
  n->n_removed = 0;
  store_removed_each(n->s, note_one, n);
  pthread_mutex_unlock(&n->mu);
}

bool node_member_removed(node *n, uint64_t id) { return node_removed_has(n, id); }

bool node_ready(node *n) { return !n->cfg.self || atomic_load(&n->published); }
