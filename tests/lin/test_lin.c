/* Tests of the linearizability checker (tests/lin): the JSON-lines format, hand-written classic
 * histories (linearizable and not: stale reads, lost updates, unknown outcomes both ways, CAS
 * chains, index rules), and thousands of random small histories whose verdict must equal that
 * of a brute-force search over every order (an independent implementation of the same model). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lin/lin.h"

/* ---- building histories ---- */

typedef struct spec {
  uint64_t client;
  const char *key, *op, *value, *prev_value;
  long long prev_index; /* -1 none */
  int prev_exist;       /* -1 none */
  const char *result;
  long long index; /* -1 none */
  double invoke, complete;
} spec;

/* Shorthands: P(put) G(get) C(cas) D(delete) X(cad). Times last. */
#define PUT(c, v, res, idx, a, b) {c, "k", "put", v, NULL, -1, -1, res, idx, a, b}
#define GET(c, v, res, idx, a, b) {c, "k", "get", v, NULL, -1, -1, res, idx, a, b}
#define CAS(c, v, pv, pi, res, idx, a, b) {c, "k", "cas", v, pv, pi, -1, res, idx, a, b}
#define CREATE(c, v, res, idx, a, b) {c, "k", "cas", v, NULL, -1, 0, res, idx, a, b}
#define DEL(c, res, idx, a, b) {c, "k", "delete", NULL, NULL, -1, -1, res, idx, a, b}
#define CAD(c, pv, pi, res, idx, a, b) {c, "k", "cad", NULL, pv, pi, -1, res, idx, a, b}

