/* cmd_auth: etcdctl v2's `user`, `role` and `auth` command groups, on the /v2/auth API
 * (users, roles and their key-prefix permissions, auth enable/disable). */
#ifndef QUORUM_CTL_CMD_AUTH_H
#define QUORUM_CTL_CMD_AUTH_H

#include "ctl/ctl.h"

/* Whether the subcommands of group (a command name such as "user") build the client
 * themselves: etcdctl checks their arguments and flags before it connects, so main must not
 * open the session for them. */
int ctl_auth_opens_session(const char *group);

int ctl_cmd_user_add(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_user_get(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_user_list(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_user_remove(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_user_grant(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_user_revoke(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_user_passwd(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);

int ctl_cmd_role_add(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_role_get(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_role_list(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_role_remove(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_role_grant(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_role_revoke(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);

int ctl_cmd_auth_enable(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_auth_disable(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);

#endif
