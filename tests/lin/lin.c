/* lin: the linearizability search. The history is split per key; for each key, calls and returns
 * form one time-ordered doubly linked list, and the search (Wing & Gong with Lowe's just-in-time
 * linearization, as in Porcupine) walks it: at a call it tries to linearize that op now (lifting
 * its call and return out of the list), at a return it must backtrack, because that op
 * completed without having taken effect. A memo of (linearized set, state) pairs prunes every
 * configuration already explored. A key fails when backtracking empties the stack; the report
 * then shows the deepest configuration the search reached and the op that could not follow. */
#include "tests/lin/lin.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lin/lin_model.h"

/* One call or return in the per-key list. */
typedef struct lin_entry {
  struct lin_entry *prev, *next, *match; /* match: call <-> return */
  double time;
  uint32_t op;  /* index into the key's op arrays */
  bool is_call;
} lin_entry;

/* A memo of visited (bitset, state) configurations: open addressing over a bitset arena. */
typedef struct lin_memo {
  uint64_t *bits;   /* n_slots * words */
  lin_state *states;
  uint8_t *used;
  size_t n_slots, n_used, words;
} lin_memo;

typedef struct lin_frame {
  lin_entry *entry;
  lin_state state; /* the state before this op */
} lin_frame;

/* Everything about one key's check. */
typedef struct lin_key {
  const lin_op **ops; /* the key's ops, in history order */
  lin_mop *mops;
  size_t n;
  const char **values; /* interned values, sorted; id = position + 1 */
  size_t n_values;
  /* the deepest configuration, for the report */
  size_t best_depth;
  uint32_t *best_stack;
  lin_state best_state;
  uint32_t best_blocked;
  bool have_best;
} lin_key;

static int lin_cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static uint32_t lin_intern(const lin_key *k, const char *v) {
  const char **p = bsearch(&v, k->values, k->n_values, sizeof *k->values, lin_cmp_str);
  return p ? (uint32_t)(p - k->values) + 1 : 0;
}

/* Interns values and builds the model ops. */
static int lin_key_prepare(lin_key *k) {
  k->values = malloc((2 * k->n + 1) * sizeof *k->values);
  k->mops = calloc(k->n + 1, sizeof *k->mops);
  if (!k->values || !k->mops) return -1;
  size_t nv = 0;
  for (size_t i = 0; i < k->n; i++) {
    if (k->ops[i]->value) k->values[nv++] = k->ops[i]->value;
    if (k->ops[i]->prev_value) k->values[nv++] = k->ops[i]->prev_value;
  }
  qsort(k->values, nv, sizeof *k->values, lin_cmp_str);
  size_t u = 0;
  for (size_t i = 0; i < nv; i++)
    if (u == 0 || strcmp(k->values[u - 1], k->values[i]) != 0) k->values[u++] = k->values[i];
  k->n_values = u;
  for (size_t i = 0; i < k->n; i++) {
    const lin_op *o = k->ops[i];
    lin_mop *m = &k->mops[i];
    m->kind = o->kind;
    m->result = o->result;
    m->value = o->value ? lin_intern(k, o->value) : 0;
    m->has_prev_value = o->prev_value != NULL;
    m->prev_value = o->prev_value ? lin_intern(k, o->prev_value) : 0;
    m->has_prev_index = o->has_prev_index;
    m->prev_index = o->prev_index;
    m->prev_exist = (int8_t)o->prev_exist;
    m->has_index = o->has_index;
    m->index = o->index;
  }
  return 0;
}

static int lin_memo_init(lin_memo *m, size_t n_ops) {
  m->words = (n_ops + 63) / 64;
  if (m->words == 0) m->words = 1;
  m->n_slots = 1024;
  m->n_used = 0;
  m->bits = calloc(m->n_slots * m->words, sizeof *m->bits);
  m->states = calloc(m->n_slots, sizeof *m->states);
  m->used = calloc(m->n_slots, 1);
  return m->bits && m->states && m->used ? 0 : -1;
}

static void lin_memo_free(lin_memo *m) {
  free(m->bits);
  free(m->states);
  free(m->used);
}

