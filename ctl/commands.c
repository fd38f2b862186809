/* commands: the table of quorumctl's commands (etcdctl v2's, user/role/auth/backup included,
 * then export/import/du) with their flags and help texts, and the global flags. */
#include <string.h>

#include "ctl/cmd_auth.h"
#include "ctl/cmd_backup.h"
#include "ctl/cmd_keys.h"
#include "ctl/cmd_member.h"
#include "ctl/cmd_transfer.h"
#include "ctl/cmd_watch.h"
#include "ctl/ctl.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

const ctl_flag ctl_global_flags[] = {
    {"debug", CTL_FLAG_BOOL, "output cURL commands which can be used to reproduce the request", ""},
    {"no-sync", CTL_FLAG_BOOL, "don't synchronize cluster information before sending request", ""},
    {"output, o", CTL_FLAG_STRING, "output response in the given format (`simple`, `extended` or `json`)", "simple"},
    {"discovery-srv, D", CTL_FLAG_STRING, "domain name to query for SRV records describing cluster endpoints", ""},
    {"insecure-discovery", CTL_FLAG_BOOL, "accept insecure SRV records describing cluster endpoints", ""},
    {"peers, C", CTL_FLAG_STRING, "DEPRECATED - \"--endpoints\" should be used instead", ""},
    {"endpoint", CTL_FLAG_STRING, "DEPRECATED - \"--endpoints\" should be used instead", ""},
    {"endpoints", CTL_FLAG_STRING, "a comma-delimited list of machine addresses in the cluster (default: \"http://127.0.0.1:2379,http://127.0.0.1:4001\")", ""},
    {"cert-file", CTL_FLAG_STRING, "identify HTTPS client using this SSL certificate file", ""},
    {"key-file", CTL_FLAG_STRING, "identify HTTPS client using this SSL key file", ""},
    {"ca-file", CTL_FLAG_STRING, "verify certificates of HTTPS-enabled servers using this CA bundle", ""},
    {"username, u", CTL_FLAG_STRING, "provide username[:password] and prompt if password is not supplied.", ""},
    {"timeout", CTL_FLAG_DURATION, "connection timeout per request", "2s"},
    {"total-timeout", CTL_FLAG_DURATION, "timeout for the command execution (except watch)", "5s"},
    {"help, h", CTL_FLAG_BOOL, "show help", ""},
    {"version, v", CTL_FLAG_BOOL, "print the version", ""},
};
const size_t ctl_n_global_flags = N(ctl_global_flags);

/* a macro, not a const object: C11 takes only constant expressions in initializers */
#define TTL_FLAG {"ttl", CTL_FLAG_INT, "key time-to-live in seconds", "0"}

static const ctl_flag set_flags[] = {
    TTL_FLAG,
    {"swap-with-value", CTL_FLAG_STRING, "previous value", ""},
    {"swap-with-index", CTL_FLAG_INT, "previous index", "0"},
};
static const ctl_flag get_flags[] = {
    {"sort", CTL_FLAG_BOOL, "returns result in sorted order", ""},
    {"quorum, q", CTL_FLAG_BOOL, "require quorum for get request", ""},
};
static const ctl_flag mk_flags[] = {
    {"in-order", CTL_FLAG_BOOL, "create in-order key under directory <key>", ""},
    TTL_FLAG,
};
static const ctl_flag ttl_flags[] = {TTL_FLAG};
static const ctl_flag rm_flags[] = {
    {"dir", CTL_FLAG_BOOL, "removes the key if it is an empty directory or a key-value pair", ""},
    {"recursive, r", CTL_FLAG_BOOL, "removes the key and all child keys(if it is a directory)", ""},
    {"with-value", CTL_FLAG_STRING, "previous value", ""},
    {"with-index", CTL_FLAG_INT, "previous index", "0"},
};
static const ctl_flag ls_flags[] = {
    {"sort", CTL_FLAG_BOOL, "returns result in sorted order", ""},
    {"recursive, r", CTL_FLAG_BOOL, "returns all key names recursively for the given path", ""},
    {"p", CTL_FLAG_BOOL, "append slash (/) to directories", ""},
    {"quorum, q", CTL_FLAG_BOOL, "require quorum for get request", ""},
};
static const ctl_flag watch_flags[] = {
    {"forever, f", CTL_FLAG_BOOL, "forever watch a key until CTRL+C", ""},
    {"after-index", CTL_FLAG_INT, "watch after the given index", "0"},
    {"recursive, r", CTL_FLAG_BOOL, "returns all values for key and child keys", ""},
};
static const ctl_flag exec_watch_flags[] = {
    {"after-index", CTL_FLAG_INT, "watch after the given index", "0"},
    {"recursive, r", CTL_FLAG_BOOL, "watch all values for key and child keys", ""},
};
static const ctl_flag health_flags[] = {
    {"forever, f", CTL_FLAG_BOOL, "forever check the health every 10 second until CTRL+C", ""},
};
static const ctl_flag import_flags[] = {
    {"force", CTL_FLAG_BOOL, "overwrite keys that already exist (default: fail on the first one)", ""},
};

