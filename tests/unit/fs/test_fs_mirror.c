/* test_fs_mirror: events that the watch delivers after this mount has changed the same keys
 * itself. The watch can be behind the mount's own requests (a remote create's event arriving
 * after the mount renamed or deleted that key); such a late event must not bring the key back,
 * nor may a late delete remove a key the mount made again since. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fs/fs.h"
#include "fs/fs_attr.h"
#include "fs/fs_mirror.h"
#include "fs/fs_replay.h"

typedef struct fixture {
  fs f;
  fs_rops ops;
} fixture;

static int setup(void **state) {
  fixture *x = calloc(1, sizeof *x);
  assert_non_null(x);
  x->f.prefix = strdup("/p");
  x->f.post_name = FS_POST_NAME;
  assert_int_equal(fs_itable_init(&x->f.nodes, "/p"), 0);
  x->f.nodes.root->is_dir = 1;
  x->f.nodes.root->cached = 1;
  *state = x;
  return 0;
}

static int teardown(void **state) {
  fixture *x = *state;
  fs_rops_free(&x->ops);
  fs_mirror_free(&x->f);
  fs_itable_free(&x->f.nodes);
  free(x->f.prefix);
  free(x);
  return 0;
}

/* A node as an answer or an event carries it, made at INDEX; children set by the caller. */
static proto_v2_knode knode(const char *key, int dir, const char *value, uint64_t index) {
  proto_v2_knode kn;
  memset(&kn, 0, sizeof kn);
  kn.key = (char *)key;
  kn.dir = dir;
  kn.value = (char *)value;
  kn.value_len = value ? strlen(value) : 0;
  kn.created_index = kn.modified_index = index;
  return kn;
}

static void event(fixture *x, const char *action, const char *key, int dir, const char *value,
                  uint64_t index) {
  proto_v2_knode kn = knode(key, dir, value, index);
  proto_v2_event ev = {.action = (char *)action, .node = &kn, .index = index};
  fs_mirror_apply(&x->f, &ev, &x->ops, 0);
}

/* The mirror holds KEY (a cached node). */
static int has(fixture *x, const char *key) {
  fs_node *n = fs_itable_find(&x->f.nodes, key);
  return n && n->cached;
}

/* What remove_key does after its DELETE succeeded at INDEX. */
static void own_delete(fixture *x, const char *key, uint64_t index) {
  fs_node *n = fs_itable_find(&x->f.nodes, key);
  if (n) {
    fs_itable_unlink(&x->f.nodes, n);
    fs_itable_maybe_free(&x->f.nodes, n);
  }
  fs_mirror_deleted(&x->f, key, index);
}

static void test_late_create_after_own_delete_stays_deleted(void **state) {
  fixture *x = *state;
  event(x, "set", "/p/other", 0, "o", 4);
  /* someone created /p/a at 5; this mount looked it up from the store, then deleted it at 8,
   * all before the watch delivered the create */
  fs_node *a = fs_itable_intern(&x->f.nodes, "/p/a");
  assert_non_null(a);
  own_delete(x, "/p/a", 8);
  event(x, "set", "/p/a", 0, "A", 5);
  assert_false(has(x, "/p/a"));
  event(x, "delete", "/p/a", 0, NULL, 8); /* the echo of our delete */
  assert_false(has(x, "/p/a"));
  assert_int_equal(x->f.n_tombs, 0); /* the watch passed the delete: nothing left to remember */
  /* a later create by anyone shows again */
  event(x, "set", "/p/a", 0, "again", 9);
  assert_true(has(x, "/p/a"));
  assert_true(has(x, "/p/other"));
}

static void test_late_create_below_a_deleted_directory(void **state) {
  fixture *x = *state;
  own_delete(x, "/p/d", 10);
  event(x, "set", "/p/d/x", 0, "x", 7);       /* made before our rmdir -r */
  event(x, "set", "/p/dx", 0, "not below", 7); /* a sibling whose name starts the same */
  assert_false(has(x, "/p/d"));
  assert_false(has(x, "/p/d/x"));
  assert_true(has(x, "/p/dx"));
  /* not yet passed: index 7 < 10 */
  assert_int_equal(x->f.n_tombs, 1);
  event(x, "set", "/p/d/y", 0, "y", 11); /* after the delete: a new directory and key */
  assert_true(has(x, "/p/d/y"));
  assert_int_equal(x->f.n_tombs, 0);
}