static uint64_t lin_memo_hash(const uint64_t *bits, size_t words, const lin_state *s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < words; i++) h = (h ^ bits[i]) * 0x100000001b3ULL + (h >> 29);
  h = (h ^ s->index) * 0x100000001b3ULL;
  h = (h ^ ((uint64_t)s->value << 16 | (uint64_t)s->exists << 8 | s->known)) * 0x100000001b3ULL;
  return h ^ (h >> 31);
}

/* Finds the slot of (bits, s), or the empty slot where it belongs. */
static size_t lin_memo_slot(const lin_memo *m, const uint64_t *bits, const lin_state *s) {
  size_t i = (size_t)lin_memo_hash(bits, m->words, s) & (m->n_slots - 1);
  while (m->used[i] && !(lin_state_equal(&m->states[i], s) &&
                         memcmp(&m->bits[i * m->words], bits, m->words * 8) == 0))
    i = (i + 1) & (m->n_slots - 1);
  return i;
}

static int lin_memo_grow(lin_memo *m) {
  lin_memo n = *m;
  n.n_slots = m->n_slots * 2;
  n.n_used = 0;
  n.bits = calloc(n.n_slots * n.words, sizeof *n.bits);
  n.states = calloc(n.n_slots, sizeof *n.states);
  n.used = calloc(n.n_slots, 1);
  if (!n.bits || !n.states || !n.used) {
    lin_memo_free(&n);
    return -1;
  }
  for (size_t i = 0; i < m->n_slots; i++) {
    if (!m->used[i]) continue;
    size_t j = lin_memo_slot(&n, &m->bits[i * m->words], &m->states[i]);
    n.used[j] = 1;
    n.states[j] = m->states[i];
    memcpy(&n.bits[j * n.words], &m->bits[i * m->words], n.words * 8);
    n.n_used++;
  }
  lin_memo_free(m);
  *m = n;
  return 0;
}

/* Adds (bits, s) unless present. Returns 1 if added, 0 if it was there, -1 on no memory. */
static int lin_memo_add(lin_memo *m, const uint64_t *bits, const lin_state *s) {
  size_t i = lin_memo_slot(m, bits, s);
  if (m->used[i]) return 0;
  if (2 * (m->n_used + 1) > m->n_slots) {
    if (lin_memo_grow(m) != 0) return -1;
    i = lin_memo_slot(m, bits, s);
  }
  m->used[i] = 1;
  m->states[i] = *s;
  memcpy(&m->bits[i * m->words], bits, m->words * 8);
  m->n_used++;
  return 1;
}

static int lin_entry_cmp(const void *a, const void *b) {
  const lin_entry *x = a, *y = b;
  if (x->time < y->time) return -1;
  if (x->time > y->time) return 1;
  if (x->is_call != y->is_call) return x->is_call ? -1 : 1; /* equal times overlap */
  return x->op < y->op ? -1 : x->op > y->op;
}

static void lin_lift(lin_entry *e) {
  e->prev->next = e->next;
  if (e->next) e->next->prev = e->prev;
  lin_entry *r = e->match;
  r->prev->next = r->next;
  if (r->next) r->next->prev = r->prev;
}

static void lin_unlift(lin_entry *e) {
  lin_entry *r = e->match;
  r->prev->next = r;
  if (r->next) r->next->prev = r;
  e->prev->next = e;
  if (e->next) e->next->prev = e;
}

