/* listen_check: the addresses a member will listen on, found free before it touches its data
 * dir (etcd binds its listeners before it creates or opens anything). */
#ifndef QUORUM_DAEMON_LISTEN_CHECK_H
#define QUORUM_DAEMON_LISTEN_CHECK_H

#include <stddef.h>

#include "daemon/config.h"

/* Binds each of URLS[0..n) ("http://HOST:PORT", "https://...") for a moment and lets it go.
 * Returns 0 when every one can be bound, or the negative errno of the first that cannot, with
 * "cannot listen on URL: REASON" in err (the words of the bind that comes later). A host that
 * is not an IP address literal or "localhost" is left to that later bind. */
int listen_check(const config_urls *urls, char *err, size_t errlen);

#endif
