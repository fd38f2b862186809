"""node-etcd (npm's etcd v2 library for Node, tests/clients/) against the server: one session
of its whole API (set/get/create/mkdir/rmdir/del, compare-and-swap and -delete, TTL, refresh,
raw, stats, version, one-shot watches and its Watcher object) is run against real etcd 3.4 and
against the target, and every answer must be the same once indexes are counted from the
session's first write (etcd's own first writes take a few) and TTLs rounded."""
import json
import os
import re
import subprocess

import pytest

import cluster

NODE = "/usr/bin/node"
CLIENTS = os.path.join(cluster.SOURCE_DIR, "tests", "clients")
SESSION = os.path.join(CLIENTS, "node_etcd_session.js")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(NODE), reason="needs node"),
    pytest.mark.skipif(not os.path.exists(os.path.join(CLIENTS, "node_modules", "node-etcd")),
                       reason="node-etcd is not installed (scripts/deps --test installs it)"),
]

IN_ORDER = re.compile(r"^(.*/)(\d{20})$")


def run_session(url):
    out = subprocess.run([NODE, SESSION, url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def normalize(lines):
    """Indexes relative to the first write, TTLs to the nearest 10 s, times dropped."""
    base = lines[0]["val"]["node"]["modifiedIndex"] - 1

    def fix(x, key=None):
        if isinstance(x, dict):
            return {k: fix(v, k) for k, v in x.items()}
        if isinstance(x, list):
            return [fix(v) for v in x]
        if key in ("modifiedIndex", "createdIndex", "index") and isinstance(x, int):
            return x - base if x else 0     # a parameter error's index is 0 on both
        if key == "ttl" and isinstance(x, int):
            return int(round(x / 10.0)) * 10
        if key in ("expiration", "startTime", "uptime"):
            return "<time>"
        if key == "cause" and isinstance(x, str):
            # prevIndex compare failures name the index: "[1 != 5]"
            return re.sub(r"!= (\d+)\]$", lambda m: "!= %d]" % (int(m.group(1)) - base), x)
        if key == "key" and isinstance(x, str):
            m = IN_ORDER.match(x)
            if m:
                return "%s%020d" % (m.group(1), int(m.group(2)) - base)
        return x
    return [fix(line) for line in lines]


def by_step(lines):
    return [(line["step"], line) for line in lines]


def test_node_etcd_session_matches_etcd(server, module_etcd):
    want = normalize(run_session(module_etcd.url))
    got = normalize(run_session(server.url))
    assert [s for s, _ in by_step(got)] == [s for s, _ in by_step(want)]
    for (step, g), (_, w) in zip(by_step(got), by_step(want)):
        assert g == w, "step %r differs:\n quorumd %s\n etcd    %s" % (step, json.dumps(g), json.dumps(w))
    # What a user of the library sees, spelled out (so that the test means something even if
    # both servers were wrong alike).
    steps = dict((line["step"], line) for line in got)   # (indexes counted from 1)
    assert steps["get"]["val"]["node"]["value"] == "v1"
    assert steps["cas wrong value"]["err"]["errorCode"] == 101
    assert steps["mkdir again"]["err"]["errorCode"] == 102
    assert steps["get recursive"]["val"]["node"]["nodes"][0]["nodes"] == [
        {"key": "/d/a", "value": "A", "modifiedIndex": 7, "createdIndex": 7}]
    assert steps["watch recursive"]["val"]["node"]["key"] == "/wd/x/y"
    actions = [line["val"]["action"] for line in got if line["step"] == "watcher change"]
    assert actions == ["set", "set", "delete", "delete"]
