/* store_event: the events the store makes (names of actions, references, the paths a
 * directory's delete removed) and the ring of the last STORE_HISTORY of them. */
#include "daemon/store_i.h"

#include <stdlib.h>
#include <string.h>

static const char *const action_names[] = {
    [STORE_ACT_GET] = "get",       [STORE_ACT_SET] = "set",
    [STORE_ACT_CREATE] = "create", [STORE_ACT_UPDATE] = "update",
    [STORE_ACT_CAS] = "compareAndSwap", [STORE_ACT_DELETE] = "delete",
    [STORE_ACT_CAD] = "compareAndDelete", [STORE_ACT_EXPIRE] = "expire",
};

const char *store_action_name(int action) { return action_names[action]; }

void store_event_ref(store_event *e) { atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed); }

void store_event_unref(store_event *e) {
  if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
    free(e->key);
    free(e->json);
    free(e->removed);
    free(e);
  }
}

int store_event_removed(const store_event *e, const char *path, size_t len) {
  for (size_t o = 0; o + 4 <= e->removed_len;) {
    uint32_t l;
    memcpy(&l, e->removed + o, 4);
    if (l == len && !memcmp(e->removed + o + 4, path, len)) return 1;
    o += 4 + (size_t)l;
  }
  return 0;
}

void store_event_removed_add(sbuf *list, int *known, const char *path, size_t len) {
  if (!*known) return;
  if (list->len + 4 + len > STORE_REMOVED_MAX) {
    *known = 0;
    sbuf_free(list);
    return;
  }
  uint32_t l = (uint32_t)len;
  sbuf_put(list, (const char *)&l, 4);
  sbuf_put(list, path, len);
}

void store_event_ring_push(store_event_ring *r, store_event *e) {
  if (r->n == STORE_HISTORY) {
    store_event_unref(r->ev[r->head]);
    r->head = (r->head + 1) % STORE_HISTORY;
    r->n--;
  }
  r->ev[(r->head + r->n) % STORE_HISTORY] = e;
  r->n++;
}

void store_event_ring_clear(store_event_ring *r) {
  for (size_t i = 0; i < r->n; i++) store_event_unref(store_event_ring_at(r, i));
  r->head = r->n = 0;
}

void store_event_take_removed(store_event *e, sbuf *removed, int known) {
  e->removed_known = (uint8_t)known;
  if (known) {
    e->removed = removed->p; /* (NULL for an empty directory) */
    e->removed_len = removed->len;
  } else {
    sbuf_free(removed);
  }
}
