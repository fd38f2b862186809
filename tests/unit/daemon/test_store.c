/* Unit tests of daemon/store.c (and store_list.c): each operation and listing, records applied
 * straight to a LevelDB store in a temporary directory, results and events checked field by
 * field against etcd v2's semantics (shared/docs/v2-api.md sections 3-7, 9). */
#include "store_fixture.h"

/* ------------------------------------------------------------------ set / create / update */

/* set creates the key and its missing parents, all with the write's index; status 201. */
static void test_set_creates_parents(void **state) {
  fx *f = *state;
  yajl_val v = apply_ok(f, rec(PROTO_OP_SET, "/a/b/c", "v", 0), 201, "set");
  assert_jkeys(v, "", "action,node");
  assert_jkeys(v, "node", "key,value,modifiedIndex,createdIndex");
  assert_jstr(v, "node.key", "/a/b/c");
  assert_jstr(v, "node.value", "v");
  assert_jint(v, "node.modifiedIndex", 1);
  assert_jint(v, "node.createdIndex", 1);
  yajl_tree_free(v);
  store_event *e = one_event(f, 1, STORE_ACT_SET, "/a/b/c");
  assert_int_equal(e->dir, 0);
  assert_int_equal(e->refresh, 0);
  store_event_unref(e);
  assert_true(store_index(f->s) == 1);
  assert_true(store_applied(f->s) == 1);

  const char *dirs[] = {"/a", "/a/b"};
  for (size_t i = 0; i < 2; i++) {
    v = get(f, dirs[i]);
    assert_jkeys(v, "node", "key,dir,nodes,modifiedIndex,createdIndex");
    assert_jstr(v, "node.key", dirs[i]);
    assert_true(YAJL_IS_TRUE(jget(v, "node.dir")));
    assert_jint(v, "node.modifiedIndex", 1);
    assert_jint(v, "node.createdIndex", 1);
    yajl_tree_free(v);
  }
  v = get(f, "/a/b/c");
  assert_jkeys(v, "", "action,node");
  assert_jkeys(v, "node", "key,value,modifiedIndex,createdIndex");
  assert_jstr(v, "node.value", "v");
  yajl_tree_free(v);
}

/* set over an existing file replaces it: 200, prevNode, new createdIndex; parents unchanged. */
static void test_set_replaces_file(void **state) {
  fx *f = *state;
  set(f, "/a/k", "one");
  set(f, "/other", "x");
  yajl_val v = apply_ok(f, rec(PROTO_OP_SET, "/a/k", "two", 0), 200, "set");
  assert_jkeys(v, "", "action,node,prevNode");
  assert_jstr(v, "node.value", "two");
  assert_jint(v, "node.modifiedIndex", 3);
  assert_jint(v, "node.createdIndex", 3);
  assert_jkeys(v, "prevNode", "key,value,modifiedIndex,createdIndex");
  assert_jstr(v, "prevNode.key", "/a/k");
  assert_jstr(v, "prevNode.value", "one");
  assert_jint(v, "prevNode.modifiedIndex", 1);
  assert_jint(v, "prevNode.createdIndex", 1);
  yajl_tree_free(v);
  store_event_unref(one_event(f, 3, STORE_ACT_SET, "/a/k"));
  v = get(f, "/a");
  assert_jint(v, "node.modifiedIndex", 1); /* a dir's index does not follow its children */
  assert_jint(v, "node.createdIndex", 1);
  yajl_tree_free(v);
}

/* An empty value is stored and shown as "". */
static void test_set_empty_value(void **state) {
  fx *f = *state;
  set(f, "/e", NULL);
  yajl_val v = get(f, "/e");
  assert_jstr(v, "node.value", "");
  yajl_tree_free(v);
}

/* A value written to a directory is 102 with the directory as cause. */
static void test_set_on_dir_is_102(void **state) {
  fx *f = *state;
  set(f, "/a/b", "v");
  apply_err(f, rec(PROTO_OP_SET, "/a", "x", 0), 102, "/a");
  apply_err(f, rec(PROTO_OP_SET, "/a", NULL, PROTO_REC_DIR), 102, "/a"); /* dir=true on a dir */
  yajl_val v = get(f, "/a/b");
  assert_jstr(v, "node.value", "v");
  yajl_tree_free(v);
}

