/* fuzz_record: the records a member reads back from its raft log or gets from the leader: the
 * request record (proto/record.c), a membership change (raft_conf_change) and a member's
 * published attributes (node_member). Any bytes: no crash, and whatever decodes encodes again
 * to bytes that decode to the same record. */
#include <stdlib.h>
#include <string.h>

#include "daemon/node_i.h"
#include "proto/record.h"
#include "raft/core/raft.h"
#include "tests/fuzz/fuzz.h"

static int str_eq(const char *a, size_t al, const char *b, size_t bl) {
  return al == bl && (al == 0 || memcmp(a, b, al) == 0);
}

static int record_eq(const proto_record *a, const proto_record *b) {
  return a->op == b->op && a->flags == b->flags && a->id == b->id && a->member == b->member &&
         a->expiration == b->expiration && a->time == b->time && a->prev_index == b->prev_index &&
         str_eq(a->path, a->path_len, b->path, b->path_len) &&
         str_eq(a->value, a->value_len, b->value, b->value_len) &&
         str_eq(a->prev_value, a->prev_value_len, b->prev_value, b->prev_value_len);
}

static void record_round_trip(const uint8_t *data, size_t size) {
  proto_record r;
  if (proto_record_decode((const char *)data, size, &r) != 0) return;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  FUZZ_CHECK(proto_record_encode(&r, &buf, &len, &cap) == 0);
  proto_record again;
  FUZZ_CHECK(proto_record_decode(buf, len, &again) == 0);
  FUZZ_CHECK(record_eq(&r, &again));
  free(buf);
}

static void conf_change_round_trip(const uint8_t *data, size_t size) {
  raft_conf_change cc;
  if (raft_conf_change_decode(data, size, &cc) != 0) return;
  raft_buf out = {0};
  FUZZ_CHECK(raft_conf_change_encode(&cc, &out) == 0);
  raft_conf_change again;
  FUZZ_CHECK(raft_conf_change_decode(out.base, out.len, &again) == 0);
  FUZZ_CHECK(again.type == cc.type && again.node_id == cc.node_id && again.id == cc.id &&
             again.context.len == cc.context.len &&
             (cc.context.len == 0 || memcmp(again.context.base, cc.context.base, cc.context.len) == 0));
  free(out.base);
}

static void member_round_trip(const uint8_t *data, size_t size) {
  node_member_ctx mc;
  memset(&mc, 0, sizeof mc);
  if (node_member_decode(data, size, &mc) != 0) return;
  FUZZ_CHECK(memchr(mc.m.name, 0, sizeof mc.m.name) && memchr(mc.m.peer_urls, 0, sizeof mc.m.peer_urls) &&
             memchr(mc.m.client_urls, 0, sizeof mc.m.client_urls));
  char *out = NULL;
  size_t len = 0;
  FUZZ_CHECK(node_member_encode(&mc, &out, &len) == 0);
  node_member_ctx again;
  memset(&again, 0, sizeof again);
  FUZZ_CHECK(node_member_decode((const uint8_t *)out, len, &again) == 0);
  FUZZ_CHECK(again.origin == mc.origin && again.m.id == mc.m.id && strcmp(again.m.name, mc.m.name) == 0 &&
             strcmp(again.m.peer_urls, mc.m.peer_urls) == 0 &&
             strcmp(again.m.client_urls, mc.m.client_urls) == 0);
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  record_round_trip(data, size);
  conf_change_round_trip(data, size);
  member_round_trip(data, size);
  return 0;
}

void fuzz_seeds(fuzz_emit emit, void *ctx) {
  static const char path[] = "/dir/key", value[] = "hello\0world", prev[] = "old";
  proto_record recs[] = {
      {.op = PROTO_OP_SET, .id = 1, .member = 0x1234, .time = 1700000000000000000, .path = path,
       .path_len = sizeof path - 1, .value = value, .value_len = sizeof value - 1},
      {.op = PROTO_OP_CAS, .flags = PROTO_REC_PREV_VALUE | PROTO_REC_TTL, .id = 2, .member = 9,
       .expiration = 1700000005000000000, .time = 1700000000000000000, .prev_index = 77, .path = path,
       .path_len = sizeof path - 1, .value = value, .value_len = 5, .prev_value = prev,
       .prev_value_len = sizeof prev - 1},
      {.op = PROTO_OP_DELETE, .flags = PROTO_REC_DIR | PROTO_REC_RECURSIVE, .id = 3, .path = "/dir",
       .path_len = 4},
      {.op = PROTO_OP_SYNC, .time = 1700000009000000000},
  };
  for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) {
    char *buf = NULL;
    size_t len = 0, cap = 0;
    if (proto_record_encode(&recs[i], &buf, &len, &cap) == 0) emit(ctx, (const uint8_t *)buf, len);
    free(buf);
  }
  uint8_t urls[] = "http://10.0.0.2:2380";
  raft_conf_change cc = {.type = 0, .node_id = 0xfeed, .id = 5, .context = {urls, sizeof urls - 1}};
  raft_buf out = {0};
  if (raft_conf_change_encode(&cc, &out) == 0) emit(ctx, out.base, out.len);
  free(out.base);
  node_member_ctx mc;
  memset(&mc, 0, sizeof mc);
  mc.origin = 7;
  mc.m.id = 0xabc;
  strcpy(mc.m.name, "infra1");
  strcpy(mc.m.peer_urls, "http://127.0.0.1:2380");
  strcpy(mc.m.client_urls, "http://127.0.0.1:2379,http://10.0.0.1:2379");
  char *mb = NULL;
  size_t mlen = 0;
  if (node_member_encode(&mc, &mb, &mlen) == 0) emit(ctx, (const uint8_t *)mb, mlen);
  free(mb);
  /* found by scripts/fuzz: a member with an empty name (msgpack-c gives "" no pointer) */
  static const uint8_t empty_name[] = {0x95, 0x07, 0x4e, 0xa0, 0x00, 0x35};
  emit(ctx, empty_name, sizeof empty_name);
}
