/* record: the msgpack request record that every change (and quorum read) is proposed as.
 * The same bytes go into the durable log, to peers (later) and to the apply step. */
#ifndef QUORUM_PROTO_RECORD_H
#define QUORUM_PROTO_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_RECORD_VERSION 1

typedef enum proto_op {
  PROTO_OP_SET = 1,   /* PUT without conditions */
  PROTO_OP_CREATE,    /* PUT prevExist=false */
  PROTO_OP_UPDATE,    /* PUT prevExist=true */
  PROTO_OP_CAS,       /* PUT with prevValue and/or prevIndex */
  PROTO_OP_DELETE,    /* DELETE (dir / recursive flags) */
  PROTO_OP_CAD,       /* DELETE with prevValue and/or prevIndex */
  PROTO_OP_POST,      /* POST: create an in-order child */
  PROTO_OP_SYNC,      /* expire every key due at `time` */
  PROTO_OP_QGET,      /* quorum read, answered at its log position */
  PROTO_OP_MEMBER,    /* a member publishes its attributes (value: encoded node_member) */
  PROTO_OP_AUTH,      /* a /v2/auth change (path: /enable, /users/NAME or /roles/NAME;
                         value: the request as auth_user_request / auth_role_request make it) */
  PROTO_OP_BOOTSTRAP, /* a new cluster's first leader: the store indexes etcd's bootstrap takes
                         (prev_index: how many; taken only while the store index is 0) */
  PROTO_OP_MAX
} proto_op;

enum {
  PROTO_REC_DIR = 1u << 0,        /* dir=true */
  PROTO_REC_RECURSIVE = 1u << 1,  /* recursive=true */
  PROTO_REC_REFRESH = 1u << 2,    /* refresh=true: keep the value, set the TTL */
  PROTO_REC_TTL = 1u << 3,        /* `expiration` is set (a TTL was given) */
  PROTO_REC_PREV_VALUE = 1u << 4, /* `prev_value` is a condition */
  PROTO_REC_SORTED = 1u << 5,     /* sorted=true (QGET) */
  PROTO_REC_PREV_EXIST = 1u << 6, /* prevExist=true was given (update / cas flavour) */
  PROTO_REC_AUTH_DELETE = 1u << 7, /* PROTO_OP_AUTH: DELETE (a user, a role; /enable: off) */
};

/* A decoded or to-be-encoded record. Strings are not NUL-terminated and are borrowed: from the
 * caller when encoding, from the decoded buffer when decoding. */
typedef struct proto_record {
  uint8_t op;            /* proto_op */
  uint32_t flags;        /* PROTO_REC_* */
  uint64_t id;           /* request id, unique within the proposing member */
  uint64_t member;       /* the proposing member's id (answers go to the request there) */
  int64_t expiration;    /* absolute, ns since the epoch, when PROTO_REC_TTL */
  int64_t time;          /* proposer's wall clock, ns since the epoch */
  uint64_t prev_index;   /* 0 = no condition */
  const char *path;      /* cleaned key, starts with '/' */
  size_t path_len;
  const char *value;
  size_t value_len;
  const char *prev_value;
  size_t prev_value_len;
} proto_record;

/* Appends the encoding of rec to *buf (realloc'd; *len and *cap updated). Returns 0 or -ENOMEM. */
int proto_record_encode(const proto_record *rec, char **buf, size_t *len, size_t *cap);

/* Decodes data[0..len) into *rec; rec's strings point into data, which must outlive rec.
 * Returns 0, or -EINVAL for a malformed or unknown-version record. */
int proto_record_decode(const char *data, size_t len, proto_record *rec);

#endif