/* set dir=true on an existing file replaces it by an empty directory (200 with prevNode). */
static void test_set_dir_replaces_file(void **state) {
  fx *f = *state;
  set(f, "/f", "v");
  yajl_val v = apply_ok(f, rec(PROTO_OP_SET, "/f", NULL, PROTO_REC_DIR), 200, "set");
  assert_jkeys(v, "node", "key,dir,modifiedIndex,createdIndex");
  assert_true(YAJL_IS_TRUE(jget(v, "node.dir")));
  assert_jint(v, "node.createdIndex", 2);
  assert_jstr(v, "prevNode.value", "v");
  yajl_tree_free(v);
  store_event *e = one_event(f, 2, STORE_ACT_SET, "/f");
  assert_int_equal(e->dir, 1);
  store_event_unref(e);
  v = get(f, "/f");
  assert_jkeys(v, "node", "key,dir,modifiedIndex,createdIndex"); /* empty: no nodes */
  yajl_tree_free(v);
}

/* Writes to "/" are 107 with cause "/", for every kind of write but compareAndDelete. */
static void test_root_is_read_only(void **state) {
  fx *f = *state;
  set(f, "/x", "1");
  apply_err(f, rec(PROTO_OP_SET, "/", "v", 0), 107, "/");
  apply_err(f, rec(PROTO_OP_SET, "/", NULL, PROTO_REC_DIR), 107, "/");
  apply_err(f, rec(PROTO_OP_CREATE, "/", "v", 0), 107, "/");
  apply_err(f, rec(PROTO_OP_UPDATE, "/", "v", 0), 107, "/");
  apply_err(f, with_prev_value(rec(PROTO_OP_CAS, "/", "v", 0), "x"), 107, "/");
  apply_err(f, rec(PROTO_OP_DELETE, "/", NULL, PROTO_REC_DIR | PROTO_REC_RECURSIVE), 107, "/");
  /* etcd 3.4's compareAndDelete has no read-only check: the root fails as a directory, 102
   * without a cause (checked against etcd by hand and by test_differential.py). */
  apply_err(f, with_prev_value(rec(PROTO_OP_CAD, "/", NULL, 0), "x"), 102, NULL);
}

/* create on an existing file or dir is 105 (412) with the key as cause. */
static void test_create_existing_is_105(void **state) {
  fx *f = *state;
  set(f, "/d/k", "v");
  apply_err(f, rec(PROTO_OP_CREATE, "/d/k", "w", 0), 105, "/d/k");
  apply_err(f, rec(PROTO_OP_CREATE, "/d", "w", 0), 105, "/d");
  apply_err(f, rec(PROTO_OP_CREATE, "/d", NULL, PROTO_REC_DIR), 105, "/d");
  yajl_val v = apply_ok(f, rec(PROTO_OP_CREATE, "/d/new", "n", 0), 201, "create");
  assert_jkeys(v, "", "action,node");
  assert_jint(v, "node.createdIndex", 2);
  yajl_tree_free(v);
  store_event_unref(one_event(f, 2, STORE_ACT_CREATE, "/d/new"));
}

/* update of a missing key is 100 naming the first missing path component. */
static void test_update_missing_is_100(void **state) {
  fx *f = *state;
  apply_err(f, rec(PROTO_OP_UPDATE, "/x/y/z", "v", 0), 100, "/x");
  mkdir_(f, "/x");
  apply_err(f, rec(PROTO_OP_UPDATE, "/x/y/z", "v", 0), 100, "/x/y");
  mkdir_(f, "/x/y");
  apply_err(f, rec(PROTO_OP_UPDATE, "/x/y/z", "v", 0), 100, "/x/y/z");
  apply_err(f, with_prev_value(rec(PROTO_OP_CAS, "/q/r", "v", 0), "a"), 100, "/q");
  apply_err(f, with_prev_value(rec(PROTO_OP_CAD, "/q/r", NULL, 0), "a"), 100, "/q");
  apply_err(f, rec(PROTO_OP_DELETE, "/q/r", NULL, 0), 100, "/q");
  apply_err(f, rec(PROTO_OP_SET, "/q/r", NULL, PROTO_REC_REFRESH | PROTO_REC_TTL), 100, "/q");
  get_err(f, "/x/y/z", 100, "/x/y/z");
  get_err(f, "/nope/a/b", 100, "/nope");
}

