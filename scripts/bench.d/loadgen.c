/* loadgen: HTTP/1.1 load generator for scripts/bench (etcd v2 API).
 *
 * Plain sockets + epoll, one thread. Every connection is persistent (keep-alive) and carries
 * at most one outstanding request: no pipelining. Every answer's status code is checked;
 * the result is one JSON object on stdout.
 *
 * Modes:
 *   load   -c CONNS -n REQUESTS -m GET|PUT -k PREFIX [-K KEYSPACE] [-D DIRSIZE] [-q QUERY]
 *          [-s VALUE_BYTES] [-o OFFSET]
 *          Request i (0-based) goes to key PREFIX + i + OFFSET (distinct keys), or to
 *          PREFIX + (i % KEYSPACE) when -K is given. With -D, key i is
 *          PREFIX + "d<i/D>/k<i>" (D keys per directory).
 *          PUT expects 200 or 201, GET expects 200.
 *   watch  -r ROUNDS -k KEY: one watcher connection long-polls GET KEY?wait=true; once its
 *          answer's headers arrived (the watch is registered: etcd and quorumd both send the
 *          headers then), a writer connection PUTs KEY; latency = PUT sent -> event body
 *          complete on the watcher.
 *   fanout -w WATCHERS -r ROUNDS -k KEY: WATCHERS connections long-poll KEY; once all of them
 *          have their headers, one PUT; time = PUT sent -> the last watcher has its event.
 *
 * Common: -p PORT (host is always 127.0.0.1), -T MAX_SECONDS (stop issuing new requests),
 *         -t REQUEST_TIMEOUT_SECONDS (an answer later than this counts as a timeout and its
 *         connection is replaced).
 *
 * Build: cc -O2 -o loadgen loadgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ utilities */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "loadgen: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  exit(2);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) die("out of memory");
  return p;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* percentile of a sorted array, nearest-rank */
static double pct(const uint64_t *v, size_t n, double p) {
  if (!n) return 0;
  size_t i = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (i < 1) i = 1;
  if (i > n) i = n;
  return (double)v[i - 1];
}

/* JSON string escaping for error samples */
static void json_str(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c == '\n') fputs("\\n", f);
    else if (c == '\r') fputs("\\r", f);
    else if (c < 0x20 || c >= 0x7f) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* ------------------------------------------------------------------ options */

static int o_port = 0;
static int o_conns = 1;
static long o_requests = 1000;
static const char *o_method = "GET";
static const char *o_prefix = "/v2/keys/bench/k";
static long o_keyspace = 0;
static long o_dirsize = 0;
static long o_offset = 0;
static const char *o_query = "";
static int o_value_size = 64;
static double o_max_seconds = 60;
static double o_timeout = 10;
static int o_rounds = 100;
static int o_watchers = 500;

/* ------------------------------------------------------------------ errors */

#define MAX_SAMPLES 8
static long n_ok, n_bad_status, n_conn_err, n_timeouts, n_parse_err;
static long status_count[600];
static int n_samples;
static char *samples[MAX_SAMPLES];

static void sample(const char *fmt, ...) {
  if (n_samples >= MAX_SAMPLES) return;
  char *buf = xmalloc(1024);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, 1024, fmt, ap);
  va_end(ap);
  samples[n_samples++] = buf;
}

/* ------------------------------------------------------------------ connections */

typedef struct conn {
  int fd;
  int id;
  /* request */
  char *wbuf;
  size_t wlen, woff;
  char reqline[256]; /* "METHOD path" for error reports */
  int busy;          /* one outstanding request */
  long req_idx;
  uint64_t t_start;
  int want_status;   /* 0: 200 or 201; else exactly that */
  /* response */
  char *rbuf;
  size_t rlen, rcap;
  int hdr_done;
  size_t body_pos;
  int status;
  long clen;         /* -1: none */
  int chunked;
  int conn_close;
  size_t cpos;       /* chunk parse position */
  size_t body_len;
  uint64_t t_headers;
  int in_epoll_out;
} conn;

