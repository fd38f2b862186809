/* node_resend: which sent proposals are proposed again once a later term's entry is applied
 * (those of earlier terms whose requests still wait, in order), which are forgotten (applied
 * or expired requests; all of them after a snapshot), and that pruning keeps the order. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/node_i.h"

static node *node_new(void) {
  node *n = calloc(1, sizeof *n);
  assert_non_null(n);
  pthread_mutex_init(&n->pmu, NULL);
  return n;
}

static void node_del(node *n) {
  node_sent_clear(n);
  free(n->sent.v);
  free(n->pend.v);
  pthread_mutex_destroy(&n->pmu);
  free(n);
}

/* Sends request id in term (its data is a copy of its name, to check what comes back). */
static void sent(node *n, uint64_t id, uint64_t term, int waiting) {
  char name[16];
  snprintf(name, sizeof name, "r%llu", (unsigned long long)id);
  inbox_item it = {.kind = INBOX_PROPOSE, .conf_id = id, .data = strdup(name), .len = strlen(name)};
  if (waiting) node_pend_put(n, id, (void *)(uintptr_t)id, 1);
  node_sent_add(n, &it, &(node_sent_how){.term = term});
}

#define MS 1000000LL

/* Sends request id (kind: PROPOSE, a write, or CONF) as how says. */
static void sent_how(node *n, uint64_t id, uint8_t kind, node_sent_how how, int waiting) {
  char name[16];
  snprintf(name, sizeof name, "r%llu", (unsigned long long)id);
  inbox_item it = {.kind = kind, .conf_id = id, .data = strdup(name), .len = strlen(name)};
  if (waiting) node_pend_put(n, id, (void *)(uintptr_t)id, 1);
  node_sent_add(n, &it, &how);
}

static void lost_free(inbox_queue *q) {
  for (size_t i = 0; i < q->n; i++) free(q->v[i].data);
  free(q->v);
}

static void expect_ids(const inbox_queue *q, const uint64_t *ids, size_t k) {
  assert_int_equal(q->n, k);
  for (size_t i = 0; i < k; i++) assert_int_equal(q->v[i].conf_id, ids[i]);
}

static void earlier_terms_waiting_come_back_in_order(void **state) {
  (void)state;
  node *n = node_new();
  sent(n, 1, 2, 1);
  sent(n, 2, 2, 0); /* applied already (no longer waiting) */
  sent(n, 3, 3, 1);
  sent(n, 4, 4, 1); /* the applied term's own: not lost */
  sent(n, 5, 5, 1);
  inbox_queue lost = {0};
  assert_int_equal(node_sent_lost(n, 4, &lost), 2);
  expect_ids(&lost, (uint64_t[]){1, 3}, 2);
  assert_string_equal(lost.v[0].data, "r1");
  assert_int_equal(lost.v[1].len, 2);
  expect_ids(&n->sent, (uint64_t[]){4, 5}, 2);
  /* a term already seen moves nothing more */
  assert_int_equal(node_sent_lost(n, 4, &lost), 0);
  assert_int_equal(lost.n, 2);
  lost_free(&lost);
  node_del(n);
}

static void prune_forgets_answered_ones_and_keeps_order(void **state) {
  (void)state;
  node *n = node_new();
  for (uint64_t id = 1; id <= 600; id++) sent(n, id, 7, 1);
  /* all answered but one in the middle and the last one (more than one lock chunk) */
  for (uint64_t id = 1; id <= 600; id++)
    if (id != 300 && id != 600) assert_int_equal((uintptr_t)node_pend_take(n, id), id);
  node_sent_prune(n);
  expect_ids(&n->sent, (uint64_t[]){300, 600}, 2);
  sent(n, 601, 8, 1);
  node_sent_prune(n);
  expect_ids(&n->sent, (uint64_t[]){300, 600, 601}, 3);
  inbox_queue lost = {0};
  assert_int_equal(node_sent_lost(n, 8, &lost), 2);
  expect_ids(&lost, (uint64_t[]){300, 600}, 2);
  lost_free(&lost);
  node_del(n);
}

static void a_snapshot_forgets_all(void **state) {
  (void)state;
  node *n = node_new();
  sent(n, 1, 2, 1);
  sent(n, 2, 3, 1);
  node_sent_clear(n);
  inbox_queue lost = {0};
  assert_int_equal(node_sent_lost(n, 9, &lost), 0);
  assert_int_equal(n->sent.n, 0);
  free(lost.v);
  node_del(n);
}

/* Within a term: the writes sent to the leader before the loss epoch towards it rose, still
 * waiting and not sent again too recently, are sent again; with a growing gap. */
static void a_loss_towards_the_leader_sends_writes_again(void **state) {
  (void)state;
  node *n = node_new();
  const uint64_t A = 0xa;
  sent_how(n, 1, INBOX_PROPOSE, (node_sent_how){5, A, 3, 0}, 1);
  sent_how(n, 2, INBOX_PROPOSE, (node_sent_how){5, A, 3, 0}, 0);      /* answered */
  sent_how(n, 3, INBOX_PROPOSE, (node_sent_how){5, A, 4, 0}, 1);      /* after the loss */
  sent_how(n, 4, INBOX_PROPOSE, (node_sent_how){4, 0xb, 1, 0}, 1);    /* an earlier term */
  sent_how(n, 5, INBOX_CONF, (node_sent_how){5, A, 3, 0}, 1);         /* a member change */
  sent_how(n, 6, INBOX_PROPOSE, (node_sent_how){5, A, 3, 150 * MS}, 1); /* too recent */
  inbox_queue again = {0};
  assert_int_equal(node_sent_retry(n, &(node_sent_how){5, A, 4, 200 * MS}, 100 * MS, &again), 1);
  expect_ids(&again, (uint64_t[]){1}, 1);
  assert_string_equal(again.v[0].data, "r1");
  assert_int_equal(again.v[0].tries, 1);
  expect_ids(&n->sent, (uint64_t[]){2, 3, 4, 5, 6}, 5);
  /* nothing more at the same epoch: 6 was sent before it rose, but only 50 ms ago */
  assert_int_equal(node_sent_retry(n, &(node_sent_how){5, A, 4, 200 * MS}, 100 * MS, &again), 0);
  /* sent again (flush_props): the next try waits twice the gap */
  inbox_item it = again.v[0];
  again.n = 0;
  node_sent_add(n, &it, &(node_sent_how){5, A, 4, 200 * MS});
  assert_int_equal(node_sent_retry(n, &(node_sent_how){5, A, 5, 350 * MS}, 100 * MS, &again), 2);
  expect_ids(&again, (uint64_t[]){3, 6}, 2);
  assert_int_equal(node_sent_retry(n, &(node_sent_how){5, A, 5, 400 * MS}, 100 * MS, &again), 1);
  expect_ids(&again, (uint64_t[]){3, 6, 1}, 3);
  assert_int_equal(again.v[2].tries, 2);
  expect_ids(&n->sent, (uint64_t[]){2, 4, 5}, 3);
  lost_free(&again);
  node_del(n);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(earlier_terms_waiting_come_back_in_order),
      cmocka_unit_test(prune_forgets_answered_ones_and_keeps_order),
      cmocka_unit_test(a_snapshot_forgets_all),
      cmocka_unit_test(a_loss_towards_the_leader_sends_writes_again),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
