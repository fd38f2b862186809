"""quorumfs: changes made elsewhere reach inotify as the events a local change gives.

`inotifywait -m -r MOUNTPOINT` watches each mount (fs_inotify.py). Changes made with the HTTP
API (and TTL expiries, and changes missed while the watch was down, found by a resync) must give
exactly the filtered event sequence the same change made locally through the mount gives; the
mount's own writes must give the kernel's events once (their echo on the watch stream is not
replayed). Mounts are undone by the `mounts` fixture of test_fs.py.
"""
import os
import signal
import subprocess
import time

import pytest
import requests

from fs_inotify import Inotify, created, deleted, mkdired, modified, settle_for_watch
from test_fs import _need_fuse, mounts, put, value, wait_for, write_file, read_file  # noqa: F401

pytestmark = pytest.mark.time_limit(60)

_seq = [0]


@pytest.fixture
def ienv(module_server, mounts, request):  # noqa: F811
    _seq[0] += 1
    prefix = "/i%d_%s" % (_seq[0], request.node.name[:30])
    put(module_server, prefix + "/seed", "s")
    m = mounts(module_server, prefix=prefix)
    iw = Inotify(m.dir)
    yield module_server, m, prefix, iw
    iw.close()


def delete(s, key, **params):
    st, _, body = s.keys("DELETE", key, params={k: str(v) for k, v in params.items()} or None)
    assert st == 200, (st, body)


def mkdir_api(s, key):
    st, _, body = s.keys("PUT", key, form={"dir": "true"})
    assert st == 201, (st, body)


def test_api_changes_give_the_events_of_local_changes(ienv):
    s, m, p, iw = ienv
    # the same steps, once through the mount and once through the API
    write_file(m.path("loc"), b"v1")
    write_file(m.path("loc"), b"v2")
    os.mkdir(m.path("locdir"))
    settle_for_watch(m.path("locdir"))
    write_file(m.path("locdir", "f"), b"x")
    os.unlink(m.path("loc"))
    os.unlink(m.path("locdir", "f"))
    os.rmdir(m.path("locdir"))
    local = (created("loc") + modified("loc") + mkdired("locdir") + created("locdir/f")
             + deleted("loc") + deleted("locdir/f") + deleted("locdir", isdir=True))
    iw.expect(local)
    iw.clear()

    put(s, p + "/api", "v1")
    iw.expect(created("api"))
    put(s, p + "/api", "v2")
    iw.expect(created("api") + modified("api"))
    mkdir_api(s, p + "/apidir")
    settle_for_watch(m.path("apidir"), iw=iw, name="apidir")
    put(s, p + "/apidir/f", "x")
    delete(s, p + "/api")
    iw.expect(created("api") + modified("api") + mkdired("apidir") + created("apidir/f") + deleted("api"))
    delete(s, p + "/apidir", recursive="true")        # one v2 event for the whole directory
    remote = (created("api") + modified("api") + mkdired("apidir") + created("apidir/f")
              + deleted("api") + deleted("apidir/f") + deleted("apidir", isdir=True))
    iw.expect(remote)
    assert [(k.replace("api", "loc"), e) for k, e in remote] == local
    # an empty value is created without a MODIFY, as `touch` does
    iw.clear()
    put(s, p + "/empty", "")
    iw.expect(created("empty", empty=True))
    # the content is there once the events are
    iw.clear()
    put(s, p + "/c", "content")
    iw.expect(created("c"))
    assert read_file(m.path("c")) == b"content"
    put(s, p + "/c", "changed!")
    iw.expect(created("c") + modified("c"))
    assert read_file(m.path("c")) == b"changed!"
    assert os.stat(m.path("c")).st_size == 8


def test_a_file_replaced_by_a_directory_gives_delete_then_create(ienv):
    """v2's set with dir=true replaces a file by a directory: a watcher sees the file go and
    the directory come, as after rm and mkdir (found by test_fs_differential: no event at all
    before, the applier's unlink met the directory's node)."""
    s, m, p, iw = ienv
    put(s, p + "/f", "abc")
    iw.expect(created("f"))
    iw.clear()
    st, _, body = s.keys("PUT", p + "/f", form={"dir": "true"})
    assert st == 200 and body["prevNode"]["value"] == "abc", (st, body)
    iw.expect(deleted("f") + mkdired("f"))
    assert os.path.isdir(m.path("f"))
    settle_for_watch(None, iw=iw, name="f")
    put(s, p + "/f/inner", "x")
    iw.expect(deleted("f") + mkdired("f") + created("f/inner"))
    assert read_file(m.path("f", "inner")) == b"x"


def test_deep_create_and_ttl_expiry(ienv):
    s, m, p, iw = ienv
    put(s, p + "/a/b/k", "v")                          # v2 makes a and a/b with the key's event
    # (not looked up meanwhile: a lookup that comes first takes the name, and its CREATE)
    wait_for(lambda: "a" in iw.per_path(), 3, "a's event")
    time.sleep(0.2)
    assert iw.per_path()["a"] == ["CREATE,ISDIR"]
    assert read_file(m.path("a", "b", "k")) == b"v"
    iw.clear()
    put(s, p + "/tmp", "t", ttl=1)
    iw.expect(created("tmp"))
    iw.expect(created("tmp") + deleted("tmp"), timeout=5)   # expiry: DELETE
    assert not os.path.exists(m.path("tmp"))


