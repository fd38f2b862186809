/* Unit tests of daemon/auth*.c: password hashes, changes applied as records and kept in the
 * store across a reopen, and the access rules (key patterns, recursion, guest, root,
 * credentials) — the parts the HTTP-level comparison with etcd cannot see directly. */
#include "store_fixture.h"

#include "daemon/auth.h"

static void test_password_hash_is_salted_and_checked(void **state) {
  (void)state;
  char *a = auth_password_hash("secret", 6), *b = auth_password_hash("secret", 6);
  assert_non_null(a);
  assert_non_null(b);
  assert_string_not_equal(a, b); /* a salt of its own each time */
  assert_true(auth_password_check(a, "secret", 6));
  assert_true(auth_password_check(b, "secret", 6));
  assert_false(auth_password_check(a, "secreT", 6));
  assert_false(auth_password_check(a, "secret", 5));
  assert_false(auth_password_check(a, "", 0));
  char bad[256];
  snprintf(bad, sizeof bad, "%s", a);
  bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == '0' ? '1' : '0'; /* another key */
  assert_false(auth_password_check(bad, "secret", 6));
  assert_false(auth_password_check("pbkdf2-sha256$0$00$00", "secret", 6));
  assert_false(auth_password_check("bcrypt", "secret", 6));
  assert_false(auth_password_check(NULL, "secret", 6));
  free(a);
  free(b);
}

/* Applies one change the way the apply thread does; returns the HTTP status and sets
 * *indexes (when given) to the etcd indexes it takes. */
static int change_n(auth_db *db, const char *path, const char *json, bool del, char **body,
                    unsigned *indexes) {
  proto_record r = {.op = PROTO_OP_AUTH, .path = path, .path_len = strlen(path)};
  char *value = NULL;
  size_t len = 0;
  const char *msg = NULL;
  if (json && !strncmp(path, "/users/", 7)) assert_int_equal(auth_user_request(path + 7, json, strlen(json), &value, &len, &msg), 0);
  if (json && !strncmp(path, "/roles/", 7)) assert_int_equal(auth_role_request(path + 7, json, strlen(json), &value, &len, &msg), 0);
  r.value = value ? value : "";
  r.value_len = len;
  if (del) r.flags |= PROTO_REC_AUTH_DELETE;
  store_result res;
  auth_writes w;
  auth_db_apply(db, &r, &res, &w);
  if (indexes) *indexes = auth_writes_indexes(&w);
  free(value);
  if (body) *body = strndup(res.body ? res.body : "", res.body_len);
  int st = res.status;
  store_result_free(&res);
  return st;
}

static int change(auth_db *db, const char *path, const char *json, bool del, char **body) {
  return change_n(db, path, json, del, body, NULL);
}

static auth_who basic(char *buf, const char *user, const char *pw) {
  static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  char plain[128];
  size_t n = (size_t)snprintf(plain, sizeof plain, "%s:%s", user, pw), o = 0;
  o += (size_t)sprintf(buf, "Basic ");
  for (size_t i = 0; i < n; i += 3) {
    unsigned v = (unsigned char)plain[i] << 16;
    if (i + 1 < n) v |= (unsigned char)plain[i + 1] << 8;
    if (i + 2 < n) v |= (unsigned char)plain[i + 2];
    buf[o++] = b64[v >> 18 & 63];
    buf[o++] = b64[v >> 12 & 63];
    buf[o++] = i + 1 < n ? b64[v >> 6 & 63] : '=';
    buf[o++] = i + 2 < n ? b64[v & 63] : '=';
  }
  buf[o] = 0;
  return (auth_who){.authorization = buf, .authorization_len = o};
}

/* Bodies are not NUL-terminated: compared by length. */
static void assert_body(const char *body, size_t len, const char *want) {
  char *b = strndup(body, len);
  assert_string_equal(b, want);
  free(b);
}

#define ACCESS(db, who, key, rec, wr) auth_db_key_access(db, who, key, strlen(key), rec, wr)

