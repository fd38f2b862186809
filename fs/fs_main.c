/* quorumfs: mounts an etcd v2 key tree (quorumd or etcd) as a filesystem.
 *
 *   quorumfs mount ENDPOINTS MOUNTPOINT [--prefix /app] [-o opt,...] [-f] [-d]
 *   quorumfs ENDPOINTS MOUNTPOINT [-o opt,...]             (as mount.fuse3 runs it from fstab)
 *   mount.quorumfs SOURCE MOUNTPOINT [-sfnv] [-o opt,...]  (mount(8)'s helper convention)
 *
 * ENDPOINTS is a comma-separated list of client URLs (tried in turn); a SOURCE may be written
 * quorumfs#ENDPOINTS. Our own -o options: attr_timeout=S (kernel attr/entry cache, default 1),
 * op_timeout=S (bound of one operation across all endpoints; an unreachable cluster gives EIO
 * after it, default 5), sync_interval=S (the members' client URLs read from /v2/members every S
 * seconds, used after the given endpoints; default 30, 0 never), prefix=KEY, ro (enforced by
 * quorumfs, so remote changes are still
 * replayed), uid=N, gid=N, umask=OOO (owner and modes shown), notify=vfs|inval (replay remote
 * changes as inotify events, default, or only invalidate caches), threads=N (session threads,
 * default 4), ca_file=PATH, cert_file=PATH, key_file=PATH (TLS for https:// endpoints, as
 * etcdctl's --ca-file/--cert-file/--key-file), username=USER[:PASSWORD] and password_file=PATH
 * (the /v2/auth user, as etcdctl's --username), lww (a file's value at close wins: no prevIndex
 * check, no ESTALE), write_clears_ttl (a rewrite drops the TTL, as v2's update does; by default
 * it is kept), quorum (reads from the store with quorum=true), quiet (chmod and chown succeed
 * and change nothing, as vfat's quiet: for install(1) and tools that chmod a temporary file
 * first), swapfiles (files named like vim's swap files, .NAME.swp, may be created: by default
 * that is refused, EACCES, and vim keeps its swap file in /var/tmp), post_name=NAME (the in-order
 * name, default .post). fstab's own words (defaults, noauto, nofail, _netdev, user, x-*, ...) are
 * ignored; the other -o options go to FUSE (allow_other, nodev, nosuid, ...). -f stays in the
 * foreground, -d prints FUSE's debug log. Unmount with fusermount3 -u MOUNTPOINT (or
 * SIGTERM/SIGINT). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/fs_handle.h"
#include "fs/fs_mirror.h"
#include "fs/fs_ops.h"
#include "fs/fs_session.h"
#include "fs/fs_store.h"
#include "fs/fs_endpoints.h"
#include "fs/fs_watch.h"

typedef struct fs_cli {
  const char *endpoints, *mountpoint;
  char *prefix;
  char *fuse_opts; /* comma-separated, for FUSE */
  int foreground, debug;
  double attr_timeout, op_timeout, sync_interval;
  int read_only, notify_inval, threads;
  int lww, write_clears_ttl, quorum_reads, quiet, swapfiles;
  char post_name[256]; /* "" = FS_POST_NAME */
  long uid, gid, umask; /* -1: unset */
  char *ca_file, *cert_file, *key_file; /* TLS for https:// endpoints */
  char *username, *password_file;       /* /v2/auth credentials */
} fs_cli;

