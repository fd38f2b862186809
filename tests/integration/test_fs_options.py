"""quorumfs mount options and fstab usage, each with real mounts and real syscalls: -o ro,
uid=, gid=, umask=, allow_other; the mount.fuse3 path an fstab line `quorumfs#URL MNT
fuse.quorumfs OPTS` takes, and the mount.quorumfs / mount.fuse.quorumfs helper argv; a blocked
operation interrupted by a signal. Mounts are undone by the `mounts` fixture of test_fs.py.
"""
import errno
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

import cluster
from fs_inotify import Inotify, modified
from relay import Relay
from test_fs import (Mount, _HangingServer, _need_fuse, expect_errno, mounts, put,  # noqa: F401
                     quorumfs_binary, read_file, value, wait_for, write_file)

pytestmark = pytest.mark.time_limit(60)

NOBODY = 65534


def as_nobody(*argv):
    return subprocess.run(["setpriv", "--reuid=%d" % NOBODY, "--regid=%d" % NOBODY, "--clear-groups"]
                          + list(argv), capture_output=True, timeout=10)


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (other users, mount(8) helpers)")


def test_ro_refuses_changes_but_shows_remote_ones(module_server, mounts):  # noqa: F811
    s = module_server
    p = "/opt_ro"
    put(s, p + "/k", "v")
    os_dir = p + "/d"
    put(s, os_dir + "/x", "1")
    m = mounts(s, prefix=p, opts="ro")
    assert read_file(m.path("k")) == b"v"
    expect_errno(errno.EROFS, os.open, m.path("k"), os.O_WRONLY)
    expect_errno(errno.EROFS, os.open, m.path("new"), os.O_WRONLY | os.O_CREAT)
    expect_errno(errno.EROFS, os.mkdir, m.path("nd"))
    expect_errno(errno.EROFS, os.unlink, m.path("k"))
    expect_errno(errno.EROFS, os.rmdir, m.path("d"))
    expect_errno(errno.EROFS, os.rename, m.path("k"), m.path("k2"))
    expect_errno(errno.EROFS, os.truncate, m.path("k"), 0)
    expect_errno(errno.EROFS, os.setxattr, m.path("k"), "user.etcd.ttl", b"10")
    assert value(s, p + "/k") == "v"
    # remote changes still reach the mount and its watchers
    iw = Inotify(m.dir)
    try:
        put(s, p + "/k", "changed")
        iw.expect(modified("k"))
        assert read_file(m.path("k")) == b"changed"
    finally:
        iw.close()


def test_uid_gid_umask(module_server, mounts):  # noqa: F811
    s = module_server
    p = "/opt_ids"
    put(s, p + "/f", "v")
    put(s, p + "/d/x", "1")
    m = mounts(s, prefix=p, opts="uid=1234,gid=2345,umask=027")
    sf, sd, sr = os.stat(m.path("f")), os.stat(m.path("d")), os.stat(m.dir)
    assert (sf.st_uid, sf.st_gid, sf.st_mode & 0o7777) == (1234, 2345, 0o640)
    assert (sd.st_uid, sd.st_gid, sd.st_mode & 0o7777) == (1234, 2345, 0o750)
    assert (sr.st_uid, sr.st_mode & 0o7777) == (1234, 0o750)
    # defaults: the mounting user, 0644 / 0755
    m2 = mounts(s, prefix=p)
    sf = os.stat(m2.path("f"))
    assert (sf.st_uid, sf.st_gid, sf.st_mode & 0o7777) == (os.getuid(), os.getgid(), 0o644)
    r = subprocess.run([quorumfs_binary(), "mount", s.url, "/nonexistent", "-o", "umask=999"],
                       capture_output=True, timeout=10)
    assert r.returncode == 2 and b"usage" in r.stderr


@pytest.fixture
def open_mounts():
    """Mounts in a directory other users may enter (pytest's own temp dirs are 0700)."""
    base = tempfile.mkdtemp(prefix="qfs-other-", dir="/tmp")
    os.chmod(base, 0o755)
    made = []

    def make(server, prefix=None, opts=None):
        wd = os.path.join(base, "m%d" % len(made))
        os.makedirs(wd)
        os.chmod(wd, 0o755)
        m = Mount(wd, server.url, prefix=prefix, opts=opts)
        made.append(m)
        return m.start()
    yield make
    for m in made:
        m.cleanup()
    shutil.rmtree(base, ignore_errors=True)


