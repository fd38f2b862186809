/* discovery: how a new member finds the other members of its first cluster instead of a
 * static --initial-cluster: etcd's v2 discovery protocol (--discovery URL: a directory of any
 * etcd v2 keys API, etcd or another quorumd) and its DNS SRV bootstrap (--discovery-srv). */
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
 * found", ...). A full cluster is -EUSERS, with the cluster in *initial_cluster all the same
 * (for --discovery-fallback=proxy). */
int discovery_join(const char *durl, const char *proxy, uint64_t id, const char *config,
                   char **initial_cluster, char *err, size_t errlen);

/* discovery_srv.c: etcd's DNS bootstrap (--discovery-srv DOMAIN, --discovery-srv-name NAME):
 * the SRV records of _etcd-server-ssl[-NAME]._tcp.DOMAIN (https) and
 * _etcd-server[-NAME]._tcp.DOMAIN (http) in --initial-cluster form, this member (the record
 * that resolves to one of peer_urls) under `name`, the others as "0", "1", ... Returns 0 with
 * *initial_cluster (malloc'd), or a negative errno with etcd's message in err. */
int discovery_srv(const char *domain, const char *service_name, const char *name,
                  const char *const *peer_urls, size_t n_peer, char **initial_cluster, char *err,
                  size_t errlen);

#endif
