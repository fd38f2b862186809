/* Unit tests of the transport over TLS (https:// peers, proto/tls_session) on real loopback
 * TCP: members that trust one certificate exchange messages and a multi-chunk snapshot; a
 * member whose certificate nobody trusts delivers nothing and both sides log why; an https://
 * peer needs a client context. Certificates are made here with OpenSSL's API. */
#include "tests/unit/raft/transport_fixture.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "proto/tls_session.h"

/* Writes a self-signed certificate for IPs 127.0.0.1-3 (usable as its own CA) and its key as
 * PEM files dir/name.crt and dir/name.key. */
static void make_cert(const char *dir, const char *name) {
  EVP_PKEY *key = EVP_EC_gen("P-256");
  assert_non_null(key);
  X509 *x = X509_new();
  assert_non_null(x);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -60);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME *nm = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(nm, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
  X509_set_issuer_name(x, nm);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
  const char *exts[][2] = {{"subjectAltName", "IP:127.0.0.1,IP:127.0.0.2,IP:127.0.0.3"},
                           {"basicConstraints", "critical,CA:TRUE"},
                           {"keyUsage", "critical,digitalSignature,keyCertSign"}};
  for (size_t i = 0; i < 3; i++) {
    X509_EXTENSION *e = X509V3_EXT_nconf(NULL, &v3, exts[i][0], exts[i][1]);
    assert_non_null(e);
    X509_add_ext(x, e, -1);
    X509_EXTENSION_free(e);
  }
  assert_true(X509_sign(x, key, EVP_sha256()) > 0);
  char path[512];
  snprintf(path, sizeof path, "%s/%s.crt", dir, name);
  FILE *fp = fopen(path, "w");
  assert_non_null(fp);
  PEM_write_X509(fp, x);
  fclose(fp);
  snprintf(path, sizeof path, "%s/%s.key", dir, name);
  fp = fopen(path, "w");
  assert_non_null(fp);
  PEM_write_PrivateKey(fp, key, NULL, NULL, 0, NULL, NULL);
  fclose(fp);
  X509_free(x);
  EVP_PKEY_free(key);
}

/* Server and client contexts for node n with the certificate `name`, trusting `ca`. */
static void tls_setup(node *n, const char *dir, const char *name, const char *ca,
                      tls_session_ctx **srv, tls_session_ctx **cli) {
  char crt[512], key[512], cafile[512], err[256];
  snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
  snprintf(key, sizeof key, "%s/%s.key", dir, name);
  snprintf(cafile, sizeof cafile, "%s/%s.crt", dir, ca);
  assert_int_equal(tls_session_ctx_server(srv, crt, key, cafile, 1, err, sizeof err), 0);
  assert_int_equal(tls_session_ctx_client(cli, crt, key, cafile, 1, err, sizeof err), 0);
  n->cfg.tls_server = *srv;
  n->cfg.tls_client = *cli;
}

static void add_tls_peer(fixture *f, int i, int j) {
  char a[80];
  snprintf(a, sizeof a, "https://%s:%d", f->n[j].host, f->n[j].port);
  assert_int_equal(raft_transport_add_peer(f->n[i].t, (uint64_t)j, a), 0);
}

static bool warned(fixture *f, void *arg) {
  return f->n[*(int *)arg].warnings > 0;
}

