/* auth_check: who a request is (HTTP Basic credentials, or a client certificate's common
 * name) and what it may do, as etcd's v2 API decides: a key by the key patterns of the
 * user's roles (a pattern ending in '*' is a prefix, any other the exact key; a recursive
 * request needs a prefix pattern), the guest role for a request without credentials, the root role for /v2/auth
 * and membership changes. */
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/auth_i.h"

/* Go's simpleMatch and prefixMatch. An empty pattern matches nothing. */
static bool pattern_match(const char *pat, const char *key, size_t klen, bool prefix_only) {
  size_t n = strlen(pat);
  if (!n) return false;
  if (pat[n - 1] == '*') return klen >= n - 1 && !memcmp(key, pat, n - 1);
  return !prefix_only && klen == n && !memcmp(key, pat, n);
}

static bool role_allows(const auth_role *r, const char *key, size_t klen, bool recursive,
                        bool write) {
  if (!strcmp(r->name, AUTH_ROOT)) return true;
  const auth_list *l = write ? &r->write : &r->read;
  for (size_t i = 0; i < l->n; i++)
    if (pattern_match(l->v[i], key, klen, recursive)) return true;
  return false;
}

/* "Basic base64(user:password)" → user and password in buf (NUL-separated). */
static bool basic_credentials(const auth_who *who, char *buf, size_t cap, const char **user,
                              const char **pw, size_t *pw_len) {
  const char *h = who->authorization;
  size_t n = who->authorization_len;
  if (n < 6 || strncasecmp(h, "Basic ", 6)) return false;
  h += 6;
  n -= 6;
  if (!n || n % 4 || n / 4 * 3 + 1 > cap) return false;
  int got = EVP_DecodeBlock((unsigned char *)buf, (const unsigned char *)h, (int)n);
  if (got < 0) return false;
  size_t len = (size_t)got;
  for (size_t i = n; i > n - 2 && h[i - 1] == '='; i--) len--; /* padding decodes as zeros */
  buf[len] = 0;
  char *colon = memchr(buf, ':', len);
  if (!colon) return false;
  *colon = 0;
  *user = buf;
  *pw = colon + 1;
  *pw_len = len - (size_t)(colon + 1 - buf);
  return true;
}

/* A password check done off the HTTP loop (auth.h). */
struct auth_verify {
  char *name, *hash, *pw; /* the user, the stored hash checked against, the password */
  size_t pw_len;
  unsigned char mac[32]; /* the HMAC that remembers the password, when mac_ok */
  bool mac_ok, done, ok;
};

/* The HMAC that remembers pw as right for the stored hash. */
static bool seen_mac(const auth_db *db, const char *hash, const char *pw, size_t pw_len,
                     unsigned char mac[32]) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned out_len = 0;
  size_t hl = strlen(hash) + 1, ml = hl + pw_len;
  unsigned char *msg = malloc(ml);
  if (!msg) return false;
  memcpy(msg, hash, hl);
  memcpy(msg + hl, pw, pw_len);
  bool ok = HMAC(EVP_sha256(), db->seen_key, sizeof db->seen_key, msg, ml, out, &out_len) &&
            out_len == 32;
  OPENSSL_cleanse(msg, ml);
  free(msg);
  if (ok) memcpy(mac, out, 32);
  return ok;
}

/* Remembers a password found right for name, unless its hash has changed meanwhile. */
static void remember(auth_db *db, const char *name, const char *hash, const unsigned char mac[32]) {
  pthread_rwlock_wrlock(&db->lock);
  auth_user *u = auth_user_find(db, name, strlen(name));
  if (u && !strcmp(u->hash, hash)) {
    memcpy(u->seen, mac, sizeof u->seen);
    u->has_seen = true;
  }
  pthread_rwlock_unlock(&db->lock);
}

/* A request's Basic credentials, decoded, and the HMAC that would remember its password. */
typedef struct creds {
  char buf[1024]; /* "user\0password" */
  const char *name, *pw;
  size_t pw_len;
  unsigned char mac[32];
  bool mac_ok;
} creds;

/* The user named by Basic credentials (read lock held on return when found, with c->mac
 * set), or NULL (lock not held). */
static auth_user *find_user(auth_db *db, const auth_who *who, creds *c) {
  if (!basic_credentials(who, c->buf, sizeof c->buf, &c->name, &c->pw, &c->pw_len)) return NULL;
  pthread_rwlock_rdlock(&db->lock);
  auth_user *u = auth_user_find(db, c->name, strlen(c->name));
  if (!u) {
    pthread_rwlock_unlock(&db->lock);
    return NULL;
  }
  c->mac_ok = seen_mac(db, u->hash, c->pw, c->pw_len, c->mac);
  return u;
}

static bool remembered(const auth_user *u, const creds *c) {
  return c->mac_ok && u->has_seen && !CRYPTO_memcmp(c->mac, u->seen, sizeof u->seen);
}

