/* discovery_srv: etcd's DNS bootstrap (--discovery-srv DOMAIN): the first members are the SRV
 * records of _etcd-server-ssl[-NAME]._tcp.DOMAIN (https peer URLs) and
 * _etcd-server[-NAME]._tcp.DOMAIN (http). A record whose target and port resolve to one of
 * this member's advertised peer URLs is this member (its --name); the others are named
 * "0", "1", ... until they publish their names, as etcd names them. */
#include "daemon/discovery.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/store_codec.h"

/* "ip:port" of host:port (IPv4 first, as Go's resolver answers a dual-stack name). */
static bool resolve(const char *host, const char *port, char *out, size_t n) {
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
  if (getaddrinfo(host, port, &hints, &res) || !res) return false;
  const struct addrinfo *pick = res;
  for (const struct addrinfo *a = res; a; a = a->ai_next)
    if (a->ai_family == AF_INET) {
      pick = a;
      break;
    }
  char ip[INET6_ADDRSTRLEN] = "";
  if (pick->ai_family == AF_INET)
    inet_ntop(AF_INET, &((struct sockaddr_in *)pick->ai_addr)->sin_addr, ip, sizeof ip);
  else
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr, ip, sizeof ip);
  freeaddrinfo(res);
  snprintf(out, n, "%s:%s", ip, port);
  return true;
}

/* The host and port of an http(s) URL, into host/port. */
static bool url_host_port(const char *url, char *host, size_t hn, char *port, size_t pn) {
  const char *p = strstr(url, "://");
  if (!p) return false;
  p += 3;
  size_t len = strcspn(p, "/");
  const char *colon = NULL;
  if (*p == '[') { /* [v6]:port */
    const char *end = memchr(p, ']', len);
    if (!end) return false;
    snprintf(host, hn, "%.*s", (int)(end - p - 1), p + 1);
    colon = end + 1 < p + len && end[1] == ':' ? end + 1 : NULL;
  } else {
    colon = memchr(p, ':', len);
    snprintf(host, hn, "%.*s", (int)(colon ? (size_t)(colon - p) : len), p);
  }
  if (!colon) return false;
  snprintf(port, pn, "%.*s", (int)(len - (size_t)(colon + 1 - p)), colon + 1);
  return true;
}

/* The resolver: the system's, or (QUORUMD_TEST_DNS=ip:port, for tests) one server. */
static int resolver_init(res_state st) {
  if (res_ninit(st)) return -1;
  const char *t = getenv("QUORUMD_TEST_DNS");
  if (t && *t) {
    char ip[64];
    unsigned port = 53;
    if (sscanf(t, "%63[^:]:%u", ip, &port) < 1) return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) return -1;
    st->nsaddr_list[0] = sa;
    st->nscount = 1;
    st->options &= ~(unsigned long)RES_DNSRCH;
  }
  return 0;
}

typedef struct srv_ctx {
  const char *name;
  char self[16][128]; /* this member's advertised peer addresses, resolved */
  size_t n_self;
  int temp_name;
  bool found_self;
  sbuf out;
} srv_ctx;

/* Looks up one service's records and appends "name=scheme://target:port" for each. Returns
 * the number of records, or -1 when the lookup failed. */
