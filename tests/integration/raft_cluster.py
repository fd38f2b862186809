"""Several real quorumd members on loopback, for the Raft whole-program tests.

RaftCluster(tmpdir, n) starts n members with one --initial-cluster; each member is a
cluster.Server whose argv names every member. Members run with QUORUMD_TEST_HOOKS=1 so a test
can cut Raft traffic between two members, or lose single messages (POST /debug/partition), and with short timeouts so
elections take a fraction of a second.
"""
import json
import os
import shutil
import threading
import time

import pytest

import cluster

HEARTBEAT_MS = 50
ELECTION_MS = 500


class Member(cluster.Server):
    def __init__(self, owner, workdir, name, extra_args=()):
        super().__init__(workdir, kind="quorumd", name=name, extra_args=extra_args)
        self.owner = owner
        self.state = "new"

    @property
    def peer_url(self):
        return "%s://127.0.0.1:%d" % (self.owner.peer_scheme, self.peer_port)

    def argv(self):
        args = [self.binary,
                "--name", self.name,
                "--data-dir", self.data_dir,
                "--listen-client-urls", self.url,
                "--advertise-client-urls", self.url,
                "--listen-peer-urls", self.peer_url,
                "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", self.owner.initial_cluster(),
                "--initial-cluster-state", self.state,
                "--initial-cluster-token", "test-token",
                "--heartbeat-interval", str(HEARTBEAT_MS),
                "--election-timeout", str(ELECTION_MS)]
        return args + self.extra_args

    def _spawn_and_wait(self, timeout):
        os.environ["QUORUMD_TEST_HOOKS"] = "1"
        try:
            return super()._spawn_and_wait(timeout)
        finally:
            os.environ.pop("QUORUMD_TEST_HOOKS", None)

    def stats_self(self):
        st, _, body = self.request("GET", "/v2/stats/self", timeout=2)
        return json.loads(body) if st == 200 else None

    def member_id(self):
        return self.stats_self()["id"]

    def partition(self, peer_id, drop=True):
        st, _, body = self.request("POST", "/debug/partition?peer=%s&drop=%d"
                                   % (peer_id, 1 if drop else 0))
        assert st == 200, body

    def break_connection(self, peer_id):
        """This member's message connection to peer_id is reset (RST: the bytes not yet sent
        or not yet read are lost; the next message opens a new connection)."""
        st, _, body = self.request("POST", "/debug/partition?peer=%s&break=1" % peer_id)
        assert st == 200, body

    def drop_next(self, peer_id, msg_type, count=1):
        """The next `count` peer messages of msg_type ("read_index", "app", ...) this member
        sends to peer_id are lost; the connection stays up."""
        st, _, body = self.request("POST", "/debug/partition?peer=%s&type=%s&count=%d"
                                   % (peer_id, msg_type, count))
        assert st == 200, body


