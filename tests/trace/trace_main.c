/* trace_main.c: the golden trace runner (raft.md §6 L3).
 *   trace [--rewrite] FILE...
 * Runs each script's commands on a fresh cluster and compares each command's output with the
 * expected section below it. A mismatch prints a line diff (file, line, expected vs actual) and
 * the exit status is 1; --rewrite writes the actual output into the files instead. A malformed
 * script stops with "file:line: message" and status 2. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/trace/trace.h"

typedef struct lines {
  const char **l;
  size_t *len;
  size_t n;
} lines;

static lines split_lines(const char *s) {
  lines r = {0};
  size_t cap = 0;
  while (*s) {
    const char *nl = strchr(s, '\n');
    size_t n = nl ? (size_t)(nl - s) : strlen(s);
    if (r.n == cap) {
      cap = cap ? cap * 2 : 32;
      r.l = realloc(r.l, cap * sizeof *r.l);
      r.len = realloc(r.len, cap * sizeof *r.len);
      if (!r.l || !r.len) abort();
    }
    r.l[r.n] = s;
    r.len[r.n++] = n;
    s += n + (nl ? 1 : 0);
  }
  return r;
}

static bool line_eq(const lines *a, size_t i, const lines *b, size_t j) {
  return a->len[i] == b->len[j] && memcmp(a->l[i], b->l[j], a->len[i]) == 0;
}

/* A line diff by longest common subsequence (outputs are short). */
static void print_diff(const char *path, const tscript_block *b, const char *want,
                       const char *got) {
  lines x = split_lines(want), y = split_lines(got);
  size_t w = y.n + 1;
  unsigned *t = calloc((x.n + 1) * w, sizeof *t);
  if (!t) abort();
  for (size_t i = x.n; i-- > 0;)
    for (size_t j = y.n; j-- > 0;)
      t[i * w + j] = line_eq(&x, i, &y, j) ? t[(i + 1) * w + j + 1] + 1
                     : t[(i + 1) * w + j] > t[i * w + j + 1] ? t[(i + 1) * w + j]
                                                             : t[i * w + j + 1];
  printf("%s:%d: output of '%s' differs\n--- expected\n+++ actual\n", path, b->line, b->cmd_line);
  size_t i = 0, j = 0;
  while (i < x.n || j < y.n) {
    if (i < x.n && j < y.n && line_eq(&x, i, &y, j)) {
      printf(" %.*s\n", (int)x.len[i], x.l[i]);
      i++, j++;
    } else if (i < x.n && (j == y.n || t[(i + 1) * w + j] >= t[i * w + j + 1])) {
      printf("-%.*s\n", (int)x.len[i], x.l[i]);
      i++;
    } else {
      printf("+%.*s\n", (int)y.len[j], y.l[j]);
      j++;
    }
  }
  free(t);
  free(x.l);
  free(x.len);
  free(y.l);
  free(y.len);
}

/* Runs one file. Returns 0 (all equal or rewritten), 1 (differences) or 2 (a script error). */
static int run_file(const char *path, bool rewrite) {
  char err[1024];
  tscript s;
  if (tscript_load(path, &s, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    tscript_free(&s);
    return 2;
  }
  char **actual = calloc(s.n, sizeof *actual);
  if (!actual) abort();
  tb out;
  tb_init(&out);
  tenv e;
  tenv_init(&e, &out);
  int status = 0;
  size_t done = 0;
  for (; done < s.n; done++) {
    tscript_block *b = &s.blocks[done];
    tb_clear(&out);
    if (!tcmd_run(&e, b, err, sizeof err)) {
      fprintf(stderr, "%s:%d: %s\n", path, b->line, err);
      status = 2;
      break;
    }
    actual[done] = strdup(out.s);
    if (!actual[done]) abort();
    if (!rewrite && strcmp(actual[done], b->expected) != 0) {
      print_diff(path, b, b->expected, actual[done]);
      status = 1;
    }
  }
  if (status == 0 && rewrite && tscript_write(&s, actual, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    status = 2;
  }
  if (status == 0) printf("%s: %zu commands %s\n", path, s.n, rewrite ? "rewritten" : "ok");
  for (size_t i = 0; i < done; i++) free(actual[i]);
  free(actual);
  tenv_free(&e);
  tb_free(&out);
  tscript_free(&s);
  return status;
}

int main(int argc, char **argv) {
  bool rewrite = false;
  int nfiles = 0, status = 0;
  setvbuf(stdout, NULL, _IOLBF, 0); /* diffs (stdout) and errors (stderr) in order */
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--rewrite") == 0) {
      rewrite = true;
    } else if (argv[i][0] == '-') {
      fprintf(stderr, "usage: %s [--rewrite] FILE...\n", argv[0]);
      return 2;
    }
  }
  for (int i = 1; i < argc; i++) {
    if (argv[i][0] == '-') continue;
    nfiles++;
    int rc = run_file(argv[i], rewrite);
    if (rc > status) status = rc;
  }
  if (nfiles == 0) {
    fprintf(stderr, "usage: %s [--rewrite] FILE...\n", argv[0]);
    return 2;
  }
  return status;
}
