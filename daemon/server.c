/* server: wiring of one member: data dir → store → Raft node (log replay) → HTTP loops
 * (server_shard.c: watcher hubs, the delivery of applied outcomes), and the TTL timer that
 * proposes SYNC records (on the leader). */
#include "daemon/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/auth.h"
#include "daemon/datadir.h"
#include "daemon/discovery.h"
#include "proto/tls_session.h"
#include "daemon/bootstrap_check.h"
#include "daemon/join_check.h"
#include "daemon/listen_check.h"
#include "daemon/notify_systemd.h"
#include "daemon/routes.h"
#include "daemon/routes_ready.h"
#include "daemon/v2_keys.h"

#include <signal.h>

/* Test hook (QUORUMD_TEST_DIE_AFTER_SNAPSHOT_INSTALL=mid): SIGKILL after the second batch of a
 * snapshot's install, the old tree deleted and part of the new one written. */
static int die_mid_install(void *arg, unsigned batches) {
  (void)arg;
  if (batches < 2) return 0;
  fprintf(stderr, "quorumd: test hook: killed halfway through installing a snapshot\n");
  raise(SIGKILL);
  return 1;
}

#define SYNC_INTERVAL_MS 500

int64_t server_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int server_propose(server *s, proto_record *rec, server_waiter *w) {
  int rc = node_submit(s->node, rec, w);
  if (rc) {
    atomic_fetch_add(&s->stats.proposals_failed, 1);
    return rc;
  }
  atomic_fetch_add(&s->stats.proposals_pending, 1);
  if (w != SERVER_SYNC_CTX) {
    w->id = rec->id;
    w->counted = 1;
  }
  return 0;
}

bool server_cancel(server *s, server_waiter *w) {
  if (!s->node || !w->id || node_cancel(s->node, w->id) != w) return false;
  if (w->counted) atomic_fetch_sub(&s->stats.proposals_pending, 1);
  return true;
}

uint64_t server_term(server *s) {
  node_status st;
  node_get_status(s->node, &st);
  return st.term;
}

size_t server_voters(server *s) {
  node_status st;
  node_get_status(s->node, &st);
  return st.raft.conf.n_voters;
}

/* Every 500 ms: if a key is due, propose a SYNC carrying this member's clock. */
static void on_ttl_timer(uv_timer_t *t) {
  server *s = t->data;
  if (s->sync_pending) return;
  node_status st;
  node_get_status(s->node, &st);
  if (st.role != RAFT_LEADER) return; /* expiry is the leader's decision */
  int64_t next = store_next_expiry(s->st);
  int64_t now = server_now_ns();
  if (!next || next > now) return;
  proto_record rec = {.op = PROTO_OP_SYNC, .time = now, .path = "/", .path_len = 1};
  if (server_propose(s, &rec, SERVER_SYNC_CTX) == 0) s->sync_pending = 1;
}

/* Every 10 ms until the member is ready (routes_ready: this start's publication is applied, so
 * it answers keys): then READY=1 to systemd, where etcd sends it (after ReadyNotify). */
static void on_ready_notify(uv_timer_t *t) {
  server *s = t->data;
  if (!routes_ready(s)) return;
  uv_timer_stop(t);
  notify_systemd_ready();
}

static void on_signal(uv_signal_t *h, int signum) {
  server *s = h->data;
  fprintf(stderr, "quorumd: received signal %d, shutting down\n", signum);
  uv_stop(s->loop);
}

static void join_urls(const config_urls *u, char *out, size_t n) {
  out[0] = 0;
  for (size_t i = 0; i < u->n; i++) {
    if (i) strncat(out, ",", n - strlen(out) - 1);
    strncat(out, u->url[i], n - strlen(out) - 1);
  }
}

/* Parses --initial-cluster ("name=url,name=url,...": a member with several URLs appears once
 * per URL) into members with ids derived from their peer URLs and the token. */
