/* fuzz_store_codec: what the tree store reads back from LevelDB (daemon/store_codec.c): a node
 * value and a node key. Any bytes: no crash; a node value that decodes encodes to a value
 * that decodes the same, and the path a node key decodes to (when it is one: keys are the
 * store's own, and the decoder does not insist on their canonical form) has a key that decodes
 * to that path again. */
#include <stdlib.h>
#include <string.h>

#include "daemon/store_codec.h"
#include "tests/fuzz/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  codec_node n;
  if (codec_node_decode((const char *)data, size, &n) == 0) {
    sbuf b = {0};
    codec_node_encode(&b, &n);
    codec_node again;
    FUZZ_CHECK(codec_node_decode(b.p, b.len, &again) == 0);
    FUZZ_CHECK(again.dir == n.dir && again.created == n.created && again.modified == n.modified &&
               again.expiration == n.expiration);
    /* a file keeps its value; a directory has none (bytes after a directory's header are not
     * written back) */
    FUZZ_CHECK(n.dir ? again.value_len == 0
                     : again.value_len == n.value_len &&
                           (n.value_len == 0 || memcmp(again.value, n.value, n.value_len) == 0));
    sbuf_free(&b);
  }
  sbuf path = {0};
  if (codec_node_path(&path, (const char *)data, size) == 0 && path.len > 1 && path.p[0] == '/' &&
      path.p[path.len - 1] != '/') {
    sbuf key = {0}, back = {0};
    codec_node_key(&key, path.p, path.len);
    FUZZ_CHECK(codec_node_path(&back, key.p, key.len) == 0);
    FUZZ_CHECK(back.len == path.len && memcmp(back.p, path.p, path.len) == 0);
    sbuf_free(&key);
    sbuf_free(&back);
  }
  sbuf_free(&path);
  return 0;
}

void fuzz_seeds(fuzz_emit emit, void *ctx) {
  codec_node nodes[] = {
      {.dir = 0, .created = 5, .modified = 9, .expiration = 0, .value = "v1", .value_len = 2},
      {.dir = 1, .created = 3, .modified = 3, .expiration = 1700000000000000000},
      {.dir = 0, .created = 1, .modified = 1, .value = "a\0b", .value_len = 3},
  };
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    sbuf b = {0};
    codec_node_encode(&b, &nodes[i]);
    emit(ctx, (const uint8_t *)b.p, b.len);
    sbuf_free(&b);
  }
  static const char *paths[] = {"/a", "/dir/key", "/x y/\xc3\xa9/_h", "/a/b/c/d/e"};
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    sbuf k = {0};
    codec_node_key(&k, paths[i], strlen(paths[i]));
    emit(ctx, (const uint8_t *)k.p, k.len);
    sbuf_free(&k);
  }
}
