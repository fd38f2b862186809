/* fs_store: the key operations of the filesystem over the v2 client, each returning 0 or an
 * errno, with the answer's node in a plain struct. */
#ifndef QUORUM_FS_STORE_H
#define QUORUM_FS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "fs/fs.h"

typedef struct fs_kv {
  char *key;
  int dir;
  char *value;          /* files; "" otherwise */
  size_t len;
  uint64_t created_index, modified_index;
  char *expiration;     /* RFC 3339, NULL without a TTL */
  int64_t ttl;          /* whole seconds left as the server said (0 without a TTL) */
  double expires_at;    /* CLOCK_REALTIME seconds, 0 without a TTL */
  /* a directory listing: the children's base names (sorted by the server) and kinds */
  char **names;
  int *names_dir;
  size_t n_names;
  uint64_t etcd_index;  /* X-Etcd-Index of the answer */
} fs_kv;

void fs_kv_free(fs_kv *kv);

/* One request on KEY: QUERY ("a=b&c=d", already escaped, or NULL) goes in the URL and FORM (or
 * NULL) is the x-www-form-urlencoded body. On success *out (when not NULL) holds the node of
 * the answer. Transport failures and the op deadline give EIO. */
int fs_store_req(fs *f, const char *method, const char *key, const char *query, const char *form,
                 fs_kv *out);

/* fs_store_req, and *maybe_applied (when not NULL) tells whether the request went to another
 * endpoint after one that may have received it (a timeout after connecting, a cut connection,
 * a 5xx answer): a write may then have been applied by that first attempt too. */
int fs_store_req_retried(fs *f, const char *method, const char *key, const char *query,
                         const char *form, fs_kv *out, int *maybe_applied);

/* PUT of VALUE (VLEN bytes) to KEY with FORM, whose prevIndex condition (101) may fail because
 * of the request's own earlier attempt: a timeout on one member, applied there all the same,
 * then the same write on the next. When that can be and the key holds VALUE now (a quorum
 * read), the write is done: 0, with the key's node in *out. Else as fs_store_req. */
int fs_store_put_cas(fs *f, const char *key, const char *form, const char *value, size_t vlen,
                     fs_kv *out);

/* DELETE of KEY with QUERY (or NULL). A "not found" after a try that may have reached its member
 * (its answer lost) is that try's delete: 0, with *out empty (modified_index 0: not known). */
int fs_store_delete(fs *f, const char *key, const char *query, fs_kv *out);

/* GET (sorted=true, so listings come in key order). */
int fs_store_get(fs *f, const char *key, fs_kv *out);

/* A form / query under construction: fs_form_add(&b, "prevIndex", "12"). */
void fs_form_add(proto_v2_buf *b, const char *name, const char *value);
void fs_form_add_value(proto_v2_buf *b, const char *value, size_t len);
void fs_form_add_u64(proto_v2_buf *b, const char *name, uint64_t v);

/* The ttl to send to keep a TTL that expires at EXPIRES_AT (realtime): at least 1 s. */
int64_t fs_ttl_left(double expires_at);

/* An RFC 3339 expiration (v2's) as CLOCK_REALTIME seconds (now + TTL when unparsable; 0 when
 * there is none). */
double fs_expiration_time(const char *expiration, int64_t ttl);

/* Seconds of CLOCK_REALTIME. */
double fs_now(void);

#endif
