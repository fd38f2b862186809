/* lin_json: the JSON-lines history format (tests/lin/README.md) read with yajl's tree parser and
 * written with yajl_gen, so keys and values are escaped properly both ways. */
#include "tests/lin/lin.h"

#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>
#include <yajl/yajl_tree.h>

static bool lin_json_uint(yajl_val v, uint64_t *out) {
  if (!YAJL_IS_INTEGER(v) || YAJL_GET_INTEGER(v) < 0) return false;
  *out = (uint64_t)YAJL_GET_INTEGER(v);
  return true;
}

static bool lin_json_time(yajl_val v, double *out) {
  if (YAJL_IS_INTEGER(v)) {
    *out = (double)YAJL_GET_INTEGER(v);
    return true;
  }
  if (YAJL_IS_DOUBLE(v)) {
    *out = YAJL_GET_DOUBLE(v);
    return true;
  }
  return false;
}

static int lin_json_lookup(const char *name, const char *const *names, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(name, names[i]) == 0) return (int)i;
  return -1;
}

/* Fills op from the object root; strings point into root. Returns NULL or an error text. */
static const char *lin_json_fields(yajl_val root, lin_op *op) {
  static const char *const kinds[] = {"put", "get", "cas", "delete", "cad"};
  static const char *const results[] = {"ok", "failed", "not-found", "unknown"};
  bool have_op = false, have_result = false, have_invoke = false, have_complete = false;
  if (!YAJL_IS_OBJECT(root)) return "not a JSON object";
  for (size_t i = 0; i < root->u.object.len; i++) {
    const char *k = root->u.object.keys[i];
    yajl_val v = root->u.object.values[i];
    if (strcmp(k, "client") == 0) {
      if (!lin_json_uint(v, &op->client)) return "client must be a non-negative integer";
    } else if (strcmp(k, "key") == 0) {
      if (!YAJL_IS_STRING(v)) return "key must be a string";
      op->key = YAJL_GET_STRING(v);
    } else if (strcmp(k, "op") == 0) {
      int x = YAJL_IS_STRING(v) ? lin_json_lookup(YAJL_GET_STRING(v), kinds, 5) : -1;
      if (x < 0) return "op must be one of put, get, cas, delete, cad";
      op->kind = (uint8_t)x;
      have_op = true;
    } else if (strcmp(k, "value") == 0) {
      if (!YAJL_IS_STRING(v)) return "value must be a string";
      op->value = YAJL_GET_STRING(v);
    } else if (strcmp(k, "prevValue") == 0) {
      if (!YAJL_IS_STRING(v)) return "prevValue must be a string";
      op->prev_value = YAJL_GET_STRING(v);
    } else if (strcmp(k, "prevIndex") == 0) {
      if (!lin_json_uint(v, &op->prev_index)) return "prevIndex must be a non-negative integer";
      op->has_prev_index = true;
    } else if (strcmp(k, "prevExist") == 0) {
      if (!YAJL_IS_TRUE(v) && !YAJL_IS_FALSE(v)) return "prevExist must be true or false";
      op->prev_exist = YAJL_IS_TRUE(v) ? 1 : 0;
    } else if (strcmp(k, "result") == 0) {
      int x = YAJL_IS_STRING(v) ? lin_json_lookup(YAJL_GET_STRING(v), results, 4) : -1;
      if (x < 0) return "result must be one of ok, failed, not-found, unknown";
      op->result = (uint8_t)x;
      have_result = true;
    } else if (strcmp(k, "index") == 0) {
      if (!lin_json_uint(v, &op->index)) return "index must be a non-negative integer";
      op->has_index = true;
    } else if (strcmp(k, "invoke") == 0) {
      if (!lin_json_time(v, &op->invoke)) return "invoke must be a number";
      have_invoke = true;
    } else if (strcmp(k, "complete") == 0) {
      if (YAJL_IS_NULL(v)) continue;
      if (!lin_json_time(v, &op->complete)) return "complete must be a number or null";
      have_complete = true;
    } /* other fields (notes, node names) are allowed and ignored */
  }
  if (!op->key) return "missing key";
  if (!have_op) return "missing op";
  if (!have_result) return "missing result";
  if (!have_invoke) return "missing invoke";
  if (!have_complete && op->result != LIN_UNKNOWN) return "missing complete";
  return NULL;
}

