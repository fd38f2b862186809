"""Members talking TLS: https:// peer URLs with --peer-cert-file, --peer-key-file,
--peer-trusted-ca-file and --peer-client-cert-auth.

Certificates come from test_quorumctl_tls.make_pki (the openssl command): a CA, a member
certificate for IP 127.0.0.1 usable as server and client (every member presents it both ways),
and one of another CA. The
tests check that a TLS cluster elects, replicates, catches a member up by snapshot (the dump
travels over TLS too) and survives a restart; that its peer port speaks only TLS and only to a
member with a certificate of the trusted CA; and that a member holding another CA's
certificate cannot take part.
"""
import json
import shutil
import socket
import ssl
import threading
import time

import pytest

import cluster
import rawhttp
from raft_cluster import ClusterFactory, RaftCluster
from test_etcd_proxy import Proxy
from test_quorumctl_tls import make_pki
from test_raft_cluster import add_member, put, wait_for

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.fail("the openssl command is missing (scripts/deps --test installs it)")
    return make_pki(str(tmp_path_factory.mktemp("peer-pki")))


def tls_args(pki, who="member"):
    return ("--peer-cert-file", pki[who + ".crt"], "--peer-key-file", pki[who + ".key"],
            "--peer-trusted-ca-file", pki["ca.crt"], "--peer-client-cert-auth")


@pytest.fixture
def make_tls_cluster(tmp_path, pki):
    make = ClusterFactory(str(tmp_path), tls_args(pki), peer_scheme="https")
    yield make
    make.finish()


def handshake(port, pki, cert=None):
    """A TLS handshake with a member's peer port, then one read: returns "ok" when the member
    kept the connection (waiting for a frame), else the error."""
    ctx = ssl.create_default_context(cafile=pki["ca.crt"])
    if cert:
        ctx.load_cert_chain(pki[cert + ".crt"], pki[cert + ".key"])
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.settimeout(2.0)  # (a refusal comes well within it, even on a loaded machine)
                try:
                    data = s.recv(1)
                except socket.timeout:
                    return "ok"
                return "closed" if not data else "data"
    except (ssl.SSLError, OSError) as e:
        return "error: %s" % e


@pytest.mark.time_limit(180)
def test_a_tls_cluster_replicates_catches_up_by_snapshot_and_restarts(make_tls_cluster, pki):
    c = make_tls_cluster(3, extra_args=("--snapshot-count", "50")).start()
    leader = c.leader()
    st, _, body = put(leader, "/tls/first", "1")
    assert st == 201
    for m in c.members:  # quorum reads: every member hears the leader over TLS
        st, _, body = m.keys("GET", "/tls/first", params={"quorum": "true"})
        assert st == 200 and body["node"]["value"] == "1", (m.name, st, body)

    # A follower misses 1300 writes (the log is compacted in steps of 1024), comes back and is
    # caught up by a snapshot.
    lag = c.followers(leader)[0]
    lag.stop()
    errors = []

    def writer(lo, hi):
        for i in range(lo, hi):
            st, _, _ = put(leader, "/tls/k%04d" % i, "v%d" % i)
            if st != 201:
                errors.append((i, st))

    ts = [threading.Thread(target=writer, args=(i * 325, (i + 1) * 325)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:5]
    lag.start()

    def caught_up():
        st, _, body = lag.keys("GET", "/tls", params={"recursive": "true"})
        return st == 200 and len(body["node"].get("nodes", [])) == 1301
    wait_for(caught_up, timeout=30, what="the lagging member has every key")
    # (the line is written after the store is switched: the keys can be read a moment before)
    wait_for(lambda: "installed a snapshot" in lag.log_text(), what="the snapshot's log line")

    # The peer port speaks TLS and wants the trusted CA's certificate.
    port = lag.peer_port
    assert handshake(port, pki, cert="member") == "ok"
    assert handshake(port, pki, cert=None) != "ok"
    assert handshake(port, pki, cert="other-member") != "ok"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"\x00\x00\x00\x05hello")  # a plain frame header: not TLS
        got = b""
        try:
            while True:  # the member answers with at most an alert record, then closes
                chunk = s.recv(100)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
    assert got == b"" or got[0] == 0x15, got  # 0x15: a TLS alert
    wait_for(lambda: "TLS:" in lag.log_text(), what="the refused connections logged")

    # The whole cluster restarts and finds every key.
    c.stop()
    c.start()
    leader = c.leader()
    st, _, body = leader.keys("GET", "/tls", params={"recursive": "true", "quorum": "true"})
    assert st == 200 and len(body["node"]["nodes"]) == 1301


