"""v2 proxies in front of a quorumd cluster. The peer port answers GET /members (and /version)
over HTTP as etcd's peer handler does, so that a real etcd 3.4 started with `--proxy on
--initial-cluster <quorumd peer URLs>` finds the members' client URLs; quorumd itself runs as
such a proxy with the same flags. Each serves the cluster's v2 API: writes, reads, a watch, a
member going away, read-only mode, and every member gone."""
import http.client
import json
import os
import shutil
import subprocess
import threading
import urllib.parse

import pytest

import cluster
from raft_cluster import RaftCluster, make_cluster, put, wait_for  # noqa: F401  (make_cluster: a fixture)

pytestmark = [
    pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd clusters only"),
    pytest.mark.skipif(not cluster.etcd_binary(), reason="etcd is not installed"),
]


def peer_get(member, path):
    u = urllib.parse.urlparse(member.peer_url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


class Proxy(cluster.Server):
    """A real etcd or a quorumd in v2 proxy mode, given the cluster's peer URLs."""

    def __init__(self, workdir, initial_cluster, mode="on", kind="etcd", extra_args=()):
        super().__init__(workdir, kind=kind, name="proxy", extra_args=extra_args)
        self.initial_cluster = initial_cluster
        self.mode = mode

    def argv(self):
        return [self.binary, "--proxy", self.mode, "--data-dir", os.path.join(self.workdir, "data"),
                "--listen-client-urls", self.url, "--initial-cluster",
                self.initial_cluster] + list(self.extra_args)


@pytest.fixture
def proxies(tmp_path):
    made = []

    def make(initial_cluster, mode="on", kind="etcd"):
        p = Proxy(str(tmp_path / ("proxy%d" % len(made))), initial_cluster, mode, kind)
        made.append(p)
        return p.start()
    yield make
    for p in made:
        if p.running():
            p.stop()
    for p in made:
        log = p.all_logs(400000)
        assert not any(x in log for x in RaftCluster.SANITIZER_MARKS), log[-20000:]


def published(c):
    st, _, body = c.members[0].request("GET", "/v2/members")
    ms = json.loads(body)["members"] if st == 200 else []
    return ms if len(ms) == len(c.members) and all(m["clientURLs"] for m in ms) else None


def test_the_peer_port_answers_members_as_etcd(make_cluster):
    c = make_cluster(3).start()
    ms = wait_for(lambda: published(c), what="every member's client URLs")
    st, hdr, _ = c.members[0].request("GET", "/v2/members")
    cluster_id = hdr["x-etcd-cluster-id"]
    want = sorted(({"id": int(m["id"], 16), "name": m["name"], "peerURLs": m["peerURLs"],
                    "clientURLs": m["clientURLs"]} for m in ms), key=lambda m: m["id"])
    for m in c.members:
        st, h, body = peer_get(m, "/members")
        assert st == 200 and h["content-type"] == "application/json", (st, h)
        assert h["x-etcd-cluster-id"] == cluster_id
        assert sorted(json.loads(body), key=lambda m: m["id"]) == want
        st, h, body = peer_get(m, "/version")
        assert st == 200 and json.loads(body) == {"etcdserver": "3.4.23", "etcdcluster": "3.4.0"}
        st, h, body = peer_get(m, "/nothing")
        assert (st, body) == (404, b"404 page not found\n")
    # The peer protocol is untouched: the members still replicate.
    st, _, _ = put(c.members[1], "/after-http", "v")
    assert st == 201


@pytest.mark.parametrize("kind", ["etcd", "quorumd"])
def test_a_proxy_serves_the_cluster(make_cluster, proxies, kind):
    c = make_cluster(3).start()
    wait_for(lambda: published(c), what="every member's client URLs")
    initial = ",".join("%s=%s" % (m.name, m.peer_url) for m in c.members)
    px = proxies(initial, kind=kind)
    st, _, body = px.request("GET", "/v2/config/local/proxy")
    assert st == 200 and sorted(json.loads(body)["endpoints"]) == sorted(m.url for m in c.members)
    st, _, body = px.keys("PUT", "/via/proxy", form={"value": "hello"})
    assert st == 201 and body["node"]["value"] == "hello", body
    for m in c.members:
        wait_for(lambda m=m: m.keys("GET", "/via/proxy")[0] == 200, what="the write everywhere")
    st, _, body = px.keys("GET", "/via/proxy", params={"quorum": "true"})
    assert st == 200 and body["node"]["value"] == "hello"
    # A watch through the proxy sees a write made on a member.
    got = {}

    def watch():
        got["answer"] = px.keys("GET", "/via/w", params={"wait": "true"}, timeout=15)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    wait_for(lambda: sum(m.watchers() for m in c.members) >= 1, what="the watch registered")
    leader = c.leader()
    st, _, _ = put(leader, "/via/w", "event")
    assert st == 201
    t.join(15)
    st, _, body = got["answer"]
    assert st == 200 and body["action"] == "set" and body["node"]["value"] == "event"
    # One member goes away: the proxy goes on with the others.
    c.followers(leader)[0].kill9()
    for i in range(5):
        st, _, body = px.keys("PUT", "/via/after-kill%d" % i, form={"value": "x"})
        assert st == 201, body
    # A read-only proxy reads and refuses writes (501, as etcd's).
    ro = proxies(initial, mode="readonly", kind=kind)
    st, _, body = ro.keys("GET", "/via/proxy")
    assert st == 200 and body["node"]["value"] == "hello"
    st, _, _ = ro.keys("PUT", "/via/ro", form={"value": "no"})
    assert st == 501
    # Every member gone: the members are tried, then left out.
    for m in c.members:
        if m.running():
            m.kill9()
    st, _, body = px.keys("GET", "/via/proxy")
    assert st in (502, 503), (st, body)
    st, _, body = px.keys("GET", "/via/proxy")
    assert (st, body) == (503, {"message": "httpproxy: zero endpoints currently available"})


def closed_connections(ports):
    """TCP connections in TIME-WAIT with one end on one of ports (`ss`): each connection that
    was closed leaves one for a minute."""
    out = subprocess.run(["ss", "-tanH", "state", "time-wait"], capture_output=True, text=True,
                         check=True).stdout
    ends = {":%d" % p for p in ports}
    return sum(1 for line in out.splitlines()
               if any(col.endswith(e) for col in line.split()[-2:] for e in ends))


@pytest.mark.parametrize("kind", ["etcd", "quorumd"])
def test_a_proxy_keeps_its_connections_to_the_members(make_cluster, proxies, kind):
    """Requests go on kept-alive connections (as etcd's proxy, on Go's HTTP transport): a
    run of requests through the proxy closes (almost) no connection to the members."""
    if not shutil.which("ss"):
        pytest.fail("the ss command is missing (scripts/deps --test installs iproute2)")
    c = make_cluster(3).start()
    wait_for(lambda: published(c), what="every member's client URLs")
    px = proxies(",".join("%s=%s" % (m.name, m.peer_url) for m in c.members), kind=kind)
    st, _, _ = px.keys("PUT", "/keep/k", form={"value": "v"})
    assert st == 201
    ports = [int(m.url.rsplit(":", 1)[1]) for m in c.members]
    before = closed_connections(ports)
    for i in range(40):
        st, _, body = px.keys("GET", "/keep/k")
        assert st == 200 and body["node"]["value"] == "v"
        st, _, body = px.keys("PUT", "/keep/n%d" % i, form={"value": str(i)})
        assert st == 201, body
    assert closed_connections(ports) - before < 8
    # HEAD: the member's answer has a Content-Length and no body; the kept connection serves on
    for _ in range(3):
        st, hdrs, body = px.request("HEAD", "/v2/keys/keep/k", timeout=3)
        assert (st, body) == (200, b"") and "x-etcd-index" in hdrs, (st, hdrs, body)
        st, _, body = px.keys("GET", "/keep/k", timeout=3)
        assert st == 200 and body["node"]["value"] == "v"
    # a member that goes away while its connections are idle: the proxy goes on (a stale
    # connection is not counted against a member that is up)
    c.followers(c.leader())[0].kill9()
    for i in range(10):
        st, _, body = px.keys("GET", "/keep/k")
        assert st == 200 and body["node"]["value"] == "v", (st, body)


def test_quorumd_as_proxy_of_a_real_etcd(make_server, proxies):
    etcd = make_server(kind="etcd")
    px = proxies("%s=%s" % (etcd.name, etcd.peer_url), kind="quorumd")
    st, _, body = px.keys("PUT", "/through", form={"value": "q"})
    assert st == 201 and body["node"]["value"] == "q", body
    st, _, body = etcd.keys("GET", "/through")
    assert st == 200 and body["node"]["value"] == "q"
    st, _, body = px.request("GET", "/v2/config/local/proxy")
    assert json.loads(body) == {"endpoints": [etcd.url]}


@pytest.mark.parametrize("kind", ["etcd", "quorumd"])
def test_a_proxy_restarts_from_the_peer_urls_it_kept(make_server, proxies, kind):
    """As etcd's proxy, the peer URLs found are kept in DATA-DIR/proxy/cluster; a restart
    starts from them, whatever --initial-cluster says then."""
    etcd = make_server(kind="etcd")
    px = proxies("%s=%s" % (etcd.name, etcd.peer_url), kind=kind)
    st, _, _ = px.keys("PUT", "/kept", form={"value": "1"})
    assert st == 201
    path = os.path.join(px.workdir, "data", "proxy", "cluster")
    wait_for(lambda: os.path.exists(path), what="the cluster file")
    with open(path) as f:
        assert json.load(f) == {"PeerURLs": [etcd.peer_url]}
    px.stop()
    px.initial_cluster = "gone=http://127.0.0.1:1"
    px.start()
    st, _, body = px.keys("GET", "/kept")
    assert st == 200 and body["node"]["value"] == "1", body
