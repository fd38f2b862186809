/* fs_session: session threads, per-thread clients, interrupts and the record of writes in
 * flight. */
#include "fs/fs_session.h"

#include "fs/fs_endpoints.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FS_OPCODE_INTERRUPT 36 /* fuse_kernel.h: FUSE_INTERRUPT */


struct fs_thread {
  fs *f;
  proto_v2_client *client;
  unsigned ep_gen; /* of the client's endpoint list (fs_endpoints) */
  fuse_req_t req;
  atomic_int interrupted;
  char **writing; /* keys the current request is writing */
  size_t n_writing, cap_writing;
  fs_thread *next;
};

static int thread_cancelled(void *ud) {
  fs_thread *t = ud;
  return atomic_load(&t->interrupted);
}

/* The calling thread's state (f->lock held: the list of threads is under it). */
static fs_thread *thread_get(fs *f) {
  fs_thread *t = pthread_getspecific(f->thread_key);
  if (t) return t;
  t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->f = f;
  t->client = proto_v2_client_new(&f->client_opts);
  if (!t->client) {
    free(t);
    return NULL;
  }
  proto_v2_client_set_cancel(t->client, thread_cancelled, t);
  atomic_init(&t->interrupted, 0);
  t->next = f->threads;
  f->threads = t;
  pthread_setspecific(f->thread_key, t);
  return t;
}

fs *fs_begin(fuse_req_t req) {
  fs *f = fuse_req_userdata(req);
  fs_thread *t = thread_get(f);
  if (t) {
    t->req = req;
    atomic_store(&t->interrupted, 0);
    fs_endpoints_refresh(f, t->client, &t->ep_gen);
    proto_v2_client_start_clock(t->client);
  }
  return f;
}

proto_v2_client *fs_client(fs *f) {
  fs_thread *t = thread_get(f);
  return t ? t->client : NULL;
}

int fs_self(fuse_req_t req) {
  fs *f = fuse_req_userdata(req);
  const struct fuse_ctx *c = fuse_req_ctx(req);
  int tid = __atomic_load_n(&f->applier_tid, __ATOMIC_ACQUIRE);
  return tid != 0 && c && (int)c->pid == tid;
}

int fs_refuse_write(fuse_req_t req) {
  fs *f = fuse_req_userdata(req);
  return f->read_only && !fs_self(req);
}

static void on_interrupt(fuse_req_t req, void *data) {
  (void)req;
  fs_thread *t = data;
  atomic_store(&t->interrupted, 1);
}

void fs_session_net_begin(fs *f, const char *write_key) {
  fs_thread *t = thread_get(f);
  if (t && write_key) {
    if (t->n_writing == t->cap_writing) {
      size_t nc = t->cap_writing ? t->cap_writing * 2 : 4;
      char **v = realloc(t->writing, nc * sizeof *v);
      if (v) {
        t->writing = v;
        t->cap_writing = nc;
      }
    }
    char *k = t->n_writing < t->cap_writing ? strdup(write_key) : NULL;
    if (k) t->writing[t->n_writing++] = k;
  }
  if (t && t->req) fuse_req_interrupt_func(t->req, on_interrupt, t);
  pthread_mutex_unlock(&f->lock);
}

int fs_session_net_end(fs *f) {
  pthread_mutex_lock(&f->lock);
  fs_thread *t = pthread_getspecific(f->thread_key);
  if (!t) return 0;
  if (t->req) fuse_req_interrupt_func(t->req, NULL, NULL);
  return atomic_load(&t->interrupted) ? EINTR : 0;
}

/* One key is KEY, above it or below it. */
static int related(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  const char *s = la <= lb ? a : b, *l = la <= lb ? b : a;
  size_t n = la <= lb ? la : lb;
  if (strncmp(s, l, n) != 0) return 0;
  return l[n] == 0 || l[n] == '/' || (n == 1 && s[0] == '/');
}

static int writing(fs *f, const char *key) {
  for (fs_thread *t = f->threads; t; t = t->next)
    for (size_t i = 0; i < t->n_writing; i++)
      if (related(t->writing[i], key)) return 1;
  return 0;
}

