/* Unit tests of proto/v2_client.c: the key path (Go's path.Clean and URL path escaping), query
 * parameters, the endpoint list (scheme added, order kept), the parsing of v2 error, event and
 * member bodies, ClusterError's texts, and the failover through refused endpoints to one that
 * answers (a one-shot HTTP responder on 127.0.0.1 in a thread). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <curl/curl.h>

#include "proto/v2_client.h"

/* ------------------------------------------------------------------ URL building */

static void assert_keys_path(const char *key, const char *want) {
  proto_v2_buf b = {0};
  proto_v2_keys_path(&b, key);
  assert_false(b.oom);
  assert_non_null(b.s);
  assert_string_equal(b.s, want);
  proto_v2_buf_free(&b);
}

static void test_keys_path_clean_and_escape(void **state) {
  (void)state;
  assert_keys_path("/a/b", "/v2/keys/a/b");
  assert_keys_path("a/b", "/v2/keys/a/b");             /* a missing leading slash */
  assert_keys_path("/a/b/", "/v2/keys/a/b/");          /* a trailing slash is kept */
  assert_keys_path("//a///b", "/v2/keys/a/b");
  assert_keys_path("/a/./c/../b", "/v2/keys/a/b");
  assert_keys_path("/", "/v2/keys/");
  assert_keys_path("", "/v2/keys/");
  assert_keys_path("/../..", "/");                     /* path.Clean("/v2/keys/../..") */
  assert_keys_path("/sp ace/\xc3\xbcn\xc3\xaf", "/v2/keys/sp%20ace/%C3%BCn%C3%AF");
  assert_keys_path("/q?x#y", "/v2/keys/q%3Fx%23y");
  assert_keys_path("/a%b", "/v2/keys/a%25b");
  /* kept as they are in a Go URL path */
  assert_keys_path("/k-_.~$&+,:;=@", "/v2/keys/k-_.~$&+,:;=@");
  assert_keys_path("/k!*'()\"<>", "/v2/keys/k%21%2A%27%28%29%22%3C%3E");
}

static void test_add_param(void **state) {
  (void)state;
  proto_v2_buf b = {0};
  proto_v2_add_param(&b, "value", "a b&c=d/\xc3\xa9~");
  assert_string_equal(b.s, "value=a+b%26c%3Dd%2F%C3%A9~");
  proto_v2_add_param(&b, "ttl", "");
  assert_string_equal(b.s, "value=a+b%26c%3Dd%2F%C3%A9~&ttl=");
  proto_v2_buf_free(&b);

  proto_v2_buf_adds(&b, "/v2/keys/a?");
  proto_v2_add_param(&b, "recursive", "true");
  proto_v2_add_param(&b, "sorted", "false");
  assert_string_equal(b.s, "/v2/keys/a?recursive=true&sorted=false");
  proto_v2_buf_free(&b);
  assert_null(b.s);
}

/* ------------------------------------------------------------------ bodies */

static void test_parse_error(void **state) {
  (void)state;
  proto_v2_error e;
  assert_int_equal(proto_v2_parse_error(
                       "{\"errorCode\":100,\"message\":\"Key not found\",\"cause\":\"/a\",\"index\":7}", &e),
                   0);
  assert_int_equal(e.code, 100);
  assert_string_equal(e.message, "Key not found");
  assert_string_equal(e.cause, "/a");
  assert_int_equal(e.index, 7);
  proto_v2_error_free(&e);

  /* the members API's {"message": ...}: absent fields are empty */
  assert_int_equal(proto_v2_parse_error("{\"message\":\"No such member: 1\"}", &e), 0);
  assert_int_equal(e.code, 0);
  assert_string_equal(e.message, "No such member: 1");
  assert_string_equal(e.cause, "");
  assert_int_equal(e.index, 0);
  proto_v2_error_free(&e);

  assert_int_equal(proto_v2_parse_error("404 page not found\n", &e), -1);
  assert_int_equal(proto_v2_parse_error("[1,2]", &e), -1);
  assert_int_equal(proto_v2_parse_error("", &e), -1);
}

