/* v2_auth: the /v2/auth handler, and who a request is for /v2/keys' and /v2/members' checks. */
#ifndef QUORUM_DAEMON_V2_AUTH_H
#define QUORUM_DAEMON_V2_AUTH_H

#include "daemon/auth.h"
#include "daemon/http_server.h"
#include "daemon/server.h"

/* Handles /v2/auth + sub (sub: the decoded path after "/v2/auth", clean). */
void v2_auth_handle(server *s, http_req *r, const char *sub, size_t n);
/* Fills who from r (cn: room for a client certificate's common name, used with
 * --client-cert-auth when the request has no Authorization header). */
void v2_auth_who(server *s, http_req *r, auth_who *who, char *cn, size_t cn_len);
/* With /v2/auth on, when r's Basic credentials need the slow password check: starts it on
 * libuv's thread pool and returns true; r is then dispatched again (routes_dispatch) once it
 * is done, with the verdict kept in r for the checks. False: nothing to wait for. */
bool v2_auth_verify_async(server *s, http_req *r);
/* Whether r comes from a user with the root role (true with /v2/auth off). */
bool v2_auth_root_access(server *s, http_req *r);
/* 401 {"message":"Insufficient credentials"}: etcd's answer outside /v2/keys. */
void v2_auth_no_auth(server *s, http_req *r);

#endif
