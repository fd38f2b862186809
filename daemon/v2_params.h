/* v2_params: parsing and validating a /v2/keys request's parameters exactly as etcd 3.4 does
 * (validation order, error codes and causes; see shared/docs/v2-api.md section 2). */
#ifndef QUORUM_DAEMON_V2_PARAMS_H
#define QUORUM_DAEMON_V2_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/http_server.h"
#include "daemon/http_util.h"

typedef struct v2_params {
  http_params ps;
  int recursive, sorted, wait, dir, quorum, stream, no_value_on_success;
  int refresh;            /* refresh=true */
  int prev_exist;         /* -1 absent, else 0/1 */
  const char *value;      /* "" when absent */
  size_t value_len;
  const char *prev_value; /* NULL when absent */
  size_t prev_value_len;
  uint64_t prev_index, wait_index;
  int has_ttl;
  uint64_t ttl;
  const char *cause;      /* set with an error code */
} v2_params;

/* Reads the query string (after '?' in the request target) and a form body, then validates.
 * Returns 0 or the v2 error code (cause in p->cause). Free with v2_params_free either way. */
int v2_params_parse(v2_params *p, const http_req *r);
void v2_params_free(v2_params *p);

/* Parses a strict unsigned decimal (Go's strconv.ParseUint base 10). Returns 0 or -1. */
int v2_parse_u64(const char *s, size_t n, uint64_t *out);
/* Parses Go's strconv.ParseBool set. Returns 0/1, or -1 when invalid. */
int v2_parse_bool(const char *s);

#endif
