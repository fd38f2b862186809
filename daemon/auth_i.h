/* auth_i: the auth state's private structures, shared by auth_db.c (state, changes, answers)
 * and auth_check.c (credentials and access). */
#ifndef QUORUM_DAEMON_AUTH_I_H
#define QUORUM_DAEMON_AUTH_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

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

#endif
