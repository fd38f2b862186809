/* fs: per-request access to the mount and key-name helpers. */
#include "fs/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

fs *fs_begin(fuse_req_t req) {
  fs *f = fuse_req_userdata(req);
  proto_v2_client_start_clock(f->client);
  return f;
}

char *fs_child_key(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *k = malloc(n);
  if (k) snprintf(k, n, "%s%s%s", dir, strcmp(dir, "/") == 0 ? "" : "/", name);
  return k;
}

const char *fs_key_base(const char *key) {
  const char *slash = strrchr(key, '/');
  return slash ? slash + 1 : key;
}

int fs_key_hidden(const char *key) { return fs_key_base(key)[0] == '_'; }
