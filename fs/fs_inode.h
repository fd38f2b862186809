/* fs_inode: the inode table. Every node the kernel knows is here, found by inode number and by
 * etcd key, and freed when the kernel's lookup count drops to zero (FORGET). */
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
  uint64_t size;      /* value length */
  uint64_t created_index, modified_index;
  struct timespec mtime; /* when this client first saw modified_index */
  struct fs_handle *handles; /* open file handles on this node */
  struct fs_node *next_ino, *next_key;
} fs_node;

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

/* Takes NODE out of the key map (it stays reachable by inode number until forgotten). */
void fs_itable_unlink(fs_itable *t, fs_node *node);

/* Moves NODE to NEW_KEY (any node there is unlinked first). Returns 0 or -1 (out-of-memory). */
int fs_itable_move(fs_itable *t, fs_node *node, const char *new_key);

/* Drops N lookups; the node is freed when none are left and no handle is open. */
void fs_itable_forget(fs_itable *t, fs_node *node, uint64_t n);

/* Frees NODE if nothing refers to it any more (after its last handle closed). */
void fs_itable_maybe_free(fs_itable *t, fs_node *node);

#endif
