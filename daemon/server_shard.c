/* server_shard: the HTTP loops of a member. Shard 0 runs on the main loop (which also has the
 * TTL timer and the signals); each other shard runs a loop of its own on a thread. A shard has
 * its own HTTP server, watcher hub and queue of outcomes. The main loop accepts every
 * connection and spreads them round-robin over the shards; a request's outcome goes to the
 * shard whose loop it was made on, and every shard's hub gets every event, in log order.
 * Reads of the store need no loop at all (LevelDB snapshots), so a GET is served wholly on the
 * loop of its connection. */
#include "daemon/server.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/routes.h"
#include "daemon/routes_ready.h"
#include "proto/tls_session.h"

/* ------------------------------------------------------------------ outcomes */

/* Runs one outcome on its shard's loop (or, at stop, on the stopping thread). The answer goes
 * first (the writer should not wait for a fan-out to hundreds of watchers), then the events go
 * to the watchers and the history, in log order. */
static void deliver_one(server_shard *sh, node_done *d) {
  server *s = sh->srv;
  if (d->recovered) { /* a snapshot replaced the store: its history, and no old watcher */
    store_event **evs = NULL;
    size_t n = 0;
    store_load_history(s->st, &evs, &n);
    if (sh->id == 0)
      fprintf(stderr, "quorumd: watchers cleared after installing a snapshot (index %" PRIu64 ")\n",
              store_index(s->st));
    sh->loaded = 0;
    if (sh->hub) watch_hub_recover(sh->hub, store_index(s->st), evs, n);
    for (size_t i = 0; i < n; i++) store_event_unref(evs[i]);
    free(evs);
    return;
  }
  /* (reads and membership changes are not proposals of etcd's count) */
  if (d->ctx == SERVER_SYNC_CTX || (d->ctx && ((server_waiter *)d->ctx)->counted))
    atomic_fetch_sub(&s->stats.proposals_pending, 1);
  if (d->ctx == SERVER_SYNC_CTX) s->sync_pending = 0;
  else if (d->ctx) ((server_waiter *)d->ctx)->done(s, d->ctx, &d->res);
  store_result_free(&d->res);
  for (size_t i = 0; i < d->n_events; i++) {
    /* (entries applied at start, before the hub read the history, are in it already) */
    if (sh->hub && d->events[i]->index > sh->loaded) watch_hub_publish(sh->hub, d->events[i]);
    store_event_unref(d->events[i]);
  }
  free(d->events);
}

static node_done *take_all(server_shard *sh) {
  pthread_mutex_lock(&sh->mu);
  node_done *d = sh->out_head;
  sh->out_head = sh->out_tail = NULL;
  pthread_mutex_unlock(&sh->mu);
  return d;
}

static void deliver_all(server_shard *sh) {
  for (node_done *d = take_all(sh); d;) {
    node_done *next = d->next;
    deliver_one(sh, d);
    free(d);
    d = next;
  }
}

static void on_lag(uv_timer_t *t) { deliver_all(t->data); }

static void on_out(uv_async_t *a) {
  server_shard *sh = a->data;
  if (sh->lag_ms) { /* test hook: this loop learns of outcomes late (and goes on serving) */
    if (!uv_is_active((uv_handle_t *)&sh->lag_timer))
      uv_timer_start(&sh->lag_timer, on_lag, sh->lag_ms, 0);
    return;
  }
  deliver_all(sh);
}

static void shard_push(server_shard *sh, node_done *head, node_done *tail) {
  pthread_mutex_lock(&sh->mu);
  if (sh->out_tail) sh->out_tail->next = head;
  else sh->out_head = head;
  sh->out_tail = tail;
  int wake = !sh->out_closed;
  pthread_mutex_unlock(&sh->mu);
  if (wake) uv_async_send(&sh->out_async);
}

static unsigned shard_of(const server *s, void *ctx) {
  if (!ctx || ctx == SERVER_SYNC_CTX) return 0;
  unsigned id = ((server_waiter *)ctx)->shard;
  return id < s->n_shards ? id : 0;
}

typedef struct chain {
  node_done *head, *tail;
} chain;

static void chain_add(chain *c, node_done *d) {
  d->next = NULL;
  if (c->tail) c->tail->next = d;
  else c->head = d;
  c->tail = d;
}

/* The node's outcome callback (any thread): each outcome to its request's shard, and a copy of
 * its events (new references) to every other shard. */