static int kind_of(const char *s) {
  const char *names[] = {"put", "get", "cas", "delete", "cad"};
  for (int i = 0; i < 5; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

static int result_of(const char *s) {
  const char *names[] = {"ok", "failed", "not-found", "unknown"};
  for (int i = 0; i < 4; i++)
    if (strcmp(s, names[i]) == 0) return i;
  return -1;
}

static lin_history *build(const spec *s, size_t n) {
  lin_history *h = lin_history_new();
  assert_non_null(h);
  for (size_t i = 0; i < n; i++) {
    lin_op op = {0};
    op.client = s[i].client;
    op.key = s[i].key;
    op.kind = (uint8_t)kind_of(s[i].op);
    op.value = s[i].value;
    op.prev_value = s[i].prev_value;
    op.has_prev_index = s[i].prev_index >= 0;
    op.prev_index = op.has_prev_index ? (uint64_t)s[i].prev_index : 0;
    op.prev_exist = s[i].prev_exist;
    op.result = (uint8_t)result_of(s[i].result);
    op.has_index = s[i].index >= 0;
    op.index = op.has_index ? (uint64_t)s[i].index : 0;
    op.invoke = s[i].invoke;
    op.complete = s[i].complete;
    char err[128];
    if (lin_history_add(h, &op, err, sizeof err) != 0) fail_msg("op %zu: %s", i, err);
  }
  return h;
}

/* Checks s and returns the verdict; *key and *why get the report's texts (or NULL). */
static int verdict_of(const spec *s, size_t n, char **why) {
  lin_history *h = build(s, n);
  lin_report rep;
  assert_int_equal(lin_check(h, NULL, &rep), 0);
  int v = rep.verdict;
  if (why) *why = rep.explanation ? strdup(rep.explanation) : NULL;
  lin_report_free(&rep);
  lin_history_free(h);
  return v;
}

#define EXPECT(v, arr) assert_int_equal(verdict_of(arr, sizeof arr / sizeof arr[0], NULL), v)

/* ---- the JSON-lines format ---- */

/* A line with every field parses to exactly those fields and writes back to the same op. */
static void json_round_trip(void **state) {
  (void)state;
  const char *line =
      "{\"client\":7,\"key\":\"/a/\\\"b\\\"\",\"op\":\"cas\",\"value\":\"v\\u00e9\","
      "\"prevValue\":\"old\",\"prevIndex\":12,\"result\":\"ok\",\"index\":13,"
      "\"invoke\":100,\"complete\":150.5,\"node\":\"n1\"}";
  lin_history *h = lin_history_new();
  char err[256];
  assert_int_equal(lin_history_parse_line(h, line, strlen(line), 3, err, sizeof err), 0);
  const lin_op *op = lin_history_op(h, 0);
  assert_int_equal(op->id, 3);
  assert_int_equal(op->client, 7);
  assert_string_equal(op->key, "/a/\"b\"");
  assert_int_equal(op->kind, LIN_CAS);
  assert_string_equal(op->value, "v\xc3\xa9");
  assert_string_equal(op->prev_value, "old");
  assert_true(op->has_prev_index);
  assert_int_equal(op->prev_index, 12);
  assert_int_equal(op->prev_exist, -1);
  assert_int_equal(op->result, LIN_OK);
  assert_true(op->has_index);
  assert_int_equal(op->index, 13);
  assert_true(op->invoke == 100.0 && op->complete == 150.5);
  char out[512];
  int n = lin_op_to_json(op, out, sizeof out);
  assert_true(n > 0);
  assert_int_equal(lin_history_parse_line(h, out, (size_t)n, 4, err, sizeof err), 0);
  const lin_op *back = lin_history_op(h, 1);
  assert_string_equal(back->key, op->key);
  assert_string_equal(back->value, op->value);
  assert_string_equal(back->prev_value, op->prev_value);
  assert_int_equal(back->prev_index, 12);
  assert_int_equal(back->index, 13);
  assert_true(back->complete == 150.5);
  /* an unknown op needs no complete, and writes none */
  const char *unk = "{\"client\":1,\"key\":\"k\",\"op\":\"put\",\"value\":\"x\","
                    "\"result\":\"unknown\",\"invoke\":5,\"complete\":null}";
  assert_int_equal(lin_history_parse_line(h, unk, strlen(unk), 5, err, sizeof err), 0);
  n = lin_op_to_json(lin_history_op(h, 2), out, sizeof out);
  assert_string_equal(out, "{\"client\":1,\"key\":\"k\",\"op\":\"put\",\"value\":\"x\","
                           "\"result\":\"unknown\",\"invoke\":5}");
  assert_int_equal(lin_op_to_json(lin_history_op(h, 2), out, 10), -1);
  lin_history_free(h);
}

/* Malformed lines are refused with the line number and the reason. */
static void json_rejects_malformed(void **state) {
  (void)state;
  static const struct {
    const char *line, *msg;
  } bad[] = {
      {"{\"key\":\"k\",\"op\":\"put\"", "line 9: bad JSON"},
      {"[1,2]", "line 9: not a JSON object"},
      {"{\"key\":\"k\",\"op\":\"move\",\"result\":\"ok\",\"invoke\":1,\"complete\":2}",
       "line 9: op must be one of"},
      {"{\"key\":\"k\",\"op\":\"get\",\"result\":\"ok\",\"invoke\":1}", "line 9: missing complete"},
      {"{\"key\":\"k\",\"op\":\"cas\",\"value\":\"v\",\"result\":\"ok\",\"invoke\":1,"
       "\"complete\":2}",
       "line 9: cas needs prevValue, prevIndex or prevExist"},
      {"{\"key\":\"k\",\"op\":\"put\",\"value\":\"v\",\"result\":\"failed\",\"invoke\":1,"
       "\"complete\":2}",
       "line 9: a put cannot fail"},
      {"{\"key\":\"k\",\"op\":\"get\",\"result\":\"ok\",\"value\":\"v\",\"invoke\":3,"
       "\"complete\":2}",
       "line 9: complete is before invoke"},
      {"{\"key\":\"k\",\"op\":\"get\",\"result\":\"ok\",\"value\":\"v\",\"index\":-1,"
       "\"invoke\":1,\"complete\":2}",
       "line 9: index must be a non-negative integer"},
      {"{\"op\":\"get\",\"result\":\"not-found\",\"invoke\":1,\"complete\":2}",
       "line 9: missing key"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    lin_history *h = lin_history_new();
    char err[256] = "";
    assert_int_equal(lin_history_parse_line(h, bad[i].line, strlen(bad[i].line), 9, err,
                                            sizeof err),
                     -1);
    if (strncmp(err, bad[i].msg, strlen(bad[i].msg)) != 0)
      fail_msg("case %zu: got \"%s\", want \"%s...\"", i, err, bad[i].msg);
    assert_int_equal(lin_history_len(h), 0);
    lin_history_free(h);
  }
}

/* A whole file: comments and blank lines are skipped, ids are line numbers. */
static void json_reads_file(void **state) {
  (void)state;
  const char *text = "# a history\n"
                     "{\"client\":1,\"key\":\"k\",\"op\":\"put\",\"value\":\"a\",\"result\":\"ok\","
                     "\"index\":4,\"invoke\":0,\"complete\":1}\n"
                     "\n"
                     "{\"client\":2,\"key\":\"k\",\"op\":\"get\",\"result\":\"not-found\","
                     "\"invoke\":2,\"complete\":3}\n";
  FILE *f = fmemopen((void *)text, strlen(text), "r");
  lin_history *h = lin_history_new();
  char err[256];
  assert_int_equal(lin_history_read(h, f, err, sizeof err), 0);
  fclose(f);
  assert_int_equal(lin_history_len(h), 2);
  assert_int_equal(lin_history_op(h, 0)->id, 2);
  assert_int_equal(lin_history_op(h, 1)->id, 4);
  lin_report rep;
  assert_int_equal(lin_check(h, NULL, &rep), 0);
  assert_int_equal(rep.verdict, LIN_VIOLATION);
  assert_string_equal(rep.key, "k");
  assert_non_null(strstr(rep.explanation, "#4 client 2 get -> not-found [2, 3]"));
  assert_non_null(strstr(rep.explanation, "\"a\" (index 4)"));
  lin_report_free(&rep);
  lin_history_free(h);
}

/* ---- classic histories ---- */

/* Sequential writes and reads that agree. */
static void sequential_history_is_linearizable(void **state) {
  (void)state;
  spec s[] = {
      GET(1, NULL, "not-found", -1, 0, 1), PUT(1, "a", "ok", 3, 2, 3),
      GET(2, "a", "ok", 3, 4, 5),          PUT(2, "b", "ok", 8, 6, 7),
      GET(1, "b", "ok", 8, 8, 9),          DEL(1, "ok", 9, 10, 11),
      GET(2, NULL, "not-found", -1, 12, 13),
  };
  EXPECT(LIN_LINEARIZABLE, s);
  assert_int_equal(verdict_of(s, 0, NULL), LIN_LINEARIZABLE); /* the empty history */
}

/* A read concurrent with a write may see either value, but two sequential reads may not see
 * the new value and then the old one. */
static void concurrent_read_sees_either_but_not_backwards(void **state) {
  (void)state;
  spec old_then_new[] = {PUT(1, "a", "ok", 1, 0, 1), PUT(1, "b", "ok", 2, 2, 10),
                         GET(2, "a", "ok", 1, 3, 4), GET(3, "b", "ok", 2, 5, 6)};
  EXPECT(LIN_LINEARIZABLE, old_then_new);
  spec new_then_old[] = {PUT(1, "a", "ok", 1, 0, 1), PUT(1, "b", "ok", 2, 2, 10),
                         GET(2, "b", "ok", 2, 3, 4), GET(3, "a", "ok", 1, 5, 6)};
  char *why = NULL;
  assert_int_equal(verdict_of(new_then_old, 4, &why), LIN_VIOLATION);
  assert_non_null(strstr(why, "#4 client 3 get -> ok \"a\"@1 [5, 6]"));
  assert_non_null(strstr(why, "cannot take effect in state \"b\" (index 2)"));
  free(why);
}

/* The Jepsen stale read: a completed write is not seen by a later read. */
static void stale_read_is_a_violation(void **state) {
  (void)state;
  spec s[] = {PUT(1, "a", "ok", 1, 0, 1), PUT(1, "b", "ok", 2, 2, 3), GET(2, "a", "ok", 1, 4, 5)};
  EXPECT(LIN_VIOLATION, s);
  spec missing[] = {PUT(1, "a", "ok", 1, 0, 1), GET(2, NULL, "not-found", -1, 2, 3)};
  EXPECT(LIN_VIOLATION, missing);
}

/* Two CAS from the same previous value cannot both succeed (a lost update), concurrent or not;
 * one of them failing is fine. */
static void lost_update_is_a_violation(void **state) {
  (void)state;
  spec both[] = {PUT(1, "a", "ok", 1, 0, 1), CAS(2, "b", "a", -1, "ok", 2, 2, 10),
                 CAS(3, "c", "a", -1, "ok", 3, 2, 10)};
  EXPECT(LIN_VIOLATION, both);
  spec one[] = {PUT(1, "a", "ok", 1, 0, 1), CAS(2, "b", "a", -1, "ok", 2, 2, 10),
                CAS(3, "c", "a", -1, "failed", -1, 2, 10), GET(1, "b", "ok", 2, 11, 12)};
  EXPECT(LIN_LINEARIZABLE, one);
  /* the failure is an observation too: the value was not "a" */
  spec bad_fail[] = {PUT(1, "a", "ok", 1, 0, 1), CAS(2, "b", "a", -1, "failed", -1, 2, 3)};
  EXPECT(LIN_VIOLATION, bad_fail);
  spec missing[] = {CAS(2, "b", "a", -1, "not-found", -1, 0, 1), PUT(1, "a", "ok", 1, 2, 3),
                    CAS(2, "b", "a", -1, "not-found", -1, 4, 5)};
  EXPECT(LIN_VIOLATION, missing);
}

/* A write of unknown outcome may have happened (a later read sees it) ... */
static void unknown_write_may_have_happened(void **state) {
  (void)state;
  spec s[] = {PUT(1, "a", "ok", 1, 0, 1), PUT(2, "x", "unknown", -1, 2, 0),
              GET(3, "x", "ok", 7, 100, 101), GET(3, "x", "ok", 7, 102, 103)};
  EXPECT(LIN_LINEARIZABLE, s);
}

/* ... or not (later reads never see it) ... */
static void unknown_write_may_never_happen(void **state) {
  (void)state;
  spec s[] = {PUT(1, "a", "ok", 1, 0, 1), PUT(2, "x", "unknown", -1, 2, 0),
              GET(3, "a", "ok", 1, 100, 101), PUT(1, "b", "ok", 5, 102, 103),
              GET(3, "b", "ok", 5, 104, 105)};
  EXPECT(LIN_LINEARIZABLE, s);
}

/* ... but not before it was invoked, nor un-happen once seen. */
static void unknown_write_bounds(void **state) {
  (void)state;
  spec before[] = {GET(3, "x", "ok", -1, 0, 1), PUT(2, "x", "unknown", -1, 2, 0)};
  EXPECT(LIN_VIOLATION, before);
  spec flicker[] = {PUT(1, "a", "ok", 1, 0, 1), PUT(2, "x", "unknown", -1, 2, 0),
                    GET(3, "x", "ok", -1, 10, 11), GET(3, "a", "ok", 1, 12, 13)};
  EXPECT(LIN_VIOLATION, flicker);
  /* its index is pinned by the read that sees it */
  spec pinned[] = {PUT(2, "x", "unknown", -1, 0, 0), GET(3, "x", "ok", 7, 10, 11),
                   CAS(3, "y", NULL, 7, "ok", 9, 12, 13), GET(3, "y", "ok", 9, 14, 15)};
  EXPECT(LIN_LINEARIZABLE, pinned);
  spec wrong_pin[] = {PUT(2, "x", "unknown", -1, 0, 0), GET(3, "x", "ok", 7, 10, 11),
                      CAS(3, "y", NULL, 8, "ok", 9, 12, 13)};
  EXPECT(LIN_VIOLATION, wrong_pin);
  /* an unknown cas whose condition held explains a read */
  spec cas[] = {PUT(1, "a", "ok", 1, 0, 1), CAS(2, "b", "a", 1, "unknown", -1, 2, 0),
                GET(3, "b", "ok", 4, 5, 6)};
  EXPECT(LIN_LINEARIZABLE, cas);
  spec cas_cond_false[] = {PUT(1, "a", "ok", 1, 0, 1), CAS(2, "b", "z", -1, "unknown", -1, 2, 0),
                           GET(3, "b", "ok", 4, 5, 6)};
  EXPECT(LIN_VIOLATION, cas_cond_false);
  /* an unknown read is dropped */
  spec read[] = {PUT(1, "a", "ok", 1, 0, 1), GET(3, NULL, "unknown", -1, 2, 0)};
  EXPECT(LIN_LINEARIZABLE, read);
}

/* CAS chains on prevValue and prevIndex. */
static void cas_chains(void **state) {
  (void)state;
  spec chain[] = {PUT(1, "a", "ok", 1, 0, 1),           CAS(2, "b", "a", 1, "ok", 2, 2, 3),
                  CAS(3, "c", NULL, 2, "ok", 5, 4, 5),  CAS(1, "d", "c", -1, "ok", 6, 6, 7),
                  CAS(2, "e", "c", -1, "failed", -1, 8, 9), GET(3, "d", "ok", 6, 10, 11)};
  EXPECT(LIN_LINEARIZABLE, chain);
  /* the same chain, all concurrent: the order is forced by the conditions */
  spec conc[] = {PUT(1, "a", "ok", 1, 0, 1), CAS(1, "d", "c", -1, "ok", 6, 2, 20),
                 CAS(3, "c", NULL, 2, "ok", 5, 2, 20), CAS(2, "b", "a", 1, "ok", 2, 2, 20),
                 GET(3, "d", "ok", 6, 21, 22)};
  EXPECT(LIN_LINEARIZABLE, conc);
  /* a prevIndex that no write produced */
  spec bad_idx[] = {PUT(1, "a", "ok", 1, 0, 1), CAS(2, "b", NULL, 3, "ok", 4, 2, 3)};
  EXPECT(LIN_VIOLATION, bad_idx);
  /* the create (prevExist=false) succeeds once, again after a delete */
  spec create[] = {CREATE(1, "a", "ok", 1, 0, 1),     CREATE(2, "b", "failed", -1, 2, 3),
                   CAD(1, "a", 1, "ok", 2, 4, 5),      CREATE(2, "b", "ok", 3, 6, 7),
                   CAD(1, "a", -1, "failed", -1, 8, 9), DEL(2, "ok", 10, 10, 11),
                   DEL(2, "not-found", -1, 12, 13),    CAD(1, "b", -1, "not-found", -1, 14, 15)};
  EXPECT(LIN_LINEARIZABLE, create);
  spec twice[] = {CREATE(1, "a", "ok", 1, 0, 1), CREATE(2, "b", "ok", 2, 2, 3)};
  EXPECT(LIN_VIOLATION, twice);
}

/* Indexes: writes carry increasing indexes and reads return the index of what they read. */
static void index_rules(void **state) {
  (void)state;
  spec backwards[] = {PUT(1, "a", "ok", 5, 0, 1), PUT(1, "b", "ok", 3, 2, 3)};
  EXPECT(LIN_VIOLATION, backwards);
  spec concurrent[] = {PUT(1, "a", "ok", 5, 0, 10), PUT(2, "b", "ok", 3, 0, 10),
                       GET(3, "a", "ok", 5, 11, 12)};
  EXPECT(LIN_LINEARIZABLE, concurrent);
  spec wrong_read[] = {PUT(1, "a", "ok", 5, 0, 1), GET(2, "a", "ok", 6, 2, 3)};
  EXPECT(LIN_VIOLATION, wrong_read);
  spec no_index[] = {PUT(1, "a", "ok", -1, 0, 1), GET(2, "a", "ok", 6, 2, 3),
                     GET(2, "a", "ok", -1, 4, 5)};
  EXPECT(LIN_LINEARIZABLE, no_index);
  /* same value written twice: the index tells the writes apart */
  spec aba[] = {PUT(1, "a", "ok", 1, 0, 1), PUT(1, "b", "ok", 2, 2, 3), PUT(1, "a", "ok", 3, 4, 5),
                GET(2, "a", "ok", 1, 6, 7)};
  EXPECT(LIN_VIOLATION, aba);
}

/* An op that completes at t and one invoked at t overlap. */
static void equal_times_overlap(void **state) {
  (void)state;
  spec s[] = {PUT(1, "a", "ok", 1, 0, 5), GET(2, NULL, "not-found", -1, 5, 6)};
  EXPECT(LIN_LINEARIZABLE, s);
  spec t[] = {PUT(1, "a", "ok", 1, 0, 5), GET(2, NULL, "not-found", -1, 5.5, 6)};
  EXPECT(LIN_VIOLATION, t);
}

/* Keys are checked independently, and the report names the failing key. */
static void keys_are_independent(void **state) {
  (void)state;
  spec s[] = {
      {1, "x", "put", "a", NULL, -1, -1, "ok", 1, 0, 1},
      {2, "y", "put", "a", NULL, -1, -1, "ok", 2, 2, 3},
      {3, "x", "get", "a", NULL, -1, -1, "ok", 1, 4, 5},
      {3, "y", "get", NULL, NULL, -1, -1, "not-found", -1, 6, 7},
  };
  lin_history *h = build(s, 4);
  lin_report rep;
  assert_int_equal(lin_check(h, NULL, &rep), 0);
  assert_int_equal(rep.verdict, LIN_VIOLATION);
  assert_string_equal(rep.key, "y");
  lin_report_free(&rep);
  lin_history_free(h);
  s[3] = (spec){3, "y", "get", "a", NULL, -1, -1, "ok", 2, 6, 7};
  h = build(s, 4);
  assert_int_equal(lin_check(h, NULL, &rep), 0);
  assert_int_equal(rep.verdict, LIN_LINEARIZABLE);
  assert_int_equal(rep.n_keys, 2);
  assert_int_equal(rep.n_ops, 4);
  lin_report_free(&rep);
  lin_history_free(h);
}

/* ---- the random cross-check ---- */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t rng_next(rng *r) {
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static unsigned rng_below(rng *r, unsigned n) { return (unsigned)(rng_next(r) % n); }

/* The brute force's own register, per key: exists, value (a string or NULL), index, exact. */
typedef struct bf_reg {
  const char *value;
  uint64_t index;
  bool exists, exact;
} bf_reg;

#define BF_MAX 8
#define BF_KEYS 2

typedef struct bf {
  const lin_op *ops[BF_MAX];
  int key[BF_MAX];
  size_t n;
} bf;

static bool bf_same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

/* Every register the op may leave behind when it takes effect in r with its reported result
 * (an unknown op may succeed or fail; "never" is not placing it at all). */
static int bf_outcomes(const bf_reg *r, const lin_op *o, bf_reg out[2]) {
  int n = 0;
  bool unk = o->result == LIN_UNKNOWN;
  /* a successful write's register, at index floor `after` */
  bf_reg w = {0};
  w.exists = o->kind == LIN_PUT || o->kind == LIN_CAS;
  w.value = w.exists ? o->value : NULL;
  if (o->kind == LIN_GET) {
    if (unk) {
      out[0] = *r;
      return 1;
    }
    if (o->result == LIN_NOT_FOUND) {
      if (!r->exists) out[n++] = *r;
      return n;
    }
    if (!r->exists || !bf_same(r->value, o->value)) return 0;
    out[0] = *r;
    if (!o->has_index) return 1;
    if (r->exact) return o->index == r->index;
    if (o->index < r->index) return 0;
    out[0].index = o->index;
    out[0].exact = true;
    return 1;
  }
  /* success possible? and with which pinned register */
  bf_reg base = *r;
  bool can_succeed, can_fail_cond, missing;
  if (o->kind == LIN_PUT) {
    can_succeed = true, can_fail_cond = false, missing = false;
  } else if (o->kind == LIN_DELETE) {
    can_succeed = r->exists, can_fail_cond = false, missing = !r->exists;
  } else if (o->prev_exist == 0) {
    can_succeed = !r->exists, can_fail_cond = r->exists, missing = false;
  } else if (!r->exists) {
    can_succeed = false, can_fail_cond = false, missing = true;
  } else {
    bool v_ok = !o->prev_value || bf_same(r->value, o->prev_value);
    bool i_ok = true, i_bad = false;
    if (o->has_prev_index) {
      i_ok = r->exact ? o->prev_index == r->index : o->prev_index >= r->index;
      i_bad = r->exact ? !i_ok : true;
      if (i_ok && !r->exact) base.index = o->prev_index, base.exact = true;
    }
    can_succeed = v_ok && i_ok;
    can_fail_cond = !v_ok || i_bad;
    missing = false;
  }
  if (can_succeed && (unk || o->result == LIN_OK)) {
    if (o->result == LIN_OK && o->has_index) {
      if (o->index > base.index) {
        w.index = o->index;
        w.exact = true;
        out[n++] = w;
      }
    } else {
      w.index = base.index + 1;
      w.exact = false;
      out[n++] = w;
    }
  }
  if ((can_fail_cond && (unk || o->result == LIN_FAILED)) ||
      (missing && (unk || o->result == LIN_NOT_FOUND)))
    out[n++] = *r;
  return n;
}

/* Depth-first over every order of the ops that respects real time; unknown ops may be left out.
 */
static bool bf_search(const bf *b, bool *placed, bf_reg *regs) {
  bool all = true;
  for (size_t i = 0; i < b->n; i++)
    if (!placed[i] && b->ops[i]->result != LIN_UNKNOWN) all = false;
  if (all) return true;
  for (size_t i = 0; i < b->n; i++) {
    if (placed[i]) continue;
    bool allowed = true; /* no unplaced definite op completed before this one was invoked */
    for (size_t j = 0; j < b->n && allowed; j++)
      if (!placed[j] && j != i && b->ops[j]->result != LIN_UNKNOWN &&
          b->ops[j]->complete < b->ops[i]->invoke)
        allowed = false;
    if (!allowed) continue;
    bf_reg outs[2];
    int k = b->key[i];
    int m = bf_outcomes(&regs[k], b->ops[i], outs);
    for (int x = 0; x < m; x++) {
      bf_reg saved = regs[k];
      regs[k] = outs[x];
      placed[i] = true;
      bool ok = bf_search(b, placed, regs);
      placed[i] = false;
      regs[k] = saved;
      if (ok) return true;
    }
  }
  return false;
}

static bool bf_check(const lin_history *h) {
  bf b = {.n = lin_history_len(h)};
  const char *keys[BF_KEYS] = {0};
  for (size_t i = 0; i < b.n; i++) {
    b.ops[i] = lin_history_op(h, i);
    int k = 0;
    while (keys[k] && strcmp(keys[k], b.ops[i]->key) != 0) k++;
    keys[k] = b.ops[i]->key;
    b.key[i] = k;
  }
  bool placed[BF_MAX] = {0};
  bf_reg regs[BF_KEYS] = {{NULL, 0, false, true}, {NULL, 0, false, true}};
  return bf_search(&b, placed, regs);
}

static const char *const VALUES[] = {"a", "b", "c"};

/* A random op executed on a true register at its linearization point (so the unmutated history
 * is linearizable by construction). */
typedef struct gen_op {
  lin_op op;
  double point;
} gen_op;

static int gen_cmp_point(const void *a, const void *b) {
  const gen_op *x = a, *y = b;
  return x->point < y->point ? -1 : x->point > y->point;
}

static void gen_execute(rng *r, gen_op *g, bf_reg *reg, uint64_t *counter) {
  lin_op *o = &g->op;
  bool keep_effect = true;
  if (rng_below(r, 7) == 0) { /* a timeout: the effect happens or not */
    keep_effect = rng_below(r, 2);
    o->result = LIN_UNKNOWN;
  }
  /* conditions chosen at execution time, so they often hold */
  if (o->kind == LIN_CAS || o->kind == LIN_CAD) {
    unsigned c = rng_below(r, o->kind == LIN_CAS ? 4 : 3);
    if (c == 3) {
      o->prev_exist = 0;
    } else {
      if (c != 1)
        o->prev_value = reg->exists && rng_below(r, 3) ? reg->value : VALUES[rng_below(r, 3)];
      if (c != 0) {
        o->has_prev_index = true;
        o->prev_index = reg->exists && rng_below(r, 2) ? reg->index : rng_below(r, 6);
      }
    }
  }
  bool holds;
  if (o->kind == LIN_PUT || o->kind == LIN_GET) {
    holds = true;
  } else if (o->kind == LIN_DELETE) {
    holds = reg->exists;
  } else if (o->prev_exist == 0) {
    holds = !reg->exists;
  } else {
    holds = reg->exists && (!o->prev_value || strcmp(o->prev_value, reg->value) == 0) &&
            (!o->has_prev_index || o->prev_index == reg->index);
  }
  if (o->kind == LIN_GET) {
    if (o->result == LIN_UNKNOWN) return;
    if (reg->exists) {
      o->result = LIN_OK;
      o->value = reg->value;
      o->has_index = rng_below(r, 5) != 0;
      o->index = reg->index;
    } else {
      o->result = LIN_NOT_FOUND;
    }
    return;
  }
  if (o->result != LIN_UNKNOWN) {
    o->result = holds ? LIN_OK
                      : (o->kind == LIN_DELETE || (!reg->exists && o->prev_exist != 0)
                             ? LIN_NOT_FOUND
                             : LIN_FAILED);
  }
  if (holds && keep_effect) {
    *counter += 1 + rng_below(r, 2);
    reg->exists = o->kind == LIN_PUT || o->kind == LIN_CAS;
    reg->value = reg->exists ? o->value : NULL;
    reg->index = *counter;
    if (o->result == LIN_OK) {
      o->has_index = rng_below(r, 5) != 0;
      o->index = *counter;
    }
  }
}

/* Changes one thing in one op (a value, an index, a result, a time, or makes it unknown); the
 * caller keeps the original when the change produced an invalid op. */
static void gen_mutate(rng *r, lin_op *o) {
  switch (rng_below(r, 5)) {
  case 0:
    if (o->kind == LIN_GET && o->result == LIN_OK) o->value = VALUES[rng_below(r, 3)];
    if (o->kind == LIN_CAS || o->kind == LIN_CAD) o->prev_value = VALUES[rng_below(r, 3)];
    break;
  case 1:
    if (o->has_index) o->index = o->index + (rng_below(r, 2) ? 1 : -1);
    break;
  case 2:
    if (o->result != LIN_UNKNOWN) {
      o->result = (uint8_t)rng_below(r, 3);
      if (o->result != LIN_OK) o->has_index = false;
      if (o->kind == LIN_GET) o->value = o->result == LIN_OK ? VALUES[rng_below(r, 3)] : NULL;
    }
    break;
  case 3:
    o->invoke = rng_below(r, 30);
    if (o->complete < o->invoke) o->complete = o->invoke + rng_below(r, 4);
    break;
  default:
    o->result = LIN_UNKNOWN;
    o->has_index = false;
    if (o->kind == LIN_GET) o->value = NULL;
  }
}

/* One random history of 1..7 ops on one or two keys; returns whether it was mutated. */
static bool gen_history(rng *r, lin_history *h, int n_keys) {
  gen_op ops[BF_MAX];
  size_t n = 1 + rng_below(r, 7);
  for (size_t i = 0; i < n; i++) {
    lin_op *o = &ops[i].op;
    memset(o, 0, sizeof *o);
    o->client = i;
    o->key = n_keys == 1 || rng_below(r, 2) ? "k" : "j";
    o->kind = (uint8_t)rng_below(r, 5);
    o->prev_exist = -1;
    o->value = o->kind == LIN_PUT || o->kind == LIN_CAS ? VALUES[rng_below(r, 3)] : NULL;
    o->invoke = rng_below(r, 30);
    o->complete = o->invoke + rng_below(r, 12);
    ops[i].point = o->invoke + (o->complete - o->invoke) * (double)rng_below(r, 1001) / 1000.0;
  }
  qsort(ops, n, sizeof ops[0], gen_cmp_point);
  bf_reg regs[2] = {{NULL, 0, false, true}, {NULL, 0, false, true}};
  uint64_t counter = 0;
  for (size_t i = 0; i < n; i++)
    gen_execute(r, &ops[i], &regs[strcmp(ops[i].op.key, "k") == 0 ? 0 : 1], &counter);
  /* mutate one or two ops in 60% of the histories, until the op really changed */
  bool mutated = rng_below(r, 10) < 6;
  for (unsigned m = mutated ? 1 + rng_below(r, 2) : 0; m > 0; m--) {
    size_t victim = rng_below(r, (unsigned)n);
    lin_op saved = ops[victim].op;
    char before[512], after[512], err[128];
    lin_op_to_json(&saved, before, sizeof before);
    for (int tries = 0; tries < 20; tries++) {
      gen_mutate(r, &ops[victim].op);
      lin_history *probe = lin_history_new();
      bool valid = lin_history_add(probe, &ops[victim].op, err, sizeof err) == 0;
      lin_history_free(probe);
      lin_op_to_json(&ops[victim].op, after, sizeof after);
      if (valid && strcmp(before, after) != 0) break;
      ops[victim].op = saved;
    }
  }
  for (size_t i = 0; i < n; i++) {
    char err[128];
    ops[i].op.id = i + 1;
    if (lin_history_add(h, &ops[i].op, err, sizeof err) != 0) fail_msg("generated: %s", err);
  }
  return mutated;
}

static void cross_check(uint64_t seed, int n_keys, int rounds) {
  rng r = {seed};
  int violations = 0, unknowns = 0;
  for (int i = 0; i < rounds; i++) {
    lin_history *h = lin_history_new();
    bool mutated = gen_history(&r, h, n_keys);
    lin_report rep;
    assert_int_equal(lin_check(h, NULL, &rep), 0);
    bool expect = bf_check(h);
    bool got = rep.verdict == LIN_LINEARIZABLE;
    if (got != expect || (!mutated && !got)) {
      char line[512];
      for (size_t j = 0; j < lin_history_len(h); j++)
        print_message("%s\n", lin_describe_op(lin_history_op(h, j), line, sizeof line));
      fail_msg("history %d: checker %d, brute force %d, mutated %d: %s", i, got, expect, mutated,
               rep.explanation ? rep.explanation : "");
    }
    violations += !got;
    for (size_t j = 0; j < lin_history_len(h); j++)
      unknowns += lin_history_op(h, j)->result == LIN_UNKNOWN;
    lin_report_free(&rep);
    lin_history_free(h);
  }
  print_message("%d histories: %d not linearizable, %d unknown ops\n", rounds, violations, unknowns);
  /* the generator must produce both verdicts and unknown ops in numbers */
  assert_true(violations > rounds / 10);
  assert_true(violations < rounds * 6 / 10);
  assert_true(unknowns > rounds / 5);
}

/* Random single-key histories: the checker agrees with brute force on every one. */
static void random_single_key_matches_brute_force(void **state) {
  (void)state;
  cross_check(20240501, 1, 4000);
}

/* Random two-key histories: checking per key agrees with brute force on the whole history. */
static void random_two_keys_match_brute_force(void **state) {
  (void)state;
  cross_check(77, 2, 2000);
}

/* A long concurrent history (2,000 ops, 8 clients, 10 keys, with timeouts) checks quickly. */
static void long_history_is_checked(void **state) {
  (void)state;
  rng r = {5};
  lin_history *h = lin_history_new();
  enum { N = 2000, KEYS = 10 };
  gen_op *ops = calloc(N, sizeof *ops);
  char names[KEYS][4];
  for (int k = 0; k < KEYS; k++) snprintf(names[k], sizeof names[k], "k%d", k);
  for (int i = 0; i < N; i++) {
    lin_op *o = &ops[i].op;
    o->client = (uint64_t)(i % 8);
    o->key = names[rng_below(&r, KEYS)];
    o->kind = (uint8_t)rng_below(&r, 5);
    o->prev_exist = -1;
    o->value = o->kind == LIN_PUT || o->kind == LIN_CAS ? VALUES[rng_below(&r, 3)] : NULL;
    o->invoke = (double)i * 10 + rng_below(&r, 10);
    o->complete = o->invoke + rng_below(&r, 60);
    ops[i].point = o->invoke + (o->complete - o->invoke) * (double)rng_below(&r, 101) / 100.0;
  }
  qsort(ops, N, sizeof *ops, gen_cmp_point);
  bf_reg regs[KEYS];
  for (int k = 0; k < KEYS; k++) regs[k] = (bf_reg){NULL, 0, false, true};
  uint64_t counter = 0;
  for (int i = 0; i < N; i++) {
    gen_execute(&r, &ops[i], &regs[ops[i].op.key[1] - '0'], &counter);
    char err[128];
    if (lin_history_add(h, &ops[i].op, err, sizeof err) != 0) fail_msg("%s", err);
  }
  lin_report rep;
  assert_int_equal(lin_check(h, NULL, &rep), 0);
  assert_int_equal(rep.verdict, LIN_LINEARIZABLE);
  assert_int_equal(rep.n_keys, KEYS);
  lin_report_free(&rep);
  /* a step budget makes the checker give up rather than run on */
  lin_options opt = {.max_steps = 10};
  assert_int_equal(lin_check(h, &opt, &rep), 0);
  assert_int_equal(rep.verdict, LIN_GAVE_UP);
  lin_report_free(&rep);
  free(ops);
  lin_history_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(json_round_trip),
      cmocka_unit_test(json_rejects_malformed),
      cmocka_unit_test(json_reads_file),
      cmocka_unit_test(sequential_history_is_linearizable),
      cmocka_unit_test(concurrent_read_sees_either_but_not_backwards),
      cmocka_unit_test(stale_read_is_a_violation),
      cmocka_unit_test(lost_update_is_a_violation),
      cmocka_unit_test(unknown_write_may_have_happened),
      cmocka_unit_test(unknown_write_may_never_happen),
      cmocka_unit_test(unknown_write_bounds),
      cmocka_unit_test(cas_chains),
      cmocka_unit_test(index_rules),
      cmocka_unit_test(equal_times_overlap),
      cmocka_unit_test(keys_are_independent),
      cmocka_unit_test(random_single_key_matches_brute_force),
      cmocka_unit_test(random_two_keys_match_brute_force),
      cmocka_unit_test(long_history_is_checked),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