static void test_parse_event(void **state) {
  (void)state;
  proto_v2_event ev;
  const char *body =
      "{\"action\":\"compareAndSwap\",\"node\":{\"key\":\"/d\",\"dir\":true,\"nodes\":["
      "{\"key\":\"/d/a\",\"value\":\"1\",\"expiration\":\"2026-01-02T03:04:05Z\",\"ttl\":30,"
      "\"modifiedIndex\":9,\"createdIndex\":8},{\"key\":\"/d/e\",\"dir\":true,\"nodes\":[]}],"
      "\"modifiedIndex\":5,\"createdIndex\":4},\"prevNode\":{\"key\":\"/d\",\"value\":\"old\","
      "\"modifiedIndex\":18446744073709551615,\"createdIndex\":3}}";
  assert_int_equal(proto_v2_parse_event(body, &ev), 0);
  assert_string_equal(ev.action, "compareAndSwap");
  assert_non_null(ev.node);
  assert_string_equal(ev.node->key, "/d");
  assert_true(ev.node->dir);
  assert_string_equal(ev.node->value, "");
  assert_null(ev.node->expiration);
  assert_int_equal(ev.node->created_index, 4);
  assert_int_equal(ev.node->modified_index, 5);
  assert_true(ev.node->has_nodes);
  assert_int_equal(ev.node->n_nodes, 2);
  assert_string_equal(ev.node->nodes[0].key, "/d/a");
  assert_string_equal(ev.node->nodes[0].value, "1");
  assert_string_equal(ev.node->nodes[0].expiration, "2026-01-02T03:04:05Z");
  assert_int_equal(ev.node->nodes[0].ttl, 30);
  assert_false(ev.node->nodes[0].has_nodes);
  assert_true(ev.node->nodes[1].has_nodes);
  assert_int_equal(ev.node->nodes[1].n_nodes, 0);
  assert_non_null(ev.prev_node);
  assert_string_equal(ev.prev_node->value, "old");
  assert_true(ev.prev_node->modified_index == UINT64_MAX);
  proto_v2_event_free(&ev);

  assert_int_equal(proto_v2_parse_event("{\"action\":\"get\"}", &ev), 0);
  assert_null(ev.node);
  assert_null(ev.prev_node);
  proto_v2_event_free(&ev);

  assert_int_equal(proto_v2_parse_event("not json", &ev), -1);
  proto_v2_event_free(&ev);

  /* a node's members on the event itself belong to no node (this crashed: found by
   * tests/fuzz/fuzz_v2_answers) */
  assert_int_equal(proto_v2_parse_event("{\"dir\":true,\"ttl\":5,\"createdIndex\":1,"
                                        "\"modifiedIndex\":2,\"action\":\"get\"}", &ev), 0);
  assert_string_equal(ev.action, "get");
  assert_null(ev.node);
  proto_v2_event_free(&ev);
}

/* Values keep NUL bytes and their lengths (JSON's \u0000); more than 4 children (the nodes
 * array grows); deep nesting; unknown members, nested objects and arrays skipped; the first
 * of a repeated member counts; non-object nodes and children are not nodes. */
