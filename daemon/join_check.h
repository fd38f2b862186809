/* join_check: a member's first start with --initial-cluster-state existing, checked against
 * the running cluster as etcd checks it. */
#ifndef QUORUM_DAEMON_JOIN_CHECK_H
#define QUORUM_DAEMON_JOIN_CHECK_H

#include <stddef.h>

#include "daemon/config.h"
#include "daemon/node.h"

/* INITIAL[0..n) from --initial-cluster, SELF among them: GET /members from the other
 * members' peer URLs (the first that answers) must list as many members, with the same peer
 * URLs, and each member of INITIAL takes the id the cluster knows it by (etcd's
 * ValidateClusterAndAssignIDs: an added member's id is not derived from its URLs). Returns 0,
 * or -EINVAL with etcd's message in err ("cannot fetch cluster info from peer urls: ...",
 * "error validating peerURLs ...: member count is unequal", ...). */
int join_check(const config *cfg, node_member *initial, size_t n, const node_member *self,
               char *err, size_t errlen);

#endif
