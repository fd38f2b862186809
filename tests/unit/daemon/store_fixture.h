/* store_fixture: the fixture and helpers shared by the tree store's unit tests: a LevelDB
 * store in a temporary directory, records applied as the apply thread does, and JSON checks.
 * (Header-only: each test program includes it once.) */
#ifndef QUORUM_TESTS_STORE_FIXTURE_H
#define QUORUM_TESTS_STORE_FIXTURE_H

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

static inline int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static inline int open_store(fx *f) {
  char err[256] = "";
  if (store_open(&f->s, f->dir, 0, &f->st, err, sizeof err)) {
    print_error("store_open: %s\n", err);
    return -1;
  }
  return 0;
}

static inline int setup(void **state) {
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

static inline void drop_events(fx *f) {
  for (size_t i = 0; i < f->nev; i++) store_event_unref(f->evs[i]);
  f->nev = 0;
}

static inline int teardown(void **state) {
  fx *f = *state;
  drop_events(f);
  free(f->evs);
  store_close(f->s);
  nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(f);
  return 0;
}

/* ------------------------------------------------------------------ records */

static inline proto_record rec(int op, const char *path, const char *value, uint32_t flags) {
  proto_record r = {0};
  r.op = (uint8_t)op;
  r.flags = flags;
  r.path = path;
  r.path_len = strlen(path);
  r.value = value ? value : "";
  r.value_len = value ? strlen(value) : 0;
  return r;
}

static inline proto_record with_ttl(proto_record r, int64_t expiration) {
  r.flags |= PROTO_REC_TTL;
  r.expiration = expiration;
  return r;
}

static inline proto_record with_prev_value(proto_record r, const char *pv) {
  r.flags |= PROTO_REC_PREV_VALUE;
  r.prev_value = pv;
  r.prev_value_len = strlen(pv);
  return r;
}

static inline proto_record sync_rec(int64_t time) {
  proto_record r = rec(PROTO_OP_SYNC, "", NULL, 0);
  r.time = time;
  return r;
}

/* Applies r at the next log index (at f->now unless r.time is set) without flushing the
 * group. Free the result. */
static inline store_result apply_nf(fx *f, proto_record r) {
  store_result res;
  if (!r.time) r.time = f->now;
  assert_int_equal(store_apply(f->s, ++f->log, &r, &res, &f->evs, &f->nev, &f->cap), 0);
  assert_true(res.raft_index == f->log);
  return res;
}

/* Applies r as a group of its own (apply, then flush as the apply thread does). */
static inline store_result apply(fx *f, proto_record r) {
  store_result res = apply_nf(f, r);
  assert_int_equal(store_group_flush(f->s), 0);
  assert_true(store_applied(f->s) == f->log);
  return res;
}

/* ------------------------------------------------------------------ JSON helpers */

static inline yajl_val parse_body(const char *body, size_t len) {
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
static inline yajl_val jget(yajl_val v, const char *path) {
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

static inline void assert_jstr(yajl_val v, const char *path, const char *want) {
  yajl_val x = jget(v, path);
  if (!YAJL_IS_STRING(x)) print_error("%s: not a string\n", path);
  assert_true(YAJL_IS_STRING(x));
  const char *got = x->u.string;
  if (strcmp(got, want)) print_error("%s: \"%s\", want \"%s\"\n", path, got, want);
  assert_string_equal(got, want);
}

static inline void assert_jint(yajl_val v, const char *path, long long want) {
  yajl_val x = jget(v, path);
  if (!YAJL_IS_INTEGER(x)) print_error("%s: not an integer\n", path);
  assert_true(YAJL_IS_INTEGER(x));
  if (YAJL_GET_INTEGER(x) != want) print_error("%s: %lld, want %lld\n", path, YAJL_GET_INTEGER(x), want);
  assert_true(YAJL_GET_INTEGER(x) == want);
}

static inline void assert_jabsent(yajl_val v, const char *path) {
  if (jget(v, path)) print_error("%s: present, want absent\n", path);
  assert_null(jget(v, path));
}

static inline size_t jlen(yajl_val v, const char *path) {
  yajl_val x = jget(v, path);
  assert_true(YAJL_IS_ARRAY(x));
  return x->u.array.len;
}

/* The object at path has exactly the comma-separated keys, in that order. */
static inline void assert_jkeys(yajl_val v, const char *path, const char *keys) {
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
static inline yajl_val apply_ok(fx *f, proto_record r, int status, const char *action) {
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
static inline void put(fx *f, proto_record r) {
  store_result res = apply(f, r);
  if (res.error_code)
    print_error("%.*s: unexpected error: %.*s", (int)r.path_len, r.path, (int)res.body_len, res.body);
  assert_int_equal(res.error_code, 0);
  store_result_free(&res);
  drop_events(f);
}

static inline void set(fx *f, const char *path, const char *value) {
  put(f, rec(PROTO_OP_SET, path, value, 0));
}

static inline void mkdir_(fx *f, const char *path) { put(f, rec(PROTO_OP_SET, path, NULL, PROTO_REC_DIR)); }

/* Checks an error result: status from the table, exact body fields, index = current index. */
static inline void check_error(fx *f, store_result *res, int code, const char *cause) {
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
static inline void apply_err(fx *f, proto_record r, int code, const char *cause) {
  uint64_t before = store_index(f->s);
  store_result res = apply(f, r);
  check_error(f, &res, code, cause);
  store_result_free(&res);
  assert_int_equal(f->nev, 0);
  assert_true(store_index(f->s) == before);
  assert_true(store_applied(f->s) == f->log);
}

/* GET path at time now; returns the parsed body (free it). */
static inline yajl_val get_at(fx *f, const char *path, int recursive, int sorted, int64_t now) {
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

static inline yajl_val get(fx *f, const char *path) { return get_at(f, path, 0, 0, f->now); }

static inline void get_err(fx *f, const char *path, int code, const char *cause) {
  store_result res;
  store_get(f->s, path, strlen(path), 0, 0, f->now, &res);
  check_error(f, &res, code, cause);
  store_result_free(&res);
}

/* Takes the single event of the last apply, checking index, action, key. Unref it. */
static inline store_event *one_event(fx *f, uint64_t index, int action, const char *key) {
  if (f->nev != 1) print_error("%zu events, want 1\n", f->nev);
  assert_int_equal(f->nev, 1);
  store_event *e = f->evs[0];
  f->nev = 0;
  assert_int_equal(e->refs, 2); /* ours and the store's history's */
  assert_true(e->index == index);
  assert_int_equal(e->action, action);
  assert_string_equal(e->key, key);
  assert_int_equal(e->key_len, strlen(key));
  assert_int_equal(e->json[e->json_len - 1], '\n');
  return e;
}


#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif
