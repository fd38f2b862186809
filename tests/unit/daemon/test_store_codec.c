/* Unit tests of daemon/store_codec.c: the LevelDB key layout of nodes (escaping, children and
 * subtree prefixes), the other key kinds, and the node value encoding. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "daemon/store_codec.h"

#define S(lit) lit, sizeof(lit) - 1

/* Asserts that b holds exactly want[0..n). */
static void assert_sbuf(const sbuf *b, const char *want, size_t n) {
  assert_int_equal(b->len, n);
  if (n) assert_memory_equal(b->p, want, n);
}

/* The node key of path, as a fresh sbuf. */
static sbuf node_key(const char *path, size_t len) {
  sbuf k = {0};
  codec_node_key(&k, path, len);
  return k;
}

static int starts_with(const sbuf *k, const sbuf *prefix) {
  return k->len >= prefix->len && !memcmp(k->p, prefix->p, prefix->len);
}

/* A node key is 'n', the parent path, a 0 byte, then the name. */
static void test_node_key_layout(void **state) {
  (void)state;
  sbuf k = node_key(S("/a"));
  assert_sbuf(&k, S("n\0a"));
  sbuf_reset(&k);
  codec_node_key(&k, S("/a/b"));
  assert_sbuf(&k, S("n/a\0b"));
  sbuf_reset(&k);
  codec_node_key(&k, S("/dir/sub/leaf"));
  assert_sbuf(&k, S("n/dir/sub\0leaf"));
  sbuf_free(&k);
}

/* 0x00 is escaped as 01 01 and 0x01 as 01 02, in names and in parent paths. */
static void test_node_key_escaping(void **state) {
  (void)state;
  sbuf k = node_key(S("/x\0y"));
  assert_sbuf(&k, S("n\0x\1\1y"));
  sbuf_reset(&k);
  codec_node_key(&k, S("/d\1/e\0"));
  assert_sbuf(&k, S("n/d\1\2\0e\1\1"));
  sbuf_reset(&k);
  codec_node_key(&k, S("/\0/\1"));
  assert_sbuf(&k, S("n/\1\1\0\1\2"));
  sbuf_reset(&k);
  codec_node_key(&k, S("/\2\xff")); /* other bytes are not escaped */
  assert_sbuf(&k, S("n\0\2\xff"));
  sbuf_free(&k);
}

/* codec_node_path inverts codec_node_key, escapes included. */
static void test_node_path_round_trip(void **state) {
  (void)state;
  static const struct {
    const char *p;
    size_t n;
  } paths[] = {
      {S("/a")},        {S("/a/b")},        {S("/a/b/c/d")},   {S("/x\0y")},
      {S("/d\1/e\0")},  {S("/\0/\1")},      {S("/\1\1\0\0")},  {S("/_h/.x/a b")},
      {S("/\xff\xfe")}, {S("/0000000001")},
  };
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    sbuf k = node_key(paths[i].p, paths[i].n), p = {0};
    assert_int_equal(codec_node_path(&p, k.p, k.len), 0);
    assert_sbuf(&p, paths[i].p, paths[i].n);
    sbuf_free(&k);
    sbuf_free(&p);
  }
}

/* codec_node_path refuses keys that are not node keys. */
static void test_node_path_rejects(void **state) {
  (void)state;
  sbuf p = {0};
  assert_int_equal(codec_node_path(&p, "", 0), -EINVAL);
  assert_int_equal(codec_node_path(&p, "n", 1), -EINVAL);
  sbuf_reset(&p);
  assert_int_equal(codec_node_path(&p, S("x\0a")), -EINVAL);  /* wrong tag */
  sbuf_reset(&p);
  assert_int_equal(codec_node_path(&p, S("nabc")), -EINVAL);  /* no separator */
  sbuf_reset(&p);
  assert_int_equal(codec_node_path(&p, S("n/a\0b\0c")), -EINVAL); /* two separators */
  sbuf_reset(&p);
  assert_int_equal(codec_node_path(&p, S("n\0a\1")), -EINVAL); /* dangling escape */
  sbuf_free(&p);
}

