/* fs_watch: one recursive v2 watch per mount, on its own thread with its own curl handle, that
 * keeps the kernel's caches current: each event updates the inode table and is followed by
 * fuse_lowlevel_notify_inval_inode / inval_entry / notify_delete (made with no lock held, never
 * from a request handler). The watch is one stream (GET <prefix>?wait=true&recursive=true&
 * stream=true&waitIndex=N, N = last modifiedIndex + 1), reconnected with backoff; after a 401
 * (history cleared) or a lost connection every known inode and name is invalidated (a resync). */
#ifndef QUORUM_FS_WATCH_H
#define QUORUM_FS_WATCH_H

#include "fs/fs.h"

typedef struct fs_watch fs_watch;

/* Starts the watch of F's prefix from index FROM (the first index waited for). NULL on
 * failure (the mount then works without it). */
fs_watch *fs_watch_start(fs *f, struct fuse_session *se, uint64_t from);

/* Stops the thread (within about a second: curl's progress callback) and frees W. */
void fs_watch_stop(fs_watch *w);

#endif
