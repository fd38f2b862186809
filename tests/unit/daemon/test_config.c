/* Unit tests of daemon/config.c: etcd 3.4 flag spellings, ETCD_* variables, defaults, checks,
 * and that config_free releases everything (run under ASan to see leaks). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "daemon/config.h"

/* Builds a NULL-terminated argv with "quorumd" as argv[0]. */
#define ARGV(...) ((char *[]){"quorumd", __VA_ARGS__, NULL})
#define ENVP(...) ((char *[]){__VA_ARGS__, NULL})

static char *no_env[] = {NULL};

static int count(char **v) {
  int n = 0;
  while (v[n]) {
    n++;
  }
  return n;
}

/* Parses argv/envp into cfg, leaving the message in err. */
static int parse(config *cfg, char **argv, char **envp, char *err, size_t errlen) {
  return config_parse(cfg, count(argv), argv, envp, err, errlen);
}

/* Parses argv with no environment, expecting success. */
static void parse_ok(config *cfg, char **argv) {
  char err[256] = "";
  int rc = parse(cfg, argv, no_env, err, sizeof err);
  if (rc != 0) {
    print_error("unexpected failure: %s\n", err);
  }
  assert_int_equal(rc, 0);
}

/* Parses argv (and envp), expecting -EINVAL with a message containing each of want1/want2. */
static void parse_fails(char **argv, char **envp, const char *want1, const char *want2) {
  config cfg;
  char err[256] = "";
  int rc = parse(&cfg, argv, envp ? envp : no_env, err, sizeof err);
  config_free(&cfg);
  if (rc != -EINVAL || !strstr(err, want1) || (want2 && !strstr(err, want2))) {
    print_error("rc=%d err=\"%s\" want \"%s\" \"%s\"\n", rc, err, want1, want2 ? want2 : "");
  }
  assert_int_equal(rc, -EINVAL);
  assert_non_null(strstr(err, want1));
  if (want2) {
    assert_non_null(strstr(err, want2));
  }
}

/* All four spellings (-f v, -f=v, --f v, --f=v) set the flag. */
static void test_every_spelling(void **state) {
  (void)state;
  char **forms[] = {
      ARGV("-name", "n1"),
      ARGV("-name=n1"),
      ARGV("--name", "n1"),
      ARGV("--name=n1"),
  };
  for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
    config cfg;
    parse_ok(&cfg, forms[i]);
    assert_string_equal(cfg.name, "n1");
    config_free(&cfg);
  }
  config cfg;
  parse_ok(&cfg, ARGV("-snapshot-count", "7", "--heartbeat-interval=10", "-election-timeout=50",
                      "--max-request-bytes", "0x100", "--data-dir=/tmp/d", "--cors", "http://a.b:80",
                      "-log-level", "debug", "--initial-cluster-token=tok"));
  assert_int_equal(cfg.snapshot_count, 7);
  assert_int_equal(cfg.heartbeat_ms, 10);
  assert_int_equal(cfg.election_ms, 50);
  assert_int_equal(cfg.max_request_bytes, 256);
  assert_string_equal(cfg.data_dir, "/tmp/d");
  assert_string_equal(cfg.cors, "http://a.b:80");
  assert_string_equal(cfg.log_level, "debug");
  assert_string_equal(cfg.initial_cluster_token, "tok");
  config_free(&cfg);
}

/* A non-boolean flag's value is the next argument even if it starts with '-' (as in Go). */
static void test_value_may_start_with_dash(void **state) {
  (void)state;
  config cfg;
  parse_ok(&cfg, ARGV("--name", "-odd", "--initial-cluster=a=http://x:1"));
  assert_string_equal(cfg.name, "-odd");
  assert_string_equal(cfg.initial_cluster, "a=http://x:1");
  config_free(&cfg);
}

/* ETCD_* variables apply below the command line: the flag wins, unset flags take the variable. */
static void test_env_below_flag(void **state) {
  (void)state;
  config cfg;
  char err[256] = "";
  char **envp = ENVP("PATH=/bin", "ETCD_NAME=from-env", "ETCD_DATA_DIR=/env/dir",
                     "ETCD_SNAPSHOT_COUNT=5", "ETCD_UNSAFE_NO_FSYNC=true",
                     "ETCD_LISTEN_PEER_URLS=http://10.0.0.1:2380,http://10.0.0.2:2380",
                     "ETCD_INITIAL_CLUSTER_STATE=existing", "ETCD_HEARTBEAT_INTERVAL=");
  assert_int_equal(parse(&cfg, ARGV("--name", "from-flag", "--snapshot-count=9"), envp, err,
                         sizeof err),
                   0);
  assert_string_equal(cfg.name, "from-flag");
  assert_int_equal(cfg.snapshot_count, 9);
  assert_string_equal(cfg.data_dir, "/env/dir");
  assert_int_equal(cfg.unsafe_no_fsync, 1);
  assert_int_equal(cfg.listen_peer.n, 2);
  assert_string_equal(cfg.listen_peer.url[1], "http://10.0.0.2:2380");
  assert_string_equal(cfg.initial_cluster_state, "existing");
  assert_int_equal(cfg.heartbeat_ms, 100); /* empty variables are skipped, as etcd does */
  /* what etcd's pkg/flags logs of them, in the environment's order */
  assert_string_equal(cfg.env_notes,
                      "warning: recognized environment variable ETCD_NAME, but unused: shadowed "
                      "by corresponding flag\n"
                      "recognized and used environment variable ETCD_DATA_DIR=/env/dir\n"
                      "warning: recognized environment variable ETCD_SNAPSHOT_COUNT, but unused: "
                      "shadowed by corresponding flag\n"
                      "recognized and used environment variable ETCD_UNSAFE_NO_FSYNC=true\n"
                      "recognized and used environment variable "
                      "ETCD_LISTEN_PEER_URLS=http://10.0.0.1:2380,http://10.0.0.2:2380\n"
                      "recognized and used environment variable ETCD_INITIAL_CLUSTER_STATE=existing\n"
                      "warning: unrecognized environment variable ETCD_HEARTBEAT_INTERVAL=\n");
  config_free(&cfg);

  /* A bad variable shadowed by a flag is never looked at. */
  assert_int_equal(parse(&cfg, ARGV("--snapshot-count=3"), ENVP("ETCD_SNAPSHOT_COUNT=lots"), err,
                         sizeof err),
                   0);
  assert_int_equal(cfg.snapshot_count, 3);
  config_free(&cfg);
}

