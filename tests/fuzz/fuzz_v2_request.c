/* fuzz_v2_request: a /v2/keys request's parameters as quorumd reads and validates them
 * (daemon/v2_params.c: the query string and a form body, etcd 3.4's validation order and
 * errors) and the JSON body of POST/PUT /v2/members (daemon/members_request.c). The input is
 * split into a method, a request target, a content type and a body. Any request: no crash, no
 * leak; a refusal is a v2 error code with a cause, an acceptance keeps its promises (a TTL
 * only with has_ttl, prevExist -1/0/1, the value within the request). */
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "daemon/members_request.h"
#include "daemon/v2_params.h"
#include "tests/fuzz/fuzz.h"

static const char *const content_types[] = {"application/x-www-form-urlencoded",
                                            "application/x-www-form-urlencoded; charset=utf-8",
                                            "application/json", "text/plain", "",
                                            "multipart/form-data; boundary=x"};
static const int methods[] = {HTTP_GET, HTTP_PUT, HTTP_POST, HTTP_DELETE, HTTP_HEAD};

/* input: [method byte][content-type byte] target '\n' body */
static void make_req(http_req *r, const uint8_t *data, size_t size) {
  memset(r, 0, sizeof *r);
  if (size < 2) return;
  r->method = methods[data[0] % (sizeof methods / sizeof methods[0])];
  const char *ct = content_types[data[1] % (sizeof content_types / sizeof content_types[0])];
  sbuf_put(&r->content_type, ct, strlen(ct));
  const uint8_t *p = data + 2, *end = data + size;
  const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
  const uint8_t *target_end = nl ? nl : end;
  sbuf_put(&r->url, p, (size_t)(target_end - p));
  if (nl) sbuf_put(&r->body, nl + 1, (size_t)(end - nl - 1));
  r->complete = 1;
}

static void free_req(http_req *r) {
  sbuf_free(&r->url);
  sbuf_free(&r->body);
  sbuf_free(&r->content_type);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  http_req r;
  make_req(&r, data, size);
  v2_params p;
  memset(&p, 0, sizeof p);
  int code = v2_params_parse(&p, &r);
  if (code) {
    FUZZ_CHECK(code >= 100 && code < 500);
  } else {
    FUZZ_CHECK(p.prev_exist >= -1 && p.prev_exist <= 1);
    FUZZ_CHECK(p.value != NULL);
    FUZZ_CHECK(p.has_ttl || p.ttl == 0);
    FUZZ_CHECK(!p.prev_value || p.prev_value_len <= size);
  }
  v2_params_free(&p);
  char urls[4096], msg[512];
  urls[0] = msg[0] = 0;
  if (members_request_parse(&r, urls, sizeof urls, msg, sizeof msg) == 0)
    FUZZ_CHECK(memchr(urls, 0, sizeof urls) != NULL);
  else
    FUZZ_CHECK(memchr(msg, 0, sizeof msg) != NULL);
  free_req(&r);
  return 0;
}

void fuzz_seeds(fuzz_emit emit, void *ctx) {
  static const struct {
    uint8_t method, ct;
    const char *rest;
  } reqs[] = {
      {1, 0, "/v2/keys/a?ttl=5\nvalue=hello&prevExist=false"},
      {1, 0, "/v2/keys/d?dir=true&ttl=&refresh=true\nprevIndex=3"},
      {0, 4, "/v2/keys/a?wait=true&waitIndex=10&recursive=true&stream=true"},
      {0, 4, "/v2/keys/?recursive=true&sorted=true&quorum=true"},
      {3, 4, "/v2/keys/a?prevValue=x&prevIndex=7&dir=false"},
      {2, 0, "/v2/keys/queue\nvalue=job&ttl=30"},
      {2, 2, "/v2/members\n{\"peerURLs\":[\"http://10.0.0.2:2380\",\"https://h:1\"]}"},
      {1, 2, "/v2/members/8e9e05c52164694d\n{\"peerURLs\":[\"http://10.0.0.3:2380\"]}"},
      {1, 0, "/v2/keys/a?value=q&value=b\nttl=abc&prevExist=maybe"},
  };
  for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
    size_t l = strlen(reqs[i].rest);
    uint8_t *b = malloc(l + 2);
    if (!b) return;
    b[0] = reqs[i].method;
    b[1] = reqs[i].ct;
    memcpy(b + 2, reqs[i].rest, l);
    emit(ctx, b, l + 2);
    free(b);
  }
}
