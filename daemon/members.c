/* members: /v2/members (GET, POST, PUT, DELETE, /leader) and /v2/machines, with etcd's
 * statuses: 201 on add, 204 on update and remove, 404 for an unknown member, 409 for a peer
 * URL already in use, 415 for a body that is not JSON, 400 for a bad one, 503 during an
 * election, 500 when the change could not be committed in time. Changes are Raft membership
 * changes, one at a time. */
#include <http_parser.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <yajl/yajl_tree.h>

#include "daemon/datadir.h"
#include "daemon/members_request.h"
#include "daemon/routes.h"
#include "daemon/store_i.h"
#include "daemon/v2_auth.h"

/* A membership change waiting to be applied. */
typedef struct member_change {
  server_waiter w; /* first: the server calls w.done */
  http_req *r;     /* NULL once the client has gone */
  uint8_t type;    /* raft_conf_change_type */
  node_member m;
} member_change;

static void gen_member(yajl_gen g, const node_member *m) {
  char id[17];
  snprintf(id, sizeof id, "%" PRIx64, m->id);
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "id");
  proto_v2_gen_cstr(g, id);
  proto_v2_gen_cstr(g, "name");
  proto_v2_gen_cstr(g, m->name);
  proto_v2_gen_cstr(g, "peerURLs");
  proto_v2_gen_csv(g, m->peer_urls);
  proto_v2_gen_cstr(g, "clientURLs");
  proto_v2_gen_csv(g, m->client_urls);
  yajl_gen_map_close(g);
}

static int cmp_member(const void *a, const void *b) {
  uint64_t x = ((const node_member *)a)->id, y = ((const node_member *)b)->id;
  return x < y ? -1 : x > y;
}

static size_t load_members(server *s, node_member *m) {
  size_t n = node_members(s->node, m, RAFT_MAX_VOTERS);
  qsort(m, n, sizeof *m, cmp_member);
  return n;
}

static const node_member *find(const node_member *m, size_t n, uint64_t id) {
  for (size_t i = 0; i < n; i++)
    if (m[i].id == id) return &m[i];
  return NULL;
}

static void change_abort(http_req *r) {
  member_change *c = r->data;
  if (server_cancel(server_shard_of(r)->srv, &c->w)) free(c);
  else c->r = NULL;
}

static void change_done(server *s, server_waiter *w, store_result *res) {
  member_change *c = (member_change *)w;
  if (c->r) {
    c->r->on_abort = NULL;
    if (res->error_code) {
      routes_message(s, c->r, 500, "etcdserver: request timed out", 1);
    } else if (c->type == RAFT_CONF_ADD_NODE) {
      yajl_gen g = proto_v2_gen_new();
      gen_member(g, &c->m);
      routes_json_gen(s, c->r, 201, g, 1);
    } else {
      routes_json(s, c->r, 204, "", 0, 1);
    }
  }
  free(c);
}

static int urls_overlap(const char *a, const char *b) {
  for (const char *p = a; *p;) {
    size_t n = strcspn(p, ",");
    for (const char *q = b; *q;) {
      size_t k = strcspn(q, ",");
      if (k == n && !memcmp(p, q, n)) return 1;
      q += k;
      if (*q == ',') q++;
    }
    p += n;
    if (*p == ',') p++;
  }
  return 0;
}

/* etcd's --strict-reconfig-check (its default): a change must leave enough started members
 * (those that published their name) for a quorum, and removing a reachable member must leave
 * enough reachable ones. Reachability is the leader's (a follower hears from the leader only,
 * so on a follower only the started rule applies); etcd's other rule, that the leader has been
 * connected to a quorum for 5 s, is not copied. Returns the refusal, or NULL. */
static const char *reconfig_unsafe(server *s, const node_status *st, uint8_t type, uint64_t id) {
  if (!s->cfg->strict_reconfig_check || type == RAFT_CONF_UPDATE_NODE) return NULL;
  node_member ms[RAFT_MAX_VOTERS];
  size_t nm = load_members(s, ms);
  static const char not_enough[] =
      "etcdserver: re-configuration failed due to not enough started members";
  size_t nmembers = 0, nstarted = 0;
  for (size_t i = 0; i < nm; i++) {
    if (type == RAFT_CONF_REMOVE_NODE && ms[i].id == id) continue;
    nmembers++;
    if (ms[i].name[0]) nstarted++;
  }
  if (type == RAFT_CONF_ADD_NODE) {
    nmembers++;
    if (nstarted == 1 && nmembers == 2) return NULL; /* growing a lone member, as etcd */
  }
  if (nstarted < nmembers / 2 + 1) return not_enough;
  if (type != RAFT_CONF_REMOVE_NODE || st->role != RAFT_LEADER) return NULL;
  if (!node_peer_active(s->node, id)) return NULL; /* a member that is down is safe to remove */
  size_t active = 0;
  for (size_t i = 0; i < st->raft.conf.n_voters; i++)
    active += node_peer_active(s->node, st->raft.conf.voters[i]);
  if (active - 1 < 1 + (st->raft.conf.n_voters - 1) / 2) return "etcdserver: unhealthy cluster";
  return NULL;
}

