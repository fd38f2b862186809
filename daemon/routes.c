/* routes: path table and mux behaviours; /version and /health. */
#include "daemon/routes.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/http_util.h"
#include "daemon/routes_ready.h"
#include "daemon/store_i.h"
#include "daemon/ui.h"
#include "daemon/v2_auth.h"
#include "daemon/v2_keys.h"

#define KEYS_PREFIX "/v2/keys"

/* As Go's http.Error writes it (etcd's 404s and 405s): the headers in Go's sorted order, with
 * X-Content-Type-Options; the 400 of a target Go's server cannot parse has none. */
void routes_text(http_req *r, int status, const char *allow, const char *text) {
  char hdr[192];
  snprintf(hdr, sizeof hdr, "%s%s%sContent-Type: text/plain; charset=utf-8\r\n%s", allow ? "Allow: " : "",
           allow ? allow : "", allow ? "\r\n" : "", status == 400 ? "" : "X-Content-Type-Options: nosniff\r\n");
  http_respond(r, status, hdr, NULL, text, strlen(text));
}

void routes_json(server *s, http_req *r, int status, const char *body, size_t len, int cluster_hdr) {
  char hdr[64] = "";
  if (cluster_hdr) snprintf(hdr, sizeof hdr, "X-Etcd-Cluster-Id: %s\r\n", s->cluster_hex);
  http_respond(r, status, cluster_hdr ? hdr : NULL, "application/json", body, len);
}

void routes_message(server *s, http_req *r, int status, const char *msg, int cluster_hdr) {
  yajl_gen g = proto_v2_gen_new();
  proto_v2_gen_message(g, msg);
  const unsigned char *buf;
  size_t len;
  yajl_gen_get_buf(g, &buf, &len);
  routes_json(s, r, status, (const char *)buf, len, cluster_hdr);
  yajl_gen_free(g);
}

void routes_json_gen(server *s, http_req *r, int status, yajl_gen g, int cluster_hdr) {
  char *body;
  size_t len;
  store_gen_finish(g, &body, &len);
  yajl_gen_free(g);
  routes_json(s, r, status, body, len, cluster_hdr);
  free(body);
}

static void handle_version(server *s, http_req *r) {
  static const char body[] = "{\"etcdserver\":\"3.4.23\",\"etcdcluster\":\"3.4.0\"}";
  routes_json(s, r, 200, body, sizeof body - 1, 0);
}

static void handle_health(server *s, http_req *r) {
  (void)s;
  static const char body[] = "{\"health\":\"true\"}";
  http_respond_sniffed(r, 200, "text/plain; charset=utf-8", body, sizeof body - 1);
}

typedef void (*route_fn)(server *s, http_req *r);

/* Which methods an exact-path endpoint answers, as etcd's handlers allow them. */
enum { ROUTE_GET, ROUTE_GET_HEAD, ROUTE_ANY };

typedef struct route {
  const char *path;
  route_fn fn;
  int methods;
} route;

/* Endpoints with exact paths. */
static const route get_routes[] = {
    {"/version", handle_version, ROUTE_GET},
    {"/health", handle_health, ROUTE_GET},
    {"/metrics", metrics_handle, ROUTE_ANY}, /* (Prometheus' handler answers any method) */
    {"/v2/machines", members_handle_machines, ROUTE_GET_HEAD},
    {"/v2/stats/self", stats_handle_self, ROUTE_GET},
    {"/v2/stats/store", stats_handle_store, ROUTE_GET},
    {"/v2/stats/leader", stats_handle_leader, ROUTE_GET},
    {"/debug/vars", debug_handle_vars, ROUTE_ANY},       /* (GET; 405 Allow: GET) */
    {"/config/local/log", debug_handle_log, ROUTE_ANY},  /* (PUT; 405 Allow: PUT) */
};

/* Answers 405 when route rt does not take r's method; returns 1 then. */
static int method_refused(const route *rt, http_req *r) {
  if (rt->methods == ROUTE_ANY || r->method == HTTP_GET) return 0;
  if (rt->methods == ROUTE_GET_HEAD && r->method == HTTP_HEAD) return 0;
  routes_text(r, 405, rt->methods == ROUTE_GET_HEAD ? "GET,HEAD" : "GET", "Method Not Allowed\n");
  return 1;
}

/* Go's mux redirects a path that is not clean (// . ..) to its cleaned form, keeping a
 * trailing slash. Returns 1 when it answered. */
