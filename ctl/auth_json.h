/* auth_json: the answers of /v2/auth read the way etcd's Go client reads them with
 * encoding/json (syntax errors, case-insensitive fields, null, type errors: the same text), so
 * that `user`, `role` and `auth` print what etcdctl prints for odd answers too. */
#ifndef QUORUM_CTL_AUTH_JSON_H
#define QUORUM_CTL_AUTH_JSON_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

#include "proto/v2_client.h"

/* A json.Unmarshal call: its first type error ("json: cannot unmarshal X into Go struct field
 * S.path of type T"), which makes the whole call fail. Starts zeroed. */
typedef struct ctl_go_dec {
  int failed;
  char err[512];
} ctl_go_dec;

/* A []string; non_nil: it was given at all (nil and empty differ for reflect.DeepEqual). */
typedef struct ctl_go_strs {
  int non_nil;
  char **v;
  size_t n;
} ctl_go_strs;

typedef struct ctl_go_perms { /* client.Permissions{KV rwPermission} */
  ctl_go_strs read, write;
} ctl_go_perms;

typedef struct ctl_go_role { /* client.Role */
  char *name;
  ctl_go_perms perms;
  int has_grant, has_revoke; /* the *Permissions pointers are not nil */
  ctl_go_perms grant, revoke;
} ctl_go_role;

/* The length of the valid UTF-8 sequence at p (1-4), 0 when p does not start one. */
size_t ctl_go_utf8_seq(const unsigned char *p);

/* The body as a yajl tree, or NULL with the error json.Unmarshal would give in err. */
yajl_val ctl_go_parse_body(const proto_v2_resp *r, char *err, size_t errlen);

/* Decoders of a top-level value v into what they fill; a type error goes in d. */
void ctl_go_dec_role(ctl_go_dec *d, yajl_val v, ctl_go_role *r);
/* client.User: the user name and the strings of roles. */
void ctl_go_dec_user(ctl_go_dec *d, yajl_val v, char **user, ctl_go_strs *roles);
/* client.UserRoles: the user name and the names of the role objects in roles. */
void ctl_go_dec_user_roles(ctl_go_dec *d, yajl_val v, char **user, ctl_go_strs *names);
/* ListUsers' and ListRoles' answers: the names, appended to names. */
void ctl_go_dec_user_list(ctl_go_dec *d, yajl_val v, ctl_go_strs *names);
void ctl_go_dec_role_list(ctl_go_dec *d, yajl_val v, ctl_go_strs *names);
/* client.authError: its message. */
void ctl_go_dec_auth_error(ctl_go_dec *d, yajl_val v, char **msg);

void ctl_go_strs_free(ctl_go_strs *s);
void ctl_go_role_free(ctl_go_role *r);

/* reflect.DeepEqual of two client.Role values. */
int ctl_go_role_equal(const ctl_go_role *a, const ctl_go_role *b);

#endif
