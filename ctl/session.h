/* session: the client of one quorumctl run, built from the global flags and ETCDCTL_*
 * variables as etcdctl builds it (endpoints, TLS, user, timeouts, member sync), and etcdctl's
 * ways of reporting a failure (handleError). */
#ifndef QUORUM_CTL_SESSION_H
#define QUORUM_CTL_SESSION_H

#include "ctl/ctl.h"
#include "proto/v2_client.h"

/* Creates ctx->client (mustNewClient / mustNewClientNoSync). Returns 0, or the exit code after
 * printing the error. */
int ctl_session_open(ctl_ctx *ctx, int sync);
void ctl_session_close(ctl_ctx *ctx);

/* speakeasy.Ask, as for --username without a password: prompt on stdout, echo off with
 * /bin/stty, one line from standard input, trimmed. malloc'd; NULL with err set when stty
 * cannot start (etcdctl's "failed turning off console echo ..." text). */
char *ctl_ask_password(const char *prompt, char *err, size_t errlen);

/* "Error:  <msg>\n" on stderr; returns code. */
int ctl_fail(int code, const char *msg);
/* A PROTO_V2_CONFIG failure (unusable TLS files, found by libcurl): the message alone, exit 1,
 * as etcdctl's newClient failure. */
int ctl_fail_config(const proto_v2_errors *e);
/* handleError for a transport failure (a PROTO_V2_CONFIG one goes to ctl_fail_config) (with ClusterError's detail lines); returns code. */
int ctl_fail_transport(int code, const proto_v2_errors *e);

/* A keys API request: method on key with the query (may be NULL) and form body (NULL = none).
 * Returns 0 with *ev filled (X-Etcd-Index in ev->index), or the exit code after printing the
 * error as etcdctl does (v2 errors: "Error:  100: Key not found (/x) [12]", exit 4). */
int ctl_keys(ctl_ctx *ctx, const char *method, const char *key, const char *query,
             const char *form, int wait, proto_v2_event *ev);

/* The same; when v2err is not NULL a v2 error is not printed but returned in *v2err (to be
 * freed with proto_v2_error_free) with -1. */
int ctl_keys_ex(ctl_ctx *ctx, const char *method, const char *key, const char *query,
                const char *form, int wait, proto_v2_event *ev, proto_v2_error *v2err);

#endif
