/* Unit tests of proto/record.c: the msgpack request record round-trips every field exactly,
 * decoded strings borrow the input buffer, and every malformed input is refused with -EINVAL. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "proto/record.h"

/* A record with every field set to something distinctive. */
static proto_record sample(void) {
  static const char path[] = "/dir/key";
  static const char value[] = "hello";
  static const char prev[] = "old";
  proto_record r = {0};
  r.op = PROTO_OP_CAS;
  r.flags = PROTO_REC_TTL | PROTO_REC_PREV_VALUE | PROTO_REC_PREV_EXIST;
  r.id = 0x0102030405060708ULL;
  r.expiration = 1767225600123456789LL;
  r.time = 1767225595000000001LL;
  r.prev_index = 42;
  r.path = path;
  r.path_len = sizeof path - 1;
  r.value = value;
  r.value_len = sizeof value - 1;
  r.prev_value = prev;
  r.prev_value_len = sizeof prev - 1;
  return r;
}

/* Encodes rec into a fresh malloc'd buffer. */
static char *encode(const proto_record *rec, size_t *len) {
  char *buf = NULL;
  size_t cap = 0;
  *len = 0;
  assert_int_equal(proto_record_encode(rec, &buf, len, &cap), 0);
  assert_non_null(buf);
  assert_true(*len <= cap);
  return buf;
}

/* Asserts two byte strings are equal (both may be empty). */
static void assert_bytes(const char *a, size_t alen, const char *b, size_t blen) {
  assert_int_equal(alen, blen);
  if (alen) assert_memory_equal(a, b, alen);
}

/* Asserts every field of got equals want. */
static void assert_same_record(const proto_record *got, const proto_record *want) {
  assert_int_equal(got->op, want->op);
  assert_int_equal(got->flags, want->flags);
  assert_true(got->id == want->id);
  assert_true(got->expiration == want->expiration);
  assert_true(got->time == want->time);
  assert_true(got->prev_index == want->prev_index);
  assert_bytes(got->path, got->path_len, want->path, want->path_len);
  assert_bytes(got->value, got->value_len, want->value, want->value_len);
  assert_bytes(got->prev_value, got->prev_value_len, want->prev_value, want->prev_value_len);
}

/* Asserts that s[0..n) lies inside buf[0..len). */
static void assert_inside(const char *s, size_t n, const char *buf, size_t len) {
  assert_non_null(s);
  assert_true(s >= buf);
  assert_true(s + n <= buf + len);
}

/* Every field survives encode then decode unchanged. */
static void test_round_trip_all_fields(void **state) {
  (void)state;
  proto_record r = sample(), d;
  size_t len;
  char *buf = encode(&r, &len);
  assert_int_equal(proto_record_decode(buf, len, &d), 0);
  assert_same_record(&d, &r);
  free(buf);
}

/* Every op from SET to QGET round-trips. */
static void test_round_trip_every_op(void **state) {
  (void)state;
  for (int op = PROTO_OP_SET; op < PROTO_OP_MAX; op++) {
    proto_record r = sample(), d;
    r.op = (uint8_t)op;
    size_t len;
    char *buf = encode(&r, &len);
    assert_int_equal(proto_record_decode(buf, len, &d), 0);
    assert_int_equal(d.op, op);
    free(buf);
  }
}

/* Empty strings (and NULL pointers with length 0) decode as empty strings. */
static void test_round_trip_empty_strings(void **state) {
  (void)state;
  proto_record r = sample(), d;
  r.value = "";
  r.value_len = 0;
  r.prev_value = NULL;
  r.prev_value_len = 0;
  size_t len;
  char *buf = encode(&r, &len);
  assert_int_equal(proto_record_decode(buf, len, &d), 0);
  assert_int_equal(d.value_len, 0);
  assert_int_equal(d.prev_value_len, 0);
  assert_bytes(d.path, d.path_len, r.path, r.path_len);
  free(buf);
}

/* Binary strings with NUL and high bytes survive byte for byte. */
static void test_round_trip_binary_strings(void **state) {
  (void)state;
  static const char path[] = "/a\0b\x01\xff";
  static const char value[] = "\0\0x\0\xfe\x80";
  static const char prev[] = "\0";
  proto_record r = sample(), d;
  r.path = path;
  r.path_len = sizeof path - 1;
  r.value = value;
  r.value_len = sizeof value - 1;
  r.prev_value = prev;
  r.prev_value_len = sizeof prev - 1;
  size_t len;
  char *buf = encode(&r, &len);
  assert_int_equal(proto_record_decode(buf, len, &d), 0);
  assert_same_record(&d, &r);
  free(buf);
}

