/* Unit tests for daemon/prop_dedup.c: the leader's per-term set of appended requests. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/prop_dedup.h"

#define SEC 1000000000LL

static void test_a_request_is_known_once_added(void **state) {
  (void)state;
  prop_dedup d;
  prop_dedup_init(&d, 10 * SEC);
  prop_dedup_term(&d, 3);
  assert_false(prop_dedup_has(&d, 0xaa, 7));
  assert_int_equal(prop_dedup_add(&d, 0xaa, 7, 10, 1 * SEC), 0);
  assert_true(prop_dedup_has(&d, 0xaa, 7));
  /* the same request id from another member, another id from the same member */
  assert_false(prop_dedup_has(&d, 0xab, 7));
  assert_false(prop_dedup_has(&d, 0xaa, 8));
  assert_int_equal(prop_dedup_add(&d, 0xaa, 7, 10, 2 * SEC), 0); /* again: still one */
  assert_int_equal(prop_dedup_count(&d), 1);
  prop_dedup_free(&d);
}

static void test_a_new_term_forgets_everything(void **state) {
  (void)state;
  prop_dedup d;
  prop_dedup_init(&d, 10 * SEC);
  prop_dedup_term(&d, 3);
  assert_int_equal(prop_dedup_add(&d, 1, 1, 5, 0), 0);
  prop_dedup_term(&d, 3); /* the same term: kept */
  assert_true(prop_dedup_has(&d, 1, 1));
  prop_dedup_term(&d, 4);
  assert_false(prop_dedup_has(&d, 1, 1));
  assert_int_equal(prop_dedup_count(&d), 0);
  prop_dedup_free(&d);
}

/* Many keys (the table grows) are all found, and none that was not added is. */
static void test_many_requests(void **state) {
  (void)state;
  prop_dedup d;
  prop_dedup_init(&d, 10 * SEC);
  prop_dedup_term(&d, 1);
  for (uint64_t i = 1; i <= 100000; i++)
    assert_int_equal(prop_dedup_add(&d, 100 + i % 3, i << 20, i, (int64_t)i), 0);
  assert_int_equal(prop_dedup_count(&d), 100000);
  for (uint64_t i = 1; i <= 100000; i++) {
    assert_true(prop_dedup_has(&d, 100 + i % 3, i << 20));
    assert_false(prop_dedup_has(&d, 100 + (i + 1) % 3, i << 20));
    assert_false(prop_dedup_has(&d, 100 + i % 3, (i << 20) + 1));
  }
  prop_dedup_free(&d);
}

/* A key is kept at least a window after it was added, whatever the pattern of later adds,
 * and the set does not grow without bound under a steady stream. */
static void test_keys_are_kept_a_window_and_then_dropped(void **state) {
  (void)state;
  const int64_t w = 10 * SEC;
  prop_dedup d;
  prop_dedup_init(&d, w);
  prop_dedup_term(&d, 1);
  /* one add every 100 ms for 60 s: each earlier key is checked at every step */
  int64_t t = 0;
  uint64_t id = 0;
  size_t most = 0;
  for (; t < 60 * SEC; t += SEC / 10) {
    assert_int_equal(prop_dedup_add(&d, 9, id + 1, id + 1, t), 0);
    id++;
    for (uint64_t j = 1; j <= id; j++) {
      int64_t added = (int64_t)(j - 1) * (SEC / 10);
      if (t - added < w) assert_true(prop_dedup_has(&d, 9, j));
      if (t - added > 2 * w) assert_false(prop_dedup_has(&d, 9, j));
      /* a key forgotten is never covered: asking with an applied index below it fails */
      if (!prop_dedup_has(&d, 9, j)) assert_false(prop_dedup_covers(&d, 9, j - 1));
    }
    /* the newest keys are always covered */
    assert_true(prop_dedup_covers(&d, 9, id - 1));
    if (prop_dedup_count(&d) > most) most = prop_dedup_count(&d);
  }
  assert_true(most <= 200); /* two windows of 100 keys */
  /* a long pause, then one add: what is older than two windows is gone, the rest kept */
  assert_int_equal(prop_dedup_add(&d, 9, 5000, 5000, t + 25 * SEC), 0);
  assert_int_equal(prop_dedup_count(&d), 1);
  assert_false(prop_dedup_has(&d, 9, id));
  /* a pause of one to two windows: the previous keys stay for one more window */
  assert_int_equal(prop_dedup_add(&d, 9, 5001, 5001, t + 25 * SEC + w + SEC), 0);
  assert_true(prop_dedup_has(&d, 9, 5000));
  assert_true(prop_dedup_has(&d, 9, 5001));
  prop_dedup_free(&d);
}

