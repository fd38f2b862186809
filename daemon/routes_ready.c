/* routes_ready: the requests a member holds until it is ready. etcd's client handlers wait for
 * the server's ReadyNotify, which comes once the member's publication of its name and client
 * URLs at this start has been applied: a member that has just joined (an empty store) or
 * restarted (its store as old as its downtime) never answers from the state it had before it
 * caught up with the cluster. A client meanwhile waits, or gives up and tries another member.
 * Each shard keeps its held requests in arrival order and looks every few milliseconds. */
#include "daemon/routes_ready.h"

#include <stdlib.h>

#include "daemon/routes.h"

#define READY_POLL_MS 5

struct routes_held {
  http_req *r; /* held on server_shard_of(r) */
  routes_held *prev, *next;
};

bool routes_ready(server *s) { return !s->node || node_ready(s->node); }

static void unlink_held(server_shard *sh, routes_held *h) {
  if (h->prev) h->prev->next = h->next;
  else sh->held_head = h->next;
  if (h->next) h->next->prev = h->prev;
  else sh->held_tail = h->prev;
}

static void held_abort(http_req *r) {
  routes_held *h = r->data;
  unlink_held(server_shard_of(r), h);
  free(h);
}

static void on_poll(uv_timer_t *t) {
  server_shard *sh = t->data;
  if (!routes_ready(sh->srv)) return;
  uv_timer_stop(t);
  while (sh->held_head) {
    routes_held *h = sh->held_head;
    unlink_held(sh, h);
    http_req *r = h->r;
    free(h);
    r->on_abort = NULL;
    r->data = NULL;
    routes_dispatch(sh, r);
  }
}

bool routes_ready_hold(server_shard *sh, http_req *r) {
  if (routes_ready(sh->srv)) return false;
  routes_held *h = calloc(1, sizeof *h);
  if (!h) return false; /* (served now rather than lost) */
  if (!sh->ready_timer_ok) {
    uv_timer_init(sh->loop, &sh->ready_timer);
    sh->ready_timer.data = sh;
    sh->ready_timer_ok = 1;
  }
  if (r->ext) { /* a password verdict of the users as they were: checked again when ready */
    if (r->ext_free) r->ext_free(r->ext);
    r->ext = NULL;
    r->ext_free = NULL;
  }
  h->r = r;
  h->prev = sh->held_tail;
  if (sh->held_tail) sh->held_tail->next = h;
  else sh->held_head = h;
  sh->held_tail = h;
  r->data = h;
  r->on_abort = held_abort;
  if (!uv_is_active((uv_handle_t *)&sh->ready_timer))
    uv_timer_start(&sh->ready_timer, on_poll, READY_POLL_MS, READY_POLL_MS);
  return true;
}

void routes_ready_close(server_shard *sh) {
  /* (nothing is held: closing the connections has aborted every held request) */
  if (sh->ready_timer_ok) uv_close((uv_handle_t *)&sh->ready_timer, NULL);
  sh->ready_timer_ok = 0;
}