static void test_late_delete_spares_a_key_made_again(void **state) {
  fixture *x = *state;
  event(x, "set", "/p/b", 0, "old", 3);
  /* someone deleted /p/b at 11; this mount, not yet told, wrote /p/b at 12 */
  fs_node *b = fs_itable_find(&x->f.nodes, "/p/b");
  assert_non_null(b);
  b->modified_index = 12;
  event(x, "delete", "/p/b", 0, NULL, 11);
  assert_true(has(x, "/p/b"));
  /* a delete after the write removes it */
  event(x, "delete", "/p/b", 0, NULL, 13);
  assert_false(has(x, "/p/b"));
}

static void test_resync_keeps_deletes_newer_than_its_answer(void **state) {
  fixture *x = *state;
  own_delete(x, "/p/c", 20);
  /* a fresh GET answered at 18 still has /p/c */
  proto_v2_knode kid = knode("/p/c", 0, "c", 15);
  proto_v2_knode root = knode("/p", 1, NULL, 0);
  root.nodes = &kid;
  root.n_nodes = 1;
  fs_mirror_resync(&x->f, &root, 18, &x->ops, 0);
  assert_false(has(x, "/p/c"));
  assert_int_equal(x->f.n_tombs, 1);
  /* one answered after the delete forgets it */
  root.n_nodes = 0;
  fs_mirror_resync(&x->f, &root, 21, &x->ops, 0);
  assert_int_equal(x->f.n_tombs, 0);
}

/* A read ahead of the watch: a lookup read /p/k at 6 (uncached); the watch then delivers the
 * create at 5 and the change at 6. The value, index and st_mtime stay those read at 6. */
static void test_late_event_older_than_a_read_changes_nothing(void **state) {
  fixture *x = *state;
  fs_node *k = fs_itable_intern(&x->f.nodes, "/p/k");
  assert_non_null(k);
  fs_kv kv = {.key = "/p/k", .value = "two", .len = 3, .created_index = 5, .modified_index = 6};
  fs_attr_update(&x->f, k, &kv);
  struct timespec seen = k->mtime;
  assert_false(k->cached);
  event(x, "set", "/p/k", 0, "one", 5);
  assert_int_equal(k->modified_index, 6);
  assert_string_equal(k->value, "two");
  assert_memory_equal(&k->mtime, &seen, sizeof seen);
  event(x, "set", "/p/k", 0, "two", 6);
  assert_true(has(x, "/p/k"));
  assert_string_equal(k->value, "two");
  assert_memory_equal(&k->mtime, &seen, sizeof seen);
  event(x, "set", "/p/k", 0, "three", 7); /* a newer one changes it */
  assert_string_equal(k->value, "three");
  assert_int_equal(k->modified_index, 7);
}

/* Someone made /p/r at 4, deleted it at 8 and made it again at 9; a lookup read it at 9 before
 * the watch delivered any of that. The late create and delete leave the key as it was read. */
static void test_late_delete_older_than_a_read_spares_the_key(void **state) {
  fixture *x = *state;
  fs_node *r = fs_itable_intern(&x->f.nodes, "/p/r");
  assert_non_null(r);
  fs_kv kv = {.key = "/p/r", .value = "again", .len = 5, .created_index = 9, .modified_index = 9};
  fs_attr_update(&x->f, r, &kv);
  event(x, "set", "/p/r", 0, "first", 4);
  event(x, "delete", "/p/r", 0, NULL, 8);
  assert_ptr_equal(fs_itable_find(&x->f.nodes, "/p/r"), r);
  assert_string_equal(r->value, "again");
  event(x, "set", "/p/r", 0, "again", 9);
  assert_true(has(x, "/p/r"));
  assert_int_equal(r->modified_index, 9);
}

/* The kind and key of each operation the events queued for the applier, as "KIND key;...". */
static void expect_ops(fixture *x, const char *want) {
  static const char *const names[] = {"create", "mkdir", "modify", "unlink",
                                      "rmdir", "inval_inode", "inval_entry", "delete"};
  char got[512] = "";
  for (size_t i = 0; i < x->ops.n; i++) {
    size_t l = strlen(got);
    snprintf(got + l, sizeof got - l, "%s%s %s", l ? ";" : "", names[x->ops.v[i].kind],
             x->ops.v[i].key);
  }
  assert_string_equal(got, want);
  fs_rops_free(&x->ops);
}

