/* cmd_backup: `backup`, etcdctl v2's: a copy of a quorumd member's data dir, running or
 * stopped, that `quorumd --data-dir BACKUP --force-new-cluster` starts as a new one-member
 * cluster with every change the member had applied (etcd's disaster recovery).
 *
 * Nothing is asked of the member: its files are copied while it may be writing them, in an
 * order that gives a consistent state, then checked by opening the copy, and copied again when
 * the check fails (a compaction ran meanwhile):
 *   1. the tree's LevelDB: its write-ahead logs first, then CURRENT and the MANIFEST it names,
 *      then the tables. What the copied logs lack was flushed into a table that the later
 *      MANIFEST lists, so the copy is the tree as of some moment; a table compacted away
 *      before it was copied makes the open fail ("missing files"). Tables are copied, never
 *      hard-linked: a table the member wrote after its MANIFEST was copied has a number that
 *      the copy's LevelDB gives to its next table, which it creates with O_TRUNC, so a link
 *      would let the check's open overwrite the member's file.
 *   2. the Raft log's segments, after the tree: they hold at least every entry the copied tree
 *      has applied, and the copy is good when its first entry is at or below the tree's
 *      applied index + 1 (no segment was deleted in between) and its last one at or above the
 *      applied index (no segment was recycled while it was read).
 * A member installing a snapshot (daemon/store_install.c) writes the tree in several batches
 * after a synced copy of it, snapshot.install: that file is copied first when it is there, and
 * the tree copy is taken again when the file came, went or changed meanwhile, or when the
 * copied tree is marked as halfway through an install the copy holds no file for. A member
 * stopped halfway gives a backup that completes the install when it starts.
 * The event history's files (history-0, history-1) are copied after the tree: they hold at
 * least every event the copied tree has applied, and the restored member keeps the consecutive
 * run of events ending at its tree's index (store_history.c), so a watch from a recent index is
 * answered, not cleared. (A copy torn by the member's writes, or missing the tree's last event
 * because the files turned over twice meanwhile, gives an empty history: 401, never a gap.)
 * As etcdctl backup does, the copy gets a new member id and cluster
 * id, so that it cannot join the old cluster by mistake. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <leveldb/c.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl/cmd_backup.h"
#include "daemon/datadir.h"
#include "daemon/store.h"
#include "raft/storage/wal_storage.h"

#define BACKUP_TRIES 20

typedef struct backup_paths {
  char data[PATH_MAX], wal[PATH_MAX], dest[PATH_MAX], dest_wal[PATH_MAX];
  char tree[PATH_MAX], dest_tree[PATH_MAX];
} backup_paths;

static int join(char *out, const char *dir, const char *name) {
  return snprintf(out, PATH_MAX, "%s/%s", dir, name) >= PATH_MAX ? -ENAMETOOLONG : 0;
}

/* Copies SRC to DST (created, 0600), synced. -errno; -ENOENT when SRC is gone. */
static int copy_file(const char *src, const char *dst) {
  int in = open(src, O_RDONLY | O_CLOEXEC);
  if (in < 0) return -errno;
  int out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (out < 0) {
    int e = -errno;
    close(in);
    return e;
  }
  char buf[1 << 16];
  int e = 0;
  for (;;) {
    ssize_t n = read(in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      e = -errno;
      break;
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf + off, (size_t)(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        e = -errno;
        break;
      }
      off += w;
    }
    if (e) break;
  }
  if (!e && fsync(out) != 0) e = -errno;
  close(in);
  if (close(out) != 0 && !e) e = -errno;
  return e;
}

static int ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Removes the files directly in DIR and DIR itself (a copy of ours: no subdirectories). */
static void remove_copy(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *de;
  char p[PATH_MAX];
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && join(p, dir, de->d_name) == 0)
      unlink(p);
  closedir(d);
  rmdir(dir);
}

static int sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int e = fsync(fd) != 0 ? -errno : 0;
  close(fd);
  return e;
}

