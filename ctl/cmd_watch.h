/* cmd_watch: etcdctl v2's watch and exec-watch (long-poll watches that follow modifiedIndex). */
#ifndef QUORUM_CTL_CMD_WATCH_H
#define QUORUM_CTL_CMD_WATCH_H

#include "ctl/ctl.h"

int ctl_cmd_watch(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_exec_watch(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);

#endif
