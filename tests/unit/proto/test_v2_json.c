/* Unit tests of proto/v2_json.c: RFC 3339 times, ttl rounding, the exact byte layout of node
 * and error JSON (etcd's field order), UTF-8 repair and escaping, and the error-code table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <strings.h>

#include "proto/v2_json.h"

#define NS 1000000000LL
#define T0 1767323045LL /* 2026-01-02T03:04:05Z */

/* Returns what g produced so far as a NUL-terminated string (static buffer) and frees g. */
static const char *gen_take(yajl_gen g) {
  static char out[8192];
  const unsigned char *buf;
  size_t n;
  yajl_gen_get_buf(g, &buf, &n);
  if (n >= sizeof out) n = sizeof out - 1;
  memcpy(out, buf, n);
  out[n] = 0;
  yajl_gen_free(g);
  return out;
}

/* Generates node n (at now) and compares the JSON with want byte for byte. */
static void assert_node_json(const proto_node *n, int64_t now, const char *want) {
  yajl_gen g = proto_v2_gen_new();
  assert_non_null(g);
  proto_v2_gen_node(g, n, now);
  assert_string_equal(gen_take(g), want);
}

/* Generates a string with proto_v2_gen_str and compares the JSON with want. */
static void assert_str_json(const char *s, size_t len, const char *want) {
  yajl_gen g = proto_v2_gen_new();
  proto_v2_gen_str(g, s, len);
  assert_string_equal(gen_take(g), want);
}

/* Formats ns with proto_v2_rfc3339 and compares with want (also the returned length). */
static void assert_time(int64_t ns, const char *want) {
  char out[40];
  memset(out, 'X', sizeof out);
  size_t n = proto_v2_rfc3339(ns, out);
  assert_string_equal(out, want);
  assert_int_equal(n, strlen(want));
}

/* A whole second has no fraction and ends in Z. */
static void test_rfc3339_no_fraction(void **state) {
  (void)state;
  assert_time(0, "1970-01-01T00:00:00Z");
  assert_time(T0 * NS, "2026-01-02T03:04:05Z");
  assert_time(951868799LL * NS, "2000-02-29T23:59:59Z");
}

/* Trailing zeros of the nanosecond fraction are trimmed, leading ones kept. */
static void test_rfc3339_fraction_trimmed(void **state) {
  (void)state;
  assert_time(T0 * NS + 123456789, "2026-01-02T03:04:05.123456789Z");
  assert_time(T0 * NS + 500000000, "2026-01-02T03:04:05.5Z");
  assert_time(T0 * NS + 120000000, "2026-01-02T03:04:05.12Z");
  assert_time(T0 * NS + 1, "2026-01-02T03:04:05.000000001Z");
  assert_time(T0 * NS + 100, "2026-01-02T03:04:05.0000001Z");
  assert_time(T0 * NS + 999999990, "2026-01-02T03:04:05.99999999Z");
}

/* Times before the epoch borrow a second for the fraction, like Go. */
static void test_rfc3339_before_epoch(void **state) {
  (void)state;
  assert_time(-1, "1969-12-31T23:59:59.999999999Z");
  assert_time(-NS, "1969-12-31T23:59:59Z");
  assert_time(-NS / 2, "1969-12-31T23:59:59.5Z");
}

/* ttl is the remaining time in whole seconds rounded up; exact seconds are not bumped. */
static void test_ttl_rounds_up(void **state) {
  (void)state;
  int64_t now = T0 * NS;
  assert_int_equal(proto_v2_ttl(now + 5 * NS, now), 5);
  assert_int_equal(proto_v2_ttl(now + 5 * NS - 1, now), 5);
  assert_int_equal(proto_v2_ttl(now + 4 * NS + 1, now), 5);
  assert_int_equal(proto_v2_ttl(now + NS / 2, now), 1);
  assert_int_equal(proto_v2_ttl(now + 1, now), 1);
  assert_int_equal(proto_v2_ttl(now, now), 0);
  /* Past expirations: Go's truncating division with a round up only for positive rests. */
  assert_int_equal(proto_v2_ttl(now - NS / 2, now), 0);
  assert_int_equal(proto_v2_ttl(now - 3 * NS / 2, now), -1);
}

/* A file node lists key, value, expiration, ttl, modifiedIndex, createdIndex in that order. */
static void test_node_file_field_order(void **state) {
  (void)state;
  proto_node n = {.key = "/a/b", .key_len = 4, .value = "v", .value_len = 1,
                  .expiration = (T0 + 5) * NS + 250000000, .created_index = 7,
                  .modified_index = 9};
  assert_node_json(&n, T0 * NS,
                   "{\"key\":\"/a/b\",\"value\":\"v\",\"expiration\":\"2026-01-02T03:04:10.25Z\","
                   "\"ttl\":6,\"modifiedIndex\":9,\"createdIndex\":7}");
}

