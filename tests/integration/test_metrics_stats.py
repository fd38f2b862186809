"""/metrics (Prometheus text, etcd's metric names) and the counters of /v2/stats/*: they move
with the work done, exactly."""
import json
import re
import time

import pytest

import cluster
from raft_cluster import make_cluster, put  # noqa: F401 (make_cluster: a fixture)

pytestmark = pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd's own counters")

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.eE+-]+|\+Inf|NaN)$')


def metrics(srv):
    st, hdrs, body = cluster.http_request(srv.url, path="/metrics")
    assert st == 200
    assert hdrs["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for line in body.decode().splitlines():
        if not line or line.startswith("#"):
            assert line == "" or line.startswith("# HELP ") or line.startswith("# TYPE "), line
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def stats_store(srv):
    st, _, body = cluster.http_request(srv.url, path="/v2/stats/store")
    assert st == 200
    return json.loads(body)


def test_metrics_follow_writes(server):
    before = metrics(server)
    for name in ("etcd_server_has_leader", "etcd_server_is_leader",
                 "etcd_disk_wal_fsync_duration_seconds_count",
                 "etcd_server_proposals_committed_total", "etcd_debugging_store_watchers"):
        assert name in before, name
    assert before["etcd_server_has_leader"] == 1
    for i in range(20):
        assert server.keys("PUT", "/m/%d" % i, form={"value": "v"})[0] == 201
    after = metrics(server)
    assert after["etcd_server_proposals_committed_total"] - before["etcd_server_proposals_committed_total"] == 20
    assert after["etcd_server_proposals_applied_total"] - before["etcd_server_proposals_applied_total"] == 20
    assert after["etcd_disk_wal_fsync_duration_seconds_count"] > before["etcd_disk_wal_fsync_duration_seconds_count"]
    assert after['etcd_debugging_store_writes_total{action="set"}'] - \
        before['etcd_debugging_store_writes_total{action="set"}'] == 20
    # the histogram is cumulative and ends with +Inf == count
    buckets = sorted((float(k.split('le="')[1].rstrip('"}')), v) for k, v in after.items()
                     if k.startswith("etcd_disk_wal_fsync_duration_seconds_bucket") and "+Inf" not in k)
    assert all(b1[1] <= b2[1] for b1, b2 in zip(buckets, buckets[1:]))
    assert after['etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"}'] == \
        after["etcd_disk_wal_fsync_duration_seconds_count"]
    # one member: its own leader, seen once; the tree's group writes timed as etcd's backend
    # commits; the process collector's series
    assert after["etcd_server_is_leader"] == 1 and after["etcd_server_leader_changes_seen_total"] == 1
    assert after["etcd_disk_backend_commit_duration_seconds_count"] > \
        before["etcd_disk_backend_commit_duration_seconds_count"]
    assert after['etcd_disk_backend_commit_duration_seconds_bucket{le="+Inf"}'] == \
        after["etcd_disk_backend_commit_duration_seconds_count"]
    assert after["process_resident_memory_bytes"] > 1 << 20
    assert after["process_virtual_memory_bytes"] >= after["process_resident_memory_bytes"]
    assert 3 < after["process_open_fds"] == after["os_fd_used"] < after["process_max_fds"]
    assert after["process_cpu_seconds_total"] > 0
    assert after["etcd_server_snapshot_apply_in_progress_total"] == 0


def test_store_stats_count_exactly(server):
    b = stats_store(server)
    assert server.keys("PUT", "/s/a", form={"value": "1"})[0] == 201            # set
    assert server.keys("PUT", "/s/a", form={"value": "2", "prevExist": "true"})[0] == 200   # update
    assert server.keys("PUT", "/s/b", form={"value": "1", "prevExist": "false"})[0] == 201  # create
    assert server.keys("PUT", "/s/b", form={"value": "1", "prevExist": "false"})[0] == 412  # create fail
    assert server.keys("PUT", "/s/a", form={"value": "3", "prevValue": "2"})[0] == 200      # cas
    assert server.keys("PUT", "/s/a", form={"value": "4", "prevValue": "x"})[0] == 412      # cas fail
    assert server.keys("GET", "/s/a")[0] == 200
    assert server.keys("GET", "/s/none")[0] == 404
    assert server.keys("DELETE", "/s/a", params={"prevValue": "3"})[0] == 200               # cad
    assert server.keys("DELETE", "/s/b")[0] == 200
    assert server.keys("DELETE", "/s/b")[0] == 404
    a = stats_store(server)
    d = {k: a[k] - b[k] for k in a}
    assert d == {"getsSuccess": 1, "getsFail": 1, "setsSuccess": 1, "setsFail": 0,
                 "deleteSuccess": 1, "deleteFail": 1, "updateSuccess": 1, "updateFail": 0,
                 "createSuccess": 1, "createFail": 1, "compareAndSwapSuccess": 1,
                 "compareAndSwapFail": 1, "compareAndDeleteSuccess": 1, "compareAndDeleteFail": 0,
                 "expireCount": 0, "watchers": 0}


def test_stats_self_and_leader(server):
    st, _, body = cluster.http_request(server.url, path="/v2/stats/self")
    me = json.loads(body)
    assert st == 200 and me["state"] == "StateLeader" and me["name"] == server.name
    assert me["leaderInfo"]["leader"] == me["id"]
    st, _, body = cluster.http_request(server.url, path="/v2/stats/leader")
    assert st == 200 and json.loads(body) == {"leader": me["id"], "followers": {}}
    st, hdrs, body = cluster.http_request(server.url, path="/v2/members")
    assert st == 200 and json.loads(body)["members"][0]["id"] == me["id"]
    assert "x-etcd-cluster-id" in hdrs


def test_listen_metrics_urls_serve_metrics_and_health_only(make_server):
    """--listen-metrics-urls (etcd's): /metrics and /health on URLs of their own (a scraper
    configured for etcd's metrics port), the same counters as the client URL; nothing else."""
    port = cluster.free_port()
    srv = make_server(extra_args=["--listen-metrics-urls", "http://127.0.0.1:%d" % port])
    murl = "http://127.0.0.1:%d" % port
    for i in range(3):
        assert srv.keys("PUT", "/mm/%d" % i, form={"value": "v"})[0] == 201
    st, hdrs, body = cluster.http_request(murl, path="/metrics")
    assert st == 200 and hdrs["content-type"].startswith("text/plain; version=0.0.4")
    lines = body.decode().splitlines()
    # the three writes, and the member's publication and the cluster version (sets in etcd's
    # store too)
    assert 'etcd_debugging_store_writes_total{action="set"} 5' in lines
    assert "etcd_server_has_leader 1" in lines
    st, _, body = cluster.http_request(murl, path="/health")
    assert st == 200 and json.loads(body) == {"health": "true"}
    st, _, body = cluster.http_request(murl, path="/v2/keys/mm/0")
    assert st == 404 and body == b"404 page not found\n"
    # As etcd's: Prometheus' handler answers any method, /health GET alone.
    st, _, body = cluster.http_request(murl, method="PUT", path="/metrics", body="x")
    assert st == 200 and "etcd_server_has_leader 1" in body.decode().splitlines()
    st, hdrs, _ = cluster.http_request(murl, method="PUT", path="/health", body="x")
    assert st == 405 and hdrs["allow"] == "GET"
    st, hdrs, _ = cluster.http_request(murl, method="HEAD", path="/health")
    assert st == 405 and hdrs["allow"] == "GET"
    assert srv.keys("GET", "/mm/0")[0] == 200  # the client URL still serves the API


def test_cluster_metrics_per_member(make_cluster):
    """On 3 members: one leader (is_leader 1 on it alone, has_leader 1 on all, each has seen one
    leader), traffic per peer under etcd's labels (To/From the peer's id: the leader sends to
    both followers, each follower receives from the leader and answers it; its connections
    active; heartbeat round trips in the leader's histogram), and after the leader's kill -9 a
    new leader, seen as a change by both survivors."""
    c = make_cluster(3).start()
    leader = c.leader()
    followers = c.followers(leader)
    for i in range(10):
        assert put(leader, "/cm/k%d" % i, "v")[0] == 201
    ids = {m.name: m.member_id() for m in c.members}
    time.sleep(1.0)  # (a few heartbeat round trips)
    ms = {m.name: metrics(m) for m in c.members}
    lid = ids[leader.name]
    for m in c.members:
        x = ms[m.name]
        assert x["etcd_server_has_leader"] == 1
        assert x["etcd_server_is_leader"] == (1 if m is leader else 0), m.name
        assert x["etcd_server_leader_changes_seen_total"] >= 1
    x = ms[leader.name]
    for f in followers:
        fid = ids[f.name]
        assert x['etcd_network_peer_sent_bytes_total{To="%s"}' % fid] > 1000
        assert x['etcd_network_peer_received_bytes_total{From="%s"}' % fid] > 0
        assert x['etcd_network_active_peers{Local="%s",Remote="%s"}' % (lid, fid)] == 1
        assert x['etcd_network_peer_round_trip_time_seconds_count{To="%s"}' % fid] >= 3
        assert x['etcd_network_peer_round_trip_time_seconds_bucket{To="%s",le="+Inf"}' % fid] == \
            x['etcd_network_peer_round_trip_time_seconds_count{To="%s"}' % fid]
        y = ms[f.name]
        assert y['etcd_network_peer_received_bytes_total{From="%s"}' % lid] > 1000
        assert y['etcd_network_peer_sent_bytes_total{To="%s"}' % lid] > 0
        assert y["etcd_disk_backend_commit_duration_seconds_count"] > 0
    before = {f.name: ms[f.name]["etcd_server_leader_changes_seen_total"] for f in followers}
    leader.kill9()
    new = c.leader(timeout=20, among=followers)
    assert new is not None
    for f in followers:
        y = metrics(f)
        assert y["etcd_server_leader_changes_seen_total"] >= before[f.name] + 1, f.name
        assert y["etcd_server_is_leader"] == (1 if f is new else 0)
        assert y["etcd_server_has_leader"] == 1


def test_http_metrics_as_etcd_counts_them(make_server):
    """etcd's v2 request counters, compared with etcd 3.4 after the same requests:
    etcd_http_received_total by method (QGET for quorum reads; not a request refused while
    parsing, nor a watch), etcd_http_failed_total by method and status, and the count of
    etcd_http_successful_duration_seconds by method."""
    ref, srv = make_server(kind="etcd", name="ref"), make_server()

    def run(x):
        idx = x.keys("PUT", "/hm/a", form={"value": "1"})[2]["node"]["modifiedIndex"]
        x.keys("GET", "/hm/a")
        x.keys("GET", "/hm/a", params={"quorum": "true"})
        x.keys("GET", "/hm/nope")
        x.keys("PUT", "/hm/a", params={"prevValue": "zz"}, form={"value": "2"})
        x.keys("PUT", "/hm/a", params={"ttl": "abc"}, form={"value": "3"})
        x.keys("POST", "/hm/q", form={"value": "x"})
        x.keys("DELETE", "/hm/q", params={"prevIndex": "1"})
        x.keys("DELETE", "/hm/a")
        # a watch answered from the history (not counted), and one whose index is gone (failed)
        x.keys("GET", "/hm", params={"wait": "true", "waitIndex": str(idx), "recursive": "true"})
        for i in range(1005):
            x.keys("PUT", "/hm/fill", form={"value": str(i)})
        x.keys("GET", "/hm", params={"wait": "true", "waitIndex": str(idx), "recursive": "true"})
        x.keys("PUT", "/hm/d", params={"dir": "true"})
        x.keys("PUT", "/hm/d", form={"value": "not a dir"})

    def http_series(x):
        return {k: v for k, v in metrics(x).items()
                if k.startswith(("etcd_http_received_total", "etcd_http_failed_total",
                                 "etcd_http_successful_duration_seconds_count"))}
    before_ref, before_srv = http_series(ref), http_series(srv)
    run(ref)
    run(srv)

    def delta(after, before):
        return {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
    want = delta(http_series(ref), before_ref)
    got = delta(http_series(srv), before_srv)
    assert got == want
    assert want['etcd_http_received_total{method="QGET"}'] == 1
    assert want['etcd_http_failed_total{code="400",method="GET"}'] == 1  # (the watch: 401 is a 400)
    assert want['etcd_http_failed_total{code="403",method="PUT"}'] == 1  # (a value on a dir)
