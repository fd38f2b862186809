/* members_request: the body of POST and PUT /v2/members, read and checked as etcd 3.4 does. */
#ifndef QUORUM_DAEMON_MEMBERS_REQUEST_H
#define QUORUM_DAEMON_MEMBERS_REQUEST_H

#include <stddef.h>

#include "daemon/http_server.h"

/* Reads r's {"peerURLs":[...]}: 0 with the URLs (normalised, sorted, comma-joined) in
 * urls[0..cap), or the HTTP status (415, 400) with etcd's message in msg. */
int members_request_parse(const http_req *r, char *urls, size_t cap, char *msg, size_t mlen);

/* Checks one URL as etcd's types.NewURLs does (scheme, host:port, no path; unix URLs refused:
 * quorumd's peers talk TCP). Returns 0 with its normal form in norm[0..cap), or 400 with
 * etcd's message in msg. */
int members_check_url(const char *in, char *norm, size_t cap, char *msg, size_t mlen);

#endif
