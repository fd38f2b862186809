/* fuzz_http_params: what quorumd makes of a request's target and form body before any handler
 * (daemon/http_util.c, daemon/v2_params.c): query/form parsing as Go's url.ParseQuery,
 * percent-decoding, Go's path cleaning, and the v2 number and boolean parsers. Any bytes: no
 * crash, and the results keep their promises (a cleaned path starts with '/', has no "//",
 * no "/./" or "/../" element and cleans to itself; a parsed name is decoded). */
#include <stdlib.h>
#include <string.h>

#include "daemon/http_util.h"
#include "daemon/v2_params.h"
#include "tests/fuzz/fuzz.h"

static void check_clean(const uint8_t *data, size_t size) {
  if (size == 0 || data[0] != '/') return;
  sbuf out = {0};
  http_clean_path(&out, (const char *)data, size);
  FUZZ_CHECK(out.len > 0 && out.p[0] == '/');
  for (size_t i = 0; i + 1 < out.len; i++) FUZZ_CHECK(!(out.p[i] == '/' && out.p[i + 1] == '/'));
  FUZZ_CHECK(out.len == 1 || out.p[out.len - 1] != '/' || (size > 0 && data[size - 1] == '/'));
  sbuf again = {0};
  http_clean_path(&again, out.p, out.len);
  FUZZ_CHECK(again.len == out.len && memcmp(again.p, out.p, out.len) == 0);
  sbuf_free(&again);
  sbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  http_params ps;
  memset(&ps, 0, sizeof ps);
  int e = http_params_parse(&ps, (const char *)data, size);
  FUZZ_CHECK(e == 0 || ps.error[0] != 0);
  for (size_t i = 0; i < ps.n; i++) {
    FUZZ_CHECK(ps.v[i].name != NULL && ps.v[i].value != NULL);
    FUZZ_CHECK(http_params_get(&ps, ps.v[i].name) != NULL);
    uint64_t u;
    (void)v2_parse_u64(ps.v[i].value, ps.v[i].value_len, &u);
    (void)v2_parse_bool(ps.v[i].value);
  }
  http_params_free(&ps);
  for (int plus = 0; plus < 2; plus++) {
    sbuf out = {0};
    if (http_unescape(&out, (const char *)data, size, plus) == 0) FUZZ_CHECK(out.len <= size);
    sbuf_free(&out);
  }
  check_clean(data, size);
  return 0;
}

void fuzz_seeds(fuzz_emit emit, void *ctx) {
  static const char *inputs[] = {
      "value=hello%20world&ttl=30&prevExist=false",
      "wait=true&waitIndex=18446744073709551615&recursive=true&stream=1",
      "prevValue=a%2Bb+c&prevIndex=7&dir=true&sorted=T&quorum=False&refresh=true",
      "a=1;b=2&%zz=3&=empty&novalue",
      "/v2/keys/a/../b/./c//d/",
      "/v2/keys/%E2%82%AC/%00/_hidden",
  };
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++)
    emit(ctx, (const uint8_t *)inputs[i], strlen(inputs[i]));
}
