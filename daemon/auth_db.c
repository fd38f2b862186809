/* auth_db: the /v2/auth state (users, roles, the switch) in memory and in the store's 'A'
 * records; the changes as etcd's v2 auth store makes them (create, update with grant and
 * revoke, delete, enable, disable; the same statuses and messages), decided when a record is
 * applied; and the answers to GET. The JSON in and out is auth_json.c's. */
#include <errno.h>
#include <stdarg.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_gen.h>

#include "daemon/auth_i.h"
#include "daemon/store_i.h"

/* ------------------------------------------------------------------ state */

static const auth_role root_role = {
    .name = AUTH_ROOT,
    .read = {.v = (char *[]){"/*"}, .n = 1},
    .write = {.v = (char *[]){"/*"}, .n = 1},
};

/* strcmp order of name[0..len) against the NUL-terminated s. */
static int name_cmp(const char *name, size_t len, const char *s) {
  size_t sl = strlen(s);
  int c = memcmp(name, s, len < sl ? len : sl);
  return c ? c : (len > sl) - (len < sl);
}

/* Binary search of the array v (n elements of size sz, sorted by the name at its start). */
static void *find_sorted(void *v, size_t n, size_t sz, const char *name, size_t len) {
  size_t lo = 0, hi = n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    char *e = (char *)v + mid * sz;
    int c = name_cmp(name, len, *(char **)e);
    if (!c) return e;
    if (c < 0) hi = mid;
    else lo = mid + 1;
  }
  return NULL;
}

auth_user *auth_user_find(auth_db *db, const char *name, size_t len) {
  return find_sorted(db->users, db->n_users, sizeof *db->users, name, len);
}

const auth_role *auth_role_find(auth_db *db, const char *name, size_t len) {
  if (len == 4 && !memcmp(name, AUTH_ROOT, 4)) return &root_role;
  return find_sorted(db->roles, db->n_roles, sizeof *db->roles, name, len);
}

bool auth_user_has_role(const auth_user *u, const char *role) {
  return auth_list_find(&u->roles, role) >= 0 || (!strcmp(role, AUTH_ROOT) && !strcmp(u->name, AUTH_ROOT));
}

/* The roles as etcd reads a user: the root user always has the root role (appended). */
static void user_roles_read(const auth_user *u, auth_list *out) {
  auth_list_copy(out, &u->roles);
  if (!strcmp(u->name, AUTH_ROOT) && auth_list_find(out, AUTH_ROOT) < 0) auth_list_add(out, AUTH_ROOT);
}

static void user_clear(auth_user *u) {
  free(u->name);
  free(u->hash);
  auth_list_free(&u->roles);
}

static void role_clear(auth_role *r) {
  free(r->name);
  auth_list_free(&r->read);
  auth_list_free(&r->write);
}

static void state_clear(auth_db *db) {
  for (size_t i = 0; i < db->n_users; i++) user_clear(&db->users[i]);
  for (size_t i = 0; i < db->n_roles; i++) role_clear(&db->roles[i]);
  db->n_users = db->n_roles = 0;
  atomic_store(&db->enabled, false);
  db->made_dirs = false;
}

/* Inserts u (taking its contents) in name order, replacing one of the same name. */
static void users_put(auth_db *db, auth_user *u) {
  size_t i = 0;
  while (i < db->n_users && strcmp(db->users[i].name, u->name) < 0) i++;
  if (i < db->n_users && !strcmp(db->users[i].name, u->name)) {
    user_clear(&db->users[i]);
    db->users[i] = *u;
    return;
  }
  if (db->n_users == db->cap_users) {
    size_t nc = db->cap_users ? 2 * db->cap_users : 8;
    auth_user *v = realloc(db->users, nc * sizeof *v);
    if (!v) abort();
    db->users = v;
    db->cap_users = nc;
  }
  memmove(&db->users[i + 1], &db->users[i], (db->n_users - i) * sizeof *db->users);
  db->users[i] = *u;
  db->n_users++;
}

