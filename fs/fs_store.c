/* fs_store: requests on keys and the decoding of their answers. */
#include "fs/fs_store.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fs/fs_errno.h"
#include "fs/fs_session.h"

double fs_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int64_t fs_ttl_left(double expires_at) {
  double left = ceil(expires_at - fs_now());
  return left < 1 ? 1 : (int64_t)left;
}

/* "2006-01-02T15:04:05.999999999Z" (what v2 sends) as realtime seconds; 0 when unparsable. */
static double parse_rfc3339(const char *s) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  int n = 0;
  if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
             &tm.tm_min, &tm.tm_sec, &n) != 6)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double t = (double)timegm(&tm);
  const char *p = s + n;
  if (*p == '.') {
    double scale = 0.1;
    for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10) t += (*p - '0') * scale;
  }
  if (*p == '+' || *p == '-') { /* an offset instead of Z */
    int hh = 0, mm = 0;
    if (sscanf(p + 1, "%2d:%2d", &hh, &mm) == 2) t += (*p == '+' ? -1 : 1) * (hh * 3600.0 + mm * 60.0);
  }
  return t;
}

double fs_expiration_time(const char *expiration, int64_t ttl) {
  if (!expiration || !*expiration) return 0;
  double t = parse_rfc3339(expiration);
  return t != 0 ? t : fs_now() + (double)ttl;
}

void fs_kv_free(fs_kv *kv) {
  free(kv->key);
  free(kv->value);
  free(kv->expiration);
  for (size_t i = 0; i < kv->n_names; i++) free(kv->names[i]);
  free(kv->names);
  free(kv->names_dir);
  memset(kv, 0, sizeof *kv);
}

static int kv_from(const proto_v2_knode *n, fs_kv *kv) {
  memset(kv, 0, sizeof *kv);
  kv->key = strdup(n->key ? n->key : "");
  kv->dir = n->dir;
  size_t vlen = n->value ? n->value_len : 0;
  kv->value = malloc(vlen + 1);
  if (!kv->key || !kv->value) return ENOMEM;
  if (vlen) memcpy(kv->value, n->value, vlen);
  kv->value[vlen] = 0;
  kv->len = vlen;
  kv->created_index = n->created_index;
  kv->modified_index = n->modified_index;
  if (n->expiration && *n->expiration) {
    kv->expiration = strdup(n->expiration);
    if (!kv->expiration) return ENOMEM;
    kv->ttl = n->ttl;
    kv->expires_at = fs_expiration_time(n->expiration, n->ttl);
  }
  if (n->n_nodes) {
    kv->names = calloc(n->n_nodes, sizeof *kv->names);
    kv->names_dir = calloc(n->n_nodes, sizeof *kv->names_dir);
    if (!kv->names || !kv->names_dir) return ENOMEM;
    for (size_t i = 0; i < n->n_nodes; i++) {
      const char *k = n->nodes[i].key ? n->nodes[i].key : "";
      const char *slash = strrchr(k, '/');
      kv->names[kv->n_names] = strdup(slash ? slash + 1 : k);
      if (!kv->names[kv->n_names]) return ENOMEM;
      kv->names_dir[kv->n_names++] = n->nodes[i].dir;
    }
  }
  return 0;
}

/* An attempt that failed in ERR may have reached its member: anything but a failed dial. */
static int maybe_reached(const proto_v2_errors *err) {
  for (size_t i = 0; i < err->n && i < PROTO_V2_MAX_ERRORS; i++)
    if (strncmp(err->msg[i], "dial tcp", 8) != 0) return 1;
  return 0;
}

int fs_store_req(fs *f, const char *method, const char *key, const char *query, const char *form,
                 fs_kv *out) {
  return fs_store_req_retried(f, method, key, query, form, out, NULL);
}

int fs_store_put_cas(fs *f, const char *key, const char *form, const char *value, size_t vlen,
                     fs_kv *out) {
  int twice = 0;
  int e = fs_store_req_retried(f, "PUT", key, NULL, form, out, &twice);
  if (e != ESTALE || !twice) return e;
  fs_kv cur;
  int g = fs_store_req(f, "GET", key, "quorum=true", NULL, &cur);
  if (g == 0 && !cur.dir && cur.len == vlen && memcmp(cur.value, value, vlen) == 0) {
    fprintf(stderr, "quorumfs: PUT %s: an attempt that timed out was applied: the condition "
                    "failed on this write itself, whose value the key holds\n", key);
    *out = cur;
    return 0;
  }
  if (g == 0) fs_kv_free(&cur);
  return e;
}