/* A permanent file has neither expiration nor ttl; an empty value is still shown. */
static void test_node_file_permanent_empty_value(void **state) {
  (void)state;
  proto_node n = {.key = "/k", .key_len = 2, .value = "", .value_len = 0, .created_index = 3,
                  .modified_index = 3};
  assert_node_json(&n, T0 * NS, "{\"key\":\"/k\",\"value\":\"\",\"modifiedIndex\":3,\"createdIndex\":3}");
  n.value = NULL; /* NULL with length 0 is also "" */
  assert_node_json(&n, T0 * NS, "{\"key\":\"/k\",\"value\":\"\",\"modifiedIndex\":3,\"createdIndex\":3}");
}

/* Indexes are written in full decimal: 0, one digit, a carry, and the largest uint64. */
static void test_node_index_digits(void **state) {
  (void)state;
  proto_node n = {.key = "/k", .key_len = 2, .value = "v", .value_len = 1, .created_index = 0,
                  .modified_index = 10};
  assert_node_json(&n, T0 * NS, "{\"key\":\"/k\",\"value\":\"v\",\"modifiedIndex\":10,\"createdIndex\":0}");
  n.created_index = 9;
  n.modified_index = UINT64_MAX;
  assert_node_json(&n, T0 * NS,
                   "{\"key\":\"/k\",\"value\":\"v\",\"modifiedIndex\":18446744073709551615,"
                   "\"createdIndex\":9}");
}

/* A directory shows dir:true (no value) and its nodes between ttl and the indexes. */
static void test_node_dir_field_order(void **state) {
  (void)state;
  proto_node kids[2] = {
      {.key = "/d/a", .key_len = 4, .value = "1", .value_len = 1, .created_index = 2,
       .modified_index = 3},
      {.key = "/d/e", .key_len = 4, .dir = 1, .created_index = 4, .modified_index = 4},
  };
  proto_node n = {.key = "/d", .key_len = 2, .dir = 1, .value = "ignored", .value_len = 7,
                  .expiration = (T0 + 10) * NS, .created_index = 1, .modified_index = 5,
                  .nodes = kids, .n_nodes = 2};
  assert_node_json(&n, T0 * NS,
                   "{\"key\":\"/d\",\"dir\":true,\"expiration\":\"2026-01-02T03:04:15Z\",\"ttl\":10,"
                   "\"nodes\":[{\"key\":\"/d/a\",\"value\":\"1\",\"modifiedIndex\":3,\"createdIndex\":2},"
                   "{\"key\":\"/d/e\",\"dir\":true,\"modifiedIndex\":4,\"createdIndex\":4}],"
                   "\"modifiedIndex\":5,\"createdIndex\":1}");
}

/* An empty directory has no nodes field. */
static void test_node_dir_empty(void **state) {
  (void)state;
  proto_node n = {.key = "/d", .key_len = 2, .dir = 1, .created_index = 1, .modified_index = 1};
  assert_node_json(&n, 0, "{\"key\":\"/d\",\"dir\":true,\"modifiedIndex\":1,\"createdIndex\":1}");
}

/* The root has no key and no indexes: {"dir":true,"nodes":[...]}. */
static void test_node_root(void **state) {
  (void)state;
  proto_node kid = {.key = "/x", .key_len = 2, .value = "y", .value_len = 1, .created_index = 8,
                    .modified_index = 8};
  proto_node root = {.dir = 1, .created_index = 99, .modified_index = 99, .nodes = &kid,
                     .n_nodes = 1};
  assert_node_json(&root, 0,
                   "{\"dir\":true,\"nodes\":[{\"key\":\"/x\",\"value\":\"y\",\"modifiedIndex\":8,"
                   "\"createdIndex\":8}]}");
  root.n_nodes = 0;
  assert_node_json(&root, 0, "{\"dir\":true}");
}

/* no_value drops the value of a file (delete/expire events) but keeps dir:true on a dir. */
static void test_node_no_value(void **state) {
  (void)state;
  proto_node n = {.key = "/k", .key_len = 2, .value = "v", .value_len = 1, .no_value = 1,
                  .created_index = 2, .modified_index = 6};
  assert_node_json(&n, 0, "{\"key\":\"/k\",\"modifiedIndex\":6,\"createdIndex\":2}");
  n.dir = 1;
  assert_node_json(&n, 0, "{\"key\":\"/k\",\"dir\":true,\"modifiedIndex\":6,\"createdIndex\":2}");
}