static void usage(FILE *out) {
  fprintf(out,
          "usage: quorumfs mount ENDPOINTS MOUNTPOINT [--prefix KEY] [-o OPT[,OPT...]] [-f] [-d]\n"
          "  ENDPOINTS        comma-separated client URLs, e.g. http://127.0.0.1:2379\n"
          "  --prefix KEY     mount this directory of the key tree (default /)\n"
          "  -o attr_timeout=S  kernel attribute cache in seconds (default 1)\n"
          "  -o op_timeout=S    give up (EIO) after S seconds without the cluster (default 5)\n"
          "  -o sync_interval=S  read the members' client URLs every S seconds and use them\n"
          "                     after the given endpoints (default 30; 0: never)\n"
          "  -o prefix=KEY      the same as --prefix\n"
          "  -o ro              refuse every change with EROFS (remote changes still show)\n"
          "  -o uid=N,gid=N     owner of every file (default: the mounting user)\n"
          "  -o umask=OOO       taken from the modes 0644 (files) and 0755 (directories)\n"
          "  -o notify=vfs|inval  remote changes as inotify events (vfs, default) or only\n"
          "                     invalidated caches (inval)\n"
          "  -o threads=N       request threads (default 4)\n"
          "  -o lww             a file's value at close wins (no ESTALE for concurrent edits)\n"
          "  -o write_clears_ttl  writing a file drops its key's TTL (default: kept)\n"
          "  -o quorum          reads from the store with quorum=true (linearizable)\n"
          "  -o quiet           chmod and chown succeed and change nothing (as vfat's quiet;\n"
          "                     default: EPERM unless they change nothing)\n"
          "  -o swapfiles       files named like vim's swap files (.NAME.swp) may be created\n"
          "                     (default: EACCES, and vim keeps its swap file in /var/tmp)\n"
          "  -o post_name=NAME  the in-order name of every directory (default .post)\n"
          "  -o ca_file=PATH    CA bundle for https:// endpoints (default: the system's)\n"
          "  -o cert_file=PATH,key_file=PATH  client certificate for https:// endpoints\n"
          "  -o username=USER[:PASSWORD]  the /v2/auth user to act as (HTTP Basic)\n"
          "  -o password_file=PATH  its password: the file's first line\n"
          "  -o OPT           other options go to FUSE (allow_other, nodev, ...)\n"
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

static int parse_long(const char *s, int base, long max, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, base);
  if (end == s || *end || errno || v < 0 || v > max) return -1;
  *out = v;
  return 0;
}

/* Options that fstab lines carry for mount(8) or systemd. */
static int fstab_word(const char *opt) {
  static const char *const words[] = {"defaults", "auto", "noauto", "user", "users", "nouser",
                                      "owner", "group", "nofail", "_netdev", "exec"};
  for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
    if (strcmp(opt, words[i]) == 0) return 1;
  return strncmp(opt, "x-", 2) == 0 || strncmp(opt, "comment=", 8) == 0;
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
    } else if (strncmp(opt, "sync_interval=", 14) == 0) {
      if (parse_seconds(opt + 14, &c->sync_interval) != 0) return -1;
    } else if (strncmp(opt, "op_timeout=", 11) == 0) {
      if (parse_seconds(opt + 11, &c->op_timeout) != 0 || c->op_timeout < 0.1) return -1;
    } else if (strncmp(opt, "prefix=", 7) == 0) {
      free(c->prefix);
      if (!(c->prefix = strdup(opt + 7))) return -1;
    } else if (strcmp(opt, "ro") == 0 || strcmp(opt, "rw") == 0) {
      c->read_only = opt[1] == 'o';
    } else if (strncmp(opt, "uid=", 4) == 0) {
      if (parse_long(opt + 4, 10, 0xfffffffeL, &c->uid) != 0) return -1;
    } else if (strncmp(opt, "gid=", 4) == 0) {
      if (parse_long(opt + 4, 10, 0xfffffffeL, &c->gid) != 0) return -1;
    } else if (strncmp(opt, "umask=", 6) == 0) {
      if (parse_long(opt + 6, 8, 0777, &c->umask) != 0) return -1;
    } else if (strncmp(opt, "notify=", 7) == 0) {
      if (strcmp(opt + 7, "vfs") != 0 && strcmp(opt + 7, "inval") != 0) return -1;
      c->notify_inval = strcmp(opt + 7, "inval") == 0;
    } else if (strncmp(opt, "ca_file=", 8) == 0 || strncmp(opt, "cert_file=", 10) == 0 ||
               strncmp(opt, "key_file=", 9) == 0) {
      char **slot = opt[0] == 'k' ? &c->key_file : opt[1] == 'a' ? &c->ca_file : &c->cert_file;
      const char *v = strchr(opt, '=') + 1;
      if (!*v) return -1;
      free(*slot);
      if (!(*slot = strdup(v))) return -1;
    } else if (strncmp(opt, "username=", 9) == 0 || strncmp(opt, "password_file=", 14) == 0) {
      char **slot = opt[0] == 'u' ? &c->username : &c->password_file;
      const char *v = strchr(opt, '=') + 1;
      if (!*v) return -1;
      free(*slot);
      if (!(*slot = strdup(v))) return -1;
    } else if (strcmp(opt, "lww") == 0) {
      c->lww = 1;
    } else if (strcmp(opt, "write_clears_ttl") == 0) {
      c->write_clears_ttl = 1;
    } else if (strcmp(opt, "quorum") == 0) {
      c->quorum_reads = 1;
    } else if (strcmp(opt, "quiet") == 0) {
      c->quiet = 1;
    } else if (strcmp(opt, "swapfiles") == 0) {
      c->swapfiles = 1;
    } else if (strncmp(opt, "post_name=", 10) == 0) {
      const char *v = opt + 10;
      if (!*v || strchr(v, '/') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0) return -1;
      snprintf(c->post_name, sizeof c->post_name, "%s", v);
    } else if (strncmp(opt, "threads=", 8) == 0) {
      long t;
      if (parse_long(opt + 8, 10, 64, &t) != 0 || t < 1) return -1;
      c->threads = (int)t;
    } else if (fstab_word(opt)) {
      /* for mount(8), not for us */
    } else if (n && add_fuse_opt(c, opt, n) != 0) {
      return -1;
    }
    p += n;
    if (*p == ',') p++;
  }
  return 0;
}

