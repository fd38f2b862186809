/* Unit tests of daemon/watch_hub.c: which watchers an event reaches (exact key, recursive,
 * hidden keys, ancestor deletes and expiries, since), one-shot versus stream watchers, and the
 * history scan for waitIndex (v2-api.md section 8). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/watch_hub.h"

/* A store_event as the apply side makes it: refs 1, key and json malloc'd. */
static store_event *ev(uint64_t index, int action, const char *key, int dir) {
  store_event *e = calloc(1, sizeof *e);
  assert_non_null(e);
  e->refs = 1;
  e->action = (uint8_t)action;
  e->dir = (uint8_t)dir;
  e->index = index;
  e->key_len = strlen(key);
  e->key = malloc(e->key_len + 1);
  assert_non_null(e->key);
  memcpy(e->key, key, e->key_len + 1);
  char json[128];
  int n = snprintf(json, sizeof json, "{\"action\":\"%s\",\"index\":%llu}\n",
                   store_action_name(action), (unsigned long long)index);
  e->json = malloc((size_t)n);
  assert_non_null(e->json);
  memcpy(e->json, json, (size_t)n);
  e->json_len = (size_t)n;
  return e;
}

/* Publishes a new event and drops the caller's reference (the hub keeps its own). */
static void publish(watch_hub *h, uint64_t index, int action, const char *key, int dir) {
  store_event *e = ev(index, action, key, dir);
  watch_hub_publish(h, e);
  assert_int_equal(e->refs, 2);
  store_event_unref(e);
}

static void publish_refresh(watch_hub *h, uint64_t index, const char *key) {
  store_event *e = ev(index, STORE_ACT_SET, key, 0);
  e->refresh = 1;
  watch_hub_publish(h, e);
  store_event_unref(e);
}

/* A watcher that records what it got. */
typedef struct probe {
  watcher w;
  int n;              /* events delivered */
  uint64_t last;      /* index of the last one */
  char last_key[64];
  watch_hub *hub;
  struct probe *victim; /* removed from the hub by this probe's callback */
} probe;

static void probe_cb(watcher *w, store_event *e) {
  probe *p = w->data;
  p->n++;
  p->last = e->index;
  snprintf(p->last_key, sizeof p->last_key, "%s", e->key);
  if (p->victim) {
    watch_hub_remove(p->hub, &p->victim->w);
    p->victim = NULL;
  }
}

/* Sets up and registers p on key. */
static void watch(watch_hub *h, probe *p, const char *key, int recursive, int stream,
                  uint64_t since) {
  memset(p, 0, sizeof *p);
  p->w.key_len = strlen(key);
  p->w.key = malloc(p->w.key_len + 1);
  assert_non_null(p->w.key);
  memcpy(p->w.key, key, p->w.key_len + 1);
  p->w.recursive = recursive;
  p->w.stream = stream;
  p->w.since = since;
  p->w.cb = probe_cb;
  p->w.data = p;
  p->hub = h;
  watch_hub_add(h, &p->w);
}

/* Unregisters p (if still registered) and frees its key. */
static void unwatch(watch_hub *h, probe *p) {
  watch_hub_remove(h, &p->w);
  free(p->w.key);
  p->w.key = NULL;
}

/* A watcher for scans only (never registered). */
static watcher scan_w(const char *key, int recursive) {
  watcher w = {0};
  w.key = (char *)key;
  w.key_len = strlen(key);
  w.recursive = recursive;
  return w;
}

/* An event on the watched key itself reaches an exact watcher; neighbours do not. */
static void test_exact_key(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe p;
  watch(h, &p, "/a/b", 0, 1, 0);
  publish(h, 1, STORE_ACT_SET, "/a/bc", 0);
  publish(h, 2, STORE_ACT_SET, "/a", 0);
  publish(h, 3, STORE_ACT_SET, "/a/b/c", 0);
  publish(h, 4, STORE_ACT_SET, "/ab", 0);
  assert_int_equal(p.n, 0);
  publish(h, 5, STORE_ACT_SET, "/a/b", 0);
  assert_int_equal(p.n, 1);
  assert_true(p.last == 5);
  unwatch(h, &p);
  watch_hub_free(h);
}

