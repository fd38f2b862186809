/* discovery: etcd's v2 discovery protocol, as etcd 3.4 runs it (see the header): read the
 * size from <dir>/_config/size, register self as <dir>/<id> (create only) with the value
 * "name=peerURL,...", then list the directory and watch it until `size` members are there;
 * the first `size` by creation index are the cluster, and a member that is not among them
 * is told the cluster is full. */
#include "daemon/discovery.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/v2_client.h"

#define BACKOFF_MAX_SHIFT 4 /* 1, 2, 4, 8, then 16 s between tries */

typedef struct found {
  char *name;  /* the key's last component (the member id) */
  char *value; /* "name=url,..." */
  uint64_t created;
} found;

typedef struct disc {
  proto_v2_client *c;
  char *dir;     /* the directory's URL path, without a trailing '/' */
  char self[17]; /* the member id in hex: the key's name */
  unsigned retries;
  found *v;
  size_t n, cap;
  uint64_t size, index;
  bool full;     /* size members are there, and this one is not among them */
  char *err;
  size_t errlen;
} disc;

static void found_clear(disc *d) {
  for (size_t i = 0; i < d->n; i++) {
    free(d->v[i].name);
    free(d->v[i].value);
  }
  d->n = 0;
}

static const char *base_name(const char *key) {
  const char *s = strrchr(key, '/');
  return s ? s + 1 : key;
}

static int found_add(disc *d, const proto_v2_knode *k) {
  if (d->n == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 8;
    found *v = realloc(d->v, cap * sizeof *v);
    if (!v) return -ENOMEM;
    d->v = v;
    d->cap = cap;
  }
  found *f = &d->v[d->n];
  f->name = strdup(base_name(k->key ? k->key : ""));
  f->value = strdup(k->value ? k->value : "");
  f->created = k->created_index;
  if (!f->name || !f->value) {
    free(f->name);
    free(f->value);
    return -ENOMEM;
  }
  d->n++;
  return 0;
}

static int by_created(const void *a, const void *b) {
  const found *x = a, *y = b;
  return x->created < y->created ? -1 : x->created > y->created;
}

/* Waits before the next try while the service cannot be reached. */
static void backoff(disc *d, const char *step, const proto_v2_errors *e) {
  unsigned shift = d->retries < BACKOFF_MAX_SHIFT ? d->retries : BACKOFF_MAX_SHIFT;
  d->retries++;
  char *why = proto_v2_errors_detail(e);
  fprintf(stderr, "quorumd: discovery: %s failed (%s), retrying in %u s\n", step,
          why && *why ? why : "no answer", 1u << shift);
  free(why);
  sleep(1u << shift);
}

/* An answer that is not the one wanted: the service's v2 error, or its status. */
static int answer_error(disc *d, const proto_v2_resp *r, const char *what) {
  proto_v2_error e = {0};
  if (!proto_v2_parse_error(r->body ? r->body : "", &e) && e.code) {
    snprintf(d->err, d->errlen, "discovery: %s: %d: %s (%s)", what, e.code,
             e.message ? e.message : "", e.cause ? e.cause : "");
  } else {
    snprintf(d->err, d->errlen, "discovery: bad discovery endpoint (%s: HTTP %ld)", what, r->status);
  }
  proto_v2_error_free(&e);
  return -EPROTO;
}

/* GET path into *ev, retrying while the service cannot be reached. Returns 0, 1 when the
 * answer was not a 200 event (*r kept for the caller), or a negative errno. */
static int get_event(disc *d, const char *path, int wait, const char *what, proto_v2_event *ev,
                     proto_v2_resp *r) {
  for (;;) {
    proto_v2_errors e = {0};
    *r = (proto_v2_resp){0};
    if (proto_v2_do(d->c, "GET", path, NULL, NULL, wait, r, &e)) {
      if (e.kind == PROTO_V2_NOMEM) return -ENOMEM;
      backoff(d, what, &e);
      continue;
    }
    if (r->status == 200 && !proto_v2_parse_event(r->body ? r->body : "", ev)) return 0;
    return 1;
  }
}

