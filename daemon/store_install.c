/* store_install: putting a whole-store snapshot in place of the tree, in batches of bounded
 * size, so that a follower brought back by a large snapshot does not hold it several times
 * over (one LevelDB WriteBatch and a memtable as large as the snapshot), and without readers
 * or a crash ever seeing half of it.
 *
 * - Readers: GETs and the expiry scan read through a store_view (here). While batches are written,
 *   it is the store as it was before the install (a LevelDB snapshot pinned here); readers see
 *   the new tree once all of it is written.
 * - Crashes: the snapshot is first written to `snapshot.install` in the store's directory,
 *   synced, under its final name only once complete. A member stopped while the batches are
 *   written finds the file at its next start and writes them all again from it
 *   (store_install_redo), so the tree is never left half old and half new. The file goes once
 *   the last batch (with the snapshot's Raft state) is synced. The tree holds a mark
 *   (STORE_INSTALL_MARK) from the first batch to the last, so that a copy of its files taken
 *   meanwhile (quorumctl backup) is known to need the file, and a tree left halfway without
 *   it is refused rather than served. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/store_i.h"

#define INSTALL_FILE STORE_INSTALL_FILE
#define INSTALL_TMP STORE_INSTALL_FILE ".tmp"
#define INSTALL_MAGIC "QINST1\n"
#define INSTALL_MAGIC_LEN 7
#define INSTALL_BATCH_DEFAULT (4u << 20)

static void install_path(const store *s, const char *name, char *out, size_t cap) {
  snprintf(out, cap, "%s/%s", s->dir, name);
}

static int sync_dir(const store *s) {
  int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return -errno;
  int rc = fsync(fd) ? -errno : 0;
  close(fd);
  return rc;
}

static int write_all(int fd, const void *p, size_t len) {
  const char *c = p;
  while (len) {
    ssize_t w = write(fd, c, len);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -errno;
    c += w;
    len -= (size_t)w;
  }
  return 0;
}

void store_set_install_hook(store *s, size_t batch, int (*hook)(void *arg, unsigned batches),
                            void *arg) {
  s->install_batch = batch;
  s->install_hook = hook;
  s->install_hook_arg = arg;
}

void store_view_begin(store *s, store_view *v) {
  for (;;) {
    uint64_t gen = atomic_load(&s->install_gen);
    if (gen & 1) { /* an install is being written: the store as it was before */
      pthread_mutex_lock(&s->pin_mu);
      v->snap = s->install_pin;
      if (v->snap) s->pin_users++;
      pthread_mutex_unlock(&s->pin_mu);
      if (!v->snap) continue; /* (it ended meanwhile) */
      v->pinned = 1;
      break;
    }
    v->snap = leveldb_create_snapshot(s->db);
    /* Made before the install's first batch if none began since the load above: LevelDB
     * orders the snapshot and the batch under its mutex, and the install counts before it. */
    if (atomic_load(&s->install_gen) == gen) {
      v->pinned = 0;
      break;
    }
    leveldb_release_snapshot(s->db, v->snap);
  }
  v->ro = leveldb_readoptions_create();
  leveldb_readoptions_set_snapshot(v->ro, v->snap);
}

void store_view_end(store *s, store_view *v) {
  leveldb_readoptions_destroy(v->ro);
  if (!v->pinned) {
    leveldb_release_snapshot(s->db, v->snap);
    return;
  }
  pthread_mutex_lock(&s->pin_mu);
  if (--s->pin_users == 0) pthread_cond_broadcast(&s->pin_cv);
  pthread_mutex_unlock(&s->pin_mu);
}

/* The file: magic, be64 meta length, meta, be64 dump length, dump. */
static int file_write(store *s, const char *data, size_t len, const void *meta, size_t meta_len) {
  char tmp[4096], fin[4096];
  install_path(s, INSTALL_TMP, tmp, sizeof tmp);
  install_path(s, INSTALL_FILE, fin, sizeof fin);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return -errno;
  sbuf head = {0};
  sbuf_put(&head, INSTALL_MAGIC, INSTALL_MAGIC_LEN);
  sbuf_put_be64(&head, meta_len);
  if (meta_len) sbuf_put(&head, meta, meta_len);
  sbuf_put_be64(&head, len);
  int rc = head.p ? write_all(fd, head.p, head.len) : -ENOMEM;
  sbuf_free(&head);
  if (!rc) rc = write_all(fd, data, len);
  if (!rc && s->sync && fdatasync(fd)) rc = -errno;
  if (close(fd) && !rc) rc = -errno;
  if (!rc && rename(tmp, fin)) rc = -errno;
  if (!rc && s->sync) rc = sync_dir(s);
  if (rc) unlink(tmp);
  return rc;
}

