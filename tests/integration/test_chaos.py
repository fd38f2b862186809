"""A chaos run of a 3-member cluster of real quorumd processes: writers and register clients
work through random members while a nemesis, from one seed, kills members (any, the leader, or
all at once) and restarts them, isolates one (the transport's fault hook, both directions),
pauses one (SIGSTOP), replaces one (removed through the API, a new member joins with
`--initial-cluster-state existing`), loses a follower's forwards and resets its connection to the
leader, and writes keys and directories with 1-2 s TTLs. Snapshots
are taken every 300 entries, so restarts and joins catch up by snapshot too.

Afterwards every member is up and:
* every acknowledged write is present, with its index, on every member;
* the put / compare-and-swap / quorum-get history is linearizable (tests/lin);
* once the TTLs have run out, every member holds the same tree at the same index.

A second test runs the same nemesis for 30 s under a quorumfs mount of every member (normal
build): the mount must then list exactly the store's keys, with their values.

QUORUM_CHAOS_SECONDS lengthens the run (default 40, 25 in the sanitizer build, 30 with the
mount); QUORUM_CHAOS_SEED replays a nemesis schedule (the seed is printed)."""
import json
import os
import random
import signal
import threading
import time

import pytest

import cluster
from raft_cluster import make_cluster, wait_for  # noqa: F401 (make_cluster: a fixture)
from test_fs import _need_fuse, mounts  # noqa: F401 (fixtures)
from test_raft_cluster import Registers, Writers, check_all_present

pytestmark = pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd clusters only")

SANITIZED = os.environ.get("QUORUM_SANITIZED") == "1"