static char *dir_path(const disc *d, const char *sub, const char *query) {
  size_t n = strlen(d->dir) + strlen(sub) + (query ? strlen(query) : 0) + 3;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s%s%s", d->dir, sub, query ? "?" : "", query ? query : "");
  return p;
}

/* etcd's checkCluster: the size and the members registered so far (sorted by creation),
 * and the index to watch after. */
static int check_cluster(disc *d) {
  char *path = dir_path(d, "_config/size", NULL);
  if (!path) return -ENOMEM;
  proto_v2_event ev = {0};
  proto_v2_resp r;
  int rc = get_event(d, path, 0, "reading the cluster size", &ev, &r);
  free(path);
  if (rc < 0) return rc;
  if (rc == 1) {
    proto_v2_error e = {0};
    bool missing = r.status == 404 && !proto_v2_parse_error(r.body ? r.body : "", &e) && e.code == 100;
    proto_v2_error_free(&e);
    if (missing) snprintf(d->err, d->errlen, "discovery: size key not found");
    else answer_error(d, &r, "reading the cluster size");
    proto_v2_resp_free(&r);
    return missing ? -ENOENT : -EPROTO;
  }
  proto_v2_resp_free(&r);
  const char *sv = ev.node && ev.node->value ? ev.node->value : "";
  char *end = NULL;
  errno = 0;
  unsigned long long size = strtoull(sv, &end, 10);
  bool bad = !*sv || *end || errno || *sv == '-' || *sv == '+' || size == 0;
  proto_v2_event_free(&ev);
  if (bad) {
    snprintf(d->err, d->errlen, "discovery: size key is bad");
    return -EINVAL;
  }
  d->size = size;

  path = dir_path(d, "", NULL);
  if (!path) return -ENOMEM;
  path[strlen(path) - 1] = 0; /* the directory itself, without the '/' */
  ev = (proto_v2_event){0};
  rc = get_event(d, path, 0, "listing the members", &ev, &r);
  free(path);
  if (rc < 0) return rc;
  if (rc == 1) {
    rc = answer_error(d, &r, "listing the members");
    proto_v2_resp_free(&r);
    return rc;
  }
  d->index = r.etcd_index;
  proto_v2_resp_free(&r);
  found_clear(d);
  rc = 0;
  for (size_t i = 0; ev.node && i < ev.node->n_nodes && !rc; i++)
    if (strcmp(base_name(ev.node->nodes[i].key ? ev.node->nodes[i].key : ""), "_config"))
      rc = found_add(d, &ev.node->nodes[i]);
  proto_v2_event_free(&ev);
  if (rc) return rc;
  if (d->n > 1) qsort(d->v, d->n, sizeof *d->v, by_created);
  for (size_t i = 0; i < d->n; i++) {
    if (!strcmp(d->v[i].name, d->self)) break;
    if (i + 1 >= d->size) {
      snprintf(d->err, d->errlen, "discovery: cluster is full");
      d->full = true;
      return -EEXIST;
    }
  }
  return 0;
}