/* update keeps createdIndex, takes the new value, and clears an existing TTL. */
static void test_update_keeps_created_index(void **state) {
  fx *f = *state;
  put(f, with_ttl(rec(PROTO_OP_SET, "/u", "one", 0), f->now + 60 * NS));
  set(f, "/other", "x");
  yajl_val v = apply_ok(f, rec(PROTO_OP_UPDATE, "/u", "two", PROTO_REC_PREV_EXIST), 200, "update");
  assert_jkeys(v, "node", "key,value,modifiedIndex,createdIndex");
  assert_jstr(v, "node.value", "two");
  assert_jint(v, "node.modifiedIndex", 3);
  assert_jint(v, "node.createdIndex", 1);
  assert_jkeys(v, "prevNode", "key,value,expiration,ttl,modifiedIndex,createdIndex");
  assert_jint(v, "prevNode.ttl", 60);
  yajl_tree_free(v);
  store_event_unref(one_event(f, 3, STORE_ACT_UPDATE, "/u"));
  assert_true(store_next_expiry(f->s) == 0);
}

/* Anything below a file is 104 naming the file, for reads and for every write. */
static void test_below_file_is_104(void **state) {
  fx *f = *state;
  set(f, "/d/f", "v");
  apply_err(f, rec(PROTO_OP_SET, "/d/f/x", "v", 0), 104, "/d/f");
  apply_err(f, rec(PROTO_OP_SET, "/d/f/x/y", "v", 0), 104, "/d/f");
  apply_err(f, rec(PROTO_OP_CREATE, "/d/f/x", "v", 0), 104, "/d/f");
  apply_err(f, rec(PROTO_OP_UPDATE, "/d/f/x", "v", 0), 104, "/d/f");
  apply_err(f, rec(PROTO_OP_DELETE, "/d/f/x", NULL, 0), 104, "/d/f");
  apply_err(f, rec(PROTO_OP_POST, "/d/f", "v", 0), 104, "/d/f");
  apply_err(f, rec(PROTO_OP_POST, "/d/f/q", "v", 0), 104, "/d/f");
  get_err(f, "/d/f/x", 104, "/d/f");
  get_err(f, "/d/f/x/y", 104, "/d/f");
  /* Nothing was created on the way. */
  yajl_val v = get_at(f, "/d", 1, 1, f->now);
  assert_int_equal(jlen(v, "node.nodes"), 1);
  assert_jabsent(v, "node.nodes.0.nodes");
  yajl_tree_free(v);
}

/* ------------------------------------------------------------------ compare-and-swap / delete */

/* Builds /k with value "b" and modifiedIndex 5 (createdIndex 1). */
static void make_b5(fx *f) {
  set(f, "/k", "a");
  set(f, "/x1", "");
  set(f, "/x2", "");
  set(f, "/x3", "");
  put(f, rec(PROTO_OP_UPDATE, "/k", "b", PROTO_REC_PREV_EXIST));
  assert_true(store_index(f->s) == 5);
}

/* compareAndSwap succeeds on matching value and/or index, keeping createdIndex. */
static void test_cas_success(void **state) {
  fx *f = *state;
  make_b5(f);
  yajl_val v = apply_ok(f, with_prev_value(rec(PROTO_OP_CAS, "/k", "c", 0), "b"), 200,
                        "compareAndSwap");
  assert_jkeys(v, "", "action,node,prevNode");
  assert_jstr(v, "node.value", "c");
  assert_jint(v, "node.modifiedIndex", 6);
  assert_jint(v, "node.createdIndex", 1);
  assert_jstr(v, "prevNode.value", "b");
  assert_jint(v, "prevNode.modifiedIndex", 5);
  yajl_tree_free(v);
  store_event_unref(one_event(f, 6, STORE_ACT_CAS, "/k"));

  proto_record r = rec(PROTO_OP_CAS, "/k", "d", 0);
  r.prev_index = 6;
  v = apply_ok(f, r, 200, "compareAndSwap");
  assert_jint(v, "node.modifiedIndex", 7);
  yajl_tree_free(v);
  drop_events(f);

  r = with_prev_value(rec(PROTO_OP_CAS, "/k", "e", 0), "d");
  r.prev_index = 7;
  v = apply_ok(f, r, 200, "compareAndSwap");
  assert_jstr(v, "node.value", "e");
  yajl_tree_free(v);
  drop_events(f);
}