static int epfd;
static struct sockaddr_in srv_addr;

static void conn_reset_parse(conn *c) {
  c->hdr_done = 0;
  c->body_pos = 0;
  c->status = 0;
  c->clen = -1;
  c->chunked = 0;
  c->conn_close = 0;
  c->cpos = 0;
  c->body_len = 0;
}

static int conn_open(conn *c) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(fd, (struct sockaddr *)&srv_addr, sizeof srv_addr) < 0) {
    close(fd);
    return -1;
  }
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  c->fd = fd;
  c->rlen = 0;
  c->busy = 0;
  c->in_epoll_out = 0;
  conn_reset_parse(c);
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
  return 0;
}

static void conn_close_fd(conn *c) {
  if (c->fd >= 0) {
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
  }
  c->fd = -1;
  c->busy = 0;
  c->rlen = 0;
  conn_reset_parse(c);
}

/* reopens a connection after an error; retries for up to 1 s. Once that failed, the server
 * is taken as gone: later reopens try once only. */
static int server_down;
static long n_reconnects;
static int conn_reopen(conn *c) {
  conn_close_fd(c);
  int tries = server_down ? 1 : 50;
  for (int i = 0; i < tries; i++) {
    if (conn_open(c) == 0) {
      n_reconnects++;
      return 0;
    }
    if (i + 1 < tries) usleep(20000);
  }
  if (!server_down) sample("cannot reconnect to 127.0.0.1:%d: %s", o_port, strerror(errno));
  server_down = 1;
  return -1;
}

static void conn_set_out(conn *c, int on) {
  if (c->in_epoll_out == on) return;
  struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
  epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
  c->in_epoll_out = on;
}

/* returns 0, or -1 on a connection error */
static int conn_flush(conn *c) {
  while (c->woff < c->wlen) {
    ssize_t n = send(c->fd, c->wbuf + c->woff, c->wlen - c->woff, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        conn_set_out(c, 1);
        return 0;
      }
      return -1;
    }
    c->woff += (size_t)n;
  }
  conn_set_out(c, 0);
  return 0;
}

/* a value of n random characters [A-Za-z0-9] (form-safe), different for every request and
 * seeded by its index, so that a store that compresses gains no more than on real data */
static void make_value(char *out, int n, uint64_t seed) {
  static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  for (int i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = al[(x >> 32) % 62];
  }
}

/* builds and sends a request; body may be NULL */
static int conn_send(conn *c, const char *method, const char *target, const char *body,
                     size_t body_len) {
  size_t need = strlen(target) + body_len + 256;
  free(c->wbuf);
  c->wbuf = xmalloc(need);
  int n;
  if (body)
    n = snprintf(c->wbuf, need,
                 "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %zu\r\n\r\n",
                 method, target, o_port, body_len);
  else
    n = snprintf(c->wbuf, need, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", method, target,
                 o_port);
  if (body) {
    memcpy(c->wbuf + n, body, body_len);
    n += (int)body_len;
  }
  c->wlen = (size_t)n;
  c->woff = 0;
  snprintf(c->reqline, sizeof c->reqline, "%s %s", method, target);
  c->busy = 1;
  c->t_start = now_ns();
  conn_reset_parse(c);
  return conn_flush(c);
}

static const char *memfind(const char *h, size_t hn, const char *n, size_t nn) {
  return memmem(h, hn, n, nn);
}

/* parses what is buffered. Returns 1: response complete (c->rlen bytes consumed are at
 * [0, total)), 0: need more, -1: malformed. *headers_now is set when headers completed in
 * this call. */
