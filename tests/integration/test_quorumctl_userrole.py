"""quorumctl's `user`, `role` and `auth` commands against etcdctl v2's (ETCDCTL_API=2).

One transcript of user/role/auth steps (usage errors, help texts, users and roles made, granted,
revoked and removed, auth enabled without and with a root user, wrong and prompted passwords,
key access through a role, --debug's request lines, unreachable endpoints) runs twice, on two
fresh identical servers of the same kind: `etcdctl` on the first, quorumctl on the second, so
that both see the same state at every step. stdout, stderr and the exit status of each step must
be equal, after only the server URL is replaced by <url> and quorumctl's name and version in help
texts by etcdctl's. Most steps also state what etcdctl prints, checked against etcdctl's own run.

The server kinds are listed in SERVER_KINDS: real etcd 3.4 (--enable-v2), and quorumd, which is
skipped while `GET /v2/auth/enable` answers 404 (quorumd does not serve the v2 auth API yet), so
the same transcript starts running against it once it does.

Password prompts (`user add NAME`, `user passwd NAME`, `--username NAME`) are driven through a
pipe as in test_quorumctl_auth.py: the prompt on stdout, stty's complaints about the pipe on
stderr (both programs run `/bin/stty -echo` on their own standard streams), a newline after the
answer.

Two more tests: answers no etcd gives (not JSON, fields of other types, nil and empty lists),
served by a small HTTP server from a table, read alike and the same requests sent; and the TLS
flags and variables on an https etcd that asks for client certificates.
"""
import os
import re

import pytest

import cluster
from test_quorumctl import quorumctl_binary
from test_quorumctl_tls import BAD_CERT, compare_cases, run
from test_quorumctl_tls import pki, tls_etcd  # noqa: F401  (fixtures)

SERVER_KINDS = ["etcd", "quorumd"]
# The sanitizer build (QUORUM_SANITIZED=1 from ctest) runs the transcript on quorumd alone:
# its quorumctl meets the same code paths there, and the daemon is the sanitized one.
if os.environ.get("QUORUM_SANITIZED") == "1":
    SERVER_KINDS = ["quorumd"]

STTY = "stty: 'standard input': Inappropriate ioctl for device\n" * 2
NO_CREDS = "Insufficient credentials\n"
KEY_NO_AUTH = "Error:  110: The request requires user authentication (Insufficient credentials) [0]\n"
OK = lambda out: (0, out, "")           # noqa: E731
ERR = lambda err: (1, "", err)          # noqa: E731


def refused(url):
    msg = "dial tcp %s: connect: connection refused" % url.split("//", 1)[1]
    return "client: etcd cluster is unavailable or misconfigured; error #0: %s\n" % msg


def OK_DEBUG(out, request):
    """A --debug --no-sync run of one request: the endpoints line twice (the client's, then the
    auth API's), the request as a cURL command."""
    return (0, out, "Cluster-Endpoints: <url>\n" * 2 + "cURL Command: curl -X %s\n" % request)


def S(*args, stdin=b"", want=None):
    return (list(args), stdin, want)


def usage(cmd, err, text):
    """urfave/cli's answer to a bad flag: "Incorrect Usage" and the command's help on stdout."""
    return (1, "Incorrect Usage: %s\n\n%s" % (err, text), err + "\n")


USER_GRANT_HELP = ("NAME:\n   etcdctl user grant - grant roles to an etcd user\n\n"
                   "USAGE:\n   etcdctl user grant [command options] <user>\n\n"
                   "OPTIONS:\n   --roles value  List of roles to grant or revoke\n   \n")
USER_GET_HELP = "NAME:\n   etcdctl user get - get details for a user\n\nUSAGE:\n   etcdctl user get <user>\n"
ROLE_GRANT_HELP = ("NAME:\n   etcdctl role grant - grant path matches to an etcd role\n\n"
                   "USAGE:\n   etcdctl role grant [command options] <role>\n\n"
                   "OPTIONS:\n"
                   "   --path value       Path granted for the role to access\n"
                   "   --read             Grant read-only access\n"
                   "   --write            Grant write-only access\n"
                   "   --readwrite, --rw  Grant read-write access\n   \n")
USER_GROUP_HELP = ("NAME:\n   etcdctl user - user add, grant and revoke subcommands\n\n"
                   "USAGE:\n   etcdctl user command [command options] [arguments...]\n\n"
                   "COMMANDS:\n"
                   "   add     add a new user for the etcd cluster\n"
                   "   get     get details for a user\n"
                   "   list    list all current users\n"
                   "   remove  remove a user for the etcd cluster\n"
                   "   grant   grant roles to an etcd user\n"
                   "   revoke  revoke roles for an etcd user\n"
                   "   passwd  change password for a user\n\n"
                   "OPTIONS:\n   --help, -h  show help\n   \n")
AUTH_GROUP_APP_HELP = ("NAME:\n   etcdctl auth - overall auth controls\n\n"
                       "USAGE:\n   etcdctl auth [global options] command [command options] "
                       "[arguments...]\n\nVERSION:\n   <version>\n\n"
                       "COMMANDS:\n   enable   enable auth access controls\n"
                       "   disable  disable auth access controls\n\n"
                       "GLOBAL OPTIONS:\n   --help, -h  show help\n")