/* A failed compare is 101 (412) with "[a != b]", "[3 != 5]" or both, value first. */
static void test_cas_failure_causes(void **state) {
  fx *f = *state;
  make_b5(f);
  apply_err(f, with_prev_value(rec(PROTO_OP_CAS, "/k", "z", 0), "a"), 101, "[a != b]");
  proto_record r = rec(PROTO_OP_CAS, "/k", "z", 0);
  r.prev_index = 3;
  apply_err(f, r, 101, "[3 != 5]");
  r = with_prev_value(r, "a");
  apply_err(f, r, 101, "[a != b] [3 != 5]");
  /* Value matches, index does not (and the other way round). */
  r = with_prev_value(rec(PROTO_OP_CAS, "/k", "z", 0), "b");
  r.prev_index = 4;
  apply_err(f, r, 101, "[4 != 5]");
  r = with_prev_value(rec(PROTO_OP_CAS, "/k", "z", 0), "bb");
  r.prev_index = 5;
  apply_err(f, r, 101, "[bb != b]");
  yajl_val v = get(f, "/k");
  assert_jstr(v, "node.value", "b");
  yajl_tree_free(v);
}

/* compareAndSwap on a directory is 102. */
static void test_cas_on_dir_is_102(void **state) {
  fx *f = *state;
  mkdir_(f, "/d");
  apply_err(f, with_prev_value(rec(PROTO_OP_CAS, "/d", "v", 0), "x"), 102, "/d");
  proto_record r = rec(PROTO_OP_CAS, "/d", "v", 0);
  r.prev_index = 1;
  apply_err(f, r, 102, "/d");
}

/* compareAndDelete removes a matching file; failures are 101; on a dir 102. */
static void test_cad(void **state) {
  fx *f = *state;
  make_b5(f);
  apply_err(f, with_prev_value(rec(PROTO_OP_CAD, "/k", NULL, 0), "a"), 101, "[a != b]");
  proto_record r = rec(PROTO_OP_CAD, "/k", NULL, 0);
  r.prev_index = 3;
  apply_err(f, r, 101, "[3 != 5]");
  r = with_prev_value(r, "a");
  apply_err(f, r, 101, "[a != b] [3 != 5]");
  mkdir_(f, "/dir"); /* index 6 */
  apply_err(f, with_prev_value(rec(PROTO_OP_CAD, "/dir", NULL, PROTO_REC_DIR), "x"), 102, "/dir");

  r = with_prev_value(rec(PROTO_OP_CAD, "/k", NULL, 0), "b");
  r.prev_index = 5;
  yajl_val v = apply_ok(f, r, 200, "compareAndDelete");
  assert_jkeys(v, "", "action,node,prevNode");
  assert_jkeys(v, "node", "key,modifiedIndex,createdIndex");
  assert_jstr(v, "node.key", "/k");
  assert_jint(v, "node.modifiedIndex", 7);
  assert_jint(v, "node.createdIndex", 1);
  assert_jkeys(v, "prevNode", "key,value,modifiedIndex,createdIndex");
  assert_jstr(v, "prevNode.value", "b");
  yajl_tree_free(v);
  store_event_unref(one_event(f, 7, STORE_ACT_CAD, "/k"));
  get_err(f, "/k", 100, "/k");
}

/* ------------------------------------------------------------------ delete */