/* omit_ttl keeps the expiration but drops ttl (expire events' prevNode). */
static void test_node_omit_ttl(void **state) {
  (void)state;
  proto_node n = {.key = "/k", .key_len = 2, .value = "v", .value_len = 1,
                  .expiration = (T0 + 3) * NS, .omit_ttl = 1, .created_index = 2,
                  .modified_index = 2};
  assert_node_json(&n, T0 * NS,
                   "{\"key\":\"/k\",\"value\":\"v\",\"expiration\":\"2026-01-02T03:04:08Z\","
                   "\"modifiedIndex\":2,\"createdIndex\":2}");
}

/* ttl is omitted when it rounds to 0 (expiration == now), expiration still shown. */
static void test_node_ttl_zero_omitted(void **state) {
  (void)state;
  proto_node n = {.key = "/k", .key_len = 2, .value = "", .expiration = T0 * NS,
                  .created_index = 2, .modified_index = 2};
  assert_node_json(&n, T0 * NS,
                   "{\"key\":\"/k\",\"value\":\"\",\"expiration\":\"2026-01-02T03:04:05Z\","
                   "\"modifiedIndex\":2,\"createdIndex\":2}");
}

/* Indexes are written as full unsigned 64-bit numbers. */
static void test_node_large_indexes(void **state) {
  (void)state;
  proto_node n = {.key = "/k", .key_len = 2, .value = "", .created_index = UINT64_MAX,
                  .modified_index = (uint64_t)INT64_MAX + 1};
  assert_node_json(&n, 0,
                   "{\"key\":\"/k\",\"value\":\"\",\"modifiedIndex\":9223372036854775808,"
                   "\"createdIndex\":18446744073709551615}");
}

/* The open/close halves with "nodes" written in between produce the same JSON as gen_node. */
static void test_node_open_close(void **state) {
  (void)state;
  proto_node n = {.key = "/d", .key_len = 2, .dir = 1, .created_index = 1, .modified_index = 2};
  yajl_gen g = proto_v2_gen_new();
  proto_v2_gen_node_open(g, &n, 0);
  PROTO_V2_GEN_KEY(g, "nodes");
  yajl_gen_array_open(g);
  yajl_gen_array_close(g);
  proto_v2_gen_node_close(g, &n);
  assert_string_equal(gen_take(g), "{\"key\":\"/d\",\"dir\":true,\"nodes\":[],\"modifiedIndex\":2,"
                                   "\"createdIndex\":1}");
}

