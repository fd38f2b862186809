/* test_go_json: Go's encoding/json syntax check (proto/go_json.c): its verdicts and error
 * texts, and nesting as deep as Go allows without using the C stack per level. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto/go_json.h"

static const char *check(const char *s, size_t n) {
  static char err[256];
  err[0] = 0;
  return proto_go_json_check(s, n, err, sizeof err) == 0 ? NULL : err;
}

static const char *check_str(const char *s) { return check(s, strlen(s)); }

static void test_valid(void **state) {
  (void)state;
  assert_null(check_str("{\"peerURLs\":[\"http://a:1\",\"b\"]}"));
  assert_null(check_str(" [1, -2.5e+3, 0.5E-1, true, false, null, {\"a\":{}}, []] "));
  assert_null(check_str("\"x\\u00e9\\n\\\"\""));
  assert_null(check_str("0"));
}

static void test_go_error_texts(void **state) {
  (void)state;
  static const struct {
    const char *in, *want;
  } cases[] = {
      {"", "unexpected end of JSON input"},
      {"{\"a\":", "unexpected end of JSON input"},
      {"x", "invalid character 'x' looking for beginning of value"},
      {"{1:2}", "invalid character '1' looking for beginning of object key string"},
      {"{\"a\" 1}", "invalid character '1' after object key"},
      {"{\"a\":1 \"b\"}", "invalid character '\"' after object key:value pair"},
      {"[1 2]", "invalid character '2' after array element"},
      {"{} {}", "invalid character '{' after top-level value"},
      {"tru", "invalid character ' ' in literal true (expecting 'e')"},
      {"[-]", "invalid character ']' in numeric literal"},
      {"\"\\x\"", "invalid character 'x' in string escape code"},
      {"<html>", "invalid character '<' looking for beginning of value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_string_equal(check_str(cases[i].in), cases[i].want);
}

static char *nested(size_t open, size_t close) {
  char *s = malloc(open + close + 1);
  if (!s) abort(); /* (called on a thread of its own, where cmocka's asserts cannot jump) */
  memset(s, '[', open);
  memset(s + open, ']', close);
  s[open + close] = 0;
  return s;
}

/* Go's limit is 10,000 levels; far deeper input is refused at level 10,001. Checked on a
 * thread with a 256 KiB stack: nesting must cost no C stack per level (the recursive scanner
 * needed megabytes, and overflowed a sanitizer build's 8 MiB). */
static void *depth_cases(void *arg) {
  int *failures = arg;
  static const struct {
    size_t open, close;
    const char *want; /* NULL: valid */
  } cases[] = {
      {10000, 10000, NULL},
      {10001, 10001, "invalid character '[' exceeded max depth"},
      {1000000, 0, "invalid character '[' exceeded max depth"},
      {10000, 9999, "unexpected end of JSON input"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *s = nested(cases[i].open, cases[i].close);
    const char *got = check_str(s);
    *failures += cases[i].want ? !got || strcmp(got, cases[i].want) != 0 : got != NULL;
    free(s);
  }
  const char deep_obj[] = "{\"a\":{\"b\":[{\"c\":[[{}]]}]}}";
  *failures += check(deep_obj, sizeof deep_obj - 1) != NULL;
  return NULL;
}

static void test_depth(void **state) {
  (void)state;
  pthread_attr_t attr;
  assert_int_equal(pthread_attr_init(&attr), 0);
  assert_int_equal(pthread_attr_setstacksize(&attr, 256 * 1024), 0);
  pthread_t t;
  int failures = 0;
  assert_int_equal(pthread_create(&t, &attr, depth_cases, &failures), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  pthread_attr_destroy(&attr);
  assert_int_equal(failures, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid),
      cmocka_unit_test(test_go_error_texts),
      cmocka_unit_test(test_depth),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