/* A recursive watcher gets its key and everything below it, not siblings with a prefix. */
static void test_recursive_below(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe p;
  watch(h, &p, "/a", 1, 1, 0);
  publish(h, 1, STORE_ACT_SET, "/a/b", 0);
  publish(h, 2, STORE_ACT_SET, "/a/b/c/d", 0);
  publish(h, 3, STORE_ACT_SET, "/a", 0);
  assert_int_equal(p.n, 3);
  publish(h, 4, STORE_ACT_SET, "/ab", 0);
  publish(h, 5, STORE_ACT_SET, "/ab/c", 0);
  publish(h, 6, STORE_ACT_SET, "/a-b", 0);
  publish(h, 7, STORE_ACT_SET, "/b/a", 0);
  assert_int_equal(p.n, 3);
  unwatch(h, &p);
  /* The root's recursive watcher sees every key. */
  probe r;
  watch(h, &r, "/", 1, 1, 0);
  publish(h, 8, STORE_ACT_SET, "/x", 0);
  publish(h, 9, STORE_ACT_SET, "/x/y/z", 0);
  assert_int_equal(r.n, 2);
  unwatch(h, &r);
  watch_hub_free(h);
}

/* A non-recursive watcher on a directory ignores its children. */
static void test_non_recursive_dir_ignores_children(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe p, root;
  watch(h, &p, "/d", 0, 1, 0);
  watch(h, &root, "/", 0, 1, 0);
  publish(h, 1, STORE_ACT_SET, "/d/x", 0);
  publish(h, 2, STORE_ACT_DELETE, "/d/x", 0);
  publish(h, 3, STORE_ACT_CREATE, "/d/y/z", 0);
  assert_int_equal(p.n, 0);
  assert_int_equal(root.n, 0);
  publish(h, 4, STORE_ACT_SET, "/d", 1);
  assert_int_equal(p.n, 1);
  unwatch(h, &p);
  unwatch(h, &root);
  watch_hub_free(h);
}

/* Keys hidden relative to a recursive watcher are skipped; the hidden key's own watcher gets
 * them, and so does a recursive watcher on the hidden directory itself. */
static void test_hidden_keys(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe rec, exact, inside;
  watch(h, &rec, "/a", 1, 1, 0);
  watch(h, &exact, "/a/_h", 0, 1, 0);
  watch(h, &inside, "/a/_h", 1, 1, 0);
  publish(h, 1, STORE_ACT_SET, "/a/_h", 0);
  assert_int_equal(rec.n, 0);
  assert_int_equal(exact.n, 1);
  assert_int_equal(inside.n, 1);
  publish(h, 2, STORE_ACT_SET, "/a/_h/x", 0);
  assert_int_equal(rec.n, 0);
  assert_int_equal(exact.n, 1);
  assert_int_equal(inside.n, 2);
  publish(h, 3, STORE_ACT_SET, "/a/b/_c", 0);
  assert_int_equal(rec.n, 0);
  /* Not hidden: '_' inside a name, or a dot. */
  publish(h, 4, STORE_ACT_SET, "/a/b_c", 0);
  publish(h, 5, STORE_ACT_SET, "/a/.c", 0);
  assert_int_equal(rec.n, 2);
  unwatch(h, &rec);
  unwatch(h, &exact);
  unwatch(h, &inside);
  watch_hub_free(h);
}

/* A recursive watcher on "/" skips keys hidden right below the root (etcd's isHidden("/",
 * "/_x") is true), as it does deeper ones. */
static void test_hidden_below_root(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe root, exact;
  watch(h, &root, "/", 1, 1, 0);
  watch(h, &exact, "/_x", 0, 1, 0);
  publish(h, 1, STORE_ACT_SET, "/a/_y", 0);
  assert_int_equal(root.n, 0);
  publish(h, 2, STORE_ACT_SET, "/_x", 0);
  publish(h, 3, STORE_ACT_SET, "/_x/y", 0);
  int root_n = root.n, exact_n = exact.n;
  unwatch(h, &root);
  unwatch(h, &exact);
  watch_hub_free(h);
  assert_int_equal(exact_n, 1);
  if (root_n) print_error("recursive watcher on / got %d event(s) for /_x and /_x/y\n", root_n);
  assert_int_equal(root_n, 0);
}

