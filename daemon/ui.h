/* ui: the built-in web UI at /ui/ (issue 6). Serves the assets of web/, compiled into the
 * binary by web/embed.cmake (ui_assets.c in the build dir), with their Content-Type and
 * caching headers; /ui answers a redirect to /ui/. The page itself talks only to the public
 * v2 API. */
#ifndef QUORUM_DAEMON_UI_H
#define QUORUM_DAEMON_UI_H

#include <stddef.h>

#include "daemon/http_server.h"

typedef struct ui_asset {
  const char *name;          /* file name in web/, e.g. "app.js" */
  const unsigned char *data; /* NUL-terminated copy of the file */
  size_t len;
} ui_asset;

/* Generated: every asset, ended by a {NULL} entry, and a hash of them all. */
extern const ui_asset ui_assets[];
extern const char ui_version[];

/* Answers the request when path (decoded, clean) is /ui or below it: returns 1 when it
 * answered, 0 when the path is not the UI's. query: the raw query with its '?', or NULL. */
int ui_route(http_req *r, const char *path, size_t len, const char *query);

/* The asset named name[0..len), or NULL. */
const ui_asset *ui_find(const char *name, size_t len);

#endif
