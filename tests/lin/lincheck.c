/* lincheck: the command-line linearizability checker. Reads a JSON-lines history (README.md)
 * from a file or stdin, checks it key by key with the lin library and prints the verdict.
 * Exit status: 0 linearizable, 1 not linearizable, 2 bad input or usage, 3 the search gave up. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/lin/lin.h"

static void lincheck_usage(FILE *f) {
  fprintf(f,
          "usage: lincheck [--max-steps N] [HISTORY.jsonl | -]\n"
          "Checks a JSON-lines history of etcd v2 key operations for linearizability.\n"
          "Exit status: 0 linearizable, 1 not linearizable, 2 bad input, 3 search gave up.\n");
}

int main(int argc, char **argv) {
  lin_options opt = {0};
  const char *path = "-";
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--max-steps") == 0 && i + 1 < argc) {
      char *end;
      errno = 0;
      opt.max_steps = strtoull(argv[++i], &end, 10);
      if (errno || *end) {
        lincheck_usage(stderr);
        return 2;
      }
    } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
      lincheck_usage(stdout);
      return 0;
    } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
      lincheck_usage(stderr);
      return 2;
    } else {
      path = argv[i];
    }
  }
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  if (!f) {
    fprintf(stderr, "lincheck: %s: %s\n", path, strerror(errno));
    return 2;
  }
  lin_history *h = lin_history_new();
  char err[512];
  int status = 2;
  if (!h) {
    fprintf(stderr, "lincheck: out of memory\n");
  } else if (lin_history_read(h, f, err, sizeof err) != 0) {
    fprintf(stderr, "lincheck: %s: %s\n", path, err);
  } else {
    lin_report rep;
    if (lin_check(h, &opt, &rep) != 0) {
      fprintf(stderr, "lincheck: out of memory\n");
    } else if (rep.verdict == LIN_LINEARIZABLE) {
      printf("linearizable: %zu ops on %zu keys\n", rep.n_ops, rep.n_keys);
      status = 0;
    } else if (rep.verdict == LIN_VIOLATION) {
      printf("NOT linearizable: key \"%s\": %s", rep.key, rep.explanation);
      status = 1;
    } else {
      printf("unknown: key \"%s\": %s", rep.key, rep.explanation);
      status = 3;
    }
    lin_report_free(&rep);
  }
  lin_history_free(h);
  if (f != stdin) fclose(f);
  return status;
}
