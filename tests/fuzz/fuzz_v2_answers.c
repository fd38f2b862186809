/* fuzz_v2_answers: the answers quorumfs and quorumctl parse from any server they are pointed
 * at (proto/v2_event.c, proto/v2_client.c): an event or node listing, a member list, an error.
 * Any body: no crash, no leak, and what parses is complete (every node of a listing has a key,
 * a value's length is within its buffer). */
#include <stdlib.h>
#include <string.h>

#include "proto/v2_client.h"
#include "tests/fuzz/fuzz.h"

static void check_node(const proto_v2_knode *n, int depth) {
  FUZZ_CHECK(n->key != NULL);
  FUZZ_CHECK(n->value_len == 0 || n->value != NULL);
  FUZZ_CHECK(n->n_nodes == 0 || n->nodes != NULL);
  FUZZ_CHECK(depth < 10000);
  for (size_t i = 0; i < n->n_nodes; i++) check_node(&n->nodes[i], depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *body = malloc(size + 1);
  if (!body) return 0;
  memcpy(body, data, size);
  body[size] = 0;
  proto_v2_event ev;
  if (proto_v2_parse_event(body, &ev) == 0) {
    FUZZ_CHECK(ev.action != NULL);
    if (ev.node) check_node(ev.node, 0);
    if (ev.prev_node) check_node(ev.prev_node, 0);
    proto_v2_event_free(&ev);
  }
  proto_v2_members ms;
  if (proto_v2_parse_members(body, &ms) == 0) {
    for (size_t i = 0; i < ms.n; i++) {
      FUZZ_CHECK(ms.m[i].n_peer == 0 || ms.m[i].peer_urls != NULL);
      for (size_t j = 0; j < ms.m[i].n_peer; j++) FUZZ_CHECK(ms.m[i].peer_urls[j] != NULL);
      for (size_t j = 0; j < ms.m[i].n_client; j++) FUZZ_CHECK(ms.m[i].client_urls[j] != NULL);
    }
    proto_v2_members_free(&ms);
  }
  proto_v2_error e;
  if (proto_v2_parse_error(body, &e) == 0) proto_v2_error_free(&e);
  free(body);
  return 0;
}

void fuzz_seeds(fuzz_emit emit, void *ctx) {
  static const char *bodies[] = {
      "{\"action\":\"set\",\"node\":{\"key\":\"/a\",\"value\":\"1\",\"modifiedIndex\":5,\"createdIndex\":5},"
      "\"prevNode\":{\"key\":\"/a\",\"value\":\"0\",\"modifiedIndex\":4,\"createdIndex\":4}}",
      "{\"action\":\"get\",\"node\":{\"key\":\"/d\",\"dir\":true,\"nodes\":[{\"key\":\"/d/x\",\"value\":\"a\\u0000b\","
      "\"expiration\":\"2026-11-26T18:00:00.5Z\",\"ttl\":30,\"modifiedIndex\":7,\"createdIndex\":6},"
      "{\"key\":\"/d/e\",\"dir\":true,\"nodes\":[],\"modifiedIndex\":8,\"createdIndex\":8}],"
      "\"modifiedIndex\":3,\"createdIndex\":3}}",
      "{\"action\":\"expire\",\"node\":{\"key\":\"/t\",\"modifiedIndex\":9,\"createdIndex\":2},"
      "\"prevNode\":{\"key\":\"/t\",\"value\":\"\\ud83d\\ude00 \\\"q\\\"\",\"expiration\":\"x\",\"ttl\":-1}}",
      "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/nope\",\"index\":12}",
      "{\"members\":[{\"id\":\"8e9e05c52164694d\",\"name\":\"default\",\"peerURLs\":[\"http://localhost:2380\"],"
      "\"clientURLs\":[\"http://localhost:2379\",\"http://10.0.0.1:2379\"]},{\"id\":\"1\",\"peerURLs\":[]}]}",
  };
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
    emit(ctx, (const uint8_t *)bodies[i], strlen(bodies[i]));
}
