/* lin_model: the versioned register of one etcd v2 key as the checker's sequential model. The
 * search in lin.c asks it whether an op may take effect in a state and what state follows;
 * values are interned to small integers per key so a state is a few fixed-size fields. */
#ifndef QUORUM_TESTS_LIN_LIN_MODEL_H
#define QUORUM_TESTS_LIN_LIN_MODEL_H

#include <stdbool.h>
#include <stdint.h>

/* The register. When known, index is the exact modifiedIndex of the last write (put, cas,
 * delete); otherwise a write of unknown outcome or without a reported index left it, and index
 * is the least value it can have. Every key starts as {exists 0, known 1, index 0}. */
typedef struct lin_state {
  uint64_t index;
  uint32_t value; /* interned value id; 0 when !exists */
  uint8_t exists;
  uint8_t known;
  uint8_t pad[2];
} lin_state;

/* An op as the model sees it (lin_op with interned values). */
typedef struct lin_mop {
  uint64_t prev_index;
  uint64_t index;
  uint32_t value;      /* interned, for put/cas and an ok get */
  uint32_t prev_value; /* interned, when has_prev_value */
  uint8_t kind;        /* lin_kind */
  uint8_t result;      /* lin_result */
  int8_t prev_exist;
  bool has_prev_value;
  bool has_prev_index;
  bool has_index;
} lin_mop;

/* Whether op may take effect in state s with the result it reports; if so, *out is the state
 * after it. An op of unknown outcome always may: it takes effect when its condition can hold
 * (never taking effect is the same as taking effect after every other op, which the search
 * always tries). */
bool lin_model_step(const lin_state *s, const lin_mop *op, lin_state *out);

/* Whether two states are the same. */
bool lin_state_equal(const lin_state *a, const lin_state *b);

#endif