ROLE_APP = "Role: app\nKV Read:\n\t/app/*\n\t/pub\nKV Write:\n\t/app/*\n"

# The transcript. Each step: (arguments after `--endpoints <url>`, standard input, what etcdctl
# prints: (exit status, stdout, stderr) with the URL as <url>, or None: only compared).
SCRIPT = [
    # ---- help texts
    S("user", want=OK(USER_GROUP_HELP)),
    S("user", "-h", want=OK(USER_GROUP_HELP)),
    S("user", "help"), S("help", "user"), S("user", "help", "grant", want=OK(USER_GRANT_HELP)),
    S("user", "add", "--help"), S("user", "get", "-h", want=OK(USER_GET_HELP)),
    S("user", "list", "-h"), S("user", "remove", "-h"), S("user", "grant", "-h"),
    S("user", "revoke", "-h"), S("user", "passwd", "-h"),
    S("role"), S("role", "h"), S("help", "role"), S("role", "add", "-h"), S("role", "get", "-h"),
    S("role", "list", "-h"), S("role", "remove", "-h"),
    S("role", "grant", "-h", want=OK(ROLE_GRANT_HELP)), S("role", "revoke", "--help"),
    S("auth"), S("auth", "help", want=OK(AUTH_GROUP_APP_HELP)), S("help", "auth"),
    S("auth", "enable", "-h"), S("auth", "help", "disable"),
    # ---- bad arguments: etcdctl checks them before it connects
    S("user", "bogus", want=(3, "", "No help topic for 'bogus'\n")),
    S("user", "add", want=ERR("Please provide a username\n")),
    S("user", "add", "a:1", "b:2", want=ERR("Please provide a username\n")),
    S("user", "get", want=ERR("Please provide a username\n")),
    S("user", "remove", "a", "b", want=ERR("Please provide a username\n")),
    S("user", "passwd", want=ERR("Please provide a username\n")),
    S("user", "list", "x", want=ERR("No arguments accepted\n")),
    S("user", "grant", "alice", want=ERR("No roles specified; please use `--roles`\n")),
    S("user", "revoke", want=ERR("No roles specified; please use `--roles`\n")),
    S("user", "grant", "--roles", "r", want=ERR("Please provide a username\n")),
    # urfave/cli moves the flags before the arguments: this is `--roles alice`, no user
    S("user", "grant", "alice", "--roles", want=ERR("Please provide a username\n")),
    S("user", "grant", "--roles",
      want=usage("user grant", "flag needs an argument: -roles", USER_GRANT_HELP)),
    # etcdctl v2 (3.4) has no `user get --detail`
    S("user", "get", "--detail", "alice",
      want=usage("user get", "flag provided but not defined: -detail", USER_GET_HELP)),
    S("role", "add", want=ERR("Please provide a role name\n")),
    S("role", "get", "a", "b", want=ERR("Please provide a role name\n")),
    S("role", "remove", want=ERR("Please provide a role name\n")),
    S("role", "list", "x", want=ERR("No arguments accepted\n")),
    S("role", "grant", "r", want=ERR("No path specified; please use `--path`\n")),
    S("role", "revoke", "r", "--path", "", "--read",
      want=ERR("No path specified; please use `--path`\n")),
    S("role", "grant", "r", "--path", "a/b", "--read",
      want=ERR("Not canonical path; please use `--path=/a/b`\n")),
    S("role", "grant", "r", "--path", "/a/../b//c/", "--read",
      want=ERR("Not canonical path; please use `--path=/b/c/`\n")),
    S("role", "grant", "r", "--path", "/a",
      want=ERR("Please specify exactly one of --read, --write or --readwrite\n")),
    S("role", "grant", "r", "--path", "/a", "--read", "--rw",
      want=ERR("Please specify exactly one of --read, --write or --readwrite\n")),
    S("role", "revoke", "r", "--path", "/a", "--read", "--write=true",
      want=ERR("Please specify exactly one of --read, --write or --readwrite\n")),
    S("role", "grant", "--path", "/a", "--read", want=ERR("Please provide a role name\n")),
    # an unknown flag after the argument stays an argument; before it, it is an error
    S("role", "grant", "r", "--path", "/a", "--bogus",
      want=ERR("Please specify exactly one of --read, --write or --readwrite\n")),
    S("role", "grant", "--bogus", "r", "--path", "/a",
      want=usage("role grant", "flag provided but not defined: -bogus", ROLE_GRANT_HELP)),
    S("auth", "enable", "x", want=ERR("No arguments accepted\n")),
    S("auth", "disable", "x", want=ERR("No arguments accepted\n")),
    S("--endpoints", "http://127.0.0.1:1", "user", "get", want=ERR("Please provide a username\n")),
    # ---- users
    S("user", "list", want=OK("")),
    S("role", "list", want=OK("root\n")),
    S("role", "get", "root", want=OK("Role: root\nKV Read:\n\t/*\nKV Write:\n\t/*\n")),
    S("user", "get", "alice", want=ERR("auth: User alice does not exist.\n")),
    S("user", "add", "alice:alicepw", want=OK("User alice created\n")),
    # adding a user that exists sets its password
    S("user", "add", "alice:other", want=OK("User alice created\n")),
    S("user", "add", "bob", stdin=b"bobpw\n", want=(0, "New password: \nUser bob created\n", STTY)),
    S("user", "add", "carol", stdin=b"",
      want=(1, "New password: \n", STTY + "auth: Cannot create user carol with an empty password\n")),
    S("user", "add", "dave:", want=ERR("auth: Cannot create user dave with an empty password\n")),
    S("user", "add", "erin:pw:with:colons", want=OK("User erin created\n")),
    # no name: a PUT to /v2/auth/users, which answers 405 in plain text
    S("user", "add", ":nouser", want=ERR("invalid character 'M' looking for beginning of value\n")),
    S("user", "add", "a/b:pw", want=ERR("Invalid path\n")),
    S("user", "add", "sp ace:pw", want=OK("User sp ace created\n")),
    S("user", "get", "x/../sp ace", want=OK("User: sp ace\nRoles: \n")),
    S("user", "add", "\u00fcn\u00ef:pw", want=OK("User \u00fcn\u00ef created\n")),
    S("user", "list", want=OK("alice\nbob\nerin\nsp ace\n\u00fcn\u00ef\n")),
    S("user", "get", "alice", want=OK("User: alice\nRoles: \n")),
    S("-o", "json", "user", "get", "bob", want=OK("User: bob\nRoles: \n")),
    # an empty name asks for the list, which reads as a user without a name
    S("user", "get", "", want=OK("User: \nRoles: \n")),
    S("user", "remove", "nobody", want=ERR("auth: User nobody does not exist\n")),
    S("user", "remove", "erin", want=OK("User erin removed\n")),
    S("user", "get", "erin", want=ERR("auth: User erin does not exist.\n")),
    S("user", "passwd", "bob", stdin=b"newbobpw\n", want=(0, "New password: \nPassword updated\n", STTY)),
    S("user", "passwd", "nobody", stdin=b"\n",
      want=(1, "New password: \n", STTY + "auth: Cannot create user nobody with an empty password\n")),
    # a password for a user that does not exist creates it, with 201, which the client takes
    # for an error: the message of a body that has none
    S("user", "passwd", "nobody2", stdin=b"pw\n", want=(1, "New password: \n", STTY + "\n")),
    S("user", "remove", "nobody2", want=OK("User nobody2 removed\n")),
    # ---- roles
    S("role", "add", "app", want=OK("Role app created\n")),
    S("role", "add", "app", want=ERR("Role app already exists\n")),
    S("role", "get", "app", want=OK("Role: app\nKV Read:\nKV Write:\n")),
    S("role", "get", "nope", want=ERR("auth: Role nope does not exist.\n")),
    S("role", "add", "", want=ERR("Role  already exists\n")),
    S("role", "grant", "app", "--path", "/app/*", "--readwrite", want=OK("Role app updated\n")),
    S("role", "grant", "app", "--path", "/app/*", "--read",
      want=ERR("auth: Granting duplicate read permission /app/*\n")),
    S("role", "grant", "app", "--path", "/pub", "--rw", want=OK("Role app updated\n")),
    S("role", "revoke", "app", "--path", "/pub", "--write", want=OK("Role app updated\n")),
    S("role", "revoke", "app", "--path", "/pub", "--write",
      want=ERR("auth: Role not updated. Use grant/revoke to update the role.\n")),
    S("role", "revoke", "app", "--path", "/never", "--read",
      want=ERR("auth: Role not updated. Use grant/revoke to update the role.\n")),
    S("role", "get", "app", want=OK(ROLE_APP)),
    S("role", "grant", "nope", "--path", "/x", "--read", want=ERR("auth: Role nope does not exist.\n")),
    S("role", "revoke", "nope", "--path", "/x", "--rw", want=ERR("auth: Role nope does not exist.\n")),
    S("role", "add", "ops", want=OK("Role ops created\n")),
    S("role", "grant", "ops", "--path", "/ops/", "--write", want=OK("Role ops updated\n")),
    S("role", "get", "ops", want=OK("Role: ops\nKV Read:\nKV Write:\n\t/ops/\n")),
    S("role", "list", want=OK("app\nops\nroot\n")),
    # ---- roles of users
    S("user", "grant", "alice", "--roles", "app", want=OK("User alice updated\n")),
    # etcd sends the roles as objects: the client's first decoding leaves an empty name per role
    S("user", "get", "alice", want=OK("User: alice\nRoles:  app\n")),
    S("user", "grant", "alice", "--roles", "app",
      want=ERR("auth: Granting duplicate role app for user alice\n")),
    S("user", "grant", "bob", "--roles", "app", "--roles", "ops", want=OK("User bob updated\n")),
    S("user", "get", "bob", want=OK("User: bob\nRoles:   app ops\n")),
    S("user", "revoke", "bob", "--roles", "ops", want=OK("User bob updated\n")),
    S("user", "revoke", "bob", "--roles", "ops",
      want=ERR("auth: Revoking ungranted role ops for user bob\n")),
    S("user", "get", "bob", want=OK("User: bob\nRoles:  app\n")),
    S("user", "revoke", "nobody", "--roles", "app", want=ERR("auth: User nobody does not exist.\n")),
    S("user", "grant", "nobody", "--roles", "app", want=ERR("auth: User nobody does not exist.\n")),
    # a role that does not exist is granted all the same (one role "app,ops": no splitting),
    # and the user cannot be read any more
    S("user", "add", "frank:pw", want=OK("User frank created\n")),
    S("user", "grant", "frank", "--roles", "app,ops", want=OK("User frank updated\n")),
    S("user", "get", "frank", want=ERR("auth: Role app,ops does not exist.\n")),
    S("user", "list", want=OK("alice\nbob\nfrank\nsp ace\n\u00fcn\u00ef\n")),
    S("user", "remove", "frank", want=OK("User frank removed\n")),
    S("role", "remove", "ops", want=OK("Role ops removed\n")),
    S("role", "remove", "ops", want=ERR("auth: Role ops doesn't exist.\n")),
    S("role", "remove", "root", want=ERR("auth: Cannot modify role root: is root role.\n")),
    S("user", "get", "bob", want=OK("User: bob\nRoles:  app\n")),
    # ---- --debug: the requests as cURL commands (the bodies as Go's encoder writes them)
    S("--debug", "--no-sync", "role", "grant", "app", "--path", "/dbg/<&>\u00e9", "--read"),
    S("--debug", "--no-sync", "user", "add", 'hank:p"w\\<'),
    S("--debug", "--no-sync", "user", "grant", "hank", "--roles", "app",
      want=OK_DEBUG("User hank updated\n", 'PUT <url>/v2/auth/users/hank -d '
                    '"{\\"user\\":\\"hank\\",\\"roles\\":null,\\"grant\\":[\\"app\\"]}"')),
    S("--debug", "--no-sync", "user", "get", "hank",
      want=OK_DEBUG("User: hank\nRoles:  app\n", "GET <url>/v2/auth/users/hank")),
    S("--debug", "--no-sync", "role", "list"),
    S("--debug", "--no-sync", "auth", "disable"),
    S("user", "remove", "hank", want=OK("User hank removed\n")),
    S("role", "revoke", "app", "--path", "/dbg/<&>\u00e9", "--read", want=OK("Role app updated\n")),
    # ---- auth
    S("auth", "disable", want=ERR("auth: already disabled\n")),
    S("auth", "enable", want=ERR("auth: No root user available, please create one\n")),
    S("user", "add", "root:rootpw", want=OK("User root created\n")),
    S("auth", "enable", want=OK("Authentication Enabled\n")),
    S("auth", "enable", want=ERR(NO_CREDS)),
    S("user", "list", want=ERR(NO_CREDS)),
    S("user", "get", "alice", want=ERR(NO_CREDS)),
    S("role", "list", want=ERR("unexpected status code 401\n")),
    S("role", "add", "x", want=ERR(NO_CREDS)),
    S("-u", "root:wrong", "user", "list", want=ERR(NO_CREDS)),
    S("-u", "alice:other", "user", "list", want=ERR(NO_CREDS)),
    S("-u", "root:rootpw", "user", "list", want=OK("alice\nbob\nroot\nsp ace\n\u00fcn\u00ef\n")),
    S("-u", "root:rootpw", "role", "list", want=OK("app\nguest\nroot\n")),
    S("-u", "root:rootpw", "role", "get", "guest",
      want=OK("Role: guest\nKV Read:\n\t/*\nKV Write:\n\t/*\n")),
    S("-u", "root:rootpw", "role", "revoke", "guest", "--path", "/*", "--rw",
      want=OK("Role guest updated\n")),
    S("-u", "root:rootpw", "role", "remove", "guest", want=OK("Role guest removed\n")),
    S("-u", "alice:other", "set", "/app/x", "1", want=OK("1\n")),
    S("-u", "alice:other", "get", "/app/x", want=OK("1\n")),
    S("-u", "alice:other", "set", "/other", "1", want=(4, "", KEY_NO_AUTH)),
    S("-u", "alice:alicepw", "get", "/app/x", want=(4, "", KEY_NO_AUTH)),
    S("get", "/app/x", want=(4, "", KEY_NO_AUTH)),
    S("-u", "bob:newbobpw", "get", "/pub", want=(4, "", "Error:  100: Key not found (/pub) [<index>]\n")),
    # the password for --username asked for, then the new user's
    S("-u", "root", "user", "add", "gina", stdin=b"rootpw\nginapw\n",
      want=(0, "Password: \nNew password: \nUser gina created\n", STTY * 2)),
    S("-u", "root", "user", "passwd", "gina", stdin=b"rootpw\nginapw2\n",
      want=(0, "Password: \nNew password: \nPassword updated\n", STTY * 2)),
    S("-u", "root", "user", "passwd", "gina", stdin=b"wrong\nx\n",
      want=(1, "Password: \nNew password: \n", STTY * 2 + NO_CREDS)),
    S("-u", "gina:ginapw2", "user", "get", "gina", want=ERR(NO_CREDS)),
    S("-u", "root:rootpw", "user", "remove", "root",
      want=ERR("auth: Cannot delete root user while auth is enabled.\n")),
    S("-u", "root:rootpw", "auth", "disable", want=OK("Authentication Disabled\n")),
    S("auth", "disable", want=ERR("auth: already disabled\n")),
    S("user", "list", want=OK("alice\nbob\ngina\nroot\nsp ace\n\u00fcn\u00ef\n")),
    S("role", "list", want=OK("app\nroot\n")),
    # ---- no server
    S("--endpoints", "http://127.0.0.1:1", "user", "list",
      want=(2, "", "Error:  %s\nerror #0: dial tcp 127.0.0.1:1: connect: connection refused\n\n"
            % refused("http://127.0.0.1:1"))),
    S("--no-sync", "--endpoints", "http://127.0.0.1:1", "role", "get", "app",
      want=ERR(refused("http://127.0.0.1:1") + "\n")),
    S("--no-sync", "--endpoints", "http://127.0.0.1:1", "role", "add", "app",
      want=ERR(refused("http://127.0.0.1:1") + "\n")),
    S("--no-sync", "--endpoints", "http://127.0.0.1:1", "auth", "enable",
      want=ERR(refused("http://127.0.0.1:1") + "\n")),
]


