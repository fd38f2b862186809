/* fs_attr: what the kernel sees of a node: its struct stat, its cache timeouts, and the node's
 * fields brought up to date from a store answer. */
#ifndef QUORUM_FS_ATTR_H
#define QUORUM_FS_ATTR_H

#include <sys/stat.h>

#include "fs/fs.h"
#include "fs/fs_store.h"

/* Updates NODE from KV, a read's answer: kind, size, indexes; st_mtime moves whenever
 * modifiedIndex does. Mirrored nodes are left to the watch. */
void fs_attr_update(fs *f, fs_node *node, const fs_kv *kv);

/* The same for the answer to our own write: the mirror takes it (unless the watch already has
 * something newer), so that the write coming back on the watch is known as ours. */
void fs_attr_written(fs *f, fs_node *node, const fs_kv *kv);

void fs_attr_fill(const fs *f, const fs_node *node, struct stat *st);

/* Attr and entry timeout for NODE: 0 for hidden keys and pending nodes. */
double fs_attr_timeout(const fs *f, const fs_node *node);

/* Counts one more kernel lookup of NODE and fills *e for fuse_reply_entry/create. */
void fs_attr_entry(fs *f, fs_node *node, struct fuse_entry_param *e);

#endif