/* Deleting or expiring a directory reaches watchers of keys below it, hidden ones included,
 * but not watchers of keys that merely share its name as a prefix. */
static void test_ancestor_delete_and_expire(void **state) {
  (void)state;
  static const int actions[] = {STORE_ACT_DELETE, STORE_ACT_EXPIRE};
  for (size_t k = 0; k < 2; k++) {
    int action = actions[k];
    watch_hub *h = watch_hub_new(0, NULL);
    probe c, deep, hidden, sib, parent, self;
    watch(h, &c, "/a/b/c", 0, 1, 0);
    watch(h, &deep, "/a/b/c/d", 0, 1, 0);
    watch(h, &hidden, "/a/b/_h", 0, 1, 0);
    watch(h, &sib, "/a/bc", 0, 1, 0);
    watch(h, &parent, "/a", 0, 1, 0);
    watch(h, &self, "/a/b", 0, 1, 0);
    publish(h, 7, action, "/a/b", 1);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.last_key, "/a/b"); /* the ancestor's event */
    assert_int_equal(deep.n, 1);
    assert_int_equal(hidden.n, 1);
    assert_int_equal(self.n, 1);
    assert_int_equal(sib.n, 0);
    assert_int_equal(parent.n, 0);
    /* A file's delete (dir = 0) or a directory's set does not reach below. */
    publish(h, 8, action, "/a/b", 0);
    publish(h, 9, STORE_ACT_SET, "/a/b", 1);
    assert_int_equal(c.n, 1);
    assert_int_equal(deep.n, 1);
    unwatch(h, &c);
    unwatch(h, &deep);
    unwatch(h, &hidden);
    unwatch(h, &sib);
    unwatch(h, &parent);
    unwatch(h, &self);
    watch_hub_free(h);
  }
}

/* Deleting the whole tree from a directory right below the root reaches one-shot watchers
 * deep below it, each exactly once, and empties the hub. */
/* A directory's delete that lists the nodes removed with it (as the store makes it) reaches
 * the watchers of those nodes (hidden ones too, non-recursive ones too) and not those of keys
 * below that did not exist; the history scan still matches any key below. */
static void test_ancestor_delete_reaches_removed_nodes_only(void **state) {
  (void)state;
  static const int actions[] = {STORE_ACT_DELETE, STORE_ACT_EXPIRE};
  for (size_t k = 0; k < 2; k++) {
    watch_hub *h = watch_hub_new(0, NULL);
    probe there, hidden, absent, deep_absent, self;
    watch(h, &there, "/d/x", 0, 0, 0);
    watch(h, &hidden, "/d/_h", 0, 0, 0);
    watch(h, &absent, "/d/nothere", 0, 0, 0);
    watch(h, &deep_absent, "/d/x/y", 0, 0, 0);
    watch(h, &self, "/d", 0, 0, 0);
    store_event *e = ev(4, actions[k], "/d", 1);
    const char *removed[] = {"/d/x", "/d/_h"};
    size_t len = 0;
    for (int i = 0; i < 2; i++) len += 4 + strlen(removed[i]);
    e->removed = malloc(len);
    assert_non_null(e->removed);
    for (int i = 0; i < 2; i++) {
      uint32_t l = (uint32_t)strlen(removed[i]);
      memcpy(e->removed + e->removed_len, &l, 4);
      memcpy(e->removed + e->removed_len + 4, removed[i], l);
      e->removed_len += 4 + l;
    }
    e->removed_known = 1;
    watch_hub_publish(h, e);
    store_event_unref(e);
    assert_int_equal(there.n, 1);
    assert_int_equal(hidden.n, 1);
    assert_int_equal(self.n, 1);
    assert_int_equal(absent.n, 0);
    assert_int_equal(deep_absent.n, 0);
    /* from the history, any key below matches */
    watcher w = scan_w("/d/nothere", 0);
    uint64_t cleared = 1;
    store_event *hit = watch_hub_scan(h, &w, 4, &cleared);
    assert_true(hit && hit->index == 4);
    unwatch(h, &there);
    unwatch(h, &hidden);
    unwatch(h, &absent);
    unwatch(h, &deep_absent);
    unwatch(h, &self);
    watch_hub_free(h);
  }
}

