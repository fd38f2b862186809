"""quorumctl's membership changes on a real 2-member etcd 3.4 cluster, and cluster-health
--forever, against etcdctl v2.

Membership: two fresh clusters (static --initial-cluster a=...,b=..., fresh data dirs, free
loopback ports), one per tool, each given the same script: member list, member update of b
(its peer URL plus one more), member list, member remove by name (etcdctl's hint), member remove
of b's id, member list, member remove of the removed id, cluster-health. The transcripts must be
equal after member ids and URLs are replaced by names and member list lines are sorted (their
order follows the random ids).

cluster-health --forever: both tools run at once against one etcd; after two rounds of output
(a round every 10 s) each gets SIGINT, which etcdctl answers with exit status 0.
"""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

import cluster
from test_quorumctl import ctl_env, quorumctl_binary
from test_quorumctl_tls import run


def _require_tools():
    if not cluster.etcd_binary() or not cluster.etcdctl_binary():
        pytest.skip("etcd/etcdctl not found on PATH")
    if not os.path.exists(quorumctl_binary()):
        pytest.fail("quorumctl binary %r does not exist (set QUORUMCTL)" % quorumctl_binary())


def start_pair(workdir):
    """Starts members a and b of one new cluster; returns (a, b) (cluster.Server objects)."""
    for attempt in range(3):
        ports = set()
        while len(ports) < 4:
            ports.add(cluster.free_port())
        ports = sorted(ports)
        servers = []
        for i, name in enumerate(("a", "b")):
            s = cluster.Server(os.path.join(workdir, "%s%d" % (name, attempt)), kind="etcd", name=name)
            s.client_port, s.peer_port = ports[2 * i], ports[2 * i + 1]
            servers.append(s)
        initial = ",".join("%s=%s" % (s.name, s.peer_url) for s in servers)
        for s in servers:
            # --strict-reconfig-check=false: etcd would refuse to remove a member until both
            # have been connected for 5 s (its HealthInterval); the transcript does not need it
            s.extra_args = ["--initial-cluster", initial, "--initial-cluster-state", "new",
                            "--initial-cluster-token", "pair-%d" % attempt,
                            "--strict-reconfig-check=false"]
        errors = []

        def boot(s):
            try:
                s.start(timeout=30)
            except Exception as e:  # noqa: BLE001  (reported below)
                errors.append(e)
        threads = [threading.Thread(target=boot, args=(s,)) for s in servers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if not errors:
            return servers
        logs = "\n".join(s.all_logs() for s in servers)
        for s in servers:
            s.stop()
        if "address already in use" not in logs.lower():
            pytest.fail("2-member etcd did not start: %s\n%s" % (errors[0], logs[-8000:]),
                        pytrace=False)
    pytest.fail("2-member etcd did not start (ports taken)", pytrace=False)


def member_ids(srv):
    st, _, body = srv.request("GET", "/v2/members")
    assert st == 200
    return {m["name"]: m["id"] for m in json.loads(body)["members"]}


def membership_script(binary, workdir):
    a, b = start_pair(workdir)
    try:
        ids = member_ids(a)
        extra = "http://127.0.0.1:%d" % cluster.free_port()
        steps = [
            ["member", "list"],
            ["member", "update", ids["b"], "%s,%s" % (b.peer_url, extra)],
            ["member", "list"],
            ["member", "remove", "b"],
            # sent to a: b stops itself once it is out
            ["--no-sync", "member", "remove", ids["b"]],
            ["member", "list"],
            ["member", "remove", ids["b"]],
            ["cluster-health"],
        ]
        out = []
        for args in steps:
            res = run(binary, a.url, args)
            out.append((" ".join(args[:4]).replace(ids["b"], "<id-b>"), res))
            if "update" in args and res[0] == 0:
                # the update is acknowledged once the leader applied it; a (which the lists ask)
                # may apply it later, on etcd as on quorumd (a loaded machine shows it)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not any(
                        extra in m["peerURLs"] for m in json.loads(a.request("GET", "/v2/members")[2])["members"]):
                    time.sleep(0.05)
            if args[-2:] == ["remove", ids["b"]] and res[0] == 0:
                # wait until b has applied its removal (it exits), so that the next list is stable
                # and until a leads alone (b may have been the leader)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and b.running():
                    time.sleep(0.1)
                while time.monotonic() < deadline:
                    try:
                        if a.request("GET", "/v2/members/leader", timeout=1)[0] == 200:
                            break
                    except OSError:
                        pass
                    time.sleep(0.1)
        subs = [(ids["a"], "<id-a>"), (ids["b"], "<id-b>"), (a.url, "<a-client>"),
                (b.url, "<b-client>"), (a.peer_url, "<a-peer>"), (b.peer_url, "<b-peer>"),
                (extra, "<extra-peer>")]

        def norm(x):
            if not isinstance(x, str):
                return x
            for k, v in subs:
                x = re.sub(r"\b%s\b" % re.escape(k), v, x)
            if "peerURLs=" in x:
                # etcd sorts a member's peer URLs as strings, so their order follows the ports
                x = re.sub(r"peerURLs=(\S+)",
                           lambda m: "peerURLs=" + ",".join(sorted(m.group(1).split(","))), x)
                # which member leads is up to the election: checked apart
                leaders.append(x.count("isLeader=true"))
                x = x.replace("isLeader=true", "isLeader=?").replace("isLeader=false", "isLeader=?")
                x = "".join(sorted(x.splitlines(True)))
            return x
        leaders = []
        res = [(lab, tuple(norm(v) for v in r)) for lab, r in out]
        assert leaders == [1, 1, 1], "one leader in each member list: %r" % (out,)
        return res
    finally:
        for s in (a, b):
            s.stop()


