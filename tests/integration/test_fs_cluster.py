"""quorumfs on a three-member quorumd cluster: the mount is given every member's client URL and
keeps working, with no change lost or doubled, when the member it talks to dies.

The mount's requests and its watch both start on the first endpoint. Killing that member
(kill -9, so no connection is closed cleanly before the process is gone) must move both to
another member: a write through the mount still lands (a follower forwards it to the leader),
a change made through another member still reaches the files and inotify, and changes made
while the watch was reconnecting are replayed from the watch's index, not lost. The files are
read (looked up) as soon as they can be, often before their create events reach the mount: each
must still give inotify its IN_CREATE, once. Mounts are
undone by the `mounts` fixture of test_fs.py; the cluster by `make_cluster`.
"""
import errno
import os
import re
import threading
import time

import pytest

import cluster
from fs_inotify import Inotify, created, modified
from relay import Relay
from raft_cluster import make_cluster, put, restart_cut_off, wait_for  # noqa: F401  (fixture)
from test_fs import _need_fuse, mounts, read_file, write_file  # noqa: F401

pytestmark = [pytest.mark.time_limit(120),
              pytest.mark.skipif(cluster.target() != "quorumd",
                                 reason="starts a quorumd cluster")]


def quorum_value(m, key):
    st, _, body = m.keys("GET", key, params={"quorum": "true"}, timeout=5)
    if st != 200:
        return None
    return body["node"].get("value")


def file_is(path, content):
    try:
        return read_file(path) == content
    except OSError:
        return False


def test_mount_survives_the_loss_of_the_member_it_talks_to(make_cluster, mounts):  # noqa: F811
    c = make_cluster(3).start()
    leader = c.leader()
    m0, m1, m2 = c.members
    st, _, body = put(leader, "/fsc/seed", "s")
    assert st == 201, body
    mnt = mounts(",".join(m.url for m in (m0, m1, m2)), prefix="/fsc")
    iw = Inotify(mnt.dir)
    try:
        # the mount talks to m0 first: its writes land on every member
        write_file(mnt.path("a"), b"one")
        for m in c.members:
            assert wait_for(lambda: quorum_value(m, "/fsc/a") == "one", what="a on " + m.name)

        m0.kill9()
        c.leader(among=[m1, m2], timeout=15)
        # the log says which member was lost and why, in curl's words
        lost = re.compile(r"quorumfs: watch: connection to %s lost \([^)]+\); reconnecting\n"
                          % re.escape(m0.url))
        assert wait_for(lambda: lost.search(mnt.log()), what="the lost watch logged"), mnt.log()

        # a change made through a survivor reaches the file and inotify
        st, _, body = put(m1, "/fsc/b", "from-m1")
        assert st == 201, body
        assert wait_for(lambda: file_is(mnt.path("b"), b"from-m1"), timeout=15,
                        what="b through the mount")
        st, _, body = put(m2, "/fsc/a", "two")
        assert st == 200, body
        assert wait_for(lambda: file_is(mnt.path("a"), b"two"), timeout=15,
                        what="a's new value through the mount")

        # a write through the mount lands on the survivors
        write_file(mnt.path("c"), b"from-mount")
        for m in (m1, m2):
            assert wait_for(lambda: quorum_value(m, "/fsc/c") == "from-mount",
                            what="c on " + m.name)
        assert sorted(os.listdir(mnt.dir)) == ["a", "b", "c", "seed"]

        # m0 comes back; the next member the mount uses dies: still no change lost
        m0.start()
        assert wait_for(lambda: quorum_value(m0, "/fsc/c") == "from-mount", what="m0 caught up")
        for i in range(5):  # changes made while the watch moves from one member to another
            # (a write sent while the leader is down waits for the next one, as etcd's does)
            wait_for(lambda: put(m0, "/fsc/burst%d" % i, str(i))[0] in (200, 201), timeout=15,
                     what="burst%d written" % i)
            if i == 1:
                m1.kill9()
        c.leader(among=[m0, m2], timeout=15)
        for i in range(5):
            assert wait_for(lambda: file_is(mnt.path("burst%d" % i), str(i).encode()),
                            timeout=15, what="burst%d through the mount" % i)
        write_file(mnt.path("d"), b"after-second-kill")
        assert wait_for(lambda: quorum_value(m2, "/fsc/d") == "after-second-kill", what="d")
        names = sorted(os.listdir(mnt.dir))
        assert names == ["a", "b", "burst0", "burst1", "burst2", "burst3", "burst4", "c", "d",
                         "seed"]
        # each change reached inotify once, as the same change made locally would
        expected = {"a": created("a") + modified("a")}
        for name in ("b", "c", "d") + tuple("burst%d" % i for i in range(5)):
            expected[name] = created(name)
        want = {k: [kind for _, kind in v] for k, v in expected.items()}
        deadline = time.monotonic() + 5
        while iw.per_path() != want and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        assert iw.per_path() == want, "inotify events:\n got      %r\n expected %r\n raw %r\n%s" % (
            iw.per_path(), want, iw.raw(), mnt.log())
    finally:
        iw.close()