static void test_ancestor_delete_one_shot(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe p[4];
  const char *keys[] = {"/t/a", "/t/a/b", "/t/x/y/z", "/t/a"};
  for (int i = 0; i < 4; i++) watch(h, &p[i], keys[i], i & 1, 0, 0);
  assert_int_equal(watch_hub_count(h), 4);
  publish(h, 3, STORE_ACT_DELETE, "/t", 1);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(p[i].n, 1);
    assert_true(p[i].last == 3);
  }
  assert_int_equal(watch_hub_count(h), 0);
  for (int i = 0; i < 4; i++) unwatch(h, &p[i]);
  watch_hub_free(h);
}

/* Events before a watcher's since index are not delivered and do not remove it. */
static void test_since_filter(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe p;
  watch(h, &p, "/k", 0, 0, 10);
  publish(h, 9, STORE_ACT_SET, "/k", 0);
  assert_int_equal(p.n, 0);
  assert_int_equal(watch_hub_count(h), 1);
  publish(h, 10, STORE_ACT_SET, "/k", 0);
  assert_int_equal(p.n, 1);
  assert_true(p.last == 10);
  assert_int_equal(watch_hub_count(h), 0);
  unwatch(h, &p);
  watch_hub_free(h);
}

/* A one-shot watcher is removed before its only event; a stream watcher stays for more. */
static void test_one_shot_and_stream(void **state) {
  (void)state;
  stats st;
  memset(&st, 0, sizeof st);
  watch_hub *h = watch_hub_new(0, &st);
  probe once, stream;
  watch(h, &once, "/k", 0, 0, 0);
  watch(h, &stream, "/k", 0, 1, 0);
  assert_int_equal(watch_hub_count(h), 2);
  assert_true(atomic_load(&st.watchers) == 2);
  publish(h, 1, STORE_ACT_SET, "/k", 0);
  assert_int_equal(once.n, 1);
  assert_int_equal(stream.n, 1);
  assert_null(once.w.bucket); /* unregistered */
  assert_int_equal(watch_hub_count(h), 1);
  assert_true(atomic_load(&st.watchers) == 1);
  publish(h, 2, STORE_ACT_UPDATE, "/k", 0);
  publish(h, 3, STORE_ACT_DELETE, "/k", 0);
  assert_int_equal(once.n, 1);
  assert_int_equal(stream.n, 3);
  assert_int_equal(watch_hub_count(h), 1);
  unwatch(h, &once); /* removing an unregistered watcher is a no-op */
  assert_int_equal(watch_hub_count(h), 1);
  unwatch(h, &stream);
  assert_int_equal(watch_hub_count(h), 0);
  assert_true(atomic_load(&st.watchers) == 0);
  watch_hub_free(h);
}

/* A stream watcher removed by an earlier callback of the same event is not called. */
static void test_stream_removed_during_delivery(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe a, b;
  watch(h, &a, "/k", 0, 1, 0);
  watch(h, &b, "/k", 0, 1, 0);
  /* The hub calls the most recently added first: b removes a. */
  b.victim = &a;
  publish(h, 1, STORE_ACT_SET, "/k", 0);
  assert_int_equal(b.n, 1);
  assert_int_equal(a.n, 0);
  assert_int_equal(watch_hub_count(h), 1);
  unwatch(h, &a);
  unwatch(h, &b);
  watch_hub_free(h);
}

/* Refresh events go to history but are never delivered to watchers. */
static void test_refresh_not_delivered(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe p;
  watch(h, &p, "/k", 0, 0, 0);
  publish_refresh(h, 1, "/k");
  assert_int_equal(p.n, 0);
  assert_int_equal(watch_hub_count(h), 1);
  assert_true(watch_hub_index(h) == 1);
  unwatch(h, &p);
  watch_hub_free(h);
}

/* watch_hub_index starts at the given index and follows the newest event published. */
static void test_index(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(41, NULL);
  assert_true(watch_hub_index(h) == 41);
  assert_true(watch_hub_oldest(h) == 0);
  publish(h, 42, STORE_ACT_SET, "/k", 0);
  assert_true(watch_hub_index(h) == 42);
  assert_true(watch_hub_oldest(h) == 42);
  watch_hub_free(h);
}