static int parse_initial(server *s, const config *cfg, const char *initial, char *err,
                         size_t errlen) {
  const char *p = initial ? initial : "";
  s->initial = calloc(RAFT_MAX_VOTERS, sizeof *s->initial);
  if (!s->initial) return -ENOMEM;
  while (*p) {
    size_t len = strcspn(p, ",");
    const char *eq = memchr(p, '=', len);
    if (!eq || eq == p || eq + 1 == p + len) {
      snprintf(err, errlen, "--initial-cluster: bad entry \"%.*s\" (want name=url)", (int)len, p);
      return -EINVAL;
    }
    size_t nl = (size_t)(eq - p), ul = len - nl - 1;
    node_member *m = NULL;
    for (size_t i = 0; i < s->n_initial; i++)
      if (strlen(s->initial[i].name) == nl && !memcmp(s->initial[i].name, p, nl)) m = &s->initial[i];
    if (!m) {
      if (s->n_initial == RAFT_MAX_VOTERS) {
        snprintf(err, errlen, "--initial-cluster: more than %d members", RAFT_MAX_VOTERS);
        return -EINVAL;
      }
      m = &s->initial[s->n_initial++];
      if (nl >= sizeof m->name) nl = sizeof m->name - 1;
      memcpy(m->name, p, nl);
    }
    size_t have = strlen(m->peer_urls);
    if (have + ul + 2 >= sizeof m->peer_urls) {
      snprintf(err, errlen, "--initial-cluster: URLs too long");
      return -EINVAL;
    }
    if (have) m->peer_urls[have++] = ',';
    memcpy(m->peer_urls + have, eq + 1, ul);
    m->peer_urls[have + ul] = 0;
    p += len;
    if (*p == ',') p++;
  }
  for (size_t i = 0; i < s->n_initial; i++) {
    char seed[8192];
    snprintf(seed, sizeof seed, "%s|%s", s->initial[i].peer_urls, cfg->initial_cluster_token);
    s->initial[i].id = datadir_hash(seed, 0);
  }
  return 0;
}

/* The TLS contexts, made before anything else. */
typedef struct server_tls {
  tls_session_ctx *client;      /* https:// client URLs (handed to the HTTP server) */
  tls_session_ctx *peer_server; /* https:// peer URL to listen on */
  tls_session_ctx *peer_client; /* connections to https:// members */
} server_tls;

/* --log-level (zap's names) as a NODE_LOG_* level. */
static int log_level_of(const char *name) {
  if (!name || !strcmp(name, "info")) return NODE_LOG_INFO;
  if (!strcmp(name, "debug")) return NODE_LOG_DEBUG;
  if (!strcmp(name, "warn")) return NODE_LOG_WARN;
  return NODE_LOG_ERROR; /* error, dpanic, panic, fatal */
}

static int start(server *s, const config *cfg, uv_loop_t *loop, server_tls *tls, char *err,
                 size_t errlen);

static int has_https(const config_urls *u) {
  for (size_t i = 0; i < u->n; i++)
    if (!strncmp(u->url[i], "https://", 8)) return 1;
  return 0;
}

static void tls_free(server_tls *tls) {
  tls_session_ctx_free(tls->client);
  tls_session_ctx_free(tls->peer_server);
  tls_session_ctx_free(tls->peer_client);
  *tls = (server_tls){0};
}

/* The hosts of a few URL lists, comma-separated (for a self-signed certificate). */
static void url_hosts(const config_urls *const *lists, size_t n, char *out, size_t cap) {
  size_t o = 0;
  out[0] = '\0';
  for (size_t k = 0; k < n; k++)
    for (size_t i = 0; i < lists[k]->n; i++) {
      const char *h = strstr(lists[k]->url[i], "://");
      h = h ? h + 3 : lists[k]->url[i];
      size_t len = h[0] == '[' ? strcspn(h + 1, "]") : strcspn(h, ":/");
      if (h[0] == '[') h++;
      int w = snprintf(out + o, cap - o, "%s%.*s", o ? "," : "", (int)len, h);
      if (w > 0 && (size_t)w < cap - o) o += (size_t)w;
    }
}