static int conn_parse(conn *c, size_t *total, int *headers_now) {
  *headers_now = 0;
  if (!c->hdr_done) {
    const char *e = memfind(c->rbuf, c->rlen, "\r\n\r\n", 4);
    if (!e) return c->rlen > 65536 ? -1 : 0;
    size_t hlen = (size_t)(e - c->rbuf) + 4;
    if (c->rlen < 12 || memcmp(c->rbuf, "HTTP/1.", 7) != 0) return -1;
    c->status = atoi(c->rbuf + 9);
    /* headers */
    const char *p = memchr(c->rbuf, '\n', hlen);
    while (p && p + 1 < c->rbuf + hlen) {
      const char *ls = p + 1;
      const char *le = memchr(ls, '\n', (size_t)(c->rbuf + hlen - ls));
      if (!le) break;
      size_t ll = (size_t)(le - ls);
      if (ll > 15 && strncasecmp(ls, "Content-Length:", 15) == 0) c->clen = atol(ls + 15);
      else if (ll > 18 && strncasecmp(ls, "Transfer-Encoding:", 18) == 0 &&
               memfind(ls, ll, "chunked", 7))
        c->chunked = 1;
      else if (ll > 11 && strncasecmp(ls, "Connection:", 11) == 0 && memfind(ls, ll, "close", 5))
        c->conn_close = 1;
      p = le;
    }
    c->hdr_done = 1;
    c->body_pos = hlen;
    c->cpos = hlen;
    c->t_headers = now_ns();
    *headers_now = 1;
  }
  if (c->chunked) {
    for (;;) {
      const char *ls = c->rbuf + c->cpos;
      size_t avail = c->rlen - c->cpos;
      const char *le = memfind(ls, avail, "\r\n", 2);
      if (!le) return 0;
      char *endp;
      long sz = strtol(ls, &endp, 16);
      if (endp == ls || sz < 0) return -1;
      size_t line = (size_t)(le - ls) + 2;
      if (sz == 0) {
        /* trailers until an empty line */
        size_t q = c->cpos + line;
        for (;;) {
          const char *t = memfind(c->rbuf + q, c->rlen - q, "\r\n", 2);
          if (!t) return 0;
          size_t tl = (size_t)(t - (c->rbuf + q));
          q += tl + 2;
          if (tl == 0) break;
        }
        *total = q;
        return 1;
      }
      if (avail < line + (size_t)sz + 2) return 0;
      c->body_len += (size_t)sz;
      c->cpos += line + (size_t)sz + 2;
    }
  }
  long cl = c->clen;
  if (cl < 0) {
    if (c->status == 204 || c->status == 304 || c->status / 100 == 1) cl = 0;
    else return 0; /* until close: completed in the EOF path */
  }
  if (c->rlen - c->body_pos < (size_t)cl) return 0;
  c->body_len = (size_t)cl;
  *total = c->body_pos + (size_t)cl;
  return 1;
}

/* reads what is available. Returns bytes read, 0 on EOF, -1 on error, -2 on EAGAIN */
static ssize_t conn_read(conn *c) {
  if (c->rcap - c->rlen < 16384) {
    c->rcap = c->rcap ? c->rcap * 2 : 65536;
    c->rbuf = realloc(c->rbuf, c->rcap);
    if (!c->rbuf) die("out of memory");
  }
  for (;;) {
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen - 1, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return -2;
    if (n > 0) {
      c->rlen += (size_t)n;
      c->rbuf[c->rlen] = 0;
    }
    return n;
  }
}

static int status_ok(conn *c) {
  if (c->want_status) return c->status == c->want_status;
  return c->status == 200 || c->status == 201;
}

static void record_bad_status(conn *c) {
  n_bad_status++;
  if (c->status >= 0 && c->status < 600) status_count[c->status]++;
  size_t bl = c->rlen > c->body_pos ? c->rlen - c->body_pos : 0;
  if (bl > 300) bl = 300;
  char body[310];
  memcpy(body, c->rbuf + c->body_pos, bl);
  body[bl] = 0;
  for (size_t i = 0; i < bl; i++)
    if (body[i] == '\r' || body[i] == '\n') body[i] = ' ';
  sample("%s -> %d %s", c->reqline, c->status, body);
}

/* ------------------------------------------------------------------ mode: load */

