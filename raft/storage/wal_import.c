/* wal_import: a LevelDB Raft log (ldb_storage) copied into a new WAL (see header). */
#include "raft/storage/wal_import.h"

#include <errno.h>
#include <fcntl.h>
#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "raft/storage/ldb_storage.h"
#include "raft/storage/wal_storage.h"

#define IMPORT_BATCH_BYTES (4u << 20)

static int sync_dir_of(const char *path) {
  char parent[4096];
  snprintf(parent, sizeof parent, "%s", path);
  char *slash = strrchr(parent, '/');
  if (slash == parent) slash[1] = 0;
  else if (slash) *slash = 0;
  else snprintf(parent, sizeof parent, ".");
  int fd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fsync(fd) ? -errno : 0;
  close(fd);
  return rc;
}

static int copy_log(raft_ldb *l, raft_wal *w) {
  raft_hard_state hs;
  raft_conf_state cs;
  raft_ldb_initial(l, &hs, &cs);
  const raft_storage *st = raft_ldb_storage(l);
  uint64_t first = raft_ldb_first_index(l), last = raft_ldb_last_index(l);
  int rc;
  if (first > 1) {
    raft_snapshot_meta m = {.index = first - 1, .conf = cs};
    if ((rc = st->term(st->ctx, first - 1, &m.term))) return rc;
    if ((rc = raft_wal_save(w, NULL, &m, NULL, 0, false))) return rc;
  }
  for (uint64_t i = first; i <= last;) {
    raft_entry *ents;
    size_t n;
    if ((rc = st->entries(st->ctx, i, last + 1, IMPORT_BATCH_BYTES, &ents, &n))) return rc;
    rc = raft_wal_save(w, NULL, NULL, ents, n, false);
    raft_entries_free(ents, n);
    if (rc) return rc;
    i += n;
  }
  if ((rc = raft_wal_set_conf(w, &cs))) return rc;
  return raft_wal_save(w, &hs, NULL, NULL, 0, true); /* the last write, synced */
}

int raft_wal_import_ldb(const char *ldb_path, const char *wal_dir, char *err, size_t errlen) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", wal_dir) >= (int)sizeof tmp) return -ENAMETOOLONG;
  int rc = raft_wal_remove(tmp);
  if (rc) {
    snprintf(err, errlen, "cannot remove %s: %s", tmp, strerror(-rc));
    return rc;
  }
  raft_ldb *l;
  if ((rc = raft_ldb_open(&l, ldb_path, false, true, err, errlen))) return rc;
  raft_wal *w;
  rc = raft_wal_open(&w, tmp, &(raft_wal_opts){.create = true, .sync = true}, err, errlen);
  if (rc) {
    raft_ldb_close(l);
    return rc;
  }
  rc = copy_log(l, w);
  raft_wal_close(w);
  raft_ldb_close(l);
  if (rc) {
    snprintf(err, errlen, "cannot copy the raft log of %s into %s: %s", ldb_path, tmp,
             raft_strerror(rc));
    return -EIO;
  }
  if (rename(tmp, wal_dir) != 0 || (rc = sync_dir_of(wal_dir)) != 0) {
    rc = rc ? rc : -errno;
    snprintf(err, errlen, "cannot rename %s to %s: %s", tmp, wal_dir, strerror(-rc));
    return rc;
  }
  /* The WAL is in place: the LevelDB is no longer read. */
  leveldb_options_t *o = leveldb_options_create();
  char *lerr = NULL;
  leveldb_destroy_db(o, ldb_path, &lerr);
  leveldb_options_destroy(o);
  if (lerr) {
    fprintf(stderr, "quorumd: warning: the old raft log %s could not be removed: %s\n",
            ldb_path, lerr);
    leveldb_free(lerr);
  } else {
    rmdir(ldb_path);
  }
  return 0;
}
