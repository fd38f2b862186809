/* trace.h: the golden trace interpreter (raft.md §6 L3), shared declarations.
 *   trace_buf.c     tb_*:     a growable text buffer (the output of one command)
 *   trace_script.c  tscript_*: reading a script into blocks, writing it back (--rewrite)
 *   trace_env.c     tenv_*:   the in-process cluster: nodes, network, ready handling, delivery
 *   trace_cmd.c     tcmd_*:   the command table and argument parsing
 *   trace_main.c    the CLI: run each file, compare or rewrite, print diffs
 * See README.md for the script format. */
#ifndef QUORUM_TESTS_TRACE_TRACE_H
#define QUORUM_TESTS_TRACE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/core/raft.h"
#include "raft/storage/mem_storage.h"

/* ---- trace_buf.c ---- */
typedef struct tb {
  char *s; /* NUL-terminated (never NULL after tb_init) */
  size_t len, cap;
} tb;

void tb_init(tb *b);
void tb_free(tb *b);
void tb_clear(tb *b);
void tb_printf(tb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tb_append(tb *b, const char *s, size_t n);

/* ---- trace_script.c ---- */
#define TSCRIPT_MAX_ARGS 16

typedef struct tscript_arg {
  char *key; /* "voters" in voters=(1,2,3); the whole word when there is no '=' */
  char *val; /* "(1,2,3)" → "1,2,3"; NULL when there is no '=' */
} tscript_arg;

typedef struct tscript_block {
  char *preamble;  /* comment and blank lines before the command, verbatim */
  char *cmd_line;  /* the command line, without its newline */
  int line;        /* its line number (1-based) */
  char *cmd;       /* the command word */
  tscript_arg args[TSCRIPT_MAX_ARGS];
  size_t n_args;
  char *expected;  /* the expected output, each line ending in '\n' */
} tscript_block;

typedef struct tscript {
  char *path;
  tscript_block *blocks;
  size_t n;
  char *trailer; /* comment and blank lines after the last block */
} tscript;

/* Reads and parses path. On a malformed file, writes "file:line: message" into err. */
int tscript_load(const char *path, tscript *s, char *err, size_t errlen);
void tscript_free(tscript *s);
/* Writes the script back with actual[i] as block i's expected output. */
int tscript_write(const tscript *s, char *const *actual, char *err, size_t errlen);

/* ---- trace_env.c ---- */
#define TENV_MAX_NODES 9

typedef struct tenv_mark {
  uint64_t index; /* an applied index */
  size_t len;     /* the state machine's length once it was applied */
} tenv_mark;

typedef struct tenv_node {
  uint64_t id;
  raft *r;         /* NULL while crashed */
  mem_storage *ms; /* the durable part: survives crash */
  raft_config cfg;
  tb sm;           /* the state machine: applied normal entries' data, joined by ',' */
  uint64_t applied;
  tenv_mark *marks; /* applied index → sm length, to snapshot at an index */
  size_t n_marks, cap_marks;
  struct tenv *env;
} tenv_node;

typedef struct tenv_msgq {
  raft_message *m;
  size_t n, cap;
} tenv_msgq;

typedef struct tenv {
  tenv_node *nodes[TENV_MAX_NODES + 1]; /* by id; NULL = no such node */
  size_t n;                             /* ids are 1..n */
  bool cut[TENV_MAX_NODES + 1][TENV_MAX_NODES + 1];
  tenv_msgq q; /* messages in flight, in send order */
  int log_level; /* the least core log level shown; 4 = none */
  tb *out;       /* where the current command writes */
} tenv;

void tenv_init(tenv *e, tb *out);
void tenv_free(tenv *e);
/* Adds a node with the next id. voters (nv, may be 0) is its initial conf state; snap_index > 0
 * starts it from a snapshot at (snap_index, term 1). Returns 0 or a RAFT_E_* code. */
int tenv_add_node(tenv *e, const raft_config *cfg, const uint64_t *voters, size_t nv,
                  uint64_t snap_index);
/* Handles one ready batch of node id in the driver's order and prints it. False = none. */
bool tenv_process_ready(tenv *e, uint64_t id);
/* Delivers (or drops) every queued message to id, printing each. False = none queued. */
bool tenv_deliver(tenv *e, uint64_t id);
/* Rounds of process-ready then deliver over all nodes until quiet. False = no quiet reached. */
bool tenv_stabilize(tenv *e);
/* Ticks id n times. */
void tenv_tick(tenv *e, uint64_t id, unsigned n);
/* Ticks id until its election timeout fires (a leader: its check-quorum interval). */
void tenv_tick_election(tenv *e, uint64_t id);
void tenv_crash(tenv *e, uint64_t id);
int tenv_restart(tenv *e, uint64_t id);
/* Snapshots id's state machine at index (<= applied) and compacts its log up to it. */
int tenv_compact(tenv *e, uint64_t id, uint64_t index);
void tenv_print_log(tenv *e, uint64_t id);
void tenv_print_state(tenv *e, uint64_t id, bool detailed);
/* The node id, when it exists and is up; NULL otherwise. */
tenv_node *tenv_live(tenv *e, uint64_t id);

/* ---- trace_cmd.c ---- */
/* Runs one block's command, writing its output to e->out. Returns false on a malformed
 * command, with the reason in err. */
bool tcmd_run(tenv *e, const tscript_block *b, char *err, size_t errlen);

#endif