static void file_remove(store *s) {
  char fin[4096];
  install_path(s, INSTALL_FILE, fin, sizeof fin);
  if (unlink(fin) == 0 && s->sync) sync_dir(s);
}

int store_install_check(const char *data, size_t len) {
  const unsigned char *p = (const unsigned char *)data, *end = p + len;
  if (len < STORE_SNAP_MAGIC_LEN || memcmp(p, STORE_SNAP_MAGIC, STORE_SNAP_MAGIC_LEN))
    return -EINVAL;
  for (p += STORE_SNAP_MAGIC_LEN; p < end;) {
    if (end - p < 4) return -EINVAL;
    uint32_t kl = codec_get_be32(p);
    p += 4;
    if ((size_t)(end - p) < (size_t)kl + 4) return -EINVAL;
    p += kl;
    uint32_t vl = codec_get_be32(p);
    p += 4;
    if ((size_t)(end - p) < vl) return -EINVAL;
    p += vl;
  }
  return 0;
}

/* Writes wb (and empties it); the last one synced. */
static int batch_write(store *s, leveldb_writebatch_t *wb, int last) {
  char *lerr = NULL;
  leveldb_write(s->db, last && s->sync ? s->wopts_sync : s->wopts_nosync, wb, &lerr);
  leveldb_writebatch_clear(wb);
  if (lerr) {
    fprintf(stderr, "quorumd: cannot install a snapshot: %s\n", lerr);
    leveldb_free(lerr);
    return -EIO;
  }
  return 0;
}

/* Every key deleted, then the dump's keys put, then META at META_KEY, in batches of about
 * s->install_batch bytes. A batch is written when full; between batches the test hook may
 * stop the install (as a crash would). */
static int write_batches(store *s, const char *data, size_t len, const void *meta,
                         size_t meta_len) {
  size_t cap = s->install_batch ? s->install_batch : INSTALL_BATCH_DEFAULT;
  leveldb_writebatch_t *wb = leveldb_writebatch_create();
  size_t bytes = 0;
  unsigned written = 0;
  int rc = 0;
#define FLUSH_IF_FULL()                                                                   \
  if (bytes >= cap) {                                                                     \
    bytes = 0;                                                                            \
    if ((rc = batch_write(s, wb, 0))) break;                                              \
    if (s->install_hook && (rc = s->install_hook(s->install_hook_arg, ++written))) break; \
  }
  /* (the iterator reads the store as it was when it was made, whatever is deleted after) */
  leveldb_iterator_t *it = leveldb_create_iterator(s->db, s->ropts);
  /* The tree is marked from the first batch to the last: a copy of the files taken meanwhile
   * (quorumctl backup) is known to need snapshot.install. */
  leveldb_writebatch_put(wb, STORE_INSTALL_MARK, strlen(STORE_INSTALL_MARK), "1", 1);
  for (leveldb_iter_seek_to_first(it); leveldb_iter_valid(it); leveldb_iter_next(it)) {
    size_t kl;
    const char *k = leveldb_iter_key(it, &kl);
    leveldb_writebatch_delete(wb, k, kl);
    bytes += kl + 8;
    FLUSH_IF_FULL();
  }
  leveldb_iter_destroy(it);
  const unsigned char *p = (const unsigned char *)data + STORE_SNAP_MAGIC_LEN;
  const unsigned char *end = (const unsigned char *)data + len;
  while (!rc && p < end) {
    uint32_t kl = codec_get_be32(p);
    const char *k = (const char *)p + 4;
    p += 4 + kl;
    uint32_t vl = codec_get_be32(p);
    leveldb_writebatch_put(wb, k, kl, (const char *)p + 4, vl);
    p += 4 + vl;
    bytes += kl + vl + 8;
    FLUSH_IF_FULL();
  }
#undef FLUSH_IF_FULL
  if (!rc) {
    leveldb_writebatch_delete(wb, STORE_INSTALL_MARK, strlen(STORE_INSTALL_MARK));
    /* (after the dump's own, which may hold the sender's) */
    if (meta)
      leveldb_writebatch_put(wb, STORE_SNAP_META_KEY, strlen(STORE_SNAP_META_KEY), meta,
                             meta_len);
    rc = batch_write(s, wb, 1);
  }
  leveldb_writebatch_destroy(wb);
  return rc;
}