static void test_parse_event_values_with_nul_and_odd_shapes(void **state) {
  (void)state;
  proto_v2_event ev;
  const char *body =
      "{\"x\":{\"action\":\"no\",\"node\":{}},\"action\":\"get\",\"action\":\"set\","
      "\"node\":{\"key\":\"/d\",\"dir\":true,\"extra\":[{\"key\":\"no\"},[1,2]],\"nodes\":["
      "{\"key\":\"/d/0\",\"value\":\"a\\u0000b\\u0000\"},7,\"s\",null,{\"key\":\"/d/1\",\"value\":\"\"},"
      "{\"key\":\"/d/2\"},{\"key\":\"/d/3\",\"value\":5},{\"key\":\"/d/4\",\"value\":\"\\u00e9\"},"
      "{\"key\":\"/d/5\",\"value\":\"first\",\"value\":\"second\",\"dir\":false,\"nodes\":[{"
      "\"key\":\"/d/5/x\",\"nodes\":[{\"key\":\"/d/5/x/y\",\"value\":\"deep\"}]}]}]},"
      "\"node\":{\"key\":\"/later\"},\"prevNode\":null}";
  assert_int_equal(proto_v2_parse_event(body, &ev), 0);
  assert_string_equal(ev.action, "get");
  assert_non_null(ev.node);
  assert_string_equal(ev.node->key, "/d");
  assert_null(ev.prev_node);
  assert_int_equal(ev.node->n_nodes, 6);
  const proto_v2_knode *k = ev.node->nodes;
  assert_string_equal(k[0].key, "/d/0");
  assert_int_equal(k[0].value_len, 4);
  assert_memory_equal(k[0].value, "a\0b\0", 5);
  assert_int_equal(k[1].value_len, 0);
  assert_string_equal(k[2].value, ""); /* absent */
  assert_string_equal(k[3].value, ""); /* not a string */
  assert_int_equal(k[3].value_len, 0);
  assert_string_equal(k[4].value, "\xc3\xa9");
  assert_int_equal(k[4].value_len, 2);
  assert_string_equal(k[5].value, "first");
  assert_false(k[5].dir);
  assert_int_equal(k[5].n_nodes, 1);
  assert_int_equal(k[5].nodes[0].n_nodes, 1);
  assert_string_equal(k[5].nodes[0].nodes[0].value, "deep");
  proto_v2_event_free(&ev);

  assert_int_equal(proto_v2_parse_event("[{\"action\":\"get\"}]", &ev), -1);
  assert_int_equal(proto_v2_parse_event("5", &ev), -1);
  assert_int_equal(proto_v2_parse_event("{\"action\":\"get\"", &ev), -1);
  assert_int_equal(proto_v2_parse_event("{\"action\":\"get\"} {}", &ev), -1);
  assert_int_equal(proto_v2_parse_event("{\"action\":\"\xff\"}", &ev), -1); /* not UTF-8 */
  assert_int_equal(proto_v2_parse_event("", &ev), -1);
  assert_int_equal(proto_v2_parse_event("{}", &ev), 0);
  assert_string_equal(ev.action, "");
  proto_v2_event_free(&ev);
}

static void test_parse_members(void **state) {
  (void)state;
  proto_v2_members ms;
  const char *body =
      "{\"members\":[{\"id\":\"8e9e05c52164694d\",\"name\":\"a\",\"peerURLs\":[\"http://127.0.0.1:2380\"],"
      "\"clientURLs\":[\"http://127.0.0.1:2379\",\"http://127.0.0.1:4001\"]},"
      "{\"id\":\"2\",\"name\":\"\",\"peerURLs\":[\"http://127.0.0.1:2381\"],\"clientURLs\":[]}]}";
  assert_int_equal(proto_v2_parse_members(body, &ms), 0);
  assert_int_equal(ms.n, 2);
  assert_string_equal(ms.m[0].id, "8e9e05c52164694d");
  assert_string_equal(ms.m[0].name, "a");
  assert_int_equal(ms.m[0].n_peer, 1);
  assert_string_equal(ms.m[0].peer_urls[0], "http://127.0.0.1:2380");
  assert_int_equal(ms.m[0].n_client, 2);
  assert_string_equal(ms.m[0].client_urls[1], "http://127.0.0.1:4001");
  assert_string_equal(ms.m[1].name, ""); /* unstarted */
  assert_int_equal(ms.m[1].n_client, 0);
  proto_v2_members_free(&ms);
  assert_int_equal(ms.n, 0);

  assert_int_equal(proto_v2_parse_members("{\"members\":null}", &ms), 0);
  assert_int_equal(ms.n, 0);
  proto_v2_members_free(&ms);
  assert_int_equal(proto_v2_parse_members("{}", &ms), 0);
  assert_int_equal(ms.n, 0);
  proto_v2_members_free(&ms);
  assert_int_equal(proto_v2_parse_members("{\"members\":5}", &ms), -1);
  assert_int_equal(proto_v2_parse_members("[]", &ms), -1);

  proto_v2_member m;
  assert_int_equal(proto_v2_parse_member("{\"id\":\"ff\",\"peerURLs\":[\"http://x:1\"]}", &m), 0);
  assert_string_equal(m.id, "ff");
  assert_string_equal(m.name, "");
  assert_int_equal(m.n_peer, 1);
  assert_int_equal(m.n_client, 0);
  proto_v2_member_free(&m);
  assert_int_equal(proto_v2_parse_member("nope", &m), -1);
}

/* ------------------------------------------------------------------ error texts */