static void roles_put(auth_db *db, auth_role *r) {
  size_t i = 0;
  while (i < db->n_roles && strcmp(db->roles[i].name, r->name) < 0) i++;
  if (i < db->n_roles && !strcmp(db->roles[i].name, r->name)) {
    role_clear(&db->roles[i]);
    db->roles[i] = *r;
    return;
  }
  if (db->n_roles == db->cap_roles) {
    size_t nc = db->cap_roles ? 2 * db->cap_roles : 8;
    auth_role *v = realloc(db->roles, nc * sizeof *v);
    if (!v) abort();
    db->roles = v;
    db->cap_roles = nc;
  }
  memmove(&db->roles[i + 1], &db->roles[i], (db->n_roles - i) * sizeof *db->roles);
  db->roles[i] = *r;
  db->n_roles++;
}

static void users_del(auth_db *db, auth_user *u) {
  size_t i = (size_t)(u - db->users);
  user_clear(u);
  memmove(&db->users[i], &db->users[i + 1], (db->n_users - i - 1) * sizeof *db->users);
  db->n_users--;
}

static void roles_del(auth_db *db, auth_role *r) {
  size_t i = (size_t)(r - db->roles);
  role_clear(r);
  memmove(&db->roles[i], &db->roles[i + 1], (db->n_roles - i - 1) * sizeof *db->roles);
  db->n_roles--;
}

/* ------------------------------------------------------------------ records */

static void rec_key(sbuf *k, char kind, const char *name) {
  k->len = 0;
  sbuf_putc(k, 'A');
  sbuf_putc(k, kind);
  sbuf_put(k, name, strlen(name));
}

static void persist_user(auth_db *db, const auth_user *u) {
  yajl_gen g = proto_v2_gen_new();
  auth_gen_user(g, u->name, u->hash, &u->roles);
  char *body;
  size_t len;
  auth_gen_take(g, &body, &len, false);
  sbuf k = {0};
  rec_key(&k, 'u', u->name);
  store_meta_put(db->st, k.p, k.len, body, len);
  sbuf_free(&k);
  free(body);
}

static void persist_role(auth_db *db, const auth_role *r) {
  yajl_gen g = proto_v2_gen_new();
  auth_gen_role(g, r);
  char *body;
  size_t len;
  auth_gen_take(g, &body, &len, false);
  sbuf k = {0};
  rec_key(&k, 'r', r->name);
  store_meta_put(db->st, k.p, k.len, body, len);
  sbuf_free(&k);
  free(body);
}

static void persist_del(auth_db *db, char kind, const char *name) {
  sbuf k = {0};
  rec_key(&k, kind, name);
  store_meta_del(db->st, k.p, k.len);
  sbuf_free(&k);
}

static void load_one(void *arg, const char *k, size_t kl, const char *v, size_t vl) {
  auth_db *db = arg;
  if (kl == 2 && k[1] == 'e') {
    atomic_store(&db->enabled, vl == 4 && !memcmp(v, "true", 4));
    db->made_dirs = true;
    return;
  }
  if (kl < 3) return;
  db->made_dirs = true; /* (a user or role of a store from before the 'e' record was made) */
  if (k[1] == 'u') {
    auth_user_req q;
    if (auth_user_req_parse(v, vl, &q)) {
      fprintf(stderr, "quorumd: ignoring a damaged auth user record\n");
      return;
    }
    auth_user u = {.name = q.user, .hash = q.password, .roles = q.roles};
    q.user = q.password = NULL;
    q.roles = (auth_list){.null = true};
    auth_user_req_free(&q);
    users_put(db, &u);
  } else if (k[1] == 'r') {
    auth_role_req q;
    if (auth_role_req_parse(v, vl, &q)) {
      fprintf(stderr, "quorumd: ignoring a damaged auth role record\n");
      return;
    }
    auth_role r = {.name = q.role, .read = q.read, .write = q.write};
    q.role = NULL;
    q.read = q.write = (auth_list){.null = true};
    auth_role_req_free(&q);
    roles_put(db, &r);
  }
}

int auth_db_reload(auth_db *db) {
  pthread_rwlock_wrlock(&db->lock);
  state_clear(db);
  store_meta_each(db->st, "A", 1, load_one, db);
  pthread_rwlock_unlock(&db->lock);
  return 0;
}

void auth_db_restore_begin(auth_db *db) {
  atomic_store(&db->restoring, true); /* checks now take the lock, and wait below */
  pthread_rwlock_wrlock(&db->lock);
}

void auth_db_restore_end(auth_db *db) {
  state_clear(db);
  store_meta_each(db->st, "A", 1, load_one, db);
  atomic_store(&db->restoring, false);
  pthread_rwlock_unlock(&db->lock);
}