/* Valid UTF-8 (2-, 3- and 4-byte sequences) passes unchanged. */
static void test_str_valid_utf8(void **state) {
  (void)state;
  assert_str_json("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15,
                  "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"");
  assert_str_json("\xef\xbf\xbf\xf4\x8f\xbf\xbf", 7, "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
}

/* Each invalid byte becomes one \ufffd escape, as Go's encoder steps one byte at a time. */
static void test_str_invalid_utf8_replaced(void **state) {
  (void)state;
  /* A stray continuation / impossible byte. */
  assert_str_json("a\xff" "b", 3, "\"a\\ufffdb\"");
  assert_str_json("\x80", 1, "\"\\ufffd\"");
  /* Overlong encoding of '/' (C0 AF): two bytes, two replacements. */
  assert_str_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");
  /* Overlong 3-byte (E0 80 80). */
  assert_str_json("\xe0\x80\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
  /* Surrogate half U+D800 (ED A0 80). */
  assert_str_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\"");
  /* Beyond U+10FFFF (F4 90 80 80). */
  assert_str_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");
  /* Truncated sequence at the end: the lead and the continuation each replaced. */
  assert_str_json("x\xe2\x82", 3, "\"x\\ufffd\\ufffd\"");
  /* Valid text around an invalid byte is kept. */
  assert_str_json("\xc3\xa9\xfe\xc3\xa9", 5, "\"\xc3\xa9\\ufffd\xc3\xa9\"");
}

/* A long string written by the rare path (beyond its stack buffer) is whole. */
static void test_str_invalid_long(void **state) {
  (void)state;
  char in[600];
  memset(in, 'a', sizeof in);
  in[599] = (char)0xff;
  static char want[700];
  want[0] = '"';
  memset(want + 1, 'a', 599);
  memcpy(want + 600, "\\ufffd\"", 8);
  assert_str_json(in, sizeof in, want);
}

/* Control characters, quotes and backslashes are escaped as Go escapes them ('/' and DEL are
 * not); so are "<", ">", "&", U+2028 and U+2029 (etcd's json.Encoder escapes HTML). The
 * expected texts are etcd 3.4's answers to the same values, byte for byte. */
static void test_str_escapes_as_go(void **state) {
  (void)state;
  assert_str_json("a\nb\tc\rd", 7, "\"a\\nb\\tc\\rd\"");
  assert_str_json("q\"b\\s/", 6, "\"q\\\"b\\\\s/\"");
  assert_str_json("\x01\x19", 2, "\"\\u0001\\u0019\"");
  assert_str_json("\x08\x0c\x1f\x7f", 4, "\"\\u0008\\u000c\\u001f\x7f\"");
  assert_str_json("a\0b", 3, "\"a\\u0000b\"");
  assert_str_json("<a&b>", 5, "\"\\u003ca\\u0026b\\u003e\"");
  assert_str_json("\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\xaa", 9, "\"\\u2028\\u2029\xe2\x80\xaa\"");
  assert_str_json("\n\xff", 2, "\"\\n\\ufffd\"");
  const char v[] = "\x08\x0c\x1f\t\n\r\"\\/\x7f<a&b>\xe2\x80\xa8\xe2\x80\xa9\xff\xed\xa0\x80x"
                   "\xf4\x90\x80\x80\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e";
  assert_str_json(v, sizeof v - 1,
                  "\"\\u0008\\u000c\\u001f\\t\\n\\r\\\"\\\\/\x7f\\u003ca\\u0026b\\u003e\\u2028\\u2029"
                  "\\ufffd\\ufffd\\ufffd\\ufffdx\\ufffd\\ufffd\\ufffd\\ufffd\xc3\xa9\xe2\x82\xac"
                  "\xf0\x9d\x84\x9e\"");
}

/* Whole-buffer validation, NUL bytes included (they are UTF-8). */
static void test_utf8_valid(void **state) {
  (void)state;
  assert_true(proto_v2_utf8_valid("", 0));
  assert_true(proto_v2_utf8_valid("a\0b\xc3\xa9\xf0\x9d\x84\x9e", 9));
  assert_false(proto_v2_utf8_valid("a\xff", 2));
  assert_false(proto_v2_utf8_valid("\xc3", 1));          /* cut short */
  assert_false(proto_v2_utf8_valid("\xed\xa0\x80", 3));  /* a surrogate */
  assert_false(proto_v2_utf8_valid("\xc0\xaf", 2));      /* overlong */
  assert_true(proto_v2_utf8_valid("\xc3\xa9x", 2));      /* only the N bytes count */
}

/* A map key goes to yajl as a string (invalid bytes as U+FFFD), and the JSON stays whole. */
static void test_str_as_map_key(void **state) {
  (void)state;
  yajl_gen g = proto_v2_gen_new();
  yajl_gen_map_open(g);
  proto_v2_gen_str(g, "<\xff", 2);
  proto_v2_gen_str(g, "<", 1);
  yajl_gen_map_close(g);
  assert_string_equal(gen_take(g), "{\"<\xef\xbf\xbd\":\"\\u003c\"}");
}

/* Keys and values in nodes are written the same way. */
static void test_node_strings_repaired(void **state) {
  (void)state;
  proto_node n = {.key = "/\xff", .key_len = 2, .value = "\x01", .value_len = 1,
                  .created_index = 1, .modified_index = 1};
  assert_node_json(&n, 0, "{\"key\":\"/\\ufffd\",\"value\":\"\\u0001\",\"modifiedIndex\":1,"
                          "\"createdIndex\":1}");
}

/* The error body lists errorCode, message, cause and index. */
static void test_error_json(void **state) {
  (void)state;
  yajl_gen g = proto_v2_gen_new();
  proto_v2_gen_error(g, 100, "/a/b", 4, 17);
  assert_string_equal(gen_take(g),
                      "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/a/b\",\"index\":17}");

  g = proto_v2_gen_new();
  proto_v2_gen_error(g, 209, "invalid value for \"recursive\"", 29, 0);
  assert_string_equal(gen_take(g), "{\"errorCode\":209,\"message\":\"Invalid field\",\"cause\":"
                                   "\"invalid value for \\\"recursive\\\"\",\"index\":0}");
}

/* An empty or NULL cause is omitted. */
static void test_error_json_without_cause(void **state) {
  (void)state;
  yajl_gen g = proto_v2_gen_new();
  proto_v2_gen_error(g, 101, "", 0, 3);
  assert_string_equal(gen_take(g), "{\"errorCode\":101,\"message\":\"Compare failed\",\"index\":3}");
  g = proto_v2_gen_new();
  proto_v2_gen_error(g, 101, NULL, 0, 3);
  assert_string_equal(gen_take(g), "{\"errorCode\":101,\"message\":\"Compare failed\",\"index\":3}");
}

/* Error codes map to etcd's HTTP statuses (104, 107 and 401 are 400). */
static void test_error_status_table(void **state) {
  (void)state;
  assert_int_equal(proto_v2_error_status(100), 404);
  assert_int_equal(proto_v2_error_status(101), 412);
  assert_int_equal(proto_v2_error_status(102), 403);
  assert_int_equal(proto_v2_error_status(104), 400);
  assert_int_equal(proto_v2_error_status(105), 412);
  assert_int_equal(proto_v2_error_status(107), 400);
  assert_int_equal(proto_v2_error_status(108), 403);
  assert_int_equal(proto_v2_error_status(201), 400);
  assert_int_equal(proto_v2_error_status(202), 400);
  assert_int_equal(proto_v2_error_status(203), 400);
  assert_int_equal(proto_v2_error_status(209), 400);
  assert_int_equal(proto_v2_error_status(211), 400);
  assert_int_equal(proto_v2_error_status(212), 400);
  assert_int_equal(proto_v2_error_status(401), 400);
}

/* 210 (Invalid POST form, a ParseForm failure) is 400: etcd's errorStatus map lists only
 * 100 102 108 110 101 105 300 301, everything else is StatusBadRequest. */
static void test_error_status_invalid_form(void **state) {
  (void)state;
  assert_string_equal(proto_v2_error_message(210), "Invalid POST form");
  assert_int_equal(proto_v2_error_status(110), 401);
  assert_int_equal(proto_v2_error_status(300), 500);
  assert_int_equal(proto_v2_error_status(301), 500);
  assert_int_equal(proto_v2_error_status(400), 400);
  assert_int_equal(proto_v2_error_status(210), 400);
}

/* Error codes carry etcd's fixed messages. */
static void test_error_messages(void **state) {
  (void)state;
  assert_string_equal(proto_v2_error_message(100), "Key not found");
  assert_string_equal(proto_v2_error_message(101), "Compare failed");
  assert_string_equal(proto_v2_error_message(102), "Not a file");
  assert_string_equal(proto_v2_error_message(104), "Not a directory");
  assert_string_equal(proto_v2_error_message(105), "Key already exists");
  assert_string_equal(proto_v2_error_message(107), "Root is read only");
  assert_string_equal(proto_v2_error_message(108), "Directory not empty");
  assert_string_equal(proto_v2_error_message(201), "PrevValue is Required in POST form");
  assert_string_equal(proto_v2_error_message(202), "The given TTL in POST form is not a number");
  assert_string_equal(proto_v2_error_message(203), "The given index in POST form is not a number");
  assert_string_equal(proto_v2_error_message(209), "Invalid field");
  assert_string_equal(proto_v2_error_message(211), "Value provided on refresh");
  assert_string_equal(proto_v2_error_message(212), "A TTL must be provided on refresh");
  assert_string_equal(proto_v2_error_message(401),
                      "The event in requested index is outdated and cleared");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc3339_no_fraction),
      cmocka_unit_test(test_rfc3339_fraction_trimmed),
      cmocka_unit_test(test_rfc3339_before_epoch),
      cmocka_unit_test(test_ttl_rounds_up),
      cmocka_unit_test(test_node_file_field_order),
      cmocka_unit_test(test_node_file_permanent_empty_value),
      cmocka_unit_test(test_node_index_digits),
      cmocka_unit_test(test_node_dir_field_order),
      cmocka_unit_test(test_node_dir_empty),
      cmocka_unit_test(test_node_root),
      cmocka_unit_test(test_node_no_value),
      cmocka_unit_test(test_node_omit_ttl),
      cmocka_unit_test(test_node_ttl_zero_omitted),
      cmocka_unit_test(test_node_large_indexes),
      cmocka_unit_test(test_node_open_close),
      cmocka_unit_test(test_str_valid_utf8),
      cmocka_unit_test(test_str_invalid_utf8_replaced),
      cmocka_unit_test(test_str_invalid_long),
      cmocka_unit_test(test_str_escapes_as_go),
      cmocka_unit_test(test_str_as_map_key),
      cmocka_unit_test(test_utf8_valid),
      cmocka_unit_test(test_node_strings_repaired),
      cmocka_unit_test(test_error_json),
      cmocka_unit_test(test_error_json_without_cause),
      cmocka_unit_test(test_error_status_table),
      cmocka_unit_test(test_error_status_invalid_form),
      cmocka_unit_test(test_error_messages),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