/* Registers self (create only), then waits until the service shows it. */
static int create_self(disc *d, const char *config) {
  char *path = dir_path(d, d->self, "prevExist=false");
  proto_v2_buf body = {0};
  proto_v2_add_param(&body, "value", config);
  if (!path || body.oom) {
    free(path);
    proto_v2_buf_free(&body);
    return -ENOMEM;
  }
  proto_v2_resp r = {0};
  proto_v2_errors e = {0};
  int rc = proto_v2_do(d->c, "PUT", path, "application/x-www-form-urlencoded", body.s, 0, &r, &e);
  free(path);
  proto_v2_buf_free(&body);
  if (rc) {
    char *why = proto_v2_errors_text(&e);
    snprintf(d->err, d->errlen, "discovery: cannot register: %s", why ? why : "no answer");
    free(why);
    return -EIO;
  }
  proto_v2_event ev = {0};
  if (r.status != 201 || proto_v2_parse_event(r.body ? r.body : "", &ev) || !ev.node) {
    proto_v2_error er = {0};
    bool dup = !proto_v2_parse_error(r.body ? r.body : "", &er) && er.code == 105;
    proto_v2_error_free(&er);
    if (dup)
      snprintf(d->err, d->errlen,
               "discovery: found duplicate id: member %s registered with this discovery "
               "directory before, but its data dir holds no member: if that bootstrap failed, "
               "use a new discovery directory", d->self);
    else answer_error(d, &r, "registering");
    proto_v2_resp_free(&r);
    proto_v2_event_free(&ev);
    return dup ? -EEXIST : -EPROTO;
  }
  proto_v2_resp_free(&r);
  char q[64];
  snprintf(q, sizeof q, "wait=true&waitIndex=%" PRIu64, ev.node->created_index);
  proto_v2_event_free(&ev);
  if (!(path = dir_path(d, d->self, q))) return -ENOMEM;
  ev = (proto_v2_event){0};
  rc = get_event(d, path, 1, "seeing self registered", &ev, &r);
  free(path);
  if (rc == 1) {
    rc = answer_error(d, &r, "seeing self registered");
    proto_v2_resp_free(&r);
    return rc;
  }
  proto_v2_resp_free(&r);
  proto_v2_event_free(&ev);
  return rc;
}

/* The members found so far, the first `size` of them, logged. */
static void keep_first(disc *d) {
  for (size_t i = d->size; i < d->n; i++) {
    free(d->v[i].name);
    free(d->v[i].value);
  }
  if (d->n > d->size) d->n = d->size;
  for (size_t i = 0; i < d->n; i++)
    fprintf(stderr, "quorumd: discovery: found %s %s\n", strcmp(d->v[i].name, d->self) ? "peer" : "self",
            d->v[i].name);
}

/* etcd's waitNodes: watches the directory until `size` members are registered. A watch
 * refused (401: the history moved past the index) lists the directory again. */
static int wait_nodes(disc *d) {
  keep_first(d);
  uint64_t next = d->index + 1;
  while (d->n < d->size) {
    fprintf(stderr, "quorumd: discovery: found %zu of %" PRIu64 " members; waiting for more\n", d->n,
            d->size);
    char q[96];
    snprintf(q, sizeof q, "wait=true&recursive=true&waitIndex=%" PRIu64, next);
    char *path = dir_path(d, "", q);
    if (!path) return -ENOMEM;
    char *slash = strstr(path, "/?");
    if (slash) memmove(slash, slash + 1, strlen(slash)); /* the directory without its '/' */
    proto_v2_event ev = {0};
    proto_v2_resp r;
    int rc = get_event(d, path, 1, "waiting for members", &ev, &r);
    free(path);
    if (rc < 0) return rc;
    if (rc == 1) {
      fprintf(stderr, "quorumd: discovery: the watch was answered HTTP %ld; listing again\n", r.status);
      proto_v2_resp_free(&r);
      sleep(1);
      if ((rc = check_cluster(d))) return rc;
      keep_first(d);
      next = d->index + 1;
      continue;
    }
    proto_v2_resp_free(&r);
    const proto_v2_knode *k = ev.node;
    if (k) next = k->modified_index + 1;
    bool member = k && ev.action && strstr(k->key ? k->key : "", "/_config") == NULL &&
                  (!strcmp(ev.action, "create") || !strcmp(ev.action, "set"));
    if (member) {
      rc = found_add(d, k);
      if (!rc) fprintf(stderr, "quorumd: discovery: found peer %s\n", d->v[d->n - 1].name);
    }
    proto_v2_event_free(&ev);
    if (rc) return rc;
  }
  fprintf(stderr, "quorumd: discovery: found all %" PRIu64 " members\n", d->size);
  return 0;
}