void server_shards_sink(void *arg, node_done *list) {
  server *s = arg;
  if (s->n_shards == 1) {
    node_done *tail = list;
    while (tail->next) tail = tail->next;
    shard_push(&s->shards[0], list, tail);
    return;
  }
  chain ch[SERVER_MAX_SHARDS] = {{0}};
  while (list) {
    node_done *d = list;
    list = d->next;
    unsigned owner = shard_of(s, d->ctx);
    if (d->recovered || d->n_events) {
      for (unsigned i = 0; i < s->n_shards; i++) {
        if (i == owner) continue;
        node_done *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->recovered = d->recovered;
        if (d->n_events) {
          c->events = malloc(d->n_events * sizeof *c->events);
          if (!c->events) abort();
          for (size_t k = 0; k < d->n_events; k++) {
            store_event_ref(d->events[k]);
            c->events[k] = d->events[k];
          }
          c->n_events = d->n_events;
        }
        chain_add(&ch[i], c);
      }
    }
    chain_add(&ch[owner], d);
  }
  for (unsigned i = 0; i < s->n_shards; i++)
    if (ch[i].head) shard_push(&s->shards[i], ch[i].head, ch[i].tail);
}

/* ------------------------------------------------------------------ loops */

static void *shard_main(void *arg) {
  server_shard *sh = arg;
  char name[16];
  snprintf(name, sizeof name, "quorumd-http%u", sh->id);
  pthread_setname_np(pthread_self(), name);
  uv_run(sh->loop, UV_RUN_DEFAULT);
  return NULL;
}

/* On a shard's own thread, at stop: close its connections and handles; its loop then ends.
 * Outcomes still coming stay queued (out_closed) for server_shards_free. */
static void on_stop(uv_async_t *a) {
  server_shard *sh = a->data;
  http_server_close(sh->http);
  sh->http = NULL;
  pthread_mutex_lock(&sh->mu);
  sh->out_closed = 1;
  pthread_mutex_unlock(&sh->mu);
  uv_close((uv_handle_t *)&sh->out_async, NULL);
  uv_close((uv_handle_t *)&sh->stop_async, NULL);
  routes_ready_close(sh);
  if (sh->lag_ms) uv_close((uv_handle_t *)&sh->lag_timer, NULL);
}

/* The queue and loop of a shard, before the node exists (it hands outcomes over at once). */
static int shard_init(server *s, server_shard *sh, unsigned id) {
  sh->srv = s;
  sh->id = id;
  pthread_mutex_init(&sh->mu, NULL);
  if (id == 0) {
    sh->loop = s->loop;
  } else {
    int rc = uv_loop_init(&sh->own);
    if (rc) return rc;
    sh->loop = &sh->own;
    sh->own_ok = 1;
    uv_async_init(sh->loop, &sh->stop_async, on_stop);
    sh->stop_async.data = sh;
  }
  uv_async_init(sh->loop, &sh->out_async, on_out);
  sh->out_async.data = sh;
  sh->out_ok = 1;
  return 0;
}

/* The hub (the store's history) and the HTTP server of a shard. */
static int shard_open(server *s, server_shard *sh, http_limits lim) {
  uint64_t loaded = 0;
  sh->hub = watch_hub_new(store_index(s->st), &s->stats);
  store_event **evs = NULL;
  size_t n = 0;
  if (store_load_history(s->st, &evs, &n) == 0) {
    for (size_t i = 0; i < n; i++) {
      watch_hub_publish(sh->hub, evs[i]);
      if (evs[i]->index > loaded) loaded = evs[i]->index;
      store_event_unref(evs[i]);
    }
    free(evs);
  }
  sh->loaded = loaded;
  return http_server_new(&sh->http, sh->loop, lim, s->cfg->cors, routes_dispatch, sh);
}

/* Half the CPUs: the raft and apply threads and the kernel's TCP work need the rest (on 2
 * vCPUs shared with a load generator, a second loop measured no faster: docs/DESIGN.md). */
unsigned server_default_loops(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
  if (n < 1) n = 1;
  return n > SERVER_MAX_SHARDS ? SERVER_MAX_SHARDS : (unsigned)n;
}

