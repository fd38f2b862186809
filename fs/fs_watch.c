/* fs_watch: the watch thread, which is also the applier of fs_replay.c. Each event is applied
 * to the mirror under f->lock (after any request of ours that writes the same keys has ended,
 * so that our own changes coming back are recognised by their modifiedIndex and not replayed);
 * the replay calls and kernel notifications are made after the lock is released (a
 * notification may wait for the kernel, and the kernel may wait for a handler that waits for
 * the lock: fuse.md, pitfall 1). */
#include "fs/fs_watch.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs_endpoints.h"
#include "fs/fs_mirror.h"
#include "fs/fs_replay.h"
#include "fs/fs_session.h"

struct fs_watch {
  fs *f;
  struct fuse_session *se;
  pthread_t thread;
  int started;
  atomic_int stop;
  CURL *curl;
  proto_v2_client *client; /* for the resync's GET */
  char **eps;
  size_t n_eps, cur;
  unsigned ep_gen, client_gen; /* of eps and of the client's list (fs_endpoints) */
  uint64_t next_index;
  uint64_t behind_ok; /* the next_index at which a member behind was found to be only behind */
  int rootfd;
};

static void set_state(fs *f, int v) { __atomic_store_n(&f->watch_state, v, __ATOMIC_RELEASE); }

/* The answer being received: a plain body, or (a 200 to the stream) a sequence of event
 * objects, each applied as soon as it is complete. */
typedef struct fs_rx {
  fs_watch *w;
  long status;
  proto_v2_buf body;
  size_t scan;      /* bytes of body already scanned for object ends */
  int depth, in_str, esc;
  size_t n_events;
  uint64_t registered; /* the answer's X-Etcd-Index: the index when the watch was registered */
  int restart;         /* the last event came from the history: end this stream (see below) */
  int64_t answer_by;   /* monotonic ms: no status line by then ends the attempt (0: never) */
  int unanswered;      /* ended so */
  int went_back;       /* ended so: the member's index is below the events applied */
  char cause[CURL_ERROR_SIZE]; /* why the transfer failed (curl's words) */
} fs_rx;

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Applies one event; returns its index (0: not an event). */
static uint64_t handle_event(fs_watch *w, const char *json) {
  uint64_t index = 0;
  proto_v2_event ev;
  memset(&ev, 0, sizeof ev);
  if (proto_v2_parse_event(json, &ev) == 0 && ev.node) {
    fs *f = w->f;
    for (int again = 0; again < 2; again++) {
      fs_rops ops = {0};
      pthread_mutex_lock(&f->lock);
      if (ev.node->key) fs_session_wait_writes(f, ev.node->key);
      int more = fs_mirror_apply(f, &ev, &ops, again);
      pthread_mutex_unlock(&f->lock);
      fs_replay_run(f, w->se, f->mountpoint, &w->rootfd, &ops);
      if (!more) break;
    }
    if (ev.node->modified_index >= w->next_index) w->next_index = ev.node->modified_index + 1;
    index = ev.node->modified_index;
  }
  proto_v2_event_free(&ev);
  return index;
}

/* Applies every complete top-level JSON object in rx->body and drops it from the buffer.
 * Real etcd answers a stream whose waitIndex is still in its history with that one event and
 * then never writes to it again (its history watcher is one-shot): when the last event of what
 * arrived came from the history, rx->restart asks for a new stream from the next index. */
static void stream_scan(fs_rx *rx) {
  proto_v2_buf *b = &rx->body;
  size_t done = 0; /* bytes consumed */
  uint64_t last = 0;
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
      if (obj) last = handle_event(rx->w, obj);
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
  if (last && rx->registered && last <= rx->registered) rx->restart = 1;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud) {
  fs_rx *rx = ud;
  proto_v2_buf_add(&rx->body, p, size * n);
  if (rx->body.oom) return 0;
  if (!rx->status) curl_easy_getinfo(rx->w->curl, CURLINFO_RESPONSE_CODE, &rx->status);
  if (rx->status == 200) stream_scan(rx);
  return rx->restart ? 0 : size * n; /* 0 ends the transfer */
}

