/* quorumfs: mounts an etcd v2 key tree (quorumd or etcd) as a filesystem.
 *
 *   quorumfs mount ENDPOINTS MOUNTPOINT [--prefix /app] [-o opt,...] [-f] [-d]
 *
 * ENDPOINTS is a comma-separated list of client URLs (tried in turn). Our own -o options:
 * attr_timeout=SECONDS (kernel attr/entry cache, default 1), op_timeout=SECONDS (bound of one
 * operation across all endpoints; an unreachable cluster gives EIO after it, default 5); the
 * other -o options go to FUSE (allow_other, ro, ...). -f stays in the foreground, -d prints
 * FUSE's debug log. Unmount with fusermount3 -u MOUNTPOINT (or SIGTERM/SIGINT). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/fs_handle.h"
#include "fs/fs_ops.h"
#include "fs/fs_store.h"
#include "fs/fs_watch.h"

typedef struct fs_cli {
  const char *endpoints, *mountpoint;
  const char *prefix;
  char *fuse_opts; /* comma-separated, for FUSE */
  int foreground, debug;
  double attr_timeout, op_timeout;
} fs_cli;

static void usage(FILE *out) {
  fprintf(out,
          "usage: quorumfs mount ENDPOINTS MOUNTPOINT [--prefix KEY] [-o OPT[,OPT...]] [-f] [-d]\n"
          "  ENDPOINTS        comma-separated client URLs, e.g. http://127.0.0.1:2379\n"
          "  --prefix KEY     mount this directory of the key tree (default /)\n"
          "  -o attr_timeout=S  kernel attribute cache in seconds (default 1)\n"
          "  -o op_timeout=S    give up (EIO) after S seconds without the cluster (default 5)\n"
          "  -o OPT           other options go to FUSE (allow_other, ro, ...)\n"
          "  -f               stay in the foreground;  -d  FUSE debug output\n"
          "unmount with: fusermount3 -u MOUNTPOINT\n");
}

static int add_fuse_opt(fs_cli *c, const char *opt, size_t n) {
  size_t old = c->fuse_opts ? strlen(c->fuse_opts) : 0;
  char *p = realloc(c->fuse_opts, old + n + 2);
  if (!p) return -1;
  if (old) p[old++] = ',';
  memcpy(p + old, opt, n);
  p[old + n] = 0;
  c->fuse_opts = p;
  return 0;
}

static int parse_seconds(const char *s, double *out) {
  char *end;
  double v = strtod(s, &end);
  if (end == s || *end || v < 0 || v > 86400) return -1;
  *out = v;
  return 0;
}

static int parse_o(fs_cli *c, const char *list) {
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    char opt[256];
    if (n >= sizeof opt) return -1;
    memcpy(opt, p, n);
    opt[n] = 0;
    if (strncmp(opt, "attr_timeout=", 13) == 0) {
      if (parse_seconds(opt + 13, &c->attr_timeout) != 0) return -1;
    } else if (strncmp(opt, "op_timeout=", 11) == 0) {
      if (parse_seconds(opt + 11, &c->op_timeout) != 0 || c->op_timeout < 0.1) return -1;
    } else if (n && add_fuse_opt(c, opt, n) != 0) {
      return -1;
    }
    p += n;
    if (*p == ',') p++;
  }
  return 0;
}

static int parse_args(int argc, char **argv, fs_cli *c) {
  memset(c, 0, sizeof *c);
  c->prefix = "/";
  c->attr_timeout = 1.0;
  c->op_timeout = 5.0;
  if (argc < 2 || strcmp(argv[1], "mount") != 0) return -1;
  int pos = 0;
  for (int i = 2; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--prefix") == 0 && i + 1 < argc) {
      c->prefix = argv[++i];
    } else if (strncmp(a, "--prefix=", 9) == 0) {
      c->prefix = a + 9;
    } else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
      if (parse_o(c, argv[++i]) != 0) return -1;
    } else if (strncmp(a, "-o", 2) == 0 && a[2]) {
      if (parse_o(c, a + 2) != 0) return -1;
    } else if (strcmp(a, "-f") == 0) {
      c->foreground = 1;
    } else if (strcmp(a, "-d") == 0) {
      c->debug = c->foreground = 1;
    } else if (a[0] == '-') {
      return -1;
    } else if (pos == 0) {
      c->endpoints = a;
      pos++;
    } else if (pos == 1) {
      c->mountpoint = a;
      pos++;
    } else {
      return -1;
    }
  }
  return pos == 2 ? 0 : -1;
}