def test_allow_other_and_permissions(module_server, open_mounts):
    need_root()
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is missing")
    mounts = open_mounts
    s = module_server
    p = "/opt_other"
    put(s, p + "/f", "public")
    plain = mounts(s, prefix=p)
    r = as_nobody("cat", plain.path("f"))
    assert r.returncode != 0 and b"Permission denied" in r.stderr    # FUSE: the mounter only
    other = mounts(s, prefix=p, opts="allow_other")
    r = as_nobody("cat", other.path("f"))
    assert r.returncode == 0 and r.stdout == b"public", r
    r = as_nobody("sh", "-c", "echo x > '%s'" % other.path("f"))     # 0644, owned by root
    assert r.returncode != 0 and b"Permission denied" in r.stderr
    closed = mounts(s, prefix=p, opts="allow_other,umask=077")
    r = as_nobody("cat", closed.path("f"))
    assert r.returncode != 0 and b"Permission denied" in r.stderr
    assert value(s, p + "/f") == "public"


def _unmount(path):
    subprocess.run(["fusermount3", "-u", "-z", path], timeout=10, capture_output=True)


def _daemon_gone(path):
    def gone():
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    with open("/proc/%s/cmdline" % pid, "rb") as f:
                        if path.encode() in f.read().split(b"\0"):
                            return False
                except OSError:
                    pass
        return True
    wait_for(gone, 10, "quorumfs to exit")


def test_fstab_line_through_mount_fuse3(module_server, tmp_path):
    need_root()
    helper = shutil.which("mount.fuse3") or "/sbin/mount.fuse3"
    if not os.path.exists(helper):
        pytest.skip("mount.fuse3 is missing")
    s = module_server
    put(s, "/opt_fstab/app/conf", "c")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ, PATH=os.path.dirname(quorumfs_binary()) + ":" + os.environ.get("PATH", ""))
    # what mount(8) runs for: quorumfs#URL MNT fuse.quorumfs prefix=/opt_fstab,ro,noauto,_netdev 0 0
    r = subprocess.run([helper, "quorumfs#" + s.url, str(mnt), "-o",
                        "rw,prefix=/opt_fstab,ro,noauto,_netdev,nodev,nosuid,umask=022",
                        "-t", "fuse.quorumfs"], env=env, capture_output=True, timeout=20)
    try:
        assert r.returncode == 0, r.stderr
        assert os.listdir(str(mnt)) == ["app"]
        assert read_file(str(mnt / "app" / "conf")) == b"c"
        expect_errno(errno.EROFS, os.mkdir, str(mnt / "x"))
        with open("/proc/mounts") as f:
            line = [l for l in f if l.split()[1] == str(mnt)][0]
        assert line.split()[2] == "fuse.quorumfs" and "nodev" in line and "nosuid" in line
    finally:
        _unmount(str(mnt))
        _daemon_gone(str(mnt))
    # (mount(8) runs its helpers with a fixed PATH: installed, quorumfs is found there, or as
    # /sbin/mount.fuse.quorumfs, which is the helper argv tested next)


def test_mount_quorumfs_helper_argv(module_server, tmp_path):
    s = module_server
    put(s, "/opt_helper/k", "h")
    helper = tmp_path / "mount.quorumfs"
    os.symlink(quorumfs_binary(), str(helper))
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run([str(helper), "quorumfs#" + s.url, str(mnt), "-n", "-o",
                        "defaults,prefix=/opt_helper,x-systemd.automount"], capture_output=True, timeout=20)
    try:
        assert r.returncode == 0, r.stderr
        assert read_file(str(mnt / "k")) == b"h"
        write_file(str(mnt / "k"), b"w")
        assert value(s, "/opt_helper/k") == "w"
    finally:
        _unmount(str(mnt))
        _daemon_gone(str(mnt))


def test_signal_interrupts_a_blocked_operation(mounts):  # noqa: F811
    hs = _HangingServer()
    try:
        m = mounts(hs.url, opts="op_timeout=20")
        # `stat` of a name the mirror does not have waits for the (never answering) cluster
        t0 = time.monotonic()
        p = subprocess.Popen(["stat", m.path("unknown")], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, preexec_fn=cluster.default_signals)
        time.sleep(0.5)
        assert p.poll() is None                      # blocked
        p.send_signal(signal.SIGINT)
        p.wait(timeout=10)
        took = time.monotonic() - t0
        assert took < 3.0, took                       # not the 20 s bound: the signal ended it
        assert p.returncode != 0
        # the mount still answers what it knows
        assert os.listdir(m.dir) == []
    finally:
        hs.close()