/* The registered values joined: the --initial-cluster of the new cluster. */
static int to_cluster(disc *d, char **out) {
  size_t n = 1;
  for (size_t i = 0; i < d->n; i++) n += strlen(d->v[i].value) + 1;
  char *s = malloc(n);
  if (!s) return -ENOMEM;
  s[0] = 0;
  for (size_t i = 0; i < d->n; i++) {
    if (i) strcat(s, ",");
    strcat(s, d->v[i].value);
  }
  /* Every entry name=url, and exactly `size` names. */
  size_t names = 0;
  char *copy = strdup(s);
  if (!copy) {
    free(s);
    return -ENOMEM;
  }
  char *seen[64];
  int rc = 0;
  for (char *save = NULL, *e = strtok_r(copy, ",", &save); e && !rc; e = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(e, '=');
    if (!eq || eq == e || !eq[1] || (strncmp(eq + 1, "http://", 7) && strncmp(eq + 1, "https://", 8))) {
      snprintf(d->err, d->errlen, "discovery: invalid URL (%s)", e);
      rc = -EINVAL;
      break;
    }
    *eq = 0;
    bool known = false;
    for (size_t i = 0; i < names; i++) known = known || !strcmp(seen[i], e);
    if (!known) {
      if (names == sizeof seen / sizeof *seen) break;
      seen[names++] = e;
    }
  }
  if (!rc && names != d->size) {
    snprintf(d->err, d->errlen, "discovery: found duplicate name (%s)", s);
    rc = -EINVAL;
  }
  free(copy);
  if (rc) {
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int discovery_join(const char *durl, const char *proxy, uint64_t id, const char *config,
                   char **initial_cluster, char *err, size_t errlen) {
  disc d = {.err = err, .errlen = errlen};
  snprintf(d.self, sizeof d.self, "%" PRIx64, id); /* (as etcd's types.ID.String) */
  const char *sep = strstr(durl, "://");
  const char *path = sep ? strchr(sep + 3, '/') : NULL;
  if (!sep || (strncmp(durl, "http://", 7) && strncmp(durl, "https://", 8)) || !path ||
      path == sep + 3) {
    snprintf(err, errlen, "discovery: invalid URL %s (want http(s)://host:port/v2/keys/<dir>)", durl);
    return -EINVAL;
  }
  char *endpoint = strndup(durl, (size_t)(path - durl));
  d.dir = strdup(path);
  if (!endpoint || !d.dir) {
    free(endpoint);
    free(d.dir);
    return -ENOMEM;
  }
  size_t dl = strlen(d.dir);
  while (dl > 1 && d.dir[dl - 1] == '/') d.dir[--dl] = 0;
  const char *eps[] = {endpoint};
  proto_v2_client_opts o = {.endpoints = eps, .n_endpoints = 1, .request_timeout_ms = 5000,
                            .dial_timeout_ms = 5000, .proxy = proxy};
  d.c = proto_v2_client_new(&o);
  int rc = d.c ? 0 : -ENOMEM;
  fprintf(stderr, "quorumd: discovery: joining through %s as %s\n", durl, d.self);
  /* As etcd: a full cluster is refused before registering; then register, list and wait. */
  if (!rc) rc = check_cluster(&d);
  if (!rc) rc = create_self(&d, config);
  if (!rc) rc = check_cluster(&d);
  if (!rc) rc = wait_nodes(&d);
  if (!rc) rc = to_cluster(&d, initial_cluster);
  if (!rc) fprintf(stderr, "quorumd: discovery: the cluster is %s\n", *initial_cluster);
  if (rc == -EEXIST && d.full && to_cluster(&d, initial_cluster) == 0) rc = -EUSERS;
  found_clear(&d);
  free(d.v);
  proto_v2_client_free(d.c);
  free(d.dir);
  free(endpoint);
  return rc;
}
