/* join_check: what etcd does before a member first starts with --initial-cluster-state
 * existing: it reads the running cluster from the other members' peer URLs (GET /members) and
 * checks that --initial-cluster lists the same members, by their peer URLs. A cluster that no
 * member answers for, or that does not match (the member was not added with `member add`, or
 * the flags name other URLs), is refused at start with etcd's messages, instead of a member
 * that waits for a leader that will never call. */
#include "daemon/join_check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_tree.h>

#include "daemon/bootstrap_check.h"
#include "proto/v2_client.h"

#define URLS_MAX 2048
#define JOIN_MAX 16 /* members read from an answer (a cluster has at most 7) */

typedef struct peer {
  char id[24]; /* hex, as etcd prints ids */
  uint64_t idv;
  size_t at;   /* local: its index in --initial-cluster */
  char name[NODE_NAME_MAX];
  char urls[URLS_MAX]; /* sorted, comma-separated */
} peer;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* CSV's URLs sorted, comma-joined into out. */
static void sort_csv(const char *csv, char *out, size_t cap) {
  char tmp[URLS_MAX], *v[64];
  size_t n = 0;
  snprintf(tmp, sizeof tmp, "%s", csv);
  for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t && n < 64; t = strtok_r(NULL, ",", &save))
    v[n++] = t;
  qsort(v, n, sizeof *v, cmp_str);
  size_t o = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && o < cap; i++)
    o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? "," : "", v[i]);
}

static int cmp_peer(const void *a, const void *b) {
  return strcmp(((const peer *)a)->urls, ((const peer *)b)->urls);
}

/* The members in a GET /members answer (etcd's []membership.Member); -1 when it is not one. */
static int parse_members(const char *body, peer *out, size_t cap, size_t *n) {
  char ebuf[128];
  yajl_val t = yajl_tree_parse(body, ebuf, sizeof ebuf);
  *n = 0;
  if (!YAJL_IS_ARRAY(t)) {
    yajl_tree_free(t);
    return -1;
  }
  for (size_t i = 0; i < t->u.array.len && *n < cap; i++) {
    yajl_val m = t->u.array.values[i];
    const char *name_path[] = {"name", NULL}, *urls_path[] = {"peerURLs", NULL};
    const char *id_path[] = {"id", NULL};
    yajl_val name = yajl_tree_get(m, name_path, yajl_t_string);
    yajl_val id = yajl_tree_get(m, id_path, yajl_t_number);
    yajl_val urls = yajl_tree_get(m, urls_path, yajl_t_array);
    peer *p = &out[(*n)++];
    memset(p, 0, sizeof *p);
    if (name) snprintf(p->name, sizeof p->name, "%s", YAJL_GET_STRING(name));
    if (id && YAJL_GET_NUMBER(id)) {
      p->idv = strtoull(YAJL_GET_NUMBER(id), NULL, 10);
      snprintf(p->id, sizeof p->id, "%llx", (unsigned long long)p->idv);
    }
    char csv[URLS_MAX] = "";
    size_t o = 0;
    for (size_t k = 0; urls && k < urls->u.array.len && o < sizeof csv; k++)
      if (YAJL_IS_STRING(urls->u.array.values[k]))
        o += (size_t)snprintf(csv + o, sizeof csv - o, "%s%s", o ? "," : "",
                              YAJL_GET_STRING(urls->u.array.values[k]));
    sort_csv(csv, p->urls, sizeof p->urls);
  }
  yajl_tree_free(t);
  return 0;
}

/* "name=url,url name2=url" for a message. */
static void describe(const peer *v, size_t n, char *out, size_t cap) {
  size_t o = 0;
  out[0] = 0;
  for (size_t i = 0; i < n && o < cap; i++)
    o += (size_t)snprintf(out + o, cap - o, "%s%s=%s", i ? " " : "", v[i].name[0] ? v[i].name : "(unstarted)",
                          v[i].urls);
}

