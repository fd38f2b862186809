"""quorumctl backup (etcdctl v2's): a copy of a member's data dir, taken while the member
writes, that `quorumd --force-new-cluster` starts as a new one-member cluster.

A member takes writes from four clients (8 KiB values and --snapshot-count 100: LevelDB
flushes and compacts, and the Raft log's segments roll and are deleted, while it is copied) and
three backups are taken under that load. Each one, started on its own,
holds every write acknowledged before its backup began, and nothing but a prefix of the
writes (no gap: the copy is the store as of one moment), answers under a new member id and
cluster id (as etcdctl backup gives the copy), and takes new writes. Then the refusals.
"""
import json
import os
import subprocess
import threading
import time

import pytest

import cluster
from raft_cluster import make_cluster, put, put_many, start_killed_by_hook, wait_for  # noqa: F401
from test_quorumctl import quorumctl_binary

pytestmark = pytest.mark.time_limit(180)


def backup(*args):
    p = subprocess.run([quorumctl_binary(), "backup"] + list(args), capture_output=True,
                       timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def keys_below(srv, d):
    st, _, body = srv.keys("GET", d, params={"recursive": "true"})
    if st == 404:
        return {}
    assert st == 200, (st, body)
    return {n["key"]: n["value"] for n in body["node"].get("nodes", [])}


def test_backups_under_load_restore_as_new_clusters(tmp_path):
    if cluster.target() == "etcd":
        pytest.skip("a quorumd data dir")
    src = cluster.Server(str(tmp_path / "src"), extra_args=["--snapshot-count", "100"]).start()
    threads_n, big = 4, "x" * 8192  # (8 KiB values: LevelDB flushes, the log's segments roll)
    acked = [[] for _ in range(threads_n)]
    stop = threading.Event()

    def writer(j):
        i = 0
        while not stop.is_set():
            i += 1
            st, _, _ = src.keys("PUT", "/w/t%d/k%06d" % (j, i), form={"value": "%d%s" % (i, big)})
            assert st in (200, 201)
            acked[j].append(i)

    ts = [threading.Thread(target=writer, args=(j,), daemon=True) for j in range(threads_n)]
    for t in ts:
        t.start()
    points = []
    try:
        for n in range(3):
            time.sleep(1.0)
            before = [len(a) for a in acked]
            dest = str(tmp_path / ("backup%d" % n))
            rc, out, err = backup("--data-dir", src.data_dir, "--backup-dir", dest)
            assert rc == 0, err
            assert "start it with: quorumd --data-dir %s --force-new-cluster" % dest in out, out
            points.append((dest, before))
    finally:
        stop.set()
        for t in ts:
            t.join(timeout=10)
        assert src.running(), "the member stopped during the backups:\n" + src.log_text()
    assert sum(len(a) for a in acked) > 1000, "too few writes to roll the log: %d" % sum(
        len(a) for a in acked)
    src_members = json.loads(src.request("GET", "/v2/members")[2])["members"]
    src_cluster = src.request("GET", "/v2/keys/")[1].get("x-etcd-cluster-id")

    def source_intact(when):
        # a backup reads the member's files and never changes them (a copy's check once
        # overwrote a table the member had just written: the member stopped, or lost writes)
        for j in range(threads_n):
            got = keys_below(src, "/w/t%d" % j)
            missing = [i for i in acked[j] if got.get("/w/t%d/k%06d" % (j, i)) != "%d%s" % (i, big)]
            assert not missing, "%s: the member lost writes %r..." % (when, missing[:5])

    source_intact("after the backups")
    src.restart()
    source_intact("after a restart")
    src.stop()
    for n, (dest, before) in enumerate(points):
        r = cluster.Server(str(tmp_path / ("restored%d" % n)), extra_args=["--force-new-cluster"])
        r.data_dir = dest
        r.start()
        try:
            for j in range(threads_n):
                got = keys_below(r, "/w/t%d" % j)
                idx = sorted(int(k.rsplit("k", 1)[1]) for k in got)
                assert idx == list(range(1, len(idx) + 1)), "backup %d: not a prefix" % n
                assert len(idx) >= before[j], "backup %d lost acknowledged writes (%d < %d)" % (
                    n, len(idx), before[j])
                assert all(got["/w/t%d/k%06d" % (j, i)] == "%d%s" % (i, big) for i in idx)
            members = json.loads(r.request("GET", "/v2/members")[2])["members"]
            assert len(members) == 1 and members[0]["id"] != src_members[0]["id"], members
            assert members[0]["peerURLs"] == [r.peer_url]
            st, hdrs, _ = r.request("GET", "/v2/keys/")
            assert hdrs.get("x-etcd-cluster-id") not in (None, src_cluster)
            st, _, body = r.keys("PUT", "/after", form={"value": "x"})
            assert st == 201, body
        finally:
            r.stop()


def test_a_restored_backup_keeps_the_event_history(tmp_path):
    """The history's files come with the tree: a watch from an index the backup's tree had
    applied is answered from them, as on the member, where it was cleared (error 401)."""
    if cluster.target() == "etcd":
        pytest.skip("a quorumd data dir")
    src = cluster.Server(str(tmp_path / "src")).start()
    first = None
    for i in range(30):
        st, _, body = src.keys("PUT", "/h/k%d" % i, form={"value": "v%d" % i})
        assert st == 201, body
        first = first or body["node"]["modifiedIndex"]
    st, _, body = src.keys("DELETE", "/h/k3")
    assert st == 200, body
    dest = str(tmp_path / "backup")
    rc, out, err = backup("--data-dir", src.data_dir, "--backup-dir", dest)
    assert rc == 0, err
    src.stop()
    r = cluster.Server(str(tmp_path / "restored"), extra_args=["--force-new-cluster"])
    r.data_dir = dest
    r.start()
    try:
        for i, (action, key) in enumerate([("set", "/h/k0"), ("set", "/h/k1")]):
            st, _, body = r.keys("GET", "/h", params={"wait": "true", "recursive": "true",
                                                      "waitIndex": str(first + i)})
            assert st == 200, body
            assert (body["action"], body["node"]["key"], body["node"]["modifiedIndex"]) == (
                action, key, first + i)
        st, _, body = r.keys("GET", "/h/k3", params={"wait": "true",
                                                     "waitIndex": str(first + 4)})
        assert st == 200 and body["action"] == "delete", body
    finally:
        r.stop()


def test_backup_refusals(tmp_path):
    rc, out, err = backup("--backup-dir", str(tmp_path / "b"))
    assert (rc, out, err) == (1, "", "Error: backup needs --data-dir and --backup-dir\n")
    rc, out, err = backup("--data-dir", str(tmp_path), "--backup-dir", str(tmp_path / "b"))
    assert rc == 1 and err.startswith("Error: %s is not a quorumd data dir" % tmp_path), err
    (tmp_path / "etcd" / "member").mkdir(parents=True)
    rc, out, err = backup("--data-dir", str(tmp_path / "etcd"), "--backup-dir", str(tmp_path / "b"))
    assert (rc, err) == (1, "Error: %s is an etcd data dir: back it up with etcdctl backup\n"
                         % (tmp_path / "etcd")), err
    if cluster.target() == "etcd":
        return
    src = cluster.Server(str(tmp_path / "src")).start()
    src.stop()
    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("keep")
    rc, out, err = backup("--data-dir", src.data_dir, "--backup-dir", str(full))
    assert (rc, err) == (1, "Error: %s is not empty: a backup goes to a new directory\n" % full)
    assert (full / "x").read_text() == "keep" and sorted(os.listdir(full)) == ["x"]
    rc, out, err = backup("--data-dir", src.data_dir, "--backup-dir",
                          os.path.join(src.data_dir, "inside"))
    assert (rc, err) == (1, "Error: the backup dir is inside the data dir\n")
    rc, out, err = backup("--data-dir", src.data_dir, "--wal-dir", str(tmp_path / "nowal"),
                          "--backup-dir", str(tmp_path / "b2"))
    assert (rc, err) == (1, "Error: no raft log in %s (a member started with --wal-dir keeps it "
                            "there: give that with --wal-dir)\n" % (tmp_path / "nowal")), err
    assert not (tmp_path / "b2").exists()


def test_a_followers_backup_of_a_3_member_cluster(make_cluster, tmp_path):
    """The copy of a follower of a running 3-member cluster: restored, it is a cluster of one
    (the three old members, the copied one included, gone from /v2/members: the copy has a new
    id) with every key the cluster had acknowledged before the backup, and the cluster goes
    on, untouched."""
    if cluster.target() == "etcd":
        pytest.skip("quorumd clusters only")
    c = make_cluster(3).start()
    leader = c.leader(timeout=20)
    follower = c.followers(leader)[0]
    for i in range(50):
        st, _, body = put(leader, "/c/k%02d" % i, "v%d" % i)
        assert st == 201, body
    # the follower has applied them (its quorum reads go through the leader: read it plainly)
    wait_for(lambda: follower.keys("GET", "/c/k49")[0] == 200, what="the follower has k49")
    dest = str(tmp_path / "fbackup")
    rc, out, err = backup("--data-dir", follower.data_dir, "--backup-dir", dest)
    assert rc == 0, err
    st, _, body = put(leader, "/c/after", "x")
    assert st == 201, body
    r = cluster.Server(str(tmp_path / "restored"), extra_args=["--force-new-cluster"])
    r.data_dir = dest
    r.start()
    try:
        assert "3 other member(s) removed" in r.log_text(), r.log_text()  # (new id)
        got = keys_below(r, "/c")
        assert all(got.get("/c/k%02d" % i) == "v%d" % i for i in range(50)), sorted(got)
        members = json.loads(r.request("GET", "/v2/members")[2])["members"]
        assert [m["peerURLs"] for m in members] == [[r.peer_url]], members
        st, _, body = r.keys("PUT", "/c/restored", form={"value": "y"})
        assert st == 201, body
    finally:
        r.stop()
    assert leader.keys("GET", "/c/after")[0] == 200
    assert len(json.loads(leader.request("GET", "/v2/members")[2])["members"]) == 3


def test_backup_of_a_member_stopped_halfway_through_installing_a_snapshot(make_cluster, tmp_path):
    """A member killed halfway through installing a snapshot (a test hook: its old tree deleted,
    part of the new one written) is backed up as it lies: the copy carries the snapshot's synced
    copy, and started with --force-new-cluster it completes the install and holds every key of
    the snapshot. Without that copy the member's tree is refused, by the backup and by quorumd
    (never served half old and half new)."""
    if cluster.target() == "etcd":
        pytest.skip("quorumd clusters only")
    c = make_cluster(3, extra_args=("--snapshot-count", "50")).start()
    leader = c.leader(timeout=20)
    lag = c.followers(leader)[0]
    lag.stop()
    n = 1300
    put_many(leader, "/h/k%04d", n)
    start_killed_by_hook(lag, "mid")
    assert "killed halfway through installing a snapshot" in lag.log_text()
    assert os.path.exists(os.path.join(lag.data_dir, "tree", "snapshot.install"))
    dest = str(tmp_path / "hbackup")
    rc, out, err = backup("--data-dir", lag.data_dir, "--backup-dir", dest)
    assert rc == 0, err
    assert os.path.exists(os.path.join(dest, "tree", "snapshot.install"))
    # (the index it names is the snapshot's, where the copy starts)
    at = int(out.split("(raft index ")[1].split(")")[0])
    assert at >= n, out
    r = cluster.Server(str(tmp_path / "restored"), extra_args=["--force-new-cluster"])
    r.data_dir = dest
    r.start()
    try:
        log = r.log_text()
        assert "snapshot.install again (the member stopped while installing it)" in log, log
        got = keys_below(r, "/h")
        assert len(got) == n and got["/h/k0123"] == "v123", len(got)
        assert not os.path.exists(os.path.join(dest, "tree", "snapshot.install"))
    finally:
        r.stop()
    # the same tree without its copy: refused by the backup, and by quorumd, with the reason
    os.unlink(os.path.join(lag.data_dir, "tree", "snapshot.install"))
    rc, out, err = backup("--data-dir", lag.data_dir, "--backup-dir", str(tmp_path / "bad"))
    assert rc == 1 and "halfway through installing a snapshot" in err, (rc, err)
    assert not os.path.exists(str(tmp_path / "bad"))
    with pytest.raises(cluster.ServerStartError) as exc:
        lag.start()
    assert "left halfway through installing a snapshot, and snapshot.install, which would " \
           "complete it, is missing" in str(exc.value)
