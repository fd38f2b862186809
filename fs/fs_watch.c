/* fs_watch: the watch thread. Events are applied to the inode table under f->lock, which
 * collects the kernel notifications to make; they are made after the lock is released (a
 * notification may wait for the kernel, and the kernel may wait for a handler that waits for
 * the lock: fuse.md, pitfall 1). */
#include "fs/fs_watch.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { N_INVAL_INODE, N_INVAL_ENTRY, N_DELETE };

typedef struct fs_notify {
  int kind;
  uint64_t parent, ino;
  char *name;
} fs_notify;

typedef struct fs_nlist {
  fs_notify *v;
  size_t n, cap;
} fs_nlist;

struct fs_watch {
  fs *f;
  struct fuse_session *se;
  pthread_t thread;
  int started;
  atomic_int stop;
  CURL *curl;
  char **eps;
  size_t n_eps, cur;
  uint64_t next_index;
  int need_resync;
};

static void nl_add(fs_nlist *l, int kind, uint64_t parent, uint64_t ino, const char *name) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 16;
    fs_notify *v = realloc(l->v, nc * sizeof *v);
    if (!v) return;
    l->v = v;
    l->cap = nc;
  }
  char *nm = NULL;
  if (name && !(nm = strdup(name))) return;
  l->v[l->n++] = (fs_notify){kind, parent, ino, nm};
}