static void propose_change(server *s, http_req *r, uint8_t type, const node_member *m) {
  node_status st;
  node_get_status(s->node, &st);
  if (st.lead == RAFT_NONE) {
    routes_message(s, r, 503, "During election", 1);
    return;
  }
  const char *unsafe = reconfig_unsafe(s, &st, type, m->id);
  if (unsafe) { /* etcd answers 500 "Internal Server Error" and logs why; here the body says */
    fprintf(stderr, "quorumd: membership change refused (--strict-reconfig-check): %s\n", unsafe);
    routes_message(s, r, 500, unsafe, 1);
    return;
  }
  member_change *c = calloc(1, sizeof *c);
  if (!c) abort();
  c->w.done = change_done;
  c->w.shard = server_shard_of(r)->id;
  c->r = r;
  c->type = type;
  c->m = *m;
  r->data = c;
  r->on_abort = change_abort;
  if (node_submit_conf(s->node, type, m, &c->w, &c->w.id)) {
    r->on_abort = NULL;
    free(c);
    routes_message(s, r, 500, "etcdserver: cannot propose", 1);
  }
}

/* POST (on any path below /v2/members, as etcd): a new member with the body's peer URLs. */
static void add(server *s, http_req *r, const node_member *ms, size_t nm) {
  node_member m = {0};
  char msg[512];
  int st = members_request_parse(r, m.peer_urls, sizeof m.peer_urls, msg, sizeof msg);
  if (st) {
    routes_message(s, r, st, msg, 1);
    return;
  }
  for (size_t i = 0; i < nm; i++)
    if (urls_overlap(ms[i].peer_urls, m.peer_urls)) {
      routes_message(s, r, 409, "membership: peerURL exists", 1);
      return;
    }
  /* etcd's NewMember with the time: every add makes a new id, also for peer URLs a removed
   * member had (its id stays removed for good). The joining member takes its id from the
   * cluster (join_check), not from its URLs. */
  char seed[2048];
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  snprintf(seed, sizeof seed, "%s|%s|%lld.%09ld", m.peer_urls, s->cfg->initial_cluster_token,
           (long long)now.tv_sec, now.tv_nsec);
  m.id = datadir_hash(seed, 0);
  if (find(ms, nm, m.id)) {
    routes_message(s, r, 409, "membership: ID exists", 1);
    return;
  }
  propose_change(s, r, RAFT_CONF_ADD_NODE, &m);
}

/* DELETE and PUT name a member by its hex id (etcd's getID: none is 405, a bad one 404). */
static int member_id(server *s, http_req *r, const char *rest, size_t n, uint64_t *id) {
  if (!n) { /* http.Error */
    char hdr[96];
    snprintf(hdr, sizeof hdr, "X-Content-Type-Options: nosniff\r\nX-Etcd-Cluster-Id: %s\r\n",
             s->cluster_hex);
    http_respond(r, 405, hdr, "text/plain; charset=utf-8", "Method Not Allowed\n", 19);
    return -1;
  }
  uint64_t v = 0;
  int ok = 1;
  for (size_t i = 0; ok && i < n; i++) {
    char c = rest[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0 || v >> 60) ok = 0;
    else v = v << 4 | (uint64_t)d;
  }
  if (!ok) {
    char msg[1100];
    snprintf(msg, sizeof msg, "No such member: %.*s", (int)(n < 1024 ? n : 1024), rest);
    routes_message(s, r, 404, msg, 1);
    return -1;
  }
  *id = v;
  return 0;
}

