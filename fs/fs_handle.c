/* fs_handle: open-file buffers and the whole-value push. */
#include "fs/fs_handle.h"

#include "fs/fs_mirror.h"
#include "fs/fs_session.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs/fs_attr.h"
#include "proto/v2_json.h"

static int reserve(fs_handle *h, size_t need) {
  if (need > FS_MAX_VALUE) return EFBIG;
  if (need <= h->cap) return 0;
  size_t cap = h->cap ? h->cap : 64;
  while (cap < need) cap *= 2;
  char *p = realloc(h->buf, cap);
  if (!p) return ENOMEM;
  h->buf = p;
  h->cap = cap;
  return 0;
}

fs_handle *fs_handle_new(fs_node *node, const char *value, size_t len) {
  fs_handle *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  if (reserve(h, len + 1) != 0) {
    free(h);
    return NULL;
  }
  if (len) memcpy(h->buf, value, len);
  h->len = len;
  h->utf8_ok = len; /* a stored value came as a JSON string: UTF-8 */
  h->node = node;
  h->next = node->handles;
  node->handles = h;
  return h;
}

void fs_handle_free(fs_handle *h) {
  if (!h) return;
  fs_handle **pp = &h->node->handles;
  while (*pp && *pp != h) pp = &(*pp)->next;
  if (*pp) *pp = h->next;
  free(h->buf);
  free(h);
}

/* The N (1-3) bytes at S start a UTF-8 character that more bytes could complete. */
static int utf8_prefix(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t need = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
  if (!need || n >= need) return 0;
  if (n >= 2) {
    unsigned lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (s[1] < lo || s[1] > hi) return 0;
  }
  return n < 3 || (s[2] & 0xc0) == 0x80;
}

/* Forgets what is known of the buffer from byte POS on (back to the start of its character). */
static void utf8_unknown_from(fs_handle *h, size_t pos) {
  if (pos >= h->utf8_ok) return;
  while (pos > 0 && ((unsigned char)h->buf[pos] & 0xc0) == 0x80) pos--;
  h->utf8_ok = pos;
}

/* Extends utf8_ok over the buffer; EILSEQ when a byte there can never be UTF-8. */
static int utf8_check(fs_handle *h) {
  const unsigned char *u = (const unsigned char *)h->buf;
  size_t i = h->utf8_ok;
  while (i < h->len) {
    size_t l = proto_v2_utf8_seq(u + i, h->len - i);
    if (!l) return utf8_prefix(u + i, h->len - i) ? 0 : EILSEQ;
    i += l;
    h->utf8_ok = i;
  }
  return 0;
}

int fs_handle_write(fs_handle *h, const char *data, size_t size, off_t off) {
  if (off < 0) return EINVAL;
  size_t pos = h->append ? h->len : (size_t)off;
  int e = pos + size < pos ? EFBIG : reserve(h, pos + size + 1);
  if (e == EFBIG) { /* the file cannot be stored: its close stores nothing (not a cut value) */
    h->too_big = 1;
    h->dirty = h->written = 1;
  }
  if (e) return e;
  if (pos > h->len) memset(h->buf + h->len, 0, pos - h->len);
  memcpy(h->buf + pos, data, size);
  if (pos + size > h->len) h->len = pos + size;
  h->dirty = h->written = 1;
  utf8_unknown_from(h, pos);
  return utf8_check(h);
}

int fs_handle_truncate(fs_handle *h, uint64_t size) {
  if (size > FS_MAX_VALUE) return EFBIG; /* (the value is unchanged: nothing refused) */
  int e = reserve(h, (size_t)size + 1);
  if (e) return e;
  if (size > h->len) memset(h->buf + h->len, 0, (size_t)size - h->len);
  h->len = (size_t)size;
  h->dirty = h->written = 1;
  h->too_big = 0; /* (cut back after a write that went too far: what is left can be stored) */
  utf8_unknown_from(h, (size_t)size);
  return 0;
}

uint64_t fs_handle_size(const fs_node *node) {
  for (const fs_handle *h = node->handles; h; h = h->next)
    if (h->dirty && h->push != FS_PUSH_POST) return h->len;
  return node->size;
}

/* The dir key of FS_POST_NAME's node. */
static char *post_dir(const char *post_key) {
  const char *slash = strrchr(post_key, '/');
  size_t n = slash ? (size_t)(slash - post_key) : 0;
  return n ? strndup(post_key, n) : strdup("/");
}

/* The empty key an O_EXCL open created, removed when its first value was refused. The
 * DELETE is not taken for this mount's own: its event comes back as a remote delete would, and
 * the applier unlinks the name (the kernel's dentry, IN_DELETE) and drops the node. */
static void undo_create(fs *f, fs_handle *h) {
  char q[40];
  snprintf(q, sizeof q, "prevIndex=%llu", (unsigned long long)h->created_index);
  h->created_index = 0;
  fs_kv gone;
  int e = fs_store_req(f, "DELETE", h->node->key, q, NULL, &gone);
  if (e == 0) fs_kv_free(&gone);
  else if (e != ESTALE && e != ENOENT) /* changed or removed meanwhile: not ours to remove */
    fprintf(stderr, "quorumfs: %s: removing the key whose value was refused failed: %s\n",
            h->node->key, strerror(e));
}

void fs_handle_wait(fs *f, fs_handle *h) {
  while (h->pushing || h->node->removing) pthread_cond_wait(&f->idle, &f->lock);
}

static int push_now(fs *f, fs_handle *h);