/* Certificates and keys are read (or, with --auto-tls / --peer-auto-tls and no files, made)
 * first, so that a bad file is reported before the data dir is touched (etcd sets its
 * listeners up first too). A member can dial https:// members when any peer URL (ours or
 * --initial-cluster's) is https or peer TLS files (a CA alone will do) are given; with
 * --peer-auto-tls alone the other members' certificates are not checked, as in etcd. */
static int tls_load(const config *cfg, server_tls *tls, char *err, size_t errlen) {
  int rc = 0;
  char hosts[2048];
  int client_files = cfg->cert_file && *cfg->cert_file;
  int peer_files = cfg->peer_cert_file && *cfg->peer_cert_file;
  if (has_https(&cfg->listen_client)) {
    if (client_files) {
      rc = tls_session_ctx_server(&tls->client, cfg->cert_file, cfg->key_file,
                                  cfg->trusted_ca_file, cfg->client_cert_auth, err, errlen);
    } else {
      const config_urls *l[] = {&cfg->listen_client, &cfg->advertise_client};
      url_hosts(l, 2, hosts, sizeof hosts);
      rc = tls_session_ctx_server_auto(&tls->client, hosts, err, errlen);
    }
  }
  if (!rc && peer_files) {
    rc = tls_session_ctx_server(&tls->peer_server, cfg->peer_cert_file, cfg->peer_key_file,
                                cfg->peer_trusted_ca_file, cfg->peer_client_cert_auth, err,
                                errlen);
  } else if (!rc && cfg->peer_auto_tls && has_https(&cfg->listen_peer)) {
    const config_urls *l[] = {&cfg->listen_peer, &cfg->advertise_peer};
    url_hosts(l, 2, hosts, sizeof hosts);
    rc = tls_session_ctx_server_auto(&tls->peer_server, hosts, err, errlen);
  }
  int peer_ca = cfg->peer_trusted_ca_file && *cfg->peer_trusted_ca_file;
  if (!rc && (peer_files || peer_ca || has_https(&cfg->listen_peer) ||
              has_https(&cfg->advertise_peer) ||
              (cfg->initial_cluster && strstr(cfg->initial_cluster, "https://"))))
    rc = tls_session_ctx_client(&tls->peer_client, cfg->peer_cert_file, cfg->peer_key_file,
                                cfg->peer_trusted_ca_file, peer_files || !cfg->peer_auto_tls, err,
                                errlen);
  /* etcd's checks beyond the chain, and its cipher suites, on every context made above */
  if (!rc && tls->client)
    rc = tls_session_ctx_policy(tls->client, cfg->client_crl_file, NULL,
                                cfg->client_cert_allowed_hostname, err, errlen);
  if (!rc && tls->peer_server && cfg->peer_cert_allowed_cn && *cfg->peer_cert_allowed_cn &&
      cfg->peer_cert_allowed_hostname && *cfg->peer_cert_allowed_hostname) {
    snprintf(err, errlen, "AllowedCN and AllowedHostname are mutually exclusive (cn=\"%s\", "
             "hostname=\"%s\")", cfg->peer_cert_allowed_cn, cfg->peer_cert_allowed_hostname);
    rc = -EINVAL;
  }
  if (!rc && tls->peer_server)
    rc = tls_session_ctx_policy(tls->peer_server, cfg->peer_crl_file, cfg->peer_cert_allowed_cn,
                                cfg->peer_cert_allowed_hostname, err, errlen);
  tls_session_ctx *all[] = {tls->client, tls->peer_server, tls->peer_client};
  for (size_t i = 0; !rc && i < sizeof all / sizeof all[0]; i++)
    if (all[i]) rc = tls_session_ctx_ciphers(all[i], cfg->cipher_suites, err, errlen);
  if (rc) tls_free(tls);
  return rc;
}

