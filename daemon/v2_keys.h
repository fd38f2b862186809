/* v2_keys: the /v2/keys handler: reads, watches and proposals of changes. */
#ifndef QUORUM_DAEMON_V2_KEYS_H
#define QUORUM_DAEMON_V2_KEYS_H

#include "daemon/http_server.h"
#include "daemon/server.h"

/* Handles a request for key (decoded and cleaned, starting with '/'); acl_key is the path
 * after /v2/keys as the client sent it (decoded), which /v2/auth's key patterns match. */
void v2_keys_handle(server *s, http_req *r, const char *key, size_t key_len, const char *acl_key,
                    size_t acl_len);

/* Answers the request behind a proposal once its record has been applied. */

#endif