/* The stream's status line: a 200 means the mirror is current from now on. */
static size_t on_header(char *p, size_t size, size_t n, void *ud) {
  fs_rx *rx = ud;
  size_t len = size * n;
  if (len > 12 && strncasecmp(p, "HTTP/", 5) == 0) {
    const char *sp = memchr(p, ' ', len);
    rx->status = sp ? strtol(sp + 1, NULL, 10) : 0;
    if (rx->status == 200) set_state(rx->w->f, FS_WATCH_SYNCED);
  } else if (len > 13 && strncasecmp(p, "X-Etcd-Index:", 13) == 0) {
    rx->registered = strtoull(p + 13, NULL, 10);
    fs_watch *w = rx->w;
    if (rx->status == 200 && rx->registered + 1 < w->next_index && w->behind_ok != w->next_index) {
      rx->went_back = 1;
      return 0; /* ends the transfer: went_back() decides */
    }
  }
  return len;
}

/* Ends the attempt when the mount stops, or when the member has not answered within the
 * mount's op_timeout: a member holds requests until it has caught up with the cluster (etcd's
 * and quorumd's do), and one that cannot catch up would hold the watch for as long as that
 * lasts while the other members go on. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  fs_rx *rx = ud;
  if (atomic_load(&rx->w->stop)) return 1;
  if (!rx->status && rx->answer_by && mono_ms() > rx->answer_by) {
    rx->unanswered = 1;
    return 1;
  }
  return 0;
}

/* The mount's endpoint list, when it changed (fs_endpoints), staying on the endpoint in use if
 * it is still listed. */
static void take_endpoints(fs_watch *w) {
  fs_endpoints_refresh(w->f, w->client, &w->client_gen);
  if (__atomic_load_n(&w->f->ep_gen, __ATOMIC_ACQUIRE) == w->ep_gen) return;
  char **eps;
  size_t n;
  unsigned g;
  if (fs_endpoints_copy(w->f, &eps, &n, &g) != 0) return;
  if (!n) {
    fs_endpoints_free_copy(eps, n);
    return;
  }
  const char *now = w->eps[w->cur % w->n_eps];
  size_t cur = 0;
  for (size_t i = 0; i < n; i++)
    if (strcmp(eps[i], now) == 0) cur = i;
  fs_endpoints_free_copy(w->eps, w->n_eps);
  w->eps = eps;
  w->n_eps = n;
  w->cur = cur;
  w->ep_gen = g;
}

/* One stream watch, its events applied as they come. Returns 0 when the answer ended
 * (rx->status, the rest in rx->body) or -1 (transport: refused, cut, or stopped). */