/* Copies the files of SRC whose names PICK accepts into DST, with HOW. -ENOENT when one of
 * them disappeared on the way (the caller tries again). */
static int copy_some(const char *src, const char *dst, int (*pick)(const char *),
                     int (*how)(const char *, const char *)) {
  DIR *d = opendir(src);
  if (!d) return -errno;
  struct dirent *de;
  int e = 0;
  char a[PATH_MAX], b[PATH_MAX];
  while (!e && (de = readdir(d)) != NULL) {
    if (!pick(de->d_name)) continue;
    if (join(a, src, de->d_name) || join(b, dst, de->d_name)) e = -ENAMETOOLONG;
    else e = how(a, b);
  }
  closedir(d);
  return e;
}

static int is_ldb_log(const char *n) { return ends_with(n, ".log"); }
static int is_table(const char *n) { return ends_with(n, ".ldb") || ends_with(n, ".sst"); }
static int is_segment(const char *n) { return strlen(n) == 20 && ends_with(n, ".wal"); }
static int is_history(const char *n) { return !strcmp(n, "history-0") || !strcmp(n, "history-1"); }

/* The identity of the tree's snapshot.install: 0 (absent) or 1 with *st filled; -errno. */
static int install_file_stat(const backup_paths *p, struct stat *st) {
  char a[PATH_MAX];
  if (join(a, p->tree, STORE_INSTALL_FILE)) return -ENAMETOOLONG;
  if (stat(a, st) == 0) return 1;
  return errno == ENOENT ? 0 : -errno;
}

/* Step 1: the tree's LevelDB, after the snapshot being installed in it, if any. */
static int copy_tree(const backup_paths *p, char *err, size_t errlen) {
  if (mkdir(p->dest_tree, 0700) != 0) {
    snprintf(err, errlen, "cannot create %s: %s", p->dest_tree, strerror(errno));
    return -errno;
  }
  struct stat before, after;
  int had = install_file_stat(p, &before), e = had < 0 ? had : 0;
  if (had == 1) {
    char a[PATH_MAX], b[PATH_MAX];
    if (join(a, p->tree, STORE_INSTALL_FILE) || join(b, p->dest_tree, STORE_INSTALL_FILE))
      e = -ENAMETOOLONG;
    else
      e = copy_file(a, b);
  }
  if (!e) e = copy_some(p->tree, p->dest_tree, is_ldb_log, copy_file);
  char cur[PATH_MAX], manifest[256] = "", a[PATH_MAX], b[PATH_MAX];
  if (!e && join(cur, p->tree, "CURRENT") == 0) {
    FILE *f = fopen(cur, "r");
    if (!f) e = -errno;
    else {
      if (!fgets(manifest, sizeof manifest, f)) e = -EIO;
      fclose(f);
    }
  }
  size_t ml = strlen(manifest);
  if (!e && (ml < 2 || manifest[ml - 1] != '\n' || strchr(manifest, '/'))) e = -EIO;
  if (!e) {
    manifest[ml - 1] = 0;
    if (join(a, p->tree, manifest) || join(b, p->dest_tree, manifest)) e = -ENAMETOOLONG;
    else e = copy_file(a, b);
  }
  if (!e) {
    manifest[ml - 1] = '\n';
    FILE *f = join(b, p->dest_tree, "CURRENT") == 0 ? fopen(b, "w") : NULL;
    if (!f || fputs(manifest, f) == EOF || fflush(f) != 0 || fsync(fileno(f)) != 0) e = -EIO;
    if (f && fclose(f) != 0) e = -EIO;
  }
  if (!e) e = copy_some(p->tree, p->dest_tree, is_table, copy_file);
  if (!e) e = copy_some(p->tree, p->dest_tree, is_history, copy_file);
  if (!e) {
    int has = install_file_stat(p, &after);
    if (has < 0) {
      e = has;
    } else if (has != had || (has && (before.st_ino != after.st_ino ||
                                      before.st_size != after.st_size ||
                                      before.st_mtim.tv_sec != after.st_mtim.tv_sec ||
                                      before.st_mtim.tv_nsec != after.st_mtim.tv_nsec))) {
      snprintf(err, errlen, "the member began or ended installing a snapshot meanwhile");
      e = -EAGAIN;
    }
  }
  if (!e) e = sync_dir(p->dest_tree);
  if (e && e != -ENOENT && e != -EIO && e != -EAGAIN)
    snprintf(err, errlen, "cannot copy %s: %s", p->tree, strerror(-e));
  return e;
}

