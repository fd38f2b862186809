/* datadir: format record and identity of the data directory (see the header). */
#include "daemon/datadir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_FILE "quorumd.meta"

uint64_t datadir_hash(const char *s, uint64_t seed) {
  uint64_t h = 1469598103934665603ULL ^ seed;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h ? h : 1;
}

static int mkdirs(const char *dir) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp) return -ENAMETOOLONG;
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/') continue;
    *p = 0;
    if (mkdir(tmp, 0700) && errno != EEXIST) return -errno;
    *p = '/';
  }
  if (mkdir(tmp, 0700) && errno != EEXIST) return -errno;
  return 0;
}

/* 1 when dir has entries, 0 when empty, negative errno when unreadable. */
static int nonempty(const char *dir, char *first, size_t n) {
  DIR *d = opendir(dir);
  if (!d) return -errno;
  struct dirent *e;
  int found = 0;
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(first, n, "%s", e->d_name);
    found = 1;
    break;
  }
  closedir(d);
  return found;
}

static int fsync_path(const char *p, int flags) {
  int fd = open(p, flags);
  if (fd < 0) return -errno;
  int rc = fsync(fd) ? -errno : 0;
  close(fd);
  return rc;
}

/* Replaces DIR/FILE with TEXT atomically: a temporary file written and synced, renamed, the
 * directory synced (a failure of that last sync is reported when STRICT). */
static int write_synced(const char *dir, const char *file, const char *text, int strict,
                        char *err, size_t errlen) {
  char path[4200], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", dir, file);
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, file);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
    return -errno;
  }
  if (fputs(text, f) == EOF || fflush(f) || fsync(fileno(f))) {
    int e = errno;
    fclose(f);
    unlink(tmp);
    snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(e));
    return -e;
  }
  fclose(f);
  if (rename(tmp, path)) {
    int e = errno;
    unlink(tmp);
    snprintf(err, errlen, "cannot rename %s: %s", tmp, strerror(e));
    return -e;
  }
  int rc = fsync_path(dir, O_RDONLY | O_DIRECTORY);
  if (rc && strict) {
    snprintf(err, errlen, "cannot sync %s: %s", dir, strerror(-rc));
    return rc;
  }
  return 0;
}

int datadir_write_meta(const char *dir, const datadir *d, const char *name, char *err,
                       size_t errlen) {
  char text[8192];
  if (snprintf(text, sizeof text, "%s\nmember-id %016" PRIx64 "\ncluster-id %016" PRIx64
               "\nname %s\n", DATADIR_FORMAT, d->member_id, d->cluster_id, name) >= (int)sizeof text) {
    snprintf(err, errlen, "the member's name is too long");
    return -ENAMETOOLONG;
  }
  return write_synced(dir, META_FILE, text, 0, err, errlen);
}

#define REQUESTS_FILE "quorumd.requests"

static int write_requests(const char *dir, uint64_t v, char *err, size_t errlen) {
  char text[32];
  snprintf(text, sizeof text, "%" PRIu64 "\n", v);
  return write_synced(dir, REQUESTS_FILE, text, 1, err, errlen);
}

void datadir_request_restore(const char *dir, uint64_t prev) {
  char path[4200], err[256];
  snprintf(path, sizeof path, "%s/%s", dir, REQUESTS_FILE);
  if (!prev) {
    unlink(path);
    fsync_path(dir, O_RDONLY | O_DIRECTORY);
  } else {
    write_requests(dir, prev, err, sizeof err);
  }
}

int datadir_request_base(const char *dir, uint64_t now_ms, uint64_t *base, uint64_t *prev,
                         char *err, size_t errlen) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", dir, REQUESTS_FILE);
  uint64_t b = now_ms << 20, last = 0;
  FILE *f = fopen(path, "r");
  if (f) {
    int ok = fscanf(f, "%" SCNu64, &last) == 1;
    fclose(f);
    if (!ok) {
      snprintf(err, errlen, "%s is damaged (it holds no number)", path);
      return -EINVAL;
    }
  } else if (errno != ENOENT) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return -errno;
  }
  if (last && b < last + DATADIR_REQUEST_SPAN) b = last + DATADIR_REQUEST_SPAN;
  if (b < last) { /* (wrapped: 2^20 starts) */
    snprintf(err, errlen, "%s: request ids exhausted", path);
    return -EOVERFLOW;
  }
  int rc = write_requests(dir, b, err, errlen);
  if (rc) return rc;
  *base = b;
  if (prev) *prev = last;
  return 0;
}

