/* output: etcdctl v2's printResponseKey and the Go-compatible JSON writer behind `-o json`. */
#include "ctl/output.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "proto/v2_json.h"

void ctl_json_string(FILE *out, const char *s) { ctl_json_string_n(out, s, strlen(s)); }

void ctl_json_string_n(FILE *out, const char *s, size_t len) {
  char stackbuf[1024];
  size_t cap = len * 6 + 2;
  char *q = cap <= sizeof stackbuf ? stackbuf : malloc(cap);
  if (!q) {
    fputs("\"\"", out);
    return;
  }
  fwrite(q, 1, proto_v2_go_quote(s, len, q), out);
  if (q != stackbuf) free(q);
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
  ctl_json_string_n(out, n->value, n->value_len);
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

/* A node's value as Go's fmt prints a string: every byte, NUL bytes too. */
static void put_value(FILE *out, const proto_v2_knode *n) {
  if (n && n->value) fwrite(n->value, 1, n->value_len, out);
}

void ctl_print_response(FILE *out, const proto_v2_event *ev, const char *format) {
  const proto_v2_knode *n = ev->node;
  int is_delete = strcmp(ev->action, "delete") == 0;
  if (strcmp(format, "simple") == 0) {
    if (is_delete) fputs("PrevNode.Value: ", out);
    put_value(out, is_delete ? ev->prev_node : n);
    fputc('\n', out);
  } else if (strcmp(format, "extended") == 0) {
    fprintf(out, "Key: %s\nCreated-Index: %" PRIu64 "\nModified-Index: %" PRIu64 "\n",
            n ? n->key : "", n ? n->created_index : 0, n ? n->modified_index : 0);
    if (ev->prev_node) {
      fputs("PrevNode.Value: ", out);
      put_value(out, ev->prev_node);
      fputc('\n', out);
    }
    fprintf(out, "TTL: %" PRId64 "\nIndex: %" PRIu64 "\n", n ? n->ttl : 0, ev->index);
    if (!is_delete) {
      fputc('\n', out);
      put_value(out, n);
      fputc('\n', out);
    }
  } else if (strcmp(format, "json") == 0) {
    ctl_json_event(out, ev);
    fputc('\n', out);
  } else {
    fflush(out);
    fprintf(stderr, "Unsupported output format: %s\n", format);
  }
}
