"""CTDB's cluster lock helper for etcd (Debian's ctdb: /usr/libexec/ctdb/ctdb_etcd_lock, which
Samba's clustered database runs as `cluster lock = !/usr/libexec/ctdb/ctdb_etcd_lock`) against
the store. The helper takes python-etcd's Lock (an in-order key with a TTL below
/_locks/_ctdb/<netbios name>), prints 0 while it holds it and renews its TTL every
`lock_refresh` seconds; a second node's helper prints 1 (contention) and ends, leaving its own
in-order key to expire; a helper stopped with SIGTERM deletes its key; one killed leaves it to
expire. The same runs against etcd 3.4 (QUORUM_TARGET=etcd).

The helper asks `testparm` and `ctdb pnn` for the node's name and number (through the shell);
the test puts two one-line scripts of those names first on PATH, as no Samba or ctdb daemon
runs here. The helper is run by Debian's python3 (its #! names `env python3`).
"""
import os
import select
import signal
import subprocess
import time

import pytest

HELPER = "/usr/libexec/ctdb/ctdb_etcd_lock"
TTL = 3
NB = "SAMBA1"

pytestmark = pytest.mark.time_limit(90)


@pytest.fixture
def helper_env(server, tmp_path):
    if not os.path.exists(HELPER):
        pytest.fail("%s is missing: scripts/deps --test installs it (Debian's ctdb)" % HELPER,
                    pytrace=False)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, var in (("testparm", "FAKE_NETBIOS_NAME"), ("ctdb", "FAKE_PNN")):
        p = bindir / name
        p.write_text("#!/bin/sh\necho \"$%s\"\n" % var)
        p.chmod(0o755)
    cfg = tmp_path / "etcd.conf"
    cfg.write_text("host = 127.0.0.1\nport = %d\nlock_ttl = %d\nlock_refresh = 1\n"
                   % (server.port, TTL))
    started = []

    def start(pnn):
        env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ.get("PATH", "")),
                   FAKE_NETBIOS_NAME=NB, FAKE_PNN=str(pnn))
        p = subprocess.Popen(["/usr/bin/python3", HELPER, "-c", str(cfg)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             stdin=subprocess.DEVNULL)
        started.append(p)
        return p

    yield server, start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)


def first_answer(p, timeout=10):
    """The helper's first character on stdout (CTDB's reading: 0 held, 1 contention, 3 error)."""
    r, _, _ = select.select([p.stdout], [], [], timeout)
    assert r, "the helper said nothing within %d s" % timeout
    return os.read(p.stdout.fileno(), 1).decode()


def lock_keys(s):
    st, _, body = s.keys("GET", "/_locks/_ctdb/" + NB, params={"recursive": "true",
                                                                "sorted": "true"})
    if st == 404:
        return []
    assert st == 200, body
    return [(n["key"], n["value"], n.get("ttl")) for n in body["node"].get("nodes", [])]


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "not within %s s: %s" % (timeout, what)
        time.sleep(0.1)


def test_ctdb_cluster_lock_held_renewed_contended_released_and_expired(helper_env):
    s, start = helper_env
    a = start(0)
    assert first_answer(a) == "0"
    keys = lock_keys(s)
    assert len(keys) == 1, keys
    key_a, value_a, ttl = keys[0]
    assert value_a.endswith("_0") and len(value_a) == 32 + 2, value_a  # uuid4 hex + "_" + pnn
    assert 0 < ttl <= TTL
    # held past its TTL: the helper renews it every second (and says 0 again each time)
    time.sleep(TTL + 1.5)
    assert a.poll() is None, a.stderr.read()
    assert [k for k, _, _ in lock_keys(s)] == [key_a]
    assert os.read(a.stdout.fileno(), 64).strip("0".encode()) == b""

    # another node: contention, the helper ends; its own in-order key comes after a's
    b = start(1)
    assert first_answer(b) == "1"
    assert b.wait(timeout=10) == 0
    keys = lock_keys(s)
    assert [k for k, _, _ in keys][0] == key_a and len(keys) == 2, keys
    key_b, value_b, _ = keys[1]
    assert value_b.endswith("_1") and key_b > key_a

    # a stops (SIGTERM): it deletes its key; b's expires after its TTL
    a.send_signal(signal.SIGTERM)
    assert a.wait(timeout=10) == 0
    assert [k for k, _, _ in lock_keys(s)] == [key_b]
    wait_until(lambda: lock_keys(s) == [], TTL + 3, "the contended key expired")

    # the next helper holds it; killed (no release), its key expires and another takes over
    c = start(2)
    assert first_answer(c) == "0"
    c.kill()
    c.wait(timeout=10)
    d = start(3)
    assert first_answer(d) == "1"  # c's key is still there
    wait_until(lambda: lock_keys(s) == [], TTL + 3, "the killed holder's key expired")
    e = start(4)
    assert first_answer(e) == "0"
    assert [v for _, v, _ in lock_keys(s)][0].endswith("_4")
