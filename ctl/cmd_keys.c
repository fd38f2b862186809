/* cmd_keys: set, get, mk, mkdir, setdir, update, updatedir, rm, rmdir and ls, with the same
 * requests, output and exit codes as etcdctl v2. */
#include "ctl/cmd_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl/output.h"
#include "ctl/session.h"

char *ctl_arg_or_stdin(const ctl_args *a, int i) {
  if (i < a->argc) return strdup(a->argv[i]);
  proto_v2_buf b = {0};
  char chunk[4096];
  size_t n;
  while ((n = fread(chunk, 1, sizeof chunk, stdin)) > 0) proto_v2_buf_add(&b, chunk, n);
  if (ferror(stdin) || b.oom || b.len == 0) {
    proto_v2_buf_free(&b);
    return NULL;
  }
  return b.s;
}

static void add_u64(proto_v2_buf *b, const char *name, unsigned long long v) {
  char num[32];
  snprintf(num, sizeof num, "%llu", v);
  proto_v2_add_param(b, name, num);
}

/* What one write command sends: a PUT/POST/DELETE with these parts. */
typedef struct write_req {
  const char *method;
  const char *key;
  const char *value;     /* NULL = no "value" in the form */
  long long ttl;         /* > 0: "ttl" in the form */
  int dir;
  const char *prev_exist; /* NULL, "true", "false" */
  const char *prev_value; /* "" = none */
  long long prev_index;   /* 0 = none */
  int recursive;
  int with_form;          /* send a (possibly empty) form body */
} write_req;

static int do_write(ctl_ctx *ctx, const write_req *w, proto_v2_event *ev) {
  proto_v2_buf q = {0}, form = {0};
  proto_v2_buf_add(&q, "", 0);
  proto_v2_buf_add(&form, "", 0);
  if (w->dir) proto_v2_add_param(&q, "dir", "true");
  if (w->prev_value && *w->prev_value) proto_v2_add_param(&q, "prevValue", w->prev_value);
  if (w->prev_index) add_u64(&q, "prevIndex", (unsigned long long)w->prev_index);
  if (w->prev_exist) proto_v2_add_param(&q, "prevExist", w->prev_exist);
  if (w->recursive) proto_v2_add_param(&q, "recursive", "true");
  if (w->ttl > 0) add_u64(&form, "ttl", (unsigned long long)w->ttl);
  if (w->value) proto_v2_add_param(&form, "value", w->value);
  int rc;
  if (q.oom || form.oom) rc = ctl_fail(CTL_EXIT_SERVER_ERROR, "out of memory");
  else rc = ctl_keys(ctx, w->method, w->key, q.s, w->with_form ? form.s : NULL, 0, ev);
  proto_v2_buf_free(&q);
  proto_v2_buf_free(&form);
  return rc;
}

static int finish(ctl_ctx *ctx, int rc, proto_v2_event *ev, int print) {
  if (rc == 0 && print) ctl_print_response(stdout, ev, ctx->output);
  if (rc == 0) proto_v2_event_free(ev);
  return rc;
}

/* set / mk / update: key and value, then one write. */
static int key_value_write(ctl_ctx *ctx, ctl_args *a, write_req *w) {
  if (a->argc == 0) return ctl_fail(CTL_EXIT_BAD_ARGS, "key required");
  char *value = ctl_arg_or_stdin(a, 1);
  if (!value) return ctl_fail(CTL_EXIT_BAD_ARGS, "value required");
  w->key = a->argv[0];
  w->value = value;
  w->ttl = ctl_arg_int(a, "ttl");
  w->with_form = 1;
  proto_v2_event ev;
  int rc = do_write(ctx, w, &ev);
  free(value);
  return finish(ctx, rc, &ev, 1);
}

int ctl_cmd_set(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  write_req w = {.method = "PUT"};
  w.prev_value = ctl_arg_str(a, "swap-with-value");
  w.prev_index = ctl_arg_int(a, "swap-with-index");
  return key_value_write(ctx, a, &w);
}

int ctl_cmd_mk(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  write_req w = {.method = "PUT", .prev_exist = "false"};
  if (ctl_arg_bool(a, "in-order")) {
    w.method = "POST";
    w.prev_exist = NULL;
  }
  return key_value_write(ctx, a, &w);
}