/* Unknown ETCD_* variables, non-ETCD variables and ETCD_VERSION are ignored (the unknown ones
 * with a warning). */
static void test_env_unknown_ignored(void **state) {
  (void)state;
  config cfg;
  char err[256] = "";
  assert_int_equal(parse(&cfg, ARGV("--name=x"),
                         ENVP("ETCD_NO_SUCH_FLAG=1", "ETCD_VERSION=3.4.13", "ETCD_name=lower",
                              "NAME=plain", "ETCD_"),
                         err, sizeof err),
                   0);
  assert_string_equal(cfg.name, "x");
  assert_int_equal(cfg.show_version, 0);
  /* with a warning, as etcd gives (not for ETCD_VERSION, which images set) */
  assert_string_equal(cfg.env_notes,
                      "warning: unrecognized environment variable ETCD_NO_SUCH_FLAG=1\n"
                      "warning: unrecognized environment variable ETCD_name=lower\n");
  config_free(&cfg);
  /* NULL envp is an empty environment. */
  assert_int_equal(config_parse(&cfg, 2, ARGV("--name=x"), NULL, err, sizeof err), 0);
  assert_string_equal(cfg.name, "x");
  assert_null(cfg.env_notes);
  config_free(&cfg);
}

/* A bad value in a variable is an error naming the variable and the value. */
static void test_env_bad_value(void **state) {
  (void)state;
  parse_fails(ARGV("--name=x"), ENVP("ETCD_HEARTBEAT_INTERVAL=fast"), "ETCD_HEARTBEAT_INTERVAL",
              "fast");
  parse_fails(ARGV("--name=x"), ENVP("ETCD_UNSAFE_NO_FSYNC=yes"), "ETCD_UNSAFE_NO_FSYNC", "yes");
  parse_fails(ARGV("--name=x"), ENVP("ETCD_LISTEN_PEER_URLS=peer:2380"), "ETCD_LISTEN_PEER_URLS",
              "peer:2380");
}

/* When a flag is repeated, the last one wins (also for URL lists and booleans). */
static void test_last_repetition_wins(void **state) {
  (void)state;
  config cfg;
  parse_ok(&cfg, ARGV("--name", "a", "-name=b", "--snapshot-count=1", "--snapshot-count", "2",
                      "--listen-peer-urls", "http://h:1,http://h:2", "--listen-peer-urls=http://h:3",
                      "--unsafe-no-fsync", "--unsafe-no-fsync=false", "--initial-cluster-state",
                      "existing", "--initial-cluster-state=new"));
  assert_string_equal(cfg.name, "b");
  assert_int_equal(cfg.snapshot_count, 2);
  assert_int_equal(cfg.listen_peer.n, 1);
  assert_string_equal(cfg.listen_peer.url[0], "http://h:3");
  assert_int_equal(cfg.unsafe_no_fsync, 0);
  assert_string_equal(cfg.initial_cluster_state, "new");
  config_free(&cfg);
}

/* With no arguments every field takes etcd's default (data dir and cluster from the name). */
static void test_defaults(void **state) {
  (void)state;
  config cfg;
  char *argv[] = {"quorumd", NULL};
  parse_ok(&cfg, argv);
  assert_string_equal(cfg.name, "default");
  assert_string_equal(cfg.data_dir, "default.quorumd");
  assert_int_equal(cfg.listen_client.n, 1);
  assert_string_equal(cfg.listen_client.url[0], "http://localhost:2379");
  assert_int_equal(cfg.advertise_client.n, 1);
  assert_string_equal(cfg.advertise_client.url[0], "http://localhost:2379");
  assert_int_equal(cfg.listen_peer.n, 1);
  assert_string_equal(cfg.listen_peer.url[0], "http://localhost:2380");
  assert_int_equal(cfg.advertise_peer.n, 1);
  assert_string_equal(cfg.advertise_peer.url[0], "http://localhost:2380");
  assert_string_equal(cfg.initial_cluster, "default=http://localhost:2380");
  assert_string_equal(cfg.initial_cluster_state, "new");
  assert_string_equal(cfg.initial_cluster_token, "etcd-cluster");
  assert_int_equal(cfg.snapshot_count, 100000);
  assert_int_equal(cfg.heartbeat_ms, 100);
  assert_int_equal(cfg.election_ms, 1000);
  assert_int_equal(cfg.max_request_bytes, 1572864);
  assert_string_equal(cfg.cors, "*");
  assert_string_equal(cfg.log_level, "info");
  assert_int_equal(cfg.unsafe_no_fsync, 0);
  assert_int_equal(cfg.show_version, 0);
  assert_int_equal(cfg.show_help, 0);
  config_free(&cfg);
}