void fs_session_wait_writes(fs *f, const char *key) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  long ms = f->op_timeout_ms * 2 + 1000;
  deadline.tv_sec += ms / 1000;
  deadline.tv_nsec += (ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  while (writing(f, key))
    if (pthread_cond_timedwait(&f->idle, &f->lock, &deadline) == ETIMEDOUT) break;
}

void fs_session_writes_answered(fs *f) {
  fs_thread *t = pthread_getspecific(f->thread_key);
  if (!t || !t->n_writing) return;
  for (size_t i = 0; i < t->n_writing; i++) free(t->writing[i]);
  t->n_writing = 0;
  pthread_cond_broadcast(&f->idle);
}

void fs_session_request_done(fs *f) {
  fs_thread *t = pthread_getspecific(f->thread_key);
  if (!t) return;
  t->req = NULL;
  fs_session_writes_answered(f);
}

struct fs_session {
  fs *f;
  struct fuse_session *se;
  atomic_int stop;
  pthread_t *workers;
  int n_workers;
};

static int serve(fs_session *s, struct fuse_buf *fbuf) {
  fs *f = s->f;
  int res = fuse_session_receive_buf(s->se, fbuf);
  if (res <= 0) return res;
  uint32_t opcode = 0;
  if (!(fbuf->flags & FUSE_BUF_IS_FD) && fbuf->size >= 8) memcpy(&opcode, (char *)fbuf->mem + 4, 4);
  if (opcode == FS_OPCODE_INTERRUPT) { /* must get through while the lock's owner waits */
    fuse_session_process_buf(s->se, fbuf);
    return res;
  }
  pthread_mutex_lock(&f->lock);
  fuse_session_process_buf(s->se, fbuf);
  fs_session_request_done(f);
  pthread_mutex_unlock(&f->lock);
  return res;
}

/* Workers serve until fs_session_stop (not until a signal: the applier may still need them
 * while the watch thread stops) or the end of the connection. */
static void *worker_main(void *ud) {
  fs_session *s = ud;
  struct fuse_buf fbuf;
  memset(&fbuf, 0, sizeof fbuf);
  while (!atomic_load(&s->stop)) {
    int res = serve(s, &fbuf);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0) break;
  }
  free(fbuf.mem);
  return NULL;
}

fs_session *fs_session_start(fs *f, struct fuse_session *se, int n) {
  fs_session *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->f = f;
  s->se = se;
  atomic_init(&s->stop, 0);
  if (n < 2) n = 2; /* one besides the caller's, so the applier is served after a signal */
  s->workers = calloc((size_t)n, sizeof *s->workers);
  if (!s->workers) {
    free(s);
    return NULL;
  }
  /* signals (SIGINT/SIGTERM/SIGHUP end the session) go to the caller's thread only */
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  sigaddset(&block, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &block, &old);
  for (int i = 0; i < n - 1; i++) {
    if (pthread_create(&s->workers[i], NULL, worker_main, s) != 0) break;
    s->n_workers++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return s;
}

int fs_session_loop(fs_session *s) {
  struct fuse_buf fbuf;
  memset(&fbuf, 0, sizeof fbuf);
  int res = 0;
  while (!fuse_session_exited(s->se)) {
    res = serve(s, &fbuf);
    if (res == -EINTR || res == -EAGAIN) continue;
    if (res <= 0) break;
  }
  free(fbuf.mem);
  return res < 0 ? -1 : 0;
}

void fs_session_stop(fs_session *s) {
  if (!s) return;
  atomic_store(&s->stop, 1);
  for (int i = 0; i < s->n_workers; i++) pthread_join(s->workers[i], NULL);
  free(s->workers);
  free(s);
}

void fs_session_free(fs *f) {
  for (fs_thread *t = f->threads, *next; t; t = next) {
    next = t->next;
    proto_v2_client_free(t->client);
    for (size_t i = 0; i < t->n_writing; i++) free(t->writing[i]);
    free(t->writing);
    free(t);
  }
  f->threads = NULL;
}
