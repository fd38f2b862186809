/* Unit tests of daemon/http_util.c: percent-decoding, query/form parameters as Go's
 * url.ParseQuery reads them, and Go's path.Clean. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "daemon/http_util.h"

#define S(lit) lit, sizeof(lit) - 1

/* Unescapes s[0..n) and expects success with exactly want[0..wn). */
static void unescape_ok(const char *s, size_t n, int plus, const char *want, size_t wn) {
  sbuf out = {0};
  int rc = http_unescape(&out, s, n, plus);
  if (rc != 0) print_error("http_unescape(\"%.*s\") failed\n", (int)n, s);
  assert_int_equal(rc, 0);
  assert_int_equal(out.len, wn);
  if (wn) assert_memory_equal(out.p, want, wn);
  sbuf_free(&out);
}

/* Unescapes s[0..n) and expects -1. */
static void unescape_bad(const char *s, size_t n) {
  sbuf out = {0};
  int rc = http_unescape(&out, s, n, 1);
  sbuf_free(&out); /* before asserting, so that a failure does not leak */
  if (rc != -1) print_error("http_unescape(\"%.*s\", %zu) = %d, want -1\n", (int)n, s, n, rc);
  assert_int_equal(rc, -1);
}

/* Well-formed escapes decode, in either case of hex digit, including %00 and %2F. */
static void test_unescape_valid(void **state) {
  (void)state;
  unescape_ok(S("plain"), 1, S("plain"));
  unescape_ok(S(""), 1, "", 0);
  unescape_ok(S("a%20b"), 1, S("a b"));
  unescape_ok(S("%41%4a%4A%7e"), 1, S("AJJ~"));
  unescape_ok(S("%2F%2f"), 1, S("//"));
  unescape_ok(S("x%00y"), 1, S("x\0y"));
  unescape_ok(S("%ff%C3%A9"), 1, S("\xff\xc3\xa9"));
  unescape_ok(S("%25"), 1, S("%"));
  unescape_ok(S("%2B"), 1, S("+"));
  unescape_ok(S("%2B"), 0, S("+"));
}

/* '+' is a space only in query/form mode. */
static void test_unescape_plus(void **state) {
  (void)state;
  unescape_ok(S("a+b++"), 1, S("a b  "));
  unescape_ok(S("a+b++"), 0, S("a+b++"));
}

/* Malformed escapes: a lone '%', too few digits, or non-hex digits are errors. */
static void test_unescape_malformed(void **state) {
  (void)state;
  unescape_bad(S("%"));
  unescape_bad(S("a%"));
  unescape_bad(S("%4"));
  unescape_bad(S("a%4"));
  unescape_bad(S("%zz"));
  unescape_bad(S("%4g"));
  unescape_bad(S("%g4"));
  unescape_bad(S("%%41"));
  unescape_bad(S("% 41"));
  unescape_bad(S("ok%2"));
}

/* The length bounds the input: "%4" followed (beyond n) by a hex digit is still truncated. */
static void test_unescape_respects_length(void **state) {
  (void)state;
  /* Only the first two bytes of "%41" are the input; the '1' must not be read. */
  unescape_bad("%41", 2);
  unescape_bad("a=%4142", 4);
  unescape_bad("%", 1);
  unescape_ok("%41", 3, 1, S("A"));
}

/* Parses s and expects success. */
static void parse_ok(http_params *ps, const char *s, size_t n) {
  memset(ps, 0, sizeof *ps);
  assert_int_equal(http_params_parse(ps, s, n), 0);
}

/* Asserts that name is present with exactly the value want[0..wn). */
static void assert_param(const http_params *ps, const char *name, const char *want, size_t wn) {
  const http_param *p = http_params_get(ps, name);
  if (!p) print_error("parameter \"%s\" missing\n", name);
  assert_non_null(p);
  assert_int_equal(p->value_len, wn);
  if (wn) assert_memory_equal(p->value, want, wn);
  assert_int_equal(p->value[wn], 0); /* NUL-terminated */
}