def test_a_first_endpoint_that_never_answers_leaves_op_timeout_for_the_next(module_server, mounts,  # noqa: F811
                                                                            tmp_path):
    """op_timeout bounds a whole operation: a listed member that accepts and never answers (one
    that holds requests while it catches up does that) gets a share of it, not all of it, and
    the next member answers in time; the mount's watch starts on the member that answered."""
    put(module_server, "/hang/k", "one")
    hs = _HangingServer(answer_first=False)
    try:
        t0 = time.monotonic()
        m = mounts(hs.url + "," + module_server.url, prefix="/hang",
                   opts="op_timeout=2,sync_interval=0")
        assert time.monotonic() - t0 < 3.0
        with open(m.path("k")) as f:
            assert f.read() == "one"
        # a remote change reaches the mount through its watch, not after the watch has first
        # waited op_timeout on the silent member
        put(module_server, "/hang/k", "two")
        deadline = time.monotonic() + 1.0
        while open(m.path("k")).read() != "two":
            assert time.monotonic() < deadline, "the remote change did not arrive within 1 s"
            time.sleep(0.05)
        with open(m.path("new"), "w") as f:
            f.write("three")
        assert value(module_server, "/hang/new") == "three"
        assert "did not answer within op_timeout" not in m.log()
    finally:
        hs.close()


def test_a_lone_member_slower_than_a_request_gets_the_whole_op_timeout(module_server, mounts):  # noqa: F811
    """A mount of one member gives up after op_timeout, not after the 2 s one request gets when
    another member could be asked instead: a write the member answers after 3 s (a disk stalled
    by other writers) is stored and its close succeeds. Before, it failed with EIO at 2 s."""
    slow = {"on": False}

    def meanwhile(data):
        if slow["on"] and data.startswith(b"PUT /v2/keys/slowlone/k"):
            time.sleep(3.0)
    relay = Relay(module_server.port, on_request=meanwhile)
    try:
        m = mounts(relay.url, prefix="/slowlone", opts="op_timeout=5,sync_interval=0")
        slow["on"] = True
        t0 = time.monotonic()
        with open(m.path("k"), "w") as f:
            f.write("late")
        assert 2.9 < time.monotonic() - t0 < 5.0
        assert value(module_server, "/slowlone/k") == "late"
    finally:
        relay.close()


def test_a_write_applied_by_an_attempt_that_timed_out_is_not_estale(module_server, mounts):  # noqa: F811
    """A close's write (with prevIndex: the value it read) reaches a member that applies it but
    whose answer is lost; after its share of op_timeout the mount sends it to the next member,
    where prevIndex no longer holds: its own first attempt changed the key. The key holds the
    value written, so close() succeeds (it was ESTALE, "changed in the store since it was
    opened"), and the value is written once. An unlink likewise succeeds (it was ENOENT)."""
    before = put(module_server, "/lost/k", "one")["modifiedIndex"]
    relay = Relay(module_server.port, lose_answers_to=("PUT", "DELETE"))
    try:
        m = mounts(relay.url + "," + module_server.url, prefix="/lost",
                   opts="op_timeout=3,sync_interval=0")
        with open(m.path("k"), "r+") as f:  # no O_TRUNC: the write is a compare-and-swap
            f.write("two")
        assert relay.lost == 1
        st, _, body = module_server.keys("GET", "/lost/k")
        assert body["node"]["value"] == "two"
        # the first change after "one" is the one there is
        st, _, first = module_server.keys("GET", "/lost/k", params={
            "wait": "true", "waitIndex": str(before + 1)})
        assert st == 200 and first["node"]["modifiedIndex"] == body["node"]["modifiedIndex"]
        assert "PUT /lost/k: an attempt that timed out was applied" in m.log()
        # a delete likewise: the next member has no such key, because of this delete itself
        # (a new mount: every request of its threads goes to the relay first)
        m2 = mounts(relay.url + "," + module_server.url, prefix="/lost",
                    opts="op_timeout=3,sync_interval=0")
        os.unlink(m2.path("k"))
        assert module_server.keys("GET", "/lost/k")[0] == 404
        assert not os.path.exists(m2.path("k"))
        assert "DELETE /lost/k: an attempt that timed out was applied" in m2.log()
        assert relay.lost == 2
    finally:
        relay.close()


