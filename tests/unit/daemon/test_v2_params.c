/* Unit tests of daemon/v2_params.c: /v2/keys parameters from the query string and a form body,
 * validated in etcd 3.4's order with its exact error codes and causes (v2-api.md section 2). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <http_parser.h>
#include <string.h>

#include "daemon/v2_params.h"

#define S(lit) lit, sizeof(lit) - 1

/* A fake request: method, request target, and an optional Content-Type and body. */
static void req_init(http_req *r, int method, const char *url, const char *ct, const char *body) {
  memset(r, 0, sizeof *r);
  r->method = method;
  sbuf_put(&r->url, url, strlen(url));
  if (ct) sbuf_put(&r->content_type, ct, strlen(ct));
  if (body) sbuf_put(&r->body, body, strlen(body));
}

static void req_free(http_req *r) {
  sbuf_free(&r->url);
  sbuf_free(&r->content_type);
  sbuf_free(&r->body);
}

/* Parses a request; returns the code and leaves p to be freed by the caller. */
static int parse_req(v2_params *p, int method, const char *url, const char *ct, const char *body) {
  http_req r;
  req_init(&r, method, url, ct, body);
  int rc = v2_params_parse(p, &r);
  req_free(&r);
  return rc;
}

/* Expects method url to fail with code and exactly cause. */
static void expect_error(int method, const char *url, int code, const char *cause) {
  v2_params p;
  int rc = parse_req(&p, method, url, NULL, NULL);
  const char *got = p.cause; /* a string literal: outlives p */
  v2_params_free(&p);        /* before asserting, so that a failure does not leak */
  if (rc != code || !got || strcmp(got, cause))
    print_error("%s: got %d \"%s\", want %d \"%s\"\n", url, rc, got ? got : "(null)", code, cause);
  assert_int_equal(rc, code);
  assert_non_null(got);
  assert_string_equal(got, cause);
}

/* Expects method url to be valid; p is filled (free it). */
static void expect_ok(v2_params *p, int method, const char *url) {
  int rc = parse_req(p, method, url, NULL, NULL);
  if (rc != 0) {
    print_error("%s: got %d \"%s\"\n", url, rc, p->cause ? p->cause : "(null)");
    v2_params_free(p);
  }
  assert_int_equal(rc, 0);
}

static const char *const true_spellings[] = {"1", "t", "T", "TRUE", "true", "True"};
static const char *const false_spellings[] = {"0", "f", "F", "FALSE", "false", "False"};
static const char *const bad_spellings[] = {"",    "yes", "no", "tRUE", "TRue", "2",    "on",
                                            "off", "-1",  "01", "%20true", "true%20", "truee"};

/* No parameters: everything off, prevExist absent, value "", no prevValue, no ttl. */
static void test_defaults(void **state) {
  (void)state;
  v2_params p;
  expect_ok(&p, HTTP_GET, "/v2/keys/a");
  assert_int_equal(p.recursive + p.sorted + p.wait + p.dir + p.quorum + p.stream, 0);
  assert_int_equal(p.no_value_on_success + p.refresh + p.has_ttl, 0);
  assert_int_equal(p.prev_exist, -1);
  assert_non_null(p.value);
  assert_string_equal(p.value, "");
  assert_int_equal(p.value_len, 0);
  assert_null(p.prev_value);
  assert_true(p.prev_index == 0 && p.wait_index == 0);
  assert_null(p.cause);
  v2_params_free(&p);
  expect_ok(&p, HTTP_GET, "/v2/keys/a?");
  v2_params_free(&p);
}

/* Reads the boolean field of p named name. */
static int bool_field(const v2_params *p, const char *name) {
  if (!strcmp(name, "recursive")) return p->recursive;
  if (!strcmp(name, "sorted")) return p->sorted;
  if (!strcmp(name, "wait")) return p->wait;
  if (!strcmp(name, "dir")) return p->dir;
  if (!strcmp(name, "quorum")) return p->quorum;
  if (!strcmp(name, "stream")) return p->stream;
  if (!strcmp(name, "noValueOnSuccess")) return p->no_value_on_success;
  if (!strcmp(name, "prevExist")) return p->prev_exist;
  if (!strcmp(name, "refresh")) return p->refresh;
  fail_msg("unknown field %s", name);
  return -1;
}

static const char *const bool_names[] = {"recursive", "sorted", "wait", "dir", "quorum",
                                         "stream", "noValueOnSuccess", "prevExist", "refresh"};

