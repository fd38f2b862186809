/* fs_inode: the inode table. Every node the kernel knows is here, found by inode number and by
 * etcd key; linked nodes also form a tree (parent, children) by key. A node is freed when the
 * kernel's lookup count drops to zero (FORGET), unless it is part of the mirror (`cached`: the
 * store's node under the mount prefix, kept current by the watch, fs_mirror.c). */
#ifndef QUORUM_FS_INODE_H
#define QUORUM_FS_INODE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct fs_handle;

typedef struct fs_node {
  uint64_t ino;
  char *key;          /* full etcd key; still set after the node left the key map */
  int linked;         /* in the key map (not unlinked, renamed over or abandoned) */
  uint64_t nlookup;   /* the kernel's lookup count */
  int is_dir;
  int is_post;        /* the magic FS_POST_NAME entry of a directory */
  int pending;        /* created locally (O_CREAT), not yet in the store */
  int removing;       /* this mount's DELETE of the key is on the network: pushes wait */
  uint64_t size;      /* value length */
  uint64_t created_index, modified_index;
  struct timespec mtime; /* when this client first saw modified_index */
  struct fs_handle *handles; /* open file handles on this node */
  /* the mirror: value and TTL as the store has them (cached = complete and kept current; a
   * cached directory's children are all its non-hidden keys) */
  int cached;
  char *value;
  size_t vlen;
  double expires_at;  /* CLOCK_REALTIME seconds; 0 = no TTL */
  int replay;         /* FS_REPLAY_*: a remote change waiting for its self-made VFS call */
  struct fs_node *next_ino, *next_key;
  struct fs_node *parent, *child, *prev_sib, *next_sib; /* tree of linked nodes */
} fs_node;

/* A remote create that the kernel must not see until the applier's own mknod/mkdir makes it
 * visible (so that the kernel raises IN_CREATE), and a remote delete that stays visible to the
 * applier alone until its own unlink/rmdir (IN_DELETE). fs_replay.c. */
enum { FS_REPLAY_NONE = 0, FS_REPLAY_HIDDEN, FS_REPLAY_DYING };

typedef struct fs_itable {
  fs_node **by_ino, **by_key;
  size_t n_buckets, count;
  uint64_t next_ino;
  fs_node *root;
} fs_itable;

/* Creates the table with its root node (FUSE_ROOT_ID, key ROOT_KEY). Returns 0 or -1. */
int fs_itable_init(fs_itable *t, const char *root_key);
void fs_itable_free(fs_itable *t);

fs_node *fs_itable_get(const fs_itable *t, uint64_t ino);
fs_node *fs_itable_find(const fs_itable *t, const char *key);

/* The node of KEY, created (nlookup 0) when there is none. NULL on out-of-memory. */
fs_node *fs_itable_intern(fs_itable *t, const char *key);

/* Takes NODE and everything below it out of the key map and the tree (they stay reachable by
 * inode number until forgotten; those nothing refers to are freed). */
void fs_itable_unlink(fs_itable *t, fs_node *node);

/* Moves NODE to NEW_KEY (any node there is unlinked first). Returns 0 or -1 (out-of-memory). */
int fs_itable_move(fs_itable *t, fs_node *node, const char *new_key);

/* Drops N lookups; the node is freed when none are left and no handle is open. */
void fs_itable_forget(fs_itable *t, fs_node *node, uint64_t n);

/* Frees NODE if nothing refers to it any more (after its last handle closed): no lookups, no
 * handles, no children, not in the mirror. */
void fs_itable_maybe_free(fs_itable *t, fs_node *node);

/* The mirror value of NODE (copied; "" for directories). Returns 0 or -1 (out-of-memory). */
int fs_node_set_value(fs_node *node, const char *value, size_t len);

#endif
