/* auth_i: the auth state's private structures, shared by auth_db.c (state, changes, answers),
 * auth_json.c (lists, JSON in and out) and auth_check.c (credentials and access). */
#ifndef QUORUM_DAEMON_AUTH_I_H
#define QUORUM_DAEMON_AUTH_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <yajl/yajl_gen.h>

#include "daemon/auth.h"

/* A list of names or key patterns; null: JSON null (Go's nil slice), which etcd's answers
 * show as such until a change rewrites the list. */
typedef struct auth_list {
  char **v;
  size_t n;
  bool null;
} auth_list;

typedef struct auth_user { /* (name first: the sorted arrays are searched by it) */
  char *name;
  char *hash;           /* auth_password.c's text */
  auth_list roles;      /* as stored (the root user's "root" role is added when read) */
  unsigned char seen[32]; /* HMAC of the last password found right, when has_seen */
  bool has_seen;
} auth_user;

typedef struct auth_role { /* (name first, likewise) */
  char *name;
  auth_list read, write;
} auth_role;

struct auth_db {
  store *st;
  pthread_rwlock_t lock; /* users and roles: written by the apply thread, read by checks */
  atomic_bool enabled;
  atomic_bool restoring; /* a snapshot is being installed: checks wait for the lock */
  bool made_dirs;        /* etcd's /2 directories and /2/enabled exist (auth_db_apply) */
  auth_user *users; /* sorted by name */
  size_t n_users, cap_users;
  auth_role *roles; /* sorted by name; never "root" (built in) */
  size_t n_roles, cap_roles;
  unsigned char seen_key[32]; /* key of the `seen` HMACs (random, this process only) */
};

#define AUTH_ROOT "root"
#define AUTH_GUEST "guest"

/* Lookups (caller holds lock). The root role is built in: auth_role_find returns a static. */
auth_user *auth_user_find(auth_db *db, const char *name, size_t len);
const auth_role *auth_role_find(auth_db *db, const char *name, size_t len);
/* Whether the user's roles (with "root" for the root user) name role. */
bool auth_user_has_role(const auth_user *u, const char *role);

/* auth_json.c: lists (add/copy abort when out of memory; free leaves a null list). */
void auth_list_free(auth_list *l);
void auth_list_add(auth_list *l, const char *s);
ssize_t auth_list_find(const auth_list *l, const char *s);
void auth_list_remove_at(auth_list *l, size_t i); /* (the last one takes its place) */
void auth_list_sort(auth_list *l);
void auth_list_copy(auth_list *dst, const auth_list *src);
bool auth_list_equal(const auth_list *a, const auth_list *b);

/* auth_json.c: PUT bodies of /v2/auth/users/NAME and /v2/auth/roles/NAME as Go decodes them
 * (absent and null lists stay null). parse: 0, or -1 when the body is not such JSON. */
typedef struct auth_user_req {
  char *user, *password;
  auth_list roles, grant, revoke;
} auth_user_req;

typedef struct auth_role_req {
  char *role;
  auth_list read, write;
  bool has_grant, has_revoke;
  auth_list grant_read, grant_write, revoke_read, revoke_write;
} auth_role_req;
int auth_user_req_parse(const char *body, size_t len, auth_user_req *u);
int auth_role_req_parse(const char *body, size_t len, auth_role_req *r);
void auth_user_req_free(auth_user_req *u);
void auth_role_req_free(auth_role_req *r);

/* auth_json.c: the objects of answers and records. A user as stored (hash: the password's)
 * or as answered to a PUT (hash NULL); a list null as JSON null. auth_gen_take takes g's
 * output (with a newline when nl, as Go's json.Encoder ends a value) and frees g. */
void auth_gen_list(yajl_gen g, const auth_list *l);
void auth_gen_perms(yajl_gen g, const auth_list *read, const auth_list *write);
void auth_gen_role(yajl_gen g, const auth_role *r);
void auth_gen_user(yajl_gen g, const char *name, const char *hash, const auth_list *roles);
void auth_gen_take(yajl_gen g, char **body, size_t *len, bool nl);

#endif
