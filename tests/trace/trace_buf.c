/* trace_buf.c: tb, the growable NUL-terminated text buffer each command writes its output to.
 * Out of memory aborts: this is a test program. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/trace/trace.h"

static void tb_reserve(tb *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < b->len + extra + 1) cap *= 2;
  char *s = realloc(b->s, cap);
  if (!s) abort();
  b->s = s;
  b->cap = cap;
}

void tb_init(tb *b) {
  *b = (tb){0};
  tb_reserve(b, 0);
  b->s[0] = 0;
}

void tb_free(tb *b) {
  free(b->s);
  *b = (tb){0};
}

void tb_clear(tb *b) {
  b->len = 0;
  b->s[0] = 0;
}

void tb_append(tb *b, const char *s, size_t n) {
  if (n == 0) return; /* s may be NULL then (an empty raft_buf) */
  tb_reserve(b, n);
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

void tb_printf(tb *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (k < 0) abort();
  tb_reserve(b, (size_t)k);
  va_start(ap, fmt);
  vsnprintf(b->s + b->len, (size_t)k + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)k;
}
