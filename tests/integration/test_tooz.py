"""OpenStack's coordination library tooz (Debian's python3-tooz) with its `etcd://` driver, which
speaks the v2 API over requests: a lock is the key /v2/keys/<urlsafe base64 of its name>,
taken with PUT ttl=N&prevExist=false (form body), waited for with ?wait=true&waitIndex=
(index + 1 of the refusal), kept with PUT ttl=N&prevExist=true, released with DELETE
?prevIndex=, broken with DELETE. Two parts:
- tooz's own coordination suite (tooz/tests/test_coordination.py of the installed package, run
  as its upstream runs it, with TOOZ_TEST_URL): its lock tests pass, group tests skip as the
  driver does not implement groups;
- the lock as a service uses it: a waiter woken by the release and by the TTL expiry of an
  abandoned holder, a holder kept past its TTL by heartbeats.
The same runs against etcd 3.4 (QUORUM_TARGET=etcd).
"""
import base64
import os
import re
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.time_limit(120)

SUITE = "/usr/lib/python3/dist-packages/tooz/tests/test_coordination.py"


def tooz():
    try:
        import tooz.coordination
    except ImportError:
        pytest.fail("python3-tooz is missing: scripts/deps --test installs it", pytrace=False)
    return tooz.coordination


def test_tooz_coordination_suite_passes(server, tmp_path):
    tooz()
    env = dict(os.environ, TOOZ_TEST_URL="etcd://127.0.0.1:%d" % server.port)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-W", "ignore", "-rs", SUITE], cwd=tmp_path, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=100)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out[-8000:]
    counts = dict((k, int(n)) for n, k in re.findall(r"(\d+) (passed|skipped|failed|error)", out))
    # tooz 3.1.0: 29 tests of locks and the driver's basics, 47 group tests it skips
    assert counts == {"passed": 29, "skipped": 47}, out[-3000:]
    for line in out.splitlines():
        if line.startswith("SKIPPED"):
            assert ("Skipped" in line or "not distributed across hosts" in line
                    or "ability to destroy groups" in line), line


def coordinator(server, member, lock_timeout):
    c = tooz().get_coordinator("etcd://127.0.0.1:%d?lock_timeout=%d" % (server.port, lock_timeout),
                               member)
    c.start()
    return c


def lock_node(server, name):
    key = "/" + base64.urlsafe_b64encode(name.encode()).decode()
    st, _, body = server.keys("GET", key)
    return st, body.get("node")


def test_tooz_lock_waiter_wakes_on_release_and_on_expiry_heartbeat_keeps_it(server):
    a = coordinator(server, b"a", 2)
    b = coordinator(server, b"b", 2)
    c = coordinator(server, b"c", 2)
    try:
        la, lb, lc = (x.get_lock(b"job") for x in (a, b, c))
        assert la.acquire(blocking=False)
        st, node = lock_node(server, "job")
        assert st == 200 and 0 < node["ttl"] <= 2, node
        assert not lb.acquire(blocking=False)

        # held past its TTL by heartbeats
        for _ in range(6):
            time.sleep(0.5)
            assert a.heartbeat() == 2
        st, node = lock_node(server, "job")
        assert st == 200 and node["ttl"] > 0, node
        assert not lb.acquire(blocking=False)

        # a waiter is woken by the release (its watch), long before its own timeout
        got = {}

        def wait_b():
            t0 = time.monotonic()
            got["b"] = lb.acquire(blocking=20)
            got["b_after"] = time.monotonic() - t0
        t = threading.Thread(target=wait_b)
        t.start()
        time.sleep(0.5)
        assert la.release()
        t.join(timeout=20)
        assert got["b"] is True and got["b_after"] < 2.0, got
        assert not la.acquire(blocking=False)

        # b is abandoned (no heartbeat, no release): c's waiter gets it when the TTL expires
        t0 = time.monotonic()
        assert lc.acquire(blocking=20)
        waited = time.monotonic() - t0
        assert 0.5 < waited < 5.0, waited
        assert not lb.release()  # its key is gone: the DELETE ?prevIndex= is refused
        assert lc.release()
        assert lock_node(server, "job")[0] == 404
    finally:
        for x in (a, b, c):
            x.stop()
