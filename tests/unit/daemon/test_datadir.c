/* Unit tests of daemon/datadir.c's request base: each start's first request id lies above
 * every id of the starts before it, whatever the wall clock did between them (set back, or
 * two starts in one millisecond), and it is on disk before it is returned. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/datadir.h"

#define T0 ((uint64_t)1795000000000) /* ms: November 2026 */

static char *fresh_dir(void) {
  char *d = strdup("/tmp/quorum_test_datadir_XXXXXX");
  assert_non_null(mkdtemp(d));
  return d;
}

static void remove_dir(char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/quorumd.requests", d);
  unlink(p);
  rmdir(d);
  free(d);
}

static uint64_t on_disk(const char *d) {
  char p[512];
  snprintf(p, sizeof p, "%s/quorumd.requests", d);
  FILE *f = fopen(p, "r");
  assert_non_null(f);
  unsigned long long v = 0;
  assert_int_equal(fscanf(f, "%llu", &v), 1);
  fclose(f);
  return v;
}

static void test_bases_only_grow(void **state) {
  (void)state;
  char *d = fresh_dir();
  char err[256];
  uint64_t a = 0, b = 0, c = 0, e = 0, prev = 0;
  /* the first start: the clock's */
  assert_int_equal(datadir_request_base(d, T0, &a, NULL, err, sizeof err), 0);
  assert_true(a == T0 << 20);
  assert_true(on_disk(d) == a);
  /* the clock set back an hour: above the last start's ids all the same */
  assert_int_equal(datadir_request_base(d, T0 - 3600000, &b, &prev, err, sizeof err), 0);
  assert_true(b == a + DATADIR_REQUEST_SPAN);
  assert_true(prev == a);
  assert_true(on_disk(d) == b);
  /* a start that fails afterwards puts the last one back */
  datadir_request_restore(d, prev);
  assert_true(on_disk(d) == a);
  assert_int_equal(datadir_request_base(d, T0 - 3600000, &b, &prev, err, sizeof err), 0);
  assert_true(b == a + DATADIR_REQUEST_SPAN);
  /* a second start in the same millisecond */
  assert_int_equal(datadir_request_base(d, T0 - 3600000, &c, NULL, err, sizeof err), 0);
  assert_true(c == b + DATADIR_REQUEST_SPAN);
  /* a clock far ahead of that: the clock's again */
  uint64_t later = (c >> 20) + 10 * (DATADIR_REQUEST_SPAN >> 20);
  assert_int_equal(datadir_request_base(d, later, &e, NULL, err, sizeof err), 0);
  assert_true(e == later << 20);
  assert_true(e > c + DATADIR_REQUEST_SPAN);
  remove_dir(d);
}

static void test_a_damaged_record_is_refused(void **state) {
  (void)state;
  char *d = fresh_dir();
  char p[512], err[256] = "";
  snprintf(p, sizeof p, "%s/quorumd.requests", d);
  FILE *f = fopen(p, "w");
  assert_non_null(f);
  fputs("garbage\n", f);
  fclose(f);
  uint64_t b = 7;
  assert_int_equal(datadir_request_base(d, 1000, &b, NULL, err, sizeof err), -EINVAL);
  assert_true(b == 7);
  assert_non_null(strstr(err, "quorumd.requests is damaged"));
  remove_dir(d);
}

static void test_an_unwritable_dir_is_an_error(void **state) {
  (void)state;
  char err[256] = "";
  uint64_t b = 7;
  assert_true(datadir_request_base("/nonexistent/quorum/dir", 1000, &b, NULL, err, sizeof err) < 0);
  assert_true(b == 7);
  assert_non_null(strstr(err, "cannot write"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bases_only_grow),
      cmocka_unit_test(test_a_damaged_record_is_refused),
      cmocka_unit_test(test_an_unwritable_dir_is_an_error),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