/* The copied tree opens, and its applied Raft index. */
static int check_tree(const backup_paths *p, uint64_t *applied, char *err, size_t errlen) {
  leveldb_options_t *o = leveldb_options_create();
  leveldb_options_set_paranoid_checks(o, 1);
  char *lerr = NULL;
  leveldb_t *db = leveldb_open(o, p->dest_tree, &lerr);
  leveldb_options_destroy(o);
  if (!db) {
    snprintf(err, errlen, "%s", lerr ? lerr : "cannot open the copied tree");
    leveldb_free(lerr);
    return -EAGAIN;
  }
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  size_t len = 0;
  char *mark = leveldb_get(db, ro, STORE_INSTALL_MARK, strlen(STORE_INSTALL_MARK), &len, &lerr);
  leveldb_free(lerr);
  lerr = NULL;
  char *v = leveldb_get(db, ro, "mapplied", 8, &len, &lerr);
  leveldb_readoptions_destroy(ro);
  int e = 0;
  char inst[PATH_MAX];
  if (mark && (join(inst, p->dest_tree, STORE_INSTALL_FILE) || access(inst, F_OK) != 0)) {
    /* copied halfway through an install that began after the file was looked for */
    snprintf(err, errlen, "the copied tree is halfway through installing a snapshot");
    leveldb_free(mark);
    leveldb_free(v);
    leveldb_free(lerr);
    leveldb_close(db);
    return -EAGAIN;
  }
  leveldb_free(mark);
  *applied = 0;
  if (lerr) {
    snprintf(err, errlen, "%s", lerr);
    leveldb_free(lerr);
    e = -EIO;
  } else if (v && len == 8) {
    for (int i = 0; i < 8; i++) *applied = (*applied << 8) | (unsigned char)v[i];
  }
  leveldb_free(v);
  leveldb_close(db);
  return e;
}

/* The index of the snapshot whose install the copied tree completes when it starts (its
 * snapshot.install: magic, be64 meta length, meta = be64 index, ...): 1 with *index, 0 when
 * there is none, -EIO when it is unreadable. */
static int copied_install_index(const backup_paths *p, uint64_t *index) {
  char a[PATH_MAX];
  if (join(a, p->dest_tree, STORE_INSTALL_FILE)) return -ENAMETOOLONG;
  FILE *f = fopen(a, "rb");
  if (!f) return errno == ENOENT ? 0 : -EIO;
  unsigned char h[7 + 8 + 8];
  int ok = fread(h, 1, sizeof h, f) == sizeof h;
  fclose(f);
  if (!ok) return -EIO;
  *index = 0;
  for (int i = 0; i < 8; i++) *index = (*index << 8) | h[15 + i];
  return 1;
}

/* Step 2: the Raft log's segments, and their check against the tree's applied index (or, when
 * the tree completes an install as it starts, against that snapshot's index: a log that ends
 * before it is reset from the snapshot's state, one that goes past it must hold the entries
 * after it). */
