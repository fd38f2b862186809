/* cmd_member: `member list|add|remove|update` and `cluster-health`, on the /v2/members API. */
#ifndef QUORUM_CTL_CMD_MEMBER_H
#define QUORUM_CTL_CMD_MEMBER_H

#include "ctl/ctl.h"

int ctl_cmd_member_list(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_member_add(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_member_remove(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_member_update(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_cluster_health(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);

#endif
