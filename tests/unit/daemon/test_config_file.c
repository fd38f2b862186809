/* Unit tests of daemon/config_file.c and config.c's file mode: etcd 3.4's YAML configuration
 * file (--config-file, ETCD_CONFIG_FILE), its YAML 1.1 typing, the TLS mappings, and the flags
 * and variables it makes ignored. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/config_file.h"

#define ARGV(...) ((char *[]){"quorumd", __VA_ARGS__, NULL})
#define ENVP(...) ((char *[]){__VA_ARGS__, NULL})

static char *no_env[] = {NULL};

static int count(char **v) {
  int n = 0;
  while (v[n]) n++;
  return n;
}

typedef struct dir {
  char path[64];
  char file[96];
} dir;

/* Writes text to a new temporary file; its path in d->file. */
static void write_file(dir *d, const char *text) {
  snprintf(d->path, sizeof d->path, "/tmp/quorum-unit-cfgfile-XXXXXX");
  assert_non_null(mkdtemp(d->path));
  snprintf(d->file, sizeof d->file, "%s/etcd.conf.yml", d->path);
  FILE *f = fopen(d->file, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

static void remove_dir(dir *d) {
  unlink(d->file);
  rmdir(d->path);
}

/* Parses `--config-file FILE` with text as the file, expecting success. */
static void file_ok(config *cfg, dir *d, const char *text) {
  write_file(d, text);
  char err[512] = "";
  char **argv = ARGV("--config-file", d->file);
  int rc = config_parse(cfg, count(argv), argv, no_env, err, sizeof err);
  if (rc) print_error("unexpected failure: %s\n", err);
  assert_int_equal(rc, 0);
}

/* The same, expecting -EINVAL with a message holding want1 (after "FILE" is replaced by the
 * file's path) and want2. */
static void file_fails(const char *text, const char *want1, const char *want2) {
  dir d;
  write_file(&d, text);
  char want[512];
  const char *at = strstr(want1, "FILE");
  if (at)
    snprintf(want, sizeof want, "%.*s%s%s", (int)(at - want1), want1, d.file, at + 4);
  else
    snprintf(want, sizeof want, "%s", want1);
  config cfg;
  char err[512] = "";
  char **argv = ARGV("--config-file", d.file);
  int rc = config_parse(&cfg, count(argv), argv, no_env, err, sizeof err);
  config_free(&cfg);
  remove_dir(&d);
  if (rc != -EINVAL || !strstr(err, want) || (want2 && !strstr(err, want2)))
    print_error("rc=%d err=\"%s\" want \"%s\" \"%s\"\n", rc, err, want, want2 ? want2 : "");
  assert_int_equal(rc, -EINVAL);
  assert_non_null(strstr(err, want));
  if (want2) assert_non_null(strstr(err, want2));
}

/* Every kind of setting, in the spellings YAML 1.1 (go-yaml v2, as etcd 3.4 reads it) allows. */
static void test_settings_and_yaml_types(void **state) {
  (void)state;
  config cfg;
  dir d;
  file_ok(&cfg, &d,
          "# etcd.conf.yml\n"
          "name: 'n1'\n"
          "data-dir: /var/lib/q\n"
          "snapshot-count: 0x10\n"
          "heartbeat-interval: +5_0\n"
          "election-timeout: 1e3\n"
          "max-request-bytes: 010\n"
          "strict-reconfig-check: off\n"
          "force-new-cluster: Yes\n"
          "initial-cluster-token: 12345\n"
          "initial-cluster-state: existing\n"
          "initial-cluster: \"n1=http://127.0.0.1:3,n2=http://127.0.0.1:4\"\n"
          "listen-client-urls: http://127.0.0.1:1,http://127.0.0.1:2\n"
          "advertise-client-urls: http://127.0.0.1:1\n"
          "initial-advertise-peer-urls: http://127.0.0.1:3\n"
          "log-outputs: [stderr]\n"
          "cipher-suites:\n"
          "  - TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n"
          "  - TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n"
          "enable-v2: true\n"
          "auto-compaction-retention: \"24\"\n"
          "grpc-keepalive-min-time: 5s\n"
          "client-transport-security:\n"
          "  cert-file: /c.pem\n"
          "  key-file: /k.pem\n"
          "  client-cert-auth: true\n"
          "  trusted-ca-file: /ca.pem\n"
          "peer-transport-security:\n"
          "  cert-file: /pc.pem\n"
          "  key-file: /pk.pem\n"
          "  auto-tls: y\n"
          "discovery:\n"
          "wal-dir: ~\n"
          "http-loops: 2\n"
          "client-crl-file: /crl.pem\n");
  assert_string_equal(cfg.config_file, d.file);
  assert_string_equal(cfg.name, "n1");
  assert_string_equal(cfg.data_dir, "/var/lib/q");
  assert_int_equal(cfg.snapshot_count, 16);
  assert_int_equal(cfg.heartbeat_ms, 50);
  assert_int_equal(cfg.election_ms, 1000);
  assert_int_equal(cfg.max_request_bytes, 8);
  assert_int_equal(cfg.strict_reconfig_check, 0);
  assert_int_equal(cfg.force_new_cluster, 1);
  assert_string_equal(cfg.initial_cluster_token, "12345");
  assert_string_equal(cfg.initial_cluster_state, "existing");
  assert_string_equal(cfg.initial_cluster, "n1=http://127.0.0.1:3,n2=http://127.0.0.1:4");
  assert_int_equal(cfg.listen_client.n, 2);
  assert_string_equal(cfg.listen_client.url[1], "http://127.0.0.1:2");
  assert_string_equal(cfg.advertise_peer.url[0], "http://127.0.0.1:3");
  assert_string_equal(cfg.listen_peer.url[0], "http://localhost:2380"); /* the default */
  assert_string_equal(cfg.log_outputs, "stderr");
  assert_string_equal(cfg.cipher_suites,
                      "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256");
  assert_string_equal(cfg.cert_file, "/c.pem");
  assert_string_equal(cfg.key_file, "/k.pem");
  assert_int_equal(cfg.client_cert_auth, 1);
  assert_string_equal(cfg.trusted_ca_file, "/ca.pem");
  assert_string_equal(cfg.peer_cert_file, "/pc.pem");
  assert_string_equal(cfg.peer_key_file, "/pk.pem");
  assert_int_equal(cfg.peer_auto_tls, 1);
  assert_int_equal(cfg.auto_tls, 0);
  assert_null(cfg.discovery);
  assert_null(cfg.wal_dir);
  assert_int_equal(cfg.http_loops, 2);
  assert_string_equal(cfg.client_crl_file, "/crl.pem"); /* (a flag etcd 3.4's file lacks) */
  assert_non_null(strstr(cfg.env_notes, "Loading server configuration from"));
  config_free(&cfg);
  remove_dir(&d);
}

/* A file with no settings gives etcd's defaults; a repeated key's last value wins; null keeps the
 * default; unknown keys, in the file and in its TLS mappings, are warned about and ignored. */
static void test_defaults_repeats_and_unknown_keys(void **state) {
  (void)state;
  config cfg;
  dir d;
  file_ok(&cfg, &d, "# nothing\n");
  assert_string_equal(cfg.name, "default");
  assert_string_equal(cfg.data_dir, "default.quorumd");
  assert_string_equal(cfg.listen_client.url[0], "http://localhost:2379");
  assert_string_equal(cfg.initial_cluster, "default=http://localhost:2380");
  assert_int_equal(cfg.heartbeat_ms, 100);
  config_free(&cfg);
  remove_dir(&d);

  file_ok(&cfg, &d,
          "name: a\n"
          "name: b\n"
          "snapshot-count:\n"
          "hearbeat-interval: 200\n"
          "version: true\n"
          "client-transport-security:\n"
          "  ca-file: /old.pem\n"
          "listen-client-urls: http://127.0.0.1:7\n");
  assert_string_equal(cfg.name, "b");
  assert_int_equal(cfg.snapshot_count, 100000);
  assert_int_equal(cfg.heartbeat_ms, 100);
  assert_int_equal(cfg.show_version, 0);
  /* (etcd's file mode has the default advertise URL, where its flags would need one) */
  assert_string_equal(cfg.advertise_client.url[0], "http://localhost:2379");
  char want[256];
  snprintf(want, sizeof want, "warning: %s, line 4: unknown key \"hearbeat-interval\", ignored",
           d.file);
  assert_non_null(strstr(cfg.env_notes, want));
  snprintf(want, sizeof want, "warning: %s, line 5: unknown key \"version\", ignored", d.file);
  assert_non_null(strstr(cfg.env_notes, want));
  snprintf(want, sizeof want,
           "warning: %s, line 7: unknown key \"client-transport-security.ca-file\", ignored",
           d.file);
  assert_non_null(strstr(cfg.env_notes, want));
  config_free(&cfg);
  remove_dir(&d);
}

/* With a file, the other flags and the ETCD_* variables are ignored (etcd 3.4), but a flag that
 * is no flag is still an error; ETCD_CONFIG_FILE names the file when the flag does not. */
static void test_flags_and_variables_are_ignored(void **state) {
  (void)state;
  dir d;
  write_file(&d, "name: from-file\n");
  config cfg;
  char err[512] = "";
  char **argv = ARGV("--name", "from-flag", "--config-file", d.file, "--snapshot-count=5");
  char **envp = ENVP("ETCD_HEARTBEAT_INTERVAL=7", "ETCD_DATA_DIR=/env");
  assert_int_equal(config_parse(&cfg, count(argv), argv, envp, err, sizeof err), 0);
  assert_string_equal(cfg.name, "from-file");
  assert_int_equal(cfg.snapshot_count, 100000);
  assert_int_equal(cfg.heartbeat_ms, 100);
  assert_string_equal(cfg.data_dir, "from-file.quorumd");
  assert_null(strstr(cfg.env_notes, "ETCD_HEARTBEAT_INTERVAL"));
  config_free(&cfg);

  char envfile[160];
  snprintf(envfile, sizeof envfile, "ETCD_CONFIG_FILE=%s", d.file);
  argv = ARGV("--name", "from-flag");
  envp = ENVP("ETCD_NAME=from-env", envfile);
  assert_int_equal(config_parse(&cfg, count(argv), argv, envp, err, sizeof err), 0);
  assert_string_equal(cfg.name, "from-file");
  assert_string_equal(cfg.config_file, d.file);
  config_free(&cfg);

  argv = ARGV("--config-file", d.file, "--no-such-flag");
  assert_int_equal(config_parse(&cfg, count(argv), argv, no_env, err, sizeof err), -EINVAL);
  assert_non_null(strstr(err, "unknown flag: --no-such-flag"));
  config_free(&cfg);

  /* An empty --config-file is none: the flags apply. */
  argv = ARGV("--config-file=", "--name", "from-flag");
  assert_int_equal(config_parse(&cfg, count(argv), argv, no_env, err, sizeof err), 0);
  assert_string_equal(cfg.name, "from-flag");
  config_free(&cfg);
  remove_dir(&d);
}

/* Values of the wrong type are refused as etcd refuses them, with the key, file and line. */
static void test_wrong_types_are_refused(void **state) {
  (void)state;
  file_fails("name: x\nheartbeat-interval: '200'\n",
             "heartbeat-interval in FILE, line 2: a non-negative integer is needed, not the "
             "string \"200\" (write it without quotes)", NULL);
  file_fails("snapshot-count: -1\n", "snapshot-count in FILE, line 1",
             "not the integer -1");
  file_fails("election-timeout: 1.5\n", "election-timeout in FILE, line 1",
             "not the number 1.5");
  file_fails("snapshot-count: 99999999999999999999\n", "snapshot-count in FILE, line 1",
             "a smaller integer is needed");
  file_fails("enable-v2: 'true'\n", "enable-v2 in FILE, line 1: true or false is needed, not the "
             "string \"true\" (write it without quotes)", NULL);
  file_fails("peer-transport-security:\n  client-cert-auth: 1\n",
             "peer-client-cert-auth in FILE, line 2: true or false is needed", "the integer 1");
  file_fails("listen-client-urls: [http://127.0.0.1:1, http://127.0.0.1:2]\n",
             "listen-client-urls in FILE, line 1: one value is needed, not the list "
             "http://127.0.0.1:1,http://127.0.0.1:2", "separated by commas");
  file_fails("name:\n  first: a\n", "FILE, line 1: name: a mapping where etcd takes a single value",
             NULL);
  file_fails("x: &v [1, 2]\nname: *v\n", "name in FILE, line 2: one value is needed", NULL);
  file_fails("log-outputs:\n  - {a: b}\n", "FILE, line 2: log-outputs: a list may hold only "
             "single values", NULL);
  file_fails("client-transport-security: 5\n", "FILE, line 1: client-transport-security must be "
             "a mapping", NULL);
  file_fails("initial-cluster-state: bogus\n", "invalid value \"bogus\" for initial-cluster-state "
             "in FILE, line 1: must be new or existing", NULL);
  file_fails("listen-peer-urls: localhost:2380\n", "listen-peer-urls in FILE, line 1", NULL);
  file_fails("heartbeat-interval: 300\n", "--election-timeout[1000ms] should be at least as 5 "
             "times as --heartbeat-interval[300ms]", NULL);
  file_fails("initial-cluster: a=http://a:1\ndiscovery: http://d:1/v2/keys/x\n",
             "multiple discovery or bootstrap flags", NULL);
}

/* What is not a file of settings at all. */
static void test_not_a_settings_file(void **state) {
  (void)state;
  file_fails("name: [a\n", "FILE, line 2, column 1: not YAML: did not find expected ',' or ']'",
             NULL);
  file_fails("- name\n- data-dir\n", "FILE, line 1: the file must be a mapping of settings", NULL);
  file_fails("just words\n", "FILE, line 1: the file must be a mapping of settings", NULL);
  file_fails("? [a, b]\n: c\n", "FILE, line 1: a key must be a name", NULL);

  config cfg;
  char err[512] = "";
  char **argv = ARGV("--config-file", "/nonexistent/etcd.conf.yml");
  assert_int_equal(config_parse(&cfg, count(argv), argv, no_env, err, sizeof err), -ENOENT);
  assert_string_equal(err, "cannot read the configuration file /nonexistent/etcd.conf.yml: No "
                           "such file or directory");
  config_free(&cfg);
}

/* The YAML 1.1 scalar typing, directly. */
static void test_yaml_scalars(void **state) {
  (void)state;
  struct { const char *text; config_yaml_type type; int ok; uint64_t want; } ints[] = {
      {"0", CONFIG_YAML_INT, 1, 0},          {"42", CONFIG_YAML_INT, 1, 42},
      {"0x2A", CONFIG_YAML_INT, 1, 42},      {"0b101010", CONFIG_YAML_INT, 1, 42},
      {"052", CONFIG_YAML_INT, 1, 42},       {"4_2", CONFIG_YAML_INT, 1, 42},
      {"+42", CONFIG_YAML_INT, 1, 42},       {"-0", CONFIG_YAML_INT, 1, 0},
      {"-1", CONFIG_YAML_INT, 0, 0},         {"4.2e1", CONFIG_YAML_FLOAT, 1, 42},
      {"4.5", CONFIG_YAML_FLOAT, 0, 0},      {"42", CONFIG_YAML_STR, 0, 0},
      {"18446744073709551615", CONFIG_YAML_INT, 1, UINT64_MAX},
  };
  for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
    config_file_value v = {.key = "k", .text = ints[i].text, .type = ints[i].type, .line = 1};
    uint64_t x = 12345;
    int rc = config_file_uint(&v, &x);
    if ((rc == 0) != ints[i].ok || (rc == 0 && x != ints[i].want))
      print_error("%s: rc %d x %llu\n", ints[i].text, rc, (unsigned long long)x);
    assert_int_equal(rc == 0, ints[i].ok);
    if (ints[i].ok) assert_true(x == ints[i].want);
  }
  const char *yes[] = {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"};
  const char *no[] = {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    config_file_value t = {.key = "k", .text = yes[i], .type = CONFIG_YAML_BOOL};
    config_file_value f = {.key = "k", .text = no[i], .type = CONFIG_YAML_BOOL};
    assert_int_equal(config_file_bool(&t), 1);
    assert_int_equal(config_file_bool(&f), 0);
  }
  config_file_value s = {.key = "k", .text = "true", .type = CONFIG_YAML_STR};
  assert_int_equal(config_file_bool(&s), -1);

  /* How the file types them: plain, quoted and tagged. */
  config cfg;
  dir d;
  file_ok(&cfg, &d, "name: !!str 123\ninitial-cluster-token: yes\nheartbeat-interval: !!int \"50\"\n");
  assert_string_equal(cfg.name, "123");
  assert_string_equal(cfg.initial_cluster_token, "yes");
  assert_int_equal(cfg.heartbeat_ms, 50);
  config_free(&cfg);
  remove_dir(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_settings_and_yaml_types),
      cmocka_unit_test(test_defaults_repeats_and_unknown_keys),
      cmocka_unit_test(test_flags_and_variables_are_ignored),
      cmocka_unit_test(test_wrong_types_are_refused),
      cmocka_unit_test(test_not_a_settings_file),
      cmocka_unit_test(test_yaml_scalars),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
