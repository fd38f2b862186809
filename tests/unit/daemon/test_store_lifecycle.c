/* Unit tests of daemon/store.c over time: TTLs, SYNC expiry and refresh; the applied log index,
 * groups applied in one write, the event history and reopening the store. */
#include "store_fixture.h"

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
    assert_int_equal(evs[i]->refs, 2); /* ours and the store's history's */
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