static int copy_wal(const backup_paths *p, uint64_t applied, uint64_t *last, char *err,
                    size_t errlen) {
  if (mkdir(p->dest_wal, 0700) != 0) {
    snprintf(err, errlen, "cannot create %s: %s", p->dest_wal, strerror(errno));
    return -errno;
  }
  int e = copy_some(p->wal, p->dest_wal, is_segment, copy_file);
  if (!e) e = sync_dir(p->dest_wal);
  if (e) {
    if (e != -ENOENT) snprintf(err, errlen, "cannot copy %s: %s", p->wal, strerror(-e));
    return e;
  }
  raft_wal *w;
  raft_wal_opts o = {.create = false, .sync = true, .segment_bytes = 0};
  e = raft_wal_open(&w, p->dest_wal, &o, err, errlen);
  if (e) return -EAGAIN; /* a segment recycled while it was read */
  uint64_t first = raft_wal_first_index(w);
  *last = raft_wal_last_index(w);
  raft_wal_close(w);
  uint64_t snap = 0;
  int inst = copied_install_index(p, &snap);
  if (inst < 0) {
    snprintf(err, errlen, "cannot read the copied %s", STORE_INSTALL_FILE);
    return -EAGAIN;
  }
  if (inst == 1) {
    if (*last >= snap && first > snap + 1) {
      snprintf(err, errlen, "the copied raft log starts at %" PRIu64 ", after the snapshot's %"
               PRIu64, first, snap);
      return -EAGAIN;
    }
    return 0;
  }
  if (first > applied + 1) {
    snprintf(err, errlen, "the copied raft log starts at %" PRIu64 ", after the tree's %" PRIu64,
             first, applied);
    return -EAGAIN;
  }
  if (*last < applied) { /* (a segment recycled while it was read: its copy ends early) */
    snprintf(err, errlen, "the copied raft log ends at %" PRIu64 ", before the tree's %" PRIu64,
             *last, applied);
    return -EAGAIN;
  }
  return 0;
}

/* DIR holds a format record (datadir_read_meta reads it); an etcd data dir is named so. */
static int has_meta(const char *dir, char *err, size_t errlen) {
  char path[PATH_MAX], m[PATH_MAX];
  if (join(path, dir, "quorumd.meta")) return -ENAMETOOLONG;
  if (access(path, F_OK) == 0) return 0;
  int e = errno;
  struct stat st;
  if (join(m, dir, "member") == 0 && stat(m, &st) == 0 && S_ISDIR(st.st_mode))
    snprintf(err, errlen, "%s is an etcd data dir: back it up with etcdctl backup", dir);
  else
    snprintf(err, errlen, "%s is not a quorumd data dir (%s: %s)", dir, path, strerror(e));
  return -e;
}

static uint64_t new_id(void) {
  uint64_t v = 0;
  while (v == 0)
    if (getrandom(&v, sizeof v, 0) != sizeof v) v = (uint64_t)time(NULL) * 2654435761u;
  return v;
}

/* DIR does not exist (made, 0700) or is empty. */
static int fresh_dir(const char *dir, char *err, size_t errlen) {
  if (mkdir(dir, 0700) == 0) return 0;
  if (errno != EEXIST) {
    snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
    return -errno;
  }
  DIR *d = opendir(dir);
  if (!d) {
    snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
    return -errno;
  }
  struct dirent *de;
  int empty = 1;
  while ((de = readdir(d)) != NULL)
    if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) empty = 0;
  closedir(d);
  if (!empty) {
    snprintf(err, errlen, "%s is not empty: a backup goes to a new directory", dir);
    return -EEXIST;
  }
  return 0;
}

static int fail(const char *msg) {
  fflush(stdout);
  fprintf(stderr, "Error: %s\n", msg);
  return 1;
}