/* '&' separates pairs; names and values are decoded (with '+' as space). */
static void test_params_basic(void **state) {
  (void)state;
  http_params ps;
  parse_ok(&ps, S("a=1&b=two&c+d=e+f%26g"));
  assert_int_equal(ps.n, 3);
  assert_param(&ps, "a", S("1"));
  assert_param(&ps, "b", S("two"));
  assert_param(&ps, "c d", S("e f&g"));
  assert_null(http_params_get(&ps, "d"));
  assert_null(http_params_get(&ps, "A"));
  http_params_free(&ps);
  assert_int_equal(ps.n, 0);
}

/* A repeated name keeps every value; http_params_get returns the first. */
static void test_params_first_value_wins(void **state) {
  (void)state;
  http_params ps;
  parse_ok(&ps, S("a=1&b=2&a=3&a="));
  assert_int_equal(ps.n, 4);
  assert_param(&ps, "a", S("1"));
  http_params_free(&ps);
}

/* Appending a second string (body then query) keeps the earlier values first. */
static void test_params_append(void **state) {
  (void)state;
  http_params ps;
  parse_ok(&ps, S("value=body"));
  assert_int_equal(http_params_parse(&ps, S("value=query&ttl=5")), 0);
  assert_int_equal(ps.n, 3);
  assert_param(&ps, "value", S("body"));
  assert_param(&ps, "ttl", S("5"));
  http_params_free(&ps);
}

/* "a=" and a bare "a" both give an empty value; empty pairs are skipped. */
static void test_params_empty_values(void **state) {
  (void)state;
  http_params ps;
  parse_ok(&ps, S("&&a=&b&&c=x&"));
  assert_int_equal(ps.n, 3);
  assert_param(&ps, "a", "", 0);
  assert_param(&ps, "b", "", 0);
  assert_param(&ps, "c", S("x"));
  http_params_free(&ps);
  parse_ok(&ps, "", 0);
  assert_int_equal(ps.n, 0);
  http_params_free(&ps);
}

/* Only the first '=' splits; an empty name is kept like Go does ("=x" is name ""). */
static void test_params_equals(void **state) {
  (void)state;
  http_params ps;
  parse_ok(&ps, S("a=1=2&=x"));
  assert_int_equal(ps.n, 2);
  assert_param(&ps, "a", S("1=2"));
  assert_param(&ps, "", S("x"));
  http_params_free(&ps);
}

/* Values may hold NUL bytes (value_len counts them). */
static void test_params_nul_in_value(void **state) {
  (void)state;
  http_params ps;
  parse_ok(&ps, S("v=a%00b"));
  assert_param(&ps, "v", S("a\0b"));
  http_params_free(&ps);
}

/* A malformed escape in a name or a value makes the parse fail (Go: ParseForm error). */
static void test_params_malformed(void **state) {
  (void)state;
  http_params ps;
  memset(&ps, 0, sizeof ps);
  assert_int_equal(http_params_parse(&ps, S("a=1&b=%zz")), -1);
  http_params_free(&ps);
  memset(&ps, 0, sizeof ps);
  assert_int_equal(http_params_parse(&ps, S("%g=1")), -1);
  http_params_free(&ps);
  memset(&ps, 0, sizeof ps);
  assert_int_equal(http_params_parse(&ps, S("a=%4")), -1);
  http_params_free(&ps);
}

/* The length bounds the parse: a value cut after "%4" is malformed even if '1' follows. */
static void test_params_respects_length(void **state) {
  (void)state;
  http_params ps;
  memset(&ps, 0, sizeof ps);
  int rc = http_params_parse(&ps, "a=%41", 4);
  if (rc == 0 && http_params_get(&ps, "a"))
    print_error("\"a=%%4\" parsed as a=\"%s\"\n", http_params_get(&ps, "a")->value);
  http_params_free(&ps);
  assert_int_equal(rc, -1);
}

/* Every one of many parameters is kept (Go's forms have no limit). */
static void test_params_many(void **state) {
  (void)state;
  char q[2048] = "";
  size_t n = 0;
  for (int i = 0; i < 100; i++) n += (size_t)snprintf(q + n, sizeof q - n, "p%d=%d&", i, i);
  http_params ps;
  parse_ok(&ps, q, n);
  assert_int_equal(ps.n, 100);
  assert_param(&ps, "p0", S("0"));
  assert_param(&ps, "p99", S("99"));
  http_params_free(&ps);
}

