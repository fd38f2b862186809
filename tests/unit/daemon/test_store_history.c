/* Unit tests of daemon/store_history.c: the event history in its two files beside the tree —
 * rotation, reopen, a torn tail (history starts empty rather than with a gap), events above
 * the tree's index (dropped), 'h' keys of older versions (imported and deleted), and a
 * snapshot carrying the history to another store. */
#include "store_fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "daemon/store_i.h"

/* The store's history, checked to be the consecutive run first..last. */
static void expect_history(fx *f, uint64_t first, uint64_t last) {
  store_event **evs = NULL;
  size_t n = 0;
  assert_int_equal(store_load_history(f->s, &evs, &n), 0);
  size_t want = last >= first ? (size_t)(last - first + 1) : 0;
  if (n != want) print_error("history has %zu events, want %zu\n", n, want);
  assert_int_equal(n, want);
  for (size_t i = 0; i < n; i++) {
    assert_true(evs[i]->index == first + i);
    assert_int_equal(evs[i]->json[evs[i]->json_len - 1], '\n');
    store_event_unref(evs[i]);
  }
  free(evs);
}

static void reopen(fx *f) {
  drop_events(f);
  store_close(f->s);
  f->s = NULL;
  assert_int_equal(open_store(f), 0);
}

static void writes(fx *f, int n) {
  char path[32];
  for (int i = 0; i < n; i++) {
    snprintf(path, sizeof path, "/k%d", i % 13);
    set(f, path, "v");
  }
  drop_events(f);
}

static char *file_path(fx *f, int i) {
  static char p[128];
  snprintf(p, sizeof p, "%s/history-%d", f->dir, i);
  return p;
}

static off_t file_size(fx *f, int i) {
  struct stat st;
  return stat(file_path(f, i), &st) ? -1 : st.st_size;
}

/* More than two files' worth of events: the last STORE_HISTORY are kept, across reopens. */
static void test_rotation_and_reopen(void **state) {
  fx *f = *state;
  writes(f, 2500);
  expect_history(f, 2500 - STORE_HISTORY + 1, 2500);
  assert_true(file_size(f, 0) > 0 && file_size(f, 1) > 0);
  reopen(f);
  expect_history(f, 2500 - STORE_HISTORY + 1, 2500);
  writes(f, 5);
  expect_history(f, 2505 - STORE_HISTORY + 1, 2505);
  reopen(f);
  expect_history(f, 2505 - STORE_HISTORY + 1, 2505);
}

/* A torn last record (the tree has the event, the file lost it): the history starts empty at
 * the tree's index (waitIndex below gets 401), and goes on from there. */
static void test_torn_tail_starts_empty(void **state) {
  fx *f = *state;
  writes(f, 50);
  store_close(f->s);
  f->s = NULL;
  off_t size = file_size(f, 0);
  assert_true(size > 10);
  assert_int_equal(truncate(file_path(f, 0), size - 3), 0);
  assert_int_equal(open_store(f), 0);
  assert_true(store_index(f->s) == 50);
  expect_history(f, 1, 0);
  writes(f, 2);
  expect_history(f, 51, 52);
  reopen(f);
  expect_history(f, 51, 52);
}