static int poll_once(fs_watch *w, fs_rx *rx) {
  take_endpoints(w);
  const char *ep = w->eps[w->cur % w->n_eps];
  size_t el = strlen(ep);
  while (el && ep[el - 1] == '/') el--;
  proto_v2_buf url = {0};
  proto_v2_buf_add(&url, ep, el);
  proto_v2_keys_path(&url, w->f->prefix);
  char q[96];
  snprintf(q, sizeof q, "?wait=true&recursive=true&stream=true&waitIndex=%llu", (unsigned long long)w->next_index);
  proto_v2_buf_adds(&url, q);
  if (url.oom) {
    proto_v2_buf_free(&url);
    snprintf(rx->cause, sizeof rx->cause, "out of memory");
    return -1;
  }
  CURL *h = w->curl;
  curl_easy_reset(h);
  curl_easy_setopt(h, CURLOPT_URL, url.s);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, rx->cause);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L); /* a vanished peer ends the wait */
  curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 10L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 5L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  const proto_v2_client_opts *o = &w->f->client_opts; /* the mount's TLS files, if any */
  if (o->ca_file && *o->ca_file) curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
  if (o->cert_file && *o->cert_file) curl_easy_setopt(h, CURLOPT_SSLCERT, o->cert_file);
  if (o->key_file && *o->key_file) curl_easy_setopt(h, CURLOPT_SSLKEY, o->key_file);
  if (o->username) { /* the mount's /v2/auth user */
    curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(h, CURLOPT_USERNAME, o->username);
    curl_easy_setopt(h, CURLOPT_PASSWORD, o->password ? o->password : "");
  }
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, rx);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, rx);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, rx);
  long op_ms = w->f->client_opts.total_timeout_ms;
  rx->answer_by = op_ms > 0 ? mono_ms() + op_ms : 0;
  CURLcode rc = curl_easy_perform(h);
  proto_v2_buf_free(&url);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL); /* (rx is the caller's) */
  if (rx->went_back) {
    set_state(w->f, FS_WATCH_CONNECTING);
    return 0;
  }
  if (rx->restart) {
    rx->status = 200; /* ended by us after a history event: watch again */
  } else if (rc != CURLE_OK) {
    if (!rx->cause[0]) snprintf(rx->cause, sizeof rx->cause, "%s", curl_easy_strerror(rc));
    set_state(w->f, FS_WATCH_LOST);
    return -1;
  }
  set_state(w->f, FS_WATCH_CONNECTING); /* (a non-200 answer is judged by the caller) */
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &rx->status);
  return 0;
}

/* The history no longer holds next_index (401), or (RESET) the store went back (went_back):
 * the mirror is brought to a fresh recursive GET, every difference replayed as events, and the
 * watch goes on after that GET's index. Returns 0, or -1 when the GET failed. */
static int resync(fs_watch *w, int reset) {
  fs *f = w->f;
  proto_v2_event ev;
  uint64_t index = 0;
  int e = fs_mirror_fetch(w->client, f->prefix, &ev, &index, NULL);
  if (e && e != ENOENT) return -1;
  for (int again = 0; again < 2; again++) { /* (a second pass for files become directories) */
    fs_rops ops = {0};
    pthread_mutex_lock(&f->lock);
    fs_session_wait_writes(f, f->prefix);
    int more = reset ? fs_mirror_reset(f, e ? NULL : ev.node, index, &ops, again)
                     : fs_mirror_resync(f, e ? NULL : ev.node, index, &ops, again);
    pthread_mutex_unlock(&f->lock);
    fs_replay_run(f, w->se, f->mountpoint, &w->rootfd, &ops);
    if (!more) break;
  }
  if (!e) proto_v2_event_free(&ev);
  w->next_index = index + 1;
  return 0;
}

/* The stream's member answered at an index below the last event applied. Either it is behind
 * the others (a member the watch moved to), and catches up, or the store went back: its data
 * dir was replaced (wiped, or restored from a backup) and its indexes start again below the
 * mirror's, so that the watch would wait for an index that means something else, the mirror
 * showing keys that are gone and missing those made since. A quorum read, answered at the
 * cluster's index, tells them apart. Returns 0 (behind: the watch goes on from next_index; or
 * went back: the mirror is brought to a fresh GET, every difference replayed as events, and
 * the watch goes on after it), or -1 when the cluster could not be asked. */
static int went_back(fs_watch *w) {
  fs *f = w->f;
  proto_v2_buf path = {0};
  proto_v2_keys_path(&path, f->prefix);
  proto_v2_buf_adds(&path, "?quorum=true");
  if (path.oom) {
    proto_v2_buf_free(&path);
    return -1;
  }
  proto_v2_resp r;
  proto_v2_errors err;
  proto_v2_client_start_clock(w->client);
  int rc = proto_v2_do(w->client, "GET", path.s, NULL, NULL, 0, &r, &err);
  proto_v2_buf_free(&path);
  if (rc != 0) return -1;
  int known = r.has_index && r.status / 100 != 5;
  uint64_t index = r.etcd_index;
  proto_v2_resp_free(&r);
  if (!known) return -1;
  if (index + 1 >= w->next_index) { /* behind: it gets the events, as the others did */
    w->behind_ok = w->next_index;
    return 0;
  }
  fprintf(stderr, "quorumfs: watch: the store's index went back from %llu to %llu (its data was "
                  "replaced or restored?); reloading the mirror\n",
          (unsigned long long)(w->next_index - 1), (unsigned long long)index);
  return resync(w, 1);
}