static void test_changes_persist_and_rules_apply(void **state) {
  fx *f = *state;
  auth_db *db;
  assert_int_equal(auth_db_open(&db, f->s), 0);
  assert_false(auth_db_enabled(db));
  char hb[256];
  auth_who alice = basic(hb, "alice", "pw"), nobody = {0};
  assert_true(ACCESS(db, &nobody, "/x", false, true)); /* checking off: anything goes */
  assert_int_equal(change(db, "/enable", NULL, false, NULL), 409); /* no root user yet */
  assert_int_equal(change(db, "/users/root", "{\"user\":\"root\",\"password\":\"rp\"}", false, NULL), 201);
  assert_int_equal(change(db, "/roles/app", "{\"role\":\"app\",\"permissions\":{\"kv\":{\"read\":[\"/app/*\",\"/pub\"],\"write\":[\"/app/w\"]}}}", false, NULL), 201);
  assert_int_equal(change(db, "/users/alice", "{\"user\":\"alice\",\"password\":\"pw\",\"roles\":[\"app\"]}", false, NULL), 200);
  assert_int_equal(change(db, "/enable", NULL, false, NULL), 200);
  assert_true(auth_db_enabled(db));
  /* The guest role made by enable lets everyone do everything, as etcd's. */
  assert_true(ACCESS(db, &nobody, "/x", false, true));
  assert_int_equal(change(db, "/roles/guest", "{\"role\":\"guest\",\"revoke\":{\"kv\":{\"write\":[\"/*\"]}}}", false, NULL), 200);
  assert_true(ACCESS(db, &nobody, "/x", true, false));   /* guest: read, even recursively */
  assert_false(ACCESS(db, &nobody, "/x", false, true));  /* but no more writes */
  assert_int_equal(store_group_flush(f->s), 0);
  auth_db_close(db);

  /* Reopened: everything is still there. */
  store_close(f->s);
  f->s = NULL;
  assert_int_equal(open_store(f), 0);
  assert_int_equal(auth_db_open(&db, f->s), 0);
  assert_true(auth_db_enabled(db));
  char *body = NULL;
  size_t len;
  assert_int_equal(auth_db_get_user(db, "alice", &body, &len), 200);
  assert_body(body, len, "{\"user\":\"alice\",\"roles\":[{\"role\":\"app\",\"permissions\":"
                            "{\"kv\":{\"read\":[\"/app/*\",\"/pub\"],\"write\":[\"/app/w\"]}}}]}\n");
  free(body);
  /* Patterns: a trailing '*' is a prefix, anything else the exact key; recursive requests
   * need a prefix pattern; writes use the write list. */
  assert_true(ACCESS(db, &alice, "/app/a", false, false));
  assert_true(ACCESS(db, &alice, "/app/a/b", false, false));
  assert_false(ACCESS(db, &alice, "/app", false, false));
  assert_true(ACCESS(db, &alice, "/app/", true, false));
  assert_false(ACCESS(db, &alice, "/app", true, false));
  assert_true(ACCESS(db, &alice, "/pub", false, false));
  assert_false(ACCESS(db, &alice, "/pub", true, false));
  assert_false(ACCESS(db, &alice, "/pubx", false, false));
  assert_true(ACCESS(db, &alice, "/app/w", false, true));
  assert_false(ACCESS(db, &alice, "/app/a", false, true));
  assert_false(ACCESS(db, &alice, "/x", false, false)); /* a user is not a guest too */
  char hb2[256];
  auth_who wrong = basic(hb2, "alice", "pX"), root = basic(hb2 + 128, "root", "rp");
  assert_false(ACCESS(db, &wrong, "/app/a", false, false));
  assert_true(ACCESS(db, &root, "/anything", true, true));
  assert_true(auth_db_root_access(db, &root));
  assert_false(auth_db_root_access(db, &alice));
  assert_false(auth_db_root_access(db, &nobody));
  auth_who malformed = {.authorization = "Basic", .authorization_len = 5};
  assert_false(ACCESS(db, &malformed, "/app/a", false, false));
  /* A client certificate's name stands for the user when there is no Authorization. */
  auth_who cert = {.cert_cn = "alice"}, stranger = {.cert_cn = "zed"};
  assert_true(ACCESS(db, &cert, "/app/a", false, false));
  assert_false(ACCESS(db, &cert, "/x", false, false));
  assert_true(ACCESS(db, &stranger, "/x", false, false)); /* unknown name: a guest */
  /* Remembered passwords are forgotten with a change of the user. */
  assert_true(ACCESS(db, &alice, "/app/a", false, false));
  assert_int_equal(change(db, "/users/alice", "{\"user\":\"alice\",\"password\":\"pw2\"}", false, NULL), 200);
  assert_false(ACCESS(db, &alice, "/app/a", false, false));
  assert_int_equal(change(db, "/enable", NULL, true, NULL), 200);
  assert_true(ACCESS(db, &alice, "/app/a", false, true));
  assert_int_equal(change(db, "/users/root", NULL, true, NULL), 200);
  assert_int_equal(auth_db_get_users(db, &body, &len), 200);
  assert_body(body, len, "{\"users\":[{\"user\":\"alice\",\"roles\":[{\"role\":\"app\",\"permissions\":"
                            "{\"kv\":{\"read\":[\"/app/*\",\"/pub\"],\"write\":[\"/app/w\"]}}}]}]}\n");
  free(body);
  auth_db_close(db);
}

