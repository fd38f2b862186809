/* notify_systemd: the sd_notify datagram (see notify_systemd.h). */
#include "daemon/notify_systemd.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_systemd(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (!path || !*path) return 1;
  size_t len = strlen(path);
  struct sockaddr_un a;
  memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if ((path[0] != '/' && path[0] != '@') || len < 2 || len > sizeof a.sun_path) return -EINVAL;
  memcpy(a.sun_path, path, len);
  if (path[0] == '@') a.sun_path[0] = 0; /* the abstract namespace */
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
  if (path[0] == '/' && len < sizeof a.sun_path) alen++; /* with its NUL */
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&a, alen);
  int e = n < 0 ? -errno : 0;
  close(fd);
  return e;
}

void notify_systemd_ready(void) {
  int rc = notify_systemd("READY=1");
  if (rc < 0) fprintf(stderr, "quorumd: cannot notify systemd (NOTIFY_SOCKET): %s\n", strerror(-rc));
}