static const ctl_flag backup_flags[] = {
    {"data-dir", CTL_FLAG_STRING, "Path to the etcd data dir", ""},
    {"wal-dir", CTL_FLAG_STRING, "Path to the etcd wal dir", ""},
    {"backup-dir", CTL_FLAG_STRING, "Path to the backup dir", ""},
    {"backup-wal-dir", CTL_FLAG_STRING, "Path to the backup wal dir", ""},
    {"with-v3", CTL_FLAG_BOOL, "Backup v3 backend data", ""},
};

static const ctl_command member_subs[] = {
    {"list", "enumerate existing cluster members", " ", NULL, NULL, 0, ctl_cmd_member_list, NULL, 0, 0},
    {"add", "add a new member to the etcd cluster", "<name> <peerURL>", NULL, NULL, 0, ctl_cmd_member_add, NULL, 0, 0},
    {"remove", "remove an existing member from the etcd cluster", "<memberID>", NULL, NULL, 0, ctl_cmd_member_remove, NULL, 0, 0},
    {"update", "update an existing member in the etcd cluster", "<memberID> <peerURLs>", NULL, NULL, 0, ctl_cmd_member_update, NULL, 0, 0},
};

#define FL(a) a, N(a)

static const ctl_flag user_roles_flags[] = {
    {"roles", CTL_FLAG_STRING_SLICE, "List of roles to grant or revoke", ""},
};
static const ctl_flag role_grant_flags[] = {
    {"path", CTL_FLAG_STRING, "Path granted for the role to access", ""},
    {"read", CTL_FLAG_BOOL, "Grant read-only access", ""},
    {"write", CTL_FLAG_BOOL, "Grant write-only access", ""},
    {"readwrite, rw", CTL_FLAG_BOOL, "Grant read-write access", ""},
};
static const ctl_flag role_revoke_flags[] = {
    {"path", CTL_FLAG_STRING, "Path revoked for the role to access", ""},
    {"read", CTL_FLAG_BOOL, "Revoke read access", ""},
    {"write", CTL_FLAG_BOOL, "Revoke write access", ""},
    {"readwrite, rw", CTL_FLAG_BOOL, "Revoke read-write access", ""},
};

/* etcdctl's usage strings as they are ("user list <user>", "role add <role> "). */
static const ctl_command user_subs[] = {
    {"add", "add a new user for the etcd cluster", "<user>", NULL, NULL, 0, ctl_cmd_user_add, NULL, 0, 0},
    {"get", "get details for a user", "<user>", NULL, NULL, 0, ctl_cmd_user_get, NULL, 0, 0},
    {"list", "list all current users", "<user>", NULL, NULL, 0, ctl_cmd_user_list, NULL, 0, 0},
    {"remove", "remove a user for the etcd cluster", "<user>", NULL, NULL, 0, ctl_cmd_user_remove, NULL, 0, 0},
    {"grant", "grant roles to an etcd user", "<user>", NULL, FL(user_roles_flags), ctl_cmd_user_grant, NULL, 0, 0},
    {"revoke", "revoke roles for an etcd user", "<user>", NULL, FL(user_roles_flags), ctl_cmd_user_revoke, NULL, 0, 0},
    {"passwd", "change password for a user", "<user>", NULL, NULL, 0, ctl_cmd_user_passwd, NULL, 0, 0},
};

