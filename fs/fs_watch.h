/* fs_watch: one recursive v2 watch per mount, on its own thread with its own curl handle, that
 * keeps the mirror (fs_mirror.h) current and replays each remote change through the mount
 * (fs_replay.h) so that the kernel raises its inotify events. The watch is one stream
 * (GET <prefix>?wait=true&recursive=true&stream=true&waitIndex=N, N = last modifiedIndex + 1);
 * f->watch_state says whether it is open (FS_WATCH_*). A lost stream is reopened from N with
 * backoff (the server's history replays what was missed); a 401 (history cleared) brings the
 * mirror to a fresh recursive GET, the differences replayed as events. */
#ifndef QUORUM_FS_WATCH_H
#define QUORUM_FS_WATCH_H

#include "fs/fs.h"

typedef struct fs_watch fs_watch;

/* Starts the watch of F's prefix from index FROM (the first index waited for). NULL on
 * failure (the mount then works without it). */
fs_watch *fs_watch_start(fs *f, struct fuse_session *se, uint64_t from);

/* Stops the thread (within about a second: curl's progress callback) and frees W. The session
 * threads must still serve requests meanwhile (the applier may be inside a VFS call). */
void fs_watch_stop(fs_watch *w);

#endif
