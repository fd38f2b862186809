/* flags: Go-flag-compatible parsing of quorumctl's global and command flags, with urfave/cli's
 * argument reordering, and the OPTIONS section of the help. */
#include "ctl/flags.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Does names ("recursive, r") contain name? */
static int has_name(const char *names, const char *name, size_t len) {
  const char *p = names;
  while (*p) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ') e++;
    if ((size_t)(e - p) == len && len && strncmp(p, name, len) == 0) return 1;
    p = e;
  }
  return 0;
}

static int find_flag(const ctl_flag *flags, size_t n, const char *name, size_t len) {
  for (size_t i = 0; i < n; i++)
    if (has_name(flags[i].names, name, len)) return (int)i;
  return -1;
}

static int is_help(const char *name, size_t len) {
  return (len == 4 && strncmp(name, "help", 4) == 0) || (len == 1 && name[0] == 'h');
}

static int is_version(const char *name, size_t len) {
  return (len == 7 && strncmp(name, "version", 7) == 0) || (len == 1 && name[0] == 'v');
}

/* urfave/cli's argIsFlag: "-x", "--x", "--x=v" naming a declared flag (or help). */
static int arg_is_flag(const ctl_flag *flags, size_t n, const char *arg) {
  if (strcmp(arg, "-") == 0 || strcmp(arg, "--") == 0 || arg[0] != '-') return 0;
  const char *s = arg + 1;
  if (*s == '-') s++;
  size_t len = strcspn(s, "=");
  return find_flag(flags, n, s, len) >= 0 || is_help(s, len);
}

/* Go's %q for the ASCII cases that matter here. */
static void quote(char *out, size_t n, const char *s) {
  size_t k = 0;
  if (n < 3) return;
  out[k++] = '"';
  for (const unsigned char *p = (const unsigned char *)s; *p && k + 6 < n; p++) {
    if (*p == '"' || *p == '\\') {
      out[k++] = '\\';
      out[k++] = (char)*p;
    } else if (*p < 0x20 || *p == 0x7f) {
      k += (size_t)snprintf(out + k, n - k, "\\x%02x", *p);
    } else {
      out[k++] = (char)*p;
    }
  }
  out[k++] = '"';
  out[k] = 0;
}

/* Go's strconv.ParseInt(s, 0, 64). Returns 0, -1 (syntax) or -2 (range). */
static int parse_int(const char *s, long long *out) {
  const char *p = s;
  int neg = 0;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  int base = 10;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) base = 16, p += 2;
  else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) base = 2, p += 2;
  else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) base = 8, p += 2;
  else if (p[0] == '0' && p[1]) base = 8, p += 1;
  if (!*p) return -1;
  unsigned long long v = 0;
  int range = 0;
  for (; *p; p++) {
    int d;
    if (*p >= '0' && *p <= '9') d = *p - '0';
    else if (*p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
    else if (*p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
    else return -1;
    if (d >= base) return -1;
    if (v > (ULLONG_MAX - (unsigned)d) / (unsigned)base) range = 1;
    else v = v * (unsigned)base + (unsigned)d;
  }
  if (range) return -2;
  if (!neg && v > (unsigned long long)LLONG_MAX) return -2;
  if (neg && v > (unsigned long long)LLONG_MAX + 1ULL) return -2;
  *out = neg ? (long long)(0 - v) : (long long)v;
  return 0;
}

int ctl_parse_duration(const char *s, long long *ms) {
  const char *p = s;
  int neg = 0;
  if (*p == '+' || *p == '-') neg = *p++ == '-';
  if (strcmp(p, "0") == 0) {
    *ms = 0;
    return 0;
  }
  if (!*p) return -1;
  double total_ns = 0;
  while (*p) {
    if (!((*p >= '0' && *p <= '9') || *p == '.')) return -1;
    char *end;
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno) return -1;
    p = end;
    static const struct { const char *u; double ns; } units[] = {
        {"ns", 1}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3}, {"ms", 1e6},
        {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
    size_t best = 0, bestlen = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
      size_t l = strlen(units[i].u);
      if (strncmp(p, units[i].u, l) == 0 && l > bestlen) best = i, bestlen = l;
    }
    if (!bestlen) return -1;
    total_ns += v * units[best].ns;
    p += bestlen;
  }
  *ms = (long long)(total_ns / 1e6) * (neg ? -1 : 1);
  return 0;
}

static int parse_bool(const char *s, int *b) {
  static const char *const t[] = {"1", "t", "T", "TRUE", "true", "True"};
  static const char *const f[] = {"0", "f", "F", "FALSE", "false", "False"};
  for (size_t i = 0; i < 6; i++) {
    if (strcmp(s, t[i]) == 0) return *b = 1, 0;
    if (strcmp(s, f[i]) == 0) return *b = 0, 0;
  }
  return -1;
}

