/* log_journal: a stream to journald for the log (see log_journal.h). */
#include "daemon/log_journal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int log_journal_stream(const char *path, const char *identifier, char *err, size_t errlen) {
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (strlen(path) >= sizeof a.sun_path) {
    snprintf(err, errlen, "can't find journal (%s: path too long)", path);
    return -ENAMETOOLONG;
  }
  memcpy(a.sun_path, path, strlen(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    int e = errno;
    snprintf(err, errlen, "can't find journal (connect %s: %s)", path, strerror(e));
    if (fd >= 0) close(fd);
    return -e;
  }
  shutdown(fd, SHUT_RD);
  /* identifier, unit id, priority (6: info), level prefix, to syslog, to kmsg, to console */
  char head[256];
  int n = snprintf(head, sizeof head, "%s\n\n6\n0\n0\n0\n0\n", identifier);
  for (int off = 0; n > 0 && off < n;) {
    ssize_t w = write(fd, head + off, (size_t)(n - off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) {
      int e = errno;
      snprintf(err, errlen, "can't write to journal (%s: %s)", path, strerror(e));
      close(fd);
      return -e;
    }
    off += (int)w;
  }
  return fd;
}
