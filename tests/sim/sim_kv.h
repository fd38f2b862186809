/* sim_kv: the simulator's state machine, a tiny etcd v2 key space (a few keys, short values,
 * a store index that every successful write bumps, as etcd's modifiedIndex), the binary command
 * format the clients propose, and the state's hash and snapshot encoding. */
#ifndef QUORUM_TESTS_SIM_SIM_KV_H
#define QUORUM_TESTS_SIM_SIM_KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_KV_KEYS 8
#define SIM_KV_VAL 16
#define SIM_KV_SNAP_LEN (8 + SIM_KV_KEYS * (1 + SIM_KV_VAL + 8))
#define SIM_CMD_LEN (8 + 4 + 8 + 2 * SIM_KV_VAL)

typedef struct sim_kv_slot {
  bool exists;
  char value[SIM_KV_VAL]; /* NUL-terminated */
  uint64_t modified;
} sim_kv_slot;

typedef struct sim_kv {
  sim_kv_slot slots[SIM_KV_KEYS];
  uint64_t index; /* the store index: the modifiedIndex of the last write */
} sim_kv;

/* A client's write (kind is a lin_kind: put, cas, delete, cad). */
typedef struct sim_cmd {
  uint64_t req;           /* the client op's id; answers are matched by it */
  uint8_t kind;
  uint8_t key;
  int8_t prev_exist;      /* -1 unset, 0 create */
  bool has_prev_index;
  uint64_t prev_index;
  char value[SIM_KV_VAL];
  char prev_value[SIM_KV_VAL]; /* "" = no prevValue condition */
} sim_cmd;

void sim_cmd_encode(const sim_cmd *c, uint8_t out[SIM_CMD_LEN]);
bool sim_cmd_decode(const uint8_t *data, size_t len, sim_cmd *c);

/* Applies c; *result is a lin_result (ok, failed, not-found), *index the new modifiedIndex. */
void sim_kv_apply(sim_kv *kv, const sim_cmd *c, uint8_t *result, uint64_t *index);
uint64_t sim_kv_hash(const sim_kv *kv);
void sim_kv_encode(const sim_kv *kv, uint8_t out[SIM_KV_SNAP_LEN]);
bool sim_kv_decode(sim_kv *kv, const uint8_t *data, size_t len);

#endif