def test_a_write_through_a_follower_survives_its_leaders_death(make_cluster, mounts):  # noqa: F811
    """A mount whose one endpoint is a follower: the file's store, forwarded to the leader, is
    lost with it (the forward dropped by the transport's hook, then the leader killed). The
    follower proposes it again to the next leader, and the close succeeds within op_timeout;
    with etcd's behaviour (error 300 after 7 s) it would fail with EIO."""
    c = make_cluster(3).start()
    leader = c.leader()
    follower, _ = c.followers(leader)
    assert wait_for(lambda: follower.keys("GET", "/")[0] == 200, what="follower ready")
    st, _, body = put(leader, "/fsl/seed", "s")
    assert st == 201, body
    mnt = mounts(follower.url, prefix="/fsl")
    assert wait_for(lambda: file_is(mnt.path("seed"), b"s"), what="seed through the mount")
    follower.drop_next(leader.member_id(), "prop")
    done = {}

    def writer():
        try:
            write_file(mnt.path("f"), b"after the failover")
            done["ok"] = True
        except OSError as e:
            done["err"] = e

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    time.sleep(0.5)  # (the close's PUT is forwarded and dropped; the leader still leads)
    assert not done, done
    leader.kill9()
    t.join(15)
    assert done == {"ok": True}, (done, mnt.log())
    assert quorum_value(follower, "/fsl/f") == "after the failover"
    assert read_file(mnt.path("f")) == b"after the failover"


def test_quorum_option_reads_through_the_leader(make_cluster, mounts):  # noqa: F811
    """-o quorum: what the mount reads from the store (hidden keys, which are never mirrored) is
    read with quorum=true, so a member cut off from the majority cannot answer it (EIO after
    op_timeout) where a plain read gets that member's possibly stale copy."""
    c = make_cluster(3).start()
    leader = c.leader()
    st, _, body = put(leader, "/fsq/_h", "hidden")
    assert st == 201, body
    m0, m1, m2 = c.members
    assert wait_for(lambda: quorum_value(m0, "/fsq/_h") == "hidden", what="_h on m0")
    q = mounts(m0.url, prefix="/fsq", opts="quorum,op_timeout=2")
    plain = mounts(m0.url, prefix="/fsq", opts="op_timeout=2")
    assert read_file(q.path("_h")) == b"hidden"
    m1.kill9()
    m2.kill9()
    assert read_file(plain.path("_h")) == b"hidden"
    with pytest.raises(OSError) as ei:
        read_file(q.path("_h"))
    assert ei.value.errno == errno.EIO


def test_mount_follows_members_replaced_one_by_one(make_cluster, mounts):  # noqa: F811
    """Every member the mount was given is replaced, one at a time (removed through the API, a
    new member on new ports joins): the mount reads the members' client URLs from /v2/members
    (-o sync_interval, etcd's client sync) and goes on with the new members, after the given
    ones that are gone. Remote changes still reach the files, writes still land."""
    import json
    c = make_cluster(3).start()
    assert put(c.leader(), "/fsr/seed", "s")[0] == 201
    given = list(c.members)
    mnt = mounts(",".join(m.url for m in given), prefix="/fsr", opts="sync_interval=0.5")
    for k, old in enumerate(given):
        survivor = next(m for m in c.members if m is not old and m.running())
        old_id = old.member_id()
        # (refused as "unhealthy cluster" until the member added last has been up a while:
        # --strict-reconfig-check)
        wait_for(lambda: survivor.request("DELETE", "/v2/members/" + old_id)[0] in (204, 410),
                 timeout=20, what="the removal of " + old.name)
        wait_for(lambda: not old.running(), what="the removed member stops")
        c.members.remove(old)
        leader = c.leader(timeout=15)  # (a new one, when the removed member led)
        new = c.add_member_object("r%d" % k)
        st, _, body = leader.request("POST", "/v2/members",
                                     body=json.dumps({"peerURLs": [new.peer_url]}),
                                     headers={"Content-Type": "application/json"}, timeout=20)
        assert st == 201, body
        new.state = "existing"
        new.start()
        wait_for(lambda: new.keys("GET", "/fsr/seed")[0] == 200, what="the new member catches up")
        # a change made now is seen through whichever members the mount can still reach
        assert put(new, "/fsr/after%d" % k, "v%d" % k)[0] == 201
        wait_for(lambda: file_is(mnt.path("after%d" % k), b"v%d" % k), timeout=15,
                 what="after%d through the mount" % k)
        # The operator's pace: the next member goes once the mount has read the new one's
        # client URL (replaced faster than the sync reads the members, any etcd client is lost).
        wait_for(lambda: any(line.startswith("quorumfs: endpoints:") and new.url in line
                             for line in mnt.log().splitlines()),
                 timeout=10, what="the mount's list has " + new.name)
    # none of the given members is left
    assert not any(m.running() for m in given)
    write_file(mnt.path("local"), b"still")
    for m in c.members:
        wait_for(lambda: quorum_value(m, "/fsr/local") == "still", what="local on " + m.name)
    assert "quorumfs: endpoints:" in mnt.log()


def test_the_watch_leaves_a_member_that_holds_it(make_cluster, mounts):  # noqa: F811
    """The mount's watch runs through its first endpoint (a relay to the leader); the next one
    is a member that restarted and cannot catch up (the others drop what they send it), so it
    holds every key request, the watch's too (etcd's members do the same until they are ready).
    When the first endpoint goes away, the watch tries that member, gives up on it after
    op_timeout (5 s) and watches through the last one: a remote change still reaches inotify."""
    c = make_cluster(3).start()
    leader = c.leader()
    assert put(leader, "/held/seed", "s")[0] == 201
    victim = next(m for m in c.members if m is not leader)
    restart_cut_off(c, victim)
    relay = Relay(leader.port)
    try:
        mnt = mounts(",".join([relay.url, victim.url, leader.url]), prefix="/held",
                     opts="sync_interval=0")
        assert read_file(mnt.path("seed")) == b"s"
        iw = Inotify(mnt.dir)
        try:
            relay.close()
            assert put(leader, "/held/after", "a")[0] == 201
            iw.expect(created("after"), timeout=15)
            assert "did not answer within op_timeout" in mnt.log()
        finally:
            iw.close()
    finally:
        relay.close()
