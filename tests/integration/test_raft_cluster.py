"""Whole-program Raft tests: several real quorumd processes on loopback.

Each test states what a user of a 3- or 5-member cluster relies on: writes through any member,
no acknowledged write lost when the leader dies, a minority that cannot commit, a lagging member
brought back by a snapshot, membership changes, and a full restart.
"""
import json
import os
import random
import shutil
import socket
import tempfile
import threading
import time

import pytest

import cluster
import rawhttp
from raft_cluster import (make_cluster, put, put_many, restart_cut_off,  # noqa: F401
                          start_killed_by_hook, wait_for)  # (make_cluster: a fixture)

ELECTION_S = 0.5  # raft_cluster.ELECTION_MS

pytestmark = pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd clusters only")


def test_three_members_replicate_and_report(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    f1, f2 = c.followers(leader)
    # A write through a follower is forwarded, committed and answered by that follower.
    st, hdr, body = put(f1, "/greeting", "hello")
    assert st == 201, body
    assert body["node"]["value"] == "hello"
    idx = body["node"]["modifiedIndex"]
    assert int(hdr["x-raft-term"]) >= 1
    # A quorum read on the other follower sees it at once.
    st, _, body = f2.keys("GET", "/greeting", params={"quorum": "true"})
    assert st == 200 and body["node"]["value"] == "hello" and body["node"]["modifiedIndex"] == idx
    # Plain reads catch up on every member with the same index.
    for m in c.members:
        wait_for(lambda m=m: m.keys("GET", "/greeting")[0] == 200, what="replica of /greeting")
        st, _, body = m.keys("GET", "/greeting")
        assert body["node"]["modifiedIndex"] == idx
    ids = {m.name: m.member_id() for m in c.members}
    # /v2/members: every member with its name and URLs (names are published by each member).
    def members_complete():
        st, _, body = leader.request("GET", "/v2/members")
        ms = json.loads(body)["members"]
        return ms if all(x["name"] and x["clientURLs"] for x in ms) else None
    ms = wait_for(members_complete, what="members with names")
    got = sorted((x["name"], x["id"], tuple(x["peerURLs"]), tuple(x["clientURLs"])) for x in ms)
    want = sorted((m.name, ids[m.name], (m.peer_url,), (m.url,)) for m in c.members)
    assert got == want
    st, _, body = f1.request("GET", "/v2/members/leader")
    assert st == 200 and json.loads(body)["id"] == ids[leader.name]
    st, _, body = f1.request("GET", "/v2/machines")
    assert st == 200 and sorted(body.decode().split(", ")) == sorted(m.url for m in c.members)
    # /v2/stats/leader: the followers with latencies on the leader, 403 elsewhere.
    def leader_stats():
        st, _, body = leader.request("GET", "/v2/stats/leader")
        assert st == 200
        lead = json.loads(body)
        fs = lead["followers"].values()
        return lead if fs and all(f["counts"]["success"] > 0 for f in fs) else None
    lead = wait_for(leader_stats, what="follower counters on the leader")
    assert lead["leader"] == ids[leader.name]
    assert sorted(lead["followers"]) == sorted(ids[m.name] for m in (f1, f2))
    for f in lead["followers"].values():
        assert f["counts"]["success"] > 0 and f["counts"]["fail"] == 0
    st, _, _ = f1.request("GET", "/v2/stats/leader")
    assert st == 403
    assert f1.stats_self()["state"] == "StateFollower"
    assert leader.stats_self()["state"] == "StateLeader"


class Writers:
    """Clients writing their own keys through random members; each records what was
    acknowledged (never retried: a timeout or error is an unknown outcome)."""

    def __init__(self, members, n=4):
        self.members = members
        self.acked = {}  # key -> (value, modifiedIndex)
        self.errors = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        # (daemon threads: a test that fails before __exit__ must not leave its process hung)
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(n)]

    def run(self, w):
        rnd = random.Random(w)
        i = 0
        while not self.stop.is_set():
            i += 1
            key = "/load/w%d-%d" % (w, i)
            m = rnd.choice([m for m in self.members if m.running()] or self.members)
            try:
                st, _, body = put(m, key, "v%d" % i, timeout=10)
            except OSError:
                with self.lock:
                    self.errors += 1
                continue
            if st == 201:
                with self.lock:
                    self.acked[key] = ("v%d" % i, body["node"]["modifiedIndex"])
            else:
                with self.lock:
                    self.errors += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(30)