int fs_store_delete(fs *f, const char *key, const char *query, fs_kv *out) {
  int twice = 0;
  int e = fs_store_req_retried(f, "DELETE", key, query, NULL, out, &twice);
  if (e == ENOENT && twice) {
    fprintf(stderr, "quorumfs: DELETE %s: an attempt that timed out was applied: the key was "
                    "gone for this delete itself\n", key);
    memset(out, 0, sizeof *out);
    return 0;
  }
  return e;
}

int fs_store_req_retried(fs *f, const char *method, const char *key, const char *query,
                         const char *form, fs_kv *out, int *maybe_applied) {
  if (out) memset(out, 0, sizeof *out);
  if (maybe_applied) *maybe_applied = 0;
  proto_v2_buf path = {0};
  proto_v2_keys_path(&path, key);
  if (query && *query) {
    proto_v2_buf_adds(&path, "?");
    proto_v2_buf_adds(&path, query);
  }
  if (path.oom) {
    proto_v2_buf_free(&path);
    return ENOMEM;
  }
  proto_v2_client *c = fs_client(f);
  if (!c) {
    proto_v2_buf_free(&path);
    return ENOMEM;
  }
  proto_v2_resp r;
  proto_v2_errors err;
  fs_session_net_begin(f, strcmp(method, "GET") == 0 ? NULL : key);
  /* (KEY may be a node's, which a rename frees while the lock is released: not used below) */
  int rc = proto_v2_do(c, method, path.s, form ? "application/x-www-form-urlencoded" : NULL, form, 0,
                       &r, &err);
  int intr = fs_session_net_end(f);
  if (rc != 0 && intr) {
    proto_v2_buf_free(&path);
    return EINTR; /* FUSE_INTERRUPT: the caller got a signal */
  }
  if (rc != 0) {
    f->connected = 0;
    if (err.kind == PROTO_V2_NOMEM) {
      proto_v2_buf_free(&path);
      return ENOMEM;
    }
    char *msg = proto_v2_errors_text(&err);
    size_t ml = msg ? strlen(msg) : 0;
    while (ml && msg[ml - 1] == '\n') msg[--ml] = 0;
    fprintf(stderr, "quorumfs: %s %s: %s\n", method, path.s, ml ? msg : "cluster unavailable");
    free(msg);
    proto_v2_buf_free(&path);
    return EIO;
  }
  proto_v2_buf_free(&path);
  f->connected = 1;
  if (maybe_applied) *maybe_applied = maybe_reached(&err);
  if (r.has_index) f->last_index = r.etcd_index;
  int e = 0;
  if (r.status >= 300) {
    e = fs_errno_from_answer(r.status, r.body);
  } else if (out) {
    proto_v2_event ev;
    if (proto_v2_parse_event(r.body, &ev) != 0 || !ev.node) {
      e = EIO;
    } else {
      e = kv_from(ev.node, out);
      out->etcd_index = r.etcd_index;
    }
    proto_v2_event_free(&ev);
    if (e) fs_kv_free(out);
  }
  proto_v2_resp_free(&r);
  return e;
}

int fs_store_get(fs *f, const char *key, fs_kv *out) {
  return fs_store_req(f, "GET", key, f->quorum_reads ? "sorted=true&quorum=true" : "sorted=true", NULL, out);
}

void fs_form_add(proto_v2_buf *b, const char *name, const char *value) {
  proto_v2_add_param(b, name, value);
}

void fs_form_add_value(proto_v2_buf *b, const char *value, size_t len) {
  proto_v2_add_param_n(b, "value", value ? value : "", value ? len : 0);
}

void fs_form_add_u64(proto_v2_buf *b, const char *name, uint64_t v) {
  char s[32];
  snprintf(s, sizeof s, "%llu", (unsigned long long)v);
  proto_v2_add_param(b, name, s);
}