/* Bodies cut short and bytes flipped from valid ones: each is refused with 400 or accepted,
 * never a crash (the ASan build runs this too), and what is accepted applies. */
static void test_mangled_bodies_are_refused_or_applied(void **state) {
  fx *f = *state;
  auth_db *db;
  assert_int_equal(auth_db_open(&db, f->s), 0);
  static const char *const seeds[][2] = {
      {"alice", "{\"user\":\"alice\",\"password\":\"pw\",\"roles\":[\"a\",\"b\"]}"},
      {"alice", "{\"user\":\"alice\",\"grant\":[\"x\"],\"revoke\":[\"y\"]}"},
      {"r", "{\"role\":\"r\",\"permissions\":{\"kv\":{\"read\":[\"/a/*\"],\"write\":[]}}}"},
      {"r", "{\"role\":\"r\",\"grant\":{\"kv\":{\"read\":[\"/b\"]}},\"revoke\":{\"kv\":{\"write\":[\"/c\"]}}}"},
  };
  unsigned seed = 12345;
  size_t accepted = 0;
  for (int round = 0; round < 4000; round++) {
    const char *name = seeds[round % 4][0], *body = seeds[round % 4][1];
    char buf[256];
    size_t len = strlen(body);
    memcpy(buf, body, len);
    seed = seed * 1103515245u + 12345u;
    if (round % 3 == 0) len = (seed >> 8) % (len + 1); /* cut */
    for (int k = 0; k < 1 + (int)((seed >> 20) % 3); k++) { /* flip */
      seed = seed * 1103515245u + 12345u;
      if (len) buf[(seed >> 8) % len] = (char)(seed >> 16);
    }
    char *value = NULL;
    size_t vlen = 0;
    const char *msg = NULL;
    int st = round % 4 < 2 ? auth_user_request(name, buf, len, &value, &vlen, &msg)
                           : auth_role_request(name, buf, len, &value, &vlen, &msg);
    if (st) {
      assert_int_equal(st, 400);
      assert_non_null(msg);
      assert_null(value);
      continue;
    }
    accepted++;
    char path[64];
    snprintf(path, sizeof path, "/%s/%s", round % 4 < 2 ? "users" : "roles", name);
    proto_record r = {.op = PROTO_OP_AUTH, .path = path, .path_len = strlen(path), .value = value,
                      .value_len = vlen};
    store_result res;
    auth_writes w;
    auth_db_apply(db, &r, &res, &w);
    assert_true(auth_writes_indexes(&w) <= 5);
    assert_true(res.status == 200 || res.status == 201 || res.status == 400 || res.status == 404 ||
                res.status == 409);
    store_result_free(&res);
    free(value);
  }
  assert_true(accepted > 0);
  assert_int_equal(store_group_flush(f->s), 0);
  auth_db_close(db);
}