int server_start(server *s, const config *cfg, uv_loop_t *loop, char *err, size_t errlen) {
  server_tls tls = {0};
  int rc = tls_load(cfg, &tls, err, errlen);
  if (rc) return rc;
  rc = start(s, cfg, loop, &tls, err, errlen);
  if (rc) {
    tls_free(&tls); /* (the HTTP server's, if it got it, is NULL here) */
    free(s->initial);
    s->initial = NULL;
    return rc;
  }
  s->peer_tls_server = tls.peer_server; /* the server's from now on */
  s->peer_tls_client = tls.peer_client;
  return 0;
}

/* --listen-metrics-urls: a server of its own on the main loop, answering /metrics and /health
 * only, as etcd's. Plain HTTP only (the client certificate settings are for the API). */
static int metrics_open(server *s, http_limits lim, char *err, size_t errlen) {
  const config_urls *u = &s->cfg->listen_metrics; /* http:// only (config.c checks) */
  if (!u->n) return 0;
  int rc = http_server_new(&s->metrics_http, s->loop, lim, NULL, routes_metrics_dispatch,
                           &s->shards[0]);
  if (rc) {
    snprintf(err, errlen, "cannot serve metrics: %s", strerror(-rc));
    return rc;
  }
  for (size_t i = 0; i < u->n; i++)
    if ((rc = http_server_listen(s->metrics_http, u->url[i], err, errlen))) return rc;
  return 0;
}