int auth_db_open(auth_db **out, store *s) {
  auth_db *db = calloc(1, sizeof *db);
  if (!db) return -ENOMEM;
  db->st = s;
  /* Writers first: checks under load must not hold the apply thread off for long. */
  pthread_rwlockattr_t attr;
  pthread_rwlockattr_init(&attr);
  pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  int rc = pthread_rwlock_init(&db->lock, &attr);
  pthread_rwlockattr_destroy(&attr);
  if (rc) {
    free(db);
    return -ENOMEM;
  }
  if (RAND_bytes(db->seen_key, sizeof db->seen_key) != 1) {
    pthread_rwlock_destroy(&db->lock);
    free(db);
    return -EIO;
  }
  auth_db_reload(db);
  *out = db;
  return 0;
}

void auth_db_close(auth_db *db) {
  if (!db) return;
  state_clear(db);
  free(db->users);
  free(db->roles);
  pthread_rwlock_destroy(&db->lock);
  free(db);
}

bool auth_db_enabled(const auth_db *db) {
  auth_db *d = (auth_db *)db;
  return atomic_load_explicit(&d->enabled, memory_order_acquire) || atomic_load(&d->restoring);
}

/* ------------------------------------------------------------------ changes */

static void answer(store_result *res, int status, const char *body, size_t len) {
  res->status = status;
  res->body = malloc(len + 1);
  if (!res->body) abort();
  memcpy(res->body, body, len);
  res->body[len] = 0;
  res->body_len = len;
}

/* {"message":"auth: ..."} (no newline, as etcd writes its errors). */
__attribute__((format(printf, 3, 4))) static void answer_msg(store_result *res, int status,
                                                             const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  yajl_gen g = proto_v2_gen_new();
  proto_v2_gen_message(g, msg);
  char *body;
  size_t len;
  auth_gen_take(g, &body, &len, false);
  res->status = status;
  res->body = body;
  res->body_len = len;
}

static void answer_user(store_result *res, int status, const char *name, const auth_list *roles) {
  yajl_gen g = proto_v2_gen_new();
  auth_gen_user(g, name, NULL, roles);
  res->status = status;
  auth_gen_take(g, &res->body, &res->body_len, true);
}

static void answer_role(store_result *res, int status, const auth_role *r) {
  yajl_gen g = proto_v2_gen_new();
  auth_gen_role(g, r);
  res->status = status;
  auth_gen_take(g, &res->body, &res->body_len, true);
}

static void user_create(auth_db *db, auth_user_req *q, int status, store_result *res,
                        auth_writes *w) {
  if (!strcmp(q->user, AUTH_ROOT) && auth_list_find(&q->roles, AUTH_ROOT) < 0) auth_list_add(&q->roles, AUTH_ROOT);
  if (!*q->password) {
    answer_msg(res, 400, "auth: Cannot create user %s with an empty password", q->user);
    return;
  }
  if (auth_user_find(db, q->user, strlen(q->user))) {
    answer_msg(res, 409, "auth: User %s already exists.", q->user);
    w->create_fails++;
    return;
  }
  auth_user u = {.name = strdup(q->user), .hash = strdup(q->password)};
  if (!u.name || !u.hash) abort();
  auth_list_copy(&u.roles, &q->roles);
  persist_user(db, &u);
  users_put(db, &u);
  answer_user(res, status, q->user, &q->roles);
  w->creates++;
}