static int lookup(res_state st, srv_ctx *c, const char *service, const char *scheme,
                  const char *domain, char *err, size_t errlen) {
  char q[512];
  snprintf(q, sizeof q, "_%s._tcp.%s", service, domain);
  unsigned char ans[8192];
  int n = res_nquery(st, q, ns_c_in, ns_t_srv, ans, sizeof ans);
  ns_msg m;
  if (n < 0 || ns_initparse(ans, n, &m)) {
    snprintf(err, errlen, "error querying DNS SRV records for _%.100s: lookup %.300s: no such host",
             service, q);
    return -1;
  }
  int count = 0;
  for (int i = 0; i < ns_msg_count(m, ns_s_an); i++) {
    ns_rr rr;
    if (ns_parserr(&m, ns_s_an, i, &rr) || ns_rr_type(rr) != ns_t_srv || ns_rr_rdlen(rr) < 7)
      continue;
    const unsigned char *rd = ns_rr_rdata(rr);
    unsigned port = (unsigned)rd[4] << 8 | rd[5];
    char target[NS_MAXDNAME];
    if (ns_name_uncompress(ns_msg_base(m), ns_msg_end(m), rd + 6, target, sizeof target) < 0)
      continue;
    size_t tl = strlen(target);
    if (tl && target[tl - 1] == '.') target[--tl] = 0; /* (a URL has no trailing dot) */
    char ps[8], addr[128];
    snprintf(ps, sizeof ps, "%u", port);
    if (!resolve(target, ps, addr, sizeof addr)) {
      fprintf(stderr, "quorumd: discovery: cannot resolve %s (SRV %s); left out\n", target, q);
      continue;
    }
    bool me = false;
    for (size_t k = 0; k < c->n_self && !me; k++) me = !strcmp(addr, c->self[k]);
    char name[32];
    if (me) c->found_self = true;
    else snprintf(name, sizeof name, "%d", c->temp_name++);
    if (c->out.len) sbuf_putc(&c->out, ',');
    sbuf_puts(&c->out, me ? c->name : name);
    sbuf_putc(&c->out, '=');
    sbuf_puts(&c->out, scheme);
    sbuf_puts(&c->out, "://");
    bool v6 = strchr(target, ':') != NULL;
    if (v6) sbuf_putc(&c->out, '[');
    sbuf_puts(&c->out, target);
    if (v6) sbuf_putc(&c->out, ']');
    sbuf_putc(&c->out, ':');
    sbuf_puts(&c->out, ps);
    fprintf(stderr, "quorumd: discovery: got bootstrap from DNS for %s at %s://%s:%s\n", service,
            scheme, target, ps);
    count++;
  }
  return count;
}

int discovery_srv(const char *domain, const char *service_name, const char *name,
                  const char *const *peer_urls, size_t n_peer, char **initial_cluster, char *err,
                  size_t errlen) {
  srv_ctx c = {.name = name};
  for (size_t i = 0; i < n_peer && c.n_self < 16; i++) {
    char host[256], port[16];
    if (url_host_port(peer_urls[i], host, sizeof host, port, sizeof port) &&
        resolve(host, port, c.self[c.n_self], sizeof c.self[0]))
      c.n_self++;
  }
  struct __res_state st;
  memset(&st, 0, sizeof st);
  if (resolver_init(&st)) {
    snprintf(err, errlen, "discovery: cannot start the DNS resolver");
    return -EIO;
  }
  char ssl[256], plain[256], e1[1024] = "", e2[1024] = "";
  const char *suffix = service_name && *service_name ? service_name : NULL;
  snprintf(ssl, sizeof ssl, "etcd-server-ssl%s%s", suffix ? "-" : "", suffix ? suffix : "");
  snprintf(plain, sizeof plain, "etcd-server%s%s", suffix ? "-" : "", suffix ? suffix : "");
  int a = lookup(&st, &c, ssl, "https", domain, e1, sizeof e1);
  int b = lookup(&st, &c, plain, "http", domain, e2, sizeof e2);
  res_nclose(&st);
  sbuf_putc(&c.out, 0);
  int rc = 0;
  if (a <= 0 && b <= 0) {
    snprintf(err, errlen, "discovery: no members in the DNS SRV records of %.200s (%.400s%s%.400s)", domain,
             e1, *e1 && *e2 ? "; " : "", e2);
    rc = -ENOENT;
  } else if (!c.found_self) {
    snprintf(err, errlen, "cannot find local etcd member \"%s\" in SRV records", name);
    rc = -ENOENT;
  }
  if (rc) {
    sbuf_free(&c.out);
    return rc;
  }
  *initial_cluster = c.out.p; /* (NUL-terminated above) */
  fprintf(stderr, "quorumd: discovery: the cluster is %s\n", *initial_cluster);
  return 0;
}