/* covers: exact answers for requests above an applied index only while nothing above it was
 * forgotten; a new term covers everything again. */
static void forgetting_raises_the_floor(void **state) {
  (void)state;
  const int64_t w = 10 * SEC;
  prop_dedup d;
  prop_dedup_init(&d, w);
  prop_dedup_term(&d, 2);
  assert_true(prop_dedup_covers(&d, 1, 0));
  assert_int_equal(prop_dedup_add(&d, 1, 1, 100, 0), 0);
  assert_int_equal(prop_dedup_add(&d, 1, 2, 120, 1 * SEC), 0);
  assert_true(prop_dedup_covers(&d, 1, 0));
  /* a window later: the first generation is old, still kept */
  assert_int_equal(prop_dedup_add(&d, 1, 3, 200, w), 0);
  assert_true(prop_dedup_covers(&d, 1, 0));
  assert_true(prop_dedup_has(&d, 1, 1));
  /* two windows: it goes, with everything up to 120 */
  assert_int_equal(prop_dedup_add(&d, 1, 4, 300, 2 * w), 0);
  assert_false(prop_dedup_has(&d, 1, 1));
  assert_false(prop_dedup_covers(&d, 1, 119));
  assert_true(prop_dedup_covers(&d, 1, 120));
  assert_true(prop_dedup_covers(&d, 2, 0)); /* another member: nothing of it forgotten */
  assert_true(prop_dedup_has(&d, 1, 3));
  prop_dedup_term(&d, 3);
  assert_true(prop_dedup_covers(&d, 1, 0));
  prop_dedup_free(&d);
}

/* Floors are per member; beyond the table's room, members are judged together. */
static void forget(prop_dedup *d, int64_t w) {
  assert_int_equal(prop_dedup_add(d, 1, 1000, 1, w), 0);     /* a window later: old */
  assert_int_equal(prop_dedup_add(d, 1, 1001, 1, 2 * w), 0); /* two: dropped */
}

static void floors_are_per_member(void **state) {
  (void)state;
  const int64_t w = 10 * SEC;
  prop_dedup d;
  prop_dedup_init(&d, w);
  prop_dedup_term(&d, 1);
  for (uint64_t m = 1; m <= PROP_DEDUP_MEMBERS; m++)
    assert_int_equal(prop_dedup_add(&d, m, 1, 100 * m, 0), 0);
  forget(&d, w);
  for (uint64_t m = 1; m <= PROP_DEDUP_MEMBERS; m++) {
    assert_false(prop_dedup_covers(&d, m, 100 * m - 1));
    assert_true(prop_dedup_covers(&d, m, 100 * m));
  }
  assert_true(prop_dedup_covers(&d, 999, 0)); /* nothing of it was forgotten */
  /* a new term, more members than room: those past it count for everyone */
  prop_dedup_term(&d, 2);
  for (uint64_t m = 1; m <= PROP_DEDUP_MEMBERS + 4; m++)
    assert_int_equal(prop_dedup_add(&d, m, 1, 100 * m, 0), 0);
  forget(&d, w);
  uint64_t all = 100 * (PROP_DEDUP_MEMBERS + 4);
  assert_false(prop_dedup_covers(&d, PROP_DEDUP_MEMBERS + 1, all - 1));
  assert_false(prop_dedup_covers(&d, 1, all - 1));
  assert_true(prop_dedup_covers(&d, 1, all));
  assert_true(prop_dedup_covers(&d, 999, all));
  prop_dedup_free(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_a_request_is_known_once_added),
      cmocka_unit_test(test_a_new_term_forgets_everything),
      cmocka_unit_test(test_many_requests),
      cmocka_unit_test(test_keys_are_kept_a_window_and_then_dropped),
      cmocka_unit_test(forgetting_raises_the_floor),
      cmocka_unit_test(floors_are_per_member),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