def normalise(res, srv, ctl):
    rc, out, err = res

    def n(s):
        s = s.replace(srv.url, "<url>")
        if ctl:
            s = re.sub(r"\bquorumctl\b", "etcdctl", s)
        s = re.sub(r"(VERSION:\n   )\S+\n", r"\1<version>\n", s)
        s = re.sub(r"Key not found \(([^)]*)\) \[\d+\]", r"Key not found (\1) [<index>]", s)
        return s
    return rc, n(out), n(err)


def auth_api_served(srv):
    st, _, _ = srv.request("GET", "/v2/auth/enable")
    return st != 404


@pytest.fixture(params=SERVER_KINDS)
def two_servers(request, make_server):
    """Two fresh servers of one kind: one for etcdctl, one for quorumctl."""
    kind = request.param
    if not cluster.etcdctl_binary():
        pytest.skip("etcdctl not found")
    if kind == "quorumd" and not os.path.exists(cluster.quorumd_binary()):
        pytest.skip("quorumd binary %s not found" % cluster.quorumd_binary())
    first = make_server(kind=kind)
    if not auth_api_served(first):
        pytest.skip("%s does not serve the v2 auth API (GET /v2/auth/enable: 404)" % kind)
    return first, make_server(kind=kind)


def fmt(res):
    return "rc=%s\n    stdout: %r\n    stderr: %r" % res