int ctl_cmd_update(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  write_req w = {.method = "PUT", .prev_exist = "true"};
  return key_value_write(ctx, a, &w);
}

/* mkdir / setdir / updatedir: a directory write that prints only outside simple output. */
static int dir_write(ctl_ctx *ctx, ctl_args *a, const char *prev_exist) {
  if (a->argc == 0) return ctl_fail(CTL_EXIT_BAD_ARGS, "key required");
  write_req w = {.method = "PUT", .key = a->argv[0], .dir = 1, .prev_exist = prev_exist,
                 .with_form = 1};
  w.ttl = ctl_arg_int(a, "ttl");
  proto_v2_event ev;
  int rc = do_write(ctx, &w, &ev);
  return finish(ctx, rc, &ev, strcmp(ctx->output, "simple") != 0);
}

int ctl_cmd_mkdir(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return dir_write(ctx, a, "false");
}

int ctl_cmd_setdir(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return dir_write(ctx, a, NULL);
}

int ctl_cmd_updatedir(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  return dir_write(ctx, a, "true");
}

/* rm / rmdir: printed unless a directory went away in simple output. */
static int delete_write(ctl_ctx *ctx, ctl_args *a, write_req *w) {
  if (a->argc == 0) return ctl_fail(CTL_EXIT_BAD_ARGS, "key required");
  w->method = "DELETE";
  w->key = a->argv[0];
  proto_v2_event ev;
  int rc = do_write(ctx, w, &ev);
  int print = rc == 0 && (!(ev.node && ev.node->dir) || strcmp(ctx->output, "simple") != 0);
  return finish(ctx, rc, &ev, print);
}

int ctl_cmd_rm(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  write_req w = {0};
  w.prev_value = ctl_arg_str(a, "with-value");
  w.prev_index = ctl_arg_int(a, "with-index");
  w.dir = ctl_arg_bool(a, "dir");
  w.recursive = ctl_arg_bool(a, "recursive");
  return delete_write(ctx, a, &w);
}

int ctl_cmd_rmdir(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  write_req w = {.dir = 1};
  return delete_write(ctx, a, &w);
}

/* GET with etcd's client's parameters. */
static int do_get(ctl_ctx *ctx, const char *key, int recursive, int sorted, int quorum,
                  proto_v2_event *ev) {
  char q[96];
  snprintf(q, sizeof q, "quorum=%s&recursive=%s&sorted=%s", quorum ? "true" : "false",
           recursive ? "true" : "false", sorted ? "true" : "false");
  return ctl_keys(ctx, "GET", key, q, NULL, 0, ev);
}

int ctl_cmd_get(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc == 0) return ctl_fail(CTL_EXIT_BAD_ARGS, "key required");
  proto_v2_event ev;
  int rc = do_get(ctx, a->argv[0], 0, ctl_arg_bool(a, "sort"), ctl_arg_bool(a, "quorum"), &ev);
  if (rc != 0) return rc;
  if (ev.node && ev.node->dir) {
    fflush(stdout);
    fprintf(stderr, "%s: is a directory\n", ev.node->key);
    proto_v2_event_free(&ev);
    return 1;
  }
  return finish(ctx, 0, &ev, 1);
}

static void ls_print(const proto_v2_knode *n, int slash) {
  if (n->dir && slash) printf("%s/\n", n->key);
  else printf("%s\n", n->key);
  for (size_t i = 0; i < n->n_nodes; i++) ls_print(&n->nodes[i], slash);
}

int ctl_cmd_ls(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  const char *key = a->argc ? a->argv[0] : "/";
  proto_v2_event ev;
  int rc = do_get(ctx, key, ctl_arg_bool(a, "recursive"), ctl_arg_bool(a, "sort"),
                  ctl_arg_bool(a, "quorum"), &ev);
  if (rc != 0) return rc;
  if (strcmp(ctx->output, "simple") == 0) {
    if (ev.node) {
      if (!ev.node->dir) printf("%s\n", ev.node->key);
      for (size_t i = 0; i < ev.node->n_nodes; i++) ls_print(&ev.node->nodes[i], ctl_arg_bool(a, "p"));
    }
    proto_v2_event_free(&ev);
    return 0;
  }
  return finish(ctx, 0, &ev, 1);
}
