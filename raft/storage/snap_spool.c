/* snap_spool: owns mapping nameless files for snapshots' bytes (snap_spool.h). */
#include "raft/storage/snap_spool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

uint8_t *raft_spool_map(const char *dir, uint64_t size) {
  if (!size) {
    errno = EINVAL;
    return NULL;
  }
  int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/snapshot.spool.XXXXXX", dir) >= (int)sizeof path) {
      errno = ENAMETOOLONG;
      return NULL;
    }
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0) unlink(path);
  }
  if (fd < 0) return NULL;
  int rc = posix_fallocate(fd, 0, (off_t)size);
  if (rc == EOPNOTSUPP || rc == EINVAL) rc = ftruncate(fd, (off_t)size) ? errno : 0;
  void *map = MAP_FAILED;
  if (!rc) map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int e = rc ? rc : errno;
  close(fd);
  if (map == MAP_FAILED) {
    errno = e;
    return NULL;
  }
  return map;
}

void raft_spool_release(raft_buf data) {
  if (data.base) munmap(data.base, data.len);
}
