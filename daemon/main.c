/* main: quorumd's entry point: flags, start, serve until a signal, stop. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "daemon/config.h"
#include "daemon/log_journal.h"
#include "daemon/notify_systemd.h"
#include "daemon/proxy.h"
#include "daemon/server.h"

extern char **environ;

/* 10k watchers need 10k descriptors: take the hard limit. */
static void raise_fd_limit(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/* --log-outputs: the log is what quorumd writes to stderr; stdout or a file (appended to) takes
 * its place. One output: etcd's default logger (capnslog) takes one too, its zap logger a list.
 * Returns 0, or -1 with a message on stderr. */
static int log_to(const char *outputs) {
  if (!strcmp(outputs, "default") || !strcmp(outputs, "stderr")) return 0;
  if (strchr(outputs, ',') || !*outputs) {
    fprintf(stderr, "quorumd: --log-outputs=%s: quorumd writes its log to one output (default, "
                    "stderr, stdout, systemd/journal or a file's path)\n", outputs);
    return -1;
  }
  if (!strcmp(outputs, "systemd/journal")) { /* (etcd's name for journald) */
    const char *test = getenv("QUORUMD_TEST_HOOKS"), *path = getenv("QUORUMD_TEST_JOURNAL");
    char err[256];
    int fd = log_journal_stream(test && !strcmp(test, "1") && path ? path : LOG_JOURNAL_STDOUT,
                                "quorumd", err, sizeof err);
    if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
      fprintf(stderr, "quorumd: --log-outputs=systemd/journal: %s\n",
              fd < 0 ? err : strerror(errno));
      if (fd >= 0) close(fd);
      return -1;
    }
    close(fd);
    return 0;
  }
  int fd = !strcmp(outputs, "stdout") ? dup(STDOUT_FILENO)
                                      : open(outputs, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0 || dup2(fd, STDERR_FILENO) < 0) {
    fprintf(stderr, "quorumd: cannot open the log output %s: %s\n", outputs, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  return 0;
}

/* --proxy on|readonly (or a discovery fallback): forwards until a signal. Returns the exit code. */
static int run_proxy(config *cfg, uv_loop_t *loop) {
  char err[1024];
  proxy *p;
  if (proxy_start(&p, cfg, loop, err, sizeof err)) {
    fprintf(stderr, "quorumd: %s\n", err);
    return 1;
  }
  for (size_t i = 0; i < cfg->listen_client.n; i++)
    fprintf(stderr, "quorumd: proxy (%s) serving client requests on %s\n", cfg->proxy,
            cfg->listen_client.url[i]);
  notify_systemd_ready(); /* listening: etcd's proxy notifies here too */
  uv_run(loop, UV_RUN_DEFAULT);
  proxy_free(p);
  return 0;
}

int main(int argc, char **argv) {
  config cfg;
  char err[1024];
  if (config_parse(&cfg, argc, argv, environ, err, sizeof err)) {
    fprintf(stderr, "quorumd: %s\nRun 'quorumd --help' for usage.\n", err);
    config_free(&cfg);
    return 2;
  }
  if (cfg.show_help) {
    fputs(config_usage(), stdout);
    config_free(&cfg);
    return 0;
  }
  if (cfg.show_version) {
    printf("quorumd Version: %s\nAPI: etcd v2 keys (compatible with etcd 3.4.23 clients)\n", QUORUM_VERSION);
    config_free(&cfg);
    return 0;
  }
  if (log_to(cfg.log_outputs) != 0) {
    config_free(&cfg);
    return 1;
  }
  for (const char *l = cfg.env_notes; l && *l;) { /* as etcd logs them */
    const char *nl = strchr(l, '\n');
    int n = nl ? (int)(nl - l) : (int)strlen(l);
    fprintf(stderr, "quorumd: %.*s\n", n, l);
    l += n + (nl != NULL);
  }
  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  uv_loop_t loop;
  uv_loop_init(&loop);
  if (strcmp(cfg.proxy, "off")) { /* --proxy on|readonly: no member here, only forwarding */
    int rc = run_proxy(&cfg, &loop);
    uv_loop_close(&loop);
    config_free(&cfg);
    return rc;
  }
  server s;
  memset(&s, 0, sizeof s);
  int rc = server_start(&s, &cfg, &loop, err, sizeof err);
  if (rc == -EUSERS && !strcmp(cfg.discovery_fallback, "proxy")) {
    /* etcd's --discovery-fallback=proxy: a member too many serves the cluster as a proxy */
    fprintf(stderr, "quorumd: %s: falling back to proxy of %s\n", err, s.fallback_cluster);
    free(cfg.initial_cluster);
    cfg.initial_cluster = s.fallback_cluster;
    free(cfg.proxy);
    cfg.proxy = strdup("on");
    rc = cfg.proxy ? run_proxy(&cfg, &loop) : 1;
    uv_loop_close(&loop);
    config_free(&cfg);
    return rc;
  }
  if (rc) {
    free(s.fallback_cluster);
    fprintf(stderr, "quorumd: %s\n", err);
    uv_loop_close(&loop);
    config_free(&cfg);
    return 1;
  }
  fprintf(stderr, "quorumd: member %s (%s) of cluster %s, data dir %s\n", s.id_hex, cfg.name,
          s.cluster_hex, cfg.data_dir);
  for (size_t i = 0; i < cfg.listen_client.n; i++)
    fprintf(stderr, "quorumd: ready to serve client requests on %s\n", cfg.listen_client.url[i]);
  uv_run(&loop, UV_RUN_DEFAULT);
  server_stop(&s);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  config_free(&cfg);
  return 0;
}
