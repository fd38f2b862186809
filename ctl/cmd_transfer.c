/* cmd_transfer: export, import and du.
 *
 * The export format (one entry per line, parents before children, sorted by key):
 *   {"quorumctl_export":1,"prefix":"/a","entries":[
 *   {"path":"","dir":true},
 *   {"path":"b","value":"1"},
 *   {"path":"d","dir":true,"ttl":100},
 *   {"path":"d/e","value":"x","ttl":40}
 *   ]}
 * path is relative to the exported prefix ("" is the prefix itself), so `import PREFIX` can
 * put the tree anywhere; ttl is the remaining time-to-live at export. Hidden keys (names
 * starting with "_") are not listed by the v2 API and so are not exported. */
#include "ctl/cmd_transfer.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/cmd_keys.h"
#include "ctl/export_read.h"
#include "ctl/output.h"
#include "ctl/session.h"

static int get_tree(ctl_ctx *ctx, const char *key, proto_v2_event *ev) {
  return ctl_keys(ctx, "GET", key, "quorum=false&recursive=true&sorted=true", NULL, 0, ev);
}

/* The part of key below base ("" when equal). */
static const char *rel_path(const char *base, const char *key) {
  size_t bl = strlen(base);
  while (bl && base[bl - 1] == '/') bl--;
  if (strncmp(key, base, bl) != 0) return key;
  key += bl;
  while (*key == '/') key++;
  return key;
}

static void export_node(const char *base, const proto_v2_knode *n, int *first) {
  printf("%s{\"path\":", *first ? "" : ",\n");
  *first = 0;
  ctl_json_string(stdout, rel_path(base, n->key));
  if (n->dir) {
    printf(",\"dir\":true");
  } else {
    printf(",\"value\":");
    ctl_json_string_n(stdout, n->value, n->value_len);
  }
  if (n->ttl > 0) printf(",\"ttl\":%" PRId64, n->ttl);
  printf("}");
  for (size_t i = 0; i < n->n_nodes; i++) export_node(base, &n->nodes[i], first);
}

int ctl_cmd_export(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc == 0) return ctl_fail(CTL_EXIT_BAD_ARGS, "prefix required");
  proto_v2_event ev;
  int rc = get_tree(ctx, a->argv[0], &ev);
  if (rc != 0) return rc;
  const proto_v2_knode *root = ev.node;
  const char *base = root && *root->key ? root->key : "/";
  printf("{\"quorumctl_export\":1,\"prefix\":");
  ctl_json_string(stdout, base);
  printf(",\"entries\":[\n");
  int first = 1;
  if (root) export_node(base, root, &first);
  printf("\n]}\n");
  proto_v2_event_free(&ev);
  return 0;
}

/* prefix + "/" + path ("" path = prefix). malloc'd. */
static char *join_key(const char *prefix, const char *path) {
  size_t n = strlen(prefix) + strlen(path) + 3;
  char *s = malloc(n);
  if (!s) return NULL;
  size_t pl = strlen(prefix);
  while (pl && prefix[pl - 1] == '/') pl--;
  if (*path) snprintf(s, n, "%.*s/%s", (int)pl, prefix, path);
  else snprintf(s, n, "%.*s", (int)(pl ? pl : 1), pl ? prefix : "/");
  return s;
}

