/* config: quorumd's settings, parsed from etcd's command-line flags and ETCD_* variables. */
#ifndef QUORUM_DAEMON_CONFIG_H
#define QUORUM_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_URLS 16

/* A list of URLs as given in a comma-separated flag value. Strings are owned (malloc). */
typedef struct config_urls {
  size_t n;
  char *url[CONFIG_MAX_URLS];
} config_urls;

typedef struct config {
  char *name;                    /* --name, default "default" */
  char *data_dir;                /* --data-dir, default "${name}.quorumd" */
  char *wal_dir;                 /* --wal-dir: the Raft log's directory (NULL/"": DATA-DIR/wal) */
  config_urls listen_client;     /* --listen-client-urls, default http://localhost:2379 */
  config_urls advertise_client;  /* --advertise-client-urls, default http://localhost:2379 */
  config_urls listen_peer;       /* --listen-peer-urls, default http://localhost:2380 */
  config_urls listen_metrics;    /* --listen-metrics-urls: /metrics and /health only */
  config_urls advertise_peer;    /* --initial-advertise-peer-urls, default http://localhost:2380 */
  char *initial_cluster;         /* --initial-cluster, default "${name}=${advertise_peer[0]}" */
  char *initial_cluster_state;   /* --initial-cluster-state: "new" (default) or "existing" */
  char *initial_cluster_token;   /* --initial-cluster-token, default "etcd-cluster" */
  char *discovery;               /* --discovery: a v2 keys URL to find the first members by
                                  * (then initial_cluster is NULL until the server finds them) */
  char *discovery_proxy;         /* --discovery-proxy: an HTTP proxy for the discovery requests */
  char *discovery_srv;           /* --discovery-srv: a DNS domain whose SRV records list the
                                  * first members (initial_cluster NULL, as with discovery) */
  char *discovery_srv_name;      /* --discovery-srv-name: suffix of the SRV service names */
  uint64_t snapshot_count;       /* --snapshot-count, default 100000 */
  uint64_t heartbeat_ms;         /* --heartbeat-interval, default 100 */
  uint64_t election_ms;          /* --election-timeout, default 1000 */
  uint64_t max_request_bytes;    /* --max-request-bytes, default 1.5 MiB (1572864) */
  char *cors;                    /* --cors, comma-separated origins, default "*" */
  char *host_whitelist;          /* --host-whitelist: Host names allowed over plain HTTP (NULL: all) */
  char *log_level;               /* --log-level: debug, info (default), warn, error */
  char *log_outputs;             /* --log-outputs: default (stderr), stderr, stdout or a path */
  int unsafe_no_fsync;           /* --unsafe-no-fsync: skip fsync (tests of nothing durable only) */
  int force_new_cluster;         /* --force-new-cluster: restart as a one-member cluster */
  int strict_reconfig_check;     /* --strict-reconfig-check (default true): refuse unsafe changes */
  uint64_t http_loops;           /* --http-loops (quorumd's own): client loops, 0 = one per two CPUs */
  char *cert_file;               /* --cert-file: TLS certificate (chain) for https:// client URLs */
  char *key_file;                /* --key-file: its private key */
  char *trusted_ca_file;         /* --trusted-ca-file: CAs for client certificates */
  int client_cert_auth;          /* --client-cert-auth: require a client certificate */
  char *peer_cert_file;          /* --peer-cert-file: TLS certificate for https:// peer URLs */
  char *peer_key_file;           /* --peer-key-file: its private key */
  char *peer_trusted_ca_file;    /* --peer-trusted-ca-file: CAs for the other members */
  int peer_client_cert_auth;     /* --peer-client-cert-auth: members must present certificates */
  char *client_crl_file;         /* --client-crl-file: revoked client certificates */
  char *client_cert_allowed_hostname; /* --client-cert-allowed-hostname */
  char *peer_crl_file;           /* --peer-crl-file: revoked member certificates */
  char *peer_cert_allowed_cn;    /* --peer-cert-allowed-cn */
  char *peer_cert_allowed_hostname; /* --peer-cert-allowed-hostname */
  char *cipher_suites;           /* --cipher-suites: TLS 1.2 suites by IANA (Go) name */
  int auto_tls;                  /* --auto-tls: a self-signed certificate for https:// client URLs */
  int peer_auto_tls;             /* --peer-auto-tls: the same between members, unverified */
  int show_version;              /* --version was given */
  int show_help;                 /* --help / -h was given */
  char *proxy;                   /* --proxy: off (default), on, readonly (daemon/proxy.c) */
  char *discovery_fallback;      /* --discovery-fallback: proxy (default) or exit */
  uint64_t proxy_failure_wait_ms;  /* --proxy-failure-wait, default 5000 */
  uint64_t proxy_refresh_ms;       /* --proxy-refresh-interval, default 30000 */
  uint64_t proxy_dial_timeout_ms;  /* --proxy-dial-timeout, default 1000 */
  uint64_t proxy_read_timeout_ms;  /* --proxy-read-timeout, default 0 (none) */
  char *config_file;             /* --config-file / ETCD_CONFIG_FILE: etcd's YAML file; when set,
                                  * the other flags and the ETCD_* variables are ignored, as etcd
                                  * ignores them (daemon/config_file.c) */
  char *env_notes;               /* what the ETCD_* variables did, one line each, as etcd's
                                  * pkg/flags logs it ("recognized and used environment variable
                                  * ETCD_NAME=x", "warning: unrecognized ..."); NULL when none */
  int argc;                      /* the command line as given (for /debug/vars; not owned) */
  char **argv;
} config;

/* Fills *cfg from argv (argv[0] is the program) and then from envp (ETCD_* names; the command
 * line wins over the environment), or, given --config-file or ETCD_CONFIG_FILE, from that YAML
 * file alone (as etcd 3.4: the other flags are still checked, then ignored). Unknown flags and
 * bad values are errors: returns -EINVAL (another -errno for a file it cannot read) and writes a
 * one-line message naming the flag into err (size errlen). Returns 0 on success.
 * Accepts -flag v, -flag=v, --flag v, --flag=v; booleans also bare (--flag) or =true/false;
 * the last repetition wins. etcd flags that quorumd does not act upon are accepted and ignored.
 * On success or failure, config_free() releases what was allocated. */
int config_parse(config *cfg, int argc, char **argv, char **envp, char *err, size_t errlen);

/* Releases the strings owned by cfg and zeroes it. */
void config_free(config *cfg);

/* The text printed by --help. */
const char *config_usage(void);

#endif
