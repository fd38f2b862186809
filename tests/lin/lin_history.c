/* lin_history: the list of operations a checker reads, with owned copies of their strings, the
 * validation of each op against the v2 key model's rules, and the one-line text form of an op. */
#include "tests/lin/lin.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

typedef struct lin_slot {
  lin_op op;
  char *key, *value, *prev_value; /* owned; op's pointers point here */
} lin_slot;

struct lin_history {
  lin_slot *slots;
  size_t n, cap;
};

lin_history *lin_history_new(void) { return calloc(1, sizeof(lin_history)); }

void lin_history_free(lin_history *h) {
  if (!h) return;
  for (size_t i = 0; i < h->n; i++) {
    free(h->slots[i].key);
    free(h->slots[i].value);
    free(h->slots[i].prev_value);
  }
  free(h->slots);
  free(h);
}

size_t lin_history_len(const lin_history *h) { return h->n; }
const lin_op *lin_history_op(const lin_history *h, size_t i) { return &h->slots[i].op; }

const char *lin_kind_name(uint8_t kind) {
  static const char *const names[] = {"put", "get", "cas", "delete", "cad"};
  return kind < sizeof names / sizeof names[0] ? names[kind] : "?";
}

const char *lin_result_name(uint8_t result) {
  static const char *const names[] = {"ok", "failed", "not-found", "unknown"};
  return result < sizeof names / sizeof names[0] ? names[result] : "?";
}

/* Checks op against the rules in lin.h; returns NULL or the reason it is malformed. */
static const char *lin_op_invalid(const lin_op *op) {
  if (!op->key) return "no key";
  if (op->kind > LIN_CAD) return "unknown op";
  if (op->result > LIN_UNKNOWN) return "unknown result";
  if (op->prev_exist < -1 || op->prev_exist > 1) return "prevExist must be -1, 0 or 1";
  bool cond = op->prev_value || op->has_prev_index || op->prev_exist != -1;
  bool writes_value = op->kind == LIN_PUT || op->kind == LIN_CAS;
  if (writes_value && !op->value) return "put and cas need a value";
  if (op->kind == LIN_GET && op->result == LIN_OK && !op->value) return "an ok get needs a value";
  if ((op->kind == LIN_DELETE || op->kind == LIN_CAD) && op->value) return "a delete has no value";
  if (op->kind == LIN_GET && op->result != LIN_OK && op->value) return "only an ok get has a value";
  if ((op->kind == LIN_PUT || op->kind == LIN_GET || op->kind == LIN_DELETE) && cond)
    return "only cas and cad take prevValue/prevIndex/prevExist";
  if (op->kind == LIN_CAS && !cond) return "cas needs prevValue, prevIndex or prevExist";
  if (op->kind == LIN_CAD && !op->prev_value && !op->has_prev_index)
    return "cad needs prevValue or prevIndex";
  if (op->kind == LIN_CAD && op->prev_exist == 0) return "cad cannot take prevExist false";
  if (op->prev_exist == 0 && (op->prev_value || op->has_prev_index))
    return "prevExist false (create) takes no other condition";
  if (op->kind == LIN_PUT && (op->result == LIN_FAILED || op->result == LIN_NOT_FOUND))
    return "a put cannot fail or miss";
  if (op->kind == LIN_DELETE && op->result == LIN_FAILED) return "a delete cannot fail";
  if (op->kind == LIN_CAS && op->prev_exist == 0 && op->result == LIN_NOT_FOUND)
    return "a create cannot miss";
  if (op->has_index && op->result != LIN_OK) return "only an ok result has an index";
  if (op->result != LIN_UNKNOWN && !(op->complete >= op->invoke))
    return "complete is before invoke";
  return NULL;
}

static char *lin_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

int lin_history_add(lin_history *h, const lin_op *op, char *err, size_t errlen) {
  const char *why = lin_op_invalid(op);
  if (why) {
    snprintf(err, errlen, "%s", why);
    return -1;
  }
  if (h->n == h->cap) {
    size_t cap = h->cap ? h->cap * 2 : 64;
    lin_slot *s = realloc(h->slots, cap * sizeof *s);
    if (!s) goto nomem;
    h->slots = s;
    h->cap = cap;
  }
  lin_slot *s = &h->slots[h->n];
  memset(s, 0, sizeof *s);
  s->key = lin_strdup(op->key);
  s->value = lin_strdup(op->value);
  s->prev_value = lin_strdup(op->prev_value);
  if (!s->key || (op->value && !s->value) || (op->prev_value && !s->prev_value)) {
    free(s->key);
    free(s->value);
    free(s->prev_value);
    goto nomem;
  }
  s->op = *op;
  s->op.key = s->key;
  s->op.value = s->value;
  s->op.prev_value = s->prev_value;
  if (s->op.id == 0) s->op.id = h->n + 1;
  h->n++;
  return 0;
nomem:
  snprintf(err, errlen, "out of memory");
  return -1;
}

const char *lin_describe_op(const lin_op *op, char *buf, size_t len) {
  char cond[160] = "", res[160] = "", idx[32] = "";
  size_t c = 0;
  if (op->prev_value)
    c += (size_t)snprintf(cond + c, sizeof cond - c, " if=\"%.40s\"", op->prev_value);
  if (op->has_prev_index && c < sizeof cond)
    c += (size_t)snprintf(cond + c, sizeof cond - c, " if@%" PRIu64, op->prev_index);
  if (op->prev_exist != -1 && c < sizeof cond)
    snprintf(cond + c, sizeof cond - c, " prevExist=%s", op->prev_exist ? "true" : "false");
  if (op->has_index) snprintf(idx, sizeof idx, "@%" PRIu64, op->index);
  if (op->kind == LIN_GET && op->result == LIN_OK)
    snprintf(res, sizeof res, "ok \"%.40s\"%s", op->value, idx);
  else
    snprintf(res, sizeof res, "%s%s", lin_result_name(op->result), idx);
  char when[64];
  if (op->result == LIN_UNKNOWN)
    snprintf(when, sizeof when, "[%.17g, inf)", op->invoke);
  else
    snprintf(when, sizeof when, "[%.17g, %.17g]", op->invoke, op->complete);
  if (op->kind == LIN_PUT || op->kind == LIN_CAS)
    snprintf(buf, len, "#%" PRIu64 " client %" PRIu64 " %s \"%.40s\"%s -> %s %s", op->id,
             op->client, lin_kind_name(op->kind), op->value, cond, res, when);
  else
    snprintf(buf, len, "#%" PRIu64 " client %" PRIu64 " %s%s -> %s %s", op->id, op->client,
             lin_kind_name(op->kind), cond, res, when);
  return buf;
}