/* The password check done off the HTTP loop: a job only when there is something slow to do;
 * its verdict decides the request's checks, a right password is remembered, and a verdict
 * for a password that has changed since is not taken. */
static void test_password_checked_off_the_loop(void **state) {
  fx *f = *state;
  auth_db *db;
  assert_int_equal(auth_db_open(&db, f->s), 0);
  char hb[256], wb[256], rb[256];
  auth_who alice = basic(hb, "alice", "pw"), wrong = basic(wb, "alice", "nope"),
           ghost = basic(rb, "ghost", "pw"), nobody = {0};
  assert_null(auth_db_verify_begin(db, &alice)); /* checking off */
  assert_int_equal(change(db, "/users/root", "{\"user\":\"root\",\"password\":\"rp\"}", false, NULL), 201);
  assert_int_equal(change(db, "/roles/app", "{\"role\":\"app\",\"permissions\":{\"kv\":{\"read\":[\"/app/*\"],\"write\":[]}}}", false, NULL), 201);
  assert_int_equal(change(db, "/users/alice", "{\"user\":\"alice\",\"password\":\"pw\",\"roles\":[\"app\"]}", false, NULL), 200); /* (created and granted: etcd says 200) */
  assert_int_equal(change(db, "/enable", NULL, false, NULL), 200);
  assert_null(auth_db_verify_begin(db, &nobody)); /* no credentials */
  assert_null(auth_db_verify_begin(db, &ghost));  /* no such user: refused at once */

  /* A wrong password: its verdict refuses without another check; a right one grants and is
   * remembered, so that the next request needs no job. */
  auth_verify *v = auth_db_verify_begin(db, &wrong);
  assert_non_null(v);
  auth_verify_run(v);
  auth_db_verify_end(db, v);
  wrong.verified = v;
  assert_false(ACCESS(db, &wrong, "/app/x", false, false));
  alice.verified = v; /* another password's verdict is not this request's */
  auth_verify *va = auth_db_verify_begin(db, &alice);
  assert_non_null(va);
  auth_verify_run(va);
  auth_db_verify_end(db, va);
  alice.verified = va;
  assert_true(ACCESS(db, &alice, "/app/x", false, false));
  alice.verified = NULL;
  assert_null(auth_db_verify_begin(db, &alice)); /* remembered */
  assert_true(ACCESS(db, &alice, "/app/x", false, false));
  assert_false(ACCESS(db, &alice, "/other", false, false));

  /* The password changes after a check was made: its verdict no longer counts, and the old
   * password is refused. */
  auth_verify_free(va);
  assert_int_equal(change(db, "/users/alice", "{\"user\":\"alice\",\"password\":\"pw2\"}", false, NULL), 200);
  assert_int_equal(change(db, "/users/root", "{\"user\":\"root\",\"password\":\"rp2\"}", false, NULL), 200);
  char ob[256];
  auth_who stale = basic(ob, "root", "rp");
  auth_verify *old = auth_db_verify_begin(db, &stale);
  assert_non_null(old);
  auth_verify_run(old); /* (right, against root's hash of the time) */
  assert_int_equal(change(db, "/users/root", "{\"user\":\"root\",\"password\":\"rp3\"}", false, NULL), 200);
  auth_db_verify_end(db, old); /* (not remembered: the hash has changed) */
  stale.verified = old;
  assert_false(auth_db_root_access(db, &stale));
  auth_verify_free(old);
  auth_who root_now = basic(ob, "root", "rp3");
  assert_true(auth_db_root_access(db, &root_now));
  auth_who old_alice = basic(hb, "alice", "pw");
  assert_false(ACCESS(db, &old_alice, "/app/x", false, false));
  auth_who new_alice = basic(hb, "alice", "pw2");
  assert_true(ACCESS(db, &new_alice, "/app/x", false, false));
  auth_verify_free(v);
  auth_db_close(db);
}