class RaftCluster:
    def __init__(self, workdir, n, extra_args=(), peer_scheme="http"):
        self.workdir = workdir
        self.peer_scheme = peer_scheme  # "https": members talk TLS (extra_args name the files)
        self.members = [Member(self, os.path.join(workdir, "m%d" % i), "m%d" % i, extra_args)
                        for i in range(n)]
        self.excluded = set()  # names left out of --initial-cluster (to be added later)
        self._pick_ports()

    def initial_cluster(self):
        return ",".join("%s=%s" % (m.name, m.peer_url) for m in self.members
                        if m.name not in self.excluded)

    def add_member_object(self, name, extra_args=()):
        m = Member(self, os.path.join(self.workdir, name), name, extra_args)
        m.client_port = cluster.free_port()
        m.peer_port = cluster.free_port()
        self.members.append(m)
        return m

    def _pick_ports(self):
        taken = set()
        for m in self.members:
            m.client_port = cluster.free_port()
            m.peer_port = cluster.free_port()
            while m.peer_port == m.client_port or {m.client_port, m.peer_port} & taken:
                m.client_port, m.peer_port = cluster.free_port(), cluster.free_port()
            taken |= {m.client_port, m.peer_port}

    def start(self):
        """Starts every member. The first start of a new cluster retries with fresh ports and
        data dirs when another process took a port between picking and binding it."""
        fresh = all(m.starts == 0 for m in self.members)
        for attempt in range(3):
            try:
                for m in self.members:
                    m.start()
                return self
            except cluster.ServerStartError as e:
                if not fresh or attempt == 2 or "address already in use" not in str(e).lower():
                    raise
                for m in self.members:
                    if m.running():
                        m.kill9()
                    shutil.rmtree(m.data_dir, ignore_errors=True)
                self._pick_ports()
        return self

    def stop(self):
        for m in self.members:
            if m.running():
                m.stop()

    SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")

    def sanitizer_reports(self):
        """The logs (every start of every member) that hold a sanitizer report: an ASan/UBSan
        build reports leaks only at exit, which no assertion of a test would see."""
        bad = []
        for m in self.members:
            logs = m.all_logs(limit=400000)
            if any(mark in logs for mark in self.SANITIZER_MARKS):
                bad.append("%s:\n%s" % (m.name, logs[-20000:]))
        return bad

    def running(self):
        return [m for m in self.members if m.running()]

    def leader(self, timeout=10.0, among=None):
        """The member every running member (or `among`) agrees leads; waits for one."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            group = among or self.running()
            leads = set()
            states = {}
            try:
                for m in group:
                    s = m.stats_self()
                    leads.add(s["leaderInfo"]["leader"] if s else None)
                    states[m.name] = s["state"] if s else None
            except OSError as e:
                last = e
                time.sleep(0.05)
                continue
            last = (leads, states)
            if len(leads) == 1 and "" not in leads and None not in leads:
                lid = leads.pop()
                for m in group:
                    if states[m.name] == "StateLeader" and m.member_id() == lid:
                        return m
            time.sleep(0.05)
        raise AssertionError("no agreed leader within %.1f s: %r\n%s" % (timeout, last, self.logs()))

    def followers(self, leader):
        return [m for m in self.running() if m is not leader]

    def logs(self):
        return "\n".join(m.all_logs(8000) for m in self.members)


class ClusterFactory:
    """Makes the RaftClusters of one test (make(n, extra_args)); finish() stops them and fails
    on a sanitizer report in any member's log."""

    def __init__(self, workdir, base_args=(), peer_scheme="http"):
        self.workdir = workdir
        self.base_args = tuple(base_args)
        self.peer_scheme = peer_scheme
        self.made = []

    def __call__(self, n, extra_args=()):
        c = RaftCluster(self.workdir, n, tuple(extra_args) + self.base_args,
                        peer_scheme=self.peer_scheme)
        self.made.append(c)
        return c

    def finish(self):
        for c in self.made:
            c.stop()
        bad = [r for c in self.made for r in c.sanitizer_reports()]
        assert not bad, "sanitizer reports:\n" + "\n".join(bad)


@pytest.fixture
def make_cluster(tmp_path):
    """The test's ClusterFactory (import it into a test module to use it as a fixture)."""
    make = ClusterFactory(str(tmp_path))
    yield make
    make.finish()


def restart_cut_off(c, m, while_down=None):
    """Stops member m and starts it again while the other members drop what they send it, so
    it cannot catch up (it holds key requests); while_down() runs while it is stopped. Returns
    m's id (the others' o.partition(id, False) lets it catch up)."""
    mid = m.member_id()
    m.stop()
    if while_down:
        while_down()
    for o in c.members:
        if o is not m:
            o.partition(mid, True)
    m.start()
    return mid


def put(m, key, value, timeout=10.0, **params):
    form = {"value": value}
    form.update(params)
    return m.keys("PUT", key, form=form, timeout=timeout)


def put_many(leader, fmt, n, value=lambda i: "v%d" % i, threads=8):
    """Writes keys fmt % i (i < n) with value(i) to leader from `threads` writers at once; every
    one must be created (201)."""
    failed = []

    def writer(lo, hi):
        for i in range(lo, hi):
            st = put(leader, fmt % i, value(i))[0]
            if st != 201:
                failed.append((fmt % i, st))
    ts = [threading.Thread(target=writer, args=(j * n // threads, (j + 1) * n // threads))
          for j in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not failed, failed[:5]


def start_killed_by_hook(server, hook):
    """Starts server with QUORUMD_TEST_DIE_AFTER_SNAPSHOT_INSTALL=hook (1: after the store's
    install, mid: halfway through its batches) and waits until the hook has killed it."""
    os.environ["QUORUMD_TEST_DIE_AFTER_SNAPSHOT_INSTALL"] = hook
    try:
        try:
            server.start()
        except cluster.ServerStartError:
            pass  # killed before it said it was ready
        wait_for(lambda: not server.running(), what="the member killed by the hook")
    finally:
        del os.environ["QUORUMD_TEST_DIE_AFTER_SNAPSHOT_INSTALL"]


def wait_for(pred, timeout=10.0, what="condition", interval=0.05):
    """Polls pred every interval seconds until it returns something true (returned), at most
    timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = pred()
            if last:
                return last
        except OSError as e:
            last = e
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))