/* Every spelling of Go's ParseBool is accepted by every boolean parameter. */
static void test_bool_spellings_accepted(void **state) {
  (void)state;
  for (size_t n = 0; n < sizeof bool_names / sizeof bool_names[0]; n++) {
    for (int truth = 0; truth < 2; truth++) {
      for (size_t s = 0; s < 6; s++) {
        const char *sp = truth ? true_spellings[s] : false_spellings[s];
        char url[128];
        /* refresh=true needs a ttl; wait needs GET. */
        snprintf(url, sizeof url, "/v2/keys/a?%s=%s&ttl=5", bool_names[n], sp);
        v2_params p;
        expect_ok(&p, HTTP_GET, url);
        assert_int_equal(bool_field(&p, bool_names[n]), truth);
        v2_params_free(&p);
      }
    }
  }
}

/* Any other spelling, including "", is 209 with the parameter's own cause. */
static void test_bool_spellings_rejected(void **state) {
  (void)state;
  static const char *const causes[] = {
      "invalid value for \"recursive\"", "invalid value for \"sorted\"",
      "invalid value for \"wait\"",      "invalid value for \"dir\"",
      "invalid value for \"quorum\"",    "invalid value for \"stream\"",
      "invalid value for \"noValueOnSuccess\"", "invalid value for prevExist",
      "invalid value for refresh",
  };
  for (size_t n = 0; n < sizeof bool_names / sizeof bool_names[0]; n++) {
    for (size_t s = 0; s < sizeof bad_spellings / sizeof bad_spellings[0]; s++) {
      char url[128];
      snprintf(url, sizeof url, "/v2/keys/a?%s=%s", bool_names[n], bad_spellings[s]);
      expect_error(HTTP_GET, url, 209, causes[n]);
    }
    char url[128];
    snprintf(url, sizeof url, "/v2/keys/a?%s", bool_names[n]); /* bare name: "" */
    expect_error(HTTP_GET, url, 209, causes[n]);
  }
}

/* A boolean with a NUL byte after a valid spelling is invalid (Go's ParseBool sees it all). */
static void test_bool_with_nul_rejected(void **state) {
  (void)state;
  expect_error(HTTP_GET, "/v2/keys/a?recursive=true%00x", 209, "invalid value for \"recursive\"");
  expect_error(HTTP_PUT, "/v2/keys/a?prevExist=1%00", 209, "invalid value for prevExist");
}