int lin_history_parse_line(lin_history *h, const char *line, size_t len, uint64_t line_no,
                           char *err, size_t errlen) {
  char *text = malloc(len + 1);
  if (!text) {
    snprintf(err, errlen, "line %llu: out of memory", (unsigned long long)line_no);
    return -1;
  }
  memcpy(text, line, len);
  text[len] = '\0';
  char perr[256] = "";
  yajl_val root = yajl_tree_parse(text, perr, sizeof perr);
  free(text);
  if (!root) {
    for (char *p = perr; *p; p++)
      if (*p == '\n') *p = ' ';
    snprintf(err, errlen, "line %llu: bad JSON: %s", (unsigned long long)line_no, perr);
    return -1;
  }
  lin_op op = {0};
  op.prev_exist = -1;
  op.id = line_no;
  const char *why = lin_json_fields(root, &op);
  int rc = 0;
  char aerr[128];
  if (why) {
    snprintf(err, errlen, "line %llu: %s", (unsigned long long)line_no, why);
    rc = -1;
  } else if (lin_history_add(h, &op, aerr, sizeof aerr) != 0) {
    snprintf(err, errlen, "line %llu: %s", (unsigned long long)line_no, aerr);
    rc = -1;
  }
  yajl_tree_free(root);
  return rc;
}

int lin_history_read(lin_history *h, FILE *f, char *err, size_t errlen) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  uint64_t no = 0;
  int rc = 0;
  while ((n = getline(&line, &cap, f)) >= 0) {
    no++;
    size_t i = 0;
    while (i < (size_t)n && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
                             line[i] == '\n'))
      i++;
    if (i == (size_t)n || line[i] == '#') continue;
    if (lin_history_parse_line(h, line, (size_t)n, no, err, errlen) != 0) {
      rc = -1;
      break;
    }
  }
  if (rc == 0 && ferror(f)) {
    snprintf(err, errlen, "read error");
    rc = -1;
  }
  free(line);
  return rc;
}

static void lin_gen_str(yajl_gen g, const char *s) {
  yajl_gen_string(g, (const unsigned char *)s, strlen(s));
}

static void lin_gen_num(yajl_gen g, double t) {
  if (t == (double)(long long)t)
    yajl_gen_integer(g, (long long)t);
  else
    yajl_gen_double(g, t);
}

int lin_op_to_json(const lin_op *op, char *buf, size_t len) {
  yajl_gen g = yajl_gen_alloc(NULL);
  if (!g) return -1;
  yajl_gen_map_open(g);
  lin_gen_str(g, "client");
  yajl_gen_integer(g, (long long)op->client);
  lin_gen_str(g, "key");
  lin_gen_str(g, op->key);
  lin_gen_str(g, "op");
  lin_gen_str(g, lin_kind_name(op->kind));
  if (op->value) {
    lin_gen_str(g, "value");
    lin_gen_str(g, op->value);
  }
  if (op->prev_value) {
    lin_gen_str(g, "prevValue");
    lin_gen_str(g, op->prev_value);
  }
  if (op->has_prev_index) {
    lin_gen_str(g, "prevIndex");
    yajl_gen_integer(g, (long long)op->prev_index);
  }
  if (op->prev_exist != -1) {
    lin_gen_str(g, "prevExist");
    yajl_gen_bool(g, op->prev_exist);
  }
  lin_gen_str(g, "result");
  lin_gen_str(g, lin_result_name(op->result));
  if (op->has_index) {
    lin_gen_str(g, "index");
    yajl_gen_integer(g, (long long)op->index);
  }
  lin_gen_str(g, "invoke");
  lin_gen_num(g, op->invoke);
  if (op->result != LIN_UNKNOWN) {
    lin_gen_str(g, "complete");
    lin_gen_num(g, op->complete);
  }
  yajl_gen_map_close(g);
  const unsigned char *out;
  size_t n;
  int rc = -1;
  if (yajl_gen_get_buf(g, &out, &n) == yajl_gen_status_ok && n < len) {
    memcpy(buf, out, n);
    buf[n] = '\0';
    rc = (int)n;
  }
  yajl_gen_free(g);
  return rc;
}