void members_handle(server *s, http_req *r, const char *rest, size_t n) {
  int m = r->method;
  if (m != HTTP_GET && m != HTTP_POST && m != HTTP_PUT && m != HTTP_DELETE) {
    routes_text(r, 405, "GET,POST,DELETE,PUT", "Method Not Allowed\n");
    return;
  }
  if (m != HTTP_GET && !v2_auth_root_access(s, r)) { /* with /v2/auth on: root's alone */
    v2_auth_no_auth(s, r);
    return;
  }
  if (n && rest[0] == '/') rest++, n--; /* (etcd's trimPrefix) */
  node_member ms[RAFT_MAX_VOTERS];
  size_t nm = load_members(s, ms);
  if (m == HTTP_GET) {
    if (!n) {
      yajl_gen g = proto_v2_gen_new();
      yajl_gen_map_open(g);
      proto_v2_gen_cstr(g, "members");
      yajl_gen_array_open(g);
      for (size_t i = 0; i < nm; i++) gen_member(g, &ms[i]);
      yajl_gen_array_close(g);
      yajl_gen_map_close(g);
      routes_json_gen(s, r, 200, g, 1);
    } else if (n == 6 && !memcmp(rest, "leader", 6)) {
      node_status st;
      node_get_status(s->node, &st);
      const node_member *l = find(ms, nm, st.lead);
      if (!l) {
        routes_message(s, r, 503, "During election", 1);
        return;
      }
      yajl_gen g = proto_v2_gen_new();
      gen_member(g, l);
      routes_json_gen(s, r, 200, g, 1);
    } else {
      routes_message(s, r, 404, "Not found", 1);
    }
    return;
  }
  if (m == HTTP_POST) {
    add(s, r, ms, nm);
    return;
  }
  uint64_t id;
  if (member_id(s, r, rest, n, &id)) return;
  char idtxt[17];
  snprintf(idtxt, sizeof idtxt, "%" PRIx64, id); /* (types.ID.String: no leading zeros) */
  char msg[512];
  node_member upd = {0};
  if (m == HTTP_PUT) { /* the body is read before the member is looked up */
    int st = members_request_parse(r, upd.peer_urls, sizeof upd.peer_urls, msg, sizeof msg);
    if (st) {
      routes_message(s, r, st, msg, 1);
      return;
    }
  }
  const node_member *cur = find(ms, nm, id);
  if (!cur && node_member_removed(s->node, id)) {
    if (m == HTTP_DELETE) {
      snprintf(msg, sizeof msg, "Member permanently removed: %s", idtxt);
      routes_message(s, r, 410, msg, 1);
    } else { /* etcd's PUT has no case for ErrIDRemoved: its generic answer */
      routes_message(s, r, 500, "Internal Server Error", 1);
    }
    return;
  }
  if (!cur) {
    snprintf(msg, sizeof msg, "No such member: %s", idtxt);
    routes_message(s, r, 404, msg, 1);
    return;
  }
  if (m == HTTP_DELETE) {
    propose_change(s, r, RAFT_CONF_REMOVE_NODE, cur);
    return;
  }
  for (size_t i = 0; i < nm; i++)
    if (ms[i].id != id && urls_overlap(ms[i].peer_urls, upd.peer_urls)) {
      routes_message(s, r, 409, "membership: peerURL exists", 1);
      return;
    }
  node_member next = *cur;
  memcpy(next.peer_urls, upd.peer_urls, sizeof next.peer_urls);
  propose_change(s, r, RAFT_CONF_UPDATE_NODE, &next);
}

void members_handle_machines(server *s, http_req *r) {
  node_member ms[RAFT_MAX_VOTERS];
  size_t nm = load_members(s, ms);
  sbuf b = {0};
  for (size_t i = 0; i < nm; i++) {
    const char *u = ms[i].client_urls;
    while (*u) {
      size_t k = strcspn(u, ",");
      if (k) {
        if (b.len) sbuf_put(&b, ", ", 2);
        sbuf_put(&b, u, k);
      }
      u += k;
      if (*u == ',') u++;
    }
  }
  http_respond_sniffed(r, 200, "text/plain; charset=utf-8", b.p ? b.p : "", b.len);
  sbuf_free(&b);
}

void members_handle_partition(server *s, http_req *r, const char *query) {
  if (r->method != HTTP_POST) {
    routes_text(r, 405, "POST", "Method Not Allowed\n");
    return;
  }
  const char *peer = strstr(query, "peer="), *drop = strstr(query, "drop=");
  const char *type = strstr(query, "type="), *count = strstr(query, "count=");
  if (peer && type) { /* one way: the next `count` messages of this type to peer are lost */
    static const struct { const char *name; uint8_t type; } types[] = {
        {"read_index", RAFT_MSG_READ_INDEX}, {"read_index_resp", RAFT_MSG_READ_INDEX_RESP},
        {"heartbeat", RAFT_MSG_HEARTBEAT}, {"heartbeat_resp", RAFT_MSG_HEARTBEAT_RESP},
        {"app", RAFT_MSG_APP}, {"app_resp", RAFT_MSG_APP_RESP}, {"prop", RAFT_MSG_PROP}};
    size_t tl = strcspn(type + 5, "&");
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
      if (strlen(types[i].name) == tl && !strncmp(types[i].name, type + 5, tl)) {
        node_drop_next(s->node, strtoull(peer + 5, NULL, 16), types[i].type,
                       count ? (unsigned)strtoul(count + 6, NULL, 10) : 1);
        routes_message(s, r, 200, "ok", 1);
        return;
      }
    routes_message(s, r, 400, "unknown message type", 1);
    return;
  }
  if (peer && strstr(query, "break=1")) { /* the connection to peer resets */
    node_break_peer(s->node, strtoull(peer + 5, NULL, 16));
    routes_message(s, r, 200, "ok", 1);
    return;
  }
  if (!peer || !drop) {
    routes_message(s, r, 400,
                   "want peer=HEX|all&drop=1|0, peer=HEX&type=NAME[&count=N], or peer=HEX&break=1", 1);
    return;
  }
  uint64_t id = strncmp(peer + 5, "all", 3) ? strtoull(peer + 5, NULL, 16) : 0;
  node_set_partition(s->node, id, drop[5] == '1');
  routes_message(s, r, 200, "ok", 1);
}