/* Searches one key. Returns the verdict, or -1 on no memory. */
static int lin_search(lin_key *k, uint64_t max_steps) {
  size_t n = k->n, ne = 2 * n;
  int rc = -1;
  lin_entry *ents = calloc(ne + 1, sizeof *ents);
  lin_frame *stack = calloc(n + 1, sizeof *stack);
  uint32_t *pos = calloc(n + 1, sizeof *pos);
  k->best_stack = calloc(n + 1, sizeof *k->best_stack);
  lin_memo memo = {0};
  if (!ents || !stack || !pos || !k->best_stack || lin_memo_init(&memo, n) != 0) goto out;
  lin_entry *list = &ents[1];
  for (size_t i = 0; i < n; i++) {
    const lin_op *o = k->ops[i];
    list[2 * i] = (lin_entry){.time = o->invoke, .op = (uint32_t)i, .is_call = true};
    list[2 * i + 1] = (lin_entry){
        .time = o->result == LIN_UNKNOWN ? INFINITY : o->complete, .op = (uint32_t)i};
  }
  qsort(list, ne, sizeof *list, lin_entry_cmp);
  for (size_t i = 0; i < ne; i++) {
    list[i].prev = &ents[i];
    list[i].next = i + 1 < ne ? &list[i + 1] : NULL;
    pos[list[i].op] = list[i].is_call ? pos[list[i].op] : (uint32_t)i;
  }
  for (size_t i = 0; i < ne; i++)
    if (list[i].is_call) {
      list[i].match = &list[pos[list[i].op]];
      list[pos[list[i].op]].match = &list[i];
    }
  lin_entry *head = &ents[0];
  head->next = ne ? &list[0] : NULL;

  uint64_t *bits = calloc(memo.words, sizeof *bits);
  if (!bits) goto out;
  lin_state state = {.exists = 0, .known = 1, .index = 0};
  size_t depth = 0;
  uint64_t steps = 0;
  lin_entry *e = head->next;
  rc = LIN_LINEARIZABLE;
  while (head->next) {
    if (max_steps && ++steps > max_steps) {
      rc = LIN_GAVE_UP;
      break;
    }
    if (e->is_call) {
      lin_state next;
      if (lin_model_step(&state, &k->mops[e->op], &next)) {
        bits[e->op / 64] |= 1ULL << (e->op % 64);
        int added = lin_memo_add(&memo, bits, &next);
        if (added < 0) {
          rc = -1;
          break;
        }
        if (added) {
          stack[depth++] = (lin_frame){.entry = e, .state = state};
          state = next;
          lin_lift(e);
          e = head->next;
          continue;
        }
        bits[e->op / 64] &= ~(1ULL << (e->op % 64));
      }
      e = e->next;
      continue;
    }
    /* A return: its op completed without being linearized. Remember the deepest such point. */
    if (!k->have_best || depth > k->best_depth) {
      k->have_best = true;
      k->best_depth = depth;
      for (size_t i = 0; i < depth; i++) k->best_stack[i] = stack[i].entry->op;
      k->best_state = state;
      k->best_blocked = e->op;
    }
    if (depth == 0) {
      rc = LIN_VIOLATION;
      break;
    }
    lin_frame f = stack[--depth];
    state = f.state;
    bits[f.entry->op / 64] &= ~(1ULL << (f.entry->op % 64));
    lin_unlift(f.entry);
    e = f.entry->next;
  }
  free(bits);
out:
  lin_memo_free(&memo);
  free(ents);
  free(stack);
  free(pos);
  return rc;
}

/* A growing text buffer for the report. */
typedef struct lin_text {
  char *s;
  size_t len, cap;
} lin_text;

__attribute__((format(printf, 2, 3))) static void lin_text_add(lin_text *t, const char *fmt,
                                                               ...) {
  va_list ap;
  va_start(ap, fmt);
  int need = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (need < 0) return;
  if (t->len + (size_t)need + 1 > t->cap) {
    size_t cap = (t->cap + (size_t)need + 1) * 2;
    char *s = realloc(t->s, cap);
    if (!s) return;
    t->s = s;
    t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->s + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)need;
}

static void lin_text_state(lin_text *t, const lin_key *k, const lin_state *s) {
  if (!s->exists)
    lin_text_add(t, "absent");
  else
    lin_text_add(t, "\"%.60s\"", k->values[s->value - 1]);
  lin_text_add(t, s->known ? " (index %" PRIu64 ")" : " (index unknown, >= %" PRIu64 ")",
               s->index);
}

/* The explanation of a failed key: the deepest linearizable prefix and the op that could not
 * follow it, and the ops still open at that point. */