static uint64_t *lat;
static long issued, done;
static uint64_t deadline_ns;
static uint64_t timeout_ns;

static void load_issue(conn *c) {
  if (issued >= o_requests || now_ns() >= deadline_ns || server_down) {
    c->busy = 0;
    return;
  }
  long i = issued++;
  char target[512];
  long k = o_keyspace > 0 ? (i % o_keyspace) : i + o_offset;
  if (o_dirsize > 0)
    snprintf(target, sizeof target, "%sd%04ld/k%08ld%s%s", o_prefix, k / o_dirsize, k,
             *o_query ? "?" : "", o_query);
  else
    snprintf(target, sizeof target, "%s%ld%s%s", o_prefix, k, *o_query ? "?" : "", o_query);
  c->req_idx = i;
  int put = strcmp(o_method, "PUT") == 0;
  c->want_status = put ? 0 : 200;
  int rc;
  if (put) {
    static char body[65600];
    memcpy(body, "value=", 6);
    make_value(body + 6, o_value_size, (uint64_t)k);
    int bl = 6 + o_value_size;
    rc = conn_send(c, "PUT", target, body, (size_t)bl);
  } else {
    rc = conn_send(c, "GET", target, NULL, 0);
  }
  if (rc < 0) {
    n_conn_err++;
    sample("%s -> send error: %s", c->reqline, strerror(errno));
    lat[i] = UINT64_MAX;
    done++;
    if (conn_reopen(c) == 0) load_issue(c);
  }
}

static void load_complete(conn *c, int ok) {
  uint64_t t = now_ns();
  lat[c->req_idx] = ok ? t - c->t_start : UINT64_MAX;
  done++;
  c->busy = 0;
}

/* handles readable data on c for load mode */
static void load_on_read(conn *c) {
  for (;;) {
    ssize_t n = conn_read(c);
    if (n == -2) break;
    if (n <= 0) {
      if (c->busy) {
        if (c->hdr_done && c->clen < 0 && !c->chunked) {
          /* body until close */
          if (status_ok(c)) { n_ok++; load_complete(c, 1); }
          else { record_bad_status(c); load_complete(c, 0); }
        } else {
          n_conn_err++;
          sample("%s -> %s before the answer was complete", c->reqline,
                 n == 0 ? "connection closed by the server" : strerror(errno));
          load_complete(c, 0);
        }
      }
      if (conn_reopen(c) == 0) load_issue(c);
      return;
    }
    size_t total;
    int hn;
    int r = conn_parse(c, &total, &hn);
    if (r < 0) {
      n_parse_err++;
      sample("%s -> malformed answer", c->reqline);
      load_complete(c, 0);
      if (conn_reopen(c) == 0) load_issue(c);
      return;
    }
    if (r == 1) {
      int ok = status_ok(c);
      if (ok) n_ok++;
      else record_bad_status(c);
      if (!c->busy) {
        n_parse_err++;
        sample("unsolicited answer on an idle connection");
      } else {
        load_complete(c, ok);
      }
      int cc = c->conn_close;
      if (total < c->rlen) {
        n_parse_err++;
        sample("%s -> %zu extra bytes after the answer", c->reqline, c->rlen - total);
      }
      c->rlen = 0;
      conn_reset_parse(c);
      if (cc) {
        if (conn_reopen(c) < 0) return;
      }
      load_issue(c);
      return;
    }
  }
}

static void check_timeouts(conn *cs, int nc, void (*on_timeout)(conn *)) {
  uint64_t t = now_ns();
  for (int i = 0; i < nc; i++) {
    conn *c = &cs[i];
    if (c->fd >= 0 && c->busy && t - c->t_start > timeout_ns) {
      n_timeouts++;
      sample("%s -> no complete answer within %.1f s", c->reqline, o_timeout);
      on_timeout(c);
    }
  }
}

static void load_timeout(conn *c) {
  load_complete(c, 0);
  if (conn_reopen(c) == 0) load_issue(c);
}