static int start(server *s, const config *cfg, uv_loop_t *loop, server_tls *tls, char *err,
                 size_t errlen) {
  memset(s, 0, sizeof *s);
  s->cfg = cfg;
  s->loop = loop;
  s->stats.start_time_ns = server_now_ns();
  const char *hooks = getenv("QUORUMD_TEST_HOOKS");
  s->test_hooks = hooks && !strcmp(hooks, "1");
  /* --discovery, --discovery-srv: the first members come from the discovery service or DNS
   * (a new member only; one that has its data dir already knows its cluster). */
  char *initial = NULL;
  /* Every address we will listen on is free, before the discovery service hears of us or the
   * data dir is created (etcd binds its listeners first and leaves nothing behind). */
  int rc = listen_check(&cfg->listen_peer, err, errlen);
  if (!rc) rc = listen_check(&cfg->listen_client, err, errlen);
  if (!rc) rc = listen_check(&cfg->listen_metrics, err, errlen);
  if (rc) return rc;
  if (cfg->discovery || cfg->discovery_srv) {
    sbuf self = {0};
    for (size_t i = 0; i < cfg->advertise_peer.n; i++) { /* "name=url,name=url2" */
      if (i) sbuf_putc(&self, ',');
      sbuf_puts(&self, cfg->name);
      sbuf_putc(&self, '=');
      sbuf_puts(&self, cfg->advertise_peer.url[i]);
    }
    sbuf_putc(&self, 0);
    char urls[4096];
    join_urls(&cfg->advertise_peer, urls, sizeof urls);
    char seed[8192];
    snprintf(seed, sizeof seed, "%s|%s", urls, cfg->initial_cluster_token);
    if (datadir_exists(cfg->data_dir)) {
      initial = self.p ? strdup(self.p) : NULL;
      rc = initial ? 0 : -ENOMEM;
    } else if (cfg->discovery) {
      rc = discovery_join(cfg->discovery, cfg->discovery_proxy, datadir_hash(seed, 0),
                          self.p ? self.p : "", &initial, err, errlen);
      if (rc == -EUSERS) { /* full: the caller may become a proxy of this cluster */
        s->fallback_cluster = initial;
        initial = NULL;
      }
    } else {
      rc = discovery_srv(cfg->discovery_srv, cfg->discovery_srv_name, cfg->name,
                         (const char *const *)cfg->advertise_peer.url, cfg->advertise_peer.n,
                         &initial, err, errlen);
    }
    sbuf_free(&self);
    if (rc) return rc;
  }
  const char *cluster_text = initial ? initial : cfg->initial_cluster;
  rc = parse_initial(s, cfg, cluster_text, err, errlen);
  const node_member *me = NULL;
  for (size_t i = 0; !rc && i < s->n_initial; i++)
    if (!strcmp(s->initial[i].name, cfg->name)) me = &s->initial[i];
  if (!rc && !me) {
    snprintf(err, errlen, "couldn't find local name \"%s\" in the initial cluster configuration",
             cfg->name);
    rc = -EINVAL;
  }
  /* a member's first start: its cluster as etcd checks it (a restart keeps what it has) */
  if (!rc && !datadir_exists(cfg->data_dir))
    rc = bootstrap_check(cluster_text ? cluster_text : "", s->initial, s->n_initial, me,
                         &cfg->advertise_peer,
                         !cfg->initial_cluster_state || !strcmp(cfg->initial_cluster_state, "new"),
                         err, errlen);
  if (!rc && !datadir_exists(cfg->data_dir) && !cfg->discovery && !cfg->discovery_srv &&
      cfg->initial_cluster_state && !strcmp(cfg->initial_cluster_state, "existing"))
    rc = join_check(cfg, s->initial, s->n_initial, me, err, errlen);
  free(initial);
  if (rc) return rc;
  /* The cluster id comes from the token alone, so a member joining a running cluster (whose
   * --initial-cluster lists the members of today, not those of the first day) derives the
   * same one; members are still told apart by their ids (peer URLs and token). */
  const char *cseed = "quorumd-cluster";
  datadir dd;
  rc = datadir_open(&dd, cfg->data_dir, cfg->wal_dir, cfg->name, me->peer_urls, me->id, cseed,
                    cfg->initial_cluster_token, err, errlen);
  if (rc) return rc;
  s->member_id = dd.member_id;
  s->cluster_id = dd.cluster_id;
  /* etcd's types.ID.String(): hex without leading zeros, everywhere an id is shown */
  snprintf(s->id_hex, sizeof s->id_hex, "%" PRIx64, s->member_id);
  snprintf(s->cluster_hex, sizeof s->cluster_hex, "%" PRIx64, s->cluster_id);
  s->self = *me;
  s->self.id = s->member_id;
  join_urls(&cfg->advertise_client, s->self.client_urls, sizeof s->self.client_urls);
  if ((rc = store_open(&s->st, dd.tree_path, !cfg->unsafe_no_fsync, &s->stats, err, errlen))) return rc;
  if ((rc = auth_db_open(&s->auth, s->st))) {
    snprintf(err, errlen, "cannot load the auth state: %s", strerror(-rc));
    store_close(s->st);
    return rc;
  }
  char listen_peer[1024] = "";
  /* Every member listens for peers, a lone one too (as etcd): it can be grown to a cluster
   * with POST /v2/members. */
  join_urls(&cfg->listen_peer, listen_peer, sizeof listen_peer);
  /* (recorded after the tree opened and undone when the log does not: a data dir refused
   * is left as it was) */
  uint64_t request_base, request_prev;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  if ((rc = datadir_request_base(cfg->data_dir,
                                 (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000,
                                 &request_base, &request_prev, err, errlen))) {
    store_close(s->st);
    auth_db_close(s->auth);
    s->auth = NULL;
    return rc;
  }
  const char *die = getenv("QUORUMD_TEST_DIE_AFTER_SNAPSHOT_INSTALL");
  const char *batch = getenv("QUORUMD_TEST_INSTALL_BATCH"); /* bytes per install batch */
  if (s->test_hooks && die && !strcmp(die, "mid")) /* killed halfway through the store's batches */
    store_set_install_hook(s->st, 16 << 10, die_mid_install, NULL);
  else if (s->test_hooks && batch && atoi(batch) > 0)
    store_set_install_hook(s->st, (size_t)atoi(batch), NULL, NULL);
  node_config nc = {.die_after_snapshot_install = s->test_hooks && die && !strcmp(die, "1"),
                    .id = s->member_id,
                    .cluster_id = s->cluster_id,
                    .log_path = dd.log_path,
                    .snapshot_dir = cfg->data_dir,
                    .old_log_path = dd.old_log_path,
                    .create = dd.created,
                    .sync = !cfg->unsafe_no_fsync,
                    .keep = cfg->snapshot_count < 10000 ? cfg->snapshot_count : 10000,
                    .snapshot_count = cfg->snapshot_count,
                    .heartbeat_ms = (unsigned)cfg->heartbeat_ms,
                    .election_ms = (unsigned)cfg->election_ms,
                    .initial = s->initial,
                    .n_initial = s->n_initial,
                    .join_existing = !strcmp(cfg->initial_cluster_state, "existing"),
                    .force_new_cluster = cfg->force_new_cluster,
                    .peer_listen = listen_peer[0] ? listen_peer : NULL,
                    .peer_tls_server = tls->peer_server,
                    .peer_tls_client = tls->peer_client,
                    .self = &s->self,
                    .auth = s->auth,
                    .log_level = log_level_of(cfg->log_level),
                    .request_base = request_base};
  unsigned loops = cfg->http_loops ? (unsigned)cfg->http_loops : server_default_loops();
  if ((rc = server_shards_init(s, loops, err, errlen)) ||
      (rc = node_start(&s->node, loop, s->st, &s->stats, &nc, server_shards_sink, s, err,
                       errlen))) {
    server_shards_stop(s);
    server_shards_free(s);
    uv_run(loop, UV_RUN_NOWAIT); /* close callbacks */
    store_close(s->st);
    auth_db_close(s->auth);
    s->auth = NULL;
    datadir_request_restore(cfg->data_dir, request_prev);
    return rc;
  }
  http_limits lim = {.max_header_bytes = 1 << 20, .max_url_bytes = HTTP_MAX_URL_BYTES,
                     .max_body_bytes = 10u << 20};
  if (cfg->max_request_bytes + (64u << 10) > lim.max_body_bytes)
    lim.max_body_bytes = cfg->max_request_bytes + (64u << 10);
  rc = server_shards_open(s, lim, tls->client, err, errlen);
  tls->client = NULL; /* the HTTP server's now */
  if (rc) {
    server_stop(s);
    return rc;
  }
  if ((rc = metrics_open(s, lim, err, errlen))) {
    server_stop(s);
    return rc;
  }
  uv_timer_init(loop, &s->ttl_timer);
  s->ttl_timer.data = s;
  uv_timer_start(&s->ttl_timer, on_ttl_timer, SYNC_INTERVAL_MS, SYNC_INTERVAL_MS);
  uv_timer_init(loop, &s->ready_notify);
  s->ready_notify.data = s;
  if (getenv("NOTIFY_SOCKET")) uv_timer_start(&s->ready_notify, on_ready_notify, 0, 10); /* (systemd) */
  uv_signal_init(loop, &s->sigint);
  uv_signal_init(loop, &s->sigterm);
  s->sigint.data = s->sigterm.data = s;
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  return 0;
}

void server_stop(server *s) {
  if (s->metrics_http) http_server_close(s->metrics_http);
  s->metrics_http = NULL;
  server_shards_stop(s);
  if (uv_is_active((uv_handle_t *)&s->ttl_timer) || s->ttl_timer.data) {
    uv_close((uv_handle_t *)&s->ttl_timer, NULL);
    uv_close((uv_handle_t *)&s->ready_notify, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
  }
  /* Connections are gone, so outcomes still coming find orphaned requests. */
  node_stop(s->node);
  s->node = NULL;
  server_shards_free(s);
  uv_run(s->loop, UV_RUN_NOWAIT); /* let close callbacks run */
  store_close(s->st);
  s->st = NULL;
  auth_db_close(s->auth);
  s->auth = NULL;
  free(s->initial);
  s->initial = NULL;
  tls_session_ctx_free(s->peer_tls_server); /* after node_stop: the transport is gone */
  tls_session_ctx_free(s->peer_tls_client);
  s->peer_tls_server = s->peer_tls_client = NULL;
}