@pytest.mark.time_limit(150)
def test_member_update_remove_on_two_members_like_etcdctl(tmp_path):
    _require_tools()
    want = membership_script(cluster.etcdctl_binary(), str(tmp_path / "ref"))
    got = membership_script(quorumctl_binary(), str(tmp_path / "ctl"))
    assert want[0][1][0] == 0
    assert want[4][1] == (0, "Removed member <id-b> from cluster\n", "")
    assert want[5][1] == (0, "<id-a>: name=a peerURLs=<a-peer> clientURLs=<a-client> "
                             "isLeader=?\n", "")
    assert want[1][1] == (0, "Updated member with ID <id-b> in cluster\n", "")
    assert want[-1][1] == (0, "member <id-a> is healthy: got healthy result from <a-client>\n"
                              "cluster is healthy\n", "")
    diffs = ["### %s\n  etcdctl:   %r\n  quorumctl: %r" % (lab, w, g)
             for (lab, w), (_, g) in zip(want, got) if w != g]
    assert not diffs, "\n\n".join(diffs)


# --------------------------------------------------------------------------- --forever
def _reader(proc, buf):
    while True:
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            return
        buf.append(chunk)


@pytest.mark.time_limit(90)
def test_cluster_health_forever_like_etcdctl(make_server):
    _require_tools()
    srv = make_server(kind="etcd")
    procs, bufs, threads = [], [], []
    try:
        for binary in (cluster.etcdctl_binary(), quorumctl_binary()):
            p = subprocess.Popen([binary, "--endpoints", srv.url, "cluster-health", "--forever"],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, env=ctl_env(), start_new_session=True,
                                 preexec_fn=cluster.default_signals)
            procs.append(p)
            bufs.append([])
            t = threading.Thread(target=_reader, args=(p, bufs[-1]), daemon=True)
            t.start()
            threads.append(t)
        # two rounds: the second comes 10 s after the first
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all(b"".join(b).count(b"next check after") >= 2 for b in bufs):
                break
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.1)
        alive = [p.poll() is None for p in procs]
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGINT)
        results = []
        for p, t, b in zip(procs, threads, bufs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            t.join(timeout=5)
            results.append((p.returncode, b"".join(b).decode(), p.stderr.read().decode()))
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
            p.stdout.close()
            p.stderr.close()
    assert alive == [True, True], results
    ids = member_ids(srv)
    one = ("member %s is healthy: got healthy result from %s\ncluster is healthy\n\n"
           "next check after 10 second...\n\n" % (ids["t"], srv.url))
    ref, got = results
    assert ref == (0, one * 2, ""), "etcdctl: %r" % (ref,)
    assert got == ref
