/* members_request: the body of POST and PUT /v2/members read as etcd 3.4 reads it: the
 * Content-Type check, Go's JSON errors ("unexpected end of JSON input", a type error
 * naming the Go struct), and the peer URLs checked as etcd's types.NewURLs checks them
 * (scheme, host:port, no path), with the same messages. The URLs come out normalised
 * (scheme lower-cased, user info, query and fragment left out) and sorted, as etcd sorts them. */
#include "daemon/members_request.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yajl/yajl_tree.h>

#include "proto/go_json.h"

#define GO_STRUCT "struct { PeerURLs []string \"json:\\\"peerURLs\\\"\" }"

static const char *kind(yajl_val v) {
  if (YAJL_IS_STRING(v)) return "string";
  if (YAJL_IS_NUMBER(v)) return "number";
  if (YAJL_IS_TRUE(v) || YAJL_IS_FALSE(v)) return "bool";
  if (YAJL_IS_ARRAY(v)) return "array";
  return "object";
}

int members_check_url(const char *in, char *norm, size_t cap, char *msg, size_t mlen) {
  const char *b = in, *e = in + strlen(in);
  while (b < e && isspace((unsigned char)*b)) b++;
  while (e > b && isspace((unsigned char)e[-1])) e--;
  size_t n = (size_t)(e - b);
  char scheme[16] = "";
  size_t i = 0;
  while (i < n && (isalpha((unsigned char)b[i]) ||
                   (i && (isdigit((unsigned char)b[i]) || strchr("+-.", b[i])))))
    i++;
  if (i < n && b[i] == ':') {
    if (i == 0) {
      snprintf(msg, mlen, "parse \"%.*s\": missing protocol scheme", (int)n, b);
      return 400;
    }
    if (i < sizeof scheme) {
      for (size_t k = 0; k < i; k++) scheme[k] = (char)tolower((unsigned char)b[k]);
      scheme[i] = 0;
    } else {
      strcpy(scheme, "?");
    }
    i++;
  } else {
    i = 0; /* no scheme: a path, whose first segment may not hold a colon */
    size_t seg = strcspn(b, "/?#");
    if (memchr(b, ':', seg < n ? seg : n)) {
      snprintf(msg, mlen, "parse \"%.*s\": first path segment in URL cannot contain colon", (int)n, b);
      return 400;
    }
  }
  if (strcmp(scheme, "http") && strcmp(scheme, "https") && strcmp(scheme, "unix") &&
      strcmp(scheme, "unixs")) {
    snprintf(msg, mlen, "URL scheme must be http, https, unix, or unixs: %s", in);
    return 400;
  }
  const char *host = "", *host_end = "";
  const char *rest = b + i;
  if (n - i >= 2 && rest[0] == '/' && rest[1] == '/') {
    host = rest + 2;
    host_end = host;
    while (host_end < e && !strchr("/?#", *host_end)) host_end++;
    const char *at = NULL;
    for (const char *p = host; p < host_end; p++)
      if (*p == '@') at = p;
    if (at) host = at + 1; /* user info */
    rest = host_end;
  }
  size_t hl = (size_t)(host_end - host);
  /* url.Parse's host rules: "[v6]" with an optional ":port", else an optional ":digits". */
  const char *colon = NULL;
  if (hl && host[0] == '[') {
    const char *close = memchr(host, ']', hl);
    if (!close) {
      snprintf(msg, mlen, "parse \"%.*s\": missing ']' in host", (int)n, b);
      return 400;
    }
    if (close + 1 < host_end) {
      colon = close + 1;
      if (*colon != ':') {
        snprintf(msg, mlen, "parse \"%.*s\": invalid port \"%.*s\" after host", (int)n, b,
                 (int)(host_end - colon), colon);
        return 400;
      }
    }
  } else {
    for (const char *p = host; p < host_end; p++)
      if (*p == ':') colon = p;
  }
  if (colon) {
    for (const char *p = colon + 1; p < host_end; p++)
      if (!isdigit((unsigned char)*p)) {
        snprintf(msg, mlen, "parse \"%.*s\": invalid port \"%.*s\" after host", (int)n, b,
                 (int)(host_end - colon), colon);
        return 400;
      }
  }
  if (!colon) { /* net.SplitHostPort: "missing port in address" */
    snprintf(msg, mlen, "URL address does not have the form \"host:port\": %s", in);
    return 400;
  }
  const char *path_end = rest;
  while (path_end < e && *path_end != '?' && *path_end != '#') path_end++;
  if (path_end > rest) {
    snprintf(msg, mlen, "URL must not contain a path: %s", in);
    return 400;
  }
  if (!strncmp(scheme, "unix", 4)) {
    snprintf(msg, mlen, "quorumd does not support unix peer URLs: %s", in);
    return 400;
  }
  int w = snprintf(norm, cap, "%s://%.*s", scheme, (int)hl, host);
  if (w < 0 || (size_t)w >= cap) {
    snprintf(msg, mlen, "URL too long: %s", in);
    return 400;
  }
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

int members_request_parse(const http_req *r, char *urls, size_t cap, char *msg, size_t mlen) {
  /* unmarshalRequest: the media type, lower-cased and trimmed only when parameters follow */
  char ctype[256];
  snprintf(ctype, sizeof ctype, "%.*s", (int)r->content_type.len,
           r->content_type.p ? r->content_type.p : "");
  char *semi = strchr(ctype, ';');
  if (semi) {
    *semi = 0;
    char *p = ctype;
    while (isspace((unsigned char)*p)) p++;
    memmove(ctype, p, strlen(p) + 1);
    for (size_t k = strlen(ctype); k && isspace((unsigned char)ctype[k - 1]); k--) ctype[k - 1] = 0;
    for (p = ctype; *p; p++) *p = (char)tolower((unsigned char)*p);
  }
  if (strcmp(ctype, "application/json")) {
    snprintf(msg, mlen, "Bad Content-Type %s, accept application/json", ctype);
    return 415;
  }
  const char *body = r->body.p ? r->body.p : "";
  if (proto_go_json_check(body, r->body.len, msg, mlen)) return 400;
  char *text = strndup(body, r->body.len);
  if (!text) abort();
  yajl_val v = yajl_tree_parse(text, NULL, 0);
  free(text);
  int status = 0;
  yajl_val list = NULL;
  if (!v) {
    snprintf(msg, mlen, "invalid JSON");
    return 400;
  }
  if (!YAJL_IS_OBJECT(v) && !YAJL_IS_NULL(v)) {
    snprintf(msg, mlen, "json: cannot unmarshal %s into Go value of type " GO_STRUCT, kind(v));
    status = 400;
  }
  for (size_t k = 0; !status && YAJL_IS_OBJECT(v) && k < v->u.object.len; k++) {
    if (strcasecmp(v->u.object.keys[k], "peerURLs")) continue;
    yajl_val f = v->u.object.values[k];
    if (YAJL_IS_NULL(f)) continue; /* null leaves the field as it is */
    if (!YAJL_IS_ARRAY(f)) {
      snprintf(msg, mlen, "json: cannot unmarshal %s into Go struct field .peerURLs of type []string",
               kind(f));
      status = 400;
      break;
    }
    for (size_t j = 0; j < f->u.array.len; j++) {
      yajl_val x = f->u.array.values[j];
      if (!YAJL_IS_STRING(x) && !YAJL_IS_NULL(x)) {
        snprintf(msg, mlen, "json: cannot unmarshal %s into Go struct field .peerURLs of type string",
                 kind(x));
        status = 400;
        break;
      }
    }
    list = f; /* the last one given wins */
  }
  size_t nl = list ? list->u.array.len : 0;
  if (!status && !nl) {
    snprintf(msg, mlen, "no valid URLs given");
    status = 400;
  }
  char **norm = calloc(nl ? nl : 1, sizeof *norm);
  if (!norm) abort();
  for (size_t j = 0; !status && j < nl; j++) {
    yajl_val x = list->u.array.values[j];
    norm[j] = malloc(cap);
    if (!norm[j]) abort();
    status = members_check_url(YAJL_IS_STRING(x) ? x->u.string : "", norm[j], cap, msg, mlen);
  }
  if (!status) {
    qsort(norm, nl, sizeof *norm, cmp_str);
    size_t o = 0;
    urls[0] = 0;
    for (size_t j = 0; !status && j < nl; j++) {
      size_t l = strlen(norm[j]);
      if (o + l + 2 > cap) {
        snprintf(msg, mlen, "peerURLs too long");
        status = 400;
        break;
      }
      if (o) urls[o++] = ',';
      memcpy(urls + o, norm[j], l + 1);
      o += l;
    }
  }
  for (size_t j = 0; j < nl; j++) free(norm[j]);
  free(norm);
  yajl_tree_free(v);
  return status;
}