static const ctl_command role_subs[] = {
    {"add", "add a new role for the etcd cluster", "<role> ", NULL, NULL, 0, ctl_cmd_role_add, NULL, 0, 0},
    {"get", "get details for a role", "<role>", NULL, NULL, 0, ctl_cmd_role_get, NULL, 0, 0},
    {"list", "list all roles", " ", NULL, NULL, 0, ctl_cmd_role_list, NULL, 0, 0},
    {"remove", "remove a role from the etcd cluster", "<role>", NULL, NULL, 0, ctl_cmd_role_remove, NULL, 0, 0},
    {"grant", "grant path matches to an etcd role", "<role>", NULL, FL(role_grant_flags), ctl_cmd_role_grant, NULL, 0, 0},
    {"revoke", "revoke path matches for an etcd role", "<role>", NULL, FL(role_revoke_flags), ctl_cmd_role_revoke, NULL, 0, 0},
};

static const ctl_command auth_subs[] = {
    {"enable", "enable auth access controls", " ", NULL, NULL, 0, ctl_cmd_auth_enable, NULL, 0, 0},
    {"disable", "disable auth access controls", " ", NULL, NULL, 0, ctl_cmd_auth_disable, NULL, 0, 0},
};

const ctl_command ctl_commands[] = {
    {"backup", "backup an etcd directory", " ", NULL, FL(backup_flags), ctl_cmd_backup, NULL, 0, 0},
    {"cluster-health", "check the health of the etcd cluster", " ", NULL, FL(health_flags), ctl_cmd_cluster_health, NULL, 0, 0},
    {"mk", "make a new key with a given value", "<key> <value>", NULL, FL(mk_flags), ctl_cmd_mk, NULL, 0, 0},
    {"mkdir", "make a new directory", "<key>", NULL, FL(ttl_flags), ctl_cmd_mkdir, NULL, 0, 0},
    {"rm", "remove a key or a directory", "<key>", NULL, FL(rm_flags), ctl_cmd_rm, NULL, 0, 0},
    {"rmdir", "removes the key if it is an empty directory or a key-value pair", "<key>", NULL, NULL, 0, ctl_cmd_rmdir, NULL, 0, 0},
    {"get", "retrieve the value of a key", "<key>", NULL, FL(get_flags), ctl_cmd_get, NULL, 0, 0},
    {"ls", "retrieve a directory", "[key]", NULL, FL(ls_flags), ctl_cmd_ls, NULL, 0, 0},
    {"set", "set the value of a key", "<key> <value>",
     "Set sets the value of a key.\n\n   When <value> begins with '-', <value> is interpreted as a flag.\n"
     "   Insert '--' for workaround:\n\n   $ set -- <key> <value>",
     FL(set_flags), ctl_cmd_set, NULL, 0, 0},
    {"setdir", "create a new directory or update an existing directory TTL", "<key>", NULL, FL(ttl_flags), ctl_cmd_setdir, NULL, 0, 0},
    {"update", "update an existing key with a given value", "<key> <value>", NULL, FL(ttl_flags), ctl_cmd_update, NULL, 0, 0},
    {"updatedir", "update an existing directory", "<key> <value>", NULL, FL(ttl_flags), ctl_cmd_updatedir, NULL, 0, 0},
    {"watch", "watch a key for changes", "<key>", NULL, FL(watch_flags), ctl_cmd_watch, NULL, 0, 0},
    {"exec-watch", "watch a key for changes and exec an executable", "<key> <command> [args...]", NULL, FL(exec_watch_flags), ctl_cmd_exec_watch, NULL, 0, 0},
    {"member", "member add, remove and list subcommands", NULL, NULL, NULL, 0, NULL, FL(member_subs), 0},
    {"user", "user add, grant and revoke subcommands", NULL, NULL, NULL, 0, NULL, FL(user_subs), 0},
    {"role", "role add, grant and revoke subcommands", NULL, NULL, NULL, 0, NULL, FL(role_subs), 0},
    {"auth", "overall auth controls", NULL, NULL, NULL, 0, NULL, FL(auth_subs), 0},
    {"export", "write a subtree (values, directories, TTLs) as JSON to standard output", "<prefix>", NULL, NULL, 0, ctl_cmd_export, NULL, 0, 0},
    {"import", "restore a subtree written by export from standard input", "<prefix>", NULL, FL(import_flags), ctl_cmd_import, NULL, 0, 0},
    {"du", "show how many keys, directories and value bytes a subtree holds", "<prefix>", NULL, NULL, 0, ctl_cmd_du, NULL, 0, 0},
};
const size_t ctl_n_commands = N(ctl_commands);

const ctl_command *ctl_find_command(const ctl_command *tab, size_t n, const char *name) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(tab[i].name, name) == 0) return &tab[i];
  return NULL;
}