static void print_common(FILE *f, double elapsed) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
               (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  long errors = n_bad_status + n_conn_err + n_timeouts + n_parse_err;
  fprintf(f, "\"elapsed_s\":%.6f,\"ok\":%ld,\"errors\":%ld,\"bad_status\":%ld,"
             "\"conn_errors\":%ld,\"timeouts\":%ld,\"parse_errors\":%ld,\"client_cpu_s\":%.3f,"
             "\"reconnects\":%ld,\"server_down\":%d,",
          elapsed, n_ok, errors, n_bad_status, n_conn_err, n_timeouts, n_parse_err, cpu,
          n_reconnects, server_down);
  fprintf(f, "\"status\":{");
  int first = 1;
  for (int s = 0; s < 600; s++)
    if (status_count[s]) {
      fprintf(f, "%s\"%d\":%ld", first ? "" : ",", s, status_count[s]);
      first = 0;
    }
  fprintf(f, "},\"error_samples\":[");
  for (int i = 0; i < n_samples; i++) {
    if (i) fputc(',', f);
    json_str(f, samples[i], strlen(samples[i]));
  }
  fprintf(f, "]");
}

static void print_lat(FILE *f, const char *name, uint64_t *v, size_t n) {
  /* v: ns, UINT64_MAX = failed (excluded) */
  size_t m = 0;
  for (size_t i = 0; i < n; i++)
    if (v[i] != UINT64_MAX) v[m++] = v[i];
  qsort(v, m, sizeof *v, cmp_u64);
  double sum = 0;
  for (size_t i = 0; i < m; i++) sum += (double)v[i];
  fprintf(f, "\"%s\":{\"n\":%zu,\"mean\":%.1f,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
             "\"p999\":%.1f,\"max\":%.1f,\"min\":%.1f}",
          name, m, m ? sum / (double)m / 1e3 : 0, pct(v, m, 50) / 1e3, pct(v, m, 90) / 1e3,
          pct(v, m, 99) / 1e3, pct(v, m, 99.9) / 1e3, m ? (double)v[m - 1] / 1e3 : 0,
          m ? (double)v[0] / 1e3 : 0);
}

static int run_load(void) {
  conn *cs = calloc((size_t)o_conns, sizeof *cs);
  lat = xmalloc((size_t)o_requests * sizeof *lat);
  for (long i = 0; i < o_requests; i++) lat[i] = UINT64_MAX;
  for (int i = 0; i < o_conns; i++) {
    cs[i].id = i;
    cs[i].fd = -1;
    if (conn_open(&cs[i]) < 0) die("connect 127.0.0.1:%d: %s", o_port, strerror(errno));
  }
  uint64_t t0 = now_ns();
  deadline_ns = t0 + (uint64_t)(o_max_seconds * 1e9);
  for (int i = 0; i < o_conns; i++) load_issue(&cs[i]);
  struct epoll_event evs[256];
  uint64_t last_check = t0;
  for (;;) {
    int busy = 0;
    for (int i = 0; i < o_conns && !busy; i++) busy = cs[i].busy;
    if (!busy) break;
    int n = epoll_wait(epfd, evs, 256, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
    for (int i = 0; i < n; i++) {
      conn *c = evs[i].data.ptr;
      if (c->fd < 0) continue;
      if (evs[i].events & EPOLLOUT) {
        if (conn_flush(c) < 0) {
          n_conn_err++;
          sample("%s -> send error", c->reqline);
          load_complete(c, 0);
          if (conn_reopen(c) == 0) load_issue(c);
          continue;
        }
      }
      if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) load_on_read(c);
    }
    uint64_t t = now_ns();
    if (t - last_check > 100000000ull) {
      last_check = t;
      check_timeouts(cs, o_conns, load_timeout);
    }
  }
  double elapsed = (double)(now_ns() - t0) / 1e9;
  printf("{\"mode\":\"load\",\"method\":\"%s\",\"conns\":%d,\"requested\":%ld,\"issued\":%ld,"
         "\"completed\":%ld,\"ops_s\":%.1f,",
         o_method, o_conns, o_requests, issued, done, elapsed > 0 ? (double)n_ok / elapsed : 0);
  print_common(stdout, elapsed);
  printf(",");
  print_lat(stdout, "lat_us", lat, (size_t)issued);
  printf("}\n");
  for (int i = 0; i < o_conns; i++) conn_close_fd(&cs[i]);
  return 0;
}

