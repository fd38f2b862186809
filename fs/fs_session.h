/* fs_session: the threads that serve FUSE requests. Several threads read /dev/fuse, so one
 * request waiting for the network (up to op_timeout) does not hold up the others: the mount's
 * lock is held while a request runs but released around its network calls (fs_store_req).
 * Each thread has its own v2 client. FUSE_INTERRUPT is handled without the lock: it cancels
 * the interrupted request's network call, which then fails with EINTR. The keys a request is
 * writing are recorded until it ends, so that the watch thread can tell our own changes coming
 * back on the stream from remote ones (fs_session_wait_writes). */
#ifndef QUORUM_FS_SESSION_H
#define QUORUM_FS_SESSION_H

#include "fs/fs.h"

typedef struct fs_session fs_session;

/* Starts N-1 worker threads (at least one) serving SE. NULL on failure. */
fs_session *fs_session_start(fs *f, struct fuse_session *se, int n);

/* Serves on the caller's thread until a signal or the end of the connection. Returns 0/-1. */
int fs_session_loop(fs_session *s);

/* After the unmount: the workers end; frees S. */
void fs_session_stop(fs_session *s);

/* Around one network call of the calling request (f->lock held on entry and on return; released
 * in between). WRITE_KEY (NULL for reads) is recorded as being written until the request ends.
 * net_end returns EINTR when the request was interrupted meanwhile, else 0. */
void fs_session_net_begin(fs *f, const char *write_key);
int fs_session_net_end(fs *f);

/* With f->lock held: waits (bounded) until no request is writing KEY, an ancestor of it or
 * a key below it. */
void fs_session_wait_writes(fs *f, const char *key);
/* The calling thread's request has ended: it writes nothing any more (called after every
 * FUSE request, and by the main thread after its own writes at mount, which are no FUSE
 * request: their record would hold up every event below them until it timed out). Under
 * f->lock. */
void fs_session_request_done(fs *f);
/* The calling thread's writes so far have their answers: it is no longer recorded as writing
 * them, although its request goes on (a .post close that then waits for the watch to list
 * the key it made: the watch must not wait for it in turn). Under f->lock. */
void fs_session_writes_answered(fs *f);

/* Frees every thread's state: clients and records (after the session ended). */
void fs_session_free(fs *f);

#endif