static void user_update(auth_db *db, auth_user_req *q, store_result *res, auth_writes *w) {
  auth_user *old = auth_user_find(db, q->user, strlen(q->user));
  if (!old) {
    answer_msg(res, 404, "auth: User %s does not exist.", q->user); /* (etcd's getUser) */
    return;
  }
  auth_list cur;
  user_roles_read(old, &cur);
  auth_list roles;
  auth_list_copy(&roles, &cur);
  roles.null = false;
  for (size_t i = 0; i < q->grant.n; i++) {
    if (auth_list_find(&roles, q->grant.v[i]) >= 0) {
      answer_msg(res, 409, "auth: Granting duplicate role %s for user %s", q->grant.v[i], q->user);
      goto out;
    }
    auth_list_add(&roles, q->grant.v[i]);
  }
  for (size_t i = 0; i < q->revoke.n; i++) {
    ssize_t at = auth_list_find(&roles, q->revoke.v[i]);
    if (at < 0) {
      answer_msg(res, 409, "auth: Revoking ungranted role %s for user %s", q->revoke.v[i], q->user);
      goto out;
    }
    auth_list_remove_at(&roles, (size_t)at);
  }
  auth_list_sort(&roles);
  const char *hash = *q->password ? q->password : old->hash;
  if (!strcmp(hash, old->hash) && auth_list_equal(&cur, &roles)) {
    answer_msg(res, 400, "auth: User not updated. Use grant/revoke/password to update the user.");
    goto out;
  }
  auth_user u = {.name = strdup(q->user), .hash = strdup(hash)};
  if (!u.name || !u.hash) abort();
  auth_list_copy(&u.roles, &roles);
  persist_user(db, &u);
  users_put(db, &u); /* replaces old (and forgets its remembered password) */
  answer_user(res, 200, q->user, &roles);
  w->updates++;
out:
  auth_list_free(&cur);
  auth_list_free(&roles);
}

static void user_put(auth_db *db, const char *value, size_t len, store_result *res,
                     auth_writes *w) {
  auth_user_req q;
  if (auth_user_req_parse(value, len, &q)) {
    answer_msg(res, 400, "Invalid JSON in request body.");
    return;
  }
  if (!q.grant.n && !q.revoke.n) {
    if (q.roles.n) user_create(db, &q, 200, res, w);
    else if (auth_user_find(db, q.user, strlen(q.user))) user_update(db, &q, res, w);
    else user_create(db, &q, 201, res, w);
  } else {
    user_update(db, &q, res, w);
  }
  auth_user_req_free(&q);
}

static void user_delete(auth_db *db, const char *name, store_result *res, auth_writes *w) {
  if (atomic_load(&db->enabled) && !strcmp(name, AUTH_ROOT)) {
    answer_msg(res, 403, "auth: Cannot delete root user while auth is enabled.");
    return;
  }
  auth_user *u = auth_user_find(db, name, strlen(name));
  if (!u) {
    answer_msg(res, 404, "auth: User %s does not exist", name);
    w->delete_fails++;
    return;
  }
  persist_del(db, 'u', name);
  users_del(db, u);
  answer(res, 200, "", 0);
  w->deletes++;
}

/* Go's Permissions.Grant / Revoke: a change rewrites both lists (null becomes []). */
static int perms_grant(auth_list *l, const auth_list *add, const char *what, store_result *res) {
  l->null = false;
  for (size_t i = 0; i < add->n; i++) {
    if (auth_list_find(l, add->v[i]) >= 0) {
      answer_msg(res, 409, "auth: Granting duplicate %s permission %s", what, add->v[i]);
      return -1;
    }
    auth_list_add(l, add->v[i]);
  }
  auth_list_sort(l);
  return 0;
}

static void perms_revoke(auth_list *l, const auth_list *del) {
  l->null = false;
  for (size_t i = 0; i < del->n; i++) {
    ssize_t at = auth_list_find(l, del->v[i]);
    if (at >= 0) auth_list_remove_at(l, (size_t)at); /* (an ungranted one is let go, as etcd) */
  }
  auth_list_sort(l);
}

static void role_put(auth_db *db, const char *value, size_t len, store_result *res,
                     auth_writes *w) {
  auth_role_req q;
  if (auth_role_req_parse(value, len, &q)) {
    answer_msg(res, 400, "Invalid JSON in request body.");
    return;
  }
  bool grant = q.grant_read.n || q.grant_write.n, revoke = q.revoke_read.n || q.revoke_write.n;
  if (!strcmp(q.role, AUTH_ROOT)) {
    answer_msg(res, 403, "auth: Cannot modify role %s: is root role.", q.role);
  } else if (!grant && !revoke) { /* create */
    if (auth_role_find(db, q.role, strlen(q.role))) {
      answer_msg(res, 409, "auth: Role %s already exists.", q.role);
      w->create_fails++;
    } else {
      auth_role r = {.name = strdup(q.role)};
      if (!r.name) abort();
      auth_list_copy(&r.read, &q.read);
      auth_list_copy(&r.write, &q.write);
      persist_role(db, &r);
      answer_role(res, 201, &r);
      roles_put(db, &r);
      w->creates++;
    }
  } else {
    const auth_role *old = auth_role_find(db, q.role, strlen(q.role));
    if (!old) {
      answer_msg(res, 404, "auth: Role %s does not exist.", q.role); /* (etcd's getRole) */
      goto out;
    }
    auth_role r = {.name = strdup(q.role)};
    if (!r.name) abort();
    auth_list_copy(&r.read, &old->read);
    auth_list_copy(&r.write, &old->write);
    if (q.has_grant && (perms_grant(&r.read, &q.grant_read, "read", res) ||
                        perms_grant(&r.write, &q.grant_write, "write", res))) {
      role_clear(&r);
      goto out;
    }
    if (q.has_revoke) {
      perms_revoke(&r.read, &q.revoke_read);
      perms_revoke(&r.write, &q.revoke_write);
    }
    if (auth_list_equal(&r.read, &old->read) && auth_list_equal(&r.write, &old->write)) {
      answer_msg(res, 400, "auth: Role not updated. Use grant/revoke to update the role.");
      role_clear(&r);
      goto out;
    }
    persist_role(db, &r);
    answer_role(res, 200, &r);
    roles_put(db, &r);
    w->updates++;
  }
out:
  auth_role_req_free(&q);
}