@pytest.mark.time_limit(300)
def test_user_role_auth_like_etcdctl(two_servers):
    ref_srv, ctl_srv = two_servers
    diffs = []
    for args, stdin, want in SCRIPT:
        ref = normalise(run(cluster.etcdctl_binary(), ref_srv.url, args, None, stdin), ref_srv, False)
        got = normalise(run(quorumctl_binary(), ctl_srv.url, args, None, stdin), ctl_srv, True)
        label = " ".join(repr(a) if (not a or " " in a) else a for a in args)
        if stdin:
            label += " <<< %r" % stdin
        if want is not None and ref != want:
            diffs.append("### %s\n  etcdctl itself: %s\n  expected:       %s" % (label, fmt(ref), fmt(want)))
        if got != ref:
            diffs.append("### %s\n  etcdctl:   %s\n  quorumctl: %s" % (label, fmt(ref), fmt(got)))
    assert not diffs, "%d difference(s):\n\n%s" % (len(diffs), "\n\n".join(diffs))


# --------------------------------------------------------------------------- odd answers
# What a server other than etcd might answer: both programs run with --no-sync against a small
# HTTP server that answers from a table, so that the reading of answers (Go's encoding/json:
# syntax errors, type errors, field names in any case, nil and empty lists) is compared too, and
# the requests both send (method, path, Content-Type, body, credentials) are recorded and must
# be the same.