/* Deleting a file: node without value, modifiedIndex = event index, prevNode with value. */
static void test_delete_file(void **state) {
  fx *f = *state;
  set(f, "/d/k", "v");
  yajl_val v = apply_ok(f, rec(PROTO_OP_DELETE, "/d/k", NULL, 0), 200, "delete");
  assert_jkeys(v, "", "action,node,prevNode");
  assert_jkeys(v, "node", "key,modifiedIndex,createdIndex");
  assert_jint(v, "node.modifiedIndex", 2);
  assert_jint(v, "node.createdIndex", 1);
  assert_jstr(v, "prevNode.value", "v");
  yajl_tree_free(v);
  store_event_unref(one_event(f, 2, STORE_ACT_DELETE, "/d/k"));
  get_err(f, "/d/k", 100, "/d/k");
  apply_err(f, rec(PROTO_OP_DELETE, "/d/k", NULL, 0), 100, "/d/k");
  /* dir=true also deletes a file (etcd). */
  set(f, "/d/k2", "v");
  put(f, rec(PROTO_OP_DELETE, "/d/k2", NULL, PROTO_REC_DIR));
  get_err(f, "/d/k2", 100, "/d/k2");
}

/* A directory without dir/recursive is 102; non-empty without recursive is 108. */
static void test_delete_dir_rules(void **state) {
  fx *f = *state;
  set(f, "/d/k", "v");
  apply_err(f, rec(PROTO_OP_DELETE, "/d", NULL, 0), 102, "/d");
  apply_err(f, rec(PROTO_OP_DELETE, "/d", NULL, PROTO_REC_DIR), 108, "/d");
  /* A hidden child alone still makes the directory non-empty. */
  set(f, "/h/_hidden", "v");
  apply_err(f, rec(PROTO_OP_DELETE, "/h", NULL, PROTO_REC_DIR), 108, "/h");
  /* An empty directory goes with dir=true. */
  mkdir_(f, "/empty"); /* index 3 */
  yajl_val v = apply_ok(f, rec(PROTO_OP_DELETE, "/empty", NULL, PROTO_REC_DIR), 200, "delete");
  assert_jkeys(v, "node", "key,dir,modifiedIndex,createdIndex");
  assert_jint(v, "node.modifiedIndex", 4);
  assert_jint(v, "node.createdIndex", 3);
  assert_jkeys(v, "prevNode", "key,dir,modifiedIndex,createdIndex");
  yajl_tree_free(v);
  store_event *e = one_event(f, 4, STORE_ACT_DELETE, "/empty");
  assert_int_equal(e->dir, 1);
  store_event_unref(e);
}

/* recursive=true removes the whole subtree and nothing outside it (/ab, /a-b stay). */
static void test_delete_recursive(void **state) {
  fx *f = *state;
  set(f, "/a/b/c/d", "1");
  set(f, "/a/x", "2");
  set(f, "/a/_h/y", "3");
  set(f, "/ab/c", "4");
  set(f, "/a-b/c", "5");
  set(f, "/a0", "6");
  yajl_val v = apply_ok(f, rec(PROTO_OP_DELETE, "/a", NULL, PROTO_REC_RECURSIVE), 200, "delete");
  assert_jkeys(v, "node", "key,dir,modifiedIndex,createdIndex");
  assert_jint(v, "node.modifiedIndex", 7);
  yajl_tree_free(v);
  store_event_unref(one_event(f, 7, STORE_ACT_DELETE, "/a"));
  get_err(f, "/a", 100, "/a");
  get_err(f, "/a/b/c/d", 100, "/a");
  get_err(f, "/a/x", 100, "/a");
  get_err(f, "/a/_h/y", 100, "/a");
  /* Recreating /a shows nothing left over. */
  mkdir_(f, "/a");
  v = get_at(f, "/a", 1, 1, f->now);
  assert_jabsent(v, "node.nodes");
  yajl_tree_free(v);
  const char *keep[] = {"/ab/c", "/a-b/c", "/a0"};
  for (size_t i = 0; i < 3; i++) {
    v = get(f, keep[i]);
    assert_jstr(v, "node.key", keep[i]);
    yajl_tree_free(v);
  }
}

/* ------------------------------------------------------------------ POST */

