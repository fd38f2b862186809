/* lin_model: the sequential specification of one v2 key (put, get, cas, delete, cad) over a
 * versioned register; see lin_model.h and lin.h for the rules about indexes and unknowns. */
#include "tests/lin/lin_model.h"

#include "tests/lin/lin.h"

bool lin_state_equal(const lin_state *a, const lin_state *b) {
  return a->index == b->index && a->value == b->value && a->exists == b->exists &&
         a->known == b->known;
}

/* The state after a write in s that leaves the key present with value (or absent), at the
 * reported index if the op has one. Successive writes carry strictly increasing indexes; when s
 * is not known, s->index is the least the last write's index can be, so the same bound holds. */
static bool lin_model_write(const lin_state *s, const lin_mop *op, bool present, lin_state *out) {
  lin_state n = {0};
  n.exists = present;
  n.value = present ? op->value : 0;
  if (op->result == LIN_OK && op->has_index) {
    if (op->index <= s->index) return false;
    n.index = op->index;
    n.known = 1;
  } else {
    n.index = s->index + 1;
    n.known = 0;
  }
  *out = n;
  return true;
}

/* Whether the prev_value/prev_index condition of a cas or cad can hold and can fail in s (a
 * present key). When it holds against an unknown index, *pinned is s with that index made
 * exact. */
static void lin_model_cond(const lin_state *s, const lin_mop *op, bool *can_hold, bool *can_fail,
                           lin_state *pinned) {
  bool value_ok = !op->has_prev_value || s->value == op->prev_value;
  bool idx_hold = true, idx_fail = false;
  *pinned = *s;
  if (op->has_prev_index) {
    if (s->known) {
      idx_hold = op->prev_index == s->index;
      idx_fail = !idx_hold;
    } else {
      idx_hold = op->prev_index >= s->index;
      idx_fail = true;
      if (idx_hold) {
        pinned->index = op->prev_index;
        pinned->known = 1;
      }
    }
  }
  *can_hold = value_ok && idx_hold;
  *can_fail = !value_ok || idx_fail;
}

static bool lin_model_get(const lin_state *s, const lin_mop *op, lin_state *out) {
  *out = *s;
  if (op->result == LIN_NOT_FOUND) return !s->exists;
  if (op->result != LIN_OK || !s->exists || s->value != op->value) return false;
  if (!op->has_index) return true;
  if (s->known) return op->index == s->index;
  if (op->index < s->index) return false;
  out->index = op->index; /* the read pins the index the unknown write got */
  out->known = 1;
  return true;
}

/* cas and cad: conditional writes; cad deletes. */
static bool lin_model_cond_write(const lin_state *s, const lin_mop *op, lin_state *out) {
  bool present = op->kind == LIN_CAS;
  *out = *s;
  if (op->kind == LIN_CAS && op->prev_exist == 0) { /* create */
    if (op->result == LIN_UNKNOWN) return s->exists ? true : lin_model_write(s, op, true, out);
    if (op->result == LIN_OK) return !s->exists && lin_model_write(s, op, true, out);
    return op->result == LIN_FAILED && s->exists;
  }
  if (!s->exists) return op->result == LIN_NOT_FOUND || op->result == LIN_UNKNOWN;
  bool can_hold, can_fail;
  lin_state pinned;
  lin_model_cond(s, op, &can_hold, &can_fail, &pinned);
  switch (op->result) {
  case LIN_OK:
    return can_hold && lin_model_write(&pinned, op, present, out);
  case LIN_FAILED:
    return can_fail;
  case LIN_UNKNOWN:
    return can_hold ? lin_model_write(&pinned, op, present, out) : true;
  default:
    return false;
  }
}

bool lin_model_step(const lin_state *s, const lin_mop *op, lin_state *out) {
  switch (op->kind) {
  case LIN_GET:
    if (op->result == LIN_UNKNOWN) {
      *out = *s;
      return true;
    }
    return lin_model_get(s, op, out);
  case LIN_PUT:
    return (op->result == LIN_OK || op->result == LIN_UNKNOWN) &&
           lin_model_write(s, op, true, out);
  case LIN_DELETE:
    *out = *s;
    if (op->result == LIN_NOT_FOUND) return !s->exists;
    if (op->result == LIN_UNKNOWN) return s->exists ? lin_model_write(s, op, false, out) : true;
    return op->result == LIN_OK && s->exists && lin_model_write(s, op, false, out);
  case LIN_CAS:
  case LIN_CAD:
    return lin_model_cond_write(s, op, out);
  default:
    return false;
  }
}
