/* ui: serves the built-in web UI (web/, embedded by web/embed.cmake) under /ui/.
 *
 * /ui          301 to /ui/ (query kept: /ui?endpoint=X goes to /ui/?endpoint=X)
 * /ui/         index.html, Cache-Control: no-cache (it names the other assets with ?v=HASH)
 * /ui/NAME     the asset; with ?v= the current hash it is cached for a year (immutable),
 *              otherwise no-cache. Unknown names answer 404, other methods 405.
 * Every answer carries an ETag (the build's asset hash) and a Content-Security-Policy that
 * lets the page load nothing but its own assets and talk to any v2 endpoint. */
#include "daemon/ui.h"

#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "daemon/routes.h"
#include "daemon/store_codec.h"

#define UI_PREFIX "/ui"

static const char *content_type(const char *name) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".svg", "image/svg+xml"},
  };
  size_t n = strlen(name);
  for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
    size_t e = strlen(types[i].ext);
    if (n > e && !strcmp(name + n - e, types[i].ext)) return types[i].type;
  }
  return "application/octet-stream";
}

const ui_asset *ui_find(const char *name, size_t len) {
  for (const ui_asset *a = ui_assets; a->name; a++)
    if (strlen(a->name) == len && !memcmp(a->name, name, len)) return a;
  return NULL;
}

/* 1 when the raw query holds v=<ui_version>. */
static int query_has_version(const char *query) {
  if (!query) return 0;
  const char *p = query[0] == '?' ? query + 1 : query;
  size_t vl = strlen(ui_version);
  while (*p) {
    const char *e = strchr(p, '&');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == vl + 2 && !memcmp(p, "v=", 2) && !memcmp(p + 2, ui_version, vl)) return 1;
    p += n + (e ? 1 : 0);
  }
  return 0;
}

static void redirect_to_slash(http_req *r, const char *query) {
  sbuf hdr = {0};
  sbuf_put(&hdr, "Location: " UI_PREFIX "/", sizeof "Location: " UI_PREFIX "/" - 1);
  if (query) sbuf_put(&hdr, query, strlen(query));
  sbuf_put(&hdr, "\r\n", 3); /* includes the NUL */
  static const char body[] = "<a href=\"/ui/\">Moved Permanently</a>.\n";
  http_respond(r, 301, hdr.p, "text/html; charset=utf-8", body, sizeof body - 1);
  sbuf_free(&hdr);
}

int ui_route(http_req *r, const char *path, size_t len, const char *query) {
  size_t pl = sizeof UI_PREFIX - 1;
  if (len < pl || memcmp(path, UI_PREFIX, pl) || (len > pl && path[pl] != '/')) return 0;
  if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
    routes_text(r, 405, "GET, HEAD", "Method Not Allowed\n");
    return 1;
  }
  if (len == pl) {
    redirect_to_slash(r, query);
    return 1;
  }
  const char *name = path + pl + 1;
  size_t nlen = len - pl - 1;
  int index = nlen == 0;
  const ui_asset *a = index ? ui_find("index.html", 10) : ui_find(name, nlen);
  if (!a) {
    routes_text(r, 404, NULL, "404 page not found\n");
    return 1;
  }
  char hdr[512];
  snprintf(hdr, sizeof hdr,
           "Cache-Control: %s\r\n"
           "ETag: \"%s\"\r\n"
           "X-Content-Type-Options: nosniff\r\n"
           "Referrer-Policy: no-referrer\r\n"
           "Content-Security-Policy: default-src 'self'; connect-src *; img-src 'self' data:; "
           "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
           "frame-ancestors 'self'\r\n",
           !index && query_has_version(query) ? "public, max-age=31536000, immutable" : "no-cache",
           ui_version);
  http_respond(r, 200, hdr, content_type(a->name), (const char *)a->data, a->len);
  return 1;
}
