"""--force-new-cluster: the way back when a cluster has lost its quorum for good.

What an operator relies on, as with etcd: the one member left restarts with the flag as a
one-member cluster with every committed key (same indexes, same cluster id), the others gone
from /v2/members; a write that never reached a quorum (its client got no answer) does not
come back; writes work at once; a removed member started again with its old data is told so
and stops; the member stays alone when restarted without the flag; and the cluster can be
grown again with POST /v2/members.
"""
import json
import re

import pytest

import cluster
from raft_cluster import make_cluster, put, wait_for  # noqa: F401 (make_cluster: a fixture)

pytestmark = pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd clusters only")


def assert_told_removed_and_stops(m, timeout=15.0):
    """Starts m (a member no longer in the cluster, with its old data dir): it must stop by
    itself, exit status 0, saying why."""
    try:
        m.start(timeout=timeout)  # ready only if it is told late; it may stop during start-up
    except cluster.ServerStartError:
        pass
    m.proc.wait(timeout=timeout)
    assert m.proc.returncode == 0, m.log_text()
    assert "this member was removed from the cluster; stopping" in m.log_text(), m.log_text()


def members(m):
    st, _, body = m.request("GET", "/v2/members")
    assert st == 200, body
    return sorted((x["name"], x["peerURLs"][0]) for x in json.loads(body)["members"])


def test_the_last_member_restarts_alone_with_every_committed_key(make_cluster):
    # A long election timeout: the leader keeps leading (and appending) for 2 s after its
    # followers die, so the write sent then is in its log, uncommitted.
    c = make_cluster(3, extra_args=("--election-timeout", "2000")).start()
    leader = c.leader(timeout=20)
    for i in range(20):
        st, _, body = put(leader, "/f/k%02d" % i, "v%d" % i)
        assert st == 201, body
    st, hdr, _ = leader.keys("GET", "/f/k19")
    index, cluster_id = int(hdr["x-etcd-index"]), hdr["x-etcd-cluster-id"]
    for f in c.followers(leader):
        f.kill9()
    with pytest.raises(OSError):  # no quorum: no answer (the client gives up first)
        put(leader, "/f/lost", "never-acknowledged", timeout=1.0)
    st, _, body = leader.request("GET", "/v2/stats/self")
    assert json.loads(body)["state"] == "StateLeader", "the write must have reached the log"
    leader.stop()

    leader.extra_args = list(leader.extra_args) + ["--force-new-cluster"]
    leader.start()
    log = leader.log_text()
    m = re.search(r"--force-new-cluster: (\d+) other member\(s\) removed, (\d+) uncommitted", log)
    assert m, log
    assert m.group(1) == "2" and int(m.group(2)) >= 1, m.group(0)
    assert members(leader) == [(leader.name, leader.peer_url)]
    st, _, body = leader.keys("GET", "/f", params={"recursive": "true", "sorted": "true"})
    assert st == 200, body
    assert [(n["key"], n["value"], n["modifiedIndex"]) for n in body["node"]["nodes"]] \
        == [("/f/k%02d" % i, "v%d" % i, index - 19 + i) for i in range(20)]
    assert leader.keys("GET", "/f/lost")[0] == 404
    st, hdr, body = put(leader, "/f/after", "alone")
    assert st == 201, body
    assert hdr["x-etcd-cluster-id"] == cluster_id
    assert int(hdr["x-etcd-index"]) > index
    st, _, body = leader.keys("GET", "/f/after", params={"quorum": "true"})
    assert st == 200 and body["node"]["value"] == "alone"

    # A removed member started again with its old data dir is told so by the survivor, and
    # stops instead of running beside the cluster with its old view.
    old = [x for x in c.members if x is not leader][0]
    assert_told_removed_and_stops(old)
    assert members(leader) == [(leader.name, leader.peer_url)]
    assert leader.keys("GET", "/f/after")[0] == 200

    # Without the flag: still alone, nothing lost, nothing removed again.
    leader.extra_args = [a for a in leader.extra_args if a != "--force-new-cluster"]
    leader.restart()
    assert "--force-new-cluster" not in leader.log_text()
    assert members(leader) == [(leader.name, leader.peer_url)]
    st, _, body = put(leader, "/f/again", "restarted")
    assert st == 201, body

    # Grown again: a new member is added and catches up with everything.
    new = c.add_member_object("m3")
    st, _, body = leader.request("POST", "/v2/members",
                                 body=json.dumps({"peerURLs": [new.peer_url]}),
                                 headers={"Content-Type": "application/json"})
    assert st == 201, body
    c.excluded = {x.name for x in c.members if x not in (leader, new)}  # the removed ones
    new.state = "existing"
    new.start()
    for k in ("/f/k00", "/f/k19", "/f/after", "/f/again"):
        wait_for(lambda: new.keys("GET", k)[0] == 200, what="m3 has " + k)
    # Its name is empty until its own publication is applied (as in etcd), which comes after
    # the keys it caught up with.
    want = sorted([(leader.name, leader.peer_url), ("m3", new.peer_url)])
    wait_for(lambda: members(new) == want, what="m3 published on m3")
    st, _, body = put(new, "/f/two", "members")
    assert st == 201, body
    assert leader.keys("GET", "/f/two")[0] == 200


def test_a_new_data_dir_with_the_flag_is_a_one_member_cluster(make_cluster):
    c = make_cluster(1, extra_args=("--force-new-cluster",)).start()
    m = c.members[0]
    assert "other member(s) removed" not in m.log_text()
    assert members(m) == [(m.name, m.peer_url)]
    st, _, body = put(m, "/k", "v")
    assert st == 201, body