class FakeServer:
    """Answers (method, path) from self.answers: (status, body); 404 with Go's text otherwise."""

    def __init__(self):
        import http.server
        import threading
        fake = self
        self.answers = {}
        self.log = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def answer(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                fake.log.append((self.command, self.path, self.headers.get("Content-Type"),
                                 body, self.headers.get("Authorization")))
                status, data = fake.answers.get((self.command, self.path),
                                                (404, "404 page not found\n"))
                data = data.encode() if isinstance(data, str) else data
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_DELETE = do_POST = answer

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


U = "/v2/auth/users"
R = "/v2/auth/roles"
ROLE_R = '{"role":"r","permissions":{"kv":{"read":["/a"],"write":[]}}}'

# (arguments, {(method, path): (status, body)}, what etcdctl prints or None)
ODD = [
    # the user list
    (["user", "list"], {("GET", U): (200, '{"users":null}')}, OK("")),
    (["user", "list"], {("GET", U): (200, '{"USERS":[{"User":"a"},null,{"user":"b","roles":null}]}')},
     OK("a\n\nb\n")),
    (["user", "list"], {("GET", U): (200, '{"users":[{"user":"a","roles":["x"]}]}')},
     ERR("json: cannot unmarshal string into Go struct field userListEntry.users.roles of type "
         "client.Role\n")),
    (["user", "list"], {("GET", U): (200, '{"users":{}}')}, None),
    (["user", "list"], {("GET", U): (200, '[1]')}, None),
    (["user", "list"], {("GET", U): (200, '')}, ERR("unexpected end of JSON input\n")),
    (["user", "list"], {}, ERR("invalid character 'p' after top-level value\n")),
    # a user: roles as names or as role objects, or both (which neither reading accepts)
    (["user", "get", "a"], {("GET", U + "/a"): (200, '{"user":"a","roles":["x","y"]}')},
     OK("User: a\nRoles: x y\n")),
    (["user", "get", "a"], {("GET", U + "/a"): (200, '{"User":"b","ROLES":[{"role":"y"},null]}')},
     OK("User: b\nRoles:   y \n")),
    (["user", "get", "a"], {("GET", U + "/a"): (200, '{"user":"a","roles":["x",{"role":"y"}]}')},
     ERR("json: cannot unmarshal object into Go struct field User.roles of type string\n")),
    (["user", "get", "a"], {("GET", U + "/a"): (200, '{"user":7,"roles":[{"role":"y"}]}')}, None),
    (["user", "get", "a"], {("GET", U + "/a"): (200, 'null')}, OK("User: \nRoles: \n")),
    (["user", "get", "a"], {("GET", U + "/a"): (200, b'{"user":"a\xff\xc3","roles":["\xe2\x82"]}')},
     OK("User: a\ufffd\ufffd\nRoles: \ufffd\ufffd\n")),
    (["user", "get", "a"], {("GET", U + "/a"): (200, '{"user":"\\u00e9\\ud83d\\ude00\\ud800x\\/"}')},
     OK("User: \u00e9\U0001f600\ufffdx/\nRoles: \n")),
    (["user", "get", "a"], {("GET", U + "/a"): (200, '{"user":"\\udc00\\ud800\\ud800\\udc00\\\\u"}')},
     None),
    (["user", "get", "a"], {("GET", U + "/a"): (200, '"a"')}, None),
    # error answers: the "message", or Go's error when there is none to be read
    (["user", "get", "a"], {("GET", U + "/a"): (401, '{"message":5}')},
     ERR("json: cannot unmarshal number into Go struct field authError.message of type string\n")),
    (["user", "get", "a"], {("GET", U + "/a"): (403, 'null')}, ERR("\n")),
    (["user", "get", "a"], {("GET", U + "/a"): (403, '{"Message":"m","message":"n"}')}, ERR("n\n")),
    (["user", "get", "a"], {("GET", U + "/a"): (500, '{"message":"x"}')}, None),
    (["user", "get", "a"], {("GET", U + "/a"): (503, '')}, None),
    (["user", "get", "a"], {("GET", U + "/a"): (501, '')}, None),
    (["user", "add", "a:b"], {("PUT", U + "/a"): (202, '{"message":"accepted?"}')},
     ERR("accepted?\n")),
    (["user", "remove", "a"], {("DELETE", U + "/a"): (201, '')}, OK("User a removed\n")),
    (["user", "grant", "a", "--roles", "x"], {("PUT", U + "/a"): (201, '{"user":"a"}')}, ERR("\n")),
    # urfave/cli drops the first empty value of a list that is not just [""]
    (["user", "revoke", "a", "--roles", "x", "--roles", ""],
     {("PUT", U + "/a"): (200, '{"user":"a","roles":[]}')}, OK("User a updated\n")),
    (["user", "revoke", "a", "--roles", "", "--roles", "y", "--roles", ""],
     {("PUT", U + "/a"): (200, '{"user":"a","roles":[]}')}, OK("User a updated\n")),
    (["user", "grant", "a", "--roles="], {("PUT", U + "/a"): (200, '{"user":"a"}')},
     OK("User a updated\n")),
    # names in the path, escaped as Go escapes them
    (["user", "get", "x?y#z%2F \u00e9"], {}, None),
    (["user", "remove", "./a/../b/"], {("DELETE", U + "/b"): (200, '')}, OK("User ./a/../b/ removed\n")),
    (["role", "get", ".."], {}, None),
    (["user", "add", "\udcff\u00e9:\tp\x01<"], {}, None),   # \udcff: the byte 0xff
    # roles
    (["role", "get", "r"], {("GET", R + "/r"): (200, ROLE_R)},
     OK("Role: r\nKV Read:\n\t/a\nKV Write:\n")),
    (["role", "get", "r"], {("GET", R + "/r"): (200, '{"role":"r","permissions":{"kv":{"read":"/a"}}}')},
     ERR("json: cannot unmarshal string into Go struct field rwPermission.permissions.kv.read of "
         "type []string\n")),
    (["role", "get", "r"], {("GET", R + "/r"): (200, '{"role":"r","permissions":[]}')}, None),
    (["role", "get", "r"], {("GET", R + "/r"): (200, '{"role":"r","grant":5}')}, None),
    (["role", "list"], {("GET", R): (200, '{"roles":[{"role":"a"},{"role":5}]}')},
     ERR("json: cannot unmarshal number into Go struct field Role.roles.role of type string\n")),
    (["role", "list"], {("GET", R): (200, '{"roles":[{"role":"a"},null,{"Role":"c"}]}')},
     OK("a\n\nc\n")),
    (["role", "list"], {("GET", R): (403, '{"message":"no"}')}, ERR("unexpected status code 403\n")),
    (["role", "add", "r"], {("GET", R + "/r"): (200, 'xx'), ("PUT", R + "/r"): (201, '')},
     OK("Role r created\n")),
    (["role", "add", "r"], {("GET", R + "/r"): (200, '{}')}, ERR("Role r already exists\n")),
    # the role as the server has it after the change equals the one before: "unchanged"
    # (etcd refuses such a change instead), nil and empty lists being different
    (["role", "grant", "r", "--path", "/a", "--read"],
     {("GET", R + "/r"): (200, ROLE_R), ("PUT", R + "/r"): (200, ROLE_R)},
     OK("Role unchanged; already grantedRole r updated\n")),
    (["role", "revoke", "r", "--path", "/a", "--rw"],
     {("GET", R + "/r"): (200, ROLE_R), ("PUT", R + "/r"): (200, ' ' + ROLE_R + '\n')},
     OK("Role unchanged; already revokedRole r updated\n")),
    (["role", "grant", "r", "--path", "/a", "--write"],
     {("GET", R + "/r"): (200, ROLE_R),
      ("PUT", R + "/r"): (200, '{"role":"r","permissions":{"kv":{"read":["/a"],"write":null}}}')},
     OK("Role r updated\n")),
    (["role", "grant", "r", "--path", "/a", "--write"],
     {("GET", R + "/r"): (200, ROLE_R),
      ("PUT", R + "/r"): (200, ROLE_R[:-1] + ',"grant":null}')},
     OK("Role unchanged; already grantedRole r updated\n")),
    (["role", "grant", "r", "--path", "/a", "--write"],
     {("GET", R + "/r"): (200, ROLE_R),
      ("PUT", R + "/r"): (200, ROLE_R[:-1] + ',"grant":{}}')}, OK("Role r updated\n")),
    (["role", "grant", "r", "--path", "/a", "--write"],
     {("GET", R + "/r"): (200, ROLE_R), ("PUT", R + "/r"): (404, '{"message":"gone"}')},
     ERR("gone\n")),
    (["role", "revoke", "r", "--path", "/a/", "--read"], {("GET", R + "/r"): (404, '')},
     ERR("unexpected end of JSON input\n")),
    # auth
    (["auth", "enable"], {("PUT", "/v2/auth/enable"): (200, '')}, OK("Authentication Enabled\n")),
    (["auth", "disable"], {("DELETE", "/v2/auth/enable"): (201, 'x')},
     OK("Authentication Disabled\n")),
    (["auth", "enable"], {("PUT", "/v2/auth/enable"): (409, '{"message":"x"}')}, ERR("x\n")),
    (["auth", "enable"], {("PUT", "/v2/auth/enable"): (405, 'Method Not Allowed\n')},
     ERR("invalid character 'M' looking for beginning of value\n")),
    (["-u", "u:p:w", "auth", "disable"], {("DELETE", "/v2/auth/enable"): (200, '')}, None),
]

# Bodies that are not JSON, each given as the error answer of `user get a`: Go's syntax errors.
SYNTAX = [
    ('{"a" 1}', "invalid character '1' after object key"),
    ('{"a":1 "b"}', "invalid character '\"' after object key:value pair"),
    ('[1 2]', "invalid character '2' after array element"),
    ('{1:2}', "invalid character '1' looking for beginning of object key string"),
    ('{"a":1,}', "invalid character '}' looking for beginning of object key string"),
    ('[1,]', "invalid character ']' looking for beginning of value"),
    ('"abc', "unexpected end of JSON input"),
    ('{"a":', "unexpected end of JSON input"),
    ('"\\q"', "invalid character 'q' in string escape code"),
    ('"\\u12x4"', "invalid character 'x' in \\u hexadecimal character escape"),
    ('"a\x01"', "invalid character '\\x01' in string literal"),
    ('"a\tb"', "invalid character '\\t' in string literal"),
    # cut short: Go's scanner is given a space at the end
    ('tru', "invalid character ' ' in literal true (expecting 'e')"),
    ('[nul', "invalid character ' ' in literal null (expecting 'l')"),
    ('{"a":-', "invalid character ' ' in numeric literal"),
    ('1.', "invalid character ' ' after decimal point in numeric literal"),
    ('1e', "invalid character ' ' in exponent of numeric literal"),
    ('[1E+', "invalid character ' ' in exponent of numeric literal"),
    ('"\\', "invalid character ' ' in string escape code"),
    ('"\\u12', "invalid character ' ' in \\u hexadecimal character escape"),
    ('["a', "unexpected end of JSON input"),
    ('[1', "unexpected end of JSON input"),
    ('12', "json: cannot unmarshal number into Go value of type client.authError"),
    ('trux', "invalid character 'x' in literal true (expecting 'e')"),
    ('fals3', "invalid character '3' in literal false (expecting 'e')"),
    ('-x', "invalid character 'x' in numeric literal"),
    ('1.x', "invalid character 'x' after decimal point in numeric literal"),
    ('1ex', "invalid character 'x' in exponent of numeric literal"),
    ('01', "invalid character '1' after top-level value"),
    ('1 2', "invalid character '2' after top-level value"),
    ('<html>', "invalid character '<' looking for beginning of value"),
    ("'x'", "invalid character '\\'' looking for beginning of value"),
    ('\\', "invalid character '\\\\' looking for beginning of value"),
    ('\u00e9', "invalid character '\u00c3' looking for beginning of value"),
    (b'\x80', "invalid character '\\u0080' looking for beginning of value"),
    (b'\xa0', "invalid character '\\u00a0' looking for beginning of value"),
    (b'\x00', "invalid character '\\x00' looking for beginning of value"),
    (b'\x7f', "invalid character '\\x7f' looking for beginning of value"),
    ('\n\r\t ', "unexpected end of JSON input"),
    ('[' * 10001 + ']' * 10001, "invalid character '[' exceeded max depth"),
    ('[' * 10000 + ']' * 10000, "json: cannot unmarshal array into Go value of type client.authError"),
]
ODD += [(["user", "get", "a"], {("GET", U + "/a"): (400, body)}, ERR(msg + "\n"))
        for body, msg in SYNTAX]


@pytest.fixture
def fake_server():
    s = FakeServer()
    yield s
    s.close()


@pytest.mark.time_limit(300)
def test_odd_answers_read_like_etcdctl(fake_server):
    if not cluster.etcdctl_binary():
        pytest.skip("etcdctl not found")
    diffs = []
    for args, answers, want in ODD:
        fake_server.answers = answers
        runs = []
        for binary in (cluster.etcdctl_binary(), quorumctl_binary()):
            del fake_server.log[:]
            res = normalise(run(binary, fake_server.url, ["--no-sync"] + args), fake_server,
                            binary != cluster.etcdctl_binary())
            runs.append((res, list(fake_server.log)))
        (ref, ref_log), (got, got_log) = runs
        label = "%s with %r" % (" ".join(args), answers)
        if want is not None and ref != want:
            diffs.append("### %s\n  etcdctl itself: %s\n  expected:       %s" % (label, fmt(ref), fmt(want)))
        if got != ref:
            diffs.append("### %s\n  etcdctl:   %s\n  quorumctl: %s" % (label, fmt(ref), fmt(got)))
        if got_log != ref_log:
            diffs.append("### %s: requests\n  etcdctl:   %r\n  quorumctl: %r" % (label, ref_log, got_log))
    assert not diffs, "%d difference(s):\n\n%s" % (len(diffs), "\n\n".join(diffs))


# --------------------------------------------------------------------------- TLS files
@pytest.mark.time_limit(120)
def test_tls_flags_like_etcdctl(tls_etcd, pki):  # noqa: F811
    """The TLS flags and ETCDCTL_* variables apply to these commands as to the others, on an
    https etcd that wants a client certificate (steps that give the same answer twice, since both
    programs run on the same server)."""
    srv = tls_etcd(client_cert_auth=True)
    ca, crt, key = pki["ca.crt"], pki["client.crt"], pki["client.key"]
    tls = ["--ca-file", ca, "--cert-file", crt, "--key-file", key]
    env = {"ETCDCTL_CA_FILE": ca, "ETCDCTL_CERT_FILE": crt, "ETCDCTL_KEY_FILE": key}
    missing = os.path.join(os.path.dirname(ca), "missing.pem")
    cluster_fail = "client: etcd cluster is unavailable or misconfigured; error #0: %s\n\n"
    cases = [
        (tls + ["user", "add", "tls:pw"], None, OK("User tls created\n")),
        (tls + ["user", "get", "tls"], None, OK("User: tls\nRoles: \n")),
        (["user", "list"], env, OK("tls\n")),
        (["--no-sync", "role", "get", "root"], env, OK("Role: root\nKV Read:\n\t/*\nKV Write:\n\t/*\n")),
        (tls + ["auth", "disable"], None, ERR("auth: already disabled\n")),
        # no client certificate: the sync's failure is not a connection error, the request's
        # is printed as it is
        (["--ca-file", ca, "user", "list"], None, ERR(cluster_fail % BAD_CERT)),
        (["--ca-file", ca, "--no-sync", "role", "add", "r"], None, ERR(cluster_fail % BAD_CERT)),
        # unusable files: before any request, and before the arguments are looked at only
        # when there are some
        (["--ca-file", missing, "user", "list"], None,
         ERR("open %s: no such file or directory\n" % missing)),
        (["--ca-file", ca, "--cert-file", crt, "auth", "enable"], None,
         ERR("KeyFile and CertFile must both be present[key: , cert: %s]\n" % crt)),
        (["--ca-file", missing, "user", "get"], None, ERR("Please provide a username\n")),
    ]
    diffs = compare_cases(srv.url, cases)
    assert not diffs, "\n\n".join(diffs)
