/* watch_hub: v2 watchers keyed by path, and the last STORE_HISTORY events for waitIndex.
 * Loop thread only. Matching follows etcd's v2 watcher hub (exact key; any key below for
 * recursive watchers, skipping keys hidden relative to the watched path; and any delete or
 * expiry of an ancestor directory: live, of a node that was removed with it, as etcd notifies
 * the removed nodes' paths; from the history, of any key below it, as etcd's scan matches),
 * without the raw string-prefix bug of etcd's history scan. */
#ifndef QUORUM_DAEMON_WATCH_HUB_H
#define QUORUM_DAEMON_WATCH_HUB_H

#include <stddef.h>
#include <stdint.h>

#include "daemon/stats.h"
#include "daemon/store.h"

typedef struct watch_hub watch_hub;
typedef struct watcher watcher;

/* Delivers e to w. For a one-shot watcher the hub has already removed w before the call.
 * e is NULL when the watcher is cleared by watch_hub_recover (it is removed already). */
typedef void (*watcher_cb)(watcher *w, store_event *e);

struct watcher {
  char *key;           /* owned by the caller, NUL-terminated */
  size_t key_len;
  int recursive;
  int stream;          /* stays registered after an event */
  uint64_t since;      /* deliver events with index >= since */
  watcher_cb cb;
  void *data;
  /* hub internals */
  struct watch_bucket *bucket;
  watcher *prev, *next;
};

watch_hub *watch_hub_new(uint64_t index, stats *st);
void watch_hub_free(watch_hub *h);

/* Adds e (the hub takes a reference) to history and notifies the matching watchers. */
void watch_hub_publish(watch_hub *h, store_event *e);

/* The index of the last event published (or the starting index). */
uint64_t watch_hub_index(const watch_hub *h);
/* Oldest event index kept (0 when none). */
uint64_t watch_hub_oldest(const watch_hub *h);

/* Finds in history the first event at or after `since` that matches w. Returns it (not
 * referenced: valid until the next publish) or NULL. *cleared is set to the oldest kept index
 * when since is older than the history window (error 401), else 0. */
store_event *watch_hub_scan(watch_hub *h, const watcher *w, uint64_t since, uint64_t *cleared);

/* Registers w for future events. */
void watch_hub_add(watch_hub *h, watcher *w);
/* Unregisters w (no-op when not registered). */
void watch_hub_remove(watch_hub *h, watcher *w);
size_t watch_hub_count(const watch_hub *h);

/* After the store was replaced by a snapshot: every watcher gets its callback with a NULL
 * event (etcd's error 400 "watcher is cleared due to etcd recovery") and is removed; the history
 * becomes hist[0..n) (oldest first; the hub takes references) and the index `index`. */
void watch_hub_recover(watch_hub *h, uint64_t index, store_event **hist, size_t n);

#endif