int join_check(const config *cfg, node_member *initial, size_t n, const node_member *self,
               char *err, size_t errlen) {
  /* getRemotePeerURLs: every other member's peer URLs, sorted */
  char *eps[JOIN_MAX * 4];
  char pool[JOIN_MAX * 4][512];
  size_t ne = 0;
  for (size_t i = 0; i < n; i++) {
    if (&initial[i] == self) continue;
    char tmp[NODE_URLS_MAX];
    snprintf(tmp, sizeof tmp, "%s", initial[i].peer_urls);
    for (char *save = NULL, *t = strtok_r(tmp, ",", &save); t && ne < JOIN_MAX * 4;
         t = strtok_r(NULL, ",", &save)) {
      snprintf(pool[ne], sizeof pool[ne], "%s", t);
      eps[ne] = pool[ne];
      ne++;
    }
  }
  qsort(eps, ne, sizeof *eps, cmp_str);
  /* etcd takes the first answer. A member still catching up answers from its old list, without
   * this member's addition (or with a member removed since): the first answer that lists this
   * member's peer URLs has applied the addition and everything before it, and is taken instead;
   * when none does, the first (etcd's, and its errors). */
  peer remote[JOIN_MAX], cand[JOIN_MAX];
  size_t nr = 0, nc = 0;
  int got = 0, fresh = 0;
  char mine[URLS_MAX];
  sort_csv(self->peer_urls, mine, sizeof mine);
  /* (--peer-auto-tls: the members' certificates are self-signed; etcd's client does not verify
   * them, nor does this one) */
  proto_v2_client_opts o = {.endpoints = (const char *const *)eps, .n_endpoints = ne,
                            .cert_file = cfg->peer_cert_file, .key_file = cfg->peer_key_file,
                            .ca_file = cfg->peer_trusted_ca_file, .request_timeout_ms = 2000,
                            .dial_timeout_ms = 1000, .insecure = cfg->peer_auto_tls};
  proto_v2_client *c = ne ? proto_v2_client_new(&o) : NULL;
  for (size_t i = 0; c && i < ne && !fresh; i++) {
    char url[600];
    snprintf(url, sizeof url, "%s/members", eps[i]);
    proto_v2_resp r;
    proto_v2_errors e;
    if (proto_v2_get_url(c, url, &r, &e) != 0) continue;
    int ok = r.status == 200 && parse_members(r.body, cand, sizeof cand / sizeof *cand, &nc) == 0;
    proto_v2_resp_free(&r);
    if (!ok) continue;
    for (size_t k = 0; k < nc && !fresh; k++) fresh = strcmp(cand[k].urls, mine) == 0;
    if (!got || fresh) {
      memcpy(remote, cand, nc * sizeof *cand);
      nr = nc;
      got = 1;
    }
  }
  proto_v2_client_free(c);
  if (!got) {
    snprintf(err, errlen,
             "cannot fetch cluster info from peer urls: could not retrieve cluster information "
             "from the given URLs");
    return -EINVAL;
  }
  /* ValidateClusterAndAssignIDs: the same count, and the same URLs member by member */
  peer local[JOIN_MAX];
  size_t nl = n < JOIN_MAX ? n : JOIN_MAX;
  for (size_t i = 0; i < nl; i++) {
    snprintf(local[i].name, sizeof local[i].name, "%s", initial[i].name);
    sort_csv(initial[i].peer_urls, local[i].urls, sizeof local[i].urls);
    local[i].at = i;
  }
  char have[4096];
  describe(remote, nr, have, sizeof have);
  if (nr != nl) {
    if (snprintf(err, errlen, "error validating peerURLs {Members:[%s]}: member count is unequal",
                 have) < 0)
      err[0] = 0;
    return -EINVAL;
  }
  qsort(remote, nr, sizeof *remote, cmp_peer);
  qsort(local, nl, sizeof *local, cmp_peer);
  /* each member of the cluster must have its URLs in --initial-cluster */
  for (size_t i = 0; i < nr; i++) {
    char why[1024] = "";
    int found = 0;
    for (size_t k = 0; k < nl && !found; k++)
      if ((found = bootstrap_urls_equal(remote[i].urls, local[k].urls, why, sizeof why)) &&
          remote[i].idv)
        initial[local[k].at].id = remote[i].idv; /* the id the cluster knows it by */
    if (!found) {
      char urls[URLS_MAX];
      snprintf(urls, sizeof urls, "%s", remote[i].urls);
      for (char *q = urls; *q; q++)
        if (*q == ',') *q = ' ';
      if (snprintf(err, errlen,
                   "error validating peerURLs {Members:[%s]}: PeerURLs: no match found for existing "
                   "member (%s, [%s]), last resolver error (%s)",
                   have, remote[i].id, urls, why) < 0)
        err[0] = 0;
      return -EINVAL;
    }
  }
  return 0;
}
