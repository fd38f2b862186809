/* fuzz_auth_json: the JSON bodies of PUT /v2/auth/users/NAME and /v2/auth/roles/NAME, parsed
 * by quorumd before any check (daemon/auth_json.c). Any body: no crash, no leak, and a parsed
 * request's lists hold their strings. */
#include <stdlib.h>
#include <string.h>

#include "daemon/auth_i.h"
#include "tests/fuzz/fuzz.h"

static void check_list(const auth_list *l) {
  for (size_t i = 0; i < l->n; i++) FUZZ_CHECK(l->v[i] != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  auth_user_req u;
  if (auth_user_req_parse((const char *)data, size, &u) == 0) {
    check_list(&u.roles);
    check_list(&u.grant);
    check_list(&u.revoke);
    auth_user_req_free(&u);
  }
  auth_role_req r;
  if (auth_role_req_parse((const char *)data, size, &r) == 0) {
    check_list(&r.read);
    check_list(&r.write);
    check_list(&r.grant_read);
    check_list(&r.grant_write);
    check_list(&r.revoke_read);
    check_list(&r.revoke_write);
    auth_role_req_free(&r);
  }
  return 0;
}

void fuzz_seeds(fuzz_emit emit, void *ctx) {
  static const char *bodies[] = {
      "{\"user\":\"alice\",\"password\":\"s3cret\",\"roles\":[\"root\",\"app\"]}",
      "{\"user\":\"bob\",\"grant\":[\"r1\"],\"revoke\":null}",
      "{\"role\":\"app\",\"permissions\":{\"kv\":{\"read\":[\"/app/*\"],\"write\":[\"/app/x\"]}}}",
      "{\"role\":\"app\",\"grant\":{\"kv\":{\"read\":[\"/a\"],\"write\":[]}},\"revoke\":{\"kv\":{\"read\":[\"/b*\"]}}}",
  };
  for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++)
    emit(ctx, (const uint8_t *)bodies[i], strlen(bodies[i]));
}