/* Stops members 1..3, frees their TLS contexts and removes dir. */
static void stop_and_clean(fixture *f, tls_session_ctx **srv, tls_session_ctx **cli,
                           const char *dir) {
  for (int i = 1; i <= 3; i++) {
    raft_transport_stop(f->n[i].t);
    f->n[i].t = NULL;
  }
  uv_run(&f->loop, UV_RUN_NOWAIT);
  for (int i = 1; i <= 3; i++) {
    tls_session_ctx_free(srv[i]);
    tls_session_ctx_free(cli[i]);
  }
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* Members 1 and 2 trust one certificate and exchange messages and a snapshot over TLS; member
 * 3 holds a certificate nobody trusts: its messages never arrive and both sides log why. An
 * https:// peer without a client context is refused. */
static void test_tls_between_members(void **state) {
  fixture *f = *state;
  char dir[] = "/tmp/raft-transport-tls-XXXXXX";
  assert_non_null(mkdtemp(dir));
  make_cert(dir, "member");
  make_cert(dir, "rogue");
  tls_session_ctx *srv[4] = {0}, *cli[4] = {0};
  tls_setup(&f->n[1], dir, "member", "member", &srv[1], &cli[1]);
  tls_setup(&f->n[2], dir, "member", "member", &srv[2], &cli[2]);
  tls_setup(&f->n[3], dir, "rogue", "member", &srv[3], &cli[3]);
  for (int i = 1; i <= 3; i++) node_start(f, i);
  add_tls_peer(f, 1, 2);
  add_tls_peer(f, 2, 1);
  add_tls_peer(f, 3, 1);

  static uint8_t d1[] = "set /k v";
  raft_entry ents[1] = {{.term = 3, .index = 11, .type = RAFT_ENTRY_NORMAL, .data = {d1, 8}}};
  raft_message app = {.type = RAFT_MSG_APP, .from = 1, .to = 2, .term = 3, .log_term = 3,
                      .index = 10, .commit = 9, .entries = ents, .n_entries = 1};
  raft_message hb = heartbeat(2, 1, 3);
  assert_int_equal(raft_transport_send(f->n[1].t, &app), 0);
  assert_int_equal(raft_transport_send(f->n[2].t, &hb), 0);
  wait_got(f, 2, 1);
  wait_got(f, 1, 1);
  assert_message(&app, f->n[2].got[0]);
  assert_message(&hb, f->n[1].got[0]);

  /* A snapshot of 2 MiB + 1 (three chunks) crosses whole. */
  size_t len = 2u * 1024 * 1024 + 1;
  uint8_t *data = malloc(len);
  assert_non_null(data);
  for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(i * 7 + 3);
  raft_snapshot snap = {.meta = {.index = 50, .term = 3, .conf = {.voters = {1, 2}, .n_voters = 2}},
                        .data = {data, len}};
  raft_message sm = {.type = RAFT_MSG_SNAP, .from = 1, .to = 2, .term = 3, .snapshot = &snap};
  assert_int_equal(raft_transport_send(f->n[1].t, &sm), 0);
  snap_wait w = {1, 2};
  assert_true(run_until(f, snap_reported, &w, 10000));
  assert_int_equal(f->n[1].snap_ok[2], 1);
  wait_got(f, 2, 2);
  assert_message(&sm, f->n[2].got[1]);
  free(data);

  /* The rogue member: member 1 refuses its certificate, nothing is delivered. */
  raft_message rhb = heartbeat(3, 1, 3);
  assert_int_equal(raft_transport_send(f->n[3].t, &rhb), 0);
  int one = 1, three = 3;
  assert_true(run_until(f, warned, &one, 5000));
  assert_non_null(strstr(f->n[1].last_log, "TLS:"));
  assert_true(run_until(f, warned, &three, 5000));
  assert_non_null(strstr(f->n[3].last_log, "TLS:"));
  run_for(f, 200);
  assert_int_equal(f->n[1].n_got, 1);

  /* https:// needs a client context. */
  raft_transport_stop(f->n[2].t);
  f->n[2].t = NULL;
  f->n[2].cfg.tls_client = NULL;
  node_start(f, 2);
  assert_int_equal(raft_transport_add_peer(f->n[2].t, 3, "https://127.0.0.3:1"), -EINVAL);
  assert_int_equal(raft_transport_add_peer(f->n[2].t, 3, "http://127.0.0.3:1"), 0);

  stop_and_clean(f, srv, cli, dir);
}

static bool got_one(fixture *f, void *arg) {
  return f->n[*(int *)arg].n_got > 0;
}

/* A member's certificate renewed on disk is presented on its next connection, no restart
 * (proto/tls_reload.c): member 3 first holds one nobody trusts and is refused; its files are
 * then replaced by a trusted pair, and its next connection to member 1 delivers. */
static void test_renewed_certificate_used_on_the_next_connection(void **state) {
  fixture *f = *state;
  char dir[] = "/tmp/raft-transport-tls-XXXXXX";
  assert_non_null(mkdtemp(dir));
  make_cert(dir, "member");
  make_cert(dir, "rogue");
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "cp %s/rogue.crt %s/m3.crt && cp %s/rogue.key %s/m3.key", dir, dir,
           dir, dir);
  assert_int_equal(system(cmd), 0);
  tls_session_ctx *srv[4] = {0}, *cli[4] = {0};
  tls_setup(&f->n[1], dir, "member", "member", &srv[1], &cli[1]);
  tls_setup(&f->n[3], dir, "m3", "member", &srv[3], &cli[3]);
  node_start(f, 1);
  node_start(f, 3);
  add_tls_peer(f, 3, 1);
  raft_message hb = heartbeat(3, 1, 5);
  assert_int_equal(raft_transport_send(f->n[3].t, &hb), 0);
  int one = 1;
  assert_true(run_until(f, warned, &one, 5000));
  assert_int_equal(f->n[1].n_got, 0);
  /* Renewed as tools renew: new files renamed over the old ones. */
  snprintf(cmd, sizeof cmd, "cp %s/member.crt %s/m3.crt.new && cp %s/member.key %s/m3.key.new "
           "&& mv %s/m3.crt.new %s/m3.crt && mv %s/m3.key.new %s/m3.key", dir, dir, dir, dir, dir,
           dir, dir, dir);
  assert_int_equal(system(cmd), 0);
  for (int tries = 0; tries < 50 && !f->n[1].n_got; tries++) {
    assert_int_equal(raft_transport_send(f->n[3].t, &hb), 0);
    run_until(f, got_one, &one, 200);
  }
  assert_true(f->n[1].n_got > 0);
  assert_message(&hb, f->n[1].got[0]);
  stop_and_clean(f, srv, cli, dir);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_tls_between_members, setup, teardown),
      cmocka_unit_test_setup_teardown(test_renewed_certificate_used_on_the_next_connection, setup,
                                      teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
