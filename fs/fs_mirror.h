/* fs_mirror: the in-memory copy of the key tree under the mount prefix (values, kinds, indexes,
 * TTLs), held in the inode table's cached nodes. It is loaded with one recursive GET at mount,
 * changed by the watch stream's events (fs_mirror_apply) and, when the stream's history is
 * gone (401), by the difference to a fresh recursive GET (fs_mirror_resync). Each change also
 * yields the replay operations (fs_replay.h) that make the kernel raise the matching inotify
 * events. Hidden ("_") keys are not in the mirror (v2 neither lists nor watches them). All
 * functions but fs_mirror_fetch are called with f->lock held. */
#ifndef QUORUM_FS_MIRROR_H
#define QUORUM_FS_MIRROR_H

#include "fs/fs.h"
#include "fs/fs_replay.h"

/* GET PREFIX?recursive=true&sorted=true with client C: *ev holds the answer and *index its
 * X-Etcd-Index. Returns 0, ENOENT (the prefix does not exist: *index still set) or another
 * errno (EIO: unreachable; then *why, when WHY is not NULL, is what each endpoint answered,
 * malloc'd, or NULL). */
int fs_mirror_fetch(proto_v2_client *c, const char *prefix, proto_v2_event *ev, uint64_t *index,
                    char **why);

/* Fills the mirror from ROOT, the prefix's node (NULL: an empty root), at mount. */
void fs_mirror_load(fs *f, const proto_v2_knode *root);

/* Applies one watch event; the kernel's side of it is appended to OPS. An event older than
 * what this mount already knows of its key changes nothing: the node's own modifiedIndex, or
 * for a key this mount deleted (or a key below it) the delete's index, which is remembered
 * (fs_mirror_deleted) until the watch passes it. Returns 1 when OPS hold only the first step
 * of the change (a file replaced by a directory: the file's removal): the caller runs them and
 * applies the event again with AGAIN set, which never returns 1. */
int fs_mirror_apply(fs *f, const proto_v2_event *ev, fs_rops *ops, int again);

/* This mount deleted KEY (and everything below it) at INDEX: events for it before INDEX that
 * the watch has yet to deliver must not bring it back. */
void fs_mirror_deleted(fs *f, const char *key, uint64_t index);

/* Brings the mirror to ROOT (a fresh recursive GET answered at INDEX; NULL: the prefix is
 * gone), as if every difference had come as an event. Returns 1 when a file became a
 * directory: OPS remove the file, and the caller runs them and calls again with AGAIN set
 * (as fs_mirror_apply). */
int fs_mirror_resync(fs *f, const proto_v2_knode *root, uint64_t index, fs_rops *ops, int again);

/* As fs_mirror_resync, after the store went back: its index is below what the mirror has seen
 * (its data dir was replaced, or restored from a backup), so the mirror's indexes and the
 * deletes it remembers mean nothing there. They are dropped first; a node the fresh tree holds
 * unchanged (kind and value) takes its indexes without an event, and every other difference
 * is replayed as by fs_mirror_resync. */
int fs_mirror_reset(fs *f, const proto_v2_knode *root, uint64_t index, fs_rops *ops, int again);

/* Frees the remembered deletes (at unmount). */
void fs_mirror_free(fs *f);

/* NODE can be seen by the caller of REQ (a remote create not yet replayed is seen by nobody,
 * a remote delete not yet replayed only by the applier). */
int fs_mirror_visible(fuse_req_t req, const fs_node *node);

/* Someone looks up KEY, created remotely and not yet replayed: waits (f->lock released) up to
 * 100 ms for the applier's create, then lets the name be seen anyway (the watchers then miss
 * that IN_CREATE, which is better than an ENOENT for a key that exists). Returns KEY's node. */
fs_node *fs_mirror_wait_replay(fs *f, const char *key);

/* KEY was just made in the store by this mount through a POST (an in-order key, named by the
 * store, so the mount learns it from its watch): waits (f->lock held) up to MS until the key is
 * in the mirror and its create replayed, so that a listing after the write's close shows it.
 * No wait while the watch is lost; it waits while the watch is still connecting (just after the
 * mount, or between two streams): the key's event comes from the history then. */
void fs_mirror_wait_listed(fs *f, const char *key, long ms);

/* A replay state changed (fs_mirror_wait_replay's waiters look again). */
void fs_mirror_replayed(fs *f);

/* NAME (a key's last component) is hidden, or KEY lies below a hidden directory. */
int fs_mirror_hidden(const fs *f, const char *key);

#endif
