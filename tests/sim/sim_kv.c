/* sim_kv: the v2 key model the simulated nodes apply, with etcd's results for each write. */
#include "tests/sim/sim_kv.h"

#include <string.h>

#include "tests/lin/lin.h"

static void sim_put64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t sim_get64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

void sim_cmd_encode(const sim_cmd *c, uint8_t out[SIM_CMD_LEN]) {
  memset(out, 0, SIM_CMD_LEN);
  sim_put64(out, c->req);
  out[8] = c->kind;
  out[9] = c->key;
  out[10] = (uint8_t)c->prev_exist;
  out[11] = c->has_prev_index;
  sim_put64(out + 12, c->prev_index);
  memcpy(out + 20, c->value, strnlen(c->value, SIM_KV_VAL - 1));
  memcpy(out + 20 + SIM_KV_VAL, c->prev_value, strnlen(c->prev_value, SIM_KV_VAL - 1));
}

bool sim_cmd_decode(const uint8_t *data, size_t len, sim_cmd *c) {
  if (len != SIM_CMD_LEN) return false;
  memset(c, 0, sizeof *c);
  c->req = sim_get64(data);
  c->kind = data[8];
  c->key = data[9];
  c->prev_exist = (int8_t)data[10];
  c->has_prev_index = data[11] != 0;
  c->prev_index = sim_get64(data + 12);
  memcpy(c->value, data + 20, SIM_KV_VAL - 1);
  memcpy(c->prev_value, data + 20 + SIM_KV_VAL, SIM_KV_VAL - 1);
  return c->key < SIM_KV_KEYS && c->kind <= LIN_CAD && c->kind != LIN_GET;
}

void sim_kv_apply(sim_kv *kv, const sim_cmd *c, uint8_t *result, uint64_t *index) {
  sim_kv_slot *s = &kv->slots[c->key];
  *index = 0;
  bool conditional = c->kind == LIN_CAS || c->kind == LIN_CAD;
  if (c->kind == LIN_CAS && c->prev_exist == 0) {
    if (s->exists) {
      *result = LIN_FAILED; /* etcd 105: key already exists */
      return;
    }
  } else if (c->kind != LIN_PUT && !s->exists) {
    *result = LIN_NOT_FOUND; /* etcd 100 */
    return;
  } else if (conditional) {
    bool ok = (c->prev_value[0] == '\0' || strcmp(c->prev_value, s->value) == 0) &&
              (!c->has_prev_index || c->prev_index == s->modified);
    if (!ok) {
      *result = LIN_FAILED; /* etcd 101: compare failed */
      return;
    }
  }
  kv->index++;
  bool present = c->kind == LIN_PUT || c->kind == LIN_CAS;
  s->exists = present;
  memset(s->value, 0, sizeof s->value);
  if (present) memcpy(s->value, c->value, strnlen(c->value, SIM_KV_VAL - 1));
  s->modified = kv->index;
  *result = LIN_OK;
  *index = kv->index;
}

void sim_kv_encode(const sim_kv *kv, uint8_t out[SIM_KV_SNAP_LEN]) {
  memset(out, 0, SIM_KV_SNAP_LEN);
  sim_put64(out, kv->index);
  uint8_t *p = out + 8;
  for (int i = 0; i < SIM_KV_KEYS; i++, p += 1 + SIM_KV_VAL + 8) {
    const sim_kv_slot *s = &kv->slots[i];
    p[0] = s->exists;
    if (s->exists) memcpy(p + 1, s->value, strnlen(s->value, SIM_KV_VAL - 1));
    sim_put64(p + 1 + SIM_KV_VAL, s->exists ? s->modified : 0);
  }
}

bool sim_kv_decode(sim_kv *kv, const uint8_t *data, size_t len) {
  memset(kv, 0, sizeof *kv);
  if (len == 0) return true; /* no snapshot: the empty store */
  if (len != SIM_KV_SNAP_LEN) return false;
  kv->index = sim_get64(data);
  const uint8_t *p = data + 8;
  for (int i = 0; i < SIM_KV_KEYS; i++, p += 1 + SIM_KV_VAL + 8) {
    sim_kv_slot *s = &kv->slots[i];
    s->exists = p[0] != 0;
    memcpy(s->value, p + 1, SIM_KV_VAL - 1);
    s->modified = sim_get64(p + 1 + SIM_KV_VAL);
  }
  return true;
}

uint64_t sim_kv_hash(const sim_kv *kv) {
  uint8_t buf[SIM_KV_SNAP_LEN];
  sim_kv_encode(kv, buf);
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < sizeof buf; i++) h = (h ^ buf[i]) * 0x100000001b3ULL;
  return h;
}