static char *lin_explain(const lin_key *k) {
  lin_text t = {0};
  char d[512];
  lin_text_add(&t, "no linearization of the %zu ops of this key exists.\n", k->n);
  const lin_op *blocked = k->ops[k->best_blocked];
  lin_text_add(&t, "The longest order found takes effect for %zu ops", k->best_depth);
  size_t from = k->best_depth > 12 ? k->best_depth - 12 : 0;
  lin_text_add(&t, from ? " (the last 12 shown):\n" : ":\n");
  lin_state s = {.known = 1};
  for (size_t i = 0; i < k->best_depth; i++) {
    const lin_op *o = k->ops[k->best_stack[i]];
    lin_state next = s;
    lin_model_step(&s, &k->mops[k->best_stack[i]], &next);
    s = next;
    if (i < from) continue;
    lin_text_add(&t, "  %s   => ", lin_describe_op(o, d, sizeof d));
    lin_text_state(&t, k, &s);
    lin_text_add(&t, "\n");
  }
  lin_text_add(&t, "Then this op completed, but cannot take effect in state ");
  lin_text_state(&t, k, &k->best_state);
  lin_text_add(&t, ", and no order of the open ops makes it possible:\n  %s\n",
               lin_describe_op(blocked, d, sizeof d));
  size_t shown = 0;
  for (size_t i = 0; i < k->n && shown < 12; i++) {
    bool done = false;
    for (size_t j = 0; j < k->best_depth; j++) done |= k->best_stack[j] == i;
    const lin_op *o = k->ops[i];
    if (done || i == k->best_blocked || !(o->invoke <= blocked->complete)) continue;
    if (shown++ == 0) lin_text_add(&t, "Ops invoked before it completed, not yet in effect:\n");
    lin_text_add(&t, "  %s\n", lin_describe_op(o, d, sizeof d));
  }
  return t.s;
}

static int lin_cmp_op_key(const void *a, const void *b) {
  const lin_op *x = *(const lin_op *const *)a, *y = *(const lin_op *const *)b;
  int c = strcmp(x->key, y->key);
  if (c) return c;
  return x->id < y->id ? -1 : x->id > y->id;
}

static char *lin_dup(const char *s) {
  size_t n = strlen(s) + 1;
  char *d = malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}

int lin_check(const lin_history *h, const lin_options *opt, lin_report *rep) {
  memset(rep, 0, sizeof *rep);
  size_t n = lin_history_len(h), m = 0;
  const lin_op **all = malloc((n + 1) * sizeof *all);
  if (!all) return -1;
  for (size_t i = 0; i < n; i++) {
    const lin_op *o = lin_history_op(h, i);
    /* A read of unknown outcome observed nothing: drop it. */
    if (o->kind == LIN_GET && o->result == LIN_UNKNOWN) continue;
    all[m++] = o;
  }
  qsort(all, m, sizeof *all, lin_cmp_op_key);
  int rc = 0;
  rep->verdict = LIN_LINEARIZABLE;
  for (size_t i = 0; i < m && rep->verdict == LIN_LINEARIZABLE;) {
    size_t j = i;
    while (j < m && strcmp(all[j]->key, all[i]->key) == 0) j++;
    lin_key k = {.ops = &all[i], .n = j - i};
    int v = lin_key_prepare(&k) == 0 ? lin_search(&k, opt ? opt->max_steps : 0) : -1;
    rep->n_keys++;
    rep->n_ops += k.n;
    if (v < 0) {
      rc = -1;
    } else if (v != LIN_LINEARIZABLE) {
      rep->verdict = (uint8_t)v;
      rep->key = lin_dup(all[i]->key);
      rep->explanation = v == LIN_VIOLATION ? lin_explain(&k)
                                            : lin_dup("the search gave up (max_steps reached)\n");
    }
    free(k.values);
    free(k.mops);
    free(k.best_stack);
    if (rc) break;
    i = j;
  }
  free(all);
  return rc;
}

void lin_report_free(lin_report *rep) {
  free(rep->key);
  free(rep->explanation);
  memset(rep, 0, sizeof *rep);
}