int ctl_cmd_backup(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a) {
  (void)cmd;
  int debug = ctl_arg_bool(&ctx->global, "debug");
  const char *data = ctl_arg_str(a, "data-dir"), *dest = ctl_arg_str(a, "backup-dir");
  const char *wal = ctl_arg_str(a, "wal-dir"), *dest_wal = ctl_arg_str(a, "backup-wal-dir");
  if (!data || !*data || !dest || !*dest) return fail("backup needs --data-dir and --backup-dir");
  backup_paths p;
  char err[3 * PATH_MAX] = "";
  if (snprintf(p.data, PATH_MAX, "%s", data) >= PATH_MAX ||
      snprintf(p.dest, PATH_MAX, "%s", dest) >= PATH_MAX || join(p.tree, data, "tree") ||
      join(p.dest_tree, dest, "tree") ||
      (wal && *wal ? snprintf(p.wal, PATH_MAX, "%s", wal) >= PATH_MAX : join(p.wal, data, "wal")) ||
      (dest_wal && *dest_wal ? snprintf(p.dest_wal, PATH_MAX, "%s", dest_wal) >= PATH_MAX
                             : join(p.dest_wal, dest, "wal")))
    return fail("a path is too long");
  datadir src;
  memset(&src, 0, sizeof src);
  char name[512];
  if (has_meta(p.data, err, sizeof err) ||
      datadir_read_meta(p.data, &src, name, sizeof name, err, sizeof err))
    return fail(err);
  struct stat st;
  if (stat(p.wal, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(err, sizeof err, "no raft log in %s (a member started with --wal-dir keeps it there: "
             "give that with --wal-dir)", p.wal);
    return fail(err);
  }
  char real_data[PATH_MAX], real_dest[PATH_MAX];
  if (fresh_dir(p.dest, err, sizeof err)) return fail(err);
  if (realpath(p.data, real_data) && realpath(p.dest, real_dest) &&
      strncmp(real_dest, real_data, strlen(real_data)) == 0 &&
      (real_dest[strlen(real_data)] == '/' || real_dest[strlen(real_data)] == 0))
    return fail("the backup dir is inside the data dir");
  if (dest_wal && *dest_wal && fresh_dir(p.dest_wal, err, sizeof err)) return fail(err);
  if (dest_wal && *dest_wal) rmdir(p.dest_wal); /* (made again by copy_wal) */
  uint64_t applied = 0, last = 0;
  int e = -EAGAIN;
  for (int t = 0; t < BACKUP_TRIES && (e == -EAGAIN || e == -ENOENT || e == -EIO); t++) {
    if (t) {
      if (debug) fprintf(stderr, "backup: copying again (the member changed it meanwhile: %s)\n", err);
      remove_copy(p.dest_tree);
      remove_copy(p.dest_wal);
      struct timespec ts = {0, 50 * 1000000L};
      nanosleep(&ts, NULL);
    }
    err[0] = 0;
    e = copy_tree(&p, err, sizeof err);
    if (!e) e = check_tree(&p, &applied, err, sizeof err);
    if (!e) e = copy_wal(&p, applied, &last, err, sizeof err);
  }
  if (e) {
    remove_copy(p.dest_tree);
    remove_copy(p.dest_wal);
    rmdir(p.dest); /* (when it is empty: made here, or given empty) */
    if (!err[0]) snprintf(err, sizeof err, "cannot copy %s: %s", p.data, strerror(-e));
    return fail(err);
  }
  uint64_t snap = 0;
  if (copied_install_index(&p, &snap) == 1) applied = snap; /* (what the copy starts from) */
  datadir copy = src;
  copy.member_id = new_id();
  copy.cluster_id = new_id();
  if (datadir_write_meta(p.dest, &copy, name, err, sizeof err)) return fail(err);
  printf("backup of member %" PRIx64 " of cluster %" PRIx64 " (raft index %" PRIu64
         ") written to %s as member %" PRIx64 " of cluster %" PRIx64
         "; start it with: quorumd --data-dir %s%s%s --force-new-cluster\n",
         src.member_id, src.cluster_id, applied, p.dest, copy.member_id, copy.cluster_id, p.dest, dest_wal && *dest_wal ? " --wal-dir " : "",
         dest_wal && *dest_wal ? p.dest_wal : "");
  return 0;
}
