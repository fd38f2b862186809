/* ctl: the types every quorumctl module shares: flag specs and parsed values, the command table
 * entry, the run context (global options and the v2 client), and etcdctl's exit codes. */
#ifndef QUORUM_CTL_CTL_H
#define QUORUM_CTL_CTL_H

#include <stddef.h>
#include <stdint.h>

#include "proto/v2_client.h"

#define CTL_PROG "quorumctl"

/* etcdctl v2's exit codes. */
enum {
  CTL_EXIT_SUCCESS = 0,
  CTL_EXIT_BAD_ARGS = 1,
  CTL_EXIT_BAD_CONNECTION = 2,
  CTL_EXIT_BAD_AUTH = 3,
  CTL_EXIT_SERVER_ERROR = 4,
  CTL_EXIT_CLUSTER_NOT_HEALTHY = 5,
};

typedef enum ctl_flag_kind {
  CTL_FLAG_BOOL,
  CTL_FLAG_INT,
  CTL_FLAG_STRING,
  CTL_FLAG_DURATION,
  CTL_FLAG_STRING_SLICE, /* urfave/cli's StringSliceFlag: each repetition adds one value */
} ctl_flag_kind;

/* One flag as urfave/cli declares it: names "recursive, r" (first is the long name). */
typedef struct ctl_flag {
  const char *names;
  ctl_flag_kind kind;
  const char *usage;
  const char *def;         /* default shown in help and used when not given ("" = none) */
} ctl_flag;

typedef struct ctl_flag_val {
  int set;
  int b;
  long long i;
  const char *s;
  long long ms; /* durations */
  const char **list; /* string slices: the values in order (borrowed strings, owned array) */
  size_t n_list;
} ctl_flag_val;

/* The flags of one command after parsing, and the positional arguments. */
typedef struct ctl_args {
  const ctl_flag *flags;
  size_t n_flags;
  ctl_flag_val *vals;
  char **argv; /* positional arguments (borrowed; the array is owned) */
  int argc;
} ctl_args;

/* Looks a parsed flag up by its long name. */
const ctl_flag_val *ctl_arg(const ctl_args *a, const char *name);
int ctl_arg_bool(const ctl_args *a, const char *name);
long long ctl_arg_int(const ctl_args *a, const char *name);
const char *ctl_arg_str(const ctl_args *a, const char *name);

/* Global options and the client, shared by the commands of one run. */
typedef struct ctl_ctx {
  ctl_args global;
  const char *output; /* simple | extended | json | other */
  proto_v2_client *client;
  char *password_buf;
  int health; /* cluster-health: its transport errors are reported with exit 4 */
} ctl_ctx;

struct ctl_command;
typedef int (*ctl_run_fn)(ctl_ctx *ctx, const struct ctl_command *cmd, ctl_args *a);

typedef struct ctl_command {
  const char *name;
  const char *usage;
  const char *args_usage;
  const char *description; /* NULL = none */
  const ctl_flag *flags;
  size_t n_flags;
  ctl_run_fn run;
  const struct ctl_command *subs; /* subcommands (member) */
  size_t n_subs;
  int hidden; /* not listed in the app help */
} ctl_command;

/* The command table (commands.c). */
extern const ctl_command ctl_commands[];
extern const size_t ctl_n_commands;
extern const ctl_flag ctl_global_flags[];
extern const size_t ctl_n_global_flags;

const ctl_command *ctl_find_command(const ctl_command *tab, size_t n, const char *name);

#endif
