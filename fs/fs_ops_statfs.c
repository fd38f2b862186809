/* fs_ops_statfs: statfs(2) of the mount (df). v2 reports no capacity, so the mount reports
 * what it knows, the bytes of the values it mirrors as used and its nodes as files, in a size
 * of 1 PiB (rclone mount's convention where a store has no quota): libfuse's default of zeros
 * reads as a full filesystem, and file managers that check the free space refuse to copy in. */
#include <string.h>
#include <sys/statvfs.h>

#include "fs/fs_ops.h"

#define STATFS_BLOCK 4096u
#define STATFS_BLOCKS ((1ull << 50) / STATFS_BLOCK)
#define STATFS_FILES (1ull << 32)

void fs_statfs(fuse_req_t req, fuse_ino_t ino) {
  (void)ino;
  fs *f = fs_begin(req);
  unsigned long long bytes = 0, files = 0;
  for (size_t i = 0; i < f->nodes.n_buckets; i++)
    for (const fs_node *n = f->nodes.by_ino[i]; n; n = n->next_ino)
      if (n->cached) {
        files++;
        if (!n->is_dir) bytes += n->size;
      }
  struct statvfs st;
  memset(&st, 0, sizeof st);
  st.f_bsize = st.f_frsize = STATFS_BLOCK;
  unsigned long long used = (bytes + STATFS_BLOCK - 1) / STATFS_BLOCK;
  st.f_blocks = STATFS_BLOCKS;
  st.f_bfree = st.f_bavail = used < STATFS_BLOCKS ? STATFS_BLOCKS - used : 0;
  st.f_files = STATFS_FILES;
  st.f_ffree = st.f_favail = files < STATFS_FILES ? STATFS_FILES - files : 0;
  st.f_namemax = 255;
  fuse_reply_statfs(req, &st);
}