/* A long value (beyond the 256-byte initial buffer and bin8) round-trips. */
static void test_round_trip_long_value(void **state) {
  (void)state;
  size_t n = 70000;
  char *value = malloc(n);
  assert_non_null(value);
  for (size_t i = 0; i < n; i++) value[i] = (char)(i * 7);
  proto_record r = sample(), d;
  r.value = value;
  r.value_len = n;
  size_t len;
  char *buf = encode(&r, &len);
  assert_int_equal(proto_record_decode(buf, len, &d), 0);
  assert_same_record(&d, &r);
  free(buf);
  free(value);
}

/* Negative and extreme integers keep their exact values. */
static void test_round_trip_extremes(void **state) {
  (void)state;
  proto_record r = sample(), d;
  size_t len;
  char *buf;

  r.expiration = -1;
  r.time = INT64_MIN;
  r.id = UINT64_MAX;
  r.prev_index = UINT64_MAX;
  r.flags = UINT32_MAX;
  buf = encode(&r, &len);
  assert_int_equal(proto_record_decode(buf, len, &d), 0);
  assert_same_record(&d, &r);
  free(buf);

  r.expiration = INT64_MIN;
  r.time = INT64_MAX;
  r.id = 0;
  r.prev_index = 0;
  r.flags = 0;
  buf = encode(&r, &len);
  assert_int_equal(proto_record_decode(buf, len, &d), 0);
  assert_same_record(&d, &r);
  free(buf);

  r.expiration = -1767225600123456789LL;
  r.id = (uint64_t)INT64_MAX + 1;
  r.prev_index = 1ULL << 40;
  buf = encode(&r, &len);
  assert_int_equal(proto_record_decode(buf, len, &d), 0);
  assert_same_record(&d, &r);
  free(buf);
}

/* Decoded strings point into the input buffer (no copies). */
static void test_decoded_strings_borrow_input(void **state) {
  (void)state;
  proto_record r = sample(), d;
  size_t len;
  char *buf = encode(&r, &len);
  assert_int_equal(proto_record_decode(buf, len, &d), 0);
  assert_inside(d.path, d.path_len, buf, len);
  assert_inside(d.value, d.value_len, buf, len);
  assert_inside(d.prev_value, d.prev_value_len, buf, len);
  /* Changing the buffer shows through the record. */
  ((char *)d.value)[0] = 'J';
  assert_memory_equal(d.value, "Jello", 5);
  free(buf);
}

/* Encoding appends to what the buffer already holds; each part decodes on its own. */
static void test_encode_appends(void **state) {
  (void)state;
  proto_record a = sample(), b = sample(), d;
  b.op = PROTO_OP_DELETE;
  b.value = "second";
  b.value_len = 6;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  assert_int_equal(proto_record_encode(&a, &buf, &len, &cap), 0);
  size_t first = len;
  assert_int_equal(proto_record_encode(&b, &buf, &len, &cap), 0);
  assert_true(len > first);
  assert_int_equal(proto_record_decode(buf, first, &d), 0);
  assert_same_record(&d, &a);
  assert_int_equal(proto_record_decode(buf + first, len - first, &d), 0);
  assert_same_record(&d, &b);
  assert_int_equal(proto_record_decode(buf, len, &d), -EINVAL); /* two records: trailing */
  free(buf);
}

/* Every strict prefix of a valid encoding is rejected with -EINVAL. */
static void test_truncated_at_every_length(void **state) {
  (void)state;
  proto_record r = sample(), d;
  size_t len;
  char *buf = encode(&r, &len);
  for (size_t n = 0; n < len; n++) {
    /* An exact-size copy so that ASan sees any read past the end. */
    char *cut = malloc(n ? n : 1);
    assert_non_null(cut);
    memcpy(cut, buf, n);
    int rc = proto_record_decode(cut, n, &d);
    if (rc != -EINVAL) print_error("prefix of %zu/%zu bytes: rc=%d\n", n, len, rc);
    assert_int_equal(rc, -EINVAL);
    free(cut);
  }
  free(buf);
}