/* The data dir comes from --name and the initial cluster from --name and the first peer URL. */
static void test_defaults_from_name_and_peer_url(void **state) {
  (void)state;
  config cfg;
  parse_ok(&cfg, ARGV("--name", "n1", "--initial-advertise-peer-urls",
                      "http://10.0.0.1:2380,http://10.0.0.2:2381"));
  assert_string_equal(cfg.data_dir, "n1.quorumd");
  assert_string_equal(cfg.initial_cluster, "n1=http://10.0.0.1:2380");
  config_free(&cfg);
  /* Given explicitly, neither is derived; empty ones count as not given, like etcd. */
  parse_ok(&cfg, ARGV("--name=n2", "--data-dir=", "--initial-cluster", "a=http://a:1,b=http://b:1"));
  assert_string_equal(cfg.data_dir, "n2.quorumd");
  assert_string_equal(cfg.initial_cluster, "a=http://a:1,b=http://b:1");
  config_free(&cfg);
  /* --snapshot-count 0 means the default (etcdserver does the same). */
  parse_ok(&cfg, ARGV("--snapshot-count=0"));
  assert_int_equal(cfg.snapshot_count, 100000);
  config_free(&cfg);
}

/* An unknown flag is an error whose message names the flag as it was written. */
static void test_unknown_flag(void **state) {
  (void)state;
  parse_fails(ARGV("--name=x", "--foo"), NULL, "unknown flag: --foo", NULL);
  parse_fails(ARGV("-bar=1"), NULL, "unknown flag: -bar", NULL);
  parse_fails(ARGV("--nam", "x"), NULL, "--nam", NULL);
  parse_fails(ARGV("---name=x"), NULL, "---name", NULL);
  parse_fails(ARGV("--=x"), NULL, "--=x", NULL);
}

/* A flag that needs a value but is last is an error naming the flag. */
static void test_missing_value(void **state) {
  (void)state;
  parse_fails(ARGV("--name"), NULL, "--name", NULL);
  parse_fails(ARGV("--unsafe-no-fsync", "-data-dir"), NULL, "--data-dir", NULL);
  parse_fails(ARGV("--wal-dir"), NULL, "--wal-dir", NULL);
}

/* A non-numeric, signed, overflowing or partly numeric value of a number flag is an error naming
 * the flag and the value. */
static void test_bad_number(void **state) {
  (void)state;
  parse_fails(ARGV("--snapshot-count", "many"), NULL, "--snapshot-count", "\"many\"");
  parse_fails(ARGV("--heartbeat-interval=12x"), NULL, "--heartbeat-interval", "12x");
  parse_fails(ARGV("--election-timeout=-5"), NULL, "--election-timeout", "-5");
  parse_fails(ARGV("--election-timeout= 5"), NULL, "--election-timeout", " 5");
  parse_fails(ARGV("--max-request-bytes="), NULL, "--max-request-bytes", "\"\"");
  parse_fails(ARGV("--snapshot-count=99999999999999999999999"), NULL, "--snapshot-count",
              "out of range");
}

/* The timer checks of etcd's Config.Validate are applied. */
static void test_timer_checks(void **state) {
  (void)state;
  parse_fails(ARGV("--heartbeat-interval=0"), NULL, "--heartbeat-interval", NULL);
  parse_fails(ARGV("--election-timeout=0"), NULL, "--election-timeout", NULL);
  parse_fails(ARGV("--heartbeat-interval=100", "--election-timeout=499"), NULL,
              "--election-timeout[499ms]", "--heartbeat-interval[100ms]");
  parse_fails(ARGV("--election-timeout=50001"), NULL, "--election-timeout[50001ms]", NULL);
  parse_fails(ARGV("--heartbeat-interval=18446744073709551615"), NULL, "--election-timeout", NULL);
  config cfg;
  parse_ok(&cfg, ARGV("--heartbeat-interval=100", "--election-timeout=500"));
  config_free(&cfg);
}

/* --http-loops (quorumd's own): 0 (one per two CPUs) by default, set by flag or ETCD_HTTP_LOOPS,
 * at most 8. */
