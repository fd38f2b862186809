/* export_read: a quorumctl export read with yajl's callbacks: {"entries":[{"path","value",
 * "dir","ttl"}...]} (other members skipped; when a member appears twice the first counts). */
#include "ctl/export_read.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

enum { F_TOP = 1, F_ENTRIES, F_ENTRY, F_OTHER };
enum { K_NONE, K_ENTRIES, K_PATH, K_VALUE, K_DIR, K_TTL };

typedef struct xparse {
  int stack[64]; /* frame kinds; deeper ones are F_OTHER */
  size_t depth;
  int key;       /* the member whose value comes next (in F_TOP or F_ENTRY) */
  unsigned seen; /* members of the current entry (or of the top object) already read */
  int have_entries, bad, oom;
  int path_ok, value_ok, ttl_bad; /* of the current entry */
  ctl_export_entry *v;
  size_t n, cap;
} xparse;

static int top_kind(const xparse *p) {
  return p->depth == 0 ? 0 : p->depth <= 64 ? p->stack[p->depth - 1] : F_OTHER;
}

static void push(xparse *p, int kind) {
  if (p->depth < 64) p->stack[p->depth] = kind;
  p->depth++;
}

/* The member a value in the top frame is for (K_NONE: not read, or read before). */
static int take(xparse *p) {
  int k = p->key;
  p->key = K_NONE;
  int f = top_kind(p);
  if ((f != F_TOP && f != F_ENTRY) || k == K_NONE || (p->seen & (1u << k))) return K_NONE;
  p->seen |= 1u << k;
  return k;
}

static ctl_export_entry *cur(xparse *p) { return &p->v[p->n - 1]; }

static int on_scalar(xparse *p, int is_string, const unsigned char *s, size_t l, int is_true,
                     int is_number) {
  int f = top_kind(p);
  int k = take(p);
  if (f != F_ENTRY || k == K_NONE) return 1;
  ctl_export_entry *e = cur(p);
  if (k == K_PATH || k == K_VALUE) {
    if (!is_string) return 1; /* (checked at the entry's end) */
    char *d = malloc(l + 1);
    if (!d) return p->oom = 1, 0;
    memcpy(d, s, l);
    d[l] = 0;
    if (k == K_PATH) {
      e->path = d;
      p->path_ok = 1;
    } else {
      e->value = d;
      e->value_len = l;
      p->value_ok = 1;
    }
  } else if (k == K_DIR) {
    e->dir = is_true;
  } else if (k == K_TTL) {
    int integer = is_number && l > 0 && l < 32;
    for (size_t i = 0; integer && i < l; i++)
      if (!(s[i] == '-' && i == 0) && (s[i] < '0' || s[i] > '9')) integer = 0;
    if (!integer) {
      p->ttl_bad = 1;
      return 1;
    }
    char b[32];
    memcpy(b, s, l);
    b[l] = 0;
    e->has_ttl = 1;
    e->ttl = strtoll(b, NULL, 10);
  }
  return 1;
}

static int on_null(void *c) { return on_scalar(c, 0, NULL, 0, 0, 0); }
static int on_bool(void *c, int b) { return on_scalar(c, 0, NULL, 0, b, 0); }
static int on_number(void *c, const char *s, size_t l) {
  return on_scalar(c, 0, (const unsigned char *)s, l, 0, 1);
}
static int on_string(void *c, const unsigned char *s, size_t l) { return on_scalar(c, 1, s, l, 0, 0); }

static int on_key(void *c, const unsigned char *s, size_t l) {
  xparse *p = c;
  static const char *const names[] = {"", "entries", "path", "value", "dir", "ttl"};
  p->key = K_NONE;
  int f = top_kind(p);
  for (int k = K_ENTRIES; k <= K_TTL; k++)
    if (strlen(names[k]) == l && !memcmp(names[k], s, l) && ((f == F_TOP) == (k == K_ENTRIES)))
      p->key = k;
  return 1;
}

static int on_start_map(void *c) {
  xparse *p = c;
  int f = top_kind(p);
  if (p->depth == 0) {
    push(p, F_TOP);
    return 1;
  }
  if (f == F_ENTRIES) {
    if (p->n == p->cap) {
      size_t nc = p->cap ? p->cap * 2 : 64;
      ctl_export_entry *v = realloc(p->v, nc * sizeof *v);
      if (!v) return p->oom = 1, 0;
      p->v = v;
      p->cap = nc;
    }
    memset(&p->v[p->n++], 0, sizeof *p->v);
    p->seen = 0;
    p->path_ok = p->value_ok = p->ttl_bad = 0;
    push(p, F_ENTRY);
    return 1;
  }
  take(p); /* an object where a member of ours was wanted: that member is not valid */
  push(p, F_OTHER);
  return 1;
}

static int on_end_map(void *c) {
  xparse *p = c;
  if (top_kind(p) == F_ENTRY) {
    ctl_export_entry *e = cur(p);
    if (!p->path_ok || (!e->dir && !p->value_ok) || p->ttl_bad) p->bad = 1;
    if (e->dir && e->value) { /* a directory has no value, whatever the file says */
      free(e->value);
      e->value = NULL;
      e->value_len = 0;
    }
    p->seen = 1u << K_ENTRIES; /* back in the top object */
  }
  p->depth--;
  return 1;
}

static int on_start_array(void *c) {
  xparse *p = c;
  if (p->depth == 0) return 0; /* not an object */
  int f = top_kind(p);
  if (f == F_TOP && take(p) == K_ENTRIES) {
    p->have_entries = 1;
    push(p, F_ENTRIES);
    return 1;
  }
  take(p);
  push(p, F_OTHER);
  return 1;
}

static int on_end_array(void *c) {
  xparse *p = c;
  p->depth--;
  return 1;
}

static const yajl_callbacks callbacks = {
    .yajl_null = on_null,
    .yajl_boolean = on_bool,
    .yajl_number = on_number,
    .yajl_string = on_string,
    .yajl_start_map = on_start_map,
    .yajl_map_key = on_key,
    .yajl_end_map = on_end_map,
    .yajl_start_array = on_start_array,
    .yajl_end_array = on_end_array,
};

void ctl_export_free(ctl_export_entry *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].path);
    free(v[i].value);
  }
  free(v);
}

int ctl_export_read(const char *text, ctl_export_entry **out, size_t *n) {
  xparse p = {0};
  yajl_handle h = yajl_alloc(&callbacks, NULL, &p);
  if (!h) return -1;
  int ok = yajl_parse(h, (const unsigned char *)text, strlen(text)) == yajl_status_ok &&
           yajl_complete_parse(h) == yajl_status_ok && p.have_entries && !p.bad && !p.oom;
  yajl_free(h);
  if (!ok) {
    ctl_export_free(p.v, p.n);
    return -1;
  }
  *out = p.v;
  *n = p.n;
  return 0;
}