/* Cleans p and compares with want. */
static void assert_clean(const char *p, const char *want) {
  sbuf out = {0};
  http_clean_path(&out, p, strlen(p));
  sbuf_putc(&out, 0);
  if (strcmp(out.p, want)) print_error("clean(\"%s\") = \"%s\", want \"%s\"\n", p, out.p, want);
  assert_string_equal(out.p, want);
  sbuf_free(&out);
}

/* Go's path.Clean: duplicate slashes, "." and ".." are resolved; the root stays "/". */
static void test_clean_path(void **state) {
  (void)state;
  assert_clean("/a//b/./c/../d", "/a/b/d");
  assert_clean("", "/");
  assert_clean("/", "/");
  assert_clean("//", "/");
  assert_clean("/..", "/");
  assert_clean("/../..", "/");
  assert_clean("/../a", "/a");
  assert_clean("/a/", "/a");
  assert_clean("/a/b/", "/a/b");
  assert_clean("/a/..", "/");
  assert_clean("/a/b/..", "/a");
  assert_clean("/a/b/../..", "/");
  assert_clean("/a/b/../../..", "/");
  assert_clean("/./a/./", "/a");
  assert_clean("/.", "/");
  assert_clean("/abc/def/../ghi", "/abc/ghi");
  assert_clean("/a/.../b", "/a/.../b");
  assert_clean("/a/..b/.c", "/a/..b/.c");
  assert_clean("/v2/keys/foo/", "/v2/keys/foo");
  assert_clean("a/b", "/a/b");
  assert_clean("/%2F/x", "/%2F/x");
}

/* Cleaning appends to what the buffer already holds and does not climb above it. */
static void test_clean_path_appends(void **state) {
  (void)state;
  sbuf out = {0};
  sbuf_put(&out, "pre", 3);
  http_clean_path(&out, S("/x/../../y/"));
  assert_int_equal(out.len, 5);
  assert_memory_equal(out.p, "pre/y", 5);
  sbuf_reset(&out);
  sbuf_put(&out, "pre", 3);
  http_clean_path(&out, S("/x/.."));
  assert_int_equal(out.len, 4);
  assert_memory_equal(out.p, "pre/", 4);
  sbuf_free(&out);
}

/* A ';' separator and a bad escape are errors worded as Go's url.ParseQuery words them, and
 * the other pairs are still parsed. */
static void test_params_go_errors(void **state) {
  (void)state;
  http_params ps;
  memset(&ps, 0, sizeof ps);
  assert_int_equal(http_params_parse(&ps, S("a=1;b=2&c=3")), -1);
  assert_string_equal(ps.error, "invalid semicolon separator in query");
  assert_param(&ps, "c", S("3"));
  assert_null(http_params_get(&ps, "a"));
  http_params_free(&ps);
  memset(&ps, 0, sizeof ps);
  assert_int_equal(http_params_parse(&ps, S("value=%zz&x=1")), -1);
  assert_string_equal(ps.error, "invalid URL escape \"%zz\"");
  assert_param(&ps, "x", S("1"));
  http_params_free(&ps);
  memset(&ps, 0, sizeof ps);
  assert_int_equal(http_params_parse(&ps, S("v=ab%4")), -1);
  assert_string_equal(ps.error, "invalid URL escape \"%4\"");
  http_params_free(&ps);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_unescape_valid),
      cmocka_unit_test(test_unescape_plus),
      cmocka_unit_test(test_unescape_malformed),
      cmocka_unit_test(test_unescape_respects_length),
      cmocka_unit_test(test_params_basic),
      cmocka_unit_test(test_params_first_value_wins),
      cmocka_unit_test(test_params_append),
      cmocka_unit_test(test_params_empty_values),
      cmocka_unit_test(test_params_equals),
      cmocka_unit_test(test_params_nul_in_value),
      cmocka_unit_test(test_params_malformed),
      cmocka_unit_test(test_params_respects_length),
      cmocka_unit_test(test_params_many),
      cmocka_unit_test(test_params_go_errors),
      cmocka_unit_test(test_clean_path),
      cmocka_unit_test(test_clean_path_appends),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