def test_lww_close_wins_over_concurrent_changes(module_server, mounts):  # noqa: F811
    """-o lww: a file's value at close is written without the prevIndex check, so a
    concurrent change is overwritten instead of giving ESTALE (the default is in test_fs.py)."""
    s = module_server
    p = "/opt_lww"
    put(s, p + "/k", "base")
    m = mounts(s, prefix=p, opts="lww")
    fd = os.open(m.path("k"), os.O_RDWR)
    os.write(fd, b"mine")
    put(s, p + "/k", "theirs")
    os.close(fd)
    assert value(s, p + "/k") == "mine"
    # deleted while open: the close writes it again
    fd = os.open(m.path("k"), os.O_WRONLY | os.O_TRUNC)
    os.write(fd, b"again")
    st, _, _ = s.keys("DELETE", p + "/k")
    assert st == 200
    os.close(fd)
    assert value(s, p + "/k") == "again"
    wait_for(lambda: read_file(m.path("k")) == b"again", 5, "the file shows its value")


def test_write_clears_ttl(module_server, mounts):  # noqa: F811
    """-o write_clears_ttl: a rewrite is v2's plain update, which drops the TTL (by default the
    TTL is kept: test_fs.py)."""
    s = module_server
    p = "/opt_wct"
    put(s, p + "/k", "v1", ttl=100)
    m = mounts(s, prefix=p, opts="write_clears_ttl")
    write_file(m.path("k"), b"v2")
    st, _, body = s.keys("GET", p + "/k")
    assert st == 200 and body["node"]["value"] == "v2"
    assert "ttl" not in body["node"] and "expiration" not in body["node"]


def test_quiet_accepts_chmod_and_chown_and_keeps_nothing(module_server, mounts, tmp_path):  # noqa: F811
    """-o quiet (vfat's word): chmod and chown succeed and change nothing, so install(1), which
    makes its file 0600 first, and tools that chmod a temporary file work (without it they give
    EPERM: test_fs.py). The modes shown stay the mount's."""
    s = module_server
    p = "/opt_quiet"
    m = mounts(s, prefix=p, opts="quiet")
    src = tmp_path / "src.conf"
    src.write_text("a=1\n")
    r = subprocess.run(["install", "-m", "600", str(src), m.path("app.conf")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert value(s, p + "/app.conf") == "a=1\n"
    os.chmod(m.path("app.conf"), 0o600)
    if os.geteuid() == 0:                   # (the kernel refuses others a chown first)
        os.chown(m.path("app.conf"), 12345, 12345)
    st = os.stat(m.path("app.conf"))
    assert (st.st_mode & 0o777, st.st_uid) == (0o644, os.getuid())
    # without it, the same install fails with EPERM at its first chmod
    plain = mounts(s, prefix=p + "_plain")
    r = subprocess.run(["install", "-m", "600", str(src), plain.path("app.conf")],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "Operation not permitted" in r.stderr, r


def test_swapfiles_option_lets_swap_file_names_be_created(module_server, mounts):
    """By default a file named like vim's swap files (.NAME.swp) cannot be created (EACCES:
    test_fs.py's vim test); -o swapfiles makes it an ordinary name again, stored as any file
    (a binary value is still refused, EILSEQ at close)."""
    s = module_server
    p = "/opt_swap"
    m = mounts(s, prefix=p, opts="swapfiles")
    write_file(m.path(".notes.swp"), b"text")
    assert value(s, p + "/.notes.swp") == "text"
    fd = os.open(m.path(".bin.swo"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    expect_errno(errno.EILSEQ, os.write, fd, b"b0VIM 9.0\0\xff")
    expect_errno(errno.EILSEQ, os.close, fd)
    plain = mounts(s, prefix=p + "_plain")
    expect_errno(errno.EACCES, os.open, plain.path(".notes.swp"), os.O_WRONLY | os.O_CREAT, 0o644)
    assert sorted(os.listdir(m.path())) == [".notes.swp"]


def test_post_name_option(module_server, mounts, tmp_path):  # noqa: F811
    s = module_server
    p = "/opt_post"
    m = mounts(s, prefix=p, opts="post_name=+new")
    os.mkdir(m.path("q"))
    write_file(m.path("q", "+new"), b"job")
    write_file(m.path("q", ".post"), b"plain")  # an ordinary name now
    st, _, body = s.keys("GET", p + "/q", params={"sorted": "true"})
    nodes = body["node"]["nodes"]
    names = [os.path.basename(x["key"]) for x in nodes]
    assert names[0] == ".post" and nodes[0]["value"] == "plain"
    assert len(names) == 2 and len(names[1]) == 20 and names[1].isdigit() and nodes[1]["value"] == "job"
    assert sorted(os.listdir(m.path("q"))) == sorted(names)
    # a name with a slash (or empty) is refused
    for bad in ("post_name=a/b", "post_name="):
        r = subprocess.run([quorumfs_binary(), "mount", s.url, str(tmp_path), "-f", "-o", bad],
                           capture_output=True, timeout=10)
        assert r.returncode == 2 and b"usage" in r.stderr, r
