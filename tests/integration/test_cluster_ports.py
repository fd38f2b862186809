"""The ports the tests give their servers (cluster.free_port): outside the kernel's ephemeral
range, so that no outgoing connection on the machine takes the port of a member while it is
stopped (it starts again on the same ports), never 2379/2380, and never the same in two test
processes running side by side (ctest runs several)."""
import os
import subprocess
import sys

import cluster

HERE = os.path.dirname(os.path.abspath(__file__))


def _ephemeral_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    return lo, hi


def test_ports_are_outside_the_ephemeral_range_and_not_etcds():
    lo, hi = _ephemeral_range()
    ports = [cluster.free_port() for _ in range(300)]
    assert len(set(ports)) == 300
    assert not [p for p in ports if lo <= p <= hi]
    assert not {2379, 2380} & set(ports)


def test_two_processes_never_get_the_same_port():
    """Each side takes 400 ports out of ~20,000: without the lock files, about eight would be
    the same on both sides."""
    mine = {cluster.free_port() for _ in range(400)}
    code = "import cluster\nprint(' '.join(str(cluster.free_port()) for _ in range(400)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=HERE, check=True,
                         capture_output=True, text=True, timeout=60).stdout
    theirs = {int(p) for p in out.split()}
    assert len(theirs) == 400
    assert not mine & theirs


def test_a_port_a_process_held_is_given_again_once_it_has_ended():
    """The locks go with the process that held them: the ports of a test run that ended (or was
    killed) are usable by the next."""
    code = ("import cluster, os, signal\nprint(cluster.free_port(), flush=True)\n"
            "os.kill(os.getpid(), signal.SIGKILL)")
    p = subprocess.run([sys.executable, "-c", code], cwd=HERE, capture_output=True, text=True,
                       timeout=60)
    port = int(p.stdout.split()[0])
    assert cluster._claim(port, os.path.join(cluster.tempfile.gettempdir(), "quorum-test-ports"))
