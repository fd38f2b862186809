/* Unit tests of daemon/store_install.c: a snapshot put in place in batches — readers see the
 * old tree until the last batch, an install stopped halfway (as by a crash) is completed from
 * snapshot.install at the next open (and without it refused), an incomplete temporary file is
 * ignored, a damaged snapshot.install stops the open with a message, and a malformed dump
 * changes nothing. */
#include "store_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "daemon/store_i.h"

static void reopen(fx *f) {
  drop_events(f);
  store_close(f->s);
  f->s = NULL;
  assert_int_equal(open_store(f), 0);
}

static char *path_in(fx *f, const char *name) {
  static char p[160];
  snprintf(p, sizeof p, "%s/%s", f->dir, name);
  return p;
}

static int exists(fx *f, const char *name) { return access(path_in(f, name), F_OK) == 0; }

/* The dump of a store holding /new/k0../new/k{n-1} = "n<i>" (made in the fixture's store,
 * which is then emptied of them and given /old/k0../old/k{m-1} instead). */
static char *make_dump(fx *f, int n, int m, size_t *len) {
  char path[32], val[32];
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "/new/k%d", i);
    snprintf(val, sizeof val, "n%d", i);
    set(f, path, val);
  }
  drop_events(f);
  store_dump *d = NULL;
  assert_int_equal(store_snapshot_begin(f->s, &d), 0);
  char *data = NULL;
  assert_int_equal(store_snapshot_write(d, &data, len), 0);
  store_snapshot_end(d);
  store_result res = apply(f, rec(PROTO_OP_DELETE, "/new", NULL, PROTO_REC_DIR | PROTO_REC_RECURSIVE));
  assert_int_equal(res.status, 200);
  store_result_free(&res);
  for (int i = 0; i < m; i++) {
    snprintf(path, sizeof path, "/old/k%d", i);
    set(f, path, "o");
  }
  drop_events(f);
  return data;
}

/* The tree is the dump's: every /new key, no /old. */
static void expect_new(fx *f, int n) {
  yajl_val v = get_at(f, "/new", 1, 0, f->now);
  assert_int_equal(jlen(v, "node.nodes"), (size_t)n);
  yajl_tree_free(v);
  v = get(f, "/new/k7");
  assert_jstr(v, "node.value", "n7");
  yajl_tree_free(v);
  get_err(f, "/old", 100, "/old");
}

typedef struct probe {
  fx *f;
  int old_keys;
  unsigned calls;
  unsigned stop_at; /* 0: never */
  unsigned wrong;   /* batches after which a reader saw anything but the old tree */
} probe;

/* The number of children of dir as a reader sees it (-1: no such directory). (No cmocka
 * assertion here: it would jump out of the install halfway.) */
static int children(fx *f, const char *dir) {
  store_result res;
  store_get(f->s, dir, strlen(dir), 1, 0, f->now, &res);
  int n = -1;
  if (!res.error_code) {
    char *body = strndup(res.body, res.body_len); /* (yajl_tree_parse wants a C string) */
    yajl_val v = body ? yajl_tree_parse(body, NULL, 0) : NULL;
    free(body);
    const char *path[] = {"node", "nodes", NULL};
    yajl_val a = v ? yajl_tree_get(v, path, yajl_t_array) : NULL;
    n = a ? (int)a->u.array.len : 0;
    yajl_tree_free(v);
  }
  store_result_free(&res);
  return n;
}

/* Between batches: a reader still sees the tree as it was before the install. */
static int between_batches(void *arg, unsigned batches) {
  probe *p = arg;
  p->calls++;
  if (batches != p->calls || children(p->f, "/old") != p->old_keys ||
      children(p->f, "/new") != -1)
    p->wrong++;
  return p->stop_at && batches >= p->stop_at;
}

static void test_readers_see_the_old_tree_until_the_end(void **state) {
  fx *f = *state;
  size_t len = 0;
  char *dump = make_dump(f, 400, 300, &len);
  uint64_t want_index = store_index(f->s) - 300 - 1; /* (the dump's: before the delete) */
  probe p = {.f = f, .old_keys = 300};
  store_set_install_hook(f->s, 2048, between_batches, &p);
  assert_int_equal(store_snapshot_restore(f->s, dump, len, "meta", 4), 0);
  assert_true(p.calls >= 5); /* many batches, each checked */
  assert_int_equal(p.wrong, 0);
  assert_true(store_index(f->s) == want_index);
  expect_new(f, 400);
  assert_false(exists(f, "snapshot.install"));
  char *meta = NULL;
  size_t ml = 0;
  assert_int_equal(store_snapshot_meta_get(f->s, &meta, &ml), 1);
  assert_int_equal(ml, 4);
  assert_memory_equal(meta, "meta", 4);
  free(meta);
  free(dump);
}

