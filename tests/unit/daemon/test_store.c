/* Unit tests of daemon/store.c (and store_list.c): records applied straight to a LevelDB store
 * in a temporary directory, results and events checked field by field against etcd v2's
 * semantics (shared/docs/v2-api.md sections 3-7, 9). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <yajl/yajl_tree.h>

#include "daemon/store.h"
#include "proto/v2_json.h"

#define NS 1000000000LL
#define T0 1767323045LL /* 2026-01-02T03:04:05Z */

/* ------------------------------------------------------------------ fixture */

typedef struct fx {
  char dir[64];
  store *s;
  stats st;
  uint64_t log; /* last log index used */
  int64_t now;  /* default record time */
  store_event **evs;
  size_t nev, cap;
} fx;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int open_store(fx *f) {
  char err[256] = "";
  if (store_open(&f->s, f->dir, 0, &f->st, err, sizeof err)) {
    print_error("store_open: %s\n", err);
    return -1;
  }
  return 0;
}

static int setup(void **state) {
  fx *f = calloc(1, sizeof *f);
  if (!f) return -1;
  snprintf(f->dir, sizeof f->dir, "/tmp/quorum-unit-store-XXXXXX");
  if (!mkdtemp(f->dir) || open_store(f)) {
    free(f);
    return -1;
  }
  f->now = T0 * NS;
  *state = f;
  return 0;
}

static void drop_events(fx *f) {
  for (size_t i = 0; i < f->nev; i++) store_event_unref(f->evs[i]);
  f->nev = 0;
}