/* The root's children prefix is "n\0" (for "/" and ""); a dir's is 'n' path 0. */
static void test_children_prefix(void **state) {
  (void)state;
  sbuf b = {0};
  codec_children_prefix(&b, S("/"));
  assert_sbuf(&b, S("n\0"));
  sbuf_reset(&b);
  codec_children_prefix(&b, "", 0);
  assert_sbuf(&b, S("n\0"));
  sbuf_reset(&b);
  codec_children_prefix(&b, S("/a"));
  assert_sbuf(&b, S("n/a\0"));
  sbuf_reset(&b);
  codec_children_prefix(&b, S("/a/b\0"));
  assert_sbuf(&b, S("n/a/b\1\1\0"));
  sbuf_reset(&b);
  codec_deep_prefix(&b, S("/a"));
  assert_sbuf(&b, S("n/a/"));
  sbuf_reset(&b);
  codec_deep_prefix(&b, S("/a\1"));
  assert_sbuf(&b, S("n/a\1\2/"));
  sbuf_free(&b);
}

/* Every direct child of a dir has the children prefix; the root's children are all 'n' 0 keys. */
static void test_children_prefix_matches_children(void **state) {
  (void)state;
  sbuf pre = {0};
  codec_children_prefix(&pre, S("/"));
  sbuf k = node_key(S("/top"));
  assert_true(starts_with(&k, &pre));
  sbuf_reset(&k);
  codec_node_key(&k, S("/top/sub"));
  assert_false(starts_with(&k, &pre));
  sbuf_free(&k);
  sbuf_free(&pre);
}

typedef struct pathlit {
  const char *p;
  size_t n;
} pathlit;

/* Every descendant key of /a starts with /a's children or deep prefix; no key of /ab, /a-b,
 * /a itself or a sibling does. Direct children match the children prefix, deeper ones the deep
 * prefix. */
static void test_subtree_prefixes(void **state) {
  (void)state;
  static const pathlit children[] = {
      {S("/a/b")}, {S("/a/-")}, {S("/a/~")}, {S("/a/\0")}, {S("/a/\1")}, {S("/a/_h")}, {S("/a/.")},
  };
  static const pathlit deeper[] = {
      {S("/a/b/c")}, {S("/a/b/c/d/e")}, {S("/a/\0/x")}, {S("/a/b\0/c")}, {S("/a/-/x")},
      {S("/a/_h/x")},
  };
  static const pathlit others[] = {
      {S("/a")},       {S("/ab")},     {S("/ab/c")},    {S("/ab/c/d")}, {S("/a-b")},
      {S("/a-b/c")},   {S("/a-b/c/d")}, {S("/a\0")},     {S("/a\0/x")},  {S("/a\1/x")},
      {S("/a.b/c")},   {S("/b/a")},    {S("/b/a/c")},   {S("/")},       {S("/x/a/b")},
      {S("/a!/b/c")},
  };
  sbuf ch = {0}, deep = {0};
  codec_children_prefix(&ch, S("/a"));
  codec_deep_prefix(&deep, S("/a"));
  for (size_t i = 0; i < sizeof children / sizeof children[0]; i++) {
    sbuf k = node_key(children[i].p, children[i].n);
    assert_true(starts_with(&k, &ch));
    assert_false(starts_with(&k, &deep));
    sbuf_free(&k);
  }
  for (size_t i = 0; i < sizeof deeper / sizeof deeper[0]; i++) {
    sbuf k = node_key(deeper[i].p, deeper[i].n);
    assert_false(starts_with(&k, &ch));
    assert_true(starts_with(&k, &deep));
    sbuf_free(&k);
  }
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
    if (others[i].n == 1) continue; /* "/" has no node key */
    sbuf k = node_key(others[i].p, others[i].n);
    if (starts_with(&k, &ch) || starts_with(&k, &deep))
      print_error("key of other path #%zu matches /a's prefixes\n", i);
    assert_false(starts_with(&k, &ch));
    assert_false(starts_with(&k, &deep));
    sbuf_free(&k);
  }
  sbuf_free(&ch);
  sbuf_free(&deep);
}

