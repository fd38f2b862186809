/* cmd_transfer: quorumctl's own subtree commands: export (a subtree as JSON on stdout),
 * import (that JSON from stdin, under any prefix) and du (keys, directories, bytes). */
#ifndef QUORUM_CTL_CMD_TRANSFER_H
#define QUORUM_CTL_CMD_TRANSFER_H

#include "ctl/ctl.h"

int ctl_cmd_export(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_import(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);
int ctl_cmd_du(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);

#endif