static void sleep_ms(fs_watch *w, long ms) {
  for (long t = 0; t < ms && !atomic_load(&w->stop); t += 50) {
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void *watch_main(void *ud) {
  fs_watch *w = ud;
  __atomic_store_n(&w->f->applier_tid, (int)syscall(SYS_gettid), __ATOMIC_RELEASE);
  long backoff = 0;
  int lost = 0;
  while (!atomic_load(&w->stop)) {
    fs_rx rx;
    memset(&rx, 0, sizeof rx);
    rx.w = w;
    int rc = poll_once(w, &rx);
    long status = rx.status;
    if (atomic_load(&w->stop)) {
      proto_v2_buf_free(&rx.body);
      break;
    }
    int ok = 0;
    if (rx.went_back) {
      ok = went_back(w) == 0;
    } else if (rc == 0 && status == 200) {
      /* the server ended the stream (its events were applied): watch again from next_index,
       * pausing when it gave nothing so that a server that always hangs up is not hammered */
      ok = 1;
      if (!rx.n_events) sleep_ms(w, 100);
    } else if (rc == 0) {
      proto_v2_error er;
      memset(&er, 0, sizeof er);
      if (proto_v2_parse_error(rx.body.s ? rx.body.s : "", &er) == 0 && er.code == 401) {
        fprintf(stderr, "quorumfs: watch: events after %llu were cleared from the history; resyncing\n",
                (unsigned long long)w->next_index);
        ok = resync(w, 0) == 0;
      }
      proto_v2_error_free(&er);
    }
    proto_v2_buf_free(&rx.body);
    if (ok) {
      if (lost) fprintf(stderr, "quorumfs: watch: reconnected\n");
      backoff = 0;
      lost = 0;
      continue;
    }
    /* lost (or an unusable answer): reconnect from next_index (the history replays what was
     * missed, or a 401 resyncs), trying the next endpoint, backing off from 50 ms to 2 s */
    if (rx.unanswered) /* each time: it names the member, after a connection lost too */
      fprintf(stderr, "quorumfs: watch: %s did not answer within op_timeout (not caught up with "
                      "the cluster?); trying the next endpoint\n", w->eps[w->cur % w->n_eps]);
    else if (!lost && rx.went_back)
      fprintf(stderr, "quorumfs: watch: %s answered below the mirror's index, and the cluster's "
                      "index could not be read; reconnecting\n", w->eps[w->cur % w->n_eps]);
    else if (!lost && rc)
      fprintf(stderr, "quorumfs: watch: connection to %s lost (%s); reconnecting\n",
              w->eps[w->cur % w->n_eps], rx.cause);
    else if (!lost)
      fprintf(stderr, "quorumfs: watch: unexpected answer from %s (HTTP %ld); reconnecting\n",
              w->eps[w->cur % w->n_eps], status);
    lost = 1;
    set_state(w->f, FS_WATCH_LOST);
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
  w->rootfd = -1;
  atomic_init(&w->stop, 0);
  w->n_eps = f->n_endpoints;
  w->eps = calloc(w->n_eps ? w->n_eps : 1, sizeof *w->eps);
  w->curl = curl_easy_init();
  w->client = proto_v2_client_new(&f->client_opts);
  int bad = !w->eps || !w->curl || !w->client || w->n_eps == 0;
  for (size_t i = 0; !bad && i < w->n_eps; i++) bad = !(w->eps[i] = strdup(f->endpoints[i]));
  w->cur = f->mount_ep;
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
  proto_v2_client_free(w->client);
  if (w->rootfd >= 0) close(w->rootfd);
  for (size_t i = 0; w->eps && i < w->n_eps; i++) free(w->eps[i]);
  free(w->eps);
  free(w);
}
