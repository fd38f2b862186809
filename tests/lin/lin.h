/* lin: a linearizability checker for histories of etcd v2 key operations (raft.md §3.3, §6 L6).
 *
 * Model: every key is an independent versioned register, either absent or holding (value,
 * modifiedIndex); every key starts absent with index 0. A history is split per key and each key
 * is checked on its own (linearizability is compositional). The search is Wing & Gong's with
 * Lowe's just-in-time linearization and a memo of (set of linearized ops, register state), the
 * algorithm of Porcupine and Knossos.
 *
 * Operations and the results the model allows (etcd v2 semantics):
 *   put     set value unconditionally                  ok [index]
 *   get     read                                       ok value [index] | not-found
 *   cas     set value if prev_value/prev_index hold;   ok [index] | failed | not-found
 *           with prev_exist == 0 it is a create        ok [index] | failed (key exists)
 *   delete  delete unconditionally                     ok [index] | not-found
 *   cad     delete if prev_value/prev_index hold       ok [index] | failed | not-found
 * `index` is the etcd modifiedIndex a result reports (for a delete: the index of the delete).
 * Indexes are global in etcd, so successive writes of one key carry strictly increasing
 * indexes, and a read returns exactly the index of the write it observes. Any index may be left
 * out (has_index false); the model then checks values only for that op.
 *
 * Unknown outcomes (timeouts): an op with result LIN_UNKNOWN may take effect at any point after
 * its invoke, or never; its completion time is ignored. A write of unknown outcome leaves the
 * register's index unknown (only a lower bound is kept) until a later result pins it; a failed
 * prev_index condition against an unknown index is accepted (the model does not keep "!=").
 * Equal times count as concurrent: an op that completes at t and one invoked at t may be
 * linearized in either order.
 *
 * Ownership: a lin_history owns copies of every string added to it. */
#ifndef QUORUM_TESTS_LIN_LIN_H
#define QUORUM_TESTS_LIN_LIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum lin_kind {
  LIN_PUT = 0,
  LIN_GET,
  LIN_CAS,
  LIN_DELETE,
  LIN_CAD,
} lin_kind;

typedef enum lin_result {
  LIN_OK = 0,
  LIN_FAILED,    /* a prev_value/prev_index/prev_exist condition failed (etcd 101, 105) */
  LIN_NOT_FOUND, /* the key was absent (etcd 100) */
  LIN_UNKNOWN,   /* timeout: may or may not have taken effect */
} lin_result;

typedef struct lin_op {
  uint64_t id;        /* for reports: the line number when parsed; lin_history_add's order */
  uint64_t client;
  const char *key;
  uint8_t kind;       /* lin_kind */
  const char *value;  /* put/cas: the value written; get (ok): the value read; else NULL */
  const char *prev_value;  /* cas/cad condition, or NULL */
  bool has_prev_index;
  uint64_t prev_index;     /* cas/cad condition when has_prev_index */
  int prev_exist;          /* cas: -1 unset, 0 = create (key must be absent), 1 = must exist */
  uint8_t result;     /* lin_result */
  bool has_index;
  uint64_t index;     /* modifiedIndex reported by an ok result, when has_index */
  double invoke;      /* times in any unit, same clock for all ops */
  double complete;    /* ignored for LIN_UNKNOWN */
} lin_op;

typedef struct lin_history lin_history;

lin_history *lin_history_new(void);
void lin_history_free(lin_history *h);
/* Appends a copy of op (strings are copied). Returns 0, or -1 when op is malformed (a message
 * in err) or memory runs out. If op->id is 0 the op gets its 1-based position as id. */
int lin_history_add(lin_history *h, const lin_op *op, char *err, size_t errlen);
size_t lin_history_len(const lin_history *h);
const lin_op *lin_history_op(const lin_history *h, size_t i);

/* Parses one JSON object (the format of README.md) and appends it with id = line_no.
 * Returns 0 or -1 with a message in err. */
int lin_history_parse_line(lin_history *h, const char *line, size_t len, uint64_t line_no,
                           char *err, size_t errlen);
/* Reads a whole JSON-lines file (blank lines and lines starting with '#' are skipped). */
int lin_history_read(lin_history *h, FILE *f, char *err, size_t errlen);
/* Writes op as one JSON line (without newline) into buf; returns the length, or -1 if it does
 * not fit. The output parses back to the same op. */
int lin_op_to_json(const lin_op *op, char *buf, size_t len);

typedef enum lin_verdict {
  LIN_LINEARIZABLE = 0,
  LIN_VIOLATION = 1,
  LIN_GAVE_UP = 2, /* the search hit max_steps on some key */
} lin_verdict;

typedef struct lin_options {
  uint64_t max_steps; /* per key; 0 = unlimited */
} lin_options;

typedef struct lin_report {
  uint8_t verdict;     /* lin_verdict */
  size_t n_keys;       /* keys checked */
  size_t n_ops;        /* ops checked */
  char *key;           /* the failing (or given-up) key, malloc'd; NULL when linearizable */
  char *explanation;   /* malloc'd text; NULL when linearizable */
} lin_report;

/* Checks every key of h. opt may be NULL. Stops at the first key that is not linearizable.
 * Returns 0 (verdict in rep), or -1 when memory runs out. Free rep with lin_report_free. */
int lin_check(const lin_history *h, const lin_options *opt, lin_report *rep);
void lin_report_free(lin_report *rep);

/* A one-line text form of an op, for reports and traces. Returns buf. */
const char *lin_describe_op(const lin_op *op, char *buf, size_t len);
const char *lin_kind_name(uint8_t kind);
const char *lin_result_name(uint8_t result);

#endif
