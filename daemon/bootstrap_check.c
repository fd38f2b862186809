/* bootstrap_check: what etcd checks of --initial-cluster before a new member first starts,
 * with its messages: every URL well formed, no URL given to two members, and (for a new
 * cluster) this member's URLs there the same set as --initial-advertise-peer-urls, host names
 * other than "localhost" compared by their first address (netutil.URLStringsEqual). */
#include "daemon/bootstrap_check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "daemon/members_request.h"

#define URL_MAX 512

typedef struct url_list {
  char (*v)[URL_MAX];
  size_t n;
} url_list;

static int cmp_url(const void *a, const void *b) { return strcmp(a, b); }

/* The comma-separated URLs of CSV, normalised and sorted; 0, or -EINVAL with etcd's message
 * (prefixed as etcd prefixes a bad --initial-cluster). */
static int split(const char *csv, url_list *out, const char *prefix, char *err, size_t errlen) {
  size_t cap = 1;
  for (const char *p = csv; *p; p++) cap += *p == ',';
  out->v = calloc(cap, sizeof *out->v);
  out->n = 0;
  if (!out->v) return -ENOMEM;
  for (const char *p = csv; *p;) {
    size_t len = strcspn(p, ",");
    char one[URL_MAX], msg[URL_MAX + 128];
    snprintf(one, sizeof one, "%.*s", (int)len, p);
    if (members_check_url(one, out->v[out->n], URL_MAX, msg, sizeof msg) != 0) {
      snprintf(err, errlen, "%s%s", prefix, msg);
      return -EINVAL;
    }
    out->n++;
    p += len;
    if (*p == ',') p++;
  }
  qsort(out->v, out->n, sizeof *out->v, cmp_url);
  return 0;
}

/* U with its host replaced by its first address (IPv4 first, as Go's resolver answers), unless
 * it is "localhost" or an address already (etcd leaves those as they are). */
static void resolve(const char *u, char *out, size_t cap) {
  snprintf(out, cap, "%s", u);
  const char *h = strstr(u, "://");
  if (!h) return;
  h += 3;
  const char *colon = strrchr(h, ':');
  if (!colon || h[0] == '[') return;
  char host[256];
  snprintf(host, sizeof host, "%.*s", (int)(colon - h), h);
  unsigned char buf[sizeof(struct in6_addr)];
  if (!strcmp(host, "localhost") || inet_pton(AF_INET, host, buf) == 1) return;
  struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *ai = NULL;
  if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai) {
    hints.ai_family = AF_UNSPEC;
    if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai) return;
  }
  char addr[INET6_ADDRSTRLEN] = "";
  int v6 = ai->ai_family == AF_INET6;
  if (!v6)
    inet_ntop(AF_INET, &((struct sockaddr_in *)ai->ai_addr)->sin_addr, addr, sizeof addr);
  else
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr, addr, sizeof addr);
  freeaddrinfo(ai);
  snprintf(out, cap, "%.*s%s%s%s%s", (int)(h - u), u, v6 ? "[" : "", addr, v6 ? "]" : "", colon);
}

static int contains(const url_list *l, const char *u) {
  for (size_t i = 0; i < l->n; i++)
    if (!strcmp(l->v[i], u)) return 1;
  return 0;
}

/* Go's %q of a []string: ["a" "b"]. */
static void quote_list(const url_list *l, char *out, size_t cap) {
  size_t o = (size_t)snprintf(out, cap, "[");
  for (size_t i = 0; i < l->n && o < cap; i++)
    o += (size_t)snprintf(out + o, cap - o, "%s\"%s\"", i ? " " : "", l->v[i]);
  if (o < cap) snprintf(out + o, cap - o, "]");
}

/* netutil.URLStringsEqual of the two sorted lists: 1, or 0 with its reason in why. */
static int urls_equal(const url_list *a, const url_list *b, char *why, size_t cap) {
  if (a->n != b->n) {
    char qa[2048], qb[2048];
    quote_list(a, qa, sizeof qa);
    quote_list(b, qb, sizeof qb);
    if (snprintf(why, cap, "len(%s) != len(%s)", qa, qb) < 0) why[0] = 0;
    return 0;
  }
  url_list ra = {calloc(a->n ? a->n : 1, sizeof *ra.v), a->n};
  url_list rb = {calloc(b->n ? b->n : 1, sizeof *rb.v), b->n};
  int same = ra.v && rb.v;
  for (size_t i = 0; same && i < a->n; i++) {
    resolve(a->v[i], ra.v[i], URL_MAX);
    resolve(b->v[i], rb.v[i], URL_MAX);
  }
  if (same) {
    qsort(ra.v, ra.n, sizeof *ra.v, cmp_url);
    qsort(rb.v, rb.n, sizeof *rb.v, cmp_url);
    for (size_t i = 0; same && i < a->n; i++)
      if (strcmp(ra.v[i], rb.v[i])) {
        snprintf(why, cap, "resolved urls: \"%s\" != \"%s\"", ra.v[i], rb.v[i]);
        same = 0;
      }
  }
  free(ra.v);
  free(rb.v);
  return same;
}

