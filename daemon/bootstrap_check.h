/* bootstrap_check: --initial-cluster checked as etcd checks it before a new member first
 * starts. */
#ifndef QUORUM_DAEMON_BOOTSTRAP_CHECK_H
#define QUORUM_DAEMON_BOOTSTRAP_CHECK_H

#include <stddef.h>

#include "daemon/config.h"
#include "daemon/node.h"

/* MEMBERS[0..n) as parsed from INITIAL_CLUSTER (the text, for messages), SELF among them.
 * Every URL must be well formed and no URL listed twice; for a NEW_CLUSTER, SELF's URLs must
 * be those of ADVERTISE. Returns 0, or -EINVAL (or -ENOMEM) with etcd's message in err. */
int bootstrap_check(const char *initial_cluster, const node_member *members, size_t n,
                    const node_member *self, const config_urls *advertise, int new_cluster,
                    char *err, size_t errlen);

/* netutil.URLStringsEqual of two comma-separated URL lists (as sets; host names other than
 * "localhost" compared by their first address): 1, or 0 with etcd's reason in why. */
int bootstrap_urls_equal(const char *a_csv, const char *b_csv, char *why, size_t cap);

#endif