static int teardown(void **state) {
  fx *f = *state;
  drop_events(f);
  free(f->evs);
  store_close(f->s);
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

/* ------------------------------------------------------------------ records */

static proto_record rec(int op, const char *path, const char *value, uint32_t flags) {
  proto_record r = {0};
  r.op = (uint8_t)op;
  r.flags = flags;
  r.path = path;
  r.path_len = strlen(path);
  r.value = value ? value : "";
  r.value_len = value ? strlen(value) : 0;
  return r;
}

static proto_record with_ttl(proto_record r, int64_t expiration) {
  r.flags |= PROTO_REC_TTL;
  r.expiration = expiration;
  return r;
}

static proto_record with_prev_value(proto_record r, const char *pv) {
  r.flags |= PROTO_REC_PREV_VALUE;
  r.prev_value = pv;
  r.prev_value_len = strlen(pv);
  return r;
}

static proto_record sync_rec(int64_t time) {
  proto_record r = rec(PROTO_OP_SYNC, "", NULL, 0);
  r.time = time;
  return r;
}

/* Applies r at the next log index (at f->now unless r.time is set) without flushing the
 * group. Free the result. */
static store_result apply_nf(fx *f, proto_record r) {
  store_result res;
  if (!r.time) r.time = f->now;
  assert_int_equal(store_apply(f->s, ++f->log, &r, &res, &f->evs, &f->nev, &f->cap), 0);
  assert_true(res.raft_index == f->log);
  return res;
}

/* Applies r as a group of its own (apply, then flush as the apply thread does). */
static store_result apply(fx *f, proto_record r) {
  store_result res = apply_nf(f, r);
  assert_int_equal(store_group_flush(f->s), 0);
  assert_true(store_applied(f->s) == f->log);
  return res;
}

/* ------------------------------------------------------------------ JSON helpers */

static yajl_val parse_body(const char *body, size_t len) {
  char err[256] = "";
  char *copy = malloc(len + 1);
  assert_non_null(copy);
  memcpy(copy, body, len);
  copy[len] = 0;
  yajl_val v = yajl_tree_parse(copy, err, sizeof err);
  if (!v) print_error("bad JSON (%s): %s\n", err, copy);
  free(copy);
  assert_non_null(v);
  return v;
}

/* The value at a dotted path ("node.nodes.0.key"); numeric parts index arrays. NULL if absent. */
static yajl_val jget(yajl_val v, const char *path) {
  char buf[256];
  snprintf(buf, sizeof buf, "%s", path);
  char *save = NULL;
  for (char *part = strtok_r(buf, ".", &save); part && v; part = strtok_r(NULL, ".", &save)) {
    if (YAJL_IS_ARRAY(v)) {
      size_t i = (size_t)strtoul(part, NULL, 10);
      v = i < v->u.array.len ? v->u.array.values[i] : NULL;
    } else if (YAJL_IS_OBJECT(v)) {
      yajl_val next = NULL;
      for (size_t i = 0; i < v->u.object.len; i++)
        if (!strcmp(v->u.object.keys[i], part)) next = v->u.object.values[i];
      v = next;
    } else {
      v = NULL;
    }
  }
  return v;
}

static void assert_jstr(yajl_val v, const char *path, const char *want) {
  yajl_val x = jget(v, path);
  if (!YAJL_IS_STRING(x)) print_error("%s: not a string\n", path);
  assert_true(YAJL_IS_STRING(x));
  const char *got = x->u.string;
  if (strcmp(got, want)) print_error("%s: \"%s\", want \"%s\"\n", path, got, want);
  assert_string_equal(got, want);
}

static void assert_jint(yajl_val v, const char *path, long long want) {
  yajl_val x = jget(v, path);
  if (!YAJL_IS_INTEGER(x)) print_error("%s: not an integer\n", path);
  assert_true(YAJL_IS_INTEGER(x));
  if (YAJL_GET_INTEGER(x) != want) print_error("%s: %lld, want %lld\n", path, YAJL_GET_INTEGER(x), want);
  assert_true(YAJL_GET_INTEGER(x) == want);
}

static void assert_jabsent(yajl_val v, const char *path) {
  if (jget(v, path)) print_error("%s: present, want absent\n", path);
  assert_null(jget(v, path));
}

static size_t jlen(yajl_val v, const char *path) {
  yajl_val x = jget(v, path);
  assert_true(YAJL_IS_ARRAY(x));
  return x->u.array.len;
}

/* The object at path has exactly the comma-separated keys, in that order. */
static void assert_jkeys(yajl_val v, const char *path, const char *keys) {
  yajl_val o = path[0] ? jget(v, path) : v;
  assert_true(YAJL_IS_OBJECT(o));
  char have[512] = "";
  size_t n = 0;
  for (size_t i = 0; i < o->u.object.len; i++)
    n += (size_t)snprintf(have + n, sizeof have - n, "%s%s", i ? "," : "", o->u.object.keys[i]);
  if (strcmp(have, keys)) print_error("%s: keys \"%s\", want \"%s\"\n", path, have, keys);
  assert_string_equal(have, keys);
}

/* ------------------------------------------------------------------ request helpers */

/* Applies r expecting success with status and action; returns the parsed body (free it). */
static yajl_val apply_ok(fx *f, proto_record r, int status, const char *action) {
  store_result res = apply(f, r);
  if (res.error_code)
    print_error("%.*s: unexpected error %d: %.*s", (int)r.path_len, r.path, res.error_code,
                (int)res.body_len, res.body);
  assert_int_equal(res.error_code, 0);
  assert_int_equal(res.status, status);
  assert_string_equal(store_action_name(res.action), action);
  assert_true(res.etcd_index == store_index(f->s));
  assert_non_null(res.body);
  assert_int_equal(res.body[res.body_len - 1], '\n');
  yajl_val v = parse_body(res.body, res.body_len);
  store_result_free(&res);
  assert_jstr(v, "action", action);
  return v;
}

/* Applies r expecting success; discards the body and the events. */
static void put(fx *f, proto_record r) {
  store_result res = apply(f, r);
  if (res.error_code)
    print_error("%.*s: unexpected error: %.*s", (int)r.path_len, r.path, (int)res.body_len, res.body);
  assert_int_equal(res.error_code, 0);
  store_result_free(&res);
  drop_events(f);
}

static void set(fx *f, const char *path, const char *value) {
  put(f, rec(PROTO_OP_SET, path, value, 0));
}

static void mkdir_(fx *f, const char *path) { put(f, rec(PROTO_OP_SET, path, NULL, PROTO_REC_DIR)); }

/* Checks an error result: status from the table, exact body fields, index = current index. */
static void check_error(fx *f, store_result *res, int code, const char *cause) {
  if (res->error_code != code)
    print_error("error %d, want %d: %.*s", res->error_code, code, (int)res->body_len, res->body);
  assert_int_equal(res->error_code, code);
  assert_int_equal(res->status, proto_v2_error_status(code));
  yajl_val v = parse_body(res->body, res->body_len);
  assert_jkeys(v, "", cause ? "errorCode,message,cause,index" : "errorCode,message,index");
  assert_jint(v, "errorCode", code);
  assert_jstr(v, "message", proto_v2_error_message(code));
  if (cause) assert_jstr(v, "cause", cause);
  assert_jint(v, "index", (long long)store_index(f->s));
  assert_true(res->etcd_index == store_index(f->s));
  yajl_tree_free(v);
}

/* Applies r expecting v2 error code with cause; no event, no index change, applied moves. */
static void apply_err(fx *f, proto_record r, int code, const char *cause) {
  uint64_t before = store_index(f->s);
  store_result res = apply(f, r);
  check_error(f, &res, code, cause);
  store_result_free(&res);
  assert_int_equal(f->nev, 0);
  assert_true(store_index(f->s) == before);
  assert_true(store_applied(f->s) == f->log);
}

/* GET path at time now; returns the parsed body (free it). */
static yajl_val get_at(fx *f, const char *path, int recursive, int sorted, int64_t now) {
  store_result res;
  store_get(f->s, path, strlen(path), recursive, sorted, now, &res);
  if (res.error_code) print_error("GET %s: %.*s", path, (int)res.body_len, res.body);
  assert_int_equal(res.error_code, 0);
  assert_int_equal(res.status, 200);
  assert_true(res.etcd_index == store_index(f->s));
  yajl_val v = parse_body(res.body, res.body_len);
  store_result_free(&res);
  assert_jstr(v, "action", "get");
  return v;
}

static yajl_val get(fx *f, const char *path) { return get_at(f, path, 0, 0, f->now); }

static void get_err(fx *f, const char *path, int code, const char *cause) {
  store_result res;
  store_get(f->s, path, strlen(path), 0, 0, f->now, &res);
  check_error(f, &res, code, cause);
  store_result_free(&res);
}

/* Takes the single event of the last apply, checking index, action, key. Unref it. */
static store_event *one_event(fx *f, uint64_t index, int action, const char *key) {
  if (f->nev != 1) print_error("%zu events, want 1\n", f->nev);
  assert_int_equal(f->nev, 1);
  store_event *e = f->evs[0];
  f->nev = 0;
  assert_int_equal(e->refs, 1);
  assert_true(e->index == index);
  assert_int_equal(e->action, action);
  assert_string_equal(e->key, key);
  assert_int_equal(e->key_len, strlen(key));
  assert_int_equal(e->json[e->json_len - 1], '\n');
  return e;
}

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

/* Writes to "/" are 107 with cause "/", for every kind of write. */
static void test_root_is_read_only(void **state) {
  fx *f = *state;
  set(f, "/x", "1");
  apply_err(f, rec(PROTO_OP_SET, "/", "v", 0), 107, "/");
  apply_err(f, rec(PROTO_OP_SET, "/", NULL, PROTO_REC_DIR), 107, "/");
  apply_err(f, rec(PROTO_OP_CREATE, "/", "v", 0), 107, "/");
  apply_err(f, rec(PROTO_OP_UPDATE, "/", "v", 0), 107, "/");
  apply_err(f, with_prev_value(rec(PROTO_OP_CAS, "/", "v", 0), "x"), 107, "/");
  apply_err(f, rec(PROTO_OP_DELETE, "/", NULL, PROTO_REC_DIR | PROTO_REC_RECURSIVE), 107, "/");
  apply_err(f, with_prev_value(rec(PROTO_OP_CAD, "/", NULL, 0), "x"), 107, "/");
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

/* ------------------------------------------------------------------ TTL, expiry, refresh */

/* A TTL shows as expiration (RFC 3339) and ttl rounded up; store_next_expiry finds it. */
static void test_ttl_shown(void **state) {
  fx *f = *state;
  int64_t exp = f->now + 5 * NS;
  yajl_val v = apply_ok(f, with_ttl(rec(PROTO_OP_SET, "/t", "v", 0), exp), 201, "set");
  assert_jkeys(v, "node", "key,value,expiration,ttl,modifiedIndex,createdIndex");
  assert_jstr(v, "node.expiration", "2026-01-02T03:04:10Z");
  assert_jint(v, "node.ttl", 5);
  yajl_tree_free(v);
  drop_events(f);
  assert_true(store_next_expiry(f->s) == exp);
  v = get_at(f, "/t", 0, 0, f->now + 3 * NS / 2);
  assert_jint(v, "node.ttl", 4);
  yajl_tree_free(v);
  /* A directory with a TTL shows it in listings too. */
  put(f, with_ttl(rec(PROTO_OP_SET, "/td", NULL, PROTO_REC_DIR), f->now + 2 * NS));
  assert_true(store_next_expiry(f->s) == f->now + 2 * NS);
  v = get(f, "/");
  assert_jkeys(v, "node.nodes.0", "key,value,expiration,ttl,modifiedIndex,createdIndex");
  assert_jkeys(v, "node.nodes.1", "key,dir,expiration,ttl,modifiedIndex,createdIndex");
  assert_jint(v, "node.nodes.1.ttl", 2);
  yajl_tree_free(v);
  /* set without a TTL makes the key permanent again. */
  set(f, "/t", "v2");
  assert_true(store_next_expiry(f->s) == f->now + 2 * NS);
  /* dir=true&prevExist=true without ttl clears a directory's TTL. */
  put(f, rec(PROTO_OP_UPDATE, "/td", NULL, PROTO_REC_DIR | PROTO_REC_PREV_EXIST));
  assert_true(store_next_expiry(f->s) == 0);
  v = get(f, "/td");
  assert_jkeys(v, "node", "key,dir,modifiedIndex,createdIndex");
  yajl_tree_free(v);
}

/* A SYNC before any expiration changes nothing (index, events, keys). */
static void test_sync_before_expiry(void **state) {
  fx *f = *state;
  put(f, with_ttl(rec(PROTO_OP_SET, "/t", "v", 0), f->now + 5 * NS));
  store_result res = apply(f, sync_rec(f->now + 5 * NS - 1));
  assert_int_equal(res.status, 0);
  store_result_free(&res);
  assert_int_equal(f->nev, 0);
  assert_true(store_index(f->s) == 1);
  assert_true(store_applied(f->s) == 2);
  yajl_val v = get(f, "/t");
  yajl_tree_free(v);
}

/* SYNC expires, oldest first, one event per expired node; a dir's subtree goes with it. */
static void test_sync_expires(void **state) {
  fx *f = *state;
  put(f, with_ttl(rec(PROTO_OP_SET, "/e1", "one", 0), f->now + 5 * NS));           /* 1 */
  put(f, with_ttl(rec(PROTO_OP_SET, "/ed", NULL, PROTO_REC_DIR), f->now + 3 * NS)); /* 2 */
  set(f, "/ed/a", "a");                                                              /* 3 */
  put(f, with_ttl(rec(PROTO_OP_SET, "/ed/b", "b", 0), f->now + 4 * NS));            /* 4 */
  put(f, with_ttl(rec(PROTO_OP_SET, "/later", "l", 0), f->now + 60 * NS));          /* 5 */
  assert_true(store_next_expiry(f->s) == f->now + 3 * NS);

  store_result res = apply(f, sync_rec(f->now + 5 * NS)); /* at or before: expired */
  assert_int_equal(res.status, 0);
  store_result_free(&res);
  assert_int_equal(f->nev, 2);
  store_event *d = f->evs[0], *e1 = f->evs[1];
  f->nev = 0;

  assert_true(d->index == 6);
  assert_int_equal(d->action, STORE_ACT_EXPIRE);
  assert_int_equal(d->dir, 1);
  assert_string_equal(d->key, "/ed");
  yajl_val v = parse_body(d->json, d->json_len);
  assert_jkeys(v, "", "action,node,prevNode");
  assert_jstr(v, "action", "expire");
  assert_jkeys(v, "node", "key,dir,modifiedIndex,createdIndex");
  assert_jint(v, "node.modifiedIndex", 6);
  assert_jint(v, "node.createdIndex", 2);
  assert_jkeys(v, "prevNode", "key,dir,expiration,modifiedIndex,createdIndex");
  assert_jstr(v, "prevNode.expiration", "2026-01-02T03:04:08Z");
  yajl_tree_free(v);

  assert_true(e1->index == 7);
  assert_int_equal(e1->action, STORE_ACT_EXPIRE);
  assert_int_equal(e1->dir, 0);
  assert_string_equal(e1->key, "/e1");
  v = parse_body(e1->json, e1->json_len);
  assert_jkeys(v, "node", "key,modifiedIndex,createdIndex");
  assert_jint(v, "node.modifiedIndex", 7);
  assert_jint(v, "node.createdIndex", 1);
  assert_jkeys(v, "prevNode", "key,value,expiration,modifiedIndex,createdIndex");
  assert_jstr(v, "prevNode.value", "one");
  yajl_tree_free(v);
  store_event_unref(d);
  store_event_unref(e1);

  assert_true(store_index(f->s) == 7);
  get_err(f, "/ed", 100, "/ed");
  get_err(f, "/ed/a", 100, "/ed");
  get_err(f, "/ed/b", 100, "/ed");
  get_err(f, "/e1", 100, "/e1");
  v = get(f, "/later");
  yajl_tree_free(v);
  assert_true(store_next_expiry(f->s) == f->now + 60 * NS);
  assert_true(atomic_load(&f->st.store[STATS_EXPIRE_COUNT]) == 2);
  /* A second SYNC at the same time finds nothing more. */
  res = apply(f, sync_rec(f->now + 5 * NS));
  store_result_free(&res);
  assert_int_equal(f->nev, 0);
  assert_true(store_index(f->s) == 7);
}

/* refresh (as set) keeps the value, sets the new TTL, takes an index, and is marked refresh. */
static void test_refresh_as_set(void **state) {
  fx *f = *state;
  put(f, with_ttl(rec(PROTO_OP_SET, "/r", "val", 0), f->now + 5 * NS));
  set(f, "/x", "");
  yajl_val v = apply_ok(
      f, with_ttl(rec(PROTO_OP_SET, "/r", NULL, PROTO_REC_REFRESH), f->now + 10 * NS), 200, "set");
  assert_jstr(v, "node.value", "val");
  assert_jint(v, "node.ttl", 10);
  assert_jint(v, "node.modifiedIndex", 3);
  assert_jint(v, "node.createdIndex", 3); /* quirk: a set gets a new createdIndex */
  assert_jstr(v, "prevNode.value", "val");
  yajl_tree_free(v);
  store_event *e = one_event(f, 3, STORE_ACT_SET, "/r");
  assert_int_equal(e->refresh, 1);
  store_event_unref(e);
  assert_true(store_next_expiry(f->s) == f->now + 10 * NS);
  v = get(f, "/r");
  assert_jstr(v, "node.value", "val");
  yajl_tree_free(v);
}

/* refresh with prevExist (an update) keeps value and createdIndex. */
static void test_refresh_as_update(void **state) {
  fx *f = *state;
  put(f, with_ttl(rec(PROTO_OP_SET, "/r", "val", 0), f->now + 5 * NS));
  yajl_val v = apply_ok(
      f, with_ttl(rec(PROTO_OP_UPDATE, "/r", NULL, PROTO_REC_REFRESH | PROTO_REC_PREV_EXIST),
                  f->now + 20 * NS),
      200, "update");
  assert_jstr(v, "node.value", "val");
  assert_jint(v, "node.ttl", 20);
  assert_jint(v, "node.modifiedIndex", 2);
  assert_jint(v, "node.createdIndex", 1);
  yajl_tree_free(v);
  store_event *e = one_event(f, 2, STORE_ACT_UPDATE, "/r");
  assert_int_equal(e->refresh, 1);
  store_event_unref(e);
  /* refresh as a plain set on a directory is 102. */
  mkdir_(f, "/d");
  apply_err(f, with_ttl(rec(PROTO_OP_SET, "/d", NULL, PROTO_REC_REFRESH), f->now + NS), 102, "/d");
}

/* ------------------------------------------------------------------ log index, history, reopen */

/* A record at or below the applied log index is skipped: no result, no event, no change. */
static void test_same_log_index_is_noop(void **state) {
  fx *f = *state;
  set(f, "/k", "v"); /* log 1 */
  proto_record r = rec(PROTO_OP_SET, "/k", "other", 0);
  r.time = f->now;
  store_result res;
  assert_int_equal(store_apply(f->s, 1, &r, &res, &f->evs, &f->nev, &f->cap), 0);
  assert_int_equal(res.status, 0);
  assert_null(res.body);
  assert_int_equal(f->nev, 0);
  assert_int_equal(store_apply(f->s, 0, &r, &res, &f->evs, &f->nev, &f->cap), 0);
  assert_int_equal(res.status, 0);
  assert_true(store_index(f->s) == 1);
  assert_true(store_applied(f->s) == 1);
  yajl_val v = get(f, "/k");
  assert_jstr(v, "node.value", "v");
  yajl_tree_free(v);
}

/* Failed and read-only records advance the applied log index but not the etcd index. */
static void test_failures_advance_applied(void **state) {
  fx *f = *state;
  set(f, "/k", "v");
  apply_err(f, rec(PROTO_OP_CREATE, "/k", "w", 0), 105, "/k");
  proto_record q = rec(PROTO_OP_QGET, "/k", NULL, 0);
  store_result res = apply(f, q);
  assert_int_equal(res.status, 200);
  assert_true(res.raft_index == 3);
  yajl_val v = parse_body(res.body, res.body_len);
  assert_jstr(v, "action", "get");
  assert_jstr(v, "node.value", "v");
  yajl_tree_free(v);
  store_result_free(&res);
  assert_true(store_applied(f->s) == 3);
  assert_true(store_index(f->s) == 1);
}

/* Applies r inside the current group; checks the error code (0: success) and the index the
 * result reports; returns the parsed body (free it). */
static yajl_val group_apply(fx *f, proto_record r, int code, uint64_t index) {
  store_result res = apply_nf(f, r);
  if (res.error_code != code)
    print_error("%.*s: error %d, want %d: %.*s", (int)r.path_len, r.path, res.error_code, code,
                (int)res.body_len, res.body);
  assert_int_equal(res.error_code, code);
  assert_true(res.etcd_index == index);
  yajl_val v = parse_body(res.body, res.body_len);
  store_result_free(&res);
  return v;
}

/* Records of one group see each other's writes before the flush; readers see them after. */
static void test_group_reads_own_writes(void **state) {
  fx *f = *state;
  set(f, "/base", "b"); /* 1, flushed */
  yajl_val v = group_apply(f, rec(PROTO_OP_SET, "/g/a", "1", 0), 0, 2);
  yajl_tree_free(v);
  /* Not published yet. */
  assert_true(store_index(f->s) == 1);
  assert_true(store_applied(f->s) == f->log - 1);
  get_err(f, "/g/a", 100, "/g");
  /* Later records of the group see /g/a. */
  v = group_apply(f, rec(PROTO_OP_CREATE, "/g/a", "x", 0), 105, 2);
  assert_jstr(v, "cause", "/g/a");
  yajl_tree_free(v);
  v = group_apply(f, rec(PROTO_OP_SET, "/g/a/x", "x", 0), 104, 2);
  assert_jstr(v, "cause", "/g/a");
  yajl_tree_free(v);
  v = group_apply(f, rec(PROTO_OP_UPDATE, "/g/a", "2", PROTO_REC_PREV_EXIST), 0, 3);
  assert_jstr(v, "prevNode.value", "1");
  assert_jint(v, "node.createdIndex", 2);
  yajl_tree_free(v);
  v = group_apply(f, with_prev_value(rec(PROTO_OP_CAS, "/g/a", "3", 0), "1"), 101, 3);
  assert_jstr(v, "cause", "[1 != 2]");
  yajl_tree_free(v);
  v = group_apply(f, with_prev_value(rec(PROTO_OP_CAS, "/g/a", "3", 0), "2"), 0, 4);
  yajl_tree_free(v);
  /* A child written in this group makes its directory non-empty. */
  v = group_apply(f, rec(PROTO_OP_DELETE, "/g", NULL, PROTO_REC_DIR), 108, 4);
  yajl_tree_free(v);
  v = group_apply(f, rec(PROTO_OP_DELETE, "/g", NULL, PROTO_REC_RECURSIVE), 0, 5);
  yajl_tree_free(v);
  v = group_apply(f, rec(PROTO_OP_SET, "/g/b", "4", 0), 0, 6);
  assert_jint(v, "node.createdIndex", 6);
  yajl_tree_free(v);
  v = group_apply(f, rec(PROTO_OP_POST, "/g", "5", 0), 0, 7);
  assert_jstr(v, "node.key", "/g/00000000000000000007");
  yajl_tree_free(v);
  v = group_apply(f, rec(PROTO_OP_DELETE, "/g/a", NULL, 0), 100, 7);
  assert_jstr(v, "cause", "/g/a");
  yajl_tree_free(v);
  assert_int_equal(store_group_flush(f->s), 0);

  assert_true(store_index(f->s) == 7);
  assert_true(store_applied(f->s) == f->log);
  assert_int_equal(f->nev, 6);
  for (size_t i = 0; i < f->nev; i++) assert_true(f->evs[i]->index == 2 + i);
  drop_events(f);
  v = get_at(f, "/g", 1, 1, f->now);
  assert_jint(v, "node.createdIndex", 6);
  assert_int_equal(jlen(v, "node.nodes"), 2);
  assert_jstr(v, "node.nodes.0.key", "/g/00000000000000000007");
  assert_jstr(v, "node.nodes.1.key", "/g/b");
  assert_jstr(v, "node.nodes.1.value", "4");
  yajl_tree_free(v);
}

/* A SYNC inside a group expires keys written earlier in the same group. */
static void test_group_sync_sees_group_ttls(void **state) {
  fx *f = *state;
  yajl_val v = group_apply(f, with_ttl(rec(PROTO_OP_SET, "/t/a", "a", 0), f->now + NS), 0, 1);
  yajl_tree_free(v);
  v = group_apply(f, rec(PROTO_OP_SET, "/t/b", "b", 0), 0, 2);
  yajl_tree_free(v);
  store_result res = apply_nf(f, sync_rec(f->now + 2 * NS));
  store_result_free(&res);
  assert_int_equal(store_group_flush(f->s), 0);
  assert_int_equal(f->nev, 3);
  assert_int_equal(f->evs[2]->action, STORE_ACT_EXPIRE);
  assert_string_equal(f->evs[2]->key, "/t/a");
  assert_true(f->evs[2]->index == 3);
  drop_events(f);
  assert_true(store_index(f->s) == 3);
  get_err(f, "/t/a", 100, "/t/a");
  assert_true(store_next_expiry(f->s) == 0);
}

/* store_sync_applied flushes and reports the applied log index. */
static void test_sync_applied(void **state) {
  fx *f = *state;
  set(f, "/a", "1");
  store_result res = apply_nf(f, rec(PROTO_OP_SET, "/b", "2", 0));
  store_result_free(&res);
  drop_events(f);
  assert_true(store_sync_applied(f->s) == f->log);
  assert_true(store_applied(f->s) == f->log);
  assert_true(store_index(f->s) == 2);
}

/* History keeps the last STORE_HISTORY events, oldest first, after 1100 writes. */
static void test_history_window(void **state) {
  fx *f = *state;
  char path[32];
  for (int i = 1; i <= 1100; i++) {
    snprintf(path, sizeof path, "/h/%d", i % 7);
    set(f, path, "x");
  }
  store_event **evs = NULL;
  size_t n = 0;
  assert_int_equal(store_load_history(f->s, &evs, &n), 0);
  assert_int_equal(n, STORE_HISTORY);
  for (size_t i = 0; i < n; i++) {
    uint64_t want = 1100 - STORE_HISTORY + 1 + i;
    if (evs[i]->index != want) print_error("history[%zu] = %" PRIu64 "\n", i, evs[i]->index);
    assert_true(evs[i]->index == want);
    snprintf(path, sizeof path, "/h/%d", (int)(want % 7));
    assert_string_equal(evs[i]->key, path);
    assert_int_equal(evs[i]->action, STORE_ACT_SET);
    assert_int_equal(evs[i]->refs, 1);
  }
  yajl_val v = parse_body(evs[0]->json, evs[0]->json_len);
  assert_jint(v, "node.modifiedIndex", 101);
  yajl_tree_free(v);
  for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
  free(evs);
}

/* History loads short histories too, with refresh flags and JSON intact. */
static void test_history_small(void **state) {
  fx *f = *state;
  set(f, "/a", "1");
  put(f, with_ttl(rec(PROTO_OP_SET, "/a", NULL, PROTO_REC_REFRESH), f->now + NS));
  put(f, rec(PROTO_OP_DELETE, "/a", NULL, 0));
  store_event **evs = NULL;
  size_t n = 0;
  assert_int_equal(store_load_history(f->s, &evs, &n), 0);
  assert_int_equal(n, 3);
  assert_true(evs[0]->index == 1 && evs[1]->index == 2 && evs[2]->index == 3);
  assert_int_equal(evs[1]->refresh, 1);
  assert_int_equal(evs[2]->action, STORE_ACT_DELETE);
  yajl_val v = parse_body(evs[2]->json, evs[2]->json_len);
  assert_jstr(v, "action", "delete");
  yajl_tree_free(v);
  assert_int_equal(evs[2]->json[evs[2]->json_len - 1], '\n');
  for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
  free(evs);
}

/* After close and reopen, the index, the applied log index, the keys and history are back. */
static void test_reopen(void **state) {
  fx *f = *state;
  set(f, "/p/a", "1");
  put(f, with_ttl(rec(PROTO_OP_SET, "/p/t", "2", 0), f->now + 30 * NS));
  apply_err(f, rec(PROTO_OP_CREATE, "/p/a", "x", 0), 105, "/p/a");
  store_close(f->s);
  f->s = NULL;
  assert_int_equal(open_store(f), 0);
  assert_true(store_index(f->s) == 2);
  assert_true(store_applied(f->s) == 3);
  yajl_val v = get_at(f, "/p", 1, 1, f->now);
  assert_int_equal(jlen(v, "node.nodes"), 2);
  assert_jstr(v, "node.nodes.0.value", "1");
  assert_jint(v, "node.nodes.1.ttl", 30);
  yajl_tree_free(v);
  assert_true(store_next_expiry(f->s) == f->now + 30 * NS);
  store_event **evs = NULL;
  size_t n = 0;
  assert_int_equal(store_load_history(f->s, &evs, &n), 0);
  assert_int_equal(n, 2);
  for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
  free(evs);
  /* Replaying an applied record is skipped; the next one continues the index. */
  proto_record r = rec(PROTO_OP_SET, "/p/a", "replayed", 0);
  r.time = f->now;
  store_result res;
  assert_int_equal(store_apply(f->s, 3, &r, &res, &f->evs, &f->nev, &f->cap), 0);
  assert_int_equal(res.status, 0);
  assert_int_equal(f->nev, 0);
  yajl_val w = apply_ok(f, rec(PROTO_OP_SET, "/p/b", "3", 0), 201, "set");
  assert_jint(w, "node.createdIndex", 3);
  yajl_tree_free(w);
  drop_events(f);
}

/* History survives a reopen with more than the window: the ring keeps deleting the oldest. */
static void test_reopen_history_window(void **state) {
  fx *f = *state;
  for (int i = 0; i < 1005; i++) set(f, "/k", "v");
  store_close(f->s);
  f->s = NULL;
  assert_int_equal(open_store(f), 0);
  for (int i = 0; i < 10; i++) set(f, "/k", "w");
  store_event **evs = NULL;
  size_t n = 0;
  assert_int_equal(store_load_history(f->s, &evs, &n), 0);
  assert_int_equal(n, STORE_HISTORY);
  assert_true(evs[0]->index == 1015 - STORE_HISTORY + 1);
  assert_true(evs[n - 1]->index == 1015);
  for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
  free(evs);
}

/* Counters of /v2/stats/store follow successes and failures. */
static void test_stats_counters(void **state) {
  fx *f = *state;
  set(f, "/k", "v");
  apply_err(f, rec(PROTO_OP_CREATE, "/k", "v", 0), 105, "/k");
  yajl_val v = get(f, "/k");
  yajl_tree_free(v);
  get_err(f, "/missing", 100, "/missing");
  assert_true(atomic_load(&f->st.store[STATS_SETS_SUCCESS]) == 1);
  assert_true(atomic_load(&f->st.store[STATS_CREATE_FAIL]) == 1);
  assert_true(atomic_load(&f->st.store[STATS_GETS_SUCCESS]) == 1);
  assert_true(atomic_load(&f->st.store[STATS_GETS_FAIL]) == 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

/* Directories remembered by the apply side are forgotten when any directory goes: after a
 * recursive delete, a write below recreates the parent, and a file put in its place is seen. */
static void test_dir_cache_forgets_deleted_dirs(void **state) {
  fx *f = *state;
  set(f, "/d/a", "1");
  set(f, "/d/b", "2"); /* /d is now known to be a directory */
  put(f, rec(PROTO_OP_DELETE, "/d", NULL, PROTO_REC_RECURSIVE));
  set(f, "/d/c", "3");
  yajl_val v = get(f, "/d");
  assert_jint(v, "node.createdIndex", (long long)store_index(f->s));
  assert_int_equal(jlen(v, "node.nodes"), 1);
  yajl_tree_free(v);
  put(f, rec(PROTO_OP_DELETE, "/d", NULL, PROTO_REC_RECURSIVE));
  set(f, "/d", "file");
  apply_err(f, rec(PROTO_OP_SET, "/d/x", "v", 0), 104, "/d");
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
      T(test_ttl_shown),
      T(test_sync_before_expiry),
      T(test_sync_expires),
      T(test_refresh_as_set),
      T(test_refresh_as_update),
      T(test_same_log_index_is_noop),
      T(test_failures_advance_applied),
      T(test_group_reads_own_writes),
      T(test_group_sync_sees_group_ttls),
      T(test_sync_applied),
      T(test_history_window),
      T(test_history_small),
      T(test_reopen),
      T(test_reopen_history_window),
      T(test_stats_counters),
      T(test_dir_cache_forgets_deleted_dirs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