/* POST creates dir/<20-digit index> (create, 201), making the directory if missing. */
static void test_post_in_order(void **state) {
  fx *f = *state;
  yajl_val v = apply_ok(f, rec(PROTO_OP_POST, "/q", "first", 0), 201, "create");
  assert_jkeys(v, "", "action,node");
  assert_jstr(v, "node.key", "/q/00000000000000000001");
  assert_jstr(v, "node.value", "first");
  assert_jint(v, "node.createdIndex", 1);
  yajl_tree_free(v);
  store_event_unref(one_event(f, 1, STORE_ACT_CREATE, "/q/00000000000000000001"));
  set(f, "/other", "x"); /* makes a gap */
  v = apply_ok(f, rec(PROTO_OP_POST, "/q", NULL, 0), 201, "create");
  assert_jstr(v, "node.key", "/q/00000000000000000003");
  assert_jstr(v, "node.value", "");
  assert_jint(v, "node.createdIndex", 3);
  yajl_tree_free(v);
  drop_events(f);
  v = apply_ok(f, rec(PROTO_OP_POST, "/q", NULL, PROTO_REC_DIR), 201, "create");
  assert_jkeys(v, "node", "key,dir,modifiedIndex,createdIndex");
  assert_jstr(v, "node.key", "/q/00000000000000000004");
  yajl_tree_free(v);
  drop_events(f);

  v = get(f, "/q");
  assert_jint(v, "node.createdIndex", 1); /* the implicit directory got the first index */
  assert_int_equal(jlen(v, "node.nodes"), 3);
  assert_jstr(v, "node.nodes.0.key", "/q/00000000000000000001");
  assert_jstr(v, "node.nodes.1.key", "/q/00000000000000000003");
  assert_jstr(v, "node.nodes.2.key", "/q/00000000000000000004");
  yajl_tree_free(v);
  /* POST at the root. */
  v = apply_ok(f, rec(PROTO_OP_POST, "/", "r", 0), 201, "create");
  assert_jstr(v, "node.key", "/00000000000000000005");
  yajl_tree_free(v);
  drop_events(f);
}

/* ------------------------------------------------------------------ listings */

/* Hidden keys are not listed (with their subtrees) but can be read by full path. */
static void test_hidden_keys(void **state) {
  fx *f = *state;
  set(f, "/h/vis", "v");
  set(f, "/h/_secret", "s");
  set(f, "/h/_hd/x", "hx");
  set(f, "/h/sub/_y", "y");
  set(f, "/h/a_b", "ab");
  set(f, "/h/.dot", "dot");
  set(f, "/_top", "t");
  yajl_val v = get(f, "/h");
  assert_int_equal(jlen(v, "node.nodes"), 4);
  assert_jstr(v, "node.nodes.0.key", "/h/.dot");
  assert_jstr(v, "node.nodes.1.key", "/h/a_b");
  assert_jstr(v, "node.nodes.2.key", "/h/sub");
  assert_jstr(v, "node.nodes.3.key", "/h/vis");
  yajl_tree_free(v);
  v = get_at(f, "/", 1, 1, f->now);
  assert_jkeys(v, "node", "dir,nodes");
  assert_int_equal(jlen(v, "node.nodes"), 1);
  assert_jstr(v, "node.nodes.0.key", "/h");
  assert_int_equal(jlen(v, "node.nodes.0.nodes"), 4);
  assert_jstr(v, "node.nodes.0.nodes.2.key", "/h/sub");
  assert_jabsent(v, "node.nodes.0.nodes.2.nodes"); /* its only child is hidden */
  yajl_tree_free(v);
  v = get(f, "/h/_secret");
  assert_jstr(v, "node.value", "s");
  yajl_tree_free(v);
  v = get(f, "/_top");
  assert_jstr(v, "node.value", "t");
  yajl_tree_free(v);
  /* Listing a hidden directory itself shows its children. */
  v = get(f, "/h/_hd");
  assert_int_equal(jlen(v, "node.nodes"), 1);
  assert_jstr(v, "node.nodes.0.key", "/h/_hd/x");
  yajl_tree_free(v);
}

