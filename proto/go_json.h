/* go_json: Go's encoding/json syntax check with Go's error texts (go_json.c). */
#ifndef QUORUM_PROTO_GO_JSON_H
#define QUORUM_PROTO_GO_JSON_H

#include <stddef.h>

/* 0 when s[0..n) is one JSON value (and whitespace), else -1 with Go's error text in err
 * (json.Unmarshal's: the first syntax error of the whole input). */
int proto_go_json_check(const char *s, size_t n, char *err, size_t errlen);

#endif