static void test_http_loops(void **state) {
  (void)state;
  config cfg;
  char err[256] = "";
  parse_ok(&cfg, ARGV("--name", "n"));
  assert_int_equal(cfg.http_loops, 0);
  config_free(&cfg);
  parse_ok(&cfg, ARGV("--http-loops", "8"));
  assert_int_equal(cfg.http_loops, 8);
  config_free(&cfg);
  assert_int_equal(parse(&cfg, ARGV("--name", "n"), ENVP("ETCD_HTTP_LOOPS=3"), err, sizeof err), 0);
  assert_int_equal(cfg.http_loops, 3);
  config_free(&cfg);
  parse_fails(ARGV("--http-loops=9"), NULL, "--http-loops must be at most 8 (set to 9)", NULL);
  parse_fails(ARGV("--http-loops=-1"), NULL, "--http-loops", "-1");
}

/* --initial-cluster-state takes only new or existing. */
static void test_bad_cluster_state(void **state) {
  (void)state;
  parse_fails(ARGV("--initial-cluster-state=old"), NULL, "--initial-cluster-state", "\"old\"");
  parse_fails(ARGV("--initial-cluster-state", "NEW"), NULL, "\"NEW\"", "must be new or existing");
  parse_fails(ARGV("--log-level=loud"), NULL, "--log-level", "loud");
  config cfg;
  parse_ok(&cfg, ARGV("--initial-cluster-state", "existing"));
  assert_string_equal(cfg.initial_cluster_state, "existing");
  config_free(&cfg);
}

/* Each URL must be http(s)://host:port without a path; the message names the URL and flag. */
static void test_bad_url(void **state) {
  (void)state;
  parse_fails(ARGV("--listen-peer-urls=ftp://a:1"), NULL, "ftp://a:1", "--listen-peer-urls");
  parse_fails(ARGV("--initial-advertise-peer-urls", "localhost:2380"), NULL, "localhost:2380",
              "--initial-advertise-peer-urls");
  parse_fails(ARGV("--listen-client-urls=http://a:1,b:2", "--advertise-client-urls=http://a:1"),
              NULL, "\"b:2\"", "--listen-client-urls");
  parse_fails(ARGV("--advertise-client-urls=http://host"), NULL, "http://host", "host:port");
  parse_fails(ARGV("--advertise-client-urls=http://host:2379/v2"), NULL, "http://host:2379/v2",
              "path");
  parse_fails(ARGV("--advertise-client-urls=http://host:99999"), NULL, "http://host:99999", NULL);
  parse_fails(ARGV("--advertise-client-urls=http://::1:2379"), NULL, "http://::1:2379", NULL);
  parse_fails(ARGV("--advertise-client-urls=http://a:1,"), NULL, "--advertise-client-urls",
              "empty");
  parse_fails(ARGV("--advertise-client-urls="), NULL, "--advertise-client-urls", "empty");
}

/* URL lists are split on commas, trimmed, deduplicated, and may use https and IPv6 hosts. */
static void test_url_lists(void **state) {
  (void)state;
  config cfg;
  parse_ok(&cfg, ARGV("--listen-client-urls", " http://127.0.0.1:2379 , https://[::1]:2379,"
                                              "http://127.0.0.1:2379,http://:4001",
                      "--advertise-client-urls", "http://127.0.0.1:2379", "--cert-file=c",
                      "--key-file=k"));
  assert_int_equal(cfg.listen_client.n, 3);
  assert_string_equal(cfg.listen_client.url[0], "http://127.0.0.1:2379");
  assert_string_equal(cfg.listen_client.url[1], "https://[::1]:2379");
  assert_string_equal(cfg.listen_client.url[2], "http://:4001");
  config_free(&cfg);
}

/* Like etcd, --listen-client-urls without --advertise-client-urls is an error. */
static void test_advertise_required(void **state) {
  (void)state;
  parse_fails(ARGV("--listen-client-urls=http://0.0.0.0:2379"), NULL, "--advertise-client-urls",
              NULL);
  parse_fails(ARGV("--name=x"), ENVP("ETCD_LISTEN_CLIENT_URLS=http://0.0.0.0:2379"),
              "--advertise-client-urls", NULL);
}

/* More than CONFIG_MAX_URLS distinct URLs is an error; exactly CONFIG_MAX_URLS is fine. */
static void test_too_many_urls(void **state) {
  (void)state;
  char list[CONFIG_MAX_URLS * 32 + 64];
  size_t used = 0;
  for (int i = 0; i < CONFIG_MAX_URLS; i++) {
    used += (size_t)snprintf(list + used, sizeof list - used, "%shttp://h:%d", i ? "," : "",
                             2000 + i);
  }
  config cfg;
  parse_ok(&cfg, ARGV("--listen-peer-urls", list));
  assert_int_equal(cfg.listen_peer.n, CONFIG_MAX_URLS);
  assert_string_equal(cfg.listen_peer.url[CONFIG_MAX_URLS - 1], "http://h:2015");
  config_free(&cfg);
  snprintf(list + used, sizeof list - used, ",http://h:9999");
  parse_fails(ARGV("--listen-peer-urls", list), NULL, "too many URLs", "--listen-peer-urls");
}

/* A boolean is set bare or by =value (Go's ParseBool spellings); it never takes the next
 * argument, so "--flag false" leaves "false" as a (rejected) positional argument. */
