/* fs_endpoints: the mount's endpoint list, kept current from /v2/members (etcd's client sync).
 * The endpoints given at mount stay first, in their order: the members' client URLs not among
 * them follow (a load balancer's URL, or members that advertise names this host cannot reach,
 * are never dropped; a mount whose given members were all replaced goes on with the new ones).
 * The list changes only when that set changes; request threads and the watch take it at their
 * next request or reconnect (the generation tells them). */
#include "fs/fs_endpoints.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct fs_endpoints {
  fs *f;
  proto_v2_client *client;
  unsigned gen; /* of the client's own list */
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int stop;
};

void fs_endpoints_free_copy(char **eps, size_t n) {
  for (size_t i = 0; eps && i < n; i++) free(eps[i]);
  free(eps);
}

int fs_endpoints_copy(fs *f, char ***eps, size_t *n, unsigned *gen) {
  pthread_mutex_lock(&f->ep_mu);
  size_t k = f->n_ep_cur;
  char **v = calloc(k ? k : 1, sizeof *v);
  int bad = !v;
  for (size_t i = 0; !bad && i < k; i++) bad = !(v[i] = strdup(f->ep_cur[i]));
  *gen = __atomic_load_n(&f->ep_gen, __ATOMIC_ACQUIRE);
  pthread_mutex_unlock(&f->ep_mu);
  if (bad) {
    fs_endpoints_free_copy(v, k);
    return -1;
  }
  *eps = v;
  *n = k;
  return 0;
}

int fs_endpoints_refresh(fs *f, proto_v2_client *c, unsigned *gen) {
  if (__atomic_load_n(&f->ep_gen, __ATOMIC_ACQUIRE) == *gen) return 0;
  char **eps;
  size_t n;
  unsigned g;
  if (fs_endpoints_copy(f, &eps, &n, &g) != 0) return 0;
  int changed = n && proto_v2_client_set_endpoints(c, (const char *const *)eps, n) == 0;
  if (changed) *gen = g;
  fs_endpoints_free_copy(eps, n);
  return changed;
}

static int listed(char *const *v, size_t n, const char *s) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(v[i], s) == 0) return 1;
  return 0;
}

/* The given endpoints, then the members' client URLs not among them, as the new list when it
 * differs from the current one (as a set beyond the given ones). */
static void adopt(fs *f, const proto_v2_members *ms) {
  size_t cap = f->n_endpoints, total = 0;
  for (size_t i = 0; i < ms->n; i++) total += ms->m[i].n_client;
  if (!total) return; /* (a member that knows no client URL yet: nothing to learn) */
  cap += total;
  char **v = calloc(cap ? cap : 1, sizeof *v);
  if (!v) return;
  size_t n = 0;
  int bad = 0;
  for (size_t i = 0; !bad && i < f->n_endpoints; i++) bad = !(v[n++] = strdup(f->endpoints[i]));
  for (size_t i = 0; !bad && i < ms->n; i++)
    for (size_t j = 0; !bad && j < ms->m[i].n_client; j++)
      if (!listed(v, n, ms->m[i].client_urls[j])) bad = !(v[n++] = strdup(ms->m[i].client_urls[j]));
  pthread_mutex_lock(&f->ep_mu);
  int same = !bad && n == f->n_ep_cur;
  for (size_t i = 0; same && i < n; i++) same = listed(f->ep_cur, f->n_ep_cur, v[i]);
  if (!bad && !same) {
    fs_endpoints_free_copy(f->ep_cur, f->n_ep_cur);
    f->ep_cur = v;
    f->n_ep_cur = n;
    __atomic_add_fetch(&f->ep_gen, 1, __ATOMIC_RELEASE);
    v = NULL;
  }
  pthread_mutex_unlock(&f->ep_mu);
  if (!bad && !same) {
    fprintf(stderr, "quorumfs: endpoints:");
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%s", i ? "," : " ", f->ep_cur[i]);
    fprintf(stderr, "\n");
  }
  fs_endpoints_free_copy(v, n);
}

static void *sync_main(void *arg) {
  fs_endpoints *e = arg;
  pthread_mutex_lock(&e->mu);
  while (!e->stop) {
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    double s = e->f->sync_interval;
    at.tv_sec += (time_t)s;
    at.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
    if (at.tv_nsec >= 1000000000L) {
      at.tv_sec++;
      at.tv_nsec -= 1000000000L;
    }
    while (!e->stop && pthread_cond_timedwait(&e->cv, &e->mu, &at) != ETIMEDOUT) {
    }
    if (e->stop) break;
    pthread_mutex_unlock(&e->mu);
    fs_endpoints_refresh(e->f, e->client, &e->gen);
    proto_v2_client_start_clock(e->client);
    proto_v2_members ms;
    proto_v2_errors err;
    memset(&err, 0, sizeof err);
    if (proto_v2_list_members(e->client, &ms, &err, NULL) == 0) {
      adopt(e->f, &ms);
      proto_v2_members_free(&ms);
    }
    pthread_mutex_lock(&e->mu);
  }
  pthread_mutex_unlock(&e->mu);
  return NULL;
}

fs_endpoints *fs_endpoints_start(fs *f) {
  if (f->sync_interval <= 0) return NULL;
  fs_endpoints *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->f = f;
  e->client = proto_v2_client_new(&f->client_opts);
  pthread_mutex_init(&e->mu, NULL);
  pthread_cond_init(&e->cv, NULL);
  if (!e->client || pthread_create(&e->thread, NULL, sync_main, e) != 0) {
    proto_v2_client_free(e->client);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->cv);
    free(e);
    return NULL;
  }
  return e;
}

void fs_endpoints_stop(fs_endpoints *e) {
  if (!e) return;
  pthread_mutex_lock(&e->mu);
  e->stop = 1;
  pthread_cond_signal(&e->cv);
  pthread_mutex_unlock(&e->mu);
  pthread_join(e->thread, NULL);
  proto_v2_client_free(e->client);
  pthread_mutex_destroy(&e->mu);
  pthread_cond_destroy(&e->cv);
  free(e);
}