static int redirect_unclean(http_req *r, const char *path, size_t n, const char *query) {
  sbuf clean = {0};
  http_clean_path(&clean, path, n);
  if (n > 1 && path[n - 1] == '/' && clean.len > 1) sbuf_putc(&clean, '/');
  int same = clean.len == n && !memcmp(clean.p, path, n);
  if (!same) {
    sbuf loc = {0}, hdr = {0};
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < clean.len; i++) { /* re-escape like Go's URL.String */
      unsigned char c = (unsigned char)clean.p[i];
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          (c && strchr("-_.~$&+,/:;=@", c))) {
        sbuf_putc(&loc, (char)c);
      } else {
        sbuf_putc(&loc, '%');
        sbuf_putc(&loc, hex[c >> 4]);
        sbuf_putc(&loc, hex[c & 15]);
      }
    }
    if (query) sbuf_put(&loc, query, strlen(query));
    sbuf_put(&hdr, "Location: ", 10);
    sbuf_put(&hdr, loc.p, loc.len);
    sbuf_put(&hdr, "\r\n", 3); /* includes the NUL */
    if (r->method == HTTP_GET || r->method == HTTP_HEAD) { /* (HEAD: the headers only) */
      sbuf body = {0};
      sbuf_put(&body, "<a href=\"", 9);
      for (size_t i = 0; i < loc.len; i++) { /* Go's htmlEscape */
        switch (loc.p[i]) {
          case '&': sbuf_put(&body, "&amp;", 5); break;
          case '<': sbuf_put(&body, "&lt;", 4); break;
          case '>': sbuf_put(&body, "&gt;", 4); break;
          case '"': sbuf_put(&body, "&#34;", 5); break;
          case '\'': sbuf_put(&body, "&#39;", 5); break;
          default: sbuf_putc(&body, loc.p[i]);
        }
      }
      sbuf_put(&body, "\">Moved Permanently</a>.\n\n", 26);
      http_respond(r, 301, hdr.p, "text/html; charset=utf-8", body.p, body.len);
      sbuf_free(&body);
    } else {
      http_respond(r, 301, hdr.p, NULL, "", 0);
    }
    sbuf_free(&loc);
    sbuf_free(&hdr);
  }
  sbuf_free(&clean);
  return !same;
}

void routes_metrics_dispatch(void *arg, http_req *r) {
  server *s = ((server_shard *)arg)->srv;
  const char *q = memchr(r->url.p, '?', r->url.len);
  size_t n = q ? (size_t)(q - r->url.p) : r->url.len;
  const route *rt = NULL;
  if (n == 8 && !memcmp(r->url.p, "/metrics", 8)) rt = &get_routes[2];
  else if (n == 7 && !memcmp(r->url.p, "/health", 7)) rt = &get_routes[1];
  if (!rt) routes_text(r, 404, NULL, "404 page not found\n");
  else if (!method_refused(rt, r)) rt->fn(s, r);
}

/* --host-whitelist, as etcd's: over plain HTTP the Host header's name (its port left out)
 * must be in the list, unless the list is empty or holds "*" (CVE-2018-5702, DNS
 * rebinding). Returns 1 when it answered 421. */
static int host_refused(server *s, http_req *r) {
  const char *wl = s->cfg->host_whitelist;
  if (!wl || !*wl || http_req_is_tls(r)) return 0;
  char host[256] = "";
  size_t n = r->host.len < sizeof host - 1 ? r->host.len : sizeof host - 1;
  if (n) memcpy(host, r->host.p, n);
  host[n] = 0;
  char *colon = strrchr(host, ':');
  if (host[0] == '[') { /* [::1]:2379 */
    char *end = strchr(host, ']');
    if (end && (end[1] == ':' || !end[1])) {
      *end = 0;
      memmove(host, host + 1, strlen(host));
    }
  } else if (colon && colon == strchr(host, ':')) {
    *colon = 0; /* host:port (an address with several colons is IPv6 without brackets) */
  }
  for (const char *p = wl; *p;) {
    size_t k = strcspn(p, ",");
    if ((k == 1 && *p == '*') || (k == strlen(host) && !strncmp(p, host, k))) return 0;
    p += k;
    if (*p == ',') p++;
  }
  fprintf(stderr, "quorumd: rejecting HTTP request to prevent DNS rebinding attacks (host %s)\n",
          host);
  char body[1024];
  int len = snprintf(body, sizeof body,
                     "\netcd received your request, but the Host header was unrecognized.\n\n"
                     "To fix this, choose one of the following options:\n"
                     "- Enable TLS, then any HTTPS request will be allowed.\n"
                     "- Add the hostname you want to use to the whitelist in settings.\n"
                     "  - e.g. etcd --host-whitelist \"%s\"\n\n"
                     "This requirement has been added to help prevent \"DNS Rebinding\" attacks "
                     "(CVE-2018-5702).\n\n",
                     host);
  r->no_cors = 1; /* etcd checks the host before it writes them */
  http_respond(r, 421, "X-Content-Type-Options: nosniff\r\n", "text/plain; charset=utf-8", body,
               (size_t)len);
  return 1;
}