/* With the kernel notified through its own VFS calls (-o notify=vfs, the default), a file that
 * a lookup read ahead of the watch still gets its IN_CREATE when its create arrives: the
 * kernel is told to forget the name, and the applier creates it. Events older than the read
 * queue nothing; a directory read ahead keeps its dentry (no alias of a directory). */
static void test_file_read_ahead_is_created_again_when_its_event_comes(void **state) {
  fixture *x = *state;
  x->f.notify_vfs = 1;
  fs_node *k = fs_itable_intern(&x->f.nodes, "/p/k");
  assert_non_null(k);
  k->nlookup = 1; /* the kernel has the name */
  fs_kv kv = {.key = "/p/k", .value = "two", .len = 3, .created_index = 5, .modified_index = 6};
  fs_attr_update(&x->f, k, &kv);
  event(x, "set", "/p/k", 0, "one", 5);
  expect_ops(x, "");
  assert_int_equal(k->replay, FS_REPLAY_NONE);
  event(x, "set", "/p/k", 0, "two", 6);
  expect_ops(x, "inval_entry /p/k;create /p/k");
  assert_int_equal(k->replay, FS_REPLAY_HIDDEN);
  assert_true(has(x, "/p/k"));
  k->replay = FS_REPLAY_NONE; /* what the applier's create does */
  event(x, "set", "/p/k", 0, "three", 7); /* from now on a change is a change */
  expect_ops(x, "modify /p/k");

  fs_node *d = fs_itable_intern(&x->f.nodes, "/p/d");
  assert_non_null(d);
  d->nlookup = 1;
  fs_kv dkv = {.key = "/p/d", .dir = 1, .created_index = 8, .modified_index = 8};
  fs_attr_update(&x->f, d, &dkv);
  event(x, "set", "/p/d", 1, NULL, 8);
  expect_ops(x, "inval_inode /p/d");
  assert_int_equal(d->replay, FS_REPLAY_NONE);
}

/* The file /p/f, made at 5 elsewhere and replayed here (the kernel knows it). */
static fs_node *replayed_file(fixture *x) {
  x->f.notify_vfs = 1;
  event(x, "set", "/p/f", 0, "abc", 5);
  expect_ops(x, "create /p/f");
  fs_node *n = fs_itable_find(&x->f.nodes, "/p/f");
  assert_non_null(n);
  n->replay = FS_REPLAY_NONE; /* the applier created it */
  return n;
}

/* v2's set with dir=true replaces a file by a directory: the applier first unlinks the file
 * (IN_DELETE; its unlink finds the old node under the key), and the event applied again makes
 * the directory (IN_CREATE|IN_ISDIR). In one step the directory's node took the file's, the
 * unlink failed and a watcher saw nothing. */
static void test_file_replaced_by_a_directory_in_two_steps(void **state) {
  fixture *x = *state;
  fs_node *old = replayed_file(x);
  proto_v2_knode kn = knode("/p/f", 1, NULL, 6);
  proto_v2_event ev = {.action = "set", .node = &kn, .index = 6};
  assert_int_equal(fs_mirror_apply(&x->f, &ev, &x->ops, 0), 1);
  expect_ops(x, "unlink /p/f");
  assert_int_equal(old->replay, FS_REPLAY_DYING);
  own_delete(x, "/p/f", 0); /* what the applier's unlink does (no tomb: it is not ours) */
  assert_int_equal(fs_mirror_apply(&x->f, &ev, &x->ops, 1), 0);
  expect_ops(x, "mkdir /p/f");
  fs_node *d = fs_itable_find(&x->f.nodes, "/p/f");
  assert_non_null(d);
  assert_true(d->is_dir);
  assert_int_equal(d->replay, FS_REPLAY_HIDDEN);
}

/* The same replacement found by a resync (the history was gone, 401): two passes as well, the
 * second making the directory and what is in it. */
