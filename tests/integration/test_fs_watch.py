"""quorumfs's watch: remote changes reach the kernel's caches at once.

Each mount uses -o attr_timeout=30, so without the watch's invalidations a cached dentry or
attribute would hide a change made through the HTTP API for 30 s; every check here must pass
within 0.5 s. Mounts are undone by the `mounts` fixture of test_fs.py.
"""
import errno
import http.server
import json
import os
import shutil
import socketserver
import threading
import time

import pytest

from test_fs import _need_fuse, mounts, put, missing  # noqa: F401  (fixtures used by name)

pytestmark = pytest.mark.time_limit(40)

LONG = "attr_timeout=30"
FAST = 0.5

_seq = [0]


@pytest.fixture
def wenv(module_server, mounts, request):  # noqa: F811
    _seq[0] += 1
    prefix = "/w%d_%s" % (_seq[0], request.node.name[:40])
    put(module_server, prefix + "/seed", "s")
    return module_server, mounts(module_server, prefix=prefix, opts=LONG), prefix


def within(cond, timeout=FAST, what="condition"):
    """COND() becomes true within TIMEOUT seconds (polled every 10 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return
        if time.monotonic() >= deadline:
            raise AssertionError("not within %.1f s: %s" % (timeout, what))
        time.sleep(0.01)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def size_of(path):
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def gone(path):
    try:
        os.stat(path)
    except OSError as e:
        return e.errno == errno.ENOENT
    return False


def delete(s, key, **params):
    st, _, body = s.keys("DELETE", key, params={k: str(v) for k, v in params.items()} or None)
    assert st == 200, (st, body)


def test_remote_put_updates_size_and_content_at_once(wenv):
    s, m, p = wenv
    put(s, p + "/a", "one")
    assert read(m.path("a")) == b"one"
    assert os.stat(m.path("a")).st_size == 3           # now cached for 30 s
    put(s, p + "/a", "three33")
    within(lambda: size_of(m.path("a")) == 7, what="st_size follows a remote PUT")
    assert read(m.path("a")) == b"three33"
    put(s, p + "/a", "x")                               # shrinking too
    within(lambda: size_of(m.path("a")) == 1 and read(m.path("a")) == b"x", what="shrunk value")


def test_remote_delete_removes_name_at_once(wenv):
    s, m, p = wenv
    put(s, p + "/gone", "v")
    put(s, p + "/d/x", "1")
    assert os.stat(m.path("gone")).st_size == 1
    assert os.stat(m.path("d", "x")).st_size == 1
    within(lambda: "gone" in os.listdir(m.dir), what="the create's event")   # the mirror's lag
    delete(s, p + "/gone")
    within(lambda: gone(m.path("gone")) and "gone" not in os.listdir(m.dir), what="deleted name")
    delete(s, p + "/d", recursive="true")              # one event for the whole directory
    within(lambda: gone(m.path("d")) and gone(m.path("d", "x")), what="deleted directory")
    assert "d" not in os.listdir(m.dir)


def test_remote_create_appears_at_once(wenv):
    s, m, p = wenv
    os.stat(m.path("seed"))
    os.makedirs(m.path("sub"))
    assert os.listdir(m.path("sub")) == []
    assert gone(m.path("new"))
    put(s, p + "/new", "hello")
    put(s, p + "/sub/deep/k", "42")                    # creates a directory on the way
    within(lambda: "new" in os.listdir(m.dir) and size_of(m.path("new")) == 5, what="new key")
    within(lambda: os.listdir(m.path("sub")) == ["deep"] and size_of(m.path("sub", "deep", "k")) == 2,
           what="new directory")
    assert read(m.path("new")) == b"hello"


def test_ttl_expiry_removes_file(wenv):
    s, m, p = wenv
    put(s, p + "/tmp", "t", ttl=1)
    assert os.stat(m.path("tmp")).st_size == 1
    deadline = time.monotonic() + 6
    while not missing(s, p + "/tmp"):
        assert time.monotonic() < deadline, "the key did not expire"
        time.sleep(0.02)
    within(lambda: gone(m.path("tmp")) and "tmp" not in os.listdir(m.dir), what="expired key")


def test_mount_survives_daemon_restart(make_server, mounts):  # noqa: F811
    s = make_server()
    put(s, "/k", "before")
    m = mounts(s, opts=LONG)
    assert read(m.path("k")) == b"before"
    assert os.stat(m.path("k")).st_size == 6
    s.kill9()
    time.sleep(0.3)                                     # the watch notices and backs off
    s.start()                                           # same data dir and port
    put(s, "/k", "after!!!")
    within(lambda: size_of(m.path("k")) == 8, timeout=5, what="change after the restart")
    assert read(m.path("k")) == b"after!!!"
    put(s, "/k", "again")                               # and it is watching again
    within(lambda: size_of(m.path("k")) == 5, what="next change after the restart")
    assert m.unmount() == 0


def test_mount_follows_a_store_whose_data_was_replaced(make_server, mounts):  # noqa: F811
    """The daemon restarted on an empty data dir (wiped, or another backup restored): its
    indexes start again below the mirror's. Before, the watch waited for an index the new store
    had not reached: the mount kept showing the 30 keys that were gone and never listed the
    keys made since. The watch now sees the member answer below the mirror's index, asks the
    cluster's index (a quorum read: a member only behind the others is not taken for a reset),
    and brings the mirror to the store: gone keys leave, a key the new store holds with the
    same value stays without an event, a changed one is changed."""
    s = make_server()
    for i in range(30):
        put(s, "/k%d" % i, "v%d" % i)
    m = mounts(s, opts=LONG)
    assert len(os.listdir(m.dir)) == 30
    assert read(m.path("k1")) == b"v1"
    before = s.index()
    s.kill9()
    shutil.rmtree(s.data_dir)
    s.start()                                           # same port, an empty store
    put(s, "/k1", "v1")                                 # the same value as before
    put(s, "/k2", "new")
    put(s, "/fresh", "f")
    within(lambda: sorted(os.listdir(m.dir)) == ["fresh", "k1", "k2"], timeout=6,
           what="the mirror brought to the new store")
    assert read(m.path("k2")) == b"new" and read(m.path("fresh")) == b"f"
    assert read(m.path("k1")) == b"v1"
    assert "the store's index went back from %d to" % before in m.log(), m.log()
    put(s, "/k3", "after")                              # and it is watching again
    within(lambda: os.path.exists(m.path("k3")), what="next create after the reset")
    assert read(m.path("k3")) == b"after"


class _ScriptedServer:
    """A v2 server that answers the mount's few requests as a test scripts them: the tree
    (self.trees: (index, nodes) answered in turn, the last one from then on), the watch stream
    (headers with X-Etcd-Index = self.member_index, then the events queued in self.events) and
    quorum reads (X-Etcd-Index = self.cluster_index)."""

    def __init__(self, trees, member_index, cluster_index):
        self.trees = list(trees)
        self.member_index, self.cluster_index = member_index, cluster_index
        self.events = []
        self.streams = 0
        self.quorum_reads = 0
        self.tree_reads = 0
        srv = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def answer(self, index, body):
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Etcd-Index", str(index))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                if "stream=true" in self.path:
                    srv.streams += 1
                    mine = srv.streams  # (a stream the mount left gets no events)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("X-Etcd-Index", str(srv.member_index))
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    deadline = time.monotonic() + 20
                    try:
                        while time.monotonic() < deadline:
                            if srv.events and mine == srv.streams:
                                data = json.dumps(srv.events.pop(0)).encode()
                                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                                self.wfile.flush()
                            time.sleep(0.01)
                    except OSError:
                        pass
                    self.close_connection = True
                elif "quorum=true" in self.path:
                    srv.quorum_reads += 1
                    self.answer(srv.cluster_index, {"action": "get", "node": {"dir": True}})
                else:
                    srv.tree_reads += 1
                    index, nodes = srv.trees[0] if len(srv.trees) == 1 else srv.trees.pop(0)
                    self.answer(index, {"action": "get", "node": {"dir": True, "nodes": nodes}})

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True

        self.httpd = S(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _node(key, value, index):
    return {"key": key, "value": value, "modifiedIndex": index, "createdIndex": index}


def test_a_member_only_behind_is_not_taken_for_a_store_that_went_back(mounts):  # noqa: F811
    """The member the watch talks to answers at index 8, below the mirror's 10, but the
    cluster (a quorum read) is at 12: that member is behind, not a new store. The mirror keeps
    what it has (no reset: /a stays, the tree is not read again), and the watch goes on with
    that member from index 11: its events arrive."""
    srv = _ScriptedServer([(10, [_node("/a", "1", 10)])], member_index=8, cluster_index=12)
    try:
        m = mounts(srv.url, opts=LONG + ",sync_interval=0")
        assert os.listdir(m.dir) == ["a"]
        within(lambda: srv.quorum_reads == 1 and srv.streams >= 2, timeout=5,
               what="the quorum read, then the watch again")
        srv.events.append({"action": "set", "node": _node("/b", "2", 11)})
        within(lambda: sorted(os.listdir(m.dir)) == ["a", "b"], timeout=5, what="the next event")
        assert read(m.path("a")) == b"1" and read(m.path("b")) == b"2"
        assert (srv.quorum_reads, srv.tree_reads) == (1, 1)
        assert "went back" not in m.log(), m.log()
    finally:
        srv.close()


def test_a_store_below_the_mirror_also_by_a_quorum_read_is_reloaded(mounts):  # noqa: F811
    """The same member at 8, and the cluster at 8 too: the store went back. The mirror is
    reloaded from a fresh GET (the new store has /z, not /a) and the watch goes on after its
    index: the event at 9 arrives."""
    srv = _ScriptedServer([(10, [_node("/a", "1", 10)]), (8, [_node("/z", "new", 7)])],
                          member_index=8, cluster_index=8)
    try:
        m = mounts(srv.url, opts=LONG + ",sync_interval=0")
        within(lambda: sorted(os.listdir(m.dir)) == ["z"], timeout=5, what="the new store")
        assert "the store's index went back from 10 to 8" in m.log(), m.log()
        within(lambda: srv.streams >= 2, timeout=5, what="the watch again")
        srv.events.append({"action": "set", "node": _node("/c", "3", 9)})
        within(lambda: sorted(os.listdir(m.dir)) == ["c", "z"], timeout=5,
               what="the event after the reset")
        assert read(m.path("c")) == b"3" and read(m.path("z")) == b"new"
        assert (srv.quorum_reads, srv.tree_reads) == (1, 2)
    finally:
        srv.close()