static void test_error_texts(void **state) {
  (void)state;
  proto_v2_errors e;
  memset(&e, 0, sizeof e);
  e.kind = PROTO_V2_CLUSTER;
  e.n = 2;
  snprintf(e.msg[0], sizeof e.msg[0], "dial tcp 127.0.0.1:1: connect: connection refused");
  snprintf(e.msg[1], sizeof e.msg[1], "x509: certificate signed by unknown authority");
  char *t = proto_v2_errors_text(&e);
  char *d = proto_v2_errors_detail(&e);
  assert_string_equal(t,
                      "client: etcd cluster is unavailable or misconfigured; error #0: dial tcp "
                      "127.0.0.1:1: connect: connection refused\n; error #1: x509: certificate "
                      "signed by unknown authority\n");
  assert_string_equal(d,
                      "error #0: dial tcp 127.0.0.1:1: connect: connection refused\nerror #1: "
                      "x509: certificate signed by unknown authority\n");
  free(t);
  free(d);

  e.kind = PROTO_V2_DEADLINE;
  t = proto_v2_errors_text(&e);
  d = proto_v2_errors_detail(&e);
  assert_string_equal(t, "context deadline exceeded");
  assert_string_equal(d, "");
  free(t);
  free(d);

  /* a TLS file problem found by libcurl: its message alone */
  e.kind = PROTO_V2_CONFIG;
  e.n = 1;
  snprintf(e.msg[0], sizeof e.msg[0], "tls: private key does not match public key");
  t = proto_v2_errors_text(&e);
  assert_string_equal(t, "tls: private key does not match public key");
  free(t);
}

/* ------------------------------------------------------------------ endpoints and failover */

static void test_endpoints_normalised_in_order(void **state) {
  (void)state;
  const char *eps[] = {"127.0.0.1:2379", "https://10.0.0.1:2379/", "http://h:1", ""};
  proto_v2_client_opts o = {0};
  o.endpoints = eps;
  o.n_endpoints = 4;
  proto_v2_client *c = proto_v2_client_new(&o);
  assert_non_null(c);
  assert_int_equal(proto_v2_client_n_endpoints(c), 4);
  assert_string_equal(proto_v2_client_endpoint(c, 0), "http://127.0.0.1:2379");
  assert_string_equal(proto_v2_client_endpoint(c, 1), "https://10.0.0.1:2379/");
  assert_string_equal(proto_v2_client_endpoint(c, 2), "http://h:1");
  assert_string_equal(proto_v2_client_endpoint(c, 3), "http://");
  const char *two[] = {"a:1", "b:2"};
  assert_int_equal(proto_v2_client_set_endpoints(c, two, 2), 0);
  assert_int_equal(proto_v2_client_n_endpoints(c), 2);
  assert_string_equal(proto_v2_client_endpoint(c, 1), "http://b:2");
  proto_v2_client_free(c);
}

/* A socket bound to a loopback port without listening: connections to it are refused. */
static int refusing_socket(int *port) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(s >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
  *port = ntohs(a.sin_port);
  return s;
}

/* Reads one request's head (up to its blank line) from C into BUF, NUL-terminated. */
static void read_request(int c, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  while (n < cap - 1) {
    ssize_t k = read(c, buf + n, cap - 1 - n);
    if (k <= 0) break;
    n += (size_t)k;
    buf[n] = 0;
    if (strstr(buf, "\r\n\r\n")) break;
  }
}

/* A responder that answers `count` requests, one per connection, and records the request
 * lines. */
typedef struct responder {
  int fd, port, count;
  char lines[4][512];
} responder;

static void *respond(void *arg) {
  responder *r = arg;
  for (int i = 0; i < r->count; i++) {
    int c = accept(r->fd, NULL, NULL);
    if (c < 0) break;
    char buf[4096];
    read_request(c, buf, sizeof buf);
    snprintf(r->lines[i], sizeof r->lines[i], "%.*s", (int)strcspn(buf, "\r\n"), buf);
    static const char answer[] =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Etcd-Index: 42\r\n"
        "Connection: close\r\nContent-Length: 2\r\n\r\n{}";
    ssize_t w = write(c, answer, sizeof answer - 1);
    (void)w;
    close(c);
  }
  return NULL;
}

/* A responder for COUNT requests on a loopback port of its own, answering on thread *TH. */
static void responder_start(responder *r, int count, pthread_t *th) {
  memset(r, 0, sizeof *r);
  r->fd = refusing_socket(&r->port);
  r->count = count;
  assert_int_equal(listen(r->fd, 4), 0);
  assert_int_equal(pthread_create(th, NULL, respond, r), 0);
}

