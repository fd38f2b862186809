/* cmd_backup: `backup`, a restorable copy of a member's data dir (see cmd_backup.c). */
#ifndef QUORUM_CTL_CMD_BACKUP_H
#define QUORUM_CTL_CMD_BACKUP_H

#include "ctl/ctl.h"

int ctl_cmd_backup(ctl_ctx *ctx, const ctl_command *cmd, ctl_args *a);

#endif