static int set_value(const ctl_flag *fl, ctl_flag_val *v, const char *name, const char *value,
                     char *err, size_t errlen) {
  char q[300];
  long long x;
  int rc;
  switch (fl->kind) {
    case CTL_FLAG_BOOL:
      if (parse_bool(value, &v->b) != 0) {
        quote(q, sizeof q, value);
        snprintf(err, errlen, "invalid boolean value %s for -%s: parse error", q, name);
        return -1;
      }
      break;
    case CTL_FLAG_INT:
      rc = parse_int(value, &x);
      if (rc != 0) {
        quote(q, sizeof q, value);
        snprintf(err, errlen, "invalid value %s for flag -%s: %s", q, name,
                 rc == -2 ? "value out of range" : "parse error");
        return -1;
      }
      v->i = x;
      break;
    case CTL_FLAG_STRING:
      v->s = value;
      break;
    case CTL_FLAG_STRING_SLICE: {
      const char **l = realloc(v->list, (v->n_list + 1) * sizeof *l);
      if (!l) {
        snprintf(err, errlen, "out of memory");
        return -1;
      }
      l[v->n_list++] = value;
      v->list = l;
      v->s = value;
      break;
    }
    case CTL_FLAG_DURATION:
      if (ctl_parse_duration(value, &v->ms) != 0) {
        quote(q, sizeof q, value);
        snprintf(err, errlen, "invalid value %s for flag -%s: parse error", q, name);
        return -1;
      }
      break;
  }
  v->set = 1;
  return 0;
}

static void set_defaults(const ctl_flag *flags, size_t n, ctl_flag_val *vals) {
  for (size_t i = 0; i < n; i++) {
    const char *d = flags[i].def ? flags[i].def : "";
    switch (flags[i].kind) {
      case CTL_FLAG_BOOL: vals[i].b = 0; break;
      case CTL_FLAG_INT: vals[i].i = *d ? strtoll(d, NULL, 10) : 0; break;
      case CTL_FLAG_STRING: vals[i].s = d; break;
      case CTL_FLAG_STRING_SLICE: vals[i].s = ""; break;
      case CTL_FLAG_DURATION:
        if (ctl_parse_duration(*d ? d : "0", &vals[i].ms) != 0) vals[i].ms = 0;
        break;
    }
  }
}

int ctl_flags_parse(const ctl_flag *flags, size_t n, int argc, char **argv, int reorder,
                    int global, ctl_args *a, char *err, size_t errlen) {
  memset(a, 0, sizeof *a);
  a->flags = flags;
  a->n_flags = n;
  a->vals = calloc(n ? n : 1, sizeof *a->vals);
  char **args = calloc((size_t)argc + 1, sizeof *args);
  a->argv = args;
  if (!a->vals || !args) {
    snprintf(err, errlen, "out of memory");
    return CTL_PARSE_ERROR;
  }
  set_defaults(flags, n, a->vals);
  int nargs = 0;
  if (reorder) {
    /* urfave/cli 1.22: known flags (and the value after one) first, then the rest; "--" keeps
     * what follows in place and moves to the front of the rest. */
    char **flagsv = calloc((size_t)argc + 1, sizeof *flagsv);
    char **rest = calloc((size_t)argc + 2, sizeof *rest);
    if (!flagsv || !rest) {
      free(flagsv);
      free(rest);
      snprintf(err, errlen, "out of memory");
      return CTL_PARSE_ERROR;
    }
    int nf = 0, nr = 0, expect_value = 0;
    for (int i = 0; i < argc; i++) {
      char *s = argv[i];
      if (expect_value && !arg_is_flag(flags, n, s)) {
        expect_value = 0;
        flagsv[nf++] = s;
      } else if (strcmp(s, "--") == 0) {
        memmove(rest + 1, rest, (size_t)nr * sizeof *rest);
        rest[0] = s;
        nr++;
        for (int j = i + 1; j < argc; j++) rest[nr++] = argv[j];
        break;
      } else if (arg_is_flag(flags, n, s)) {
        flagsv[nf++] = s;
        expect_value = strchr(s, '=') == NULL;
      } else {
        rest[nr++] = s;
      }
    }
    for (int i = 0; i < nf; i++) args[nargs++] = flagsv[i];
    for (int i = 0; i < nr; i++) args[nargs++] = rest[i];
    free(flagsv);
    free(rest);
  } else {
    for (int i = 0; i < argc; i++) args[nargs++] = argv[i];
  }

  /* Go's flag.FlagSet.Parse. */
  int i = 0, rc = CTL_PARSE_OK;
  while (i < nargs) {
    const char *s = args[i];
    if (strlen(s) < 2 || s[0] != '-') break;
    int minuses = 1;
    if (s[1] == '-') {
      minuses = 2;
      if (s[2] == 0) {
        i++;
        break;
      }
    }
    const char *name = s + minuses;
    if (!*name || name[0] == '-' || name[0] == '=') {
      snprintf(err, errlen, "bad flag syntax: %s", s);
      return CTL_PARSE_ERROR;
    }
    i++;
    size_t len = strcspn(name, "=");
    const char *value = name[len] == '=' ? name + len + 1 : NULL;
    char nm[256];
    snprintf(nm, sizeof nm, "%.*s", (int)(len < 255 ? len : 255), name);
    int k = find_flag(flags, n, name, len);
    if (k < 0) {
      if (is_help(name, len)) {
        rc = CTL_PARSE_HELP;
        continue;
      }
      if (global && is_version(name, len)) {
        if (rc == CTL_PARSE_OK) rc = CTL_PARSE_VERSION;
        continue;
      }
      snprintf(err, errlen, "flag provided but not defined: -%s", nm);
      return CTL_PARSE_ERROR;
    }
    if (flags[k].kind == CTL_FLAG_BOOL && !value) {
      a->vals[k].b = 1;
      a->vals[k].set = 1;
      continue;
    }
    if (!value) {
      if (i >= nargs) {
        snprintf(err, errlen, "flag needs an argument: -%s", nm);
        return CTL_PARSE_ERROR;
      }
      value = args[i++];
    }
    if (set_value(&flags[k], &a->vals[k], nm, value, err, errlen) != 0) return CTL_PARSE_ERROR;
  }
  int out = 0;
  for (; i < nargs; i++) args[out++] = args[i];
  args[out] = NULL;
  a->argc = out;
  return rc;
}