/* A parent's node key sorts before every key below it (so listings meet parents first). */
static void test_parent_sorts_before_descendants(void **state) {
  (void)state;
  static const pathlit pairs[][2] = {
      {{S("/a")}, {S("/a/b")}},
      {{S("/a/b")}, {S("/a/b/c")}},
      {{S("/a/b")}, {S("/a/b/\0")}},
      {{S("/a/b!")}, {S("/a/b!/c")}},
      {{S("/a/b\0")}, {S("/a/b\0/c")}},
  };
  for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
    sbuf a = node_key(pairs[i][0].p, pairs[i][0].n), b = node_key(pairs[i][1].p, pairs[i][1].n);
    size_t m = a.len < b.len ? a.len : b.len;
    int c = memcmp(a.p, b.p, m);
    assert_true(c < 0 || (c == 0 && a.len < b.len));
    sbuf_free(&a);
    sbuf_free(&b);
  }
}

/* Names of one directory sort in byte order of the unescaped names. */
static void test_children_order_is_name_order(void **state) {
  (void)state;
  static const pathlit names[] = {
      {S("/d/\0")}, {S("/d/\0\xff")}, {S("/d/\1")}, {S("/d/\2")}, {S("/d/10")},
      {S("/d/9")},  {S("/d/Beta")},   {S("/d/alpha")},
  };
  for (size_t i = 0; i + 1 < sizeof names / sizeof names[0]; i++) {
    sbuf a = node_key(names[i].p, names[i].n), b = node_key(names[i + 1].p, names[i + 1].n);
    size_t m = a.len < b.len ? a.len : b.len;
    int c = memcmp(a.p, b.p, m);
    assert_true(c < 0 || (c == 0 && a.len < b.len));
    sbuf_free(&a);
    sbuf_free(&b);
  }
}

/* Expiry keys are 'e', the big-endian expiration and the raw path; u64 keys tag + be64. */
static void test_other_keys(void **state) {
  (void)state;
  sbuf k = {0};
  codec_expiry_key(&k, 0x0102030405060708LL, S("/a/b"));
  assert_sbuf(&k, S("e\1\2\3\4\5\6\7\x08/a/b"));
  sbuf_reset(&k);
  codec_u64_key(&k, 'h', 1000);
  assert_sbuf(&k, S("h\0\0\0\0\0\0\x03\xe8"));
  assert_true(codec_get_be64(k.p + 1) == 1000);
  sbuf_reset(&k);
  codec_u64_key(&k, 'l', UINT64_MAX);
  assert_sbuf(&k, S("l\xff\xff\xff\xff\xff\xff\xff\xff"));
  sbuf_free(&k);
}

/* Expiry keys sort by expiration time. */
static void test_expiry_keys_sort_by_time(void **state) {
  (void)state;
  sbuf a = {0}, b = {0};
  codec_expiry_key(&a, 255, S("/z"));
  codec_expiry_key(&b, 256, S("/a"));
  assert_true(memcmp(a.p, b.p, a.len) < 0);
  sbuf_free(&a);
  sbuf_free(&b);
}

/* sbuf_put_be64 and codec_get_be64 round-trip and are big-endian. */
static void test_be64(void **state) {
  (void)state;
  uint64_t vals[] = {0, 1, 255, 256, 0x0102030405060708ULL, UINT64_MAX, (uint64_t)INT64_MIN};
  for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
    sbuf b = {0};
    sbuf_put_be64(&b, vals[i]);
    assert_int_equal(b.len, 8);
    assert_true(codec_get_be64(b.p) == vals[i]);
    assert_int_equal((unsigned char)b.p[7], (unsigned)(vals[i] & 0xff));
    assert_int_equal((unsigned char)b.p[0], (unsigned)(vals[i] >> 56));
    sbuf_free(&b);
  }
}

/* A file node encodes as 'f', created, modified, expiration and the raw value. */
static void test_node_encode_file(void **state) {
  (void)state;
  codec_node n = {.dir = 0, .created = 2, .modified = 0x0102, .expiration = -1, .value = "v\0w",
                  .value_len = 3};
  sbuf b = {0};
  codec_node_encode(&b, &n);
  assert_sbuf(&b, S("f\0\0\0\0\0\0\0\2\0\0\0\0\0\0\1\2\xff\xff\xff\xff\xff\xff\xff\xffv\0w"));
  sbuf_free(&b);
}