/* ------------------------------------------------------------------ blocking helpers for watch modes */

/* waits on epoll until conn c's answer has headers (want_full=0) or is complete (1), or the
 * deadline passes. Events for other connections are dispatched to `other` (may be NULL).
 * Returns 1 done, 0 timeout, -1 error. */
typedef struct wctx {
  conn *cs;
  int nc;
  int headers;   /* connections with headers */
  int complete;  /* connections with a complete answer */
  uint64_t last_complete_ns;
  uint64_t *t_complete; /* per connection */
} wctx;

/* reads and parses c; updates flags. Returns -1 on a connection error. */
static int watch_pump(conn *c, wctx *w) {
  for (;;) {
    ssize_t n = conn_read(c);
    if (n == -2) return 0;
    if (n <= 0) {
      if (c->busy) {
        n_conn_err++;
        sample("%s -> %s before the answer was complete", c->reqline,
               n == 0 ? "connection closed by the server" : strerror(errno));
      }
      return -1;
    }
    size_t total;
    int hn;
    int r = conn_parse(c, &total, &hn);
    if (r < 0) {
      n_parse_err++;
      sample("%s -> malformed answer", c->reqline);
      return -1;
    }
    if (hn && w) w->headers++;
    if (r == 1) {
      uint64_t t = now_ns();
      if (!status_ok(c)) {
        record_bad_status(c);
      } else if (c->body_len == 0 && c->want_status == 200) {
        n_parse_err++;
        sample("%s -> empty body", c->reqline);
      } else {
        n_ok++;
      }
      c->busy = 0;
      if (w) {
        w->complete++;
        w->last_complete_ns = t;
        if (w->t_complete) w->t_complete[c->id] = t;
      }
      int cc = c->conn_close;
      c->rlen = 0;
      if (cc) return -1;
      return 0;
    }
  }
}