/* Sorted listings follow key bytes at every level: "10" < "9" < "Beta" < "alpha". */
static void test_sorted_listing(void **state) {
  fx *f = *state;
  set(f, "/s/alpha", "a");
  set(f, "/s/9/z", "9z");
  set(f, "/s/Beta", "B");
  set(f, "/s/10", "10");
  set(f, "/s/9/a", "9a");
  set(f, "/s/9/Z/1", "deep");
  yajl_val v = get_at(f, "/s", 1, 1, f->now);
  assert_int_equal(jlen(v, "node.nodes"), 4);
  assert_jstr(v, "node.nodes.0.key", "/s/10");
  assert_jstr(v, "node.nodes.1.key", "/s/9");
  assert_jstr(v, "node.nodes.2.key", "/s/Beta");
  assert_jstr(v, "node.nodes.3.key", "/s/alpha");
  assert_jkeys(v, "node.nodes.1", "key,dir,nodes,modifiedIndex,createdIndex");
  assert_int_equal(jlen(v, "node.nodes.1.nodes"), 3);
  assert_jstr(v, "node.nodes.1.nodes.0.key", "/s/9/Z");
  assert_jstr(v, "node.nodes.1.nodes.0.nodes.0.key", "/s/9/Z/1");
  assert_jstr(v, "node.nodes.1.nodes.0.nodes.0.value", "deep");
  assert_jstr(v, "node.nodes.1.nodes.1.key", "/s/9/a");
  assert_jstr(v, "node.nodes.1.nodes.2.key", "/s/9/z");
  assert_jstr(v, "node.nodes.1.nodes.2.value", "9z");
  yajl_tree_free(v);
}

/* Without recursive, child directories appear without nodes; empty dirs have no nodes. */
static void test_listing_one_level(void **state) {
  fx *f = *state;
  set(f, "/l/dir/x", "1");
  set(f, "/l/file", "2");
  mkdir_(f, "/l/empty");
  yajl_val v = get(f, "/l");
  assert_jkeys(v, "node", "key,dir,nodes,modifiedIndex,createdIndex");
  assert_int_equal(jlen(v, "node.nodes"), 3);
  assert_jkeys(v, "node.nodes.0", "key,dir,modifiedIndex,createdIndex");
  assert_jstr(v, "node.nodes.0.key", "/l/dir");
  assert_jkeys(v, "node.nodes.1", "key,dir,modifiedIndex,createdIndex");
  assert_jstr(v, "node.nodes.1.key", "/l/empty");
  assert_jkeys(v, "node.nodes.2", "key,value,modifiedIndex,createdIndex");
  assert_jint(v, "node.nodes.2.createdIndex", 2);
  yajl_tree_free(v);
  /* recursive on a file returns the file. */
  v = get_at(f, "/l/file", 1, 1, f->now);
  assert_jkeys(v, "node", "key,value,modifiedIndex,createdIndex");
  yajl_tree_free(v);
}

/* The root lists as {"dir":true,"nodes":[...]} without key or indexes. */
static void test_root_listing(void **state) {
  fx *f = *state;
  yajl_val v = get(f, "/");
  assert_jkeys(v, "", "action,node");
  assert_jkeys(v, "node", "dir");
  yajl_tree_free(v);
  set(f, "/b", "1");
  set(f, "/a/x", "2");
  v = get(f, "/");
  assert_jkeys(v, "node", "dir,nodes");
  assert_int_equal(jlen(v, "node.nodes"), 2);
  assert_jstr(v, "node.nodes.0.key", "/a");
  assert_jabsent(v, "node.nodes.0.nodes");
  assert_jstr(v, "node.nodes.1.key", "/b");
  yajl_tree_free(v);
  v = get_at(f, "/", 1, 0, f->now);
  assert_jstr(v, "node.nodes.0.nodes.0.key", "/a/x");
  yajl_tree_free(v);
}


int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_set_creates_parents),
      T(test_set_replaces_file),
      T(test_set_empty_value),
      T(test_set_on_dir_is_102),
      T(test_set_dir_replaces_file),
      T(test_root_is_read_only),
      T(test_create_existing_is_105),
      T(test_update_missing_is_100),
      T(test_update_keeps_created_index),
      T(test_below_file_is_104),
      T(test_cas_success),
      T(test_cas_failure_causes),
      T(test_cas_on_dir_is_102),
      T(test_cad),
      T(test_delete_file),
      T(test_delete_dir_rules),
      T(test_delete_recursive),
      T(test_post_in_order),
      T(test_hidden_keys),
      T(test_sorted_listing),
      T(test_listing_one_level),
      T(test_root_listing),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