/* The store's in-memory state after the tree was replaced. */
static int reload(store *s) {
  overlay_clear(&s->ovl);
  overlay_clear(&s->dirs);
  int rc = store_reload_meta(s);
  if (!rc) rc = store_removed_load(s);
  return rc;
}

int store_snapshot_restore(store *s, const char *data, size_t len, const void *meta,
                           size_t meta_len) {
  /* Validate the whole dump before touching anything. */
  if (store_install_check(data, len)) return -EINVAL;
  if (store_group_flush(s)) return -EIO;
  int rc = file_write(s, data, len, meta, meta_len);
  if (rc) {
    fprintf(stderr, "quorumd: cannot write %s/%s: %s\n", s->dir, INSTALL_FILE, strerror(-rc));
    return rc;
  }
  /* Readers keep the store as it is until every batch is written. */
  pthread_mutex_lock(&s->pin_mu);
  s->install_pin = leveldb_create_snapshot(s->db);
  pthread_mutex_unlock(&s->pin_mu);
  atomic_fetch_add(&s->install_gen, 1); /* odd: readers use the pin */
  rc = write_batches(s, data, len, meta, meta_len);
  atomic_fetch_add(&s->install_gen, 1);
  pthread_mutex_lock(&s->pin_mu);
  while (s->pin_users) pthread_cond_wait(&s->pin_cv, &s->pin_mu);
  leveldb_release_snapshot(s->db, s->install_pin);
  s->install_pin = NULL;
  pthread_mutex_unlock(&s->pin_mu);
  /* On failure the file stays: the next start writes the batches again from it. */
  if (rc) return rc;
  file_remove(s);
  rc = reload(s);
  return rc ? rc : store_history_reload(s);
}

int store_install_redo(store *s) {
  char fin[4096], tmp[4096];
  install_path(s, INSTALL_TMP, tmp, sizeof tmp);
  install_path(s, INSTALL_FILE, fin, sizeof fin);
  unlink(tmp); /* (never complete: the install had not begun) */
  int fd = open(fin, O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    /* No install to complete; a tree marked as halfway through one lost its copy. */
    char *lerr = NULL;
    size_t vl = 0;
    char *v = leveldb_get(s->db, s->ropts, STORE_INSTALL_MARK, strlen(STORE_INSTALL_MARK), &vl,
                          &lerr);
    int marked = v != NULL;
    leveldb_free(v);
    if (lerr) {
      leveldb_free(lerr);
      return -EIO;
    }
    return marked ? -EUCLEAN : 0;
  }
  if (fd < 0) return -errno;
  struct stat st;
  if (fstat(fd, &st)) {
    int e = -errno;
    close(fd);
    return e;
  }
  size_t size = (size_t)st.st_size;
  void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  close(fd);
  if (map == MAP_FAILED) return -EINVAL;
  madvise(map, size, MADV_SEQUENTIAL);
  const char *p = map;
  int rc = -EINVAL;
  if (size >= INSTALL_MAGIC_LEN + 16 && !memcmp(p, INSTALL_MAGIC, INSTALL_MAGIC_LEN)) {
    uint64_t ml = codec_get_be64(p + INSTALL_MAGIC_LEN);
    if (ml <= size - INSTALL_MAGIC_LEN - 16) {
      const char *meta = p + INSTALL_MAGIC_LEN + 8;
      uint64_t dl = codec_get_be64(meta + ml);
      const char *dump = meta + ml + 8;
      if (dl == size - INSTALL_MAGIC_LEN - 16 - ml && !store_install_check(dump, dl)) {
        fprintf(stderr, "quorumd: writing the snapshot in %s again (the member stopped while "
                        "installing it)\n", fin);
        rc = write_batches(s, dump, dl, ml ? meta : NULL, ml);
      }
    }
  }
  munmap(map, size);
  if (rc == -EINVAL) {
    fprintf(stderr, "quorumd: %s is not a complete snapshot\n", fin);
    return rc;
  }
  if (!rc) file_remove(s);
  return rc;
}