static int run_watch_common(int nwatchers) {
  /* connections 0..nwatchers-1 watch, connection nwatchers writes */
  int nc = nwatchers + 1;
  conn *cs = calloc((size_t)nc, sizeof *cs);
  for (int i = 0; i < nc; i++) {
    cs[i].id = i;
    cs[i].fd = -1;
    if (conn_open(&cs[i]) < 0) die("connect 127.0.0.1:%d: %s", o_port, strerror(errno));
  }
  conn *wr = &cs[nwatchers];
  uint64_t *t_done = xmalloc((size_t)nc * sizeof *t_done);
  uint64_t *round_all = xmalloc((size_t)o_rounds * sizeof *round_all);   /* last watcher */
  uint64_t *round_first = xmalloc((size_t)o_rounds * sizeof *round_first);
  uint64_t *round_med = xmalloc((size_t)o_rounds * sizeof *round_med);
  uint64_t *put_lat = xmalloc((size_t)o_rounds * sizeof *put_lat);
  uint64_t *all_lat = xmalloc((size_t)o_rounds * (size_t)nwatchers * sizeof *all_lat);
  size_t n_all = 0;
  int rounds_done = 0, incomplete_rounds = 0, no_header_rounds = 0;
  uint64_t t0 = now_ns();
  deadline_ns = t0 + (uint64_t)(o_max_seconds * 1e9);
  char watch_target[512], put_target[512];
  snprintf(watch_target, sizeof watch_target, "%s?wait=true", o_prefix);
  snprintf(put_target, sizeof put_target, "%s", o_prefix);
  struct epoll_event evs[512];
  for (int r = 0; r < o_rounds && now_ns() < deadline_ns && !server_down; r++) {
    wctx w = {cs, nc, 0, 0, 0, t_done};
    for (int i = 0; i < nc; i++) t_done[i] = UINT64_MAX;
    /* 1: all watchers send their long poll */
    for (int i = 0; i < nwatchers; i++) {
      conn *c = &cs[i];
      if (c->fd < 0 && conn_reopen(c) < 0) continue;
      c->want_status = 200;
      if (conn_send(c, "GET", watch_target, NULL, 0) < 0) {
        n_conn_err++;
        sample("%s -> send error", c->reqline);
        conn_close_fd(c);
      }
    }
    /* 2: wait until all have headers (registered) */
    uint64_t hdl = now_ns() + (uint64_t)(o_timeout * 1e9);
    int live = 0;
    for (int i = 0; i < nwatchers; i++) live += cs[i].fd >= 0;
    while (w.headers < live && now_ns() < hdl) {
      int n = epoll_wait(epfd, evs, 512, 50);
      for (int i = 0; i < n; i++) {
        conn *c = evs[i].data.ptr;
        if (c->fd < 0) continue;
        if (evs[i].events & EPOLLOUT) conn_flush(c);
        if (watch_pump(c, &w) < 0) { conn_close_fd(c); live--; }
      }
    }
    if (w.headers < live) {
      no_header_rounds++;
      sample("round %d: only %d of %d watchers got their headers within %.1f s", r, w.headers,
             live, o_timeout);
    }
    if (w.complete > 0) {
      n_parse_err++;
      sample("round %d: %d watchers answered before the PUT", r, w.complete);
    }
    /* 3: the PUT */
    char body[128];
    int bl = snprintf(body, sizeof body, "value=round-%d", r);
    wr->want_status = 0;
    if (wr->fd < 0 && conn_reopen(wr) < 0) break;
    uint64_t tput = now_ns();
    if (conn_send(wr, "PUT", put_target, body, (size_t)bl) < 0) {
      n_conn_err++;
      sample("%s -> send error", wr->reqline);
      conn_close_fd(wr);
    }
    int want = live + (wr->fd >= 0 ? 1 : 0);
    uint64_t dl = now_ns() + (uint64_t)(o_timeout * 1e9);
    int put_done = 0;
    while (w.complete < want && now_ns() < dl) {
      int n = epoll_wait(epfd, evs, 512, 50);
      for (int i = 0; i < n; i++) {
        conn *c = evs[i].data.ptr;
        if (c->fd < 0) continue;
        if (evs[i].events & EPOLLOUT) conn_flush(c);
        int before = w.complete;
        if (watch_pump(c, &w) < 0) {
          conn_close_fd(c);
          want--;
        }
        if (c == wr && w.complete > before && !put_done) {
          put_done = 1;
          put_lat[r] = t_done[wr->id] - tput;
        }
      }
    }
    if (!put_done) put_lat[r] = UINT64_MAX;
    int got = 0;
    uint64_t first = UINT64_MAX, last = 0;
    uint64_t *this_round = all_lat + n_all;
    for (int i = 0; i < nwatchers; i++) {
      if (t_done[i] == UINT64_MAX) continue;
      uint64_t d = t_done[i] - tput;
      all_lat[n_all++] = d;
      got++;
      if (d < first) first = d;
      if (d > last) last = d;
    }
    if (got < nwatchers) {
      incomplete_rounds++;
      /* connections that closed are counted as connection errors already */
      int waiting = 0;
      for (int i = 0; i < nc; i++)
        if (cs[i].fd >= 0 && cs[i].busy) waiting++;
      n_timeouts += waiting;
      sample("round %d: only %d of %d watchers got the event (%d still waiting after %.1f s, "
             "the others' connections closed)", r, got, nwatchers, waiting, o_timeout);
      /* replace the connections still waiting */
      for (int i = 0; i < nc; i++)
        if (cs[i].busy || cs[i].fd < 0) conn_reopen(&cs[i]);
      round_all[r] = UINT64_MAX;
    } else {
      round_all[r] = last;
    }
    round_first[r] = got ? first : UINT64_MAX;
    {
      /* median of this round */
      uint64_t *tmp = xmalloc((size_t)(got ? got : 1) * sizeof *tmp);
      memcpy(tmp, this_round, (size_t)got * sizeof *tmp);
      qsort(tmp, (size_t)got, sizeof *tmp, cmp_u64);
      round_med[r] = got ? tmp[(got - 1) / 2] : UINT64_MAX;
      free(tmp);
    }
    rounds_done++;
  }
  double elapsed = (double)(now_ns() - t0) / 1e9;
  printf("{\"mode\":\"%s\",\"watchers\":%d,\"rounds\":%d,\"rounds_done\":%d,"
         "\"incomplete_rounds\":%d,\"rounds_without_all_headers\":%d,",
         nwatchers == 1 ? "watch" : "fanout", nwatchers, o_rounds, rounds_done,
         incomplete_rounds, no_header_rounds);
  print_common(stdout, elapsed);
  printf(",");
  /* watch: per-event latency; fanout: time until all watchers have it, per round */
  print_lat(stdout, "event_us", all_lat, n_all);
  printf(",");
  print_lat(stdout, "all_us", round_all, (size_t)rounds_done);
  printf(",");
  print_lat(stdout, "first_us", round_first, (size_t)rounds_done);
  printf(",");
  print_lat(stdout, "median_watcher_us", round_med, (size_t)rounds_done);
  printf(",");
  print_lat(stdout, "put_us", put_lat, (size_t)rounds_done);
  printf("}\n");
  return 0;
}

