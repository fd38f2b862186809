/* floor_server: the least an HTTP server can do for scripts/bench's GET and PUT workloads,
 * to measure what this machine's kernel and load generator leave for any real server.
 *
 * One thread, epoll, keep-alive, no parsing beyond finding the end of a request (headers and
 * a Content-Length body). Every GET gets the same canned etcd-v2-shaped answer (the headers
 * quorumd and etcd send, a 64-byte value); every PUT gets a canned 200 "set" answer. With
 * --sync, the PUT bodies of one event-loop round are appended to a file and made durable with
 * one fdatasync before their answers go out (a group commit, as small as one can be). It
 * stores nothing and serves nothing else: it is a yardstick, not a server.
 *
 * Usage: floor_server -p PORT [--sync FILE]
 * Build: cc -O2 -o floor_server floor_server.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define BUF 16384

typedef struct conn {
  int fd;
  size_t len;      /* bytes buffered in in[] */
  int pending_put; /* answers owed after this round's sync */
  char in[BUF];
} conn;

static const char GET_BODY[] =
    "{\"action\":\"get\",\"node\":{\"key\":\"/g/123\",\"value\":\""
    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\","
    "\"modifiedIndex\":1234,\"createdIndex\":1234}}\n";
static const char PUT_BODY[] =
    "{\"action\":\"set\",\"node\":{\"key\":\"/p/123\",\"value\":\""
    "vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\","
    "\"modifiedIndex\":1235,\"createdIndex\":1235}}\n";

static char get_resp[1024], put_resp[1024];
static size_t get_len, put_len;

static size_t canned(char *out, size_t cap, const char *body) {
  int n = snprintf(out, cap,
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                   "X-Etcd-Cluster-Id: cdf818194e3a8c32\r\nX-Etcd-Index: 1235\r\n"
                   "X-Raft-Index: 1240\r\nX-Raft-Term: 2\r\n"
                   "Date: Thu, 26 Nov 2026 12:00:00 GMT\r\nContent-Length: %zu\r\n\r\n%s",
                   strlen(body), body);
  return (size_t)n;
}

/* Length of the first complete request in b (headers + Content-Length body), or 0. */
static size_t request_len(const char *b, size_t n) {
  const char *end = memmem(b, n, "\r\n\r\n", 4);
  if (!end) return 0;
  size_t head = (size_t)(end - b) + 4, body = 0;
  const char *cl = memmem(b, head, "Content-Length:", 15);
  if (!cl) cl = memmem(b, head, "content-length:", 15);
  if (cl) body = strtoul(cl + 15, NULL, 10);
  return head + body <= n ? head + body : 0;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return; /* the client went away: its close comes as an event */
    p += w;
    n -= (size_t)w;
  }
}

int main(int argc, char **argv) {
  int port = 0;
  const char *sync_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-p") && i + 1 < argc) port = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--sync") && i + 1 < argc) sync_path = argv[++i];
    else {
      fprintf(stderr, "usage: floor_server -p PORT [--sync FILE]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  get_len = canned(get_resp, sizeof get_resp, GET_BODY);
  put_len = canned(put_resp, sizeof put_resp, PUT_BODY);
  int sync_fd = -1;
  if (sync_path && (sync_fd = open(sync_path, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0) {
    perror(sync_path);
    return 1;
  }
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) || listen(lfd, 1024)) {
    perror("listen");
    return 1;
  }
  int ep = epoll_create1(0);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
  static struct epoll_event evs[256];
  conn **owed = calloc(MAX_CONNS, sizeof *owed);
  char *log = malloc(1 << 20);
  for (;;) {
    int k = epoll_wait(ep, evs, 256, -1);
    size_t n_owed = 0, log_len = 0;
    for (int i = 0; i < k; i++) {
      conn *c = evs[i].data.ptr;
      if (!c) {
        int fd;
        while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          conn *nc = calloc(1, sizeof *nc);
          nc->fd = fd;
          struct epoll_event ce = {.events = EPOLLIN, .data.ptr = nc};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ce);
        }
        continue;
      }
      ssize_t r = recv(c->fd, c->in + c->len, BUF - c->len, 0);
      if (r <= 0) {
        if (r < 0 && errno == EAGAIN) continue;
        close(c->fd); /* also leaves the epoll set */
        c->fd = -1;
        if (!c->pending_put) free(c);
        continue;
      }
      c->len += (size_t)r;
      size_t q;
      while ((q = request_len(c->in, c->len))) {
        if (!memcmp(c->in, "PUT", 3)) {
          if (sync_fd >= 0) {
            size_t body = q - (size_t)((char *)memmem(c->in, q, "\r\n\r\n", 4) + 4 - c->in);
            if (log_len + body <= (1 << 20)) {
              memcpy(log + log_len, c->in + q - body, body);
              log_len += body;
            }
            if (!c->pending_put++ && n_owed < MAX_CONNS) owed[n_owed++] = c;
          } else {
            send_all(c->fd, put_resp, put_len);
          }
        } else {
          send_all(c->fd, get_resp, get_len);
        }
        memmove(c->in, c->in + q, c->len - q);
        c->len -= q;
      }
      if (c->len == BUF) c->len = 0; /* oversized: not this yardstick's business */
    }
    if (n_owed) {
      if (write(sync_fd, log, log_len) < 0 || fdatasync(sync_fd) < 0) {
        perror("sync");
        return 1;
      }
      for (size_t i = 0; i < n_owed; i++) {
        conn *c = owed[i];
        for (; c->pending_put; c->pending_put--)
          if (c->fd >= 0) send_all(c->fd, put_resp, put_len);
        if (c->fd < 0) free(c);
      }
    }
  }
}
