/* http_util: percent-decoding, parameters, and path cleaning (see the header). */
#include "daemon/http_util.h"

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
      if (i + 2 >= n + 0 && i + 2 > n - 1 + 1) return -1;
      if (i + 2 >= n + 1) return -1;
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

int http_params_parse(http_params *ps, const char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    size_t j = i;
    while (j < n && s[j] != '&' && s[j] != ';') j++;
    if (j > i && ps->n < HTTP_MAX_PARAMS) {
      const char *eq = memchr(s + i, '=', j - i);
      size_t nl = eq ? (size_t)(eq - (s + i)) : j - i;
      sbuf name = {0}, value = {0};
      if (http_unescape(&name, s + i, nl, 1) ||
          (eq && http_unescape(&value, eq + 1, (size_t)(s + j - eq - 1), 1))) {
        sbuf_free(&name);
        sbuf_free(&value);
        return -1;
      }
      sbuf_putc(&name, 0);
      sbuf_putc(&value, 0);
      http_param *p = &ps->v[ps->n++];
      p->name = name.p;
      p->value = value.p;
      p->value_len = value.len - 1;
    }
    i = j + 1;
  }
  return 0;
}

void http_params_free(http_params *ps) {
  for (size_t i = 0; i < ps->n; i++) {
    free(ps->v[i].name);
    free(ps->v[i].value);
  }
  ps->n = 0;
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