/* Answers the first request on a kept-alive connection, then reads the second and stays
 * silent until the client hangs up. */
static void *answer_once_keep_alive(void *arg) {
  int fd = *(int *)arg;
  int c = accept(fd, NULL, NULL);
  if (c < 0) return NULL;
  char buf[4096];
  for (int req = 0; req < 2; req++) {
    read_request(c, buf, sizeof buf);
    if (req == 0) {
      static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Content-Length: 2\r\n\r\n{}";
      ssize_t w = write(c, answer, sizeof answer - 1);
      (void)w;
    }
  }
  while (read(c, buf, sizeof buf) > 0) {
  }
  close(c);
  return NULL;
}

/* A timeout on a kept-alive connection (no connect in that transfer) is a header timeout, not a
 * dial timeout: the request went out and the member may have it. */
static void test_timeout_on_a_kept_alive_connection(void **state) {
  (void)state;
  int port;
  int fd = refusing_socket(&port);
  assert_int_equal(listen(fd, 4), 0);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, answer_once_keep_alive, &fd), 0);
  char ep[64];
  snprintf(ep, sizeof ep, "127.0.0.1:%d", port);
  const char *eps[] = {ep};
  proto_v2_client_opts o = {0};
  o.endpoints = eps;
  o.n_endpoints = 1;
  o.request_timeout_ms = 300;
  proto_v2_client *c = proto_v2_client_new(&o);
  assert_non_null(c);
  proto_v2_resp resp;
  proto_v2_errors err;
  assert_int_equal(proto_v2_do(c, "GET", "/v2/keys/a", NULL, NULL, 0, &resp, &err), 0);
  proto_v2_resp_free(&resp);
  assert_int_equal(proto_v2_do(c, "PUT", "/v2/keys/a", "application/x-www-form-urlencoded",
                               "value=1", 0, &resp, &err),
                   -1);
  assert_int_equal(err.kind, PROTO_V2_CLUSTER);
  assert_int_equal(err.n, 1);
  char want[128];
  snprintf(want, sizeof want, "client: endpoint http://%s exceeded header timeout", ep);
  assert_string_equal(err.msg[0], want);
  proto_v2_client_free(c);
  pthread_join(th, NULL);
  close(fd);
}

/* A first endpoint that accepts (the kernel's backlog) and never answers, then one that does:
 * with share_total the first gets half of the total timeout and the second answers in time;
 * without it (etcdctl's way) the first takes it all and the request ends in the deadline. */
static void test_share_total_leaves_time_for_the_next(void **state) {
  (void)state;
  int ps;
  int silent = refusing_socket(&ps);
  assert_int_equal(listen(silent, 4), 0);
  responder r;
  pthread_t th;
  responder_start(&r, 1, &th);
  char e1[64], e2[64];
  snprintf(e1, sizeof e1, "127.0.0.1:%d", ps);
  snprintf(e2, sizeof e2, "127.0.0.1:%d", r.port);
  const char *eps[] = {e1, e2};
  for (int share = 1; share >= 0; share--) {
    proto_v2_client_opts o = {0};
    o.endpoints = eps;
    o.n_endpoints = 2;
    o.request_timeout_ms = 2000;
    o.total_timeout_ms = 800;
    o.share_total = share;
    proto_v2_client *c = proto_v2_client_new(&o);
    assert_non_null(c);
    proto_v2_client_start_clock(c);
    proto_v2_resp resp;
    proto_v2_errors err;
    int rc = proto_v2_do(c, "GET", "/v2/keys/a", NULL, NULL, 0, &resp, &err);
    if (share) {
      assert_int_equal(rc, 0);
      assert_int_equal(resp.status, 200);
      assert_int_equal(proto_v2_client_pinned(c), 1);
      assert_int_equal(err.n, 1);
      char want[128];
      snprintf(want, sizeof want, "client: endpoint http://%s exceeded header timeout", e1);
      assert_string_equal(err.msg[0], want);
      proto_v2_resp_free(&resp);
    } else {
      assert_int_equal(rc, -1);
      assert_int_equal(err.kind, PROTO_V2_DEADLINE);
      assert_int_equal(proto_v2_client_pinned(c), 0);
    }
    proto_v2_client_free(c);
  }
  pthread_join(th, NULL);
  assert_string_equal(r.lines[0], "GET /v2/keys/a HTTP/1.1");
  close(r.fd);
  close(silent);
}

