/* members: /v2/members and /v2/machines for this member. Membership changes arrive with
 * Raft; until then they are refused with 409 and a message, which etcd's clients (etcdctl,
 * quorumctl) show as it is (any 5xx would read as "member has no leader"). */
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/routes.h"
#include "daemon/store_i.h"

static void gen_urls(yajl_gen g, const config_urls *u) {
  yajl_gen_array_open(g);
  for (size_t i = 0; i < u->n; i++) proto_v2_gen_cstr(g, u->url[i]);
  yajl_gen_array_close(g);
}

static void gen_self(server *s, yajl_gen g) {
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "id");
  proto_v2_gen_cstr(g, s->id_hex);
  proto_v2_gen_cstr(g, "name");
  proto_v2_gen_cstr(g, s->cfg->name);
  proto_v2_gen_cstr(g, "peerURLs");
  gen_urls(g, &s->cfg->advertise_peer);
  proto_v2_gen_cstr(g, "clientURLs");
  gen_urls(g, &s->cfg->advertise_client);
  yajl_gen_map_close(g);
}

static void message(server *s, http_req *r, int status, const char *msg) {
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "message");
  proto_v2_gen_cstr(g, msg);
  yajl_gen_map_close(g);
  routes_json_gen(s, r, status, g, 1);
}

void members_handle(server *s, http_req *r, const char *rest, size_t n) {
  int get = r->method == HTTP_GET || r->method == HTTP_HEAD;
  if (r->method != HTTP_GET && r->method != HTTP_HEAD && r->method != HTTP_POST &&
      r->method != HTTP_PUT && r->method != HTTP_DELETE) {
    routes_text(r, 405, "GET, HEAD, POST, PUT, DELETE", "Method Not Allowed\n");
    return;
  }
  static const char no_raft[] = "membership changes need Raft, which this build of quorumd lacks";
  yajl_gen g;
  if (n == 0 || (n == 1 && rest[0] == '/')) {
    if (!get) {
      message(s, r, r->method == HTTP_POST ? 409 : 405, no_raft);
      return;
    }
    g = proto_v2_gen_new();
    yajl_gen_map_open(g);
    proto_v2_gen_cstr(g, "members");
    yajl_gen_array_open(g);
    gen_self(s, g);
    yajl_gen_array_close(g);
    yajl_gen_map_close(g);
    routes_json_gen(s, r, 200, g, 1);
    return;
  }
  rest++, n--;
  int leader = n == 6 && !memcmp(rest, "leader", 6);
  int self = leader || (n == 16 && !memcmp(rest, s->id_hex, 16));
  if (get && leader) {
    g = proto_v2_gen_new();
    gen_self(s, g);
    routes_json_gen(s, r, 200, g, 1);
  } else if (get) {
    message(s, r, 404, "Not found");
  } else if (!self) { /* PUT / DELETE of an id that is not a member: etcd's words */
    char msg[96];
    snprintf(msg, sizeof msg, "No such member: %.*s", (int)(n < 32 ? n : 32), rest);
    message(s, r, 404, msg);
  } else {
    message(s, r, 409, no_raft);
  }
}

void members_handle_machines(server *s, http_req *r) {
  sbuf b = {0};
  const config_urls *u = &s->cfg->advertise_client;
  for (size_t i = 0; i < u->n; i++) {
    if (i) sbuf_put(&b, ", ", 2);
    sbuf_put(&b, u->url[i], strlen(u->url[i]));
  }
  http_respond(r, 200, NULL, "text/plain; charset=utf-8", b.p ? b.p : "", b.len);
  sbuf_free(&b);
}