/* scan: empty history finds nothing; since older than the oldest event is "cleared". */
static void test_scan_cleared(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  watcher w = scan_w("/k", 0);
  uint64_t cleared = 99;
  assert_null(watch_hub_scan(h, &w, 1, &cleared));
  assert_true(cleared == 0);
  for (uint64_t i = 5; i <= 8; i++) publish(h, i, STORE_ACT_SET, "/k", 0);
  assert_null(watch_hub_scan(h, &w, 4, &cleared));
  assert_true(cleared == 5);
  store_event *e = watch_hub_scan(h, &w, 5, &cleared);
  assert_true(cleared == 0);
  assert_non_null(e);
  assert_true(e->index == 5);
  e = watch_hub_scan(h, &w, 9, &cleared); /* the future: nothing yet */
  assert_null(e);
  assert_true(cleared == 0);
  watch_hub_free(h);
}

/* scan returns the first matching event at or after since, with the live matching rules. */
static void test_scan_first_match(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  publish(h, 1, STORE_ACT_SET, "/a/b", 0);
  publish(h, 2, STORE_ACT_SET, "/x", 0);
  publish(h, 3, STORE_ACT_SET, "/a/b/c", 0);
  publish(h, 4, STORE_ACT_SET, "/a/b", 0);
  publish(h, 5, STORE_ACT_DELETE, "/a", 1);
  uint64_t cleared;
  watcher exact = scan_w("/a/b", 0), rec = scan_w("/a", 1), deep = scan_w("/a/b/c/d", 0);
  watcher x = scan_w("/x", 0), none = scan_w("/nothing", 0);
  store_event *e = watch_hub_scan(h, &exact, 1, &cleared);
  assert_true(e && e->index == 1);
  e = watch_hub_scan(h, &exact, 2, &cleared);
  assert_true(e && e->index == 4); /* /a/b/c is below, not the key */
  e = watch_hub_scan(h, &rec, 2, &cleared);
  assert_true(e && e->index == 3);
  e = watch_hub_scan(h, &deep, 1, &cleared);
  assert_true(e && e->index == 5); /* the ancestor's delete */
  e = watch_hub_scan(h, &x, 3, &cleared);
  assert_null(e);
  e = watch_hub_scan(h, &none, 1, &cleared);
  assert_null(e);
  watch_hub_free(h);
}

/* scan does not apply the ancestor-delete rule to keys that only share a string prefix. */
static void test_scan_no_prefix_bug(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  publish(h, 1, STORE_ACT_DELETE, "/a/b", 1);
  publish(h, 2, STORE_ACT_EXPIRE, "/a/b", 1);
  uint64_t cleared;
  watcher w = scan_w("/a/bc", 0);
  assert_null(watch_hub_scan(h, &w, 1, &cleared));
  watcher r = scan_w("/a/b", 1);
  store_event *e = watch_hub_scan(h, &r, 1, &cleared);
  assert_true(e && e->index == 1);
  watcher below = scan_w("/a/b/c", 0);
  e = watch_hub_scan(h, &below, 2, &cleared);
  assert_true(e && e->index == 2);
  watch_hub_free(h);
}

/* scan skips refresh events. */
static void test_scan_skips_refresh(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  publish(h, 1, STORE_ACT_SET, "/k", 0);
  publish_refresh(h, 2, "/k");
  publish_refresh(h, 3, "/k");
  publish(h, 4, STORE_ACT_UPDATE, "/k", 0);
  uint64_t cleared;
  watcher w = scan_w("/k", 0);
  store_event *e = watch_hub_scan(h, &w, 2, &cleared);
  assert_non_null(e);
  assert_true(e->index == 4);
  assert_null(watch_hub_scan(h, &w, 5, &cleared));
  watch_hub_free(h);
}