static void test_failover_order_and_pinning(void **state) {
  (void)state;
  int p1, p2;
  int s1 = refusing_socket(&p1), s2 = refusing_socket(&p2);
  responder r;
  pthread_t th;
  responder_start(&r, 2, &th);

  char e1[64], e2[64], e3[64];
  snprintf(e1, sizeof e1, "127.0.0.1:%d", p1);
  snprintf(e2, sizeof e2, "http://127.0.0.1:%d", p2);
  snprintf(e3, sizeof e3, "http://127.0.0.1:%d/", r.port); /* a trailing slash is dropped */
  const char *eps[] = {e1, e2, e3};
  proto_v2_client_opts o = {0};
  o.endpoints = eps;
  o.n_endpoints = 3;
  o.request_timeout_ms = 5000;
  o.total_timeout_ms = 10000;
  proto_v2_client *c = proto_v2_client_new(&o);
  assert_non_null(c);
  proto_v2_client_start_clock(c);

  proto_v2_buf path = {0};
  proto_v2_keys_path(&path, "/sp ace");
  proto_v2_buf_add(&path, "?", 1);
  proto_v2_add_param(&path, "recursive", "true");
  proto_v2_resp resp;
  proto_v2_errors err;
  assert_int_equal(proto_v2_do(c, "GET", path.s, NULL, NULL, 0, &resp, &err), 0);
  assert_int_equal(resp.status, 200);
  assert_true(resp.has_index);
  assert_int_equal(resp.etcd_index, 42);
  assert_string_equal(resp.body, "{}");
  assert_string_equal(resp.endpoint, e3);
  /* the refused endpoints were tried first, in order */
  assert_int_equal(err.n, 2);
  char want[128];
  snprintf(want, sizeof want, "dial tcp 127.0.0.1:%d: connect: connection refused", p1);
  assert_string_equal(err.msg[0], want);
  snprintf(want, sizeof want, "dial tcp 127.0.0.1:%d: connect: connection refused", p2);
  assert_string_equal(err.msg[1], want);
  proto_v2_resp_free(&resp);

  /* the next request starts with the endpoint that answered: no new failures */
  assert_int_equal(proto_v2_do(c, "PUT", "/v2/keys/x", "application/x-www-form-urlencoded",
                               "value=1", 0, &resp, &err),
                   0);
  assert_int_equal(err.n, 0);
  assert_string_equal(resp.endpoint, e3);
  proto_v2_resp_free(&resp);
  pthread_join(th, NULL);
  assert_string_equal(r.lines[0], "GET /v2/keys/sp%20ace?recursive=true HTTP/1.1");
  assert_string_equal(r.lines[1], "PUT /v2/keys/x HTTP/1.1");

  /* nobody answers: a cluster error of connection failures only, one per endpoint */
  close(r.fd);
  r.fd = -1;
  int p3;
  int s3 = refusing_socket(&p3);
  snprintf(e3, sizeof e3, "127.0.0.1:%d", p3);
  assert_int_equal(proto_v2_client_set_endpoints(c, eps, 3), 0);
  assert_int_equal(proto_v2_do(c, "GET", "/v2/members", NULL, NULL, 0, &resp, &err), -1);
  assert_int_equal(err.kind, PROTO_V2_CLUSTER);
  assert_int_equal(err.n, 3);
  assert_true(err.all_connection);
  snprintf(want, sizeof want, "dial tcp 127.0.0.1:%d: connect: connection refused", p3);
  assert_string_equal(err.msg[2], want);

  proto_v2_buf_free(&path);
  proto_v2_client_free(c);
  close(s1);
  close(s2);
  close(s3);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_keys_path_clean_and_escape),
      cmocka_unit_test(test_add_param),
      cmocka_unit_test(test_parse_error),
      cmocka_unit_test(test_parse_event),
      cmocka_unit_test(test_parse_event_values_with_nul_and_odd_shapes),
      cmocka_unit_test(test_parse_members),
      cmocka_unit_test(test_error_texts),
      cmocka_unit_test(test_endpoints_normalised_in_order),
      cmocka_unit_test(test_failover_order_and_pinning),
      cmocka_unit_test(test_share_total_leaves_time_for_the_next),
      cmocka_unit_test(test_timeout_on_a_kept_alive_connection),
  };
  int rc = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return rc;
}
