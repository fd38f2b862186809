"""Patroni (Debian's patroni: PostgreSQL high availability) keeps its cluster state in the
store through its etcd v2 layer (patroni.dcs.etcd, on python-etcd with its own failover
client), used here as Patroni uses it, without PostgreSQL: two nodes initialize the cluster
(prevExist=false: one wins), register as members (TTL keys), race for the leader key (one
wins), read the cluster (recursive GET), renew the leadership (prevValue with a TTL), write
the dynamic configuration with prevIndex (a stale index is refused), watch the leader key and
see it deleted, let the leader key expire (TTL) and take it over, and write the failover,
sync and history keys. The same runs against etcd 3.4 (QUORUM_TARGET=etcd). And on a
3-member cluster Patroni's client goes on through the other members when the one it uses
stops."""
import logging
import threading
import time

import pytest

import cluster
from raft_cluster import make_cluster  # noqa: F401  (a fixture)

try:
    from patroni.dcs.etcd import Etcd
except ImportError:  # reported by the fixture below
    Etcd = None


@pytest.fixture(autouse=True)
def _patroni_installed():
    if Etcd is None:
        pytest.fail("patroni is not installed: scripts/deps --test installs it (Debian's "
                    "patroni)", pytrace=False)
    logging.getLogger("patroni").setLevel(logging.CRITICAL)  # its expected refusals


def node(hosts, name, ttl=30, scope="demo"):
    return Etcd({"namespace": "/service/", "ttl": ttl, "retry_timeout": 10, "loop_wait": 10,
                 "hosts": hosts, "scope": scope, "name": name})


def hostport(url):
    return url.split("://", 1)[1]


def test_leader_race_members_config_and_watch(server):
    h = hostport(server.url)
    a, b = node(h, "node1"), node(h, "node2")
    assert a.initialize(create_new=True, sysid="6920000000000000000") is True
    assert b.initialize(create_new=True, sysid="1") is False       # already initialized
    assert a.touch_member({"conn_url": "postgres://a:5432/postgres", "state": "running",
                           "role": "master"}) is True
    assert b.touch_member({"conn_url": "postgres://b:5432/postgres", "state": "running",
                           "role": "replica"}) is True
    assert a.attempt_to_acquire_leader() is True
    assert b.attempt_to_acquire_leader() is False                  # the TTL lock is taken
    c = b.get_cluster(force=True)
    assert c.initialize == "6920000000000000000"
    assert c.leader.name == "node1"
    assert sorted(m.name for m in c.members) == ["node1", "node2"]
    assert {m.name: m.conn_url for m in c.members} == {
        "node1": "postgres://a:5432/postgres", "node2": "postgres://b:5432/postgres"}
    assert all(0 < m.session <= 30 for m in c.members)             # the members' TTLs
    # renewing: prevValue=name with the TTL; only the holder can
    assert a.update_leader(last_lsn=100) is True
    assert b.update_leader(last_lsn=100) is False
    c = a.get_cluster(force=True)
    assert c.last_lsn == 100 and c.leader.name == "node1"
    # the dynamic configuration: prevIndex=0 creates, a stale index is refused
    assert a.set_config_value('{"ttl":30,"loop_wait":10}', 0) is True
    c = a.get_cluster(force=True)
    assert c.config.data == {"ttl": 30, "loop_wait": 10}
    assert a.set_config_value('{"ttl":31}', c.config.index - 1) is False
    assert a.set_config_value('{"ttl":31}', c.config.index) is True
    assert a.get_cluster(force=True).config.data == {"ttl": 31}
    # a replica watches the leader key: the leader's delete ends the watch at once
    c = b.get_cluster(force=True)
    t = threading.Timer(1.0, a.delete_leader)
    t0 = time.monotonic()
    t.start()
    try:
        assert b.watch(c.leader.index, 8) is True
    finally:
        t.join()
    assert 0.8 < time.monotonic() - t0 < 4
    assert b.get_cluster(force=True).leader is None
    assert b.attempt_to_acquire_leader() is True
    # failover, sync and history keys
    assert b.manual_failover("node2", "node1") is True
    c = b.get_cluster(force=True)
    assert (c.failover.leader, c.failover.candidate) == ("node2", "node1")
    assert b.write_sync_state("node2", "node1") is not None
    assert b.get_cluster(force=True).sync.leader == "node2"
    assert b.set_history_value('[[1,25165984,"no recovery target specified"]]') is True
    assert b.get_cluster(force=True).history.lines == [[1, 25165984, "no recovery target specified"]]
    assert b.delete_cluster() is True
    assert b.get_cluster(force=True).leader is None


def test_an_expired_leader_key_is_taken_over(server):
    h = hostport(server.url)
    a, b = node(h, "node1", ttl=2, scope="expiry"), node(h, "node2", ttl=2, scope="expiry")
    assert a.attempt_to_acquire_leader() is True
    assert b.attempt_to_acquire_leader() is False
    # node1 stops renewing: its key expires after its TTL and node2 takes the lead
    deadline = time.monotonic() + 10
    while b.get_cluster(force=True).leader is not None:
        assert time.monotonic() < deadline, "the leader key did not expire"
        time.sleep(0.2)
    assert b.attempt_to_acquire_leader() is True
    assert b.get_cluster(force=True).leader.name == "node2"
    assert a.update_leader(last_lsn=1) is False                    # node1 has lost it


@pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd clusters only")
def test_patroni_goes_on_through_the_other_members(make_cluster):
    c = make_cluster(3).start()
    leader = c.leader()
    hosts = ",".join(hostport(m.url) for m in c.members)
    a = node(hosts, "node1")
    assert a.initialize(create_new=True, sysid="42") is True
    assert a.attempt_to_acquire_leader() is True
    # stop the member Patroni talks to (the first one it knows), then go on
    first = c.members[0]
    first.stop()
    if first is leader:
        c.leader(among=[m for m in c.members if m is not first])
    assert a.update_leader(last_lsn=7) is True
    cl = a.get_cluster(force=True)
    assert cl.leader.name == "node1" and cl.initialize == "42" and cl.last_lsn == 7
