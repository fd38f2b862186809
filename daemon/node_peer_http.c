/* node_peer_http: what the peer port answers over HTTP, as etcd's peer handler does for the
 * requests other programs make there: GET /members (the members as JSON, with the cluster id
 * in X-Etcd-Cluster-Id; etcd's v2 proxies read it to find the client URLs) and GET /version.
 * Everything else on that port is the Raft peer protocol. Raft thread. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/node_i.h"
#include "daemon/store_i.h"
#include "proto/v2_json.h"

/* etcd's membership.Member as JSON: the id a number, name and clientURLs left out while empty. */
static char *members_json(node *n, size_t *len) {
  node_member m[NODE_MAX_MEMBERS];
  pthread_mutex_lock(&n->mu);
  size_t k = n->n_members;
  memcpy(m, n->members, k * sizeof *m);
  pthread_mutex_unlock(&n->mu);
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_array_open(g);
  for (size_t i = 0; i < k; i++) {
    char id[24];
    int il = snprintf(id, sizeof id, "%" PRIu64, m[i].id);
    yajl_gen_map_open(g);
    proto_v2_gen_cstr(g, "id");
    yajl_gen_number(g, id, (size_t)il);
    proto_v2_gen_cstr(g, "peerURLs");
    proto_v2_gen_csv(g, m[i].peer_urls);
    if (m[i].name[0]) {
      proto_v2_gen_cstr(g, "name");
      proto_v2_gen_cstr(g, m[i].name);
    }
    if (m[i].client_urls[0]) {
      proto_v2_gen_cstr(g, "clientURLs");
      proto_v2_gen_csv(g, m[i].client_urls);
    }
    yajl_gen_map_close(g);
  }
  yajl_gen_array_close(g);
  char *body;
  store_gen_finish(g, &body, len);
  yajl_gen_free(g);
  return body;
}

static char *response(const char *headers, const char *body, size_t blen, size_t *len) {
  size_t cap = strlen(headers) + blen + 160;
  char *out = malloc(cap);
  if (!out) return NULL;
  int h = snprintf(out, cap,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n%sContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n",
                   headers, blen);
  memcpy(out + h, body, blen);
  *len = (size_t)h + blen;
  return out;
}

char *node_peer_http_get(void *arg, const char *path, size_t plen, size_t *len) {
  node *n = arg;
  size_t q = strcspn(path, "?");
  if (q < plen) plen = q;
  if (plen == 8 && !memcmp(path, "/members", 8)) {
    size_t blen;
    char *body = members_json(n, &blen);
    char hdr[64];
    snprintf(hdr, sizeof hdr, "X-Etcd-Cluster-Id: %" PRIx64 "\r\n", n->cfg.cluster_id);
    char *out = response(hdr, body, blen, len);
    free(body);
    return out;
  }
  if (plen == 8 && !memcmp(path, "/version", 8)) {
    static const char v[] = "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}";
    return response("", v, sizeof v - 1, len);
  }
  return NULL;
}
