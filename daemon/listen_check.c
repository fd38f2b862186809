/* listen_check: a member's listen addresses tried before its data dir is created or opened,
 * so that a start which cannot serve (a port in use, an address not on this host) fails
 * leaving nothing behind, as etcd's does. The real listeners are opened later, on the loops
 * that serve them; a port taken in between still fails there, with the same message. */
#include "daemon/listen_check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "raft/transport/transport.h"

/* HOST:PORT of a URL: after "://", up to a path. 0, or -EINVAL when it does not fit. */
static int host_port(const char *url, char *out, size_t cap) {
  const char *p = strstr(url, "://");
  p = p ? p + 3 : url;
  size_t n = strcspn(p, "/?#");
  if (n == 0 || n >= cap) return -EINVAL;
  memcpy(out, p, n);
  out[n] = 0;
  return 0;
}

/* Binds ADDR as the listener will (SO_REUSEADDR, as libuv sets it): 0 or a negative errno. */
static int try_bind(const struct sockaddr_storage *addr) {
  int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int on = 1, rc = 0;
  socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
  if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) ||
      bind(fd, (const struct sockaddr *)addr, len))
    rc = -errno;
  close(fd);
  return rc;
}

int listen_check(const config_urls *urls, char *err, size_t errlen) {
  for (size_t i = 0; i < urls->n; i++) {
    char hp[300];
    struct sockaddr_storage addr;
    if (host_port(urls->url[i], hp, sizeof hp) || raft_transport_parse_addr(hp, &addr))
      continue; /* a host name: the listener resolves and reports it */
    int rc = try_bind(&addr);
    if (rc) {
      snprintf(err, errlen, "cannot listen on %s: %s", urls->url[i], uv_strerror(rc));
      return rc;
    }
  }
  return 0;
}