/* File and directory nodes round-trip; the decoded value points into the input. */
static void test_node_round_trip(void **state) {
  (void)state;
  codec_node f = {.dir = 0, .created = UINT64_MAX, .modified = 7,
                  .expiration = 1767323045123456789LL, .value = "\0bin\1", .value_len = 5};
  codec_node d = {.dir = 1, .created = 3, .modified = 4, .expiration = INT64_MIN,
                  .value = "ignored", .value_len = 7};
  codec_node out;
  sbuf b = {0};

  codec_node_encode(&b, &f);
  assert_int_equal(b.len, CODEC_NODE_HDR + 5);
  assert_int_equal(codec_node_decode(b.p, b.len, &out), 0);
  assert_int_equal(out.dir, 0);
  assert_true(out.created == UINT64_MAX);
  assert_true(out.modified == 7);
  assert_true(out.expiration == f.expiration);
  assert_int_equal(out.value_len, 5);
  assert_memory_equal(out.value, "\0bin\1", 5);
  assert_ptr_equal(out.value, b.p + CODEC_NODE_HDR);

  sbuf_reset(&b);
  codec_node_encode(&b, &d);
  assert_int_equal(b.len, CODEC_NODE_HDR); /* a directory stores no value */
  assert_int_equal(codec_node_decode(b.p, b.len, &out), 0);
  assert_int_equal(out.dir, 1);
  assert_true(out.created == 3);
  assert_true(out.modified == 4);
  assert_true(out.expiration == INT64_MIN);
  assert_int_equal(out.value_len, 0);

  sbuf_reset(&b);
  f.value = NULL;
  f.value_len = 0; /* empty file */
  codec_node_encode(&b, &f);
  assert_int_equal(codec_node_decode(b.p, b.len, &out), 0);
  assert_int_equal(out.dir, 0);
  assert_int_equal(out.value_len, 0);
  sbuf_free(&b);
}

/* Values shorter than the header or with an unknown type byte are rejected. */
static void test_node_decode_rejects(void **state) {
  (void)state;
  codec_node out;
  char buf[CODEC_NODE_HDR + 4];
  memset(buf, 0, sizeof buf);
  buf[0] = CODEC_FILE;
  assert_int_equal(codec_node_decode(buf, 0, &out), -EINVAL);
  assert_int_equal(codec_node_decode(buf, 1, &out), -EINVAL);
  assert_int_equal(codec_node_decode(buf, CODEC_NODE_HDR - 1, &out), -EINVAL);
  assert_int_equal(codec_node_decode(buf, CODEC_NODE_HDR, &out), 0);
  buf[0] = 'x';
  assert_int_equal(codec_node_decode(buf, sizeof buf, &out), -EINVAL);
  buf[0] = 0;
  assert_int_equal(codec_node_decode(buf, sizeof buf, &out), -EINVAL);
  buf[0] = 'F';
  assert_int_equal(codec_node_decode(buf, sizeof buf, &out), -EINVAL);
}

/* sbuf_put appends, sbuf_reset empties and sbuf_free releases (zero-length puts are fine). */
static void test_sbuf(void **state) {
  (void)state;
  sbuf b = {0};
  sbuf_put(&b, NULL, 0);
  assert_int_equal(b.len, 0);
  for (int i = 0; i < 1000; i++) sbuf_putc(&b, (char)('a' + i % 26));
  assert_int_equal(b.len, 1000);
  assert_true(b.cap >= 1000);
  assert_int_equal(b.p[999], 'a' + 999 % 26);
  sbuf_reset(&b);
  assert_int_equal(b.len, 0);
  sbuf_put(&b, "xyz", 3);
  assert_sbuf(&b, S("xyz"));
  sbuf_free(&b);
  assert_null(b.p);
  assert_int_equal(b.len, 0);
  assert_int_equal(b.cap, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_node_key_layout),
      cmocka_unit_test(test_node_key_escaping),
      cmocka_unit_test(test_node_path_round_trip),
      cmocka_unit_test(test_node_path_rejects),
      cmocka_unit_test(test_children_prefix),
      cmocka_unit_test(test_children_prefix_matches_children),
      cmocka_unit_test(test_subtree_prefixes),
      cmocka_unit_test(test_parent_sorts_before_descendants),
      cmocka_unit_test(test_children_order_is_name_order),
      cmocka_unit_test(test_other_keys),
      cmocka_unit_test(test_expiry_keys_sort_by_time),
      cmocka_unit_test(test_be64),
      cmocka_unit_test(test_node_encode_file),
      cmocka_unit_test(test_node_round_trip),
      cmocka_unit_test(test_node_decode_rejects),
      cmocka_unit_test(test_sbuf),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