class Nemesis:
    def __init__(self, c, rnd):
        self.c = c
        self.rnd = rnd
        self.ids = {m.name: m.member_id() for m in c.members}
        self.removed = []  # members replaced (their logs are checked too)
        self.joined = 0
        self.log = []
        self.t0 = time.monotonic()

    def note(self, what):
        self.log.append("%6.2f %s" % (time.monotonic() - self.t0, what))

    def up(self):
        return [m for m in self.c.members if m.running()]

    def kill(self, leader):
        m = None
        if leader:
            try:
                m = self.c.leader(timeout=5)
            except AssertionError:
                pass
        m = m or self.rnd.choice(self.c.members)
        if not m.running():
            return
        self.note("kill -9 %s%s" % (m.name, " (leader)" if leader else ""))
        m.kill9()
        time.sleep(self.rnd.uniform(0.2, 3))
        m.start()

    def kill_all(self):
        self.note("kill -9 every member")
        for m in self.up():
            m.kill9()
        time.sleep(self.rnd.uniform(0.2, 2))
        for m in self.c.members:
            m.start()

    def isolate(self):
        m = self.rnd.choice(self.c.members)
        others = [o for o in self.c.members if o is not m]
        self.note("isolate %s" % m.name)
        for o in others:
            m.partition(self.ids[o.name], True)
            o.partition(self.ids[m.name], True)
        time.sleep(self.rnd.uniform(0.5, 4))
        for o in others:
            m.partition(self.ids[o.name], False)
            o.partition(self.ids[m.name], False)

    def pause(self):
        m = self.rnd.choice(self.c.members)
        self.note("pause %s" % m.name)
        os.kill(m.proc.pid, signal.SIGSTOP)
        time.sleep(self.rnd.uniform(0.5, 3))
        os.kill(m.proc.pid, signal.SIGCONT)

    def ask(self, members, method, path, body=None, want=(), tries=40):
        """The request through the given members in turn until one answers a status in want."""
        for t in range(tries):
            try:
                st, _, got = members[t % len(members)].request(
                    method, path, body=body, headers={"Content-Type": "application/json"},
                    timeout=10)
                if st in want:
                    return st
            except OSError:
                pass
            time.sleep(0.5)
        return None

    def replace(self):
        victim = self.rnd.choice(self.c.members)
        others = [m for m in self.c.members if m is not victim]
        st = self.ask(others, "DELETE", "/v2/members/" + self.ids[victim.name], want=(204,))
        self.note("remove %s: %s" % (victim.name, st))
        assert st == 204, "the member could not be removed:\n" + "\n".join(self.log)
        time.sleep(0.5)
        if victim.running():
            victim.kill9()
        self.c.members.remove(victim)
        self.removed.append(victim)
        self.joined += 1
        new = self.c.add_member_object("n%d" % self.joined)
        st = self.ask(others, "POST", "/v2/members",
                      body=json.dumps({"peerURLs": [new.peer_url]}), want=(201,))
        self.note("add %s: %s" % (new.name, st))
        assert st == 201, "the member could not be added:\n" + "\n".join(self.log)
        # As an operator would (and must, with etcd): the new member starts once the members
        # it will ask for the cluster's list have applied both changes; one still behind would
        # list the removed member, and the join is refused ("error validating peerURLs").
        self.settle(others, self.ids[victim.name], new.peer_url)
        new.state = "existing"
        new.start()
        self.ids[new.name] = new.member_id()

    def settle(self, members, gone_id, new_peer_url, timeout=10.0):
        def settled():
            for m in members:
                if not m.running():
                    continue
                try:
                    st, _, body = m.request("GET", "/v2/members", timeout=2)
                    listed = json.loads(body)["members"]
                except (OSError, ValueError, KeyError):
                    return False
                if st != 200 or any(x["id"] == gone_id for x in listed) or \
                        not any(new_peer_url in x["peerURLs"] for x in listed):
                    return False
            return True
        deadline = time.monotonic() + timeout
        while not settled() and time.monotonic() < deadline:
            time.sleep(0.1)

    def reset(self):
        """A follower loses forwards on their way and its connection to the leader resets, the
        leader living on (the transport's hooks): it sends its waiting writes again in the same
        term, and the leader takes each once (a write applied twice would be found at another
        index than the one acknowledged)."""
        try:
            leader = self.c.leader(timeout=2)
        except AssertionError:
            return
        followers = [m for m in self.up() if m is not leader]
        if not followers:
            return
        m = self.rnd.choice(followers)
        lost = self.rnd.randrange(0, 4)
        self.note("reset %s -> %s (the next %d forwards lost)" % (m.name, leader.name, lost))
        lid = self.ids[leader.name]
        try:
            for _ in range(self.rnd.randrange(1, 4)):
                if lost:
                    m.drop_next(lid, "prop", count=lost)
                time.sleep(self.rnd.uniform(0.05, 0.5))
                m.break_connection(lid)
        except (OSError, AssertionError):
            pass  # (the member or the hook went away meanwhile)

    def ttls(self):
        m = self.rnd.choice(self.up())
        self.note("TTL writes through %s" % m.name)
        for _ in range(10):
            try:
                m.keys("PUT", "/ttl/k%d" % self.rnd.randrange(50),
                       form={"value": "t", "ttl": str(self.rnd.choice([1, 2]))}, timeout=5)
                m.keys("PUT", "/ttldir/d%d" % self.rnd.randrange(5),
                       form={"dir": "true", "ttl": "1"}, timeout=5)
            except OSError:
                pass

    def step(self):
        act = self.rnd.choice(["kill", "kill_leader", "kill_all", "isolate", "pause", "replace",
                               "reset", "reset", "ttls", "ttls", "calm"])
        if act == "calm":
            time.sleep(self.rnd.uniform(0.5, 2))
        elif act.startswith("kill_all"):
            self.kill_all()
        elif act.startswith("kill"):
            self.kill(act == "kill_leader")
        else:
            getattr(self, act)()


def trees(members):
    out = []
    for m in members:
        st, hdrs, body = m.keys("GET", "/", params={"recursive": "true", "sorted": "true"})
        out.append((st, hdrs.get("X-Etcd-Index"), json.dumps(body, sort_keys=True)))
    return out