/* The first failing check in etcd's order decides the error. */
static void test_validation_order(void **state) {
  (void)state;
  static const struct {
    int method;
    const char *q;
    int code;
    const char *cause;
  } cases[] = {
      {HTTP_PUT, "prevIndex=x&ttl=y", 203, "invalid value for \"prevIndex\""},
      {HTTP_PUT, "ttl=y&prevIndex=x", 203, "invalid value for \"prevIndex\""},
      {HTTP_GET, "waitIndex=y&prevIndex=x", 203, "invalid value for \"prevIndex\""},
      {HTTP_GET, "recursive=x&waitIndex=y", 203, "invalid value for \"waitIndex\""},
      {HTTP_GET, "sorted=x&recursive=x", 209, "invalid value for \"recursive\""},
      {HTTP_GET, "wait=x&sorted=x", 209, "invalid value for \"sorted\""},
      {HTTP_GET, "dir=x&wait=x", 209, "invalid value for \"wait\""},
      {HTTP_GET, "quorum=x&dir=x", 209, "invalid value for \"dir\""},
      {HTTP_GET, "stream=x&quorum=x", 209, "invalid value for \"quorum\""},
      {HTTP_PUT, "wait=true&stream=x", 209, "invalid value for \"stream\""},
      {HTTP_PUT, "prevValue=&wait=true", 209, "\"wait\" can only be used with GET requests"},
      {HTTP_PUT, "noValueOnSuccess=x&prevValue=", 201, "\"prevValue\" cannot be empty"},
      {HTTP_PUT, "ttl=x&noValueOnSuccess=x", 209, "invalid value for \"noValueOnSuccess\""},
      {HTTP_PUT, "prevExist=x&ttl=x", 202, "invalid value for \"ttl\""},
      {HTTP_PUT, "refresh=x&prevExist=x", 209, "invalid value for prevExist"},
      {HTTP_PUT, "refresh=x&value=v", 209, "invalid value for refresh"},
      {HTTP_PUT, "refresh=true&value=v", 211, "A value was provided on a refresh"},
      {HTTP_PUT, "refresh=true&value=v&ttl=5", 211, "A value was provided on a refresh"},
      {HTTP_PUT, "refresh=true", 212, "No TTL value set"},
      {HTTP_PUT, "refresh=true&ttl=", 212, "No TTL value set"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char url[160];
    snprintf(url, sizeof url, "/v2/keys/k?%s", cases[i].q);
    expect_error(cases[i].method, url, cases[i].code, cases[i].cause);
  }
}

/* wait=true is refused on every method but GET (HEAD included). */
static void test_wait_only_on_get(void **state) {
  (void)state;
  int methods[] = {HTTP_PUT, HTTP_POST, HTTP_DELETE, HTTP_HEAD};
  for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
    expect_error(methods[i], "/v2/keys/k?wait=true", 209,
                 "\"wait\" can only be used with GET requests");
  v2_params p;
  expect_ok(&p, HTTP_GET, "/v2/keys/k?wait=true&waitIndex=7&recursive=1&stream=t");
  assert_int_equal(p.wait, 1);
  assert_true(p.wait_index == 7);
  assert_int_equal(p.recursive, 1);
  assert_int_equal(p.stream, 1);
  v2_params_free(&p);
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?wait=false");
  v2_params_free(&p);
}

/* An empty prevValue is 201; a non-empty one is kept. */
static void test_prev_value(void **state) {
  (void)state;
  expect_error(HTTP_PUT, "/v2/keys/k?prevValue=", 201, "\"prevValue\" cannot be empty");
  expect_error(HTTP_DELETE, "/v2/keys/k?prevValue", 201, "\"prevValue\" cannot be empty");
  v2_params p;
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?prevValue=a+b%00");
  assert_non_null(p.prev_value);
  assert_int_equal(p.prev_value_len, 4);
  assert_memory_equal(p.prev_value, "a b\0", 4);
  v2_params_free(&p);
}

/* ttl= (empty) means no TTL; digits give a TTL, 0 included. */
static void test_ttl_valid(void **state) {
  (void)state;
  v2_params p;
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?ttl=");
  assert_int_equal(p.has_ttl, 0);
  v2_params_free(&p);
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?ttl");
  assert_int_equal(p.has_ttl, 0);
  v2_params_free(&p);
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?ttl=0");
  assert_int_equal(p.has_ttl, 1);
  assert_true(p.ttl == 0);
  v2_params_free(&p);
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?ttl=005");
  assert_int_equal(p.has_ttl, 1);
  assert_true(p.ttl == 5);
  v2_params_free(&p);
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?ttl=9223372036"); /* largest with ns in int64 */
  assert_true(p.ttl == 9223372036ULL);
  v2_params_free(&p);
}

/* Signs, fractions, exponents, spaces, letters and overflowing TTLs are 202. */
static void test_ttl_invalid(void **state) {
  (void)state;
  static const char *const bad[] = {"abc", "-1",  "1.0", "%2B5", "+5",  "1e3",
                                    "%205", "5%20", "0x10", "5a",  "99999999999",
                                    "9223372037", "18446744073709551616"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char url[96];
    snprintf(url, sizeof url, "/v2/keys/k?ttl=%s", bad[i]);
    expect_error(HTTP_PUT, url, 202, "invalid value for \"ttl\"");
  }
}

/* prevIndex/waitIndex: unsigned decimal only; 0 means not given; empty is 203. */
static void test_indexes(void **state) {
  (void)state;
  expect_error(HTTP_PUT, "/v2/keys/k?prevIndex=-1", 203, "invalid value for \"prevIndex\"");
  expect_error(HTTP_PUT, "/v2/keys/k?prevIndex=", 203, "invalid value for \"prevIndex\"");
  expect_error(HTTP_PUT, "/v2/keys/k?prevIndex=1.0", 203, "invalid value for \"prevIndex\"");
  expect_error(HTTP_PUT, "/v2/keys/k?prevIndex=%2B1", 203, "invalid value for \"prevIndex\"");
  expect_error(HTTP_PUT, "/v2/keys/k?prevIndex=18446744073709551616", 203,
               "invalid value for \"prevIndex\"");
  expect_error(HTTP_GET, "/v2/keys/k?waitIndex=%201", 203, "invalid value for \"waitIndex\"");
  expect_error(HTTP_GET, "/v2/keys/k?waitIndex=1e3", 203, "invalid value for \"waitIndex\"");
  v2_params p;
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?prevIndex=0");
  assert_true(p.prev_index == 0);
  v2_params_free(&p);
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?prevIndex=18446744073709551615&waitIndex=3");
  assert_true(p.prev_index == UINT64_MAX);
  assert_true(p.wait_index == 3);
  v2_params_free(&p);
}

/* refresh=true with a ttl and no (or an empty) value is valid. */
static void test_refresh_ok(void **state) {
  (void)state;
  v2_params p;
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?refresh=true&ttl=5");
  assert_int_equal(p.refresh, 1);
  assert_int_equal(p.has_ttl, 1);
  v2_params_free(&p);
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?refresh=true&ttl=5&value=");
  assert_int_equal(p.refresh, 1);
  v2_params_free(&p);
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?refresh=false&value=x");
  assert_int_equal(p.refresh, 0);
  assert_string_equal(p.value, "x");
  v2_params_free(&p);
}

/* value: first occurrence wins and NUL bytes are kept in value_len; unknown names ignored. */
static void test_value(void **state) {
  (void)state;
  v2_params p;
  expect_ok(&p, HTTP_PUT, "/v2/keys/k?value=a%00b&value=second&bogus=%20&Value=x");
  assert_int_equal(p.value_len, 3);
  assert_memory_equal(p.value, "a\0b", 3);
  v2_params_free(&p);
}

/* A form body's values win over the query's, for PUT and POST. */
static void test_form_body_wins(void **state) {
  (void)state;
  int methods[] = {HTTP_PUT, HTTP_POST};
  for (size_t i = 0; i < 2; i++) {
    v2_params p;
    int rc = parse_req(&p, methods[i], "/v2/keys/k?value=query&ttl=7&prevExist=false",
                       "application/x-www-form-urlencoded", "value=body&prevExist=true");
    assert_int_equal(rc, 0);
    assert_string_equal(p.value, "body");
    assert_int_equal(p.prev_exist, 1);
    assert_int_equal(p.has_ttl, 1); /* query values still count when the body lacks them */
    assert_true(p.ttl == 7);
    v2_params_free(&p);
  }
}

/* The form content type may carry parameters and any letter case. */
static void test_form_content_type_variants(void **state) {
  (void)state;
  static const char *const cts[] = {"application/x-www-form-urlencoded; charset=utf-8",
                                    "Application/X-WWW-Form-Urlencoded",
                                    "application/x-www-form-urlencoded;charset=UTF-8"};
  for (size_t i = 0; i < sizeof cts / sizeof cts[0]; i++) {
    v2_params p;
    assert_int_equal(parse_req(&p, HTTP_PUT, "/v2/keys/k", cts[i], "value=b"), 0);
    assert_string_equal(p.value, "b");
    v2_params_free(&p);
  }
}

/* A body without the form content type is ignored (JSON, text, or none). */
static void test_body_ignored_without_form_type(void **state) {
  (void)state;
  static const char *const cts[] = {NULL, "application/json", "text/plain",
                                    "application/x-www-form-urlencodedX", "multipart/form-data"};
  for (size_t i = 0; i < sizeof cts / sizeof cts[0]; i++) {
    v2_params p;
    assert_int_equal(parse_req(&p, HTTP_PUT, "/v2/keys/k", cts[i], "value=b"), 0);
    assert_string_equal(p.value, "");
    v2_params_free(&p);
    assert_int_equal(parse_req(&p, HTTP_PUT, "/v2/keys/k", cts[i], "{\"value\":\"b\"}"), 0);
    assert_string_equal(p.value, "");
    v2_params_free(&p);
  }
}

/* A DELETE's (and GET's) form body is ignored, as Go's ParseForm does. */
static void test_body_ignored_for_delete(void **state) {
  (void)state;
  v2_params p;
  assert_int_equal(parse_req(&p, HTTP_DELETE, "/v2/keys/k?recursive=true",
                             "application/x-www-form-urlencoded", "prevValue=x&recursive=bad"),
                   0);
  assert_null(p.prev_value);
  assert_int_equal(p.recursive, 1);
  v2_params_free(&p);
  assert_int_equal(parse_req(&p, HTTP_GET, "/v2/keys/k", "application/x-www-form-urlencoded",
                             "recursive=true"),
                   0);
  assert_int_equal(p.recursive, 0);
  v2_params_free(&p);
}

/* Validation errors found in the body are reported like those in the query. */
static void test_body_values_validated(void **state) {
  (void)state;
  v2_params p;
  assert_int_equal(parse_req(&p, HTTP_PUT, "/v2/keys/k?ttl=5", "application/x-www-form-urlencoded",
                             "ttl=abc"),
                   202);
  assert_string_equal(p.cause, "invalid value for \"ttl\"");
  v2_params_free(&p);
}

/* A malformed escape in the query or the form body is 210. */
static void test_malformed_escapes(void **state) {
  (void)state;
  v2_params p;
  assert_int_equal(parse_req(&p, HTTP_PUT, "/v2/keys/k?value=%zz", NULL, NULL), 210);
  v2_params_free(&p);
  assert_int_equal(parse_req(&p, HTTP_PUT, "/v2/keys/k", "application/x-www-form-urlencoded",
                             "value=%g1"),
                   210);
  v2_params_free(&p);
}

/* v2_parse_u64 is Go's ParseUint(s, 10, 64): digits only, overflow refused. */
static void test_parse_u64(void **state) {
  (void)state;
  uint64_t v = 99;
  assert_int_equal(v2_parse_u64(S("0"), &v), 0);
  assert_true(v == 0);
  assert_int_equal(v2_parse_u64(S("007"), &v), 0);
  assert_true(v == 7);
  assert_int_equal(v2_parse_u64(S("18446744073709551615"), &v), 0);
  assert_true(v == UINT64_MAX);
  assert_int_equal(v2_parse_u64(S("18446744073709551610"), &v), 0);
  assert_true(v == UINT64_MAX - 5);
  v = 99;
  assert_int_equal(v2_parse_u64(S("18446744073709551616"), &v), -1);
  assert_int_equal(v2_parse_u64(S("18446744073709551620"), &v), -1);
  assert_int_equal(v2_parse_u64(S("99999999999999999999"), &v), -1);
  assert_int_equal(v2_parse_u64(S("184467440737095516150"), &v), -1);
  assert_int_equal(v2_parse_u64("", 0, &v), -1);
  assert_int_equal(v2_parse_u64(S("-1"), &v), -1);
  assert_int_equal(v2_parse_u64(S("+1"), &v), -1);
  assert_int_equal(v2_parse_u64(S(" 1"), &v), -1);
  assert_int_equal(v2_parse_u64(S("1 "), &v), -1);
  assert_int_equal(v2_parse_u64(S("0x1"), &v), -1);
  assert_int_equal(v2_parse_u64(S("1\0"), &v), -1);
  assert_true(v == 99); /* untouched on failure */
  /* The length bounds the parse. */
  assert_int_equal(v2_parse_u64("123abc", 3, &v), 0);
  assert_true(v == 123);
}

/* v2_parse_bool knows exactly Go's twelve spellings. */
static void test_parse_bool(void **state) {
  (void)state;
  for (size_t i = 0; i < 6; i++) {
    assert_int_equal(v2_parse_bool(true_spellings[i]), 1);
    assert_int_equal(v2_parse_bool(false_spellings[i]), 0);
  }
  assert_int_equal(v2_parse_bool(""), -1);
  assert_int_equal(v2_parse_bool("yes"), -1);
  assert_int_equal(v2_parse_bool("tRue"), -1);
  assert_int_equal(v2_parse_bool("FaLSE"), -1);
  assert_int_equal(v2_parse_bool(" 1"), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults),
      cmocka_unit_test(test_bool_spellings_accepted),
      cmocka_unit_test(test_bool_spellings_rejected),
      cmocka_unit_test(test_bool_with_nul_rejected),
      cmocka_unit_test(test_validation_order),
      cmocka_unit_test(test_wait_only_on_get),
      cmocka_unit_test(test_prev_value),
      cmocka_unit_test(test_ttl_valid),
      cmocka_unit_test(test_ttl_invalid),
      cmocka_unit_test(test_indexes),
      cmocka_unit_test(test_refresh_ok),
      cmocka_unit_test(test_value),
      cmocka_unit_test(test_form_body_wins),
      cmocka_unit_test(test_form_content_type_variants),
      cmocka_unit_test(test_body_ignored_without_form_type),
      cmocka_unit_test(test_body_ignored_for_delete),
      cmocka_unit_test(test_body_values_validated),
      cmocka_unit_test(test_malformed_escapes),
      cmocka_unit_test(test_parse_u64),
      cmocka_unit_test(test_parse_bool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