/* Bytes after a valid record are rejected. */
static void test_trailing_bytes(void **state) {
  (void)state;
  proto_record r = sample(), d;
  size_t len;
  char *buf = encode(&r, &len);
  char *more = malloc(len + 1);
  assert_non_null(more);
  memcpy(more, buf, len);
  more[len] = (char)0xc0; /* msgpack nil */
  assert_int_equal(proto_record_decode(more, len + 1, &d), -EINVAL);
  more[len] = 0;
  assert_int_equal(proto_record_decode(more, len + 1, &d), -EINVAL);
  free(more);
  free(buf);
}

/* What to put in one field of a hand-built record. */
enum kind { K_OK, K_NIL, K_TRUE, K_FLOAT, K_STR, K_BIN, K_ARRAY, K_MAP, K_UINT, K_NEG };

/* Hand-built record: n_fields fields, field i normal unless i == bad (written as kind);
 * version and op as given. */
typedef struct build_spec {
  unsigned n_fields;
  uint64_t version, op, flags;
  int bad;
  enum kind kind;
} build_spec;

static void pack_kind(msgpack_packer *pk, enum kind k) {
  switch (k) {
    case K_NIL: msgpack_pack_nil(pk); break;
    case K_TRUE: msgpack_pack_true(pk); break;
    case K_FLOAT: msgpack_pack_double(pk, 1.0); break;
    case K_STR: msgpack_pack_str(pk, 1); msgpack_pack_str_body(pk, "1", 1); break;
    case K_BIN: msgpack_pack_bin(pk, 1); msgpack_pack_bin_body(pk, "1", 1); break;
    case K_ARRAY: msgpack_pack_array(pk, 0); break;
    case K_MAP: msgpack_pack_map(pk, 0); break;
    case K_UINT: msgpack_pack_uint64(pk, 1); break;
    case K_NEG: msgpack_pack_int64(pk, -1); break;
    case K_OK: break;
  }
}

static void build(msgpack_sbuffer *sb, const build_spec *s) {
  msgpack_packer pk;
  msgpack_sbuffer_init(sb);
  msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
  msgpack_pack_array(&pk, s->n_fields);
  for (unsigned i = 0; i < s->n_fields; i++) {
    if ((int)i == s->bad) {
      pack_kind(&pk, s->kind);
      continue;
    }
    switch (i) {
      case 0: msgpack_pack_uint64(&pk, s->version); break;
      case 1: msgpack_pack_uint64(&pk, s->op); break;
      case 2: msgpack_pack_uint64(&pk, s->flags); break;
      case 3: msgpack_pack_uint64(&pk, 7); break;
      case 4: msgpack_pack_int64(&pk, -5); break;
      case 5: msgpack_pack_int64(&pk, 5); break;
      case 6: msgpack_pack_uint64(&pk, 0); break;
      case 7: msgpack_pack_bin(&pk, 2); msgpack_pack_bin_body(&pk, "/k", 2); break;
      default: msgpack_pack_bin(&pk, 1); msgpack_pack_bin_body(&pk, "v", 1); break;
    }
  }
}

static int decode_spec(const build_spec *s) {
  msgpack_sbuffer sb;
  proto_record d;
  build(&sb, s);
  int rc = proto_record_decode(sb.data, sb.size, &d);
  msgpack_sbuffer_destroy(&sb);
  return rc;
}

static build_spec good_spec(void) {
  build_spec s = {10, PROTO_RECORD_VERSION, PROTO_OP_SET, 0, -1, K_OK};
  return s;
}

/* The hand-built reference record is accepted, with str as well as bin strings. */
static void test_hand_built_ok(void **state) {
  (void)state;
  build_spec s = good_spec();
  assert_int_equal(decode_spec(&s), 0);
  s.bad = 9;
  s.kind = K_STR; /* a str where a bin is expected is fine */
  assert_int_equal(decode_spec(&s), 0);
}

/* A version other than PROTO_RECORD_VERSION is rejected. */
static void test_wrong_version(void **state) {
  (void)state;
  build_spec s = good_spec();
  s.version = 0;
  assert_int_equal(decode_spec(&s), -EINVAL);
  s.version = PROTO_RECORD_VERSION + 1;
  assert_int_equal(decode_spec(&s), -EINVAL);
  s.version = UINT64_MAX;
  assert_int_equal(decode_spec(&s), -EINVAL);
}

/* An array of any size other than 10 is rejected. */
static void test_wrong_array_size(void **state) {
  (void)state;
  unsigned sizes[] = {0, 1, 7, 9, 11, 12};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    build_spec s = good_spec();
    s.n_fields = sizes[i];
    assert_int_equal(decode_spec(&s), -EINVAL);
  }
}

