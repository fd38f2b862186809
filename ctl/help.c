/* help: renders the help texts from the command table in urfave/cli 1.22's layout, so that
 * `quorumctl help get` reads like `etcdctl help get`. */
#include "ctl/help.h"

#include <string.h>

#include "ctl/flags.h"

void ctl_help_version(FILE *f) {
  fprintf(f, "%s version: %s\nAPI version: 2\n", CTL_PROG, QUORUM_VERSION);
}

static void command_list(FILE *f, const ctl_command *tab, size_t n, int with_help) {
  size_t width = with_help ? strlen("help, h") : 0;
  for (size_t i = 0; i < n; i++)
    if (!tab[i].hidden && strlen(tab[i].name) > width) width = strlen(tab[i].name);
  for (size_t i = 0; i < n; i++)
    if (!tab[i].hidden) fprintf(f, "   %-*s  %s\n", (int)width, tab[i].name, tab[i].usage);
  if (with_help)
    fprintf(f, "   %-*s  %s\n", (int)width, "help, h", "Shows a list of commands or help for one command");
}

void ctl_help_app(FILE *f) {
  fprintf(f,
          "NAME:\n   %s - A simple command line client for etcd.\n\n"
          "USAGE:\n   %s [global options] command [command options] [arguments...]\n\n"
          "VERSION:\n   %s\n\nCOMMANDS:\n",
          CTL_PROG, CTL_PROG, QUORUM_VERSION);
  command_list(f, ctl_commands, ctl_n_commands, 1);
  fputs("\nGLOBAL OPTIONS:\n", f);
  ctl_flags_help(f, ctl_global_flags, ctl_n_global_flags, 0);
}

void ctl_help_command(FILE *f, const ctl_command *cmd, const char *parent) {
  char full[128];
  snprintf(full, sizeof full, "%s%s%s %s", CTL_PROG, parent ? " " : "", parent ? parent : "",
           cmd->name);
  fprintf(f, "NAME:\n   %s - %s\n\nUSAGE:\n   %s%s %s\n", full, cmd->usage, full,
          cmd->n_flags ? " [command options]" : "",
          cmd->args_usage ? cmd->args_usage : "[arguments...]");
  if (cmd->description) fprintf(f, "\nDESCRIPTION:\n   %s\n", cmd->description);
  if (cmd->n_flags) {
    fputs("\nOPTIONS:\n", f);
    ctl_flags_help(f, cmd->flags, cmd->n_flags, 1);
  }
}

void ctl_help_group(FILE *f, const ctl_command *cmd) {
  fprintf(f,
          "NAME:\n   %s %s - %s\n\nUSAGE:\n   %s %s command [command options] [arguments...]\n\n"
          "COMMANDS:\n",
          CTL_PROG, cmd->name, cmd->usage, CTL_PROG, cmd->name);
  command_list(f, cmd->subs, cmd->n_subs, 0);
  fputs("\nOPTIONS:\n   --help, -h  show help\n   \n", f);
}

void ctl_help_group_app(FILE *f, const ctl_command *cmd) {
  fprintf(f,
          "NAME:\n   %s %s - %s\n\nUSAGE:\n   %s %s [global options] command [command options] "
          "[arguments...]\n\nVERSION:\n   %s\n\nCOMMANDS:\n",
          CTL_PROG, cmd->name, cmd->usage, CTL_PROG, cmd->name, QUORUM_VERSION);
  command_list(f, cmd->subs, cmd->n_subs, 0);
  fputs("\nGLOBAL OPTIONS:\n   --help, -h  show help\n", f);
}
