/* cmd_keys: the key commands of etcdctl v2 (set get mk mkdir setdir update updatedir rm rmdir
 * ls), each one a run function of the command table. */
#ifndef QUORUM_CTL_CMD_KEYS_H
#define QUORUM_CTL_CMD_KEYS_H

#include "ctl/ctl.h"

int ctl_cmd_set(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_get(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_mk(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_mkdir(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_setdir(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_update(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_updatedir(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_rm(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_rmdir(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_ls(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);

/* argOrStdin: argv[i], or all of standard input; NULL when neither gives a non-empty value
 * (the result is malloc'd). */
char *ctl_arg_or_stdin(const ctl_args *a, int i);

#endif
