"""The store index (X-Etcd-Index, and so every key's createdIndex and modifiedIndex) counts what
etcd 3.4's counts. etcd keeps its members and cluster version in its v2 store, out of the keys
API's sight, so a new cluster of N members starts at 2N+1 (a member key per initial member,
the cluster version, a publication per member start); every later start of a member takes
one more, an added member one, a removed one two, a peer URL update one. Measured on etcd
3.4.23: 3 for one member (4 after a restart), 7 for three, then 8 after an add, 10 after a
remove and 11 after an update. Those writes count in /v2/stats/store as etcd counts them
(sets, creates, an update, a delete), and the counters go on across restarts as etcd's do.
The one-member case runs against etcd too."""
import json

import pytest

import cluster
from raft_cluster import make_cluster, wait_for  # noqa: F401  (make_cluster: a fixture)

J = {"Content-Type": "application/json"}


def writes(m):
    """The store stats' write counters that membership moves (sets, creates, updates,
    deletes): (setsSuccess, createSuccess, updateSuccess, deleteSuccess)."""
    st, _, body = m.request("GET", "/v2/stats/store")
    assert st == 200
    s = json.loads(body)
    return s["setsSuccess"], s["createSuccess"], s["updateSuccess"], s["deleteSuccess"]


def index(m):
    st, hdrs, _ = m.keys("GET", "/")
    assert st == 200
    return int({k.lower(): v for k, v in hdrs.items()}["x-etcd-index"])


def test_one_member_starts_at_three_and_each_start_takes_one(server):
    assert index(server) == 3
    assert writes(server) == (2, 1, 0, 0)   # publication and cluster version; the member
    st, _, body = server.keys("PUT", "/k", form={"value": "v"})
    assert st == 201 and body["node"]["createdIndex"] == body["node"]["modifiedIndex"] == 4
    server.restart()
    wait_for(lambda: index(server) == 5, what="the publication of the restarted member")
    assert writes(server) == (4, 1, 0, 0)   # the counters go on from before the restart
    st, _, body = server.keys("PUT", "/k", form={"value": "w"})
    assert st == 200 and body["node"]["modifiedIndex"] == body["node"]["createdIndex"] == 6
    assert body["prevNode"]["modifiedIndex"] == 4


@pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd clusters only")
def test_three_members_and_membership_changes(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    for m in c.members:
        wait_for(lambda: index(m) == 7, what="index 7 on " + m.name)
        assert writes(m) == (4, 3, 0, 0)
    # an add takes one
    port = cluster.free_port()
    st, _, body = leader.request("POST", "/v2/members",
                                 body=json.dumps({"peerURLs": ["http://127.0.0.1:%d" % port]}),
                                 headers=J)
    assert st == 201, body
    new_id = json.loads(body)["id"]
    wait_for(lambda: all(index(m) == 8 for m in c.members), what="index 8 everywhere")
    # a remove takes two
    st, _, body = leader.request("DELETE", "/v2/members/" + new_id)
    assert st == 204, body
    wait_for(lambda: all(index(m) == 10 for m in c.members), what="index 10 everywhere")
    # a peer URL update takes one
    f = c.followers(leader)[0]
    st, _, body = leader.request("PUT", "/v2/members/" + f.member_id(),
                                 body=json.dumps({"peerURLs": [f.peer_url]}), headers=J)
    assert st == 204, body
    wait_for(lambda: all(index(m) == 11 for m in c.members), what="index 11 everywhere")
    st, _, body = f.keys("PUT", "/after", form={"value": "x"})
    assert st == 201 and body["node"]["modifiedIndex"] == 12
    # a member's restart: its publication takes one
    f.stop()
    f.start()
    wait_for(lambda: all(index(m) == 13 for m in c.members), what="index 13 everywhere")
    # sets: 3 publications, the version, the write, the publication again; creates: 3 member
    # keys, the added one, the removed record; the peer URL update; the removal's delete
    for m in c.members:
        assert writes(m) == (6, 5, 1, 1)