@pytest.mark.time_limit(120)
def test_peer_auto_tls_encrypts_without_files(tmp_path):
    make = ClusterFactory(str(tmp_path), ("--peer-auto-tls",), peer_scheme="https")
    try:
        c = make(3).start()
        leader = c.leader()
        st, _, _ = put(leader, "/auto/k", "v")
        assert st == 201
        for m in c.members:
            st, _, body = m.keys("GET", "/auto/k", params={"quorum": "true"})
            assert st == 200 and body["node"]["value"] == "v", (m.name, st, body)
        # The peer port speaks TLS with a self-signed certificate.
        pem = ssl.get_server_certificate(("127.0.0.1", leader.peer_port))
        assert b"quorumd" in ssl.PEM_cert_to_DER_cert(pem)
        # A member joins: it reads the cluster (and its own id) from the members' peer ports
        # without verifying their self-signed certificates, as etcd's does.
        victim = c.followers(leader)[0]
        st, _, body = leader.request("DELETE", "/v2/members/" + victim.member_id())
        assert st == 204, body
        wait_for(lambda: not victim.running(), what="the removed member stops")
        shutil.rmtree(victim.data_dir)
        st, _, body = add_member(leader, victim.peer_url)
        assert st == 201, body
        victim.state = "existing"
        victim.start()
        wait_for(lambda: victim.keys("GET", "/auto/k")[0] == 200, what="the new member catches up")
        assert victim.member_id() == json.loads(body)["id"]
    finally:
        make.finish()


@pytest.mark.time_limit(120)
def test_a_member_with_another_cas_certificate_takes_no_part(make_tls_cluster, pki):
    c = make_tls_cluster(3)
    rogue = c.members[2]
    rogue.extra_args = list(tls_args(pki, who="other-member"))
    c.start()
    good = c.members[:2]
    leader = c.leader(among=good)
    assert leader is not rogue
    st, _, _ = put(leader, "/only/good", "yes")
    assert st == 201
    st, _, body = good[1 - good.index(leader)].keys("GET", "/only/good",
                                                     params={"quorum": "true"})
    assert st == 200 and body["node"]["value"] == "yes"
    # The rogue member never hears of it: every connection to or from it fails its handshake.
    time.sleep(1.0)
    # (nor does it answer from its own store: it never caught up, so it holds the request)
    with pytest.raises(OSError):
        rogue.keys("GET", "/only/good", timeout=1.5)
    wait_for(lambda: "TLS:" in leader.log_text(), what="the leader logged the refused handshake")
    assert "TLS:" in rogue.log_text()


@pytest.mark.parametrize("kind", ["etcd", "quorumd"])
def test_a_proxy_finds_the_members_over_tls(make_tls_cluster, pki, tmp_path, kind):
    """GET /members on an https:// peer URL: the same answer inside TLS (with a member's
    certificate, as --peer-client-cert-auth wants), so that a proxy (etcd's, quorumd's),
    given the peer certificate flags, fronts a TLS cluster."""
    if not cluster.etcd_binary():
        pytest.skip("etcd is not installed")
    c = make_tls_cluster(3).start()
    c.leader()
    ctx = ssl.create_default_context(cafile=pki["ca.crt"])
    ctx.load_cert_chain(pki["member.crt"], pki["member.key"])

    def members():
        with socket.create_connection(("127.0.0.1", c.members[0].peer_port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                s.sendall(b"GET /members HTTP/1.1\r\nHost: x\r\n\r\n")
                data = rawhttp.read_until_close(s)
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
        ms = json.loads(body)
        return ms if all(m.get("clientURLs") for m in ms) and len(ms) == 3 else None
    ms = wait_for(members, what="every member's client URLs over TLS")
    assert sorted(m["peerURLs"][0] for m in ms) == sorted(m.peer_url for m in c.members)
    px = Proxy(str(tmp_path / "proxy"), ",".join("%s=%s" % (m.name, m.peer_url) for m in c.members),
               kind=kind, extra_args=["--peer-cert-file", pki["member.crt"], "--peer-key-file",
                           pki["member.key"], "--peer-trusted-ca-file", pki["ca.crt"]])
    px.start()
    try:
        st, _, body = px.keys("PUT", "/through-tls-proxy", form={"value": "ok"})
        assert st == 201 and body["node"]["value"] == "ok", body
        st, _, body = c.members[2].keys("GET", "/through-tls-proxy", params={"quorum": "true"})
        assert st == 200 and body["node"]["value"] == "ok"
    finally:
        px.stop()
    log = px.all_logs(400000)
    assert not any(x in log for x in RaftCluster.SANITIZER_MARKS), log[-20000:]
