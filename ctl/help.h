/* help: the NAME/USAGE/OPTIONS texts etcdctl (urfave/cli) prints for the app, a command and a
 * command with subcommands, and the version lines. */
#ifndef QUORUM_CTL_HELP_H
#define QUORUM_CTL_HELP_H

#include <stdio.h>

#include "ctl/ctl.h"

void ctl_help_app(FILE *f);
/* parent: "member" for a subcommand, NULL for a top-level command. */
void ctl_help_command(FILE *f, const ctl_command *cmd, const char *parent);
/* The help of a command that has subcommands (member). */
void ctl_help_group(FILE *f, const ctl_command *cmd);
/* `member help` (no topic): urfave/cli shows the group as an app of its own. */
void ctl_help_group_app(FILE *f, const ctl_command *cmd);
void ctl_help_version(FILE *f);

#endif
