/* fs: key-name helpers shared by the operations. */
#include "fs/fs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