/* "/app/" -> "/app"; "app" -> "/app"; "" -> "/". */
static char *clean_prefix(const char *p) {
  size_t n = strlen(p);
  char *s = malloc(n + 2);
  if (!s) return NULL;
  snprintf(s, n + 2, "%s%s", p[0] == '/' ? "" : "/", p);
  size_t l = strlen(s);
  while (l > 1 && s[l - 1] == '/') s[--l] = 0;
  return s;
}

static char **split_endpoints(const char *list, size_t *n) {
  size_t cap = 1;
  for (const char *p = list; *p; p++) cap += *p == ',';
  char **v = calloc(cap, sizeof *v);
  if (!v) return NULL;
  *n = 0;
  const char *p = list;
  while (1) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len) v[(*n)++] = strndup(p, len);
    if (!e) break;
    p = e + 1;
  }
  return v;
}

/* The prefix must be a directory; it is created when missing. */
static int check_root(fs *f) {
  fs_kv kv;
  int e = fs_store_get(f, f->prefix, &kv);
  if (e == ENOENT && strcmp(f->prefix, "/") != 0) {
    e = fs_store_req(f, "PUT", f->prefix, NULL, "dir=true&prevExist=false", NULL);
    if (e == EEXIST) e = 0;
    if (!e) e = fs_store_get(f, f->prefix, &kv);
  }
  if (e) return e;
  if (!kv.dir) e = ENOTDIR;
  f->mount_index = kv.etcd_index;
  fs_kv_free(&kv);
  return e;
}

static void fs_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  /* the page cache must never hide whose write it is (fuse.md): no writeback cache */
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

/* Handles the kernel never released (the connection was aborted) are freed with the mount. */
static void free_open_handles(fs *f) {
  for (size_t i = 0; i < f->nodes.n_buckets; i++)
    for (fs_node *n = f->nodes.by_ino[i]; n; n = n->next_ino)
      while (n->handles) fs_handle_free(n->handles);
}

/* fuse_session_loop, with each request handled under f->lock (the watch thread's guard). */
static int session_loop(fs *f, struct fuse_session *se) {
  struct fuse_buf fbuf;
  memset(&fbuf, 0, sizeof fbuf);
  int res = 0;
  while (!fuse_session_exited(se)) {
    res = fuse_session_receive_buf(se, &fbuf);
    if (res == -EINTR) continue;
    if (res <= 0) break;
    pthread_mutex_lock(&f->lock);
    fuse_session_process_buf(se, &fbuf);
    pthread_mutex_unlock(&f->lock);
  }
  free(fbuf.mem);
  fuse_session_reset(se);
  return res < 0 ? -1 : 0;
}