/* op 0 and op >= PROTO_OP_MAX are rejected; 1..MAX-1 accepted. */
static void test_op_range(void **state) {
  (void)state;
  build_spec s = good_spec();
  s.op = 0;
  assert_int_equal(decode_spec(&s), -EINVAL);
  s.op = PROTO_OP_MAX;
  assert_int_equal(decode_spec(&s), -EINVAL);
  s.op = 255;
  assert_int_equal(decode_spec(&s), -EINVAL);
  s.op = 256 + PROTO_OP_SET; /* must not be truncated to a valid uint8 */
  assert_int_equal(decode_spec(&s), -EINVAL);
  for (uint64_t op = 1; op < PROTO_OP_MAX; op++) {
    s.op = op;
    assert_int_equal(decode_spec(&s), 0);
  }
}

/* flags beyond 32 bits are rejected. */
static void test_flags_overflow(void **state) {
  (void)state;
  build_spec s = good_spec();
  s.flags = (uint64_t)UINT32_MAX + 1;
  assert_int_equal(decode_spec(&s), -EINVAL);
  s.flags = UINT32_MAX;
  assert_int_equal(decode_spec(&s), 0);
}

/* A non-integer in any integer field, or a non-string in any string field, is rejected. */
static void test_wrong_types(void **state) {
  (void)state;
  enum kind not_int[] = {K_NIL, K_TRUE, K_FLOAT, K_STR, K_BIN, K_ARRAY, K_MAP};
  enum kind not_str[] = {K_NIL, K_TRUE, K_FLOAT, K_UINT, K_NEG, K_ARRAY, K_MAP};
  for (int f = 0; f < 10; f++) {
    const enum kind *kinds = f < 7 ? not_int : not_str;
    for (size_t k = 0; k < 7; k++) {
      build_spec s = good_spec();
      s.bad = f;
      s.kind = kinds[k];
      int rc = decode_spec(&s);
      if (rc != -EINVAL) print_error("field %d kind %d: rc=%d\n", f, (int)kinds[k], rc);
      assert_int_equal(rc, -EINVAL);
    }
  }
}

/* Top-level values that are not an array are rejected. */
static void test_not_an_array(void **state) {
  (void)state;
  proto_record d;
  static const char nil[] = {(char)0xc0};
  static const char map[] = {(char)0x80};
  static const char num[] = {0x01};
  static const char str[] = {(char)0xa1, 'x'};
  assert_int_equal(proto_record_decode(nil, sizeof nil, &d), -EINVAL);
  assert_int_equal(proto_record_decode(map, sizeof map, &d), -EINVAL);
  assert_int_equal(proto_record_decode(num, sizeof num, &d), -EINVAL);
  assert_int_equal(proto_record_decode(str, sizeof str, &d), -EINVAL);
  assert_int_equal(proto_record_decode("", 0, &d), -EINVAL);
}

/* Garbage bytes (an invalid msgpack type byte) are rejected. */
static void test_garbage(void **state) {
  (void)state;
  proto_record d;
  static const char bad[] = {(char)0xc1};
  assert_int_equal(proto_record_decode(bad, sizeof bad, &d), -EINVAL);
  char junk[64];
  for (size_t i = 0; i < sizeof junk; i++) junk[i] = (char)(0x9a ^ (i * 31));
  junk[0] = (char)0x9a; /* fixarray of 10 */
  assert_int_equal(proto_record_decode(junk, sizeof junk, &d), -EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip_all_fields),
      cmocka_unit_test(test_round_trip_every_op),
      cmocka_unit_test(test_round_trip_empty_strings),
      cmocka_unit_test(test_round_trip_binary_strings),
      cmocka_unit_test(test_round_trip_long_value),
      cmocka_unit_test(test_round_trip_extremes),
      cmocka_unit_test(test_decoded_strings_borrow_input),
      cmocka_unit_test(test_encode_appends),
      cmocka_unit_test(test_truncated_at_every_length),
      cmocka_unit_test(test_trailing_bytes),
      cmocka_unit_test(test_hand_built_ok),
      cmocka_unit_test(test_wrong_version),
      cmocka_unit_test(test_wrong_array_size),
      cmocka_unit_test(test_op_range),
      cmocka_unit_test(test_flags_overflow),
      cmocka_unit_test(test_wrong_types),
      cmocka_unit_test(test_not_an_array),
      cmocka_unit_test(test_garbage),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