/* Each change takes the etcd indexes etcd's does (measured on etcd 3.4.23): one per value of
 * its /2/ tree written, and four more for the tree itself at the first write or delete, also
 * after a reopen where the tree was made before. */
static void test_changes_take_etcd_indexes(void **state) {
  fx *f = *state;
  auth_db *db;
  assert_int_equal(auth_db_open(&db, f->s), 0);
  unsigned k = 99;
  static const char ROLE[] = "{\"role\":\"r1\",\"permissions\":{\"kv\":{\"read\":[\"/a*\"],\"write\":[]}}}";
  static const struct {
    const char *path, *json;
    bool del;
    int status;
    unsigned indexes;
  } steps[] = {
      {"/enable", NULL, false, 409, 0},         /* no root user: nothing written */
      {"/users/nobody", NULL, true, 404, 4},    /* the /2 tree is made, then the delete fails */
      {"/users/root", "{\"user\":\"root\",\"password\":\"rp\"}", false, 201, 1},
      {"/roles/r1", ROLE, false, 201, 1},
      {"/roles/r1", ROLE, false, 409, 0},       /* exists */
      {"/users/u1", "{\"user\":\"u1\",\"password\":\"p\",\"roles\":[\"r1\"]}", false, 200, 1},
      {"/users/u1", "{\"user\":\"u1\",\"password\":\"p\"}", false, 200, 1}, /* a new salt */
      {"/users/u1", "{\"user\":\"u1\",\"grant\":[\"r1\"]}", false, 409, 0},  /* has it */
      {"/enable", NULL, false, 200, 2},         /* the guest role, then the switch */
      {"/enable", NULL, true, 200, 1},
      {"/enable", NULL, false, 200, 1},         /* the guest role is there now */
      {"/enable", NULL, true, 200, 1},
      {"/enable", NULL, true, 409, 0},
      {"/roles/r1", NULL, true, 200, 1},
      {"/users/u1", NULL, true, 200, 1},
      {"/users/nobody", NULL, true, 404, 0},
  };
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    assert_int_equal(change_n(db, steps[i].path, steps[i].json, steps[i].del, NULL, &k),
                     steps[i].status);
    assert_int_equal(k, steps[i].indexes);
  }
  assert_int_equal(store_group_flush(f->s), 0);
  auth_db_close(db);
  /* Reopened: the tree is known to be there. */
  assert_int_equal(auth_db_open(&db, f->s), 0);
  assert_int_equal(change_n(db, "/users/u2", "{\"user\":\"u2\",\"password\":\"p\"}", false, NULL, &k), 201);
  assert_int_equal(k, 1);
  auth_db_close(db);
}

/* A fresh store whose first auth change is a user: five indexes, as etcd's. */
static void test_first_write_makes_the_tree(void **state) {
  fx *f = *state;
  auth_db *db;
  assert_int_equal(auth_db_open(&db, f->s), 0);
  unsigned k = 0;
  assert_int_equal(change_n(db, "/users/root", "{\"user\":\"root\",\"password\":\"rp\"}", false, NULL, &k), 201);
  assert_int_equal(k, 5);
  auth_db_close(db);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_password_hash_is_salted_and_checked),
      cmocka_unit_test_setup_teardown(test_changes_persist_and_rules_apply, setup, teardown),
      cmocka_unit_test_setup_teardown(test_mangled_bodies_are_refused_or_applied, setup, teardown),
      cmocka_unit_test_setup_teardown(test_password_checked_off_the_loop, setup, teardown),
      cmocka_unit_test_setup_teardown(test_changes_take_etcd_indexes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_first_write_makes_the_tree, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