static void nl_run(fs_watch *w, fs_nlist *l) {
  for (size_t i = 0; i < l->n; i++) {
    fs_notify *x = &l->v[i];
    if (x->kind == N_INVAL_INODE) {
      fuse_lowlevel_notify_inval_inode(w->se, x->ino, 0, 0);
    } else if (x->kind == N_INVAL_ENTRY) {
      fuse_lowlevel_notify_inval_entry(w->se, x->parent, x->name, strlen(x->name));
    } else if (fuse_lowlevel_notify_delete(w->se, x->parent, x->ino, x->name, strlen(x->name)) != 0) {
      fuse_lowlevel_notify_inval_entry(w->se, x->parent, x->name, strlen(x->name));
    }
    free(x->name);
  }
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* The node of KEY's parent directory (NULL when unknown or KEY is the root). */
static fs_node *parent_of(fs *f, const char *key) {
  if (strcmp(key, f->prefix) == 0) return NULL;
  const char *slash = strrchr(key, '/');
  if (!slash) return NULL;
  size_t n = slash == key ? 1 : (size_t)(slash - key);
  char *pk = strndup(key, n);
  if (!pk) return NULL;
  fs_node *p = fs_itable_find(&f->nodes, pk);
  free(pk);
  return p;
}

/* KEY is the prefix or below it. */
static int under_prefix(const fs *f, const char *key) {
  if (strcmp(f->prefix, "/") == 0) return key[0] == '/';
  size_t n = strlen(f->prefix);
  return strncmp(key, f->prefix, n) == 0 && (key[n] == 0 || key[n] == '/');
}

/* Every ancestor of KEY that the kernel may hold a name or a listing of: its entry and its
 * parent's attributes/listing are invalidated (a set may create several directories). */
static void names_changed(fs *f, const char *key, fs_nlist *l) {
  char *k = strdup(key);
  while (k && strcmp(k, f->prefix) != 0) {
    fs_node *p = parent_of(f, k);
    if (p) {
      nl_add(l, N_INVAL_ENTRY, p->ino, 0, fs_key_base(k));
      nl_add(l, N_INVAL_INODE, 0, p->ino, NULL);
    }
    char *slash = strrchr(k, '/');
    if (!slash || slash == k) break;
    *slash = 0;
  }
  free(k);
}

/* Nodes at KEY and below leave the key map (a directory delete comes as one event). */
static void forget_subtree(fs *f, const char *key) {
  size_t kl = strlen(key);
  for (size_t i = 0; i < f->nodes.n_buckets; i++) {
    for (fs_node *n = f->nodes.by_ino[i], *next; n; n = next) {
      next = n->next_ino;
      if (n == f->nodes.root || !n->linked || n->pending) continue;
      if (strncmp(n->key, key, kl) == 0 && (n->key[kl] == 0 || n->key[kl] == '/')) {
        fs_itable_unlink(&f->nodes, n);
        fs_itable_maybe_free(&f->nodes, n);
      }
    }
  }
}

static void apply_event(fs_watch *w, const proto_v2_event *ev, fs_nlist *l) {
  fs *f = w->f;
  const proto_v2_knode *kn = ev->node;
  if (!kn || !kn->key || !ev->action || !under_prefix(f, kn->key)) return;
  const char *a = ev->action;
  int del = strcmp(a, "delete") == 0 || strcmp(a, "compareAndDelete") == 0 || strcmp(a, "expire") == 0;
  fs_node *node = fs_itable_find(&f->nodes, kn->key);
  if (node && node->pending) return; /* a local create still being written owns the name */
  if (node && node->modified_index > kn->modified_index) {
    /* older than what a request of ours already stored and recorded: only invalidate */
    nl_add(l, N_INVAL_INODE, 0, node->ino, NULL);
    return;
  }
  if (node == f->nodes.root) {
    nl_add(l, N_INVAL_INODE, 0, node->ino, NULL);
    if (del) forget_subtree(f, kn->key); /* the root itself stays */
    return;
  }
  if (del) {
    fs_node *p = parent_of(f, kn->key);
    if (p && node) nl_add(l, N_DELETE, p->ino, node->ino, fs_key_base(kn->key));
    else names_changed(f, kn->key, l);
    if (p) nl_add(l, N_INVAL_INODE, 0, p->ino, NULL);
    if (node) nl_add(l, N_INVAL_INODE, 0, node->ino, NULL);
    forget_subtree(f, kn->key);
    return;
  }
  /* set, update, create, compareAndSwap */
  if (node) {
    node->is_dir = kn->dir;
    node->size = kn->dir ? 0 : (kn->value ? strlen(kn->value) : 0);
    node->created_index = kn->created_index;
    if (node->modified_index != kn->modified_index) {
      node->modified_index = kn->modified_index;
      clock_gettime(CLOCK_REALTIME, &node->mtime);
    }
    nl_add(l, N_INVAL_INODE, 0, node->ino, NULL);
  }
  if (!ev->prev_node || !node || strcmp(a, "create") == 0) names_changed(f, kn->key, l);
}

/* Every inode and name the kernel may hold is invalidated (their attributes are re-read). */
static void resync(fs_watch *w, fs_nlist *l) {
  fs *f = w->f;
  for (size_t i = 0; i < f->nodes.n_buckets; i++) {
    for (fs_node *n = f->nodes.by_ino[i]; n; n = n->next_ino) {
      if (n->pending || n->is_post) continue;
      nl_add(l, N_INVAL_INODE, 0, n->ino, NULL);
      if (n == f->nodes.root || !n->linked) continue;
      fs_node *p = parent_of(f, n->key);
      if (p) nl_add(l, N_INVAL_ENTRY, p->ino, 0, fs_key_base(n->key));
    }
  }
}

/* The answer being received: a plain body, or (a 200 to the stream) a sequence of event
 * objects, each applied as soon as it is complete. */
typedef struct fs_rx {
  fs_watch *w;
  int probe;
  long status;
  proto_v2_buf body;
  size_t scan;      /* bytes of body already scanned for object ends */
  int depth, in_str, esc;
  size_t n_events;
} fs_rx;

static void handle_event(fs_watch *w, const char *json) {
  proto_v2_event ev;
  memset(&ev, 0, sizeof ev);
  if (proto_v2_parse_event(json, &ev) == 0 && ev.node) {
    fs_nlist l = {0};
    pthread_mutex_lock(&w->f->lock);
    apply_event(w, &ev, &l);
    pthread_mutex_unlock(&w->f->lock);
    nl_run(w, &l);
    if (ev.node->modified_index >= w->next_index) w->next_index = ev.node->modified_index + 1;
  }
  proto_v2_event_free(&ev);
}

/* Applies every complete top-level JSON object in rx->body and drops it from the buffer. */
static void stream_scan(fs_rx *rx) {
  proto_v2_buf *b = &rx->body;
  size_t done = 0; /* bytes consumed */
  for (size_t i = rx->scan; i < b->len; i++) {
    char c = b->s[i];
    if (rx->in_str) {
      if (rx->esc) rx->esc = 0;
      else if (c == '\\') rx->esc = 1;
      else if (c == '"') rx->in_str = 0;
    } else if (c == '"') {
      rx->in_str = 1;
    } else if (c == '{' || c == '[') {
      rx->depth++;
    } else if ((c == '}' || c == ']') && rx->depth > 0 && --rx->depth == 0) {
      char *obj = strndup(b->s + done, i + 1 - done);
      if (obj) handle_event(rx->w, obj);
      free(obj);
      rx->n_events++;
      done = i + 1;
    }
  }
  if (done) {
    memmove(b->s, b->s + done, b->len - done);
    b->len -= done;
    b->s[b->len] = 0;
  }
  rx->scan = b->len;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  fs_rx *rx = ud;
  proto_v2_buf_add(&rx->body, p, size * n);
  if (rx->body.oom) return 0;
  if (!rx->status) curl_easy_getinfo(rx->w->curl, CURLINFO_RESPONSE_CODE, &rx->status);
  if (!rx->probe && rx->status == 200) stream_scan(rx);
  return size * n;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  fs_watch *w = ud;
  return atomic_load(&w->stop) ? 1 : 0;
}

/* One stream watch, its events applied as they come (PROBE: a plain GET of the prefix, to learn
 * that the cluster is back). Returns 0 when the answer ended (rx->status, the rest in rx->body)
 * or -1 (transport: refused, cut, or stopped). */
static int poll_once(fs_watch *w, fs_rx *rx) {
  int probe = rx->probe;
  const char *ep = w->eps[w->cur % w->n_eps];
  size_t el = strlen(ep);
  while (el && ep[el - 1] == '/') el--;
  proto_v2_buf url = {0};
  proto_v2_buf_add(&url, ep, el);
  proto_v2_keys_path(&url, w->f->prefix);
  char q[96];
  snprintf(q, sizeof q, "?wait=true&recursive=true&stream=true&waitIndex=%llu", (unsigned long long)w->next_index);
  if (!probe) proto_v2_buf_adds(&url, q);
  if (url.oom) {
    proto_v2_buf_free(&url);
    return -1;
  }
  CURL *h = w->curl;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url.s);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L); /* a vanished peer ends the wait */
  curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
  if (probe) curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, rx);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, w);
  CURLcode rc = curl_easy_perform(h);
  proto_v2_buf_free(&url);
  if (rc != CURLE_OK) return -1;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rx->status);
  return 0;
}