static void role_delete(auth_db *db, const char *name, store_result *res, auth_writes *w) {
  if (!strcmp(name, AUTH_ROOT)) {
    answer_msg(res, 403, "auth: Cannot modify role %s: is root role.", name);
    return;
  }
  auth_role *r = (auth_role *)auth_role_find(db, name, strlen(name));
  if (!r) {
    answer_msg(res, 404, "auth: Role %s doesn't exist.", name);
    w->delete_fails++;
    return;
  }
  persist_del(db, 'r', name);
  roles_del(db, r);
  answer(res, 200, "", 0);
  w->deletes++;
}

/* etcd's writes: the guest role created when enabling without one, the switch updated. */
static void set_enabled(auth_db *db, bool on, store_result *res, auth_writes *w) {
  if (atomic_load(&db->enabled) == on) {
    answer_msg(res, 409, "%s", on ? "auth: already enabled" : "auth: already disabled");
    return;
  }
  if (on && !auth_user_find(db, AUTH_ROOT, 4)) {
    answer_msg(res, 409, "auth: No root user available, please create one");
    return;
  }
  w->updates++;
  if (on && !auth_role_find(db, AUTH_GUEST, 5)) { /* etcd's default guest: everything */
    w->creates++;
    auth_role g = {.name = strdup(AUTH_GUEST), .read.null = true, .write.null = true};
    if (!g.name) abort();
    auth_list_add(&g.read, "/*");
    auth_list_add(&g.write, "/*");
    persist_role(db, &g);
    roles_put(db, &g);
  }
  store_meta_put(db->st, "Ae", 2, on ? "true" : "false", on ? 4 : 5);
  atomic_store_explicit(&db->enabled, on, memory_order_release);
  answer(res, 200, "", 0);
}

void auth_db_apply(auth_db *db, const proto_record *rec, store_result *res, auth_writes *w) {
  *res = (store_result){0};
  *w = (auth_writes){0};
  char *path = strndup(rec->path, rec->path_len);
  if (!path) abort();
  bool del = rec->flags & PROTO_REC_AUTH_DELETE;
  pthread_rwlock_wrlock(&db->lock);
  bool enable = !strcmp(path, "/enable");
  if (enable) {
    set_enabled(db, !del, res, w);
  } else if (!strncmp(path, "/users/", 7)) {
    if (del) user_delete(db, path + 7, res, w);
    else user_put(db, rec->value, rec->value_len, res, w);
  } else if (!strncmp(path, "/roles/", 7)) {
    if (del) role_delete(db, path + 7, res, w);
    else role_put(db, rec->value, rec->value_len, res, w);
  } else {
    answer_msg(res, 400, "Invalid path");
  }
  /* etcd's ensureAuthDirectories, before its first write (or delete) of a user or role. */
  if ((auth_writes_indexes(w) || w->delete_fails) && !db->made_dirs) {
    db->made_dirs = true;
    if (!enable) store_meta_put(db->st, "Ae", 2, "false", 5);
    w->creates += 4;
  }
  pthread_rwlock_unlock(&db->lock);
  free(path);
}

/* ------------------------------------------------------------------ reads */

