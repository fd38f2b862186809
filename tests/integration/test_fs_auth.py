"""quorumfs with /v2/auth on: -o username=USER[:PASSWORD] or -o password_file=PATH make its
requests (and its watch) as that user; what the user's roles refuse is EACCES, and a mount
without credentials is a guest. Mounts are undone by the `mounts` fixture of test_fs.py."""
import base64
import errno
import json
import os
import subprocess

import pytest

from fs_inotify import Inotify, modified
from test_fs import expect_errno, mounts, put, quorumfs_binary, read_file, write_file  # noqa: F401

pytestmark = pytest.mark.time_limit(60)

ROOT = {"Authorization": "Basic " + base64.b64encode(b"root:rp").decode()}


def _auth(s, path, obj, headers=None):
    st, _, body = s.request("PUT", path, body=json.dumps(obj) if obj is not None else None,
                            headers=headers)
    assert st in (200, 201), (path, st, body)


def test_a_mount_acts_as_its_v2_auth_user(server, mounts, tmp_path):  # noqa: F811
    s = server
    put(s, "/app/k", "v")
    put(s, "/secret/s", "x")
    _auth(s, "/v2/auth/users/root", {"user": "root", "password": "rp"})
    _auth(s, "/v2/auth/roles/app", {"role": "app", "permissions": {"kv": {
        "read": ["/app*"], "write": ["/app/k", "/app/d*"]}}})
    _auth(s, "/v2/auth/users/u", {"user": "u", "password": "up", "roles": ["app"]})
    _auth(s, "/v2/auth/enable", None)
    _auth(s, "/v2/auth/roles/guest", {"role": "guest", "revoke": {"kv": {
        "read": ["/*"], "write": ["/*"]}}}, ROOT)
    pw = tmp_path / "pw"
    pw.write_text("up\n")
    m = mounts(s, prefix="/app", opts="username=u,password_file=%s" % pw)
    assert read_file(m.path("k")) == b"v"
    write_file(m.path("k"), b"w")
    assert s.keys("GET", "/app/k", )[0] == 401  # (the test's own request is a guest's)
    st, _, body = s.request("GET", "/v2/keys/app/k", headers=ROOT)
    assert json.loads(body)["node"]["value"] == "w"
    os.mkdir(m.path("d"))
    assert sorted(os.listdir(m.dir)) == ["d", "k"]
    iw = Inotify(m.dir)  # the mount's watch is the user's too
    try:
        st, _, _ = s.request("PUT", "/v2/keys/app/k", body="value=remote",
                             headers={**ROOT, "Content-Type": "application/x-www-form-urlencoded"})
        assert st == 200
        iw.expect(modified("k"))
    finally:
        iw.close()
    assert read_file(m.path("k")) == b"remote"
    expect_errno(errno.EACCES, write_file, m.path("other"), b"1")  # not in the write list
    assert s.request("GET", "/v2/keys/app/other", headers=ROOT)[0] == 404
    # The password in the option works the same.
    m2 = mounts(s, prefix="/app", opts="username=u:up")
    assert read_file(m2.path("k")) == b"remote"
    write_file(m2.path("d", "f"), b"1")
    # What the user may not read cannot be mounted: the whole tree; /app without credentials
    # (a guest, who may do nothing now) or with a wrong password.
    for prefix, opts in (("/", "username=u:up"), ("/app", None), ("/app", "username=u:bad")):
        mnt = tmp_path / "refused"
        mnt.mkdir(exist_ok=True)
        argv = [quorumfs_binary(), "mount", s.url, str(mnt), "-f", "--prefix", prefix]
        r = subprocess.run(argv + (["-o", opts] if opts else []), capture_output=True, timeout=10)
        assert r.returncode == 1 and r.stderr == ("quorumfs: %s: Permission denied\n" % prefix).encode(), \
            (prefix, opts, r.returncode, r.stderr)


def test_credentials_options_are_checked(server, tmp_path):
    for opts, msg in (("username=u", b"needs a password"),
                      ("password_file=/x", b"needs -o username"),
                      ("username=u:p,password_file=/x", b"needs a password"),
                      ("username=u,password_file=/nonexistent/pw", b"/nonexistent/pw: No such file")):
        mnt = tmp_path / "mnt"
        mnt.mkdir(exist_ok=True)
        r = subprocess.run([quorumfs_binary(), "mount", server.url, str(mnt), "-f", "-o", opts],
                           capture_output=True, timeout=10)
        assert r.returncode == 2 and msg in r.stderr, (opts, r.returncode, r.stderr)