/* Writes one entry. Returns 0 or the exit code (error printed). */
static int import_entry(ctl_ctx *ctx, const char *key, int dir, const char *value,
                        size_t value_len, long long ttl, int force) {
  proto_v2_buf q = {0}, form = {0};
  proto_v2_buf_add(&q, "", 0);
  proto_v2_buf_add(&form, "", 0);
  char num[32];
  if (ttl > 0) {
    snprintf(num, sizeof num, "%lld", ttl);
    proto_v2_add_param(&form, "ttl", num);
  }
  if (dir) {
    proto_v2_add_param(&q, "dir", "true");
    proto_v2_add_param(&q, "prevExist", "false");
  } else {
    if (!force) proto_v2_add_param(&q, "prevExist", "false");
    proto_v2_add_param_n(&form, "value", value, value_len);
  }
  int rc;
  proto_v2_event ev;
  proto_v2_error e;
  if (q.oom || form.oom) {
    rc = ctl_fail(CTL_EXIT_SERVER_ERROR, "out of memory");
  } else if (dir) {
    rc = ctl_keys_ex(ctx, "PUT", key, q.s, form.s, 0, &ev, &e);
    if (rc == -1) {
      /* An existing directory is fine: make sure it is one. */
      proto_v2_error_free(&e);
      rc = ctl_keys(ctx, "GET", key, "quorum=false&recursive=false&sorted=false", NULL, 0, &ev);
      if (rc == 0) {
        int is_dir = ev.node && ev.node->dir;
        proto_v2_event_free(&ev);
        if (!is_dir) {
          char msg[600];
          snprintf(msg, sizeof msg, "%s exists and is not a directory", key);
          rc = ctl_fail(CTL_EXIT_SERVER_ERROR, msg);
        } else if (force && ttl > 0) {
          proto_v2_buf_free(&q);
          proto_v2_buf_add(&q, "", 0);
          proto_v2_add_param(&q, "dir", "true");
          proto_v2_add_param(&q, "prevExist", "true");
          rc = ctl_keys(ctx, "PUT", key, q.s, form.s, 0, &ev);
          if (rc == 0) proto_v2_event_free(&ev);
        }
      }
    } else if (rc == 0) {
      proto_v2_event_free(&ev);
    }
  } else {
    rc = ctl_keys(ctx, "PUT", key, q.s, form.s, 0, &ev);
    if (rc == 0) proto_v2_event_free(&ev);
  }
  proto_v2_buf_free(&q);
  proto_v2_buf_free(&form);
  return rc;
}

int ctl_cmd_import(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc == 0) return ctl_fail(CTL_EXIT_BAD_ARGS, "prefix required");
  ctl_args none = {0};
  char *text = ctl_arg_or_stdin(&none, 0);
  if (!text) return ctl_fail(CTL_EXIT_BAD_ARGS, "nothing to import on standard input");
  ctl_export_entry *v = NULL;
  size_t n = 0;
  int bad = ctl_export_read(text, &v, &n);
  free(text);
  if (bad) return ctl_fail(CTL_EXIT_BAD_ARGS, "standard input is not a quorumctl export");
  int force = ctl_arg_bool(a, "force");
  size_t keys = 0, dirs = 0;
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < n; i++) {
    const ctl_export_entry *e = &v[i];
    char *key = join_key(a->argv[0], e->path);
    if (!key) {
      rc = ctl_fail(CTL_EXIT_SERVER_ERROR, "out of memory");
      break;
    }
    if (e->dir && strcmp(key, "/") == 0) {
      free(key);
      continue; /* the root always exists */
    }
    rc = import_entry(ctx, key, e->dir, e->dir ? "" : e->value, e->dir ? 0 : e->value_len,
                      e->has_ttl ? e->ttl : 0, force);
    free(key);
    if (rc == 0) {
      if (e->dir) dirs++;
      else keys++;
    }
  }
  ctl_export_free(v, n);
  if (rc == 0) printf("imported %zu keys and %zu directories under %s\n", keys, dirs, a->argv[0]);
  return rc;
}

typedef struct du_count {
  uint64_t keys, dirs, bytes;
} du_count;

static void du_walk(const proto_v2_knode *n, du_count *c, int top) {
  if (n->dir) {
    if (!top) c->dirs++;
  } else {
    c->keys++;
    c->bytes += n->value_len;
  }
  for (size_t i = 0; i < n->n_nodes; i++) du_walk(&n->nodes[i], c, 0);
}

int ctl_cmd_du(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  const char *key = a->argc ? a->argv[0] : "/";
  proto_v2_event ev;
  int rc = get_tree(ctx, key, &ev);
  if (rc != 0) return rc;
  du_count c = {0};
  if (ev.node) du_walk(ev.node, &c, 1);
  const char *name = ev.node && *ev.node->key ? ev.node->key : "/";
  if (strcmp(ctx->output, "json") == 0) {
    printf("{\"key\":");
    ctl_json_string(stdout, name);
    printf(",\"keys\":%" PRIu64 ",\"dirs\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n", c.keys, c.dirs,
           c.bytes);
  } else {
    printf("%s: %" PRIu64 " keys, %" PRIu64 " dirs, %" PRIu64 " bytes\n", name, c.keys, c.dirs,
           c.bytes);
  }
  proto_v2_event_free(&ev);
  return 0;
}