static int run(fs_cli *c) {
  fs f;
  memset(&f, 0, sizeof f);
  pthread_mutex_init(&f.lock, NULL);
  size_t n_eps = 0;
  char **eps = split_endpoints(c->endpoints, &n_eps);
  f.prefix = clean_prefix(c->prefix);
  if (!eps || !f.prefix || n_eps == 0) {
    fprintf(stderr, "quorumfs: no endpoints\n");
    return 2;
  }
  long op_ms = (long)(c->op_timeout * 1000);
  proto_v2_client_opts o = {0};
  o.endpoints = (const char *const *)eps;
  o.n_endpoints = n_eps;
  o.total_timeout_ms = op_ms;
  o.request_timeout_ms = op_ms < 2000 ? op_ms : 2000;
  o.dial_timeout_ms = op_ms < 1000 ? op_ms : 1000;
  f.client = proto_v2_client_new(&o);
  for (size_t i = 0; i < n_eps; i++) free(eps[i]);
  free(eps);
  int rc = 1;
  if (!f.client || fs_itable_init(&f.nodes, f.prefix) != 0) {
    fprintf(stderr, "quorumfs: out of memory\n");
    goto out;
  }
  f.uid = getuid();
  f.gid = getgid();
  f.attr_timeout = c->attr_timeout;
  f.op_timeout_ms = op_ms;
  clock_gettime(CLOCK_REALTIME, &f.mount_time);
  f.nodes.root->mtime = f.mount_time;
  proto_v2_client_start_clock(f.client);
  int e = check_root(&f);
  if (e) {
    fprintf(stderr, "quorumfs: %s: %s\n", f.prefix,
            e == EIO ? "cannot reach the cluster" : strerror(e));
    goto out;
  }

  struct fuse_lowlevel_ops ops;
  memset(&ops, 0, sizeof ops);
  ops.init = fs_init;
  ops.lookup = fs_lookup;
  ops.forget = fs_forget;
  ops.forget_multi = fs_forget_multi;
  ops.getattr = fs_getattr;
  ops.setattr = fs_setattr;
  ops.opendir = fs_opendir;
  ops.readdir = fs_readdir;
  ops.releasedir = fs_releasedir;
  ops.open = fs_open;
  ops.create = fs_create;
  ops.mknod = fs_mknod;
  ops.read = fs_read;
  ops.write = fs_write;
  ops.flush = fs_flush;
  ops.fsync = fs_fsync;
  ops.release = fs_release;
  ops.mkdir = fs_mkdir;
  ops.rmdir = fs_rmdir;
  ops.unlink = fs_unlink;
  ops.rename = fs_rename;
  ops.symlink = fs_symlink;
  ops.link = fs_link;
  ops.setxattr = fs_setxattr;
  ops.getxattr = fs_getxattr;
  ops.listxattr = fs_listxattr;
  ops.removexattr = fs_removexattr;

  char *opts = NULL;
  const char *base = "fsname=quorumfs,subtype=quorumfs,default_permissions";
  size_t ol = strlen(base) + (c->fuse_opts ? strlen(c->fuse_opts) + 1 : 0) + 1;
  opts = malloc(ol);
  if (!opts) goto out;
  snprintf(opts, ol, "%s%s%s", base, c->fuse_opts ? "," : "", c->fuse_opts ? c->fuse_opts : "");
  char *fargv[] = {"quorumfs", "-o", opts, c->debug ? "-d" : NULL, NULL};
  struct fuse_args args = FUSE_ARGS_INIT(c->debug ? 4 : 3, fargv);
  struct fuse_session *se = fuse_session_new(&args, &ops, sizeof ops, &f);
  if (!se) {
    fprintf(stderr, "quorumfs: bad FUSE options: %s\n", opts);
    fuse_opt_free_args(&args);
    free(opts);
    goto out;
  }
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, c->mountpoint) == 0) {
      fuse_daemonize(c->foreground);
      /* after daemonize (a fork keeps no threads); events after the mount's index */
      fs_watch *w = fs_watch_start(&f, se, f.mount_index + 1);
      if (!w) fprintf(stderr, "quorumfs: cannot start the watch: remote changes show after attr_timeout\n");
      rc = session_loop(&f, se) < 0 ? 1 : 0;
      fs_watch_stop(w);
      fuse_session_unmount(se);
    } else {
      fprintf(stderr, "quorumfs: cannot mount on %s\n", c->mountpoint);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  free(opts);
out:
  if (f.nodes.by_ino) {
    free_open_handles(&f);
    fs_itable_free(&f.nodes);
  }
  proto_v2_client_free(f.client);
  free(f.prefix);
  free(c->fuse_opts);
  pthread_mutex_destroy(&f.lock);
  return rc;
}

int main(int argc, char **argv) {
  if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
    printf("quorumfs %s (libfuse %s)\n", QUORUM_VERSION, fuse_pkgversion());
    return 0;
  }
  fs_cli c;
  if (parse_args(argc, argv, &c) != 0) {
    free(c.fuse_opts);
    usage(stderr);
    return 2;
  }
  return run(&c);
}