static void sleep_ms(fs_watch *w, long ms) {
  for (long t = 0; t < ms && !atomic_load(&w->stop); t += 50) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void *watch_main(void *ud) {
  fs_watch *w = ud;
  long backoff = 0;
  while (!atomic_load(&w->stop)) {
    fs_rx rx;
    memset(&rx, 0, sizeof rx);
    rx.w = w;
    rx.probe = w->need_resync;
    int rc = poll_once(w, &rx);
    long status = rx.status;
    if (atomic_load(&w->stop)) {
      proto_v2_buf_free(&rx.body);
      break;
    }
    fs_nlist l = {0};
    int ok = 0;
    if (rc == 0 && rx.probe && status / 100 != 5) {
      /* back after a lost connection: whatever changed meanwhile, the kernel forgets it all
       * (the watch then goes on from next_index, or a 401 resyncs again) */
      pthread_mutex_lock(&w->f->lock);
      resync(w, &l);
      pthread_mutex_unlock(&w->f->lock);
      w->need_resync = 0;
      ok = 1;
    } else if (rc == 0 && rx.probe) {
      /* a 5xx: not usable yet */
    } else if (rc == 0 && status == 200) {
      /* the server ended the stream (its events were applied): watch again from next_index,
       * pausing when it gave nothing so that a server that always hangs up is not hammered */
      ok = 1;
      if (!rx.n_events) sleep_ms(w, 100);
    } else if (rc == 0) {
      proto_v2_error er;
      memset(&er, 0, sizeof er);
      if (proto_v2_parse_error(rx.body.s ? rx.body.s : "", &er) == 0 && er.code == 401) {
        /* the history no longer holds next_index: start over from now, knowing nothing */
        pthread_mutex_lock(&w->f->lock);
        resync(w, &l);
        pthread_mutex_unlock(&w->f->lock);
        w->need_resync = 0;
        w->next_index = er.index + 1;
        ok = 1;
      }
      proto_v2_error_free(&er);
    }
    proto_v2_buf_free(&rx.body);
    nl_run(w, &l);
    if (ok) {
      backoff = 0;
      continue;
    }
    /* lost (or an unusable answer): anything may have happened meanwhile; try the next
     * endpoint, backing off from 50 ms to 2 s (said once per outage) */
    if (!w->need_resync)
      fprintf(stderr, "quorumfs: watch: %s (HTTP %ld); reconnecting\n",
              rc ? "connection lost" : "unexpected answer", status);
    w->need_resync = 1;
    w->cur++;
    backoff = backoff ? (backoff * 2 > 2000 ? 2000 : backoff * 2) : 50;
    sleep_ms(w, backoff);
  }
  return NULL;
}

fs_watch *fs_watch_start(fs *f, struct fuse_session *se, uint64_t from) {
  fs_watch *w = calloc(1, sizeof *w);
  if (!w) return NULL;
  w->f = f;
  w->se = se;
  w->next_index = from;
  atomic_init(&w->stop, 0);
  w->n_eps = proto_v2_client_n_endpoints(f->client);
  w->eps = calloc(w->n_eps ? w->n_eps : 1, sizeof *w->eps);
  w->curl = curl_easy_init();
  int bad = !w->eps || !w->curl || w->n_eps == 0;
  for (size_t i = 0; !bad && i < w->n_eps; i++)
    bad = !(w->eps[i] = strdup(proto_v2_client_endpoint(f->client, i)));
  if (bad || pthread_create(&w->thread, NULL, watch_main, w) != 0) {
    fs_watch_stop(w);
    return NULL;
  }
  w->started = 1;
  return w;
}

void fs_watch_stop(fs_watch *w) {
  if (!w) return;
  atomic_store(&w->stop, 1);
  if (w->started) pthread_join(w->thread, NULL);
  if (w->curl) curl_easy_cleanup(w->curl);
  for (size_t i = 0; w->eps && i < w->n_eps; i++) free(w->eps[i]);
  free(w->eps);
  free(w);
}
