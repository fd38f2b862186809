"""Requests lost with a leader, or on the way to one, in real 3-member clusters of quorumd
processes on loopback.

A follower forwards its clients' writes and membership changes to the leader. When that leader
dies, steps down or hands over before appending them, etcd answers them with error 300 after
its request timeout (7 s). quorumd proposes them again once the next leader's first entry is
applied, which is safe because a forward carries its term and only that term's leader may
append it (docs/DESIGN.md, "Writes lost with a leader"); a request whose client has gone is
withdrawn instead. The Raft core's side is in tests/unit/raft (test_raft_batch.c,
test_raft_confchange.c) and in the simulator (tests/sim), which fails on any request found
twice in the log.

Within a term, a forward lost on a connection that broke is sent again, and the leader drops a
second forward of a request it appended in its term already (daemon/prop_dedup.h); etcd answers
such a write with error 300 after 7 s.
"""
import json
import re
import threading
import time

import pytest

import cluster
from raft_cluster import make_cluster, wait_for  # noqa: F401 (a fixture)

pytestmark = pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd clusters only")


class Sent(threading.Thread):
    """A request sent in the background (it waits for the failover); .answer once joined."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.answer = fn, None
        self.start()

    def run(self):
        self.answer = self.fn()


def lose_forward_then_kill(leader, follower, fn):
    """Sends fn's request to follower with its forward to the leader dropped (the transport's
    one-way hook: lost for certain, with the leader alive, whatever the machine's load), then
    kills the leader: the request is answered after the failover. Returns its answer."""
    follower.drop_next(leader.member_id(), "prop")
    sent = Sent(fn)
    time.sleep(0.5)  # (forwarded and dropped within milliseconds; the leader still leads)
    assert sent.answer is None, sent.answer
    leader.kill9()
    sent.join(30)
    assert not sent.is_alive()
    return sent.answer


def created_once(member, answer):
    """answer is a 201 to an in-order create of "x" in /queue, which holds that key alone (a
    create made twice would leave two)."""
    st, _, body = answer
    assert st == 201, (st, body)
    assert body["action"] == "create" and body["node"]["value"] == "x"
    created = body["node"]
    st, _, body = member.keys("GET", "/queue", params={"quorum": "true", "recursive": "true"})
    assert st == 200, body
    assert [(n["key"], n["value"], n["modifiedIndex"]) for n in body["node"]["nodes"]] == [
        (created["key"], "x", created["modifiedIndex"])]


def test_a_write_lost_with_its_leader_is_proposed_again_and_happens_once(make_cluster):
    """A write that a follower forwarded to a leader that then died is lost with it. etcd
    answers it after its request timeout (5 s + 2 election timeouts) with error 300. quorumd's
    follower proposes it again once an entry of the new leader's term is applied without it (it
    can then never be committed: a forward carries its term, and only that term's leader takes
    it), so the write succeeds, once: an in-order create made twice would leave two keys."""
    c = make_cluster(3).start()
    leader = c.leader()
    follower, _ = c.followers(leader)
    wait_for(lambda: follower.keys("GET", "/")[0] == 200, what="follower ready")
    st, _, body = lose_forward_then_kill(
        leader, follower, lambda: follower.keys("POST", "/queue", form={"value": "x"}, timeout=30))
    created_once(follower, (st, None, body))
    assert "proposing 1 request(s) again" in follower.log_text()


def test_a_member_removal_lost_with_its_leader_is_proposed_again(make_cluster):
    """The same for a membership change: the leader removed through a follower whose forward
    of the removal was lost, the leader then killed. etcd answers error 300 after 7 s; here the
    removal is proposed again in the next term and answered 204."""
    c = make_cluster(3).start()
    leader = c.leader()
    follower, other = c.followers(leader)
    wait_for(lambda: follower.keys("GET", "/")[0] == 200, what="follower ready")
    gone = leader.member_id()
    st, _, body = lose_forward_then_kill(
        leader, follower, lambda: follower.request("DELETE", "/v2/members/" + gone, timeout=30))
    assert st == 204, (st, body)
    want = sorted([follower.member_id(), other.member_id()])
    for m in (follower, other):
        wait_for(lambda: sorted(x["id"] for x in json.loads(
            m.request("GET", "/v2/members")[2])["members"]) == want, what=m.name + " members")
    assert "proposing 1 request(s) again" in follower.log_text()


def pending_gauge(m):
    st, _, body = m.request("GET", "/metrics")
    assert st == 200
    found = re.search(rb"^etcd_server_proposals_pending (\S+)$", body, re.M)
    assert found, body[:200]
    return float(found.group(1))


def test_a_write_whose_client_left_is_not_proposed_again(make_cluster):
    """A client that gave up on a write (closed its connection, as a client does at its timeout
    before trying another member) takes the write's place in the queue with it: lost with the
    leader, it is not proposed again, so a retry elsewhere cannot make it happen twice. The
    pending-proposals gauge counts writes alone (quorum reads and member changes are not
    proposals of etcd's) and is back to 0."""
    c = make_cluster(3).start()
    leader = c.leader()
    follower, other = c.followers(leader)
    wait_for(lambda: follower.keys("GET", "/")[0] == 200, what="follower ready")
    for m in (follower, other):
        assert m.keys("GET", "/", params={"quorum": "true"})[0] == 200
    st, _, body = follower.request("PUT", "/v2/members/" + other.member_id(),
                                   body=json.dumps({"peerURLs": [other.peer_url]}),
                                   headers={"Content-Type": "application/json"})
    assert st == 204, body
    for m in c.members:
        assert pending_gauge(m) == 0, m.name
    follower.drop_next(leader.member_id(), "prop")
    with pytest.raises(OSError):  # (socket.timeout is one)
        follower.keys("PUT", "/left", form={"value": "x"}, timeout=0.5)
    leader.kill9()
    c.leader(among=[follower, other], timeout=10)
    st, _, body = follower.keys("PUT", "/after", form={"value": "y"}, timeout=10)
    assert st == 201, body
    assert follower.keys("GET", "/left", params={"quorum": "true"})[0] == 404
    assert "again" not in follower.log_text()
    assert pending_gauge(follower) == 0


def raft_term(m):
    st, headers, _ = m.keys("GET", "/")
    assert st == 200
    return int(headers["x-raft-term"])


def test_a_write_lost_in_a_broken_connection_is_sent_again_in_its_term(make_cluster):
    """A follower's forward of a write is lost on its way (dropped, as unread bytes are when a
    connection resets) and the connection to the leader then breaks, the leader living on.
    etcd answers such a write with error 300 after its request timeout (7 s), and the previous
    quorumd did too. The follower now sends it again to the same leader in the same term once
    the connection broke, and the write succeeds, once."""
    c = make_cluster(3).start()
    leader = c.leader()
    follower, _ = c.followers(leader)
    wait_for(lambda: follower.keys("GET", "/")[0] == 200, what="follower ready")
    term = raft_term(leader)
    follower.drop_next(leader.member_id(), "prop")
    sent = Sent(lambda: follower.keys("POST", "/queue", form={"value": "x"}, timeout=30))
    time.sleep(0.5)  # (forwarded and dropped within milliseconds)
    assert sent.answer is None, sent.answer
    follower.break_connection(leader.member_id())
    sent.join(30)
    created_once(follower, sent.answer)
    assert c.leader() is leader and raft_term(leader) == term
    assert "sending 1 request(s) to the leader %s again" % leader.member_id() \
        in follower.log_text()


def test_a_forward_the_leader_holds_already_is_dropped_there(make_cluster):
    """The other case: the leader did read the forward (and appended it), but the follower
    cannot know, because its connection broke before the entry came back (the leader's appends
    to it are held up meanwhile). The follower sends it again; the leader drops the second
    forward, and the in-order create exists once."""
    c = make_cluster(3).start()
    leader = c.leader()
    follower, _ = c.followers(leader)
    wait_for(lambda: follower.keys("GET", "/")[0] == 200, what="follower ready")
    leader.drop_next(follower.member_id(), "app", count=15)
    sent = Sent(lambda: follower.keys("POST", "/queue", form={"value": "x"}, timeout=30))
    time.sleep(0.3)
    assert sent.answer is None, sent.answer
    follower.break_connection(leader.member_id())
    sent.join(30)
    created_once(follower, sent.answer)
    wait_for(lambda: "1 request(s) from %s dropped: appended in this term already"
             % follower.member_id() in leader.log_text(), what="the leader's log line")
