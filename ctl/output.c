/* output: etcdctl v2's printResponseKey and the Go-compatible JSON writer behind `-o json`. */
#include "ctl/output.h"

#include <inttypes.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at p (0 if invalid). */
static size_t utf8_len(const unsigned char *p) {
  unsigned c = p[0];
  if (c < 0x80) return 1;
  size_t n;
  unsigned min;
  if ((c & 0xe0) == 0xc0) n = 2, min = 0x80, c &= 0x1f;
  else if ((c & 0xf0) == 0xe0) n = 3, min = 0x800, c &= 0x0f;
  else if ((c & 0xf8) == 0xf0) n = 4, min = 0x10000, c &= 0x07;
  else return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3f);
  }
  if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
  return n;
}

void ctl_json_string(FILE *out, const char *s) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  fputc('"', out);
  while (*p) {
    unsigned c = *p;
    if (c < 0x80) {
      if (c == '"' || c == '\\') fprintf(out, "\\%c", c);
      else if (c == '\n') fputs("\\n", out);
      else if (c == '\r') fputs("\\r", out);
      else if (c == '\t') fputs("\\t", out);
      else if (c < 0x20 || c == '<' || c == '>' || c == '&')
        fprintf(out, "\\u00%c%c", hex[c >> 4], hex[c & 15]);
      else fputc((int)c, out);
      p++;
      continue;
    }
    size_t n = utf8_len(p);
    if (n == 0) {
      fputs("\\ufffd", out);
      p++;
      continue;
    }
    if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
      fprintf(out, "\\u202%c", p[2] == 0xa8 ? '8' : '9');
    } else {
      fwrite(p, 1, n, out);
    }
    p += n;
  }
  fputc('"', out);
}

void ctl_json_node(FILE *out, const proto_v2_knode *n) {
  if (!n) {
    fputs("null", out);
    return;
  }
  fputs("{\"key\":", out);
  ctl_json_string(out, n->key);
  if (n->dir) fputs(",\"dir\":true", out);
  fputs(",\"value\":", out);
  ctl_json_string(out, n->value);
  fputs(",\"nodes\":", out);
  if (!n->has_nodes) {
    fputs("null", out);
  } else {
    fputc('[', out);
    for (size_t i = 0; i < n->n_nodes; i++) {
      if (i) fputc(',', out);
      ctl_json_node(out, &n->nodes[i]);
    }
    fputc(']', out);
  }
  fprintf(out, ",\"createdIndex\":%" PRIu64 ",\"modifiedIndex\":%" PRIu64, n->created_index,
          n->modified_index);
  if (n->expiration) {
    fputs(",\"expiration\":", out);
    ctl_json_string(out, n->expiration);
  }
  if (n->ttl) fprintf(out, ",\"ttl\":%" PRId64, n->ttl);
  fputc('}', out);
}

void ctl_json_event(FILE *out, const proto_v2_event *ev) {
  fputs("{\"action\":", out);
  ctl_json_string(out, ev->action);
  fputs(",\"node\":", out);
  ctl_json_node(out, ev->node);
  fputs(",\"prevNode\":", out);
  ctl_json_node(out, ev->prev_node);
  fputc('}', out);
}

static const char *node_value(const proto_v2_knode *n) { return n ? n->value : ""; }

void ctl_print_response(FILE *out, const proto_v2_event *ev, const char *format) {
  const proto_v2_knode *n = ev->node;
  int is_delete = strcmp(ev->action, "delete") == 0;
  if (strcmp(format, "simple") == 0) {
    if (!is_delete) fprintf(out, "%s\n", node_value(n));
    else fprintf(out, "PrevNode.Value: %s\n", node_value(ev->prev_node));
  } else if (strcmp(format, "extended") == 0) {
    fprintf(out, "Key: %s\nCreated-Index: %" PRIu64 "\nModified-Index: %" PRIu64 "\n",
            n ? n->key : "", n ? n->created_index : 0, n ? n->modified_index : 0);
    if (ev->prev_node) fprintf(out, "PrevNode.Value: %s\n", ev->prev_node->value);
    fprintf(out, "TTL: %" PRId64 "\nIndex: %" PRIu64 "\n", n ? n->ttl : 0, ev->index);
    if (!is_delete) fprintf(out, "\n%s\n", node_value(n));
  } else if (strcmp(format, "json") == 0) {
    ctl_json_event(out, ev);
    fputc('\n', out);
  } else {
    fflush(out);
    fprintf(stderr, "Unsupported output format: %s\n", format);
  }
}
