"""quorumctl's --username / ETCDCTL_USERNAME against etcdctl v2's, on real etcd 3.4 with v2 auth.

The users are made through etcd's v2 auth API (PUT /v2/auth/users/root, a role "app" that may
read and write /app/*, a user "alice" with that role, PUT /v2/auth/enable). Then each case runs
`ETCDCTL_API=2 etcdctl` and quorumctl with the same arguments, variables and standard input
against the same server: stdout, stderr and the exit status must be equal, and the expected text
is checked too (a wrong password: "Error:  110: The request requires user authentication
(Insufficient credentials) [0]", exit 4).

The password prompt (--username user, no ":password"): etcdctl asks with speakeasy, which prints
"Password: " on stdout, runs `/bin/stty -echo` on the process's own standard streams, reads one
line from standard input and prints a newline. So it is driven here through a pipe, no terminal
needed; stty's complaints about the pipe ("Inappropriate ioctl for device") are part of what both
print.
"""
import json

import pytest

import cluster
from test_quorumctl import quorumctl_binary
from test_quorumctl_tls import run

NO_AUTH = "Error:  110: The request requires user authentication (Insufficient credentials) [0]\n"
STTY = "stty: 'standard input': Inappropriate ioctl for device\n" * 2


def _put(srv, path, obj=None):
    body = json.dumps(obj) if obj is not None else ""
    st, _, data = srv.request("PUT", path, body=body,
                              headers={"Content-Type": "application/json"})
    assert st in (200, 201), (path, st, data)


@pytest.fixture
def auth_etcd(make_server):
    if not cluster.etcdctl_binary():
        pytest.skip("etcdctl not found")
    srv = make_server(kind="etcd")
    _put(srv, "/v2/auth/users/root", {"user": "root", "password": "rootpw"})
    _put(srv, "/v2/auth/roles/app",
         {"role": "app", "permissions": {"kv": {"read": ["/app/*"], "write": ["/app/*"]}}})
    _put(srv, "/v2/auth/users/alice", {"user": "alice", "password": "alicepw", "roles": ["app"]})
    _put(srv, "/v2/auth/enable")
    # etcd's guest role keeps full access: take it away so that no credentials is refused too
    st, _, data = srv.request("PUT", "/v2/auth/roles/guest", headers={
        "Content-Type": "application/json", "Authorization": "Basic cm9vdDpyb290cHc="},
        body=json.dumps({"role": "guest", "revoke": {"kv": {"read": ["/*"], "write": ["/*"]}}}))
    assert st == 200, data
    return srv


@pytest.mark.time_limit(120)
def test_username_like_etcdctl(auth_etcd):
    url = auth_etcd.url
    cases = [
        # (args, env, stdin, want)
        (["--username", "alice:alicepw", "set", "/app/x", "1"], None, b"", (0, "1\n", "")),
        (["-u", "alice:alicepw", "get", "/app/x"], None, b"", (0, "1\n", "")),
        (["--no-sync", "-u", "alice:alicepw", "-o", "extended", "get", "/app/nothere"], None, b"",
         None),
        (["get", "/app/x"], {"ETCDCTL_USERNAME": "alice:alicepw"}, b"", (0, "1\n", "")),
        (["-u", "root:rootpw", "set", "/other", "o"], None, b"", (0, "o\n", "")),
        (["-u", "root:rootpw", "member", "list"], None, b"", None),
        # wrong password, unknown user, no user, no permission
        (["-u", "alice:wrong", "get", "/app/x"], None, b"", (4, "", NO_AUTH)),
        (["--no-sync", "-u", "alice:wrong", "set", "/app/x", "2"], None, b"", (4, "", NO_AUTH)),
        (["get", "/app/x"], {"ETCDCTL_USERNAME": "alice:wrong"}, b"", (4, "", NO_AUTH)),
        (["-u", "nobody:x", "get", "/app/x"], None, b"", (4, "", NO_AUTH)),
        (["get", "/app/x"], None, b"", (4, "", NO_AUTH)),
        (["-u", "alice:alicepw", "get", "/other"], None, b"", (4, "", NO_AUTH)),
        (["-u", "alice:alicepw", "set", "/other", "x"], None, b"", (4, "", NO_AUTH)),
        # the flag wins over the variable
        (["-u", "alice:alicepw", "get", "/app/x"], {"ETCDCTL_USERNAME": "alice:wrong"}, b"",
         (0, "1\n", "")),
        # the password asked for, read from standard input
        (["-u", "alice", "get", "/app/x"], None, b"alicepw\n", (0, "Password: \n1\n", STTY)),
        (["get", "/app/x"], {"ETCDCTL_USERNAME": "alice"}, b"  alicepw  \nmore\n",
         (0, "Password: \n1\n", STTY)),
        (["-u", "alice", "set", "/app/y", "v"], None, b"alicepw", (0, "Password: \nv\n", STTY)),
        (["-u", "alice", "get", "/app/x"], None, b"wrong\n", (4, "Password: \n", STTY + NO_AUTH)),
        (["-u", "alice", "get", "/app/x"], None, b"", (4, "Password: \n", STTY + NO_AUTH)),
    ]
    diffs = []
    for args, env, stdin, want in cases:
        ref = run(cluster.etcdctl_binary(), url, args, env, stdin)
        got = run(quorumctl_binary(), url, args, env, stdin)
        label = "%s %s <<< %r" % (env or "", " ".join(args), stdin)
        if want is not None and ref != want:
            diffs.append("### %s\netcdctl itself: %r\n  expected: %r" % (label, ref, want))
        if got != ref:
            diffs.append("### %s\n  etcdctl:   %r\n  quorumctl: %r" % (label, ref, got))
    assert not diffs, "\n\n".join(diffs)
