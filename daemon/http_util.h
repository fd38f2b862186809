/* http_util: request-target helpers: percent-decoding, query and form parameters, and the
 * path cleaning that Go's HTTP mux does (and the redirect it answers with). */
#ifndef QUORUM_DAEMON_HTTP_UTIL_H
#define QUORUM_DAEMON_HTTP_UTIL_H

#include <stddef.h>

#include "daemon/store_codec.h"

typedef struct http_param {
  char *name, *value; /* decoded, NUL-terminated (value may hold NULs; see value_len) */
  size_t value_len;
} http_param;

typedef struct http_params {
  http_param *v;
  size_t n, cap;
  char error[96]; /* why the last parse failed, worded as Go's url.ParseQuery does */
} http_params;

/* Percent-decodes s[0..n) into out; plus_is_space for query/form encoding. Returns 0, or -1
 * on a malformed escape. */
int http_unescape(sbuf *out, const char *s, size_t n, int plus_is_space);

/* Parses "a=1&b=2" into ps (appending; the first occurrence of a name is the one found by
 * http_params_get). ps must be zeroed before the first call. Like Go's url.ParseQuery, a ';'
 * or a malformed escape is an error: returns -1 with ps->error set (the pairs before and after
 * are still parsed), else 0. */
int http_params_parse(http_params *ps, const char *s, size_t n);
void http_params_free(http_params *ps);
/* The value of name, or NULL when absent. */
const http_param *http_params_get(const http_params *ps, const char *name);

/* Go's path.Clean of a '/'-rooted path into out. */
void http_clean_path(sbuf *out, const char *p, size_t n);

#endif