static int msg_body(int status, const char *msg, char **body, size_t *len) {
  store_result r = {0};
  answer_msg(&r, status, "%s", msg);
  *body = r.body;
  *len = r.body_len;
  return status;
}

/* A user with its roles spelled out; skip_missing: leave out roles that do not exist (the
 * list does), else answer 404 for one (a single user's GET does). Returns 0 or 404. */
static int gen_user_roles(auth_db *db, yajl_gen g, const auth_user *u, bool skip_missing,
                          char *missing, size_t mlen) {
  auth_list roles;
  user_roles_read(u, &roles);
  for (size_t i = 0; i < roles.n; i++)
    if (!auth_role_find(db, roles.v[i], strlen(roles.v[i])) && !skip_missing) {
      snprintf(missing, mlen, "%s", roles.v[i]);
      auth_list_free(&roles);
      return 404;
    }
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "user");
  proto_v2_gen_cstr(g, u->name);
  bool any = false;
  for (size_t i = 0; i < roles.n; i++) {
    const auth_role *r = auth_role_find(db, roles.v[i], strlen(roles.v[i]));
    if (!r) continue;
    if (!any) {
      proto_v2_gen_cstr(g, "roles");
      yajl_gen_array_open(g);
      any = true;
    }
    auth_gen_role(g, r);
  }
  if (any) yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  auth_list_free(&roles);
  return 0;
}

int auth_db_get_users(auth_db *db, char **body, size_t *len) {
  yajl_gen g = proto_v2_gen_new();
  pthread_rwlock_rdlock(&db->lock);
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "users");
  if (!db->n_users) {
    yajl_gen_null(g);
  } else {
    yajl_gen_array_open(g);
    for (size_t i = 0; i < db->n_users; i++) gen_user_roles(db, g, &db->users[i], true, NULL, 0);
    yajl_gen_array_close(g);
  }
  yajl_gen_map_close(g);
  pthread_rwlock_unlock(&db->lock);
  auth_gen_take(g, body, len, true);
  return 200;
}

int auth_db_get_user(auth_db *db, const char *name, char **body, size_t *len) {
  int status = 200;
  yajl_gen g = proto_v2_gen_new();
  pthread_rwlock_rdlock(&db->lock);
  const auth_user *u = auth_user_find(db, name, strlen(name));
  char missing[512] = "";
  if (!u) {
    status = 404;
  } else {
    status = gen_user_roles(db, g, u, false, missing, sizeof missing) ? 404 : 200;
  }
  pthread_rwlock_unlock(&db->lock);
  if (status == 200) {
    auth_gen_take(g, body, len, true);
    return 200;
  }
  yajl_gen_free(g);
  char msg[1100];
  if (*missing) snprintf(msg, sizeof msg, "auth: Role %s does not exist.", missing);
  else snprintf(msg, sizeof msg, "auth: User %.1024s does not exist.", name);
  return msg_body(404, msg, body, len);
}

int auth_db_get_roles(auth_db *db, char **body, size_t *len) {
  yajl_gen g = proto_v2_gen_new();
  pthread_rwlock_rdlock(&db->lock);
  yajl_gen_map_open(g);
  proto_v2_gen_cstr(g, "roles");
  yajl_gen_array_open(g);
  bool root_done = false;
  for (size_t i = 0; i <= db->n_roles; i++) {
    if (!root_done && (i == db->n_roles || strcmp(AUTH_ROOT, db->roles[i].name) < 0)) {
      auth_gen_role(g, &root_role);
      root_done = true;
    }
    if (i < db->n_roles) auth_gen_role(g, &db->roles[i]);
  }
  yajl_gen_array_close(g);
  yajl_gen_map_close(g);
  pthread_rwlock_unlock(&db->lock);
  auth_gen_take(g, body, len, true);
  return 200;
}

int auth_db_get_role(auth_db *db, const char *name, char **body, size_t *len) {
  yajl_gen g = proto_v2_gen_new();
  pthread_rwlock_rdlock(&db->lock);
  const auth_role *r = auth_role_find(db, name, strlen(name));
  if (r) auth_gen_role(g, r);
  pthread_rwlock_unlock(&db->lock);
  if (r) {
    auth_gen_take(g, body, len, true);
    return 200;
  }
  yajl_gen_free(g);
  char msg[1100];
  snprintf(msg, sizeof msg, "auth: Role %.1024s does not exist.", name);
  return msg_body(404, msg, body, len);
}