/* Events written before a tree write that was lost (above the tree's index) are dropped. */
static void test_events_above_the_tree_dropped(void **state) {
  fx *f = *state;
  /* Another store makes events 1..13 of the same writes; ours stops at 10. */
  fx g = {0};
  snprintf(g.dir, sizeof g.dir, "/tmp/quorum-unit-hist-XXXXXX");
  assert_non_null(mkdtemp(g.dir));
  assert_int_equal(open_store(&g), 0);
  g.now = f->now;
  writes(&g, 13);
  store_close(g.s);
  writes(f, 10);
  store_close(f->s);
  f->s = NULL;
  /* Copy g's records 11..13 after ours. */
  int in = open(file_path(&g, 0), O_RDONLY), out = open(file_path(f, 0), O_WRONLY | O_APPEND);
  assert_true(in >= 0 && out >= 0);
  unsigned char buf[1 << 16];
  ssize_t len = read(in, buf, sizeof buf);
  assert_true(len > 0);
  size_t o = 0, skip = 0;
  for (int rec = 0; rec < 10; rec++) {
    uint32_t rl = (uint32_t)buf[o] << 24 | (uint32_t)buf[o + 1] << 16 | (uint32_t)buf[o + 2] << 8 | buf[o + 3];
    o += 8 + rl;
  }
  skip = o;
  assert_true((size_t)len > skip);
  assert_int_equal(write(out, buf + skip, (size_t)len - skip), len - (ssize_t)skip);
  close(in);
  close(out);
  free(g.evs);
  nftw(g.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  assert_int_equal(open_store(f), 0);
  expect_history(f, 1, 10);
  writes(f, 1);
  expect_history(f, 1, 11);
  reopen(f);
  expect_history(f, 1, 11);
}

/* A data dir of an older version keeps its history in 'h' keys: imported, then deleted. */
static void test_legacy_keys_imported(void **state) {
  fx *f = *state;
  writes(f, 20);
  store_event **evs = NULL;
  size_t n = 0;
  assert_int_equal(store_load_history(f->s, &evs, &n), 0);
  assert_int_equal(n, 20);
  for (size_t i = 0; i < n; i++) {
    sbuf k = {0}, v = {0};
    codec_u64_key(&k, 'h', evs[i]->index % STORE_HISTORY);
    store_history_encode(&v, evs[i]);
    char *lerr = NULL;
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_put(store_db(f->s), wo, k.p, k.len, v.p, v.len, &lerr);
    leveldb_writeoptions_destroy(wo);
    assert_null(lerr);
    sbuf_free(&k);
    sbuf_free(&v);
  }
  char json5[512];
  size_t json5_len = evs[4]->json_len;
  assert_true(json5_len < sizeof json5);
  memcpy(json5, evs[4]->json, json5_len);
  for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
  free(evs);
  store_close(f->s);
  f->s = NULL;
  assert_int_equal(unlink(file_path(f, 0)), 0);
  assert_int_equal(unlink(file_path(f, 1)), 0);
  assert_int_equal(open_store(f), 0);
  assert_int_equal(store_load_history(f->s, &evs, &n), 0);
  assert_int_equal(n, 20);
  assert_true(evs[4]->index == 5 && evs[4]->json_len == json5_len);
  assert_memory_equal(evs[4]->json, json5, json5_len);
  for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
  free(evs);
  /* no 'h' key is left */
  leveldb_readoptions_t *ro = leveldb_readoptions_create();
  leveldb_iterator_t *it = leveldb_create_iterator(store_db(f->s), ro);
  leveldb_iter_seek(it, "h", 1);
  size_t kl = 0;
  int left = leveldb_iter_valid(it) && leveldb_iter_key(it, &kl)[0] == 'h';
  leveldb_iter_destroy(it);
  leveldb_readoptions_destroy(ro);
  assert_false(left);
  reopen(f);
  expect_history(f, 1, 20);
}

/* A snapshot (the whole store, sent to a lagging follower) carries the history. */
static void test_snapshot_carries_history(void **state) {
  fx *f = *state;
  writes(f, 30);
  store_dump *d = NULL;
  assert_int_equal(store_snapshot_begin(f->s, &d), 0);
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(store_snapshot_write(d, &data, &len), 0);
  store_snapshot_end(d);
  writes(f, 3); /* the other store restores over a history of its own */
  reopen(f);
  assert_int_equal(store_snapshot_restore(f->s, data, len, NULL, 0), 0);
  free(data);
  assert_true(store_index(f->s) == 30);
  expect_history(f, 1, 30);
  reopen(f);
  expect_history(f, 1, 30);
  writes(f, 1);
  expect_history(f, 1, 31);
}

/* The dump into a buffer of its exact size (a mapped file) is the same dump; a smaller buffer
 * is refused, never overrun. */
static void test_snapshot_into_a_buffer_of_its_size(void **state) {
  fx *f = *state;
  writes(f, 25);
  store_dump *d = NULL;
  assert_int_equal(store_snapshot_begin(f->s, &d), 0);
  char *data = NULL;
  size_t len = 0;
  assert_int_equal(store_snapshot_write(d, &data, &len), 0);
  writes(f, 2); /* (the dump is of the pinned store) */
  size_t size = store_snapshot_size(d);
  assert_int_equal(size, len);
  char *into = malloc(size + 16);
  assert_non_null(into);
  memset(into, 0x5a, size + 16);
  assert_int_equal(store_snapshot_write_into(d, into, size), 0);
  assert_memory_equal(into, data, len);
  for (size_t i = size; i < size + 16; i++) assert_int_equal((unsigned char)into[i], 0x5a);
  memset(into, 0x5a, size + 16);
  assert_int_equal(store_snapshot_write_into(d, into, size - 1), -EOVERFLOW);
  assert_int_equal((unsigned char)into[size - 1], 0x5a);
  assert_int_equal(store_snapshot_write_into(d, into, size + 1), -EOVERFLOW);
  store_snapshot_end(d);
  free(into);
  free(data);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      T(test_rotation_and_reopen),       T(test_torn_tail_starts_empty),
      T(test_events_above_the_tree_dropped), T(test_legacy_keys_imported),
      T(test_snapshot_carries_history), T(test_snapshot_into_a_buffer_of_its_size),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