int datadir_read_meta(const char *dir, datadir *d, char *name, size_t nlen, char *err,
                      size_t errlen) {
  char path[4200], line[512];
  if (name && nlen) name[0] = 0;
  snprintf(path, sizeof path, "%s/%s", dir, META_FILE);
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
    return -errno;
  }
  int ok = fgets(line, sizeof line, f) && !strncmp(line, DATADIR_FORMAT, strlen(DATADIR_FORMAT)) &&
           line[strlen(DATADIR_FORMAT)] == '\n';
  int have_m = 0, have_c = 0;
  while (ok && fgets(line, sizeof line, f)) {
    if (sscanf(line, "member-id %" SCNx64, &d->member_id) == 1) have_m = 1;
    else if (sscanf(line, "cluster-id %" SCNx64, &d->cluster_id) == 1) have_c = 1;
    else if (name && nlen && !strncmp(line, "name ", 5))
      snprintf(name, nlen, "%.*s", (int)strcspn(line + 5, "\n"), line + 5);
  }
  fclose(f);
  if (!ok || !have_m || !have_c) {
    snprintf(err, errlen,
             "%s is not a data dir of this quorumd (format record %s is of another format or "
             "damaged); refusing to touch it",
             dir, path);
    return -EINVAL;
  }
  return 0;
}

int datadir_open(datadir *d, const char *dir, const char *wal_dir, const char *name,
                 const char *peer_urls, uint64_t member_id, const char *cluster_seed,
                 const char *token, char *err, size_t errlen) {
  memset(d, 0, sizeof *d);
  char first[256] = "";
  struct stat st;
  int rc;
  if (stat(dir, &st) == 0 && !S_ISDIR(st.st_mode)) {
    snprintf(err, errlen, "data dir %s exists and is not a directory", dir);
    return -ENOTDIR;
  }
  if ((rc = mkdirs(dir))) {
    snprintf(err, errlen, "cannot create data dir %s: %s", dir, strerror(-rc));
    return rc;
  }
  char meta[4200];
  snprintf(meta, sizeof meta, "%s/%s", dir, META_FILE);
  if (access(meta, F_OK) == 0) {
    if ((rc = datadir_read_meta(dir, d, NULL, 0, err, errlen))) return rc;
  } else {
    rc = nonempty(dir, first, sizeof first);
    if (rc < 0) {
      snprintf(err, errlen, "cannot read data dir %s: %s", dir, strerror(-rc));
      return rc;
    }
    if (rc == 1) {
      snprintf(err, errlen,
               "data dir %s is not empty and has no %s (it holds \"%s\"%s); refusing to use it",
               dir, META_FILE, first, !strcmp(first, "member") ? ", like an etcd data dir" : "");
      return -EEXIST;
    }
    char seed[8192];
    snprintf(seed, sizeof seed, "%s|%s", peer_urls, token);
    d->member_id = member_id ? member_id : datadir_hash(seed, 0);
    snprintf(seed, sizeof seed, "%s|%s", cluster_seed, token);
    d->cluster_id = datadir_hash(seed, 0x9e3779b97f4a7c15ULL);
    if ((rc = datadir_write_meta(dir, d, name, err, errlen))) return rc;
    d->created = 1;
  }
  if (snprintf(d->tree_path, sizeof d->tree_path, "%s/tree", dir) >= (int)sizeof d->tree_path ||
      (wal_dir && *wal_dir
           ? snprintf(d->log_path, sizeof d->log_path, "%s", wal_dir)
           : snprintf(d->log_path, sizeof d->log_path, "%s/wal", dir)) >= (int)sizeof d->log_path ||
      snprintf(d->old_log_path, sizeof d->old_log_path, "%s/log", dir) >=
          (int)sizeof d->old_log_path) {
    snprintf(err, errlen, "data dir path too long");
    return -ENAMETOOLONG;
  }
  if (!d->created && (access(d->tree_path, F_OK) != 0 ||
                      (access(d->log_path, F_OK) != 0 && access(d->old_log_path, F_OK) != 0))) {
    snprintf(err, errlen,
             "data dir %s has a format record but its databases (tree/, %s) are missing; "
             "refusing to start", dir, wal_dir && *wal_dir ? d->log_path : "wal/");
    return -ENOENT;
  }
  return 0;
}

int datadir_exists(const char *dir) {
  char meta[4200];
  snprintf(meta, sizeof meta, "%s/%s", dir, META_FILE);
  return access(meta, F_OK) == 0;
}
