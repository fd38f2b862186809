"""quorumctl against etcdctl v2 on random command lines.

test_quorumctl compares one fixed script; this draws command lines at random from the v2
commands and their flags (set/mk/mkdir/setdir/update/updatedir/get/ls/rm/rmdir with --ttl,
--swap-with-value/-index, --in-order, --sort, --recursive, -p, --quorum, --dir,
--with-value/-index, the three output formats, keys that need escaping or are not well formed,
values that look like flags) and runs the same sequence twice: real etcdctl (ETCDCTL_API=2)
against a fresh etcd 3.4, and quorumctl against another fresh etcd 3.4, so that only the two
clients differ. Every step's exit status, stdout and stderr must be identical after
test_quorumctl's normalisation (indexes relative to the start, TTLs to 5 s, URLs, ids).

Replay one seed: CTLDIFF_SEED=17 (comma-separated list allowed); CTLDIFF_STEPS=N changes the
length; CTLDIFF_TARGET=quorumd runs quorumctl against quorumd instead (then the etcd bugs that
quorumd does not copy show, e.g. a directory's TTL update: shared/docs/v2-api.md section 10).
"""
import json
import os
import random
import re

import pytest

import cluster
from test_quorumctl import _require_quorumctl, normaliser, quorumctl_binary, run_ctl
from transcript import fmt

pytestmark = pytest.mark.time_limit(300)

STEPS = int(os.environ.get("CTLDIFF_STEPS", "120"))
KEYS = ["/a", "/a/b", "/a/b/c", "/d", "/d/e", "/_h", "/q", "/sp ace/é", "/a/", "a/b", "/a//b",
        "/", "/x%20y", "/k?z"]
VALUES = ["1", "2", "", "x y", "ünï€", "--", "tab\there"]


def seeds():
    env = os.environ.get("CTLDIFF_SEED", "").strip()
    if env:
        return [int(s) for s in env.split(",")]
    return [random.randrange(1 << 30)]


def gen(rng):
    """One command line (a list of arguments; "{B+N}" is an index relative to the start)."""
    def ttl():
        return ["--ttl", rng.choice(["100", "200", "0", "-1", "abc", "1000"])] if rng.random() < 0.3 else []

    def idx():
        return "{B+%d}" % rng.randrange(0, 12)

    key = rng.choice(KEYS)
    val = rng.choice(VALUES)
    pos = ["--", key, val] if val.startswith("-") else [key, val]
    cmd = rng.choice(["set", "set", "mk", "mkdir", "setdir", "update", "updatedir", "get", "get",
                      "ls", "ls", "rm", "rm", "rmdir"])
    glob = rng.choice([[], [], ["-o", "json"], ["-o", "extended"]])
    if cmd == "set":
        flags = ttl()
        r = rng.random()
        if r < 0.15:
            flags += ["--swap-with-value", rng.choice(VALUES[:5])]
        elif r < 0.3:
            flags += ["--swap-with-index", idx()]
        return glob + [cmd] + flags + pos
    if cmd == "mk":
        return glob + [cmd] + ttl() + (["--in-order"] if rng.random() < 0.3 else []) + pos
    if cmd == "update":
        return glob + [cmd] + ttl() + pos
    if cmd in ("mkdir", "setdir", "updatedir"):
        return glob + [cmd] + ttl() + [key]
    if cmd == "get":
        return glob + [cmd] + [f for f in ("--sort", "--quorum") if rng.random() < 0.3] + [key]
    if cmd == "ls":
        flags = [f for f in ("--sort", "--recursive", "-p", "--quorum") if rng.random() < 0.4]
        return glob + [cmd] + flags + ([key] if rng.random() < 0.8 else [])
    if cmd == "rm":
        flags = [f for f in ("--dir", "--recursive") if rng.random() < 0.3]
        r = rng.random()
        if r < 0.15:
            flags += ["--with-value", rng.choice(VALUES[:5])]
        elif r < 0.3:
            flags += ["--with-index", idx()]
        return glob + [cmd] + flags + [key]
    return glob + [cmd, key]


def unordered(args, res):
    """etcd lists a directory in its map's order, which differs between two servers: without
    --sort an answer with several children is compared as a set (lines, or JSON nodes)."""
    if "--sort" in args or not isinstance(res[1], str):
        return res
    rc, out, err = res

    def sort_nodes(node):
        if isinstance(node, dict):
            if isinstance(node.get("nodes"), list):
                node["nodes"] = sorted((sort_nodes(n) for n in node["nodes"]),
                                       key=lambda n: json.dumps(n, sort_keys=True))
            for k in ("node", "prevNode"):
                if k in node:
                    sort_nodes(node[k])
        return node
    try:
        return rc, json.dumps(sort_nodes(json.loads(out)), sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False), err
    except ValueError:
        return rc, "".join(sorted(out.splitlines(True))), err


def no_ttl(res):
    """TTLs that count down while the sequence runs: their presence is compared, not their
    seconds (the runs are seconds apart; test_quorumctl compares them to 5 s)."""
    if not isinstance(res[1], str):
        return res
    rc, out, err = res
    out = re.sub(r'"ttl":\s*\d+', '"ttl":<n>', out)
    out = re.sub(r"TTL: \d+", "TTL: <n>", out)
    return rc, out, err


def run(binary, srv, steps):
    base = srv.index()
    out = [no_ttl(unordered(args, run_ctl(binary, srv.url, args, base))) for args in steps]
    return normaliser(srv, base)(out)


@pytest.mark.parametrize("seed", seeds())
def test_random_command_lines_match_etcdctl(make_server, seed):
    _require_quorumctl()
    if not cluster.etcdctl_binary() or not cluster.etcd_binary():
        pytest.skip("etcd/etcdctl not found on PATH")
    label = "seed %d (replay: CTLDIFF_SEED=%d)" % (seed, seed)
    print(label)
    rng = random.Random(seed)
    steps = [gen(rng) for _ in range(STEPS)]
    want = run(cluster.etcdctl_binary(), make_server(kind="etcd"), steps)
    target = os.environ.get("CTLDIFF_TARGET", "etcd")
    got = run(quorumctl_binary(), make_server(kind=None if target == "quorumd" else "etcd"), steps)
    for i, (args, w, g) in enumerate(zip(steps, want, got)):
        assert g == w, "%s: step %d `%s`:\n--- etcdctl:\n%s\n--- quorumctl:\n%s\n(before: %s)" % (
            label, i, " ".join(args), fmt(w), fmt(g),
            "; ".join(" ".join(a) for a in steps[max(0, i - 8):i]))
