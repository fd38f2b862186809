/* http_util: percent-decoding, parameters, and path cleaning (see the header). */
#include "daemon/http_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int http_unescape(sbuf *out, const char *s, size_t n, int plus_is_space) {
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= n) return -1;
      int h = hexval(s[i + 1]), l = hexval(s[i + 2]);
      if (h < 0 || l < 0) return -1;
      sbuf_putc(out, (char)(h << 4 | l));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      sbuf_putc(out, ' ');
    } else {
      sbuf_putc(out, c);
    }
  }
  return 0;
}

/* Go's error text for the bad escape at s[i] ("%zz", or "%4" when cut short). */
static void escape_error(http_params *ps, const char *s, size_t n) {
  size_t i = 0;
  for (; i < n; i++) {
    if (s[i] != '%') continue;
    if (i + 2 >= n || !strchr("0123456789abcdefABCDEF", s[i + 1]) || !s[i + 1] ||
        !strchr("0123456789abcdefABCDEF", s[i + 2]) || !s[i + 2])
      break;
    i += 2;
  }
  size_t l = n - i < 3 ? n - i : 3;
  snprintf(ps->error, sizeof ps->error, "invalid URL escape \"%.*s\"", (int)l, s + i);
}

int http_params_parse(http_params *ps, const char *s, size_t n) {
  int rc = 0;
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != '&') j++;
    if (memchr(s + i, ';', j - i)) {
      if (!rc) snprintf(ps->error, sizeof ps->error, "invalid semicolon separator in query");
      rc = -1;
    } else if (j > i) {
      const char *eq = memchr(s + i, '=', j - i);
      size_t nl = eq ? (size_t)(eq - (s + i)) : j - i;
      size_t vl = eq ? (size_t)(s + j - eq - 1) : 0;
      sbuf name = {0}, value = {0};
      if (http_unescape(&name, s + i, nl, 1)) {
        if (!rc) escape_error(ps, s + i, nl);
        rc = -1;
      } else if (eq && http_unescape(&value, eq + 1, vl, 1)) {
        if (!rc) escape_error(ps, eq + 1, vl);
        rc = -1;
      } else {
        sbuf_putc(&name, 0);
        sbuf_putc(&value, 0);
        if (ps->n == ps->cap) {
          size_t cap = ps->cap ? ps->cap * 2 : 8;
          http_param *v = realloc(ps->v, cap * sizeof *v);
          if (!v) abort();
          ps->v = v;
          ps->cap = cap;
        }
        http_param *p = &ps->v[ps->n++];
        p->name = name.p;
        p->value = value.p;
        p->value_len = value.len - 1;
        name.p = value.p = NULL;
      }
      sbuf_free(&name);
      sbuf_free(&value);
    }
    i = j + 1;
  }
  return rc;
}

void http_params_free(http_params *ps) {
  for (size_t i = 0; i < ps->n; i++) {
    free(ps->v[i].name);
    free(ps->v[i].value);
  }
  free(ps->v);
  ps->v = NULL;
  ps->n = ps->cap = 0;
}

const http_param *http_params_get(const http_params *ps, const char *name) {
  for (size_t i = 0; i < ps->n; i++)
    if (!strcmp(ps->v[i].name, name)) return &ps->v[i];
  return NULL;
}

void http_clean_path(sbuf *out, const char *p, size_t n) {
  /* Process element by element: skip empty and ".", pop on "..". */
  size_t base = out->len;
  sbuf_putc(out, '/');
  size_t i = 0;
  while (i < n) {
    while (i < n && p[i] == '/') i++;
    size_t j = i;
    while (j < n && p[j] != '/') j++;
    size_t len = j - i;
    if (len == 0 || (len == 1 && p[i] == '.')) {
      /* skip */
    } else if (len == 2 && p[i] == '.' && p[i + 1] == '.') {
      if (out->len > base + 1) {
        size_t k = out->len - 1;
        while (k > base && out->p[k] != '/') k--;
        out->len = k > base ? k : base + 1;
      }
    } else {
      if (out->len > base + 1) sbuf_putc(out, '/');
      sbuf_put(out, p + i, len);
    }
    i = j;
  }
}
