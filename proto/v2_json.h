/* v2_json: etcd v2 JSON bodies (nodes, events, errors) written with yajl, and the RFC 3339
 * and UTF-8 details that make them byte-compatible with what etcd's clients parse. */
#ifndef QUORUM_PROTO_V2_JSON_H
#define QUORUM_PROTO_V2_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_gen.h>

/* One node as the v2 API shows it. Strings are borrowed and not NUL-terminated. */
typedef struct proto_node {
  const char *key;          /* NULL for the root */
  size_t key_len;
  int dir;
  const char *value;        /* files only; shown even when empty */
  size_t value_len;
  int64_t expiration;       /* ns since the epoch; 0 = permanent */
  uint64_t created_index;
  uint64_t modified_index;
  int no_value;             /* delete / expire events: node without "value" */
  int omit_ttl;             /* show expiration but no ttl (expire events' prevNode) */
  struct proto_node *nodes; /* children, when listed */
  size_t n_nodes;
} proto_node;

/* Writes node n as a JSON object. now_ns is the clock used for "ttl". */
void proto_v2_gen_node(yajl_gen g, const proto_node *n, int64_t now_ns);

/* The same in two halves, for writers that emit "nodes" themselves in between: open writes
 * "{" and the fields before "nodes", close the indexes and "}". */
void proto_v2_gen_node_open(yajl_gen g, const proto_node *n, int64_t now_ns);
void proto_v2_gen_node_close(yajl_gen g, const proto_node *n);

/* The length of the valid UTF-8 sequence at S (at most N bytes; it stops at the first byte
 * that does not continue it, so a NUL-terminated S may be given any N >= 4), 0 when S does
 * not start one: overlong forms, surrogates and code points above U+10FFFF are invalid, as in
 * Go's utf8.DecodeRune. */
size_t proto_v2_utf8_seq(const unsigned char *s, size_t n);
/* 1 when the N bytes at S are all valid UTF-8. */
int proto_v2_utf8_valid(const char *s, size_t n);

/* S[0..n) quoted as Go's encoding/json quotes a string in etcd's answers (HTML escaping on):
 * control bytes other than \t \n \r, "<", ">" and "&" as \u00xx (lower-case hex), U+2028
 * and U+2029 escaped, each byte that is not UTF-8 as \ufffd. Writes into DST (room for
 * 6 * n + 2 bytes; not NUL-terminated) and returns the length. */
size_t proto_v2_go_quote(const char *s, size_t n, char *dst);

/* Writes a string exactly as Go's encoding/json writes it in etcd's answers: invalid UTF-8 as
 * \ufffd; "<", ">", "&", U+2028, U+2029 and control bytes other than \t \n \r as \u escapes. */
void proto_v2_gen_str(yajl_gen g, const char *s, size_t n);

/* Writes a NUL-terminated string. */
void proto_v2_gen_cstr(yajl_gen g, const char *s);
/* A comma-separated list ("http://a:1,http://b:2") as a JSON array of strings, empty items
 * left out. */
void proto_v2_gen_csv(yajl_gen g, const char *csv);

/* Formats ns since the epoch as RFC 3339 in UTC with trailing zeros of the fraction trimmed
 * (Go's time.RFC3339Nano). out needs 40 bytes. Returns the length. */
size_t proto_v2_rfc3339(int64_t ns, char *out);

/* ttl as etcd reports it: remaining whole seconds rounded up (0 means omit). */
int64_t proto_v2_ttl(int64_t expiration_ns, int64_t now_ns);

/* A new generator for a response body (no beautify, no validation). */
yajl_gen proto_v2_gen_new(void);

/* Writes {"errorCode":code,"message":msg,"cause":cause,"index":index} into g. */
void proto_v2_gen_error(yajl_gen g, int code, const char *cause, size_t cause_len, uint64_t index);
/* {"message":msg}: etcd's answer for errors outside the keys API (auth, members, proxy). */
void proto_v2_gen_message(yajl_gen g, const char *msg);

/* The fixed message of a v2 error code ("Key not found" for 100). */
const char *proto_v2_error_message(int code);

/* The HTTP status etcd answers with for a v2 error code. */
int proto_v2_error_status(int code);

#define PROTO_V2_GEN_KEY(g, lit) yajl_gen_string((g), (const unsigned char *)(lit), sizeof(lit) - 1)

#endif