void ctl_args_free(ctl_args *a) {
  for (size_t i = 0; a->vals && i < a->n_flags; i++) free(a->vals[i].list);
  free(a->vals);
  free(a->argv);
  memset(a, 0, sizeof *a);
}

/* urfave/cli's placeholder: the text between the first pair of backquotes of the usage. */
static void placeholder(const char *usage, char *ph, size_t phn, char *use, size_t usen) {
  const char *a = strchr(usage, '`');
  const char *b = a ? strchr(a + 1, '`') : NULL;
  if (!a || !b) {
    snprintf(ph, phn, "value");
    snprintf(use, usen, "%s", usage);
    return;
  }
  snprintf(ph, phn, "%.*s", (int)(b - a - 1), a + 1);
  snprintf(use, usen, "%.*s%.*s%s", (int)(a - usage), usage, (int)(b - a - 1), a + 1, b + 1);
}

/* "--ttl value, -t value" as urfave/cli prints a flag's names. */
static void flag_names(const ctl_flag *fl, char *out, size_t n) {
  char ph[64], use[512];
  placeholder(fl->usage, ph, sizeof ph, use, sizeof use);
  size_t k = 0;
  const char *p = fl->names;
  int first = 1;
  out[0] = 0;
  while (*p && k + 1 < n) {
    while (*p == ' ' || *p == ',') p++;
    const char *e = p;
    while (*e && *e != ',' && *e != ' ') e++;
    if (e == p) break;
    size_t len = (size_t)(e - p);
    k += (size_t)snprintf(out + k, n - k, "%s%s%.*s%s%s", first ? "" : ", ", len == 1 ? "-" : "--",
                          (int)len, p, fl->kind == CTL_FLAG_BOOL ? "" : " ",
                          fl->kind == CTL_FLAG_BOOL ? "" : ph);
    if (k >= n) k = n - 1;
    first = 0;
    p = e;
  }
}

void ctl_flags_help(FILE *f, const ctl_flag *flags, size_t n, int trailer) {
  size_t width = 0;
  char names[256];
  for (size_t i = 0; i < n; i++) {
    flag_names(&flags[i], names, sizeof names);
    if (strlen(names) > width) width = strlen(names);
  }
  for (size_t i = 0; i < n; i++) {
    char ph[64], use[512];
    flag_names(&flags[i], names, sizeof names);
    placeholder(flags[i].usage, ph, sizeof ph, use, sizeof use);
    fprintf(f, "   %-*s  %s", (int)width, names, use);
    const char *d = flags[i].def ? flags[i].def : "";
    if (flags[i].kind == CTL_FLAG_INT || flags[i].kind == CTL_FLAG_DURATION)
      fprintf(f, " (default: %s)", *d ? d : "0");
    else if (flags[i].kind == CTL_FLAG_STRING && *d)
      fprintf(f, " (default: \"%s\")", d);
    fputc('\n', f);
  }
  if (trailer) fputs("   \n", f);
}

const ctl_flag_val *ctl_arg(const ctl_args *a, const char *name) {
  int k = find_flag(a->flags, a->n_flags, name, strlen(name));
  return k >= 0 ? &a->vals[k] : NULL;
}

int ctl_arg_bool(const ctl_args *a, const char *name) {
  const ctl_flag_val *v = ctl_arg(a, name);
  return v ? v->b : 0;
}

long long ctl_arg_int(const ctl_args *a, const char *name) {
  const ctl_flag_val *v = ctl_arg(a, name);
  return v ? v->i : 0;
}

const char *ctl_arg_str(const ctl_args *a, const char *name) {
  const ctl_flag_val *v = ctl_arg(a, name);
  return v && v->s ? v->s : "";
}