def test_own_writes_give_their_events_once(ienv):
    s, m, p, iw = ienv
    write_file(m.path("f"), b"one")
    with open(m.path("f"), "ab") as f:
        f.write(b"+")
    os.mkdir(m.path("d"))
    settle_for_watch(m.path("d"))
    os.rename(m.path("f"), m.path("d", "g"))
    os.unlink(m.path("d", "g"))
    os.rmdir(m.path("d"))
    # the kernel's events, once: the echoes on the watch stream change nothing
    iw.expect(created("f") + modified("f") + mkdired("d")
              + [("f", "MOVED_FROM"), ("d/g", "MOVED_TO")] + deleted("d/g") + deleted("d", isdir=True),
              settle=0.8, timeout=5)
    assert value(s, p + "/seed") == "s"


def test_two_mounts_see_each_others_writes(module_server, mounts):  # noqa: F811
    s = module_server
    p = "/two_mounts"
    put(s, p + "/seed", "s")
    a = mounts(s, prefix=p)
    b = mounts(s, prefix=p)
    iwa, iwb = Inotify(a.dir), Inotify(b.dir)
    try:
        write_file(a.path("x"), b"from a")
        iwb.expect(created("x"))
        assert read_file(b.path("x")) == b"from a"
        write_file(b.path("x"), b"from b, longer")
        iwa.expect(created("x") + modified("x"))
        assert read_file(a.path("x")) == b"from b, longer"
        os.mkdir(a.path("d"))
        iwb.expect(created("x") + modified("x") + mkdired("d"))
        os.unlink(b.path("x"))
        iwa.expect(created("x") + modified("x") + mkdired("d") + deleted("x"))
        assert not os.path.exists(a.path("x"))
        # each saw its own changes once, the other's once
        iwa.expect(created("x") + modified("x") + mkdired("d") + deleted("x"), settle=0.5)
        iwb.expect(created("x") + modified("x") + mkdired("d") + deleted("x"), settle=0.5)
    finally:
        iwa.close()
        iwb.close()


def _stop(m):
    os.kill(m.proc.pid, signal.SIGSTOP)


def _cont(m):
    os.kill(m.proc.pid, signal.SIGCONT)


def test_history_cleared_resync_replays_the_difference(make_server, mounts):  # noqa: F811
    s = make_server()
    p = "/r"
    put(s, p + "/keep", "k")
    put(s, p + "/change", "old")
    put(s, p + "/gone", "g")
    put(s, p + "/gonedir/x", "1")
    put(s, p + "/becomesdir", "file")
    m = mounts(s, prefix=p)
    os.listdir(m.path("gonedir"))
    iw = Inotify(m.dir)
    try:
        _stop(m)                       # the stream stalls...
        try:
            s.kill9()                  # ...and is cut while quorumfs cannot notice
            s.start()
            put(s, p + "/change", "new value")
            put(s, p + "/new", "n")
            st, _, _ = s.keys("DELETE", p + "/gone")
            assert st == 200
            st, _, _ = s.keys("DELETE", p + "/gonedir", params={"recursive": "true"})
            assert st == 200
            put(s, p + "/newdir/y", "2")
            st, _, _ = s.keys("PUT", p + "/becomesdir", form={"dir": "true"})  # over the file
            assert st == 200
            sess = requests.Session()  # >1000 writes: waitIndex leaves the history (401)
            for i in range(1100):
                r = sess.put(s.url + "/v2/keys/other/churn", data={"value": str(i)}, timeout=5)
                assert r.status_code in (200, 201)
        finally:
            _cont(m)
        wait_for(lambda: "resyncing" in m.log(), 10, "the 401 resync")
        want = {"change": modified("change"), "new": created("new"), "gone": deleted("gone"),
                "gonedir/x": deleted("gonedir/x"), "gonedir": deleted("gonedir", isdir=True),
                "newdir": mkdired("newdir"),
                "becomesdir": deleted("becomesdir") + mkdired("becomesdir")}
        want = {k: [e for _, e in v] for k, v in want.items()}

        def done():
            got = iw.per_path()
            return all(got.get(k) == v for k, v in want.items())
        wait_for(done, 8, "the resync's events")
        time.sleep(0.3)
        got = iw.per_path()
        assert {k: got.get(k) for k in want} == want, iw.raw()
        assert "keep" not in got
        assert read_file(m.path("change")) == b"new value"
        assert sorted(os.listdir(m.dir)) == ["becomesdir", "change", "keep", "new", "newdir"]
        assert os.path.isdir(m.path("becomesdir"))
        assert read_file(m.path("newdir", "y")) == b"2"
        # and the watch goes on after the resync
        iw.clear()
        put(s, p + "/keep", "k2")
        iw.expect(modified("keep"))
    finally:
        iw.close()