/* The ring keeps only the last STORE_HISTORY events (refreshes included) and frees the rest. */
static void test_ring_window(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  for (uint64_t i = 1; i <= 1100; i++) {
    if (i % 10 == 0) publish_refresh(h, i, "/k");
    else publish(h, i, STORE_ACT_SET, "/k", 0);
  }
  assert_true(watch_hub_oldest(h) == 1100 - STORE_HISTORY + 1);
  assert_true(watch_hub_index(h) == 1100);
  uint64_t cleared;
  watcher w = scan_w("/k", 0);
  assert_null(watch_hub_scan(h, &w, 100, &cleared));
  assert_true(cleared == 101);
  assert_null(watch_hub_scan(h, &w, 1, &cleared));
  assert_true(cleared == 101);
  store_event *e = watch_hub_scan(h, &w, 101, &cleared);
  assert_true(cleared == 0);
  assert_true(e && e->index == 101);
  e = watch_hub_scan(h, &w, 1100, &cleared); /* 1100 is a refresh: nothing after it */
  assert_null(e);
  e = watch_hub_scan(h, &w, 1090, &cleared);
  assert_true(e && e->index == 1091);
  /* An event kept in the ring has the hub's reference and ours only while we hold one. */
  store_event *mine = ev(1101, STORE_ACT_SET, "/k", 0);
  watch_hub_publish(h, mine);
  assert_int_equal(mine->refs, 2);
  assert_true(watch_hub_oldest(h) == 102);
  store_event_unref(mine);
  assert_int_equal(mine->refs, 1);
  watch_hub_free(h);
}

/* watch_hub_count follows adds and removes across keys; buckets come and go. */
static void test_count(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  probe p[5];
  const char *keys[] = {"/a", "/a", "/b", "/", "/a/b/c"};
  for (int i = 0; i < 5; i++) {
    watch(h, &p[i], keys[i], 1, 1, 0);
    assert_int_equal(watch_hub_count(h), (size_t)i + 1);
  }
  unwatch(h, &p[0]);
  assert_int_equal(watch_hub_count(h), 4);
  unwatch(h, &p[0]);
  assert_int_equal(watch_hub_count(h), 4);
  publish(h, 1, STORE_ACT_SET, "/a/x", 0);
  assert_int_equal(p[0].n, 0);
  assert_int_equal(p[1].n, 1);
  assert_int_equal(p[3].n, 1);
  assert_int_equal(p[2].n + p[4].n, 0);
  for (int i = 1; i < 5; i++) unwatch(h, &p[i]);
  assert_int_equal(watch_hub_count(h), 0);
  /* Re-adding to a key whose bucket was dropped works. */
  watch(h, &p[0], "/a", 0, 0, 0);
  publish(h, 2, STORE_ACT_SET, "/a", 0);
  assert_int_equal(p[0].n, 1);
  unwatch(h, &p[0]);
  watch_hub_free(h);
}

/* Many watchers on one key (beyond the 64 collected on the stack) all get the event. */
static void test_many_watchers(void **state) {
  (void)state;
  watch_hub *h = watch_hub_new(0, NULL);
  enum { N = 200 };
  probe *p = calloc(N, sizeof *p);
  assert_non_null(p);
  for (int i = 0; i < N; i++) watch(h, &p[i], "/k", 0, i & 1, 0);
  publish(h, 1, STORE_ACT_SET, "/k", 0);
  for (int i = 0; i < N; i++) assert_int_equal(p[i].n, 1);
  assert_int_equal(watch_hub_count(h), N / 2);
  for (int i = 0; i < N; i++) unwatch(h, &p[i]);
  free(p);
  watch_hub_free(h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_key),
      cmocka_unit_test(test_recursive_below),
      cmocka_unit_test(test_non_recursive_dir_ignores_children),
      cmocka_unit_test(test_hidden_keys),
      cmocka_unit_test(test_hidden_below_root),
      cmocka_unit_test(test_ancestor_delete_and_expire),
      cmocka_unit_test(test_ancestor_delete_one_shot),
      cmocka_unit_test(test_ancestor_delete_reaches_removed_nodes_only),
      cmocka_unit_test(test_since_filter),
      cmocka_unit_test(test_one_shot_and_stream),
      cmocka_unit_test(test_stream_removed_during_delivery),
      cmocka_unit_test(test_refresh_not_delivered),
      cmocka_unit_test(test_index),
      cmocka_unit_test(test_scan_cleared),
      cmocka_unit_test(test_scan_first_match),
      cmocka_unit_test(test_scan_no_prefix_bug),
      cmocka_unit_test(test_scan_skips_refresh),
      cmocka_unit_test(test_ring_window),
      cmocka_unit_test(test_count),
      cmocka_unit_test(test_many_watchers),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