/* The APIs a member serves only once it is ready (routes_ready.c): those that show the store
 * (keys, members, machines, users and roles). Statistics, health, version and metrics are
 * served from the start, so a member can be watched while it catches up. */
static bool needs_ready(const char *p, size_t n) {
  return n >= 4 && !memcmp(p, "/v2/", 4) && !(n >= 10 && !memcmp(p, "/v2/stats/", 10));
}

void routes_dispatch(void *arg, http_req *r) {
  server *s = ((server_shard *)arg)->srv;
  if (host_refused(s, r)) return;
  if (v2_auth_verify_async(s, r)) return; /* dispatched again when the password is checked */
  /* An absolute target ("http://host/v2/keys/a") names the path after its authority. */
  const char *target = r->url.p;
  size_t tlen = r->url.len;
  if ((tlen > 7 && !strncasecmp(target, "http://", 7)) || (tlen > 8 && !strncasecmp(target, "https://", 8))) {
    const char *auth = memchr(target, ':', tlen) + 3;
    const char *slash = memchr(auth, '/', tlen - (size_t)(auth - target));
    tlen = slash ? tlen - (size_t)(slash - target) : 0;
    target = slash ? slash : "/";
    if (!tlen) tlen = 1;
  }
  /* Split the target into path and query; decode the path. */
  const char *q = memchr(target, '?', tlen);
  size_t raw_len = q ? (size_t)(q - target) : tlen;
  sbuf path = {0}, query = {0};
  if (q) {
    sbuf_put(&query, q, tlen - raw_len);
    sbuf_putc(&query, 0);
  }
  if (http_unescape(&path, target, raw_len, 0) || !path.len || path.p[0] != '/') {
    r->keep_alive = 0; /* Go answers an unparsable target with 400 and closes */
    routes_text(r, 400, NULL, "400 Bad Request");
    goto out;
  }
  if (r->method == HTTP_OPTIONS) { /* CORS preflight: headers only */
    http_respond(r, 200, NULL, NULL, "", 0);
    goto out;
  }
  /* (a bare "?" is no query: Go's Location then has none) */
  if (redirect_unclean(r, path.p, path.len, q && tlen - raw_len > 1 ? query.p : NULL)) goto out;
  if (needs_ready(path.p, path.len) && routes_ready_hold(arg, r)) goto out;

  size_t kp = sizeof KEYS_PREFIX - 1;
  if (path.len >= kp && !memcmp(path.p, KEYS_PREFIX, kp) && (path.len == kp || path.p[kp] == '/')) {
    switch (r->method) {
      case HTTP_GET: case HTTP_HEAD: case HTTP_PUT: case HTTP_POST: case HTTP_DELETE: {
        sbuf key = {0};
        http_clean_path(&key, path.p + kp, path.len - kp);
        v2_keys_handle(s, r, key.p, key.len, path.p + kp, path.len - kp);
        sbuf_free(&key);
        break;
      }
      default:
        routes_text(r, 405, "HEAD,GET,PUT,POST,DELETE", "Method Not Allowed\n");
    }
    goto out;
  }
  static const char auth[] = "/v2/auth";
  size_t al = sizeof auth - 1;
  if (path.len > al && !memcmp(path.p, auth, al) && path.p[al] == '/') {
    v2_auth_handle(s, r, path.p + al, path.len - al);
    goto out;
  }
  static const char members[] = "/v2/members";
  size_t ml = sizeof members - 1;
  if (path.len >= ml && !memcmp(path.p, members, ml) && (path.len == ml || path.p[ml] == '/')) {
    members_handle(s, r, path.p + ml, path.len - ml);
    goto out;
  }
  if (s->test_hooks && path.len == 16 && !memcmp(path.p, "/debug/partition", 16)) {
    members_handle_partition(s, r, q ? query.p : "");
    goto out;
  }
  if (ui_route(r, path.p, path.len, q ? query.p : NULL)) goto out;
  for (size_t i = 0; i < sizeof get_routes / sizeof get_routes[0]; i++) {
    if (strlen(get_routes[i].path) == path.len && !memcmp(get_routes[i].path, path.p, path.len)) {
      if (!method_refused(&get_routes[i], r)) get_routes[i].fn(s, r);
      goto out;
    }
  }
  routes_text(r, 404, NULL, "404 page not found\n");
out:
  sbuf_free(&path);
  sbuf_free(&query);
}