auth_verify *auth_db_verify_begin(auth_db *db, const auth_who *who) {
  if (!who->authorization_len || !auth_db_enabled(db)) return NULL;
  creds c = {.mac_ok = false};
  auth_user *u = find_user(db, who, &c);
  if (!u) return NULL;
  auth_verify *v = NULL;
  if (!remembered(u, &c) && (v = calloc(1, sizeof *v))) {
    v->name = strdup(c.name);
    v->hash = strdup(u->hash);
    v->pw = malloc(c.pw_len + 1);
    if (!v->name || !v->hash || !v->pw) {
      auth_verify_free(v);
      v = NULL;
    } else {
      memcpy(v->pw, c.pw, c.pw_len);
      v->pw_len = c.pw_len;
      memcpy(v->mac, c.mac, sizeof c.mac);
      v->mac_ok = c.mac_ok;
    }
  }
  pthread_rwlock_unlock(&db->lock);
  OPENSSL_cleanse(c.buf, sizeof c.buf);
  return v;
}

void auth_verify_run(auth_verify *v) {
  v->ok = auth_password_check(v->hash, v->pw, v->pw_len);
  v->done = true;
}

void auth_db_verify_end(auth_db *db, const auth_verify *v) {
  if (v->done && v->ok && v->mac_ok) remember(db, v->name, v->hash, v->mac);
}

void auth_verify_free(void *p) {
  auth_verify *v = p;
  if (!v) return;
  if (v->pw) OPENSSL_cleanse(v->pw, v->pw_len);
  free(v->pw);
  free(v->name);
  free(v->hash);
  free(v);
}

/* The user named by the request's credentials, with its password checked: found and right
 * (the caller then holds the read lock, which it releases), or NULL (lock not held). */
static auth_user *authenticate(auth_db *db, const auth_who *who, bool *tried) {
  *tried = true;
  if (!who->authorization_len) {
    if (!who->cert_cn) {
      *tried = false;
      return NULL;
    }
    pthread_rwlock_rdlock(&db->lock);
    auth_user *u = auth_user_find(db, who->cert_cn, strlen(who->cert_cn));
    if (u) return u;
    pthread_rwlock_unlock(&db->lock);
    *tried = false; /* etcd: a certificate naming no user is a guest */
    return NULL;
  }
  creds c = {.mac_ok = false};
  auth_user *u = find_user(db, who, &c);
  if (!u) return NULL;
  if (remembered(u, &c)) return u;
  /* Checked already, off the loop, against the hash the user still has. */
  const auth_verify *v = who->verified;
  if (v && v->done && !strcmp(v->name, c.name) && !strcmp(v->hash, u->hash) &&
      v->pw_len == c.pw_len && !CRYPTO_memcmp(v->pw, c.pw, c.pw_len)) {
    if (v->ok) return u;
    pthread_rwlock_unlock(&db->lock);
    return NULL;
  }
  char *hash = strdup(u->hash);
  pthread_rwlock_unlock(&db->lock);
  if (!hash) return NULL;
  /* The slow check runs without the lock (the apply thread is not held up by it). */
  bool ok = auth_password_check(hash, c.pw, c.pw_len);
  if (ok && c.mac_ok) remember(db, c.name, hash, c.mac);
  free(hash);
  u = NULL;
  if (ok) {
    pthread_rwlock_rdlock(&db->lock);
    if (!(u = auth_user_find(db, c.name, strlen(c.name)))) pthread_rwlock_unlock(&db->lock);
  }
  OPENSSL_cleanse(c.buf, sizeof c.buf);
  return u;
}

/* Whether checking is on, once any snapshot being installed is in place. */
static bool checking(auth_db *db) {
  if (!auth_db_enabled(db)) return false;
  if (atomic_load(&db->restoring)) { /* wait for auth_db_restore_end */
    pthread_rwlock_rdlock(&db->lock);
    pthread_rwlock_unlock(&db->lock);
  }
  return atomic_load(&db->enabled);
}

bool auth_db_key_access(auth_db *db, const auth_who *who, const char *key, size_t key_len,
                        bool recursive, bool write) {
  if (!checking(db)) return true;
  bool tried;
  auth_user *u = authenticate(db, who, &tried);
  bool ok = false;
  if (!u) {
    if (tried) return false;
    /* No credentials: the guest role, by the key alone (etcd checks even a recursive
     * request of a guest as a single key). */
    pthread_rwlock_rdlock(&db->lock);
    const auth_role *g = auth_role_find(db, AUTH_GUEST, 5);
    ok = g && role_allows(g, key, key_len, false, write);
    pthread_rwlock_unlock(&db->lock);
    return ok;
  }
  if (auth_user_has_role(u, AUTH_ROOT)) ok = true;
  for (size_t i = 0; !ok && i < u->roles.n; i++) {
    const auth_role *r = auth_role_find(db, u->roles.v[i], strlen(u->roles.v[i]));
    ok = r && role_allows(r, key, key_len, recursive, write);
  }
  pthread_rwlock_unlock(&db->lock);
  return ok;
}

bool auth_db_root_access(auth_db *db, const auth_who *who) {
  if (!checking(db)) return true;
  bool tried;
  auth_user *u = authenticate(db, who, &tried);
  if (!u) return false;
  bool ok = auth_user_has_role(u, AUTH_ROOT);
  pthread_rwlock_unlock(&db->lock);
  return ok;
}
