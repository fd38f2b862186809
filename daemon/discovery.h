/* discovery: etcd's v2 discovery protocol (--discovery URL): a new member finds the other
 * members of its first cluster through a directory of any etcd v2 keys API (etcd, or another
 * quorumd), instead of a static --initial-cluster. */
#ifndef QUORUM_DAEMON_DISCOVERY_H
#define QUORUM_DAEMON_DISCOVERY_H

#include <stddef.h>
#include <stdint.h>

/* Registers self (config: "name=peerURL,name=peerURL2", id: the member id, the key's name)
 * under durl (an http(s) URL of a v2 keys directory whose _config/size key holds the cluster
 * size) and waits until that many members have registered (through the HTTP proxy `proxy`,
 * unless NULL or ""); the first `size` by creation
 * index make the cluster. Retries with backoff while the service cannot be reached, as etcd
 * does. Returns 0 with *initial_cluster (malloc'd, in --initial-cluster form), or a negative
 * errno with etcd's message in err ("discovery: cluster is full", "discovery: size key not
 * found", ...). */
int discovery_join(const char *durl, const char *proxy, uint64_t id, const char *config,
                   char **initial_cluster, char *err, size_t errlen);

#endif
