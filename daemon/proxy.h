/* proxy: quorumd as etcd's v2 proxy (--proxy on|readonly): client requests go on to the
 * cluster's members (daemon/proxy.c). Loop thread. */
#ifndef QUORUM_DAEMON_PROXY_H
#define QUORUM_DAEMON_PROXY_H

#include <stddef.h>
#include <uv.h>

#include "daemon/config.h"

typedef struct proxy proxy;

/* Listens on the client URLs and starts asking the peer URLs of --initial-cluster for the
 * members. A SIGINT or SIGTERM closes everything, so that the loop ends; then proxy_free.
 * Returns 0 or negative errno with a message in err. */
int proxy_start(proxy **out, const config *cfg, uv_loop_t *loop, char *err, size_t errlen);
void proxy_free(proxy *p);

#endif
