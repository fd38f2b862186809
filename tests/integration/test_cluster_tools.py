"""etcdctl (v2, Debian's etcd-client) and quorumctl on a three-member quorumd cluster, given
every member's URL: member list, cluster-health and a write, with every member up and then
with the leader killed (kill -9). Both tools must print the same thing, and it must be what
etcd's own cluster gives: three healthy members, then the dead one "unreachable", the cluster
"degraded" (exit status 5), a write still acknowledged and a new leader listed.
"""
import os
import re
import subprocess

import pytest

import cluster
from raft_cluster import make_cluster  # noqa: F401  (fixture used by name)

pytestmark = [pytest.mark.time_limit(120),
              pytest.mark.skipif(cluster.target() != "quorumd",
                                 reason="starts a quorumd cluster")]


def quorumctl_binary():
    return os.environ.get("QUORUMCTL") or os.path.join(os.path.dirname(cluster.quorumd_binary()),
                                                       "quorumctl")


def run(tool, endpoints, *args):
    p = subprocess.run([tool, "--endpoints", endpoints] + list(args), capture_output=True,
                       text=True, timeout=30, env=dict(os.environ, ETCDCTL_API="2"))
    return p.returncode, p.stdout, p.stderr


def test_etcdctl_and_quorumctl_see_the_cluster_alike(make_cluster):  # noqa: F811
    etcdctl = cluster.etcdctl_binary()
    if not etcdctl:
        pytest.skip("etcdctl is not installed")
    c = make_cluster(3).start()
    leader = c.leader()
    eps = ",".join(m.url for m in c.members)
    ids = {m.name: m.member_id() for m in c.members}

    def member_list(lead):
        lines = ["%s: name=%s peerURLs=%s clientURLs=%s isLeader=%s" % (
            ids[m.name], m.name, m.peer_url, m.url, "true" if m is lead else "false")
            for m in c.members]
        return "".join(sorted(line + "\n" for line in lines))

    for tool in (etcdctl, quorumctl_binary()):
        rc, out, err = run(tool, eps, "member", "list")
        assert (rc, "".join(sorted(out.splitlines(True))), err) == (0, member_list(leader), ""), tool
        rc, out, err = run(tool, eps, "cluster-health")
        want = "".join("member %s is healthy: got healthy result from %s\n" % (ids[m.name], m.url)
                       for m in c.members)
        assert rc == 0 and err == "", (tool, rc, err)
        assert sorted(out.splitlines()) == sorted((want + "cluster is healthy\n").splitlines()), tool

    leader.kill9()
    survivors = [m for m in c.members if m is not leader]
    new_leader = c.leader(among=survivors, timeout=15)
    outputs = {}
    for tool in (etcdctl, quorumctl_binary()):
        rc, out, err = run(tool, eps, "cluster-health")
        assert rc == 5 and err == "", (tool, rc, out, err)
        lines = out.splitlines()
        assert lines[-1] == "cluster is degraded", (tool, out)
        dead = leader.url
        unreachable = "member %s is unreachable: [%s] are all unreachable" % (ids[leader.name], dead)
        assert unreachable in lines, (tool, out)
        i = lines.index(unreachable)  # the reason comes first
        assert i > 0 and re.match(r"failed to check the health of member %s on %s: Get \"%s/health\": "
                                  r"dial tcp 127\.0\.0\.1:\d+: connect: connection refused$"
                                  % (ids[leader.name], re.escape(dead), re.escape(dead)),
                                  lines[i - 1]), (tool, out)
        for m in survivors:
            assert "member %s is healthy: got healthy result from %s" % (ids[m.name], m.url) \
                in lines, (tool, out)
        assert len(lines) == 5, (tool, out)
        outputs[tool] = out
        rc, out, err = run(tool, eps, "set", "/tools/" + os.path.basename(tool), "v")
        assert (rc, out, err) == (0, "v\n", ""), tool
        rc, out, err = run(tool, eps, "member", "list")
        assert (rc, "".join(sorted(out.splitlines(True))), err) == (0, member_list(new_leader), ""), tool
    assert outputs[etcdctl] == outputs[quorumctl_binary()]
