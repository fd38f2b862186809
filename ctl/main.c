/* main: quorumctl's entry point: global flags, then the command (or subcommand) found in the
 * command table, with urfave/cli's help and usage-error behaviour and etcdctl's exit codes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl/cmd_auth.h"
#include "ctl/ctl.h"
#include "ctl/flags.h"
#include "ctl/help.h"
#include "ctl/session.h"

/* "No help topic for 'x'" with urfave/cli's exit code 3. */
static int no_topic(const char *name) {
  fprintf(stderr, "No help topic for '%s'\n", name);
  return 3;
}

/* Runs one leaf command with its arguments (after the command name). */
static int run_command(ctl_ctx *ctx, const ctl_command *cmd, const char *parent, int argc,
                       char **argv) {
  ctl_args a;
  char err[512];
  int rc = ctl_flags_parse(cmd->flags, cmd->n_flags, argc, argv, 1, 0, &a, err, sizeof err);
  if (rc == CTL_PARSE_ERROR) {
    printf("Incorrect Usage: %s\n\n", err);
    ctl_help_command(stdout, cmd, parent);
    fflush(stdout);
    fprintf(stderr, "%s\n", err);
    ctl_args_free(&a);
    return 1;
  }
  if (rc == CTL_PARSE_HELP) {
    ctl_help_command(stdout, cmd, parent);
    ctl_args_free(&a);
    return 0;
  }
  /* etcdctl builds its client (and syncs, unless --no-sync or cluster-health) before the
   * command looks at its arguments; only the member subcommands count them first. */
  int sync = !ctl_arg_bool(&ctx->global, "no-sync") && strcmp(cmd->name, "cluster-health") != 0;
  int needs_client = 1;
  if (parent &&
      ((strcmp(cmd->name, "list") == 0 && a.argc != 0) ||
       (strcmp(cmd->name, "add") == 0 && a.argc != 2) ||
       (strcmp(cmd->name, "remove") == 0 && a.argc != 1) ||
       (strcmp(cmd->name, "update") == 0 && a.argc != 2)))
    needs_client = 0;
  if (parent && ctl_auth_opens_session(parent)) needs_client = 0; /* user/role/auth: after their checks */
  if (!parent && strcmp(cmd->name, "backup") == 0) needs_client = 0; /* files only */
  if (needs_client) {
    ctx->health = !parent && strcmp(cmd->name, "cluster-health") == 0;
    rc = ctl_session_open(ctx, sync);
    if (rc != 0) {
      ctl_args_free(&a);
      ctl_session_close(ctx);
      return rc;
    }
  }
  rc = cmd->run(ctx, cmd, &a);
  ctl_session_close(ctx);
  ctl_args_free(&a);
  return rc;
}

/* A command with subcommands (member): its own little app. */
static int run_group(ctl_ctx *ctx, const ctl_command *grp, int argc, char **argv) {
  ctl_args a;
  char err[512];
  int rc = ctl_flags_parse(NULL, 0, argc, argv, 0, 0, &a, err, sizeof err);
  if (rc == CTL_PARSE_ERROR) {
    printf("Incorrect Usage. %s\n\n", err);
    ctl_help_group(stdout, grp);
    fflush(stdout);
    fprintf(stderr, "%s\n", err);
    ctl_args_free(&a);
    return 1;
  }
  if (rc == CTL_PARSE_HELP || a.argc == 0) {
    ctl_help_group(stdout, grp);
    ctl_args_free(&a);
    return 0;
  }
  const char *name = a.argv[0];
  if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0) {
    if (a.argc < 2) {
      ctl_help_group_app(stdout, grp);
      rc = 0;
    } else {
      const ctl_command *sub = ctl_find_command(grp->subs, grp->n_subs, a.argv[1]);
      if (sub) {
        ctl_help_command(stdout, sub, grp->name);
        rc = 0;
      } else {
        rc = no_topic(a.argv[1]);
      }
    }
    ctl_args_free(&a);
    return rc;
  }
  const ctl_command *sub = ctl_find_command(grp->subs, grp->n_subs, name);
  if (!sub) {
    rc = no_topic(name);
    ctl_args_free(&a);
    return rc;
  }
  /* the subcommand parses everything after its name (argv still holds it) */
  int off = 0;
  while (off < argc && argv[off] != a.argv[0]) off++;
  rc = run_command(ctx, sub, grp->name, argc - off - 1, argv + off + 1);
  ctl_args_free(&a);
  return rc;
}

int main(int argc, char **argv) {
  /* etcdctl drops ETCDCTL_API before it runs anything (so exec-watch children do not see it). */
  unsetenv("ETCDCTL_API");
  ctl_ctx ctx;
  memset(&ctx, 0, sizeof ctx);
  char err[512];
  int rc = ctl_flags_parse(ctl_global_flags, ctl_n_global_flags, argc - 1, argv + 1, 0, 1,
                           &ctx.global, err, sizeof err);
  if (rc == CTL_PARSE_ERROR) {
    printf("Incorrect Usage. %s\n\n", err);
    ctl_help_app(stdout);
    fflush(stdout);
    fprintf(stderr, "%s\n", err);
    ctl_args_free(&ctx.global);
    return 1;
  }
  if (rc == CTL_PARSE_OK && ctl_arg_bool(&ctx.global, "help")) rc = CTL_PARSE_HELP;
  if (rc == CTL_PARSE_OK && ctl_arg_bool(&ctx.global, "version")) rc = CTL_PARSE_VERSION;
  if (rc == CTL_PARSE_HELP || (rc == CTL_PARSE_OK && ctx.global.argc == 0)) {
    ctl_help_app(stdout);
    ctl_args_free(&ctx.global);
    return 0;
  }
  if (rc == CTL_PARSE_VERSION) {
    ctl_help_version(stdout);
    ctl_args_free(&ctx.global);
    return 0;
  }
  ctx.output = ctl_arg_str(&ctx.global, "output");
  const char *name = ctx.global.argv[0];
  int cargc = ctx.global.argc - 1;
  char **cargv = ctx.global.argv + 1;
  if (strcmp(name, "help") == 0 || strcmp(name, "h") == 0) {
    if (cargc == 0) {
      ctl_help_app(stdout);
      rc = 0;
    } else {
      const ctl_command *c = ctl_find_command(ctl_commands, ctl_n_commands, cargv[0]);
      if (!c) rc = no_topic(cargv[0]);
      else rc = (ctl_help_command(stdout, c, NULL), 0); /* a group too: "etcdctl member [arguments...]" */
    }
    ctl_args_free(&ctx.global);
    return rc;
  }
  const ctl_command *cmd = ctl_find_command(ctl_commands, ctl_n_commands, name);
  if (!cmd) {
    rc = no_topic(name);
    ctl_args_free(&ctx.global);
    return rc;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (cmd->subs) rc = run_group(&ctx, cmd, cargc, cargv);
  else rc = run_command(&ctx, cmd, NULL, cargc, cargv);
  fflush(stdout);
  curl_global_cleanup();
  ctl_args_free(&ctx.global);
  return rc;
}