/* ------------------------------------------------------------------ main */

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen load|watch|fanout -p PORT [-c CONNS] [-n REQUESTS] [-m GET|PUT]\n"
          "         [-k PATH_PREFIX] [-K KEYSPACE] [-D DIRSIZE] [-o OFFSET] [-q QUERY]\n"
          "         [-s VALUE_BYTES] [-r ROUNDS] [-w WATCHERS] [-T MAX_SECONDS] [-t TIMEOUT_S]\n");
  exit(2);
}

int main(int argc, char **argv) {
  if (argc < 2) usage();
  const char *mode = argv[1];
  int opt;
  optind = 2;
  while ((opt = getopt(argc, argv, "p:c:n:m:k:K:D:o:q:s:r:w:T:t:")) != -1) {
    switch (opt) {
      case 'p': o_port = atoi(optarg); break;
      case 'c': o_conns = atoi(optarg); break;
      case 'n': o_requests = atol(optarg); break;
      case 'm': o_method = optarg; break;
      case 'k': o_prefix = optarg; break;
      case 'K': o_keyspace = atol(optarg); break;
      case 'D': o_dirsize = atol(optarg); break;
      case 'o': o_offset = atol(optarg); break;
      case 'q': o_query = optarg; break;
      case 's': o_value_size = atoi(optarg); break;
      case 'r': o_rounds = atoi(optarg); break;
      case 'w': o_watchers = atoi(optarg); break;
      case 'T': o_max_seconds = atof(optarg); break;
      case 't': o_timeout = atof(optarg); break;
      default: usage();
    }
  }
  if (o_port <= 0 || o_conns <= 0 || o_requests <= 0 || o_value_size < 0 ||
      o_value_size > 60000)
    usage();
  if (strcmp(o_method, "GET") && strcmp(o_method, "PUT")) usage();
  timeout_ns = (uint64_t)(o_timeout * 1e9);
  srv_addr.sin_family = AF_INET;
  srv_addr.sin_port = htons((uint16_t)o_port);
  srv_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) die("epoll_create1: %s", strerror(errno));
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (strcmp(mode, "load") == 0) return run_load();
  if (strcmp(mode, "watch") == 0) return run_watch_common(1);
  if (strcmp(mode, "fanout") == 0) return run_watch_common(o_watchers);
  usage();
  return 2;
}
