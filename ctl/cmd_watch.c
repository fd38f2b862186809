/* cmd_watch: watch (print each event, once or --forever) and exec-watch (run a command per
 * event with ETCD_WATCH_* set), both as a chain of wait=true requests where the next waitIndex
 * is the last event's modifiedIndex + 1, like etcd's Go client. */
#include "ctl/cmd_watch.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctl/output.h"
#include "ctl/session.h"

typedef struct watcher {
  const char *key;
  uint64_t next; /* waitIndex; 0 = from now */
  int recursive;
} watcher;

static void on_sigint(int sig) {
  (void)sig;
  _exit(0);
}

static void exit_on_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, NULL);
}

static int watch_next(ctl_ctx *ctx, watcher *w, proto_v2_event *ev) {
  char q[96];
  snprintf(q, sizeof q, "recursive=%s&wait=true&waitIndex=%" PRIu64,
           w->recursive ? "true" : "false", w->next);
  int rc = ctl_keys(ctx, "GET", w->key, q, NULL, 1, ev);
  if (rc == 0) w->next = (ev->node ? ev->node->modified_index : 0) + 1;
  return rc;
}

int ctl_cmd_watch(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc == 0) return ctl_fail(CTL_EXIT_BAD_ARGS, "key required");
  long long after = ctl_arg_int(a, "after-index");
  watcher w = {a->argv[0], after > 0 ? (uint64_t)after + 1 : 0, ctl_arg_bool(a, "recursive")};
  int forever = ctl_arg_bool(a, "forever");
  exit_on_sigint();
  for (;;) {
    proto_v2_event ev;
    int rc = watch_next(ctx, &w, &ev);
    if (rc != 0) return rc;
    if (ev.node && ev.node->dir) {
      proto_v2_event_free(&ev);
      continue;
    }
    if (w.recursive) printf("[%s] %s\n", ev.action, ev.node ? ev.node->key : "");
    ctl_print_response(stdout, &ev, ctx->output);
    fflush(stdout);
    proto_v2_event_free(&ev);
    if (!forever) return 0;
  }
}

/* exec.LookPath: the path to run, or NULL (malloc'd). */
static char *look_path(const char *file) {
  struct stat st;
  if (strchr(file, '/')) {
    if (stat(file, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111)) return strdup(file);
    return NULL;
  }
  const char *path = getenv("PATH");
  if (!path) return NULL;
  const char *p = path;
  for (;;) {
    const char *e = strchr(p, ':');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    size_t n = len + strlen(file) + 2;
    char *cand = malloc(n);
    if (!cand) return NULL;
    snprintf(cand, n, "%.*s/%s", (int)(len ? len : 1), len ? p : ".", file);
    if (stat(cand, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111)) return cand;
    free(cand);
    if (!e) return NULL;
    p = e + 1;
  }
}

/* Starts argv in the background with the event in its environment, without waiting for it
 * (a double fork: the command is not our child, so nothing is left to reap). */
static int spawn_for_event(char **argv, const char *path, const proto_v2_event *ev) {
  char idx[32];
  snprintf(idx, sizeof idx, "%" PRIu64, ev->node ? ev->node->modified_index : 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    pid_t pid2 = fork();
    if (pid2 != 0) _exit(pid2 < 0 ? 1 : 0);
    setenv("ETCD_WATCH_ACTION", ev->action, 1);
    setenv("ETCD_WATCH_MODIFIED_INDEX", idx, 1);
    setenv("ETCD_WATCH_KEY", ev->node ? ev->node->key : "", 1);
    setenv("ETCD_WATCH_VALUE", ev->node ? ev->node->value : "", 1);
    signal(SIGINT, SIG_DFL);
    execv(path, argv);
    fprintf(stderr, "fork/exec %s: cannot run", path);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0) {
  }
  return 0;
}

int ctl_cmd_exec_watch(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  if (a->argc < 2) return ctl_fail(CTL_EXIT_BAD_ARGS, "key and command to exec required");
  /* etcdctl: with a "--" after the key the command follows it; without one the key is the
   * last argument (what urfave/cli leaves when no flag came before). */
  int sep = 0;
  for (int i = 1; i < a->argc; i++)
    if (strcmp(a->argv[i], "--") == 0) {
      sep = 1;
      break;
    }
  const char *key;
  char **cmdv;
  int cmdc;
  if (sep) {
    key = a->argv[0];
    cmdv = a->argv + 2;
    cmdc = a->argc - 2;
  } else {
    key = a->argv[a->argc - 1];
    cmdv = a->argv;
    cmdc = a->argc - 1;
  }
  if (cmdc <= 0) {
    /* Go would index past the end here and panic; say it plainly instead. */
    return ctl_fail(CTL_EXIT_BAD_ARGS, "key and command to exec required");
  }
  char **argv = calloc((size_t)cmdc + 1, sizeof *argv);
  if (!argv) return ctl_fail(CTL_EXIT_BAD_ARGS, "out of memory");
  for (int i = 0; i < cmdc; i++) argv[i] = cmdv[i];
  long long after = ctl_arg_int(a, "after-index");
  watcher w = {key, after > 0 ? (uint64_t)after + 1 : 0, ctl_arg_bool(a, "recursive")};
  exit_on_sigint();
  int rc = 0;
  for (;;) {
    proto_v2_event ev;
    rc = watch_next(ctx, &w, &ev);
    if (rc != 0) break;
    if (ev.node && ev.node->dir) {
      fprintf(stderr, "Ignored dir %s change\n", ev.node->key);
      proto_v2_event_free(&ev);
      continue;
    }
    char *path = look_path(argv[0]);
    if (!path) {
      fflush(stdout);
      fprintf(stderr, "exec: \"%s\": executable file not found in $PATH", argv[0]);
      proto_v2_event_free(&ev);
      rc = 1;
      break;
    }
    spawn_for_event(argv, path, &ev);
    free(path);
    proto_v2_event_free(&ev);
  }
  free(argv);
  return rc;
}