int server_shards_init(server *s, unsigned n, char *err, size_t errlen) {
  if (n < 1) n = 1;
  if (n > SERVER_MAX_SHARDS) n = SERVER_MAX_SHARDS;
  s->shards = calloc(n, sizeof *s->shards);
  s->spread = calloc(n, sizeof *s->spread);
  if (!s->shards || !s->spread) {
    free(s->shards);
    free(s->spread);
    s->shards = NULL;
    s->spread = NULL;
    return -ENOMEM;
  }
  for (unsigned i = 0; i < n; i++) {
    int rc = shard_init(s, &s->shards[i], i);
    s->n_shards = i + 1;
    if (rc) {
      snprintf(err, errlen, "cannot start HTTP loop %u: %s", i, uv_strerror(rc));
      return rc;
    }
  }
  return 0;
}

int server_shards_open(server *s, http_limits lim, struct tls_session_ctx *tls, char *err,
                       size_t errlen) {
  unsigned n = s->n_shards;
  for (unsigned i = 0; i < n; i++) {
    int rc = shard_open(s, &s->shards[i], lim);
    if (!i && s->shards[0].http) { /* shard 0 accepts and starts the TLS sessions */
      http_server_set_tls(s->shards[0].http, tls);
      tls = NULL;
    }
    if (rc) {
      tls_session_ctx_free(tls);
      snprintf(err, errlen, "cannot start HTTP loop %u: %s", i, uv_strerror(rc));
      return rc;
    }
    s->spread[i] = s->shards[i].http;
  }
  if (n > 1) http_server_spread(s->shards[0].http, s->spread, n);
  for (size_t i = 0; i < s->cfg->listen_client.n; i++) {
    int rc = http_server_listen(s->shards[0].http, s->cfg->listen_client.url[i], err, errlen);
    if (rc) return rc;
  }
  /* Test hook (with QUORUMD_TEST_HOOKS=1): the loops other than the main one hear of every
   * outcome QUORUMD_TEST_LOOP_LAG_MS late, to show that nothing depends on when they do. */
  const char *lag = getenv("QUORUMD_TEST_LOOP_LAG_MS");
  if (s->test_hooks && lag && atoi(lag) > 0)
    for (unsigned i = 1; i < n; i++) {
      server_shard *sh = &s->shards[i];
      sh->lag_ms = (unsigned)atoi(lag);
      uv_timer_init(sh->loop, &sh->lag_timer);
      sh->lag_timer.data = sh;
    }
  for (unsigned i = 1; i < n; i++) {
    if (pthread_create(&s->shards[i].thread, NULL, shard_main, &s->shards[i])) {
      snprintf(err, errlen, "cannot start HTTP loop %u", i);
      return -EAGAIN;
    }
    s->shards[i].running = 1;
  }
  return 0;
}

void server_shards_stop(server *s) {
  if (!s->shards) return;
  /* The listeners go first, so nothing is handed to a shard that is closing. */
  http_server_close(s->shards[0].http);
  s->shards[0].http = NULL;
  routes_ready_close(&s->shards[0]);
  for (unsigned i = 1; i < s->n_shards; i++) {
    server_shard *sh = &s->shards[i];
    if (sh->running) {
      uv_async_send(&sh->stop_async);
      pthread_join(sh->thread, NULL);
      sh->running = 0;
    } else if (sh->own_ok) { /* never started: close on this thread */
      on_stop(&sh->stop_async);
      uv_run(sh->loop, UV_RUN_DEFAULT);
    }
  }
}

static void on_shards_closed(uv_handle_t *h) {
  server *s = h->data;
  for (unsigned i = 0; i < s->n_shards; i++) pthread_mutex_destroy(&s->shards[i].mu);
  free(s->shards);
  free(s->spread);
  s->shards = NULL;
  s->spread = NULL;
  s->n_shards = 0;
}

void server_shards_free(server *s) {
  if (!s->shards) return;
  /* The last outcomes (the node has stopped): requests whose clients are gone. */
  for (unsigned i = 0; i < s->n_shards; i++) {
    server_shard *sh = &s->shards[i];
    deliver_all(sh);
    watch_hub_free(sh->hub);
    sh->hub = NULL;
    if (i && sh->own_ok) {
      uv_loop_close(sh->loop);
      sh->own_ok = 0;
    }
  }
  server_shard *sh0 = &s->shards[0];
  if (!sh0->out_ok) {
    on_shards_closed(&(uv_handle_t){.data = s});
    return;
  }
  pthread_mutex_lock(&sh0->mu);
  sh0->out_closed = 1;
  pthread_mutex_unlock(&sh0->mu);
  sh0->out_async.data = s;
  uv_close((uv_handle_t *)&sh0->out_async, on_shards_closed);
}

server_shard *server_shard_of(http_req *r) { return http_req_arg(r); }
