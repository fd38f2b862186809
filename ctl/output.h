/* output: how etcdctl v2 prints a response (simple, extended, json) and Go's encoding/json
 * string escaping, which its json output uses. */
#ifndef QUORUM_CTL_OUTPUT_H
#define QUORUM_CTL_OUTPUT_H

#include <stdio.h>

#include "proto/v2_client.h"

/* printResponseKey. Returns 0 (an unsupported format prints its message on stderr, still 0). */
void ctl_print_response(FILE *out, const proto_v2_event *ev, const char *format);

/* A JSON string as Go's encoding/json writes it (HTML-safe, U+FFFD for bad UTF-8). */
void ctl_json_string(FILE *out, const char *s);
/* The same for LEN bytes (NUL bytes written as \u0000). */
void ctl_json_string_n(FILE *out, const char *s, size_t len);

/* A node as Go marshals the client's Node struct ("nodes":null when absent). */
void ctl_json_node(FILE *out, const proto_v2_knode *n);

/* {"action":...,"node":...,"prevNode":...} */
void ctl_json_event(FILE *out, const proto_v2_event *ev);

#endif
