/* auth: etcd's v2 authentication and access control (/v2/auth): users with passwords and
 * roles, roles with read and write key patterns, the built-in root and guest roles, and the
 * switch that turns checking on.
 *
 * The state is part of the replicated state machine: every change is a PROTO_OP_AUTH record
 * that each member applies (auth_db_apply, on the apply thread) to an in-memory copy and to
 * 'A' records in the tree store's database (so snapshots carry it). Answers to the HTTP API
 * are produced at apply time, so a conflicting pair of changes is decided in log order.
 * Checks (any HTTP thread) read the in-memory copy; with checking off they cost one atomic
 * load. Passwords are kept as salted PBKDF2-HMAC-SHA256 hashes; a password found right is
 * remembered (as an HMAC under a per-process key) so that later requests skip the slow hash. */
#ifndef QUORUM_DAEMON_AUTH_H
#define QUORUM_DAEMON_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/store.h"
#include "proto/record.h"

typedef struct auth_db auth_db;

/* Loads the state from s (empty when there is none). Returns 0 or -ENOMEM/-EIO. */
int auth_db_open(auth_db **out, store *s);
void auth_db_close(auth_db *db);
/* Reloads the state from the store (after a snapshot replaced it). Apply thread. */
int auth_db_reload(auth_db *db);
/* Around a snapshot's install: begin holds every check (checks wait, as if checking were on)
 * until end has reloaded the state from the replaced store, so that no request is let
 * through by the old state while the new keys are there. Apply thread. */
void auth_db_restore_begin(auth_db *db);
void auth_db_restore_end(auth_db *db);

/* The writes etcd's v2 store makes for an auth change, as it keeps this state as values under
 * /2/: those done take an etcd index each (store_take_indexes takes them) and count as
 * successes in /v2/stats/store, those the store refuses only count as failures. */
typedef struct auth_writes {
  unsigned creates, updates, deletes; /* done */
  unsigned create_fails, delete_fails; /* refused: the user or role exists, or does not */
} auth_writes;

static inline unsigned auth_writes_indexes(const auth_writes *w) {
  return w->creates + w->updates + w->deletes;
}

/* Applies a PROTO_OP_AUTH record: changes the state (its store records go into the store's
 * current group) and fills res with the HTTP answer (status, JSON body; error_code 0), and *w
 * with etcd's writes for it: a user or role made is a create, changed an update, removed a
 * delete; enabling creates the guest role when there is none and updates the switch;
 * disabling updates it; and the first time the auth state is written etcd creates /2,
 * /2/users, /2/roles and /2/enabled (a DELETE of a missing user or role gets that far). */
void auth_db_apply(auth_db *db, const proto_record *rec, store_result *res, auth_writes *w);

bool auth_db_enabled(const auth_db *db);

/* Who a request is: its Authorization header (NULL/0 when absent) and, on a TLS connection
 * with --client-cert-auth, its client certificate's common name (NULL when none). */
typedef struct auth_verify auth_verify;
typedef struct auth_who {
  const char *authorization;
  size_t authorization_len;
  const char *cert_cn;
  const auth_verify *verified; /* this request's password, already checked (or NULL) */
} auth_who;

/* Checking a password off the HTTP loop (PBKDF2 takes milliseconds, and a client sending
 * wrong passwords would otherwise stall every request of its loop): auth_db_verify_begin
 * returns a job when who's Basic credentials name a user and the password has not been found
 * right before (NULL when there is nothing slow to do); auth_verify_run hashes (any thread,
 * no lock); auth_db_verify_end remembers a password found right. A request whose who has
 * `verified` set to the finished job is then judged by its verdict, as long as the user's
 * password has not changed since (otherwise it is checked again). */
auth_verify *auth_db_verify_begin(auth_db *db, const auth_who *who);
void auth_verify_run(auth_verify *v);
void auth_db_verify_end(auth_db *db, const auth_verify *v);
void auth_verify_free(void *v);

/* Whether the request may read (write = false) or write key (the path after /v2/keys, as
 * the client sent it), recursively or not, as etcd decides; true when checking is off. */
bool auth_db_key_access(auth_db *db, const auth_who *who, const char *key, size_t key_len,
                        bool recursive, bool write);
/* Whether the request comes from a user with the root role; true when checking is off. */
bool auth_db_root_access(auth_db *db, const auth_who *who);

/* The GET answers of /v2/auth: *body (malloc'd, JSON) and the HTTP status. */
int auth_db_get_users(auth_db *db, char **body, size_t *len);
int auth_db_get_user(auth_db *db, const char *name, char **body, size_t *len);
int auth_db_get_roles(auth_db *db, char **body, size_t *len);
int auth_db_get_role(auth_db *db, const char *name, char **body, size_t *len);

/* A PUT body of /v2/auth/users/NAME or /v2/auth/roles/NAME, checked and turned into the
 * record value to propose (the password replaced by its hash). Returns 0 with *value
 * (malloc'd), or the HTTP status with *msg (static text: the message of the error). */
int auth_user_request(const char *name, const char *body, size_t len, char **value,
                      size_t *value_len, const char **msg);
int auth_role_request(const char *name, const char *body, size_t len, char **value,
                      size_t *value_len, const char **msg);

/* auth_password.c: a new salted hash of password (malloc'd text), and a check against one. */
char *auth_password_hash(const char *password, size_t len);
bool auth_password_check(const char *hash, const char *password, size_t len);

#endif
