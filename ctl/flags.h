/* flags: command-line parsing exactly as etcdctl v2 does it (Go's flag package, plus urfave/cli
 * 1.22's reordering of command flags that follow positional arguments), and help lines. */
#ifndef QUORUM_CTL_FLAGS_H
#define QUORUM_CTL_FLAGS_H

#include <stdio.h>

#include "ctl/ctl.h"

typedef enum ctl_parse_rc {
  CTL_PARSE_OK = 0,
  CTL_PARSE_ERROR = -1, /* err holds Go's message ("flag provided but not defined: -x") */
  CTL_PARSE_HELP = 1,   /* -h / --help */
  CTL_PARSE_VERSION = 2 /* -v / --version (global flags only) */
} ctl_parse_rc;

/* Parses argv[0..argc) against flags into a (vals and argv are allocated; free with
 * ctl_args_free). reorder: move known flags before positional args as urfave/cli does for
 * commands. Returns a ctl_parse_rc. */
int ctl_flags_parse(const ctl_flag *flags, size_t n, int argc, char **argv, int reorder,
                    int global, ctl_args *a, char *err, size_t errlen);

void ctl_args_free(ctl_args *a);

/* Writes the OPTIONS lines of a flag list (each "   <names>  <usage>\n"), aligned as
 * text/tabwriter does, followed by "   \n" when trailer is set (commands; the app help has none). */
void ctl_flags_help(FILE *f, const ctl_flag *flags, size_t n, int trailer);

/* Go's time.ParseDuration, in milliseconds. Returns 0 or -1. */
int ctl_parse_duration(const char *s, long long *ms);

#endif