/* Stopped after 3 batches (the old tree deleted, part of the new one written), as a crash
 * would stop it: the next open writes it all again from snapshot.install. */
static void test_stopped_install_is_completed_at_open(void **state) {
  fx *f = *state;
  size_t len = 0;
  char *dump = make_dump(f, 400, 300, &len);
  probe p = {.f = f, .old_keys = 300, .stop_at = 3};
  store_set_install_hook(f->s, 2048, between_batches, &p);
  assert_int_not_equal(store_snapshot_restore(f->s, dump, len, "meta", 4), 0);
  assert_int_equal(p.calls, 3);
  assert_int_equal(p.wrong, 0);
  assert_true(exists(f, "snapshot.install"));
  reopen(f);
  assert_false(exists(f, "snapshot.install"));
  expect_new(f, 400);
  char *meta = NULL;
  size_t ml = 0;
  assert_int_equal(store_snapshot_meta_get(f->s, &meta, &ml), 1);
  assert_memory_equal(meta, "meta", 4);
  free(meta);
  /* and the store goes on from there */
  set(f, "/after", "x");
  drop_events(f);
  reopen(f);
  yajl_val v = get(f, "/after");
  assert_jstr(v, "node.value", "x");
  yajl_tree_free(v);
  free(dump);
}

/* A tree left halfway through an install whose copy is gone is refused with the reason, never
 * served half old and half new. */
static void test_halfway_without_its_copy_refused(void **state) {
  fx *f = *state;
  size_t len = 0;
  char *dump = make_dump(f, 400, 300, &len);
  probe p = {.f = f, .old_keys = 300, .stop_at = 2};
  store_set_install_hook(f->s, 2048, between_batches, &p);
  assert_int_not_equal(store_snapshot_restore(f->s, dump, len, NULL, 0), 0);
  free(dump);
  drop_events(f);
  store_close(f->s);
  f->s = NULL;
  assert_int_equal(unlink(path_in(f, "snapshot.install")), 0);
  char err[512] = "";
  store *s = NULL;
  assert_int_equal(store_open(&s, f->dir, 0, &f->st, err, sizeof err), -EUCLEAN);
  assert_non_null(strstr(err, "was left halfway through installing a snapshot, and "
                              "snapshot.install, which would complete it, is missing"));
}

/* A temporary file (the install had not begun) is removed and changes nothing; a damaged
 * snapshot.install stops the open with an error and is left for a person to look at. */
static void test_partial_and_damaged_files(void **state) {
  fx *f = *state;
  set(f, "/keep", "k");
  drop_events(f);
  store_close(f->s);
  f->s = NULL;
  int fd = open(path_in(f, "snapshot.install.tmp"), O_WRONLY | O_CREAT, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "QINST1\n", 7), 7);
  close(fd);
  assert_int_equal(open_store(f), 0);
  assert_false(exists(f, "snapshot.install.tmp"));
  yajl_val v = get(f, "/keep");
  assert_jstr(v, "node.value", "k");
  yajl_tree_free(v);
  store_close(f->s);
  f->s = NULL;
  fd = open(path_in(f, "snapshot.install"), O_WRONLY | O_CREAT, 0600);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, "QINST1\n\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\x09QSNAP1\0\0", 31), 31);
  close(fd);
  char err[256] = "";
  store *s = NULL;
  assert_int_not_equal(store_open(&s, f->dir, 0, &f->st, err, sizeof err), 0);
  assert_non_null(strstr(err, "cannot complete the install of a snapshot"));
  assert_true(exists(f, "snapshot.install"));
  unlink(path_in(f, "snapshot.install"));
  assert_int_equal(open_store(f), 0);
  v = get(f, "/keep");
  assert_jstr(v, "node.value", "k");
  yajl_tree_free(v);
}

/* A malformed dump is refused before anything is written. */
static void test_malformed_dump_changes_nothing(void **state) {
  fx *f = *state;
  set(f, "/keep", "k");
  drop_events(f);
  static const char bad[] = "QSNAP1\0\0\0\x05" "ab"; /* a 5-byte key with 2 bytes */
  assert_int_equal(store_snapshot_restore(f->s, bad, sizeof bad - 1, NULL, 0), -EINVAL);
  assert_int_equal(store_snapshot_restore(f->s, "QSNAP", 5, NULL, 0), -EINVAL);
  assert_false(exists(f, "snapshot.install"));
  yajl_val v = get(f, "/keep");
  assert_jstr(v, "node.value", "k");
  yajl_tree_free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_readers_see_the_old_tree_until_the_end),
      T(test_stopped_install_is_completed_at_open),
      T(test_halfway_without_its_copy_refused),
      T(test_partial_and_damaged_files),
      T(test_malformed_dump_changes_nothing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
