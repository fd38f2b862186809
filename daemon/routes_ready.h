/* routes_ready: client requests held until this member is ready to serve them. */
#ifndef QUORUM_DAEMON_ROUTES_READY_H
#define QUORUM_DAEMON_ROUTES_READY_H

#include <stdbool.h>

#include "daemon/server.h"

/* Whether this member serves the keys, members and auth APIs: once its publication of this
 * start is applied (etcd's ReadyNotify), so it has applied everything committed before it
 * started. Any thread. */
bool routes_ready(server *s);

/* Holds r on its shard when the member is not ready yet (returns true): it is dispatched
 * again, in arrival order, once the member is ready, or dropped if its client goes first. */
bool routes_ready_hold(server_shard *sh, http_req *r);

/* At a shard's stop, on its loop, after its connections are closed (which let go of every
 * held request). */
void routes_ready_close(server_shard *sh);

#endif