static void join(const url_list *l, const char *each_prefix, char *out, size_t cap) {
  size_t o = 0;
  out[0] = 0;
  for (size_t i = 0; i < l->n && o < cap; i++)
    o += (size_t)snprintf(out + o, cap - o, "%s%s%s", i ? "," : "", each_prefix, l->v[i]);
}

int bootstrap_urls_equal(const char *a_csv, const char *b_csv, char *why, size_t cap) {
  url_list a = {0}, b = {0};
  char err[URL_MAX + 160];
  int rc = split(a_csv, &a, "", err, sizeof err) || split(b_csv, &b, "", err, sizeof err);
  int same = 0;
  if (rc) snprintf(why, cap, "%s", err);
  else same = urls_equal(&a, &b, why, cap);
  free(a.v);
  free(b.v);
  return same;
}

int bootstrap_check(const char *initial_cluster, const node_member *members, size_t n,
                    const node_member *self, const config_urls *advertise, int new_cluster,
                    char *err, size_t errlen) {
  url_list all = {0}, mine = {0}, ap = {0};
  int rc = 0;
  /* every URL of every member well formed, and none twice */
  for (size_t i = 0; i < n; i++) {
    url_list l;
    if ((rc = split(members[i].peer_urls, &l, "error setting up initial cluster: ", err, errlen))) {
      free(l.v);
      goto out;
    }
    char (*v)[URL_MAX] = realloc(all.v, (all.n + l.n + 1) * sizeof *v);
    if (!v) {
      free(l.v);
      rc = -ENOMEM;
      goto out;
    }
    all.v = v;
    for (size_t k = 0; k < l.n; k++) {
      if (contains(&all, l.v[k])) {
        snprintf(err, errlen, "initial cluster %s has duplicate url", initial_cluster);
        free(l.v);
        rc = -EINVAL;
        goto out;
      }
      memcpy(all.v[all.n++], l.v[k], URL_MAX);
    }
    free(l.v);
  }
  if (!new_cluster) goto out;
  /* advertiseMatchesCluster */
  char alist[4096];
  size_t o = 0;
  alist[0] = 0;
  for (size_t i = 0; i < advertise->n && o < sizeof alist; i++)
    o += (size_t)snprintf(alist + o, sizeof alist - o, "%s%s", i ? "," : "", advertise->url[i]);
  if ((rc = split(self->peer_urls, &mine, "error setting up initial cluster: ", err, errlen)) ||
      (rc = split(alist, &ap, "", err, errlen)))
    goto out;
  char why[4096];
  if (urls_equal(&ap, &mine, why, sizeof why)) goto out;
  url_list missing = {calloc(mine.n + ap.n + 1, sizeof *missing.v), 0};
  if (!missing.v) {
    rc = -ENOMEM;
    goto out;
  }
  char prefix[NODE_NAME_MAX + 2], ms[4096], as[4096];
  snprintf(prefix, sizeof prefix, "%s=", self->name);
  for (size_t i = 0; i < mine.n; i++)
    if (!contains(&ap, mine.v[i])) memcpy(missing.v[missing.n++], mine.v[i], URL_MAX);
  join(&ap, "", as, sizeof as);
  if (missing.n) {
    join(&missing, prefix, ms, sizeof ms);
    snprintf(err, errlen,
             "--initial-cluster has %s but missing from --initial-advertise-peer-urls=%s (%s)", ms,
             as, why);
  } else {
    for (size_t i = 0; i < ap.n; i++)
      if (!contains(&mine, ap.v[i])) memcpy(missing.v[missing.n++], ap.v[i], URL_MAX);
    join(&missing, "", ms, sizeof ms);
    char self_map[4096];
    join(&ap, prefix, self_map, sizeof self_map);
    if (missing.n)
      snprintf(err, errlen, "--initial-advertise-peer-urls has %s but missing from --initial-cluster=%s",
               ms, self_map);
    else
      snprintf(err, errlen, "failed to resolve %s to match --initial-cluster=%s (%s)", as, self_map,
               why);
  }
  free(missing.v);
  rc = -EINVAL;
out:
  free(all.v);
  free(mine.v);
  free(ap.v);
  return rc;
}