def test_daemon_restart_replays_missed_changes(make_server, mounts):  # noqa: F811
    s = make_server()
    p = "/rs"
    put(s, p + "/a", "1")
    put(s, p + "/b", "2")
    m = mounts(s, prefix=p)
    iw = Inotify(m.dir)
    try:
        s.kill9()
        time.sleep(0.3)                 # the watch notices and backs off
        s.start()                       # same data dir and port
        put(s, p + "/a", "changed")     # before the watch is back (backoff)
        put(s, p + "/c", "3")
        st, _, _ = s.keys("DELETE", p + "/b")
        assert st == 200
        iw.expect(modified("a") + created("c") + deleted("b"), timeout=8)
        assert read_file(m.path("a")) == b"changed"
        assert sorted(os.listdir(m.dir)) == ["a", "c"]
        # unmount leaves no process behind
        assert m.unmount() == 0
        assert m.proc.poll() is not None
    finally:
        iw.close()


def test_inval_mode_gives_content_but_no_events(module_server, mounts):  # noqa: F811
    s = module_server
    p = "/inval_mode"
    put(s, p + "/k", "1")
    m = mounts(s, prefix=p, opts="notify=inval")
    iw = Inotify(m.dir)
    try:
        put(s, p + "/k", "22")
        put(s, p + "/n", "new")
        wait_for(lambda: os.path.exists(m.path("n")) and read_file(m.path("k")) == b"22", 3, "changes")
        time.sleep(0.3)
        assert iw.kinds() == []
    finally:
        iw.close()


def _render(src, out):
    """The confd-style renderer: every file below SRC as `relpath=value`, sorted, written whole
    (rename) to OUT, again after every inotify event."""
    script = r'''
import os, subprocess, sys
src, out = sys.argv[1], sys.argv[2]
def render():
    lines = []
    for d, dirs, files in os.walk(src):
        for f in files:
            p = os.path.join(d, f)
            try:
                with open(p) as fh:
                    lines.append("%s=%s" % (os.path.relpath(p, src), fh.read()))
            except OSError:
                pass
    tmp = out + ".tmp"
    with open(tmp, "w") as fh:
        fh.write("".join(sorted(l + "\n" for l in lines)))
    os.replace(tmp, out)
iw = subprocess.Popen(["inotifywait", "-m", "-r", "-q", "-e", "close_write,delete,create,moved_to",
                       src], stdout=subprocess.PIPE)
render()
sys.stdout.write("ready\n"); sys.stdout.flush()
for line in iw.stdout:
    render()
'''
    # its own process group, so that stopping it also stops its inotifywait
    return subprocess.Popen(["/usr/bin/python3", "-c", script, src, out], stdout=subprocess.PIPE,
                            start_new_session=True)


def test_confd_style_renderer_follows_api_changes(module_server, mounts, tmp_path):  # noqa: F811
    s = module_server
    p = "/confd"
    put(s, p + "/app/port", "80")
    m = mounts(s, prefix=p)
    out = str(tmp_path / "app.conf")
    r = _render(m.dir, out)
    try:
        assert r.stdout.readline() == b"ready\n"
        time.sleep(0.3)

        def conf():
            try:
                with open(out) as f:
                    return f.read()
            except OSError:
                return None
        assert conf() == "app/port=80\n"
        put(s, p + "/app/host", "example.org")
        put(s, p + "/app/port", "8080")
        put(s, p + "/app/tmp", "soon gone", ttl=1)
        put(s, p + "/db/url", "pg://x")
        wait_for(lambda: conf() == "app/host=example.org\napp/port=8080\napp/tmp=soon gone\ndb/url=pg://x\n",
                 5, "the rendered config")
        st, _, _ = s.keys("DELETE", p + "/app/host")
        assert st == 200
        put(s, p + "/db/url", "pg://y")
        # the expiry and the delete and the update all re-render
        wait_for(lambda: conf() == "app/port=8080\ndb/url=pg://y\n", 8, "the final config")
    finally:
        os.killpg(r.pid, signal.SIGTERM)
        r.wait(timeout=5)


def test_remote_change_right_after_mounting_a_new_prefix(module_server, mounts):  # noqa: F811
    """A prefix that does not exist is created by the mount (a PUT from its main thread, which
    is no FUSE request). That write's record used to stay until the main thread happened to
    serve a FUSE request, and until then every event below the prefix waited for it (up to
    2 x op_timeout + 1 s): a remote change reached inotify 11 s late, and an unmount waited as
    long. With 16 request threads the main thread rarely serves the few requests made here."""
    s = module_server
    for i in range(4):
        p = "/newprefix%d_%d" % (os.getpid(), i)
        st, _, _ = s.keys("GET", p)
        assert st == 404
        m = mounts(s, prefix=p, opts="threads=16")
        iw = Inotify(m.dir)
        try:
            time.sleep(0.3)
            put(s, p + "/k", "v")
            iw.expect(created("k"), timeout=2.0, settle=0.1)
        finally:
            iw.close()
        t0 = time.monotonic()
        assert m.unmount() == 0
        assert time.monotonic() - t0 < 3.0
