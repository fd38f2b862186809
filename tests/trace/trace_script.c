/* trace_script.c: reads a trace script into blocks and writes it back with new expected
 * output (--rewrite). A script is a sequence of
 *     [comment lines starting with '#', blank lines]
 *     command arg key=value key=(v1,v2)
 *     ----
 *     expected output lines
 *     <blank line or end of file>
 * Everything but the expected sections is written back verbatim. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/trace/trace.h"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static char *dup_n(const char *s, size_t n) {
  char *d = malloc(n + 1);
  if (!d) abort();
  memcpy(d, s, n);
  d[n] = 0;
  return d;
}

static char *read_all(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  tb b;
  tb_init(&b);
  char chunk[4096];
  size_t k;
  while ((k = fread(chunk, 1, sizeof chunk, f)) > 0) tb_append(&b, chunk, k);
  fclose(f);
  *len = b.len;
  return b.s;
}

static bool is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return false;
  return true;
}

/* Splits the command line into the command word and arguments; parentheses group words. */
static bool parse_command(tscript_block *b, const char *path, char *err, size_t errlen) {
  const char *p = b->cmd_line;
  bool first = true;
  while (*p) {
    while (*p == ' ' || *p == '\t') p++;
    if (!*p) break;
    const char *w = p;
    int depth = 0;
    while (*p && (depth > 0 || (*p != ' ' && *p != '\t'))) {
      if (*p == '(') depth++;
      if (*p == ')') depth--;
      p++;
    }
    if (depth != 0) {
      set_err(err, errlen, "%s:%d: unbalanced parentheses", path, b->line);
      return false;
    }
    char *word = dup_n(w, (size_t)(p - w));
    if (first) {
      b->cmd = word;
      first = false;
      continue;
    }
    if (b->n_args == TSCRIPT_MAX_ARGS) {
      free(word);
      set_err(err, errlen, "%s:%d: more than %d arguments", path, b->line, TSCRIPT_MAX_ARGS);
      return false;
    }
    tscript_arg *a = &b->args[b->n_args++];
    char *eq = strchr(word, '=');
    a->key = word;
    a->val = NULL;
    if (eq) {
      *eq = 0;
      char *v = eq + 1;
      size_t n = strlen(v);
      if (n >= 2 && v[0] == '(' && v[n - 1] == ')') {
        v[n - 1] = 0;
        v++;
      }
      a->val = v;
    }
  }
  return true;
}

int tscript_load(const char *path, tscript *s, char *err, size_t errlen) {
  *s = (tscript){0};
  size_t len;
  char *text = read_all(path, &len);
  if (!text) {
    set_err(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  s->path = dup_n(path, strlen(path));
  tb pre, exp;
  tb_init(&pre);
  tb_init(&exp);
  size_t cap = 0;
  int line = 0;
  const char *p = text, *end = text + len;
  int rc = 0;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    line++;
    if (is_blank(p, n) || p[0] == '#') {
      tb_append(&pre, p, n);
      tb_append(&pre, "\n", 1);
      p += n + (nl ? 1 : 0);
      continue;
    }
    /* A command line. */
    if (s->n == cap) {
      cap = cap ? cap * 2 : 16;
      s->blocks = realloc(s->blocks, cap * sizeof *s->blocks);
      if (!s->blocks) abort();
    }
    tscript_block *b = &s->blocks[s->n++];
    *b = (tscript_block){0};
    b->line = line;
    b->cmd_line = dup_n(p, n);
    b->preamble = dup_n(pre.s, pre.len);
    tb_clear(&pre);
    p += n + (nl ? 1 : 0);
    if (!parse_command(b, path, err, errlen)) {
      rc = -1;
      break;
    }
    /* The separator. */
    nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    n = p < end ? (nl ? (size_t)(nl - p) : (size_t)(end - p)) : 0;
    line++;
    if (p >= end || n != 4 || memcmp(p, "----", 4) != 0) {
      set_err(err, errlen, "%s:%d: expected a line '----' after the command '%s'", path, line,
              b->cmd);
      rc = -1;
      break;
    }
    p += n + (nl ? 1 : 0);
    /* The expected output, up to a blank line or the end. */
    tb_clear(&exp);
    while (p < end) {
      nl = memchr(p, '\n', (size_t)(end - p));
      n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      const char *ln = p;
      line++;
      p += n + (nl ? 1 : 0);
      if (is_blank(ln, n)) break;
      tb_append(&exp, ln, n);
      tb_append(&exp, "\n", 1);
    }
    b->expected = dup_n(exp.s, exp.len);
  }
  s->trailer = dup_n(pre.s, pre.len);
  tb_free(&pre);
  tb_free(&exp);
  free(text);
  if (rc == 0 && s->n == 0) {
    set_err(err, errlen, "%s:1: no commands in the file", path);
    rc = -1;
  }
  return rc;
}

void tscript_free(tscript *s) {
  for (size_t i = 0; i < s->n; i++) {
    tscript_block *b = &s->blocks[i];
    free(b->preamble);
    free(b->cmd_line);
    free(b->cmd);
    for (size_t k = 0; k < b->n_args; k++) free(b->args[k].key);
    free(b->expected);
  }
  free(s->blocks);
  free(s->trailer);
  free(s->path);
  *s = (tscript){0};
}

int tscript_write(const tscript *s, char *const *actual, char *err, size_t errlen) {
  tb b;
  tb_init(&b);
  for (size_t i = 0; i < s->n; i++) {
    const tscript_block *bl = &s->blocks[i];
    tb_printf(&b, "%s%s\n----\n%s", bl->preamble, bl->cmd_line, actual[i]);
    /* A blank line ends each block, except a last one with nothing after it. */
    if (i + 1 < s->n || s->trailer[0]) tb_append(&b, "\n", 1);
  }
  tb_printf(&b, "%s", s->trailer);
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", s->path);
  FILE *f = fopen(tmp, "wb");
  int rc = -1;
  if (f) {
    bool ok = fwrite(b.s, 1, b.len, f) == b.len;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, s->path) == 0) rc = 0;
  }
  if (rc != 0) {
    set_err(err, errlen, "%s: cannot write: %s", s->path, strerror(errno));
    remove(tmp);
  }
  tb_free(&b);
  return rc;
}
