/* go_json: Go's encoding/json syntax check with Go's error texts (go_json.c). */
#ifndef QUORUM_PROTO_GO_JSON_H
#define QUORUM_PROTO_GO_JSON_H

#include <stddef.h>
#include <yajl/yajl_tree.h>

/* 0 when s[0..n) is one JSON value (and whitespace), else -1 with Go's error text in err
 * (json.Unmarshal's: the first syntax error of the whole input). */
int proto_go_json_check(const char *s, size_t n, char *err, size_t errlen);

/* The member of a JSON object that Go's decoder stores into the struct field `name`: keys
 * match it in any case, and a later one overwrites an earlier one. NULL when none does (or
 * obj is not an object). */
yajl_val proto_go_json_field(yajl_val obj, const char *name);

#endif