static void test_resync_replaces_a_file_by_a_directory_in_two_passes(void **state) {
  fixture *x = *state;
  replayed_file(x);
  proto_v2_knode inner = knode("/p/f/x", 0, "x", 7);
  proto_v2_knode dir = knode("/p/f", 1, NULL, 6);
  dir.nodes = &inner;
  dir.n_nodes = 1;
  proto_v2_knode root = knode("/p", 1, NULL, 0);
  root.nodes = &dir;
  root.n_nodes = 1;
  assert_int_equal(fs_mirror_resync(&x->f, &root, 8, &x->ops, 0), 1);
  expect_ops(x, "unlink /p/f");
  own_delete(x, "/p/f", 0); /* the applier's unlink */
  assert_int_equal(fs_mirror_resync(&x->f, &root, 8, &x->ops, 1), 0);
  expect_ops(x, "mkdir /p/f;create /p/f/x");
  assert_true(fs_itable_find(&x->f.nodes, "/p/f")->is_dir);
  assert_true(has(x, "/p/f/x"));
}

/* The store went back (its data dir replaced): its indexes start again below the mirror's.
 * A plain resync would take the fresh tree's lower indexes for old news and keep what the
 * mirror had; the reset drops the mirror's indexes and its remembered deletes first. A key the
 * new store holds unchanged takes its indexes with no event; a changed one is modified, a gone
 * one removed, and a key this mount had deleted (its tomb at 40) that the new store has is
 * there again. */
static void test_reset_after_the_store_went_back(void **state) {
  fixture *x = *state;
  event(x, "set", "/p/same", 0, "s", 30);
  event(x, "set", "/p/changed", 0, "old", 31);
  event(x, "set", "/p/gone", 0, "g", 32);
  event(x, "set", "/p/d", 1, NULL, 33);
  own_delete(x, "/p/back", 40);
  fs_rops_free(&x->ops);
  proto_v2_knode kids[] = {knode("/p/back", 0, "b", 6), knode("/p/changed", 0, "new", 5),
                           knode("/p/d", 1, NULL, 3), knode("/p/same", 0, "s", 4)};
  proto_v2_knode root = knode("/p", 1, NULL, 0);
  root.nodes = kids;
  root.n_nodes = 4;
  /* what the plain resync would do: nothing but the removal (the rest looks older) */
  assert_int_equal(fs_mirror_resync(&x->f, &root, 7, &x->ops, 0), 0);
  expect_ops(x, "delete /p/gone;inval_inode /p/gone;inval_inode /p/gone");
  assert_string_equal(fs_itable_find(&x->f.nodes, "/p/changed")->value, "old");
  assert_false(has(x, "/p/back"));
  /* the reset */
  event(x, "set", "/p/gone", 0, "g", 32);
  own_delete(x, "/p/back", 40);
  fs_rops_free(&x->ops);
  assert_int_equal(fs_mirror_reset(&x->f, &root, 7, &x->ops, 0), 0);
  expect_ops(x, "delete /p/gone;inval_inode /p/gone;inval_inode /p/gone;"
                "inval_entry /p/back;inval_inode /p/back;inval_inode /p/changed");
  assert_int_equal(x->f.n_tombs, 0);
  fs_node *same = fs_itable_find(&x->f.nodes, "/p/same");
  assert_int_equal(same->modified_index, 4);
  assert_int_equal(fs_itable_find(&x->f.nodes, "/p/d")->modified_index, 3);
  fs_node *changed = fs_itable_find(&x->f.nodes, "/p/changed");
  assert_string_equal(changed->value, "new");
  assert_int_equal(changed->modified_index, 5);
  assert_true(has(x, "/p/back"));
  /* the watch goes on from 8: the next event applies */
  event(x, "set", "/p/same", 0, "s2", 8);
  assert_string_equal(same->value, "s2");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_late_create_after_own_delete_stays_deleted, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_replaced_by_a_directory_in_two_steps, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resync_replaces_a_file_by_a_directory_in_two_passes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_late_create_below_a_deleted_directory, setup, teardown),
      cmocka_unit_test_setup_teardown(test_late_delete_spares_a_key_made_again, setup, teardown),
      cmocka_unit_test_setup_teardown(test_resync_keeps_deletes_newer_than_its_answer, setup, teardown),
      cmocka_unit_test_setup_teardown(test_late_event_older_than_a_read_changes_nothing, setup, teardown),
      cmocka_unit_test_setup_teardown(test_late_delete_older_than_a_read_spares_the_key, setup, teardown),
      cmocka_unit_test_setup_teardown(test_file_read_ahead_is_created_again_when_its_event_comes, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_reset_after_the_store_went_back, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
