/* fs_errno: the errno map. */
#include "fs/fs_errno.h"

#include <errno.h>
#include <string.h>

#include "proto/v2_client.h"

int fs_errno_from_code(int code) {
  switch (code) {
    case 100: return ENOENT;    /* key not found */
    case 101: return ESTALE;    /* compare failed: someone else changed it */
    case 102: return EISDIR;    /* not a file */
    case 104: return ENOTDIR;   /* not a directory */
    case 105: return EEXIST;    /* key already exists */
    case 107: return EPERM;     /* root is read only */
    case 108: return ENOTEMPTY; /* directory not empty */
    case 110: return EACCES;    /* insufficient credentials */
    case 300:
    case 301: return EAGAIN;    /* raft internal error, leader election */
    default: break;
  }
  if (code >= 200 && code < 300) return EINVAL;
  return EIO;
}

int fs_errno_from_answer(long status, const char *body) {
  proto_v2_error e;
  if (body && proto_v2_parse_error(body, &e) == 0) {
    int code = e.code;
    /* a form past the server's 10 MiB (etcd's Go ParseForm limit, and quorumd's):
     * 210 "Invalid POST form", cause "http: POST too large" */
    int too_large = code == 210 && e.cause && strstr(e.cause, "too large");
    proto_v2_error_free(&e);
    if (too_large) return EFBIG;
    if (code) return fs_errno_from_code(code);
  }
  if (status == 401 || status == 403) return EACCES;
  if (status == 413) return EFBIG;
  if (status == 414) return ENAMETOOLONG; /* the key, escaped in the URL, is past the server's limit */
  if (status == 404) return ENOENT;
  return EIO;
}