class Registers:
    """Clients doing put / compare-and-swap / quorum get on a few keys through random members,
    recording a history for the linearizability checker (tests/lin, JSON lines). A timeout or
    an error after sending is an unknown outcome; nothing is retried."""

    def __init__(self, members, clients=3, keys=3):
        self.members = members
        self.keys = ["/reg/k%d" % i for i in range(keys)]
        self.history = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(c,), daemon=True) for c in range(clients)]

    def record(self, **op):
        with self.lock:
            self.history.append(op)

    def run(self, c):
        rnd = random.Random(100 + c)
        i = 0
        last = {}
        while not self.stop.is_set():
            i += 1
            key = rnd.choice(self.keys)
            m = rnd.choice([m for m in self.members if m.running()] or self.members)
            kind = rnd.choice(["put", "cas", "get", "get"])
            value = "c%d-%d" % (c, i)
            t0 = time.monotonic()
            try:
                if kind == "get":
                    st, _, body = m.keys("GET", key, params={"quorum": "true"}, timeout=10)
                elif kind == "put":
                    st, _, body = put(m, key, value, timeout=10)
                else:
                    if key not in last:
                        continue
                    st, _, body = put(m, key, value, timeout=10, prevValue=last[key])
            except ConnectionRefusedError:
                continue  # never sent: it surely did not happen
            except OSError:
                st, body = None, None
            t1 = time.monotonic()
            op = {"client": c, "key": key, "op": kind, "invoke": t0, "complete": t1}
            if kind == "cas":
                op["prevValue"] = last[key]
            ok = st in (200, 201) and isinstance(body, dict) and "node" in body
            if kind == "get":
                if ok:
                    last[key] = body["node"]["value"]
                    self.record(result="ok", value=body["node"]["value"],
                                index=body["node"]["modifiedIndex"], **op)
                elif isinstance(body, dict) and body.get("errorCode") == 100:
                    self.record(result="not-found", **op)
                continue  # a failed read observed nothing
            op["value"] = value
            if ok:
                last[key] = value
                self.record(result="ok", index=body["node"]["modifiedIndex"], **op)
            elif isinstance(body, dict) and body.get("errorCode") == 101:
                self.record(result="failed", **op)
            elif isinstance(body, dict) and body.get("errorCode") == 100:
                self.record(result="not-found", **op)
            else:
                self.record(result="unknown", **op)

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop.set()
        for t in self.threads:
            t.join(30)

    def check(self, workdir):
        lincheck = os.path.join(os.path.dirname(cluster.quorumd_binary()), "tests", "lin",
                                "lincheck")
        assert os.path.exists(lincheck), lincheck
        path = os.path.join(workdir, "history.jsonl")
        with open(path, "w") as f:
            for op in self.history:
                f.write(json.dumps(op) + "\n")
        import subprocess
        r = subprocess.run([lincheck, path], capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, "history not linearizable (%s):\n%s%s" % (path, r.stdout,
                                                                           r.stderr)
        return len(self.history)


def check_all_present(m, acked):
    st, _, body = m.keys("GET", "/load", params={"recursive": "true", "quorum": "true"}, timeout=10)
    assert st == 200, body
    have = {n["key"]: (n["value"], n["modifiedIndex"]) for n in body["node"].get("nodes", [])}
    missing = [k for k in acked if have.get(k) != acked[k]]
    assert not missing, "acknowledged writes lost or changed on %s (acknowledged, stored): %r" % (
        m.name, [(k, acked[k], have.get(k)) for k in missing[:10]])


def test_kill9_of_the_leader_loses_no_acknowledged_write(make_cluster, tmp_path):
    c = make_cluster(3).start()
    old = c.leader()
    for m in c.members:  # (each serves keys once its publication is applied)
        wait_for(lambda: m.keys("GET", "/")[0] == 200, what=m.name + " ready")
    with Writers(c.members) as w, Registers(c.members) as regs:
        time.sleep(1.0)
        before = len(w.acked)
        old.kill9()
        t0 = time.monotonic()
        new = c.leader(timeout=10)
        elected = time.monotonic() - t0
        # Writes go on. (A write that a follower had forwarded to the dead leader is proposed
        # again once the new leader's first entry is applied there.)
        wait_for(lambda: len(w.acked) > before + 10, timeout=20,
                 what="writes acknowledged after the failover")
    assert new is not old
    assert before > 20, "too few writes before the kill: %d" % before
    assert elected < 5, elected
    for m in c.running():
        check_all_present(m, w.acked)
    # put / cas / quorum get through every member, across the failover: linearizable.
    assert regs.check(str(tmp_path)) > 50
    # The old leader comes back as a follower and catches up.
    old.start()
    wait_for(lambda: old.stats_self()["state"] == "StateFollower", what="old leader follows")
    newest = max(w.acked.items(), key=lambda kv: kv[1][1])
    wait_for(lambda: old.keys("GET", newest[0])[0] == 200, what="old leader catches up")
    check_all_present(old, w.acked)


def test_a_partitioned_minority_cannot_commit_and_catches_up(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    lonely, other = c.followers(leader)
    lid, oid, nid = leader.member_id(), other.member_id(), lonely.member_id()
    lonely.partition("all")
    leader.partition(nid)
    other.partition(nid)
    # The majority keeps committing.
    st, _, body = put(leader, "/during", "majority")
    assert st == 201, body
    # The minority can neither write nor answer a quorum read.
    t0 = time.monotonic()
    st, _, body = put(lonely, "/minority", "x", timeout=30)
    assert st == 500 and body["errorCode"] == 300, (st, body)
    assert body["cause"] == "etcdserver: request timed out"  # (no new leader came meanwhile)
    st, _, body = lonely.keys("GET", "/during", params={"quorum": "true"}, timeout=30)
    assert st >= 500 or (st == 200 and body["node"]["value"] == "majority"), (st, body)
    assert st != 200, "a partitioned member answered a quorum read"
    assert time.monotonic() - t0 < 25
    st, _, _ = leader.keys("GET", "/minority", params={"quorum": "true"})
    assert st == 404
    # Heal: the lonely member catches up, and its own failed write never happened.
    lonely.partition("all", drop=False)
    leader.partition(nid, drop=False)
    other.partition(nid, drop=False)
    wait_for(lambda: lonely.keys("GET", "/during")[0] == 200, what="catch-up after healing")
    st, _, body = put(lonely, "/after", "healed")
    assert st == 201, body
    assert c.leader().member_id() in (lid, oid, nid)


def test_a_joining_member_is_not_refused_by_a_member_still_behind(make_cluster):
    """A new member checks its --initial-cluster against the running cluster's list, read from
    the peer URLs in sorted order (etcd takes the first answer). When the first member asked is
    behind (it has not applied the addition of the new member), its list is not the cluster's:
    the joiner goes on to a member whose list has it, and joins (etcd would refuse to start:
    "member count is unequal")."""
    c = make_cluster(3).start()
    behind = min(c.members, key=lambda m: m.peer_url)  # the first that the joiner asks
    bid = behind.member_id()
    others = [m for m in c.members if m is not behind]
    behind.partition("all")
    for o in others:
        o.partition(bid)
    leader = c.leader(among=others, timeout=15)
    new = c.add_member_object("late")
    st, _, body = leader.request("POST", "/v2/members",
                                 body=json.dumps({"peerURLs": [new.peer_url]}),
                                 headers={"Content-Type": "application/json"}, timeout=20)
    assert st == 201, body
    st, _, raw = cluster.http_request(behind.peer_url, path="/members")
    assert st == 200 and new.peer_url.encode() not in raw  # what etcd's joiner would go by
    new.state = "existing"
    new.start()
    assert put(leader, "/joined", "yes")[0] == 201
    wait_for(lambda: new.keys("GET", "/joined")[0] == 200, what="the new member catches up")


def test_a_lost_read_index_request_is_asked_for_again(make_cluster):
    """A follower's quorum read whose read-index request to the leader is lost while the
    connection stays up is asked for again after an election timeout and answered with the
    current value; the client does not wait for the request timeout (6 s here)."""
    c = make_cluster(3).start()
    leader = c.leader()
    f1, _ = c.followers(leader)
    st, _, body = put(leader, "/lost-read", "v1")
    assert st == 201, body
    st, _, body = put(leader, "/lost-read", "v2")
    assert st == 200, body
    idx = body["node"]["modifiedIndex"]
    f1.drop_next(leader.member_id(), "read_index")
    t0 = time.monotonic()
    st, _, body = f1.keys("GET", "/lost-read", params={"quorum": "true"}, timeout=10)
    elapsed = time.monotonic() - t0
    assert st == 200, body
    assert body["node"]["value"] == "v2" and body["node"]["modifiedIndex"] == idx
    assert "test hook: dropped a message of type" in f1.log_text()
    # Answered by the second request (sent an election timeout later), not the first.
    assert ELECTION_S <= elapsed < 3.0, elapsed
    # The hook is spent: the next quorum read takes a round trip.
    t0 = time.monotonic()
    st, _, body = f1.keys("GET", "/lost-read", params={"quorum": "true"})
    assert st == 200 and body["node"]["value"] == "v2"
    assert time.monotonic() - t0 < ELECTION_S


def test_a_lagging_member_catches_up_by_snapshot(make_cluster):
    c = make_cluster(3, extra_args=("--snapshot-count", "50")).start()
    leader = c.leader()
    lag = c.followers(leader)[0]
    lag.stop()
    n = 1300
    errors = []

    def writer(lo, hi):
        for i in range(lo, hi):
            st, _, _ = put(leader, "/snap/k%04d" % i, "v%d" % i)
            if st != 201:
                errors.append((i, st))

    ts = [threading.Thread(target=writer, args=(i * n // 8, (i + 1) * n // 8)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:5]
    _, hdr0, _ = leader.keys("GET", "/snap/k0000")
    lag.start()
    def caught_up():
        st, _, body = lag.keys("GET", "/snap", params={"recursive": "true"})
        return st == 200 and len(body["node"].get("nodes", [])) == n
    wait_for(caught_up, timeout=30, what="the lagging member has every key")
    # (the line is written after the store is in place, which the read above may see first)
    wait_for(lambda: "installed a snapshot" in lag.log_text(), what="the snapshot's log line")
    # the leader dumped the store on a thread of its own and stayed leader in the same term
    assert "made a snapshot at index" in leader.log_text()
    st, hdr_l, _ = leader.keys("GET", "/snap/k0000")
    assert c.leader() is leader and hdr_l["x-raft-term"] == hdr0["x-raft-term"]
    st, hdr_f, body = lag.keys("GET", "/snap/k0000")
    assert body["node"]["value"] == "v0"
    # the same store index on both (the restarted member's publication, a write of its own,
    # may reach one of them a moment before the other)
    def same_index():
        a = leader.keys("GET", "/snap/k0000")[1]["x-etcd-index"]
        return a == lag.keys("GET", "/snap/k0000")[1]["x-etcd-index"] == \
            leader.keys("GET", "/snap/k0000")[1]["x-etcd-index"]
    wait_for(same_index, timeout=5, what="one store index on the leader and the caught-up member")


def test_a_member_stopped_between_installing_a_snapshot_and_its_log_starts_again(make_cluster):
    """A lagging member installs the leader's snapshot in its store and is killed before its log
    records it (a test hook kills it right there). It starts again: the log is completed from
    the snapshot state kept beside the store, and the member serves every key. (The store ahead
    of the log made the core panic at every start: "hard state commit out of range".)"""
    c = make_cluster(3, extra_args=("--snapshot-count", "50")).start()
    leader = c.leader()
    lag = c.followers(leader)[0]
    lag.stop()
    n = 1300  # (the log is compacted in steps of 1024 entries)
    put_many(leader, "/snapc/k%04d", n)
    start_killed_by_hook(lag, "1")
    assert "killed after installing the snapshot in the store" in lag.log_text()
    lag.start()
    assert "completing the install of the snapshot at index" in lag.log_text()
    assert put(leader, "/snapc/after", "x")[0] == 201

    def caught_up():
        st, _, body = lag.keys("GET", "/snapc", params={"recursive": "true"})
        return st == 200 and len(body["node"].get("nodes", [])) == n + 1
    wait_for(caught_up, what="every key on the member")
    assert lag.keys("GET", "/snapc/k0123")[2]["node"]["value"] == "v123"


def test_a_follower_killed_at_random_moments_while_installing_snapshots(make_cluster):
    """kill -9 of a lagging member at random moments after its core took the leader's
    snapshot (while the store writes its synced copy, its batches, or removes the copy), twice
    per round, three rounds: each time it starts again, completes or redoes the install, and in
    the end holds exactly the leader's keys. QUORUM_KILL_SEED replays a schedule."""
    seed = int(os.environ.get("QUORUM_KILL_SEED", random.randrange(1 << 30)))
    print("QUORUM_KILL_SEED=%d" % seed)
    rng = random.Random(seed)
    # (installs in batches of 1 KiB, not 4 MiB: a 7 MB snapshot takes ~7,000 of them, and a kill
    # lands among them more often)
    os.environ["QUORUMD_TEST_INSTALL_BATCH"] = "1024"
    try:
        _kill_while_installing(make_cluster, rng)
    finally:
        del os.environ["QUORUMD_TEST_INSTALL_BATCH"]


def _kill_while_installing(make_cluster, rng):
    # (debug logs: what the leader did about the member's snapshot, should it fail again)
    c = make_cluster(3, extra_args=("--snapshot-count", "50", "--log-level", "debug")).start()
    start_errors = []  # (what the starts killed on purpose said)
    try:
        _kill_rounds(c, rng, start_errors)
    except AssertionError as e:  # (with every member's logs: a stall has been seen once in CI)
        raise AssertionError("%s\nthe starts killed on purpose said: %r\n%s" % (
            e, start_errors, "\n".join(m.all_logs(40000) for m in c.members))) from None


def _kill_rounds(c, rng, start_errors):
    leader = c.leader()
    lag = c.followers(leader)[0]
    value = "v" * 6000  # (1,200 keys per round: a 7 MB snapshot, then 14, then 21)
    kills = []
    for rd in range(3):
        lag.stop()
        n = 1200
        put_many(leader, "/kr%d/k%%04d" % rd, n, value=lambda i: value)
        copy = os.path.join(lag.data_dir, "tree", "snapshot.install")
        for k in range(2):
            before = lag.proc
            installed = k == 1 and "installed a snapshot" in lag.log_text()
            th = threading.Thread(target=lambda: _start_quietly(lag, start_errors))
            th.start()
            # (the log and the process looked at below must be this start's, not the last one's:
            # it may already say "restored snapshot", and a kill before the spawn would miss)
            wait_for(lambda: lag.proc is not before, timeout=10, interval=0.001,
                     what="the member's process spawned")
            if k == 0:  # anywhere from the core's taking it to well after the install
                wait_for(lambda: "restored snapshot" in lag.log_text(), timeout=30,
                         interval=0.002, what="the leader's snapshot taken by the member's core")
                delay = rng.uniform(0.0, 0.25)
            else:  # among the batches: the synced copy is in place (or written again at the
                # start; or, the first start having installed it all, once this one is ready;
                # else killed wherever it is after 10 s)
                words = ("installed a snapshot", "completing the install", "again (the") + \
                    (("ready to serve client requests",) if installed else ())
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not os.path.exists(copy) and \
                        not any(w in lag.log_text() for w in words):
                    time.sleep(0.001)
                delay = rng.uniform(0.0, 0.02)
            time.sleep(delay)
            lag.kill9()
            th.join()
            kills.append(round(delay, 3))
        lag.start()

        def caught_up(rd=rd):
            st, _, body = lag.keys("GET", "/kr%d" % rd, params={"recursive": "true"})
            return st == 200 and len(body["node"].get("nodes", [])) == n
        wait_for(caught_up, timeout=30, what="every key of round %d on the member" % rd)
    logs = [open(os.path.join(lag.workdir, f), errors="replace").read()
            for f in os.listdir(lag.workdir) if f.startswith("server-") and f.endswith(".log")]
    redone = sum("again (the member stopped while installing it)" in t for t in logs)
    print("kills after", kills, "- installs written again:", redone)
    for rd in range(3):
        p = {"recursive": "true", "sorted": "true"}
        assert lag.keys("GET", "/kr%d" % rd, params=p)[2] == \
            leader.keys("GET", "/kr%d" % rd, params=p)[2]
    assert not os.path.exists(os.path.join(lag.data_dir, "tree", "snapshot.install"))


def _start_quietly(server, errors):
    """start(), for a member that may be killed before it answers: what start() said is
    appended to errors (shown if the test fails)."""
    try:
        server.start()
    except cluster.ServerStartError as e:
        errors.append(str(e).splitlines()[0])


def test_a_member_stopped_halfway_through_installing_a_snapshot_starts_again(make_cluster):
    """The store writes a large snapshot in batches (so that it is not held several times over
    in memory). A test hook kills the member after the second batch: its old tree is deleted
    and part of the new one written. At its next start the member writes the snapshot again
    from the copy it synced before the first batch, completes its log, and serves every key
    with the leader's values and index."""
    c = make_cluster(3, extra_args=("--snapshot-count", "50")).start()
    leader = c.leader()
    lag = c.followers(leader)[0]
    # keys the lagging member holds before, which the snapshot deletes
    for i in range(40):
        assert put(leader, "/gone/k%02d" % i, "g")[0] == 201
    st, _, _ = leader.keys("DELETE", "/gone", params={"recursive": "true"})
    assert st == 200
    wait_for(lambda: lag.keys("GET", "/gone")[0] == 404, what="the delete on the member")
    lag.stop()
    n = 1300
    put_many(leader, "/snapm/k%04d", n, value=lambda i: "value-%d" % i)
    start_killed_by_hook(lag, "mid")
    assert "killed halfway through installing a snapshot" in lag.log_text()
    lag.start()
    log = lag.log_text()
    assert "snapshot.install again (the member stopped while installing it)" in log
    assert "completing the install of the snapshot at index" in log
    assert put(leader, "/snapm/after", "x")[0] == 201

    def caught_up():
        st, _, body = lag.keys("GET", "/snapm", params={"recursive": "true"})
        return st == 200 and len(body["node"].get("nodes", [])) == n + 1
    wait_for(caught_up, what="every key on the member")
    _, _, mine = lag.keys("GET", "/snapm", params={"recursive": "true", "sorted": "true"})
    _, _, theirs = leader.keys("GET", "/snapm", params={"recursive": "true", "sorted": "true"})
    assert mine == theirs
    assert lag.keys("GET", "/gone")[0] == 404
    assert os.path.isdir(os.path.join(lag.data_dir, "tree"))
    assert not os.path.exists(os.path.join(lag.data_dir, "tree", "snapshot.install"))


def test_members_are_added_and_removed_under_load(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    st, _, body = put(leader, "/before", "join")
    assert st == 201
    writers = Writers(list(c.members), n=3)
    with writers:
        new = c.add_member_object("m3")
        st, _, body = leader.request("POST", "/v2/members",
                                     body=json.dumps({"peerURLs": [new.peer_url]}),
                                     headers={"Content-Type": "application/json"})
        assert st == 201, body
        added = json.loads(body)
        assert added["peerURLs"] == [new.peer_url] and added["name"] == ""
        # The same peer URL twice is a conflict.
        st, _, body = leader.request("POST", "/v2/members",
                                     body=json.dumps({"peerURLs": [new.peer_url]}),
                                     headers={"Content-Type": "application/json"})
        assert st == 409, body
        new.state = "existing"
        new.start()
        wait_for(lambda: new.keys("GET", "/before")[0] == 200, what="the new member catches up")
        assert new.member_id() == added["id"]
        def four_named():
            ms = json.loads(leader.request("GET", "/v2/members")[2])["members"]
            return len(ms) == 4 and all(x["name"] for x in ms)
        wait_for(four_named, what="4 named members")
        # Writes need 3 of 4 now; they go on.
        st, _, _ = put(new, "/with-four", "yes")
        assert st == 201
        # Remove a follower that is not the new one.
        victim = [m for m in c.followers(c.leader()) if m is not new][0]
        vid = victim.member_id()
        st, _, body = leader.request("DELETE", "/v2/members/" + vid)
        assert st == 204, body
        ms = json.loads(leader.request("GET", "/v2/members")[2])["members"]
        assert vid not in [x["id"] for x in ms] and len(ms) == 3
        wait_for(lambda: not victim.running(), timeout=10, what="the removed member stops")
        # Removed for good (etcd's 410); an id that never was a member is 404.
        st, _, body = leader.request("DELETE", "/v2/members/" + vid)
        assert st == 410 and json.loads(body)["message"] == "Member permanently removed: " + vid
        st, _, body = leader.request("DELETE", "/v2/members/1234")
        assert st == 404 and json.loads(body)["message"] == "No such member: 1234"
        st, _, _ = put(c.leader(), "/after-remove", "ok")
        assert st == 201
    assert len(writers.acked) > 20, len(writers.acked)
    for m in c.running():
        check_all_present(m, writers.acked)


def test_a_member_removed_while_down_is_told_so_and_stops(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    victim = c.followers(leader)[0]
    vid = victim.member_id()
    victim.kill9()
    st, _, body = leader.request("DELETE", "/v2/members/" + vid)
    assert st == 204, body
    st, _, body = put(leader, "/after", "two")
    assert st == 201, body
    # Started again with its old data dir (which still lists three members), it must not run
    # beside the cluster with its old view: a member tells it, and it stops by itself.
    try:
        victim.start(timeout=15)
    except cluster.ServerStartError:
        pass  # told during start-up
    victim.proc.wait(timeout=15)
    log = victim.log_text()
    assert victim.proc.returncode == 0, log
    assert "this member was removed from the cluster; stopping" in log, log
    assert "member %s was removed from the cluster: telling it so" % vid.lstrip("0") in c.logs()
    ms = json.loads(c.leader().request("GET", "/v2/members")[2])["members"]
    assert sorted(x["name"] for x in ms) == sorted(m.name for m in c.members if m is not victim)
    st, _, body = put(c.leader(), "/after", "still-two")
    assert st == 200, body


def test_a_removed_member_is_added_again_under_its_peer_urls(make_cluster):
    """The README's way back for a removed member: member add with its peer URLs, an empty
    data dir, --initial-cluster-state existing. The add makes a new id (etcd's are time-based;
    ids were derived from the URLs, so it was the removed id again and the member was told it
    was removed and stopped); the member takes that id from the cluster, catches up and
    serves, and a start with its old data dir (the old id) is still refused."""
    c = make_cluster(3).start()
    leader = c.leader()
    assert put(leader, "/before", "x")[0] == 201
    victim = c.followers(leader)[0]
    old_id = victim.member_id()
    st, _, body = leader.request("DELETE", "/v2/members/" + old_id)
    assert st == 204, body
    wait_for(lambda: not victim.running(), what="the removed member stops")
    old_dir = victim.data_dir + ".old"
    os.rename(victim.data_dir, old_dir)
    st, _, body = add_member(leader, victim.peer_url)
    assert st == 201, body
    new_id = json.loads(body)["id"]
    assert new_id != old_id
    victim.state = "existing"
    victim.start()
    wait_for(lambda: victim.keys("GET", "/before")[0] == 200, what="the member catches up")
    assert victim.member_id() == new_id
    assert put(victim, "/after", "y")[0] == 201
    ms = json.loads(c.leader().request("GET", "/v2/members")[2])["members"]
    assert sorted(x["id"] for x in ms) == sorted(m.member_id() for m in c.members)
    # the old data dir, under the same URLs, is the removed member: told so, it stops
    victim.stop()
    shutil.rmtree(victim.data_dir)
    os.rename(old_dir, victim.data_dir)
    try:
        victim.start(timeout=15)
    except cluster.ServerStartError:
        pass  # told during start-up
    victim.proc.wait(timeout=15)
    assert "this member was removed from the cluster" in victim.log_text()


def add_member(m, peer_url):
    return m.request("POST", "/v2/members", body=json.dumps({"peerURLs": [peer_url]}),
                     headers={"Content-Type": "application/json"})


def test_strict_reconfig_check_refuses_changes_that_lose_the_quorum(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    follower = c.followers(leader)[0]
    # One member added and not started: 3 of 4 started, a quorum of 4. A second one would
    # make 3 of 5 started members... still a quorum; a third, 3 of 6, would not.
    ids = []
    for port in (cluster.free_port(), cluster.free_port()):
        st, _, body = add_member(follower, "http://127.0.0.1:%d" % port)
        assert st == 201, body
        ids.append(json.loads(body)["id"])
    st, _, body = add_member(follower, "http://127.0.0.1:%d" % cluster.free_port())
    assert st == 500, body
    assert json.loads(body)["message"] == \
        "etcdserver: re-configuration failed due to not enough started members"
    # (the follower answered once it applied the adds: the leader may apply them a moment later)
    wait_for(lambda: len(json.loads(leader.request("GET", "/v2/members")[2])["members"]) == 5,
             what="the leader lists 5 members")
    # The two never started go again (removing a member that is down is always allowed).
    for mid in ids:
        st, _, body = leader.request("DELETE", "/v2/members/" + mid)
        assert st == 204, body
    # With one of three down, removing a live one would leave one of two: refused by the
    # leader, which sees who answers; removing the one that is down is allowed.
    down = c.followers(leader)[1]
    down_id = down.member_id()
    down.kill9()
    time.sleep(2 * ELECTION_S)  # the leader notices it is gone (check quorum)
    st, _, body = leader.request("DELETE", "/v2/members/" + follower.member_id())
    assert st == 500 and json.loads(body)["message"] == "etcdserver: unhealthy cluster", body
    st, _, body = leader.request("DELETE", "/v2/members/" + down_id)
    assert st == 204, body
    ms = json.loads(leader.request("GET", "/v2/members")[2])["members"]
    assert sorted(x["name"] for x in ms) == sorted([leader.name, follower.name])
    st, _, body = put(leader, "/two-left", "ok")
    assert st == 201, body
    # --strict-reconfig-check=false lets an operator do it anyway (etcd's flag).
    # The check is made by the member that takes the request.
    loose = leader
    loose.extra_args = list(loose.extra_args) + ["--strict-reconfig-check=false"]
    loose.restart()
    c.leader(among=[loose, follower])
    st, _, body = add_member(loose, "http://127.0.0.1:%d" % cluster.free_port())
    assert st == 201, body  # 2 of 3 started: allowed strictly too
    st, _, body = add_member(follower, "http://127.0.0.1:%d" % cluster.free_port())
    assert st == 500, body  # 2 of 4 started: refused by a strict member
    st, _, body = add_member(loose, "http://127.0.0.1:%d" % cluster.free_port())
    assert st == 201, body  # ... and done by the loose one


def test_the_whole_cluster_restarts_with_every_key(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    for i in range(50):
        st, _, _ = put(leader, "/r/k%02d" % i, "v%d" % i)
        assert st == 201
    st, hdr, _ = leader.keys("GET", "/r/k49")
    index = hdr["x-etcd-index"]
    c.stop()
    c.start()
    leader = c.leader()
    for m in c.members:
        st, _, body = m.keys("GET", "/r", params={"recursive": "true", "quorum": "true"})
        assert st == 200
        assert sorted((n["key"], n["value"]) for n in body["node"]["nodes"]) == \
            sorted(("/r/k%02d" % i, "v%d" % i) for i in range(50))
    # each member publishes itself at start, which takes an index (as etcd's do); then a
    # write takes the next one
    wait_for(lambda: int(leader.keys("GET", "/r/k49")[1]["x-etcd-index"]) == int(index) + 3,
             what="the three members' publications")
    st, hdr, _ = put(leader, "/r/next", "x")
    assert st == 201 and int(hdr["x-etcd-index"]) == int(index) + 4


@pytest.mark.parametrize("n", [5, 7])
def test_five_and_seven_members_survive_a_minority_of_failures(make_cluster, n):
    c = make_cluster(n).start()
    leader = c.leader()
    for f in c.followers(leader)[:(n - 1) // 2]:
        f.kill9()
    st, _, body = put(leader, "/big", "majority-left")
    assert st == 201, body
    for m in c.running():
        st, _, body = m.keys("GET", "/big", params={"quorum": "true"})
        assert st == 200 and body["node"]["value"] == "majority-left"
    ms = json.loads(leader.request("GET", "/v2/members")[2])["members"]
    assert len(ms) == n


def test_python_etcd_uses_the_cluster(make_cluster):
    etcd = pytest.importorskip("etcd")
    c = make_cluster(3).start()
    leader = c.leader()
    follower = c.followers(leader)[0]
    hosts = tuple(("127.0.0.1", m.client_port) for m in c.members)
    client = etcd.Client(host=hosts, allow_reconnect=True, protocol="http")
    # (members publish their client URLs once they know the leader, as etcd's do)
    wait_for(lambda: sorted(client.machines) == sorted(m.url for m in c.members),
             what="python-etcd sees the three client URLs")
    wait_for(lambda: len(client.members) == 3 and all(x["name"] for x in client.members.values()),
             what="python-etcd sees 3 named members")
    fc = etcd.Client(host="127.0.0.1", port=follower.client_port, protocol="http")
    fc.write("/py/key", "through-a-follower")
    assert client.read("/py/key", quorum=True).value == "through-a-follower"
    assert fc.leader["id"] == leader.member_id()


def test_an_isolated_leader_steps_down_and_a_new_one_takes_over(make_cluster):
    c = make_cluster(3).start()
    old = c.leader()
    rest = c.followers(old)
    oid = old.member_id()
    old.partition("all")
    for m in rest:
        m.partition(oid)
    new = c.leader(among=rest, timeout=10)
    assert new is not old
    st, _, body = put(new, "/majority", "side")
    assert st == 201, body
    # The old leader notices it lost its quorum (check-quorum) and cannot commit.
    wait_for(lambda: old.stats_self()["state"] != "StateLeader", what="the old leader steps down")
    st, _, body = put(old, "/stale", "x", timeout=30)
    assert st == 500 and body["errorCode"] == 300, (st, body)
    old.partition("all", drop=False)
    for m in rest:
        m.partition(oid, drop=False)
    wait_for(lambda: old.keys("GET", "/majority")[0] == 200, what="the old leader catches up")
    st, _, _ = new.keys("GET", "/stale", params={"quorum": "true"})
    assert st == 404


def test_a_stopping_leader_hands_leadership_over(make_cluster):
    c = make_cluster(3).start()
    old = c.leader()
    t0 = time.monotonic()
    assert old.stop() == 0
    new = c.leader(timeout=10)
    took = time.monotonic() - t0
    assert new is not old
    assert "handed leadership to" in old.log_text(), old.log_text()
    st, _, body = put(new, "/after-handover", "ok")
    assert st == 201, body
    assert took < 5, took


def test_garbage_on_the_peer_port_closes_that_connection_only(make_cluster):
    import socket
    c = make_cluster(3).start()
    leader = c.leader()
    victim = c.followers(leader)[0]
    for payload in (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n",     # not our protocol at all
                    b"GET /" + b"x" * 9000,                    # an HTTP head without an end
                    b"\x00\x00\x00\x05hello",                  # a frame that is not msgpack
                    b"\xff\xff\xff\xff" + b"x" * 64):          # an absurd length
        s = socket.create_connection(("127.0.0.1", victim.peer_port), timeout=5)
        s.sendall(payload)
        s.settimeout(5)
        try:
            assert s.recv(100) == b""  # the member closes the connection
        except ConnectionResetError:
            pass
        s.close()
    # An HTTP GET of anything but /members or /version: etcd's 404, then the close.
    s = socket.create_connection(("127.0.0.1", victim.peer_port), timeout=5)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    s.settimeout(5)
    got = rawhttp.read_until_close(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 404 Not Found\r\n") and got.endswith(b"\r\n\r\n404 page not found\n"), got
    st, _, body = put(victim, "/still-fine", "yes")
    assert st == 201, body
    assert victim.running()
    assert "peers:" in victim.log_text(), victim.log_text()


def test_a_member_that_joins_by_replaying_the_log_gives_the_indexes_of_the_others(make_cluster):
    """A member that joins a running cluster and catches up from the log (no snapshot: the log
    still starts at index 1) replays the publication of a member removed before it joined. It
    took an index on every member then, so it takes one on the joiner too: every member gives
    the same X-Etcd-Index and modifiedIndex, and a compare-and-swap by index made through the
    joiner changes the same value everywhere (the joiner was one index behind, so the same
    prevIndex succeeded on it and failed on the others: the stores parted)."""
    c = make_cluster(3).start()
    leader = c.leader()
    for i in range(3):
        assert put(leader, "/k%d" % i, "v")[0] == 201
    victim = c.followers(leader)[0]
    st, _, body = leader.request("DELETE", "/v2/members/" + victim.member_id())
    assert st == 204, body
    wait_for(lambda: not victim.running(), what="the removed member stops")
    c.members.remove(victim)
    new = c.add_member_object("m3")
    st, _, body = add_member(leader, new.peer_url)
    assert st == 201, body
    new.state = "existing"
    new.start()
    wait_for(lambda: new.keys("GET", "/k2")[0] == 200, what="the new member catches up")
    assert "installed a snapshot" not in new.log_text()
    st, _, body = put(new, "/cas", "first")
    assert st == 201, body
    index = body["node"]["modifiedIndex"]
    st, _, body = new.keys("PUT", "/cas", form={"value": "second", "prevIndex": str(index)})
    assert st == 200 and body["node"]["value"] == "second", body

    def same_everywhere():
        seen = set()
        for m in c.members:
            st, hdrs, body = m.keys("GET", "/cas")
            st0, _, body0 = m.keys("GET", "/k0")
            seen.add((st, hdrs.get("X-Etcd-Index"), json.dumps(body, sort_keys=True),
                      body0["node"]["modifiedIndex"]))
        return len(seen) == 1 and seen
    got = wait_for(same_everywhere, what="the same answers on every member")
    assert json.loads(next(iter(got))[2])["node"]["value"] == "second"


def test_entries_proposed_before_a_restart_answer_no_request_made_after_it(make_cluster):
    """A follower forwards writes, the leader commits them without the follower seeing them (its
    appends to the follower are dropped), and the follower is killed with the writes waiting.
    Started again, it is sent new writes while the old entries are still to come. When they
    arrive, each answers nobody: every new write gets its own key's answer (request ids used to
    start at 1 at every start, so an old entry answered the new request with its id; now the
    member also holds requests until it has caught up)."""
    c = make_cluster(3).start()
    leader = c.leader()
    f = c.followers(leader)[0]
    fid = f.member_id()
    leader.drop_next(fid, "app", 1000000)
    answers = {}

    def write(m, key):
        try:
            answers[key] = put(m, key, "v", timeout=30)
        except OSError as e:
            answers[key] = e
    old = [threading.Thread(target=write, args=(f, "/old/k%d" % i), daemon=True) for i in range(6)]
    for t in old:
        t.start()
    wait_for(lambda: all(leader.keys("GET", "/old/k%d" % i)[0] == 200 for i in range(6)),
             what="the old writes committed without the follower")
    f.kill9()
    for t in old:
        t.join(10)
    f.start()
    new = [threading.Thread(target=write, args=(f, "/new/k%d" % i), daemon=True) for i in range(6)]
    for t in new:
        t.start()
    # Not caught up, it holds them (routes_ready): the old entries come first, then its
    # publication, then the new writes. Time-based request ids stay the second guard.
    time.sleep(1.0)
    assert all(leader.keys("GET", "/new/k%d" % i)[0] == 404 for i in range(6))
    leader.drop_next(fid, "app", 0)
    for t in new:
        t.join(30)
    for i in range(6):
        st, _, body = answers["/new/k%d" % i]
        assert st == 201 and body["node"]["key"] == "/new/k%d" % i, (i, st, body)
        assert leader.keys("GET", "/new/k%d" % i)[2]["node"]["modifiedIndex"] == \
            body["node"]["modifiedIndex"]


def test_a_one_member_cluster_grows_to_three(make_cluster):
    c = make_cluster(1).start()
    first = c.members[0]
    st, _, _ = put(first, "/grow", "from-one")
    assert st == 201
    for name in ("m1", "m2"):
        leader = c.leader()
        new = c.add_member_object(name)
        st, _, body = leader.request("POST", "/v2/members",
                                     body=json.dumps({"peerURLs": [new.peer_url]}),
                                     headers={"Content-Type": "application/json"})
        assert st == 201, body
        new.state = "existing"
        new.start()
        wait_for(lambda: new.keys("GET", "/grow")[0] == 200, what=name + " catches up")
        # Started (its name published) before the next change: --strict-reconfig-check
        # counts started members.
        wait_for(lambda: all(x["name"] for x in json.loads(
            c.leader().request("GET", "/v2/members")[2])["members"]), what=name + " named")
    ms = json.loads(c.leader().request("GET", "/v2/members")[2])["members"]
    assert sorted(x["name"] for x in ms) == ["m0", "m1", "m2"]
    # Three members now: one may fail.
    victim = c.followers(c.leader())[0]
    victim.kill9()
    st, _, body = put(c.leader(), "/grow", "with-two-of-three")
    assert st == 200, body


def test_watchers_of_a_member_restored_by_snapshot_are_cleared(make_cluster):
    """A member cut off while the others compact their logs is brought back by a snapshot;
    its watchers get etcd's error 400 (their history is gone) and new watches work."""
    import socket
    c = make_cluster(3, extra_args=("--snapshot-count", "50")).start()
    leader = c.leader()
    lag = c.followers(leader)[0]
    lid = lag.member_id()
    st, _, _ = put(leader, "/w/before", "x")
    assert st == 201
    wait_for(lambda: lag.keys("GET", "/w/before")[0] == 200, what="replica before the cut")
    lag.partition("all")
    for m in c.followers(leader) + [leader]:
        if m is not lag:
            m.partition(lid)
    # A streaming watch on the member that will be restored.
    s = socket.create_connection(("127.0.0.1", lag.client_port), timeout=30)
    s.sendall(b"GET /v2/keys/w?wait=true&recursive=true&stream=true HTTP/1.1\r\nHost: x\r\n\r\n")
    errors = []

    def writer(lo, hi):
        for i in range(lo, hi):
            st, _, _ = put(leader, "/w/k%04d" % i, "v")
            if st != 201:
                errors.append(st)

    ts = [threading.Thread(target=writer, args=(i * 150, (i + 1) * 150)) for i in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    lag.partition("all", drop=False)
    for m in c.members:
        if m is not lag:
            m.partition(lid, drop=False)
    data = b""
    deadline = time.monotonic() + 30
    while b"watcher is cleared" not in data and time.monotonic() < deadline:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    assert b'"errorCode":400' in data and b"watcher is cleared due to etcd recovery" in data, data[-500:]
    wait_for(lambda: "installed a snapshot" in lag.log_text(), what="the snapshot's log line")
    # The member serves the new state and new watches.
    st, _, body = lag.keys("GET", "/w", params={"recursive": "true"})
    assert st == 200 and len(body["node"]["nodes"]) == 1201
    st, hdr, _ = lag.keys("GET", "/w/before")
    idx = int(hdr["x-etcd-index"])
    st, _, body = put(leader, "/w/after", "y")
    assert st == 201
    st, _, body = lag.keys("GET", "/w/after", params={"wait": "true", "waitIndex": str(idx + 1)},
                           timeout=10)
    assert st == 200 and body["node"]["value"] == "y", body


def test_a_restarted_member_serves_keys_only_once_it_has_caught_up(make_cluster):
    """etcd's ReadyNotify: a member serves the keys and members APIs once its publication of
    this start is applied, so it never answers from the store it had while it was down. Here
    the others drop what they send it, so it cannot catch up: key and member requests wait
    (statistics and health answer); once they reach it, the new value is what it gives."""
    c = make_cluster(3).start()
    leader = c.leader()
    assert put(leader, "/ready/k", "before")[0] == 201
    victim = next(m for m in c.members if m is not leader)

    def change():
        assert put(leader, "/ready/k", "after")[0] == 200
    # systemd's readiness notification (Type=notify units) comes at the same point, as etcd's
    sockdir = tempfile.mkdtemp(prefix="qn", dir="/tmp")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(os.path.join(sockdir, "n"))
    os.environ["NOTIFY_SOCKET"] = os.path.join(sockdir, "n")
    try:
        vid = restart_cut_off(c, victim, while_down=change)
    finally:
        del os.environ["NOTIFY_SOCKET"]
    try:
        others = [m for m in c.members if m is not victim]
        assert victim.stats_self()["id"] == vid
        with pytest.raises(OSError):
            victim.keys("GET", "/ready/k", timeout=1.5)
        with pytest.raises(OSError):
            victim.request("GET", "/v2/members", timeout=1.0)
        notify.settimeout(0.5)
        with pytest.raises(socket.timeout):
            notify.recv(64)
        for o in others:
            o.partition(vid, False)
        notify.settimeout(15)
        assert notify.recv(64) == b"READY=1"
        st, _, body = victim.keys("GET", "/ready/k", timeout=1)
        assert st == 200 and body["node"]["value"] == "after", body
    finally:
        notify.close()
        shutil.rmtree(sockdir)


def test_a_joining_member_serves_keys_only_once_it_has_caught_up(make_cluster):
    """A member that joins with an empty data dir answers no key or member request from its
    empty store: they wait until it has caught up (here, until the leader lets its appends
    through), then show every key and every member's client URLs."""
    c = make_cluster(1).start()
    leader = c.leader()
    for i in range(20):
        assert put(leader, "/join/k%02d" % i, "v%d" % i)[0] == 201
    new = c.add_member_object("n1")
    st, _, body = leader.request("POST", "/v2/members",
                                 body=json.dumps({"peerURLs": [new.peer_url]}),
                                 headers={"Content-Type": "application/json"})
    assert st == 201, body
    leader.partition(json.loads(body)["id"], True)
    new.state = "existing"
    new.start()
    with pytest.raises(OSError):
        new.keys("GET", "/join/k19", timeout=1.5)
    with pytest.raises(OSError):
        new.request("GET", "/v2/members", timeout=1.0)
    leader.partition(json.loads(body)["id"], False)
    st, _, got = new.keys("GET", "/join/k19", timeout=15)
    assert st == 200 and got["node"]["value"] == "v19", got
    st, _, got = new.request("GET", "/v2/members", timeout=5)
    assert sorted(tuple(m["clientURLs"]) for m in json.loads(got)["members"]) \
        == sorted([(leader.url,), (new.url,)])