int fs_handle_push(fs *f, fs_handle *h) {
  fs_handle_wait(f, h);
  if (!h->dirty || h->self) return 0;
  if (h->orphan) {
    h->dirty = 0;
    return 0;
  }
  h->pushing = 1;
  int e = push_now(f, h);
  h->pushing = 0;
  h->flushed = 0;
  pthread_cond_broadcast(&f->idle);
  return e;
}

void fs_handle_push_closed(fs *f, fs_node *node) {
  for (;;) { /* (the list may change while a push is on the network: scan again) */
    fs_handle *due = node->handles;
    while (due && !(due->flushed && due->dirty && !due->written && !due->self)) due = due->next;
    if (!due) return;
    if (due->pushing || node->removing) { /* its RELEASE is sending it (or an unlink is on its
                                          * way): wait once, as the RELEASE frees the handle
                                          * after it, and scan the list again */
      pthread_cond_wait(&f->idle, &f->lock);
      continue;
    }
    int e = fs_handle_push(f, due);
    due->flushed = 0; /* (pushed or dropped: due no more) */
    if (e)
      fprintf(stderr, "quorumfs: %s: storing the value of a closed file failed: %s\n", node->key,
              strerror(e));
  }
}

void fs_handle_wait_node(fs *f, fs_node *node) {
  for (;;) {
    fs_handle *busy = node->handles;
    while (busy && !busy->pushing) busy = busy->next;
    if (!busy) return;
    pthread_cond_wait(&f->idle, &f->lock); /* (busy may be freed once its push ends) */
  }
}

void fs_handle_orphan(fs_node *node) {
  for (fs_handle *h = node->handles; h; h = h->next) h->orphan = 1;
}

/* fs_handle_push's network part. */
static int push_now(fs *f, fs_handle *h) {
  /* a v2 value travels as a JSON string: any UTF-8 (NUL bytes too, as \u0000), but bytes
   * that are not UTF-8 would be read back as U+FFFD; refuse them rather than change them */
  int refused = h->too_big ? EFBIG : !proto_v2_utf8_valid(h->buf, h->len) ? EILSEQ : 0;
  if (refused) {
    h->dirty = 0;
    if (h->created_index && h->push == FS_PUSH_CAS && h->base_index == h->created_index)
      undo_create(f, h);
    return refused;
  }
  fs_node *node = h->node;
  proto_v2_buf form = {0};
  fs_form_add_value(&form, h->buf, h->len);
  if (h->expires_at > 0 && !f->write_clears_ttl)
    fs_form_add_u64(&form, "ttl", (uint64_t)fs_ttl_left(h->expires_at));
  size_t base_len = form.len;
  fs_kv kv;
  int e;
  if (h->push == FS_PUSH_POST) {
    char *dir = form.oom ? NULL : post_dir(node->key);
    e = dir ? fs_store_req(f, "POST", dir, NULL, form.s, &kv) : ENOMEM;
    free(dir);
    if (e == 0) {
      fs_session_writes_answered(f); /* (the watch must not wait for this request in turn) */
      fs_mirror_wait_listed(f, kv.key, 1000); /* ls after close shows it */
      fs_kv_free(&kv);
    }
    h->len = 0;
    h->dirty = 0;
    proto_v2_buf_free(&form);
    return e;
  }
  if (f->lww && h->push != FS_PUSH_CREATE) {
    /* last writer wins: no condition (a key deleted meanwhile is written again) */
  } else if (h->push == FS_PUSH_CAS) {
    fs_form_add_u64(&form, "prevIndex", h->base_index);
  } else {
    fs_form_add(&form, "prevExist", h->push == FS_PUSH_CREATE ? "false" : "true");
  }
  if (form.oom) {
    proto_v2_buf_free(&form);
    return ENOMEM;
  }
  /* (the node may be renamed while the PUT is on its way: the key sent is kept) */
  char *key = strdup(node->key);
  if (!key) {
    proto_v2_buf_free(&form);
    return ENOMEM;
  }
  e = h->push == FS_PUSH_CAS ? fs_store_put_cas(f, key, form.s, h->buf, h->len, &kv)
                             : fs_store_req(f, "PUT", key, NULL, form.s, &kv);
  if (e == EEXIST && h->push == FS_PUSH_CREATE) {
    /* created by someone else since: our close replaces it, as a local create would */
    form.len = base_len;
    form.s[base_len] = 0;
    fs_form_add(&form, "prevExist", "true");
    e = form.oom ? ENOMEM : fs_store_req(f, "PUT", key, NULL, form.s, &kv);
  }
  proto_v2_buf_free(&form);
  int moved = strcmp(key, node->key) != 0;
  free(key);
  if (e == ENOENT && h->push != FS_PUSH_CREATE) e = ESTALE; /* deleted while open */
  if (e) {
    h->dirty = 0;
    if (e == ESTALE)
      fprintf(stderr, "quorumfs: %s changed in the store since it was opened (ESTALE)\n", node->key);
    /* too large once escaped in the form: refused as a value past FS_MAX_VALUE is */
    if (e == EFBIG && h->created_index && h->push == FS_PUSH_CAS &&
        h->base_index == h->created_index)
      undo_create(f, h);
    return e;
  }
  /* a node renamed meanwhile is the new name's: the answer is the old name's, which the
   * watch brings into the mirror */
  if (!moved) fs_attr_written(f, node, &kv);
  h->base_index = kv.modified_index;
  h->created_index = 0;
  h->push = FS_PUSH_CAS;
  h->dirty = 0;
  fs_kv_free(&kv);
  return 0;
}