/* "quorumfs#http://..." -> "http://...". */
static const char *strip_source(const char *s) {
  return strncmp(s, "quorumfs#", 9) == 0 ? s + 9 : s;
}

/* HELPER: argv as mount(8) gives it to mount.quorumfs (no "mount" word; -s -n -v and -t TYPE
 * are mount(8)'s and ignored). */
static int parse_args(int argc, char **argv, fs_cli *c, int helper) {
  memset(c, 0, sizeof *c);
  c->attr_timeout = 1.0;
  c->op_timeout = 5.0;
  c->sync_interval = 30.0;
  c->uid = c->gid = c->umask = -1;
  c->threads = 4;
  int first = 2;
  if (helper || (argc >= 2 && argv[1][0] != '-' && strcmp(argv[1], "mount") != 0)) first = 1;
  else if (argc < 2 || strcmp(argv[1], "mount") != 0) return -1;
  int pos = 0;
  for (int i = first; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--prefix") == 0 && i + 1 < argc) {
      free(c->prefix);
      if (!(c->prefix = strdup(argv[++i]))) return -1;
    } else if (strncmp(a, "--prefix=", 9) == 0) {
      free(c->prefix);
      if (!(c->prefix = strdup(a + 9))) return -1;
    } else if ((strcmp(a, "-s") == 0 || strcmp(a, "-n") == 0 || strcmp(a, "-v") == 0) && first == 1) {
      /* mount(8): sloppy, no mtab, verbose */
    } else if (strcmp(a, "-t") == 0 && i + 1 < argc && first == 1) {
      i++;
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
      c->endpoints = strip_source(a);
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

/* Loads the mirror of the prefix, which must be a directory (created when missing). On EIO,
 * *why may say what the endpoints answered (malloc'd). */
static int load_root(fs *f, char **why) {
  proto_v2_client *c = fs_client(f);
  if (!c) return ENOMEM;
  proto_v2_event ev;
  uint64_t index = 0;
  int e = fs_mirror_fetch(c, f->prefix, &ev, &index, why);
  if (e == ENOENT && strcmp(f->prefix, "/") != 0) {
    proto_v2_client_start_clock(c);
    e = fs_store_req(f, "PUT", f->prefix, NULL, "dir=true&prevExist=false", NULL);
    if (e == EEXIST) e = 0;
    if (!e) e = fs_mirror_fetch(c, f->prefix, &ev, &index, why);
  }
  if (e) return e;
  if (!ev.node->dir) e = ENOTDIR;
  else fs_mirror_load(f, ev.node);
  f->mount_index = index;
  f->mount_ep = proto_v2_client_pinned(c);
  f->connected = 1;
  proto_v2_event_free(&ev);
  return e;
}

static void fs_init(void *userdata, struct fuse_conn_info *conn) {
  (void)userdata;
  /* the page cache must never hide whose write it is (fuse.md): no writeback cache */
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  /* every listing with attributes (readdirplus), not only its first page: `ls -l` reads the
   * whole directory before its first stat, so the kernel's auto mode looked up each entry */
  conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
}

/* Handles the kernel never released (the connection was aborted) are freed with the mount. */
static void free_open_handles(fs *f) {
  for (size_t i = 0; i < f->nodes.n_buckets; i++)
    for (fs_node *n = f->nodes.by_ino[i]; n; n = n->next_ino)
      while (n->handles) fs_handle_free(n->handles);
}

static void set_ops(struct fuse_lowlevel_ops *ops) {
  memset(ops, 0, sizeof *ops);
  ops->init = fs_init;
  ops->lookup = fs_lookup;
  ops->forget = fs_forget;
  ops->forget_multi = fs_forget_multi;
  ops->getattr = fs_getattr;
  ops->setattr = fs_setattr;
  ops->opendir = fs_opendir;
  ops->readdir = fs_readdir;
  ops->readdirplus = fs_readdirplus;
  ops->releasedir = fs_releasedir;
  ops->open = fs_open;
  ops->create = fs_create;
  ops->mknod = fs_mknod;
  ops->read = fs_read;
  ops->write = fs_write;
  ops->flush = fs_flush;
  ops->fsync = fs_fsync;
  ops->release = fs_release;
  ops->mkdir = fs_mkdir;
  ops->rmdir = fs_rmdir;
  ops->unlink = fs_unlink;
  ops->rename = fs_rename;
  ops->symlink = fs_symlink;
  ops->link = fs_link;
  ops->setxattr = fs_setxattr;
  ops->getxattr = fs_getxattr;
  ops->listxattr = fs_listxattr;
  ops->removexattr = fs_removexattr;
  ops->statfs = fs_statfs;
}

/* Mounted: serve until unmounted or signalled. The watch (the applier) is stopped while the
 * session threads still serve, since it may be inside a VFS call on the mount. */
static int serve(fs *f, struct fuse_session *se, int threads) {
  fs_session *s = fs_session_start(f, se, threads);
  if (!s) {
    fprintf(stderr, "quorumfs: cannot start the request threads\n");
    return 1;
  }
  /* events after the mount's index */
  f->watch = fs_watch_start(f, se, f->mount_index + 1);
  if (!f->watch) fprintf(stderr, "quorumfs: cannot start the watch: remote changes show after attr_timeout\n");
  fs_endpoints *sync = fs_endpoints_start(f);
  int rc = fs_session_loop(s) < 0 ? 1 : 0;
  fs_endpoints_stop(sync);
  fs_watch_stop(f->watch);
  f->watch = NULL;
  fuse_session_unmount(se);
  fs_session_stop(s);
  return rc;
}

/* -o username=USER[:PASSWORD] and -o password_file=PATH (its first line) as the client's
 * basic auth. Returns 0 (*user NULL when none was given) or -1 with a message printed. */
static int credentials(const fs_cli *c, char **user, char **password) {
  *user = *password = NULL;
  if (!c->username) {
    if (c->password_file) fprintf(stderr, "quorumfs: -o password_file needs -o username\n");
    return c->password_file ? -1 : 0;
  }
  char *colon = strchr(c->username, ':');
  if (!(*user = colon ? strndup(c->username, (size_t)(colon - c->username)) : strdup(c->username)))
    return -1;
  if (colon && !c->password_file) {
    *password = strdup(colon + 1);
  } else if (c->password_file && !colon) {
    FILE *fp = fopen(c->password_file, "r");
    if (!fp) {
      fprintf(stderr, "quorumfs: %s: %s\n", c->password_file, strerror(errno));
      return -1;
    }
    char line[4096];
    *password = strdup(fgets(line, sizeof line, fp) ? line : "");
    fclose(fp);
    if (*password) (*password)[strcspn(*password, "\r\n")] = 0;
  } else {
    fprintf(stderr, "quorumfs: -o username=%s needs a password: -o username=USER:PASSWORD or "
                    "-o password_file=PATH (one of them)\n", *user);
    return -1;
  }
  return *password ? 0 : -1;
}

static int run(fs_cli *c) {
  char *user = NULL, *password = NULL;
  fs f;
  memset(&f, 0, sizeof f);
  pthread_mutex_init(&f.lock, NULL);
  pthread_cond_init(&f.idle, NULL);
  pthread_key_create(&f.thread_key, NULL);
  pthread_mutex_init(&f.ep_mu, NULL);
  f.endpoints = split_endpoints(c->endpoints, &f.n_endpoints);
  f.ep_cur = split_endpoints(c->endpoints, &f.n_ep_cur);
  f.sync_interval = c->sync_interval;
  f.prefix = clean_prefix(c->prefix ? c->prefix : "/");
  f.mountpoint = realpath(c->mountpoint, NULL);
  int rc = 1;
  if (!f.endpoints || !f.ep_cur || !f.prefix || f.n_endpoints == 0) {
    fprintf(stderr, "quorumfs: no endpoints\n");
    rc = 2;
    goto out;
  }
  if (!f.mountpoint) {
    fprintf(stderr, "quorumfs: %s: %s\n", c->mountpoint, strerror(errno));
    goto out;
  }
  long op_ms = (long)(c->op_timeout * 1000);
  f.client_opts.endpoints = (const char *const *)f.endpoints;
  f.client_opts.n_endpoints = f.n_endpoints;
  f.client_opts.total_timeout_ms = op_ms;
  f.client_opts.request_timeout_ms = op_ms < 2000 ? op_ms : 2000;
  f.client_opts.dial_timeout_ms = op_ms < 1000 ? op_ms : 1000;
  f.client_opts.share_total = 1;
  f.client_opts.ca_file = c->ca_file;
  f.client_opts.cert_file = c->cert_file;
  f.client_opts.key_file = c->key_file;
  if (credentials(c, &user, &password) != 0) {
    rc = 2;
    goto out;
  }
  f.client_opts.username = user;
  f.client_opts.password = password;
  if (fs_itable_init(&f.nodes, f.prefix) != 0) {
    fprintf(stderr, "quorumfs: out of memory\n");
    goto out;
  }
  f.uid = c->uid >= 0 ? (uid_t)c->uid : getuid();
  f.gid = c->gid >= 0 ? (gid_t)c->gid : getgid();
  f.umask = c->umask >= 0 ? (mode_t)c->umask : 0;
  f.read_only = c->read_only;
  f.notify_vfs = !c->notify_inval;
  f.lww = c->lww;
  f.write_clears_ttl = c->write_clears_ttl;
  f.quorum_reads = c->quorum_reads;
  f.quiet = c->quiet;
  f.swapfiles = c->swapfiles;
  f.post_name = c->post_name[0] ? c->post_name : FS_POST_NAME;
  f.attr_timeout = c->attr_timeout;
  f.op_timeout_ms = op_ms;
  clock_gettime(CLOCK_REALTIME, &f.mount_time);
  f.nodes.root->mtime = f.mount_time;
  pthread_mutex_lock(&f.lock);
  char *why = NULL;
  int e = load_root(&f, &why);
  fs_session_request_done(&f); /* the prefix's creation, when it was missing, is over */
  pthread_mutex_unlock(&f.lock);
  if (e) {
    /* what each endpoint answered, as quorumctl and etcdctl print it ("error #0: ...") */
    size_t wl = why ? strlen(why) : 0;
    while (wl && why[wl - 1] == '\n') why[--wl] = 0;
    fprintf(stderr, "quorumfs: %s: %s%s%s\n", f.prefix, e == EIO ? "cannot reach the cluster" : strerror(e),
            wl ? "\n" : "", wl ? why : "");
    free(why);
    goto out;
  }
  free(why);

  struct fuse_lowlevel_ops ops;
  set_ops(&ops);
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
    if (fuse_session_mount(se, f.mountpoint) == 0) {
      fuse_daemonize(c->foreground); /* before any thread: a fork keeps none */
      rc = serve(&f, se, c->threads);
    } else {
      fprintf(stderr, "quorumfs: cannot mount on %s\n", f.mountpoint);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  fuse_opt_free_args(&args);
  free(opts);
out:
  if (f.nodes.by_ino) {
    free_open_handles(&f);
    fs_dirs_free_all(&f);
    fs_itable_free(&f.nodes);
  }
  fs_mirror_free(&f);
  fs_session_free(&f);
  for (size_t i = 0; f.endpoints && i < f.n_endpoints; i++) free(f.endpoints[i]);
  free(f.endpoints);
  fs_endpoints_free_copy(f.ep_cur, f.n_ep_cur);
  pthread_mutex_destroy(&f.ep_mu);
  free(f.prefix);
  free(f.mountpoint);
  free(c->fuse_opts);
  free(c->prefix);
  free(c->ca_file);
  free(c->cert_file);
  free(c->key_file);
  free(c->username);
  free(c->password_file);
  free(user);
  if (password) explicit_bzero(password, strlen(password));
  free(password);
  pthread_key_delete(f.thread_key);
  pthread_cond_destroy(&f.idle);
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
  const char *prog = strrchr(argv[0], '/');
  prog = prog ? prog + 1 : argv[0];
  int helper = strncmp(prog, "mount.", 6) == 0; /* mount.quorumfs, mount.fuse.quorumfs */
  fs_cli c;
  if (parse_args(argc, argv, &c, helper) != 0) {
    free(c.fuse_opts);
    free(c.prefix);
    free(c.ca_file);
    free(c.cert_file);
    free(c.key_file);
    usage(stderr);
    return 2;
  }
  return run(&c);
}