@pytest.mark.time_limit(280)
def test_chaos_loses_nothing_and_stays_linearizable(make_cluster, tmp_path):
    seconds = float(os.environ.get("QUORUM_CHAOS_SECONDS", "25" if SANITIZED else "40"))
    seed = int(os.environ.get("QUORUM_CHAOS_SEED", str(random.randrange(1 << 30))))
    print("chaos seed %d (QUORUM_CHAOS_SEED=%d replays the nemesis)" % (seed, seed))
    c = make_cluster(3, extra_args=["--snapshot-count", "300"]).start()
    nem = Nemesis(c, random.Random(seed))
    try:
        # (Writers and Registers pick from c.members as it is: replaced members leave it.)
        with Writers(c.members) as w, Registers(c.members) as regs:
            while time.monotonic() - nem.t0 < seconds:
                nem.step()
            nem.note("nemesis stops")
            for m in c.members:
                if not m.running():
                    m.start()
            c.leader(timeout=20)
            time.sleep(1)  # writes after the last fault
        assert len(w.acked) > 100 and len(regs.history) > 100, (len(w.acked), len(regs.history))
        for m in c.members:
            check_all_present(m, w.acked)
        regs.check(str(tmp_path))
        logs = "".join(m.all_logs(limit=400000) for m in c.members + nem.removed)
        print("requests proposed again after a change of leader: %d lines; sent again in their "
              "term: %d lines; dropped by a leader that held them: %d lines" % (
                  logs.count("proposing "), logs.count("again: messages to it were lost"),
                  logs.count("appended in this term already")))
        time.sleep(3)  # the last TTLs run out
        wait_for(lambda: len(set(trees(c.members))) == 1, timeout=30,
                 what="the same tree at the same index on every member")
        st, _, body = c.members[0].keys("GET", "/ttl")
        assert st == 404 or not body["node"].get("nodes"), body
    except BaseException:
        print("nemesis (seed %d):\n%s" % (seed, "\n".join(nem.log)))
        raise
    finally:
        for m in nem.removed:
            if m.running():
                m.kill9()
        bad = [m.name for m in nem.removed
               if any(mark in m.all_logs(limit=400000) for mark in c.SANITIZER_MARKS)]
        assert not bad, "sanitizer reports in the logs of %s" % bad


@pytest.mark.time_limit(240)
@pytest.mark.skipif(SANITIZED, reason="the normal build's (a FUSE mount beside 3 members)")
def test_a_mount_through_chaos_shows_the_store(make_cluster, mounts):  # noqa: F811
    """A quorumfs mount of every member (-o sync_interval=0.5: it follows replacements) while
    the nemesis runs, with writers through the API and a process rewriting files through the
    mount: afterwards the mount lists exactly the store's keys, with the store's values."""
    seconds = float(os.environ.get("QUORUM_CHAOS_SECONDS", "30"))
    seed = int(os.environ.get("QUORUM_CHAOS_SEED", str(random.randrange(1 << 30))))
    print("chaos seed %d (QUORUM_CHAOS_SEED=%d replays the nemesis)" % (seed, seed))
    c = make_cluster(3, extra_args=["--snapshot-count", "300"]).start()
    assert c.leader().keys("PUT", "/load", form={"dir": "true"})[0] == 201
    mnt = mounts(",".join(m.url for m in c.members), prefix="/load", opts="sync_interval=0.5")
    nem = Nemesis(c, random.Random(seed))
    stop = threading.Event()

    def rewrite():
        i = 0
        while not stop.is_set():
            i += 1
            try:
                with open(mnt.path("f%d" % (i % 20)), "w") as f:
                    f.write("local %d" % i)
            except OSError:
                time.sleep(0.05)  # (EIO or ESTALE while the cluster is away: nothing is queued)
    t = threading.Thread(target=rewrite, daemon=True)
    t.start()
    try:
        with Writers(c.members):
            while time.monotonic() - nem.t0 < seconds:
                nem.step()
            for m in c.members:
                if not m.running():
                    m.start()
            c.leader(timeout=20)
        stop.set()
        t.join(15)

        diff = []

        def same():
            st, _, body = c.leader().keys("GET", "/load", params={"recursive": "true",
                                                                   "quorum": "true"})
            store = {os.path.basename(n["key"]): n.get("value") for n in body["node"]["nodes"]}
            listed = set(os.listdir(mnt.dir))
            if listed != set(store):
                diff[:] = ["listed, not stored", sorted(listed - set(store))[:10],
                           "stored, not listed", sorted(set(store) - listed)[:10]]
                return False
            for name in sorted(store)[:1000] + ["f%d" % i for i in range(20) if "f%d" % i in store]:
                with open(mnt.path(name)) as f:
                    got = f.read()
                    if got != store[name]:
                        diff[:] = [name, "read", got, "stored", store[name]]
                        return False
            return True
        wait_for(same, timeout=30, what="the mount showing the store")
    except BaseException:
        print("nemesis (seed %d):\n%s" % (seed, "\n".join(nem.log)))
        print("the mount's endpoint lists:\n" + "\n".join(
            x for x in mnt.log().splitlines() if x.startswith("quorumfs: endpoints:")))
        print("the end of the mount's log:\n" + mnt.log()[-3000:])
        print("members:", [(m.name, m.url, m.running()) for m in c.members])
        print("the difference:", locals().get("diff"))
        raise
    finally:
        stop.set()
        for m in nem.removed:
            if m.running():
                m.kill9()