static void test_bool_forms(void **state) {
  (void)state;
  static const struct {
    const char *arg;
    int want;
  } cases[] = {
      {"--unsafe-no-fsync", 1},      {"-unsafe-no-fsync", 1},       {"--unsafe-no-fsync=true", 1},
      {"--unsafe-no-fsync=1", 1},    {"--unsafe-no-fsync=T", 1},    {"-unsafe-no-fsync=TRUE", 1},
      {"--unsafe-no-fsync=false", 0}, {"--unsafe-no-fsync=0", 0},   {"--unsafe-no-fsync=F", 0},
      {"-unsafe-no-fsync=False", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    config cfg;
    char *argv[] = {"quorumd", (char *)cases[i].arg, NULL};
    parse_ok(&cfg, argv);
    assert_int_equal(cfg.unsafe_no_fsync, cases[i].want);
    config_free(&cfg);
  }
  config cfg;
  parse_ok(&cfg, ARGV("--unsafe-no-fsync", "--name", "x"));
  assert_int_equal(cfg.unsafe_no_fsync, 1);
  assert_string_equal(cfg.name, "x");
  config_free(&cfg);
  parse_fails(ARGV("--unsafe-no-fsync", "false"), NULL, "unexpected argument", "false");
  parse_fails(ARGV("--unsafe-no-fsync=yes"), NULL, "--unsafe-no-fsync", "yes");
  parse_fails(ARGV("--enable-v2=maybe"), NULL, "--enable-v2", "maybe");
}

/* etcd 3.4 flags that quorumd does not act upon are accepted, take a value or not as in etcd,
 * and leave the settings alone. */
static void test_ignored_etcd_flags(void **state) {
  (void)state;
  config cfg;
  parse_ok(&cfg,
           ARGV("--max-snapshots=5", "--max-wals", "5",
                "--quota-backend-bytes=8589934592", "--backend-batch-limit", "10",
                "--backend-batch-interval=10ms", "--max-txn-ops", "128",
                "--grpc-keepalive-min-time=5s", "--grpc-keepalive-interval", "2h",
                "--grpc-keepalive-timeout=20s", "--enable-v2", "--discovery", "",
                "--discovery-fallback=proxy", "--discovery-proxy", "http://p:1",
                "--discovery-srv=", "--discovery-srv-name", "x", "--config-file=",
                "--strict-reconfig-check", "--auto-compaction-retention=1",
                "--auto-compaction-mode", "periodic", "--enable-pprof", "--logger=zap",
                "--log-outputs", "stderr", "--log-package-levels=etcdmain=DEBUG", "--debug",
                "--metrics", "extensive",
                "--auto-tls=false", "--peer-auto-tls=false", "--peer-client-cert-auth=false",
                "--peer-cert-file=", "--client-crl-file", "", "--cipher-suites=",
                "--experimental-initial-corrupt-check", "--experimental-corrupt-check-time=1m",
                "--experimental-enable-v2v3", "/v2/", "--experimental-backend-bbolt-freelist-type=map",
                "--experimental-enable-lease-checkpoint", "--experimental-compaction-batch-limit",
                "1000", "--experimental-peer-skip-client-san-verification",
                "--experimental-watch-progress-notify-interval=10m", "--force-new-cluster=false",
                "--proxy", "off", "--proxy-failure-wait=5000", "--proxy-refresh-interval", "30000",
                "--proxy-dial-timeout=1000", "--proxy-write-timeout", "5000",
                "--proxy-read-timeout=0", "--auth-token", "simple", "--bcrypt-cost=10",
                "--pre-vote", "--enable-grpc-gateway=false",
                "--socket-reuse-port", "--socket-reuse-address", "--initial-election-tick-advance",
                "--max-concurrent-streams", "4294967295", "-v", "--name", "kept"));
  assert_string_equal(cfg.name, "kept");
  assert_string_equal(cfg.data_dir, "kept.quorumd");
  assert_int_equal(cfg.unsafe_no_fsync, 0);
  assert_int_equal(cfg.snapshot_count, 100000);
  config_free(&cfg);
  /* An ignored flag that takes a value consumes the next argument, even a flag-looking one. */
  parse_ok(&cfg, ARGV("--max-wals", "--name", "--max-snapshots=5"));
  assert_string_equal(cfg.name, "default");
  config_free(&cfg);
  /* Ignored flags can come from the environment too. */
  char err[256] = "";
  assert_int_equal(parse(&cfg, ARGV("--name=x"), ENVP("ETCD_ENABLE_V2=true", "ETCD_MAX_WALS=5"),
                         err, sizeof err),
                   0);
  config_free(&cfg);
}

/* Client and peer TLS: the files are kept; an https:// URL needs them or auto TLS (etcd's
 * message); what is not implemented (CRLs, allowed names, cipher names) is refused when set. */
static void test_tls_flags(void **state) {
  (void)state;
  config cfg;
  parse_ok(&cfg, ARGV("--listen-client-urls", "https://127.0.0.1:4001", "--advertise-client-urls",
                      "https://127.0.0.1:4001", "--cert-file=c.pem", "--key-file", "k.pem",
                      "--trusted-ca-file", "ca.pem", "--client-cert-auth"));
  assert_string_equal(cfg.cert_file, "c.pem");
  assert_string_equal(cfg.key_file, "k.pem");
  assert_string_equal(cfg.trusted_ca_file, "ca.pem");
  assert_int_equal(cfg.client_cert_auth, 1);
  config_free(&cfg);
  char err[256] = "";
  assert_int_equal(parse(&cfg, ARGV("--name=x"),
                         ENVP("ETCD_CERT_FILE=c2.pem", "ETCD_KEY_FILE=k2.pem",
                              "ETCD_CLIENT_CERT_AUTH=true", "ETCD_LISTEN_CLIENT_URLS=https://h:1",
                              "ETCD_ADVERTISE_CLIENT_URLS=https://h:1"),
                         err, sizeof err),
                   0);
  assert_string_equal(cfg.cert_file, "c2.pem");
  assert_int_equal(cfg.client_cert_auth, 1);
  config_free(&cfg);
  parse_fails(ARGV("--listen-client-urls", "https://127.0.0.1:4001", "--advertise-client-urls",
                   "https://127.0.0.1:4001", "--key-file", "k.pem"),
              NULL, "TLS key/cert (--cert-file, --key-file) must be provided for client url",
              "https://127.0.0.1:4001 with HTTPS scheme");
  parse_fails(ARGV("--client-cert-auth"), NULL, "--client-cert-auth needs TLS", NULL);
  /* Peer TLS: the same for https:// peer URLs of this member. */
  parse_ok(&cfg, ARGV("--listen-peer-urls=https://127.0.0.1:4002", "--initial-advertise-peer-urls",
                      "https://127.0.0.1:4002", "--peer-cert-file", "p.pem", "--peer-key-file=pk.pem",
                      "--peer-trusted-ca-file", "pca.pem", "--peer-client-cert-auth"));
  assert_string_equal(cfg.peer_cert_file, "p.pem");
  assert_string_equal(cfg.peer_key_file, "pk.pem");
  assert_string_equal(cfg.peer_trusted_ca_file, "pca.pem");
  assert_int_equal(cfg.peer_client_cert_auth, 1);
  config_free(&cfg);
  parse_fails(ARGV("--listen-peer-urls=https://127.0.0.1:4002"), NULL,
              "TLS key/cert (--peer-cert-file, --peer-key-file) must be provided for peer url",
              "https://127.0.0.1:4002 with HTTPS scheme");
  parse_fails(ARGV("--initial-advertise-peer-urls=https://127.0.0.1:4002", "--peer-cert-file=p"),
              NULL, "must be provided for peer url https://127.0.0.1:4002", NULL);
  parse_fails(ARGV("--peer-cert-file", "p.pem"), NULL, "--peer-cert-file and --peer-key-file",
              NULL);
  parse_fails(ARGV("--peer-client-cert-auth"), NULL, "--peer-client-cert-auth needs TLS", NULL);
  /* --auto-tls / --peer-auto-tls stand in for the files (a self-signed certificate). */
  parse_ok(&cfg, ARGV("--listen-client-urls", "https://127.0.0.1:4001", "--advertise-client-urls",
                      "https://127.0.0.1:4001", "--auto-tls", "--listen-peer-urls",
                      "https://127.0.0.1:4002", "--initial-advertise-peer-urls",
                      "https://127.0.0.1:4002", "--peer-auto-tls"));
  assert_int_equal(cfg.auto_tls, 1);
  assert_int_equal(cfg.peer_auto_tls, 1);
  config_free(&cfg);
  /* etcd's further TLS settings (checked when the TLS contexts are made: server.c) */
  parse_ok(&cfg, ARGV("--peer-crl-file=r", "--client-crl-file", "c.crl",
                      "--cipher-suites", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
                      "--client-cert-allowed-hostname", "h.example", "--peer-cert-allowed-hostname",
                      "m.example"));
  assert_string_equal(cfg.peer_crl_file, "r");
  assert_string_equal(cfg.client_crl_file, "c.crl");
  assert_string_equal(cfg.cipher_suites, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  assert_string_equal(cfg.client_cert_allowed_hostname, "h.example");
  assert_string_equal(cfg.peer_cert_allowed_hostname, "m.example");
  config_free(&cfg);
  assert_int_equal(parse(&cfg, ARGV("--name=x"), ENVP("ETCD_PEER_CERT_ALLOWED_CN=member"), err,
                         sizeof err),
                   0);
  assert_string_equal(cfg.peer_cert_allowed_cn, "member");
  config_free(&cfg);
}

/* etcd flags that change what the member is or where its settings come from are refused when
 * they ask for something quorumd does not do, rather than ignored: a member bootstrapped
 * alone, or started with defaults, where the operator asked for something else. */
static void test_unsupported_modes_refused(void **state) {
  (void)state;
  parse_fails(ARGV("--discovery-srv=example.com", "--discovery=http://d:1/v2/keys/x"), NULL,
              "multiple discovery or bootstrap flags", NULL);
  /* --discovery replaces --initial-cluster: both given is etcd's error. */
  parse_fails(ARGV("--discovery", "http://d:1/v2/keys/x", "--initial-cluster=a=http://a:1"),
              NULL, "multiple discovery or bootstrap flags", "\"initial-cluster\", \"discovery\"");
  parse_fails(ARGV("--name=x"), ENVP("ETCD_DISCOVERY=http://d:1/v2/keys/x", "ETCD_INITIAL_CLUSTER=x=http://a:1"),
              "multiple discovery or bootstrap flags", NULL);
  parse_fails(ARGV("--proxy", "both"), NULL, "invalid value \"both\" for --proxy", "off, on or readonly");
  config cfg;
  /* Proxy mode: its timers, and no --advertise-client-urls needed (a proxy advertises none). */
  parse_ok(&cfg, ARGV("--proxy", "readonly", "--listen-client-urls", "http://127.0.0.1:1",
                      "--proxy-failure-wait=100"));
  assert_string_equal(cfg.proxy, "readonly");
  assert_int_equal(cfg.proxy_failure_wait_ms, 100);
  assert_int_equal(cfg.proxy_refresh_ms, 30000);
  assert_int_equal(cfg.proxy_dial_timeout_ms, 1000);
  assert_int_equal(cfg.proxy_read_timeout_ms, 0);
  config_free(&cfg);
  parse_ok(&cfg, ARGV("--proxy=off", "--discovery=", "--force-new-cluster"));
  assert_string_equal(cfg.proxy, "off");
  assert_int_equal(cfg.force_new_cluster, 1);
  assert_null(cfg.wal_dir);
  assert_null(cfg.discovery);
  assert_non_null(cfg.initial_cluster);
  config_free(&cfg);
  /* With --discovery there is no default --initial-cluster: the service gives it. */
  char err[256] = "";
  assert_int_equal(parse(&cfg, ARGV("--name=n"), ENVP("ETCD_DISCOVERY=http://d:1/v2/keys/x"), err,
                         sizeof err), 0);
  assert_string_equal(cfg.discovery, "http://d:1/v2/keys/x");
  assert_null(cfg.initial_cluster);
  config_free(&cfg);
  parse_ok(&cfg, ARGV("--discovery-srv", "example.com", "--discovery-srv-name=c1"));
  assert_string_equal(cfg.discovery_srv, "example.com");
  assert_string_equal(cfg.discovery_srv_name, "c1");
  assert_null(cfg.initial_cluster);
  config_free(&cfg);
  parse_ok(&cfg, ARGV("--listen-metrics-urls=http://0.0.0.0:2381,http://127.0.0.1:2382"));
  assert_int_equal(cfg.listen_metrics.n, 2);
  assert_string_equal(cfg.listen_metrics.url[1], "http://127.0.0.1:2382");
  config_free(&cfg);
  parse_fails(ARGV("--listen-metrics-urls", "https://127.0.0.1:2381"), NULL,
              "--listen-metrics-urls https://127.0.0.1:2381", "only http://");
  parse_ok(&cfg, ARGV("--host-whitelist=a.example,127.0.0.1"));
  assert_string_equal(cfg.host_whitelist, "a.example,127.0.0.1");
  config_free(&cfg);
  parse_ok(&cfg, ARGV("--wal-dir", "/fast/wal"));
  assert_string_equal(cfg.wal_dir, "/fast/wal");
  config_free(&cfg);
  assert_int_equal(parse(&cfg, ARGV("--name=x"), ENVP("ETCD_WAL_DIR=/w2"), err, sizeof err), 0);
  assert_string_equal(cfg.wal_dir, "/w2");
  config_free(&cfg);
  parse_ok(&cfg, ARGV("--name=x"));
  assert_int_equal(cfg.force_new_cluster, 0);
  config_free(&cfg);
  parse_ok(&cfg, ARGV("--name=x", "--force-new-cluster=false"));
  assert_int_equal(cfg.force_new_cluster, 0);
  config_free(&cfg);
}

/* A non-flag argument is rejected, also after "--"; a lone "--" or "-" is handled as in Go. */
static void test_positional_rejected(void **state) {
  (void)state;
  parse_fails(ARGV("serve"), NULL, "unexpected argument", "serve");
  parse_fails(ARGV("--name=x", "extra", "--snapshot-count=1"), NULL, "extra", NULL);
  parse_fails(ARGV("--", "--name=x"), NULL, "unexpected argument", "--name=x");
  parse_fails(ARGV("-"), NULL, "unexpected argument", "\"-\"");
  config cfg;
  parse_ok(&cfg, ARGV("--name=x", "--"));
  assert_string_equal(cfg.name, "x");
  config_free(&cfg);
}

/* --version and --help/-h only set their fields; help stops parsing like Go's -h does. */
static void test_version_and_help(void **state) {
  (void)state;
  config cfg;
  parse_ok(&cfg, ARGV("--version"));
  assert_int_equal(cfg.show_version, 1);
  assert_int_equal(cfg.show_help, 0);
  config_free(&cfg);
  parse_ok(&cfg, ARGV("-h", "--no-such-flag"));
  assert_int_equal(cfg.show_help, 1);
  config_free(&cfg);
  parse_ok(&cfg, ARGV("--name=x", "--help"));
  assert_int_equal(cfg.show_help, 1);
  assert_string_equal(cfg.name, "x");
  config_free(&cfg);
  /* --version skips the environment, so a bad variable does not hide it. */
  char err[256] = "";
  assert_int_equal(parse(&cfg, ARGV("--version"), ENVP("ETCD_SNAPSHOT_COUNT=x"), err, sizeof err),
                   0);
  assert_int_equal(cfg.show_version, 1);
  config_free(&cfg);
}

/* The help text lists the flags acted upon with their defaults and mentions ETCD_* variables. */
static void test_usage(void **state) {
  (void)state;
  const char *u = config_usage();
  assert_non_null(u);
  static const char *const want[] = {
      "--name",           "--data-dir",           "--listen-client-urls",
      "--advertise-client-urls", "--listen-peer-urls", "--initial-advertise-peer-urls",
      "--initial-cluster", "--initial-cluster-state", "--initial-cluster-token",
      "--snapshot-count", "--heartbeat-interval", "--election-timeout",
      "--max-request-bytes", "--cors",             "--log-level",
      "--unsafe-no-fsync", "--version",            "--help",  "--http-loops", "--config-file",
      "ETCD_",            "100000",               "1572864",
      "http://localhost:2379", "http://localhost:2380", "etcd-cluster",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (!strstr(u, want[i])) {
      print_error("usage lacks %s\n", want[i]);
    }
    assert_non_null(strstr(u, want[i]));
  }
}

/* config_free after a failed parse releases what was stored before the failure (ASan checks),
 * and is safe on a zeroed config and twice in a row. */
/* --cors takes "*" or URLs with a port, as etcd's flag does; anything else is refused. */
static void test_cors_values(void **state) {
  (void)state;
  static char *const good[] = {"*", "", "http://a.b:80", "*,https://[::1]:8443,http://c:1"};
  static char *const bad[] = {"http://a.b", "a.b:80", "http://a.b:80/p", "ftp://a:1",
                                    "http://a:80,http://b"};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    config cfg;
    char err[256] = "";
    assert_int_equal(parse(&cfg, ARGV("--data-dir=/d", "--cors", good[i]), no_env, err, sizeof err), 0);
    config_free(&cfg);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    config cfg;
    char err[256] = "";
    assert_int_equal(parse(&cfg, ARGV("--data-dir=/d", "--cors", bad[i]), no_env, err, sizeof err),
                     -EINVAL);
    assert_non_null(strstr(err, "--cors"));
    config_free(&cfg);
  }
}

static void test_free_after_failure(void **state) {
  (void)state;
  config cfg;
  char err[256] = "";
  int rc = parse(&cfg,
                 ARGV("--name=n", "--data-dir=/d", "--initial-cluster=n=http://a:1", "--cors=http://x:1",
                      "--log-level=warn", "--initial-cluster-token=t",
                      "--initial-cluster-state=existing", "--listen-peer-urls=http://a:1,http://b:2",
                      "--initial-advertise-peer-urls=http://a:1", "--listen-client-urls=http://a:3",
                      "--advertise-client-urls=http://a:3,http://a:4",
                      "--listen-peer-urls=http://c:1,bad"),
                 no_env, err, sizeof err);
  assert_int_equal(rc, -EINVAL);
  assert_non_null(strstr(err, "bad"));
  config_free(&cfg);
  assert_null(cfg.name);
  assert_int_equal(cfg.listen_peer.n, 0);
  config_free(&cfg);

  rc = parse(&cfg, ARGV("--name=n", "--data-dir=/d"), ENVP("ETCD_LOG_LEVEL=bad"), err, sizeof err);
  assert_int_equal(rc, -EINVAL);
  config_free(&cfg);

  config zero;
  memset(&zero, 0, sizeof zero);
  config_free(&zero);
  config_free(NULL);
}

/* A NULL or zero-sized error buffer is allowed. */
static void test_no_error_buffer(void **state) {
  (void)state;
  config cfg;
  assert_int_equal(config_parse(&cfg, 2, ARGV("--foo"), no_env, NULL, 0), -EINVAL);
  config_free(&cfg);
  char one[1] = {'x'};
  assert_int_equal(config_parse(&cfg, 2, ARGV("--foo"), no_env, one, sizeof one), -EINVAL);
  assert_int_equal(one[0], '\0');
  config_free(&cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_every_spelling),
      cmocka_unit_test(test_value_may_start_with_dash),
      cmocka_unit_test(test_env_below_flag),
      cmocka_unit_test(test_http_loops),
      cmocka_unit_test(test_env_unknown_ignored),
      cmocka_unit_test(test_env_bad_value),
      cmocka_unit_test(test_last_repetition_wins),
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_defaults_from_name_and_peer_url),
      cmocka_unit_test(test_unknown_flag),
      cmocka_unit_test(test_missing_value),
      cmocka_unit_test(test_bad_number),
      cmocka_unit_test(test_timer_checks),
      cmocka_unit_test(test_bad_cluster_state),
      cmocka_unit_test(test_bad_url),
      cmocka_unit_test(test_url_lists),
      cmocka_unit_test(test_advertise_required),
      cmocka_unit_test(test_too_many_urls),
      cmocka_unit_test(test_bool_forms),
      cmocka_unit_test(test_ignored_etcd_flags),
      cmocka_unit_test(test_unsupported_modes_refused),
      cmocka_unit_test(test_tls_flags),
      cmocka_unit_test(test_positional_rejected),
      cmocka_unit_test(test_version_and_help),
      cmocka_unit_test(test_usage),
      cmocka_unit_test(test_cors_values),
      cmocka_unit_test(test_free_after_failure),
      cmocka_unit_test(test_no_error_buffer),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
