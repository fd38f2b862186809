"""quorumctl against etcdctl v2: transcript tests.

One script of commands runs three times, each time against a fresh server:

  reference   real etcdctl (ETCDCTL_API=2) against real etcd 3.4 (--enable-v2)
  ctl-etcd    quorumctl against real etcd 3.4
  ctl-quorumd quorumctl against quorumd (the build under test)

stdout, stderr and the exit status of every step must be identical after normalising
indexes (relative to the index read before the script), member ids, URLs, TTLs (to 5 s) and
expirations (format only), and the program name in help texts. Bad arguments (missing key,
bad ttl, unknown flag, unknown command) are in the script too. Then quorumctl's own
commands (export/import/du) and the behaviour with no server are checked with exact outputs.
"""
import json
import os
import re
import subprocess
import time

import pytest

import cluster
import transcript
from transcript import fmt

CTL_TIMEOUT = 20.0
HERE = os.path.dirname(os.path.abspath(__file__))


def quorumctl_binary():
    path = os.environ.get("QUORUMCTL")
    if path:
        return path
    q = cluster.quorumd_binary()
    return os.path.join(os.path.dirname(q), "quorumctl")


# --------------------------------------------------------------------------- the script
# A step is a list of arguments (global flags may come first), or a dict:
#   {"watch": [args], "write": [args]}   background watch, then the write, then collect it
#   {"exec_watch": key, "writes": [[args], ...]}
#   {"stdin": "text", "args": [args]}    a command fed on standard input
SCRIPT = [
    # bad arguments (no request is made, or the answer does not matter)
    ["get"],
    ["set"],
    ["set", "/x"],
    ["mk", "/x"],
    ["update"],
    ["rm"],
    ["rmdir"],
    ["mkdir"],
    ["setdir"],
    ["updatedir"],
    ["watch"],
    ["exec-watch", "/x"],
    ["get", "--bogus", "/a"],
    ["set", "--ttl", "abc", "/x", "1"],
    ["set", "--ttl", "9999999999999999999999", "/x", "1"],
    ["set", "--ttl"],
    ["get", "--sort=maybe", "/a"],
    ["get", "---x", "/a"],
    ["rm", "--with-index", "1.5", "/a"],
    ["ls", "--recursive=yes", "/"],
    ["bogus"],
    ["help", "bogus"],
    ["member", "bogus"],
    ["member", "list", "extra"],
    ["member", "add"],
    ["member", "add", "only-name"],
    ["member", "remove"],
    ["member", "update", "x"],
    ["-o"],
    ["--bogus", "get", "/a"],
    # help texts of every command
    ["help", "get"], ["help", "set"], ["help", "mk"], ["help", "mkdir"], ["help", "setdir"],
    ["help", "update"], ["help", "updatedir"], ["help", "rm"], ["help", "rmdir"],
    ["help", "ls"], ["help", "watch"], ["help", "exec-watch"], ["help", "cluster-health"],
    ["member"], ["member", "help", "list"], ["member", "add", "-h"], ["get", "-h"],
    ["rmdir", "--help"],
    # plain set / get / errors
    ["set", "/a/b", "1"],
    ["get", "/a/b"],
    ["-o", "extended", "get", "/a/b"],
    ["-o", "json", "get", "/a/b"],
    ["-o", "bad", "get", "/a/b"],
    ["get", "/a/missing"],
    ["-o", "json", "get", "/a/missing"],
    ["get", "/nothere/x/y"],
    ["get", "/a"],
    ["get", "/a/b/c"],
    ["set", "/a", "x"],
    ["set", "/a/b", "2"],
    ["-o", "extended", "set", "/a/b", "3"],
    ["-o", "json", "set", "/a/b", "4"],
    ["set", "/sp ace/ünï", "v a l"],
    ["get", "/sp ace/ünï"],
    ["set", "/q?x#y", "hash&amp"],
    ["-o", "json", "get", "/q?x#y"],
    ["set", "/html", "<b>&\"quoted\"\ttab"],
    ["-o", "json", "get", "/html"],
    ["set", "/empty", ""],
    ["-o", "extended", "get", "/empty"],
    ["set", "/a/c", "--ttl", "50", "after"],      # flags after positional args are moved
    ["-o", "extended", "get", "/a/c"],
    ["set", "/a/dash", "--", "-v"],
    ["get", "/a/dash"],
    ["set", "--", "/a/dash2", "-w"],
    ["get", "/a/dash2", "--bogus"],                 # unknown flag after the key: ignored
    ["get", "/a/b/"],
    {"stdin": "from stdin\n", "args": ["set", "/stdin"]},
    ["-o", "json", "get", "/stdin"],
    # mk
    ["mk", "/a/b", "again"],
    ["mk", "/a/new", "n"],
    ["-o", "extended", "mk", "/a/new2", "n2"],
    ["mk", "--in-order", "/q", "first"],
    ["mk", "--in-order", "/q", "second"],
    ["-o", "extended", "mk", "--in-order", "/q", "third"],
    ["mk", "--in-order", "/a/b", "x"],
    ["ls", "--sort", "/q"],
    ["-o", "json", "ls", "--sort", "/q"],
    ["-o", "extended", "ls", "--sort", "/q"],
    ["ls", "--recursive", "--sort", "/"],
    ["ls", "--recursive", "--sort", "-p", "/"],
    ["ls", "--sort", "/a"],
    ["ls", "/a/b"],
    ["ls", "/missing"],
    ["ls", "--quorum", "--sort", "/a"],
    ["-o", "json", "ls", "--sort", "/"],
    ["get", "--quorum", "/a/b"],
    # update / ttl
    ["update", "/a/b", "5"],
    ["update", "/a/none", "5"],
    ["update", "--ttl", "100", "/a/b", "6"],
    ["-o", "extended", "get", "/a/b"],
    ["-o", "json", "get", "/a/b"],
    ["set", "--ttl", "200", "/t/k", "tv"],
    ["-o", "extended", "get", "/t/k"],
    ["mk", "--ttl", "300", "/t/k2", "tv2"],
    ["-o", "extended", "ls", "--sort", "/t"],
    ["update", "/t/k", "permanent"],
    ["-o", "extended", "get", "/t/k"],
    # compare-and-swap / compare-and-delete
    ["set", "--swap-with-value", "wrong", "/a/b", "7"],
    ["set", "--swap-with-value", "6", "/a/b", "7"],
    ["set", "--swap-with-index", "{B+1}", "/a/b", "8"],
    ["-o", "extended", "get", "/a/b"],
    ["set", "--swap-with-value", "x", "/a/nokey", "8"],
    ["rm", "--with-value", "wrong", "/a/b"],
    ["rm", "--with-index", "{B+1}", "/a/b"],
    ["-o", "extended", "rm", "--with-value", "7", "/a/b"],
    ["rm", "/a/b"],
    ["rm", "/a/new"],
    ["-o", "json", "rm", "/a/new2"],
    # directories
    ["mkdir", "/d"],
    ["mkdir", "/d"],
    ["mkdir", "/d/e/f"],
    ["-o", "extended", "mkdir", "/d2"],
    ["-o", "json", "mkdir", "--ttl", "100", "/d3"],
    ["setdir", "/sd"],
    ["setdir", "/sd"],
    ["updatedir", "--ttl", "500", "/sd"],
    ["ls", "/sd"],
    ["-o", "extended", "updatedir", "--ttl", "600", "/sd/"],
    ["updatedir", "/nodir"],
    ["setdir", "/a/dash"],
    ["rmdir", "/d"],
    ["rmdir", "/d/e/f"],
    ["rmdir", "/a/dash2"],
    ["rm", "/d"],
    ["rm", "--dir", "/d/e"],
    ["-o", "extended", "rm", "--dir", "/d"],
    ["rm", "--recursive", "/a"],
    ["-o", "extended", "rm", "--recursive", "/q"],
    ["rm", "--recursive", "/missing"],
    ["rm", "/"],
    ["rm", "--recursive", "/"],
    ["set", "/", "x"],
    ["mkdir", "/"],
    ["ls", "--recursive", "--sort", "/"],
    # hidden keys
    ["set", "/h/_hidden", "secret"],
    ["set", "/h/visible", "v"],
    ["ls", "--recursive", "--sort", "/h"],
    ["get", "/h/_hidden"],
    # watches
    {"watch": ["watch", "/w/k"], "write": ["set", "/w/k", "hello"]},
    {"watch": ["-o", "extended", "watch", "--recursive", "/w"], "write": ["set", "/w/sub/k2", "hi"]},
    {"watch": ["-o", "json", "watch", "/w/k"], "write": ["rm", "/w/k"]},
    {"watch": ["watch", "/w/sub/k2"], "write": ["update", "/w/sub/k2", "upd"]},
    {"watch": ["-o", "extended", "watch", "/w/sub/k2"], "write": ["rm", "/w/sub/k2"]},
    {"watch": ["-o", "extended", "watch", "--recursive", "/w"],
     "write": ["mk", "--in-order", "/w/queue", "qv"]},
    {"watch": ["watch", "--recursive", "/w2"], "write": ["mkdir", "/w2/dir-skipped"],
     "then": ["set", "/w2/k", "after-dir"]},
    ["-o", "extended", "watch", "--after-index", "{B+1}", "/a/b"],
    ["-o", "json", "watch", "--after-index", "{B+1}", "--recursive", "/t"],
    ["watch", "--after-index", "{B+1}", "/a/new"],
    {"exec_watch": "/w/e", "writes": [["set", "/w/e", "v1"], ["set", "/w/e", "v2"],
                                       ["rm", "/w/e"]]},
    # cluster
    ["member", "list"],
    ["cluster-health"],
    ["--no-sync", "get", "/h/visible"],
    ["--no-sync", "-o", "extended", "get", "/h/visible"],
    ["--timeout", "3s", "--total-timeout=4s", "get", "/h/visible"],
    ["member", "remove", "ffffffffffffffff"],
]


# --------------------------------------------------------------------------- running
def ctl_env():
    env = dict(os.environ)
    env["ETCDCTL_API"] = "2"
    for k in list(env):
        if k.startswith("ETCDCTL_") and k != "ETCDCTL_API":
            del env[k]
    return env


def expand(arg, base):
    def rep(m):
        return str(base + int(m.group(1) or 0))
    return re.sub(r"\{B([+-]\d+)?\}", rep, arg)


def run_ctl(binary, url, args, base=0, stdin=None, timeout=CTL_TIMEOUT, env=None):
    argv = [binary, "--endpoints", url] + [expand(a, base) for a in args]
    try:
        p = subprocess.run(argv, input=(stdin or "").encode(), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=env or ctl_env(), timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return ("TIMEOUT", (e.stdout or b"").decode("utf-8", "replace"),
                (e.stderr or b"").decode("utf-8", "replace"))
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def run_watch(binary, srv, step, base):
    argv = [binary, "--endpoints", srv.url] + [expand(a, base) for a in step["watch"]]
    before = srv.watchers() or 0
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ctl_env())
    try:
        srv.wait_watchers(before + 1, timeout=10)
        time.sleep(0.2)
        early = p.poll()
        writes = [run_ctl(binary, srv.url, step["write"], base)]
        if "then" in step:
            srv.wait_watchers(before + 1, timeout=10)
            time.sleep(0.2)
            writes.append(run_ctl(binary, srv.url, step["then"], base))
        try:
            out, err = p.communicate(timeout=CTL_TIMEOUT)
            rc = p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            rc = "TIMEOUT (watch did not end after the write)"
        if early is not None:
            rc = "%s (ended before the write)" % rc
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return {"writer": writes,
            "watcher": (rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))}


def run_exec_watch(binary, srv, step, base, workdir):
    out_file = os.path.join(workdir, "exec-watch-%d.txt" % time.monotonic_ns())
    script = 'env | grep "^ETCD_WATCH_" | sort >> "%s"; echo --- >> "%s"' % (out_file, out_file)
    argv = [binary, "--endpoints", srv.url, "exec-watch", "--recursive", step["exec_watch"],
            "--", "sh", "-c", script]
    before = srv.watchers() or 0
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ctl_env(), start_new_session=True)
    writes = []
    try:
        srv.wait_watchers(before + 1, timeout=10)
        time.sleep(0.2)
        for w in step["writes"]:
            writes.append(run_ctl(binary, srv.url, w, base))
            want = len(writes)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if os.path.exists(out_file):
                    with open(out_file) as f:
                        if f.read().count("---\n") >= want:
                            break
                time.sleep(0.05)
    finally:
        alive = p.poll() is None
        if alive:
            os.killpg(p.pid, 9)
        out, err = p.communicate()
    recorded = open(out_file).read() if os.path.exists(out_file) else "(nothing recorded)"
    return {"writes": writes, "recorded": recorded,
            "exec-watch": ("running" if alive else p.returncode, out.decode("utf-8", "replace"),
                           err.decode("utf-8", "replace"))}


def label(step):
    if isinstance(step, list):
        return " ".join(step)
    if "watch" in step:
        return "watch: %s | write: %s" % (" ".join(step["watch"]), " ".join(step["write"]))
    if "exec_watch" in step:
        return "exec-watch %s" % step["exec_watch"]
    return "stdin %r | %s" % (step["stdin"], " ".join(step["args"]))


def run_script(binary, srv, workdir):
    base = srv.index()
    results = []
    for step in SCRIPT:
        if isinstance(step, list):
            res = run_ctl(binary, srv.url, step, base)
        elif "watch" in step:
            res = run_watch(binary, srv, step, base)
        elif "exec_watch" in step:
            res = run_exec_watch(binary, srv, step, base, workdir)
        else:
            res = run_ctl(binary, srv.url, step["args"], base, stdin=step["stdin"])
        results.append((label(step), res))
    return base, results


# --------------------------------------------------------------------------- normalising
def normaliser(srv, base):
    return transcript.normaliser(srv, base, first=[
        (r"\bquorumctl\b", lambda m: "etcdctl"),
        # the app help lists different commands (export/import/du) and another version: only
        # the usage error before it is compared.
        (r"(?s)NAME:\n   etcdctl - A simple command line client for etcd\.\n.*",
         lambda m: "<app help>"),
    ])


def compare(reference, got, what):
    assert len(got) == len(reference)
    diffs = []
    for (lab, want), (_, have) in zip(reference, got):
        if want != have:
            diffs.append("### %s\n--- etcdctl + etcd 3.4:\n%s\n--- %s:\n%s"
                         % (lab, fmt(want), what, fmt(have)))
    assert not diffs, "%d of %d steps differ:\n\n%s" % (len(diffs), len(got), "\n\n".join(diffs))


# --------------------------------------------------------------------------- the tests
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    if not cluster.etcdctl_binary() or not cluster.etcd_binary():
        pytest.skip("etcd/etcdctl not found on PATH")
    srv = cluster.Server(str(tmp_path_factory.mktemp("ref_etcd")), kind="etcd")
    srv.start()
    try:
        base, results = run_script(cluster.etcdctl_binary(), srv, str(tmp_path_factory.mktemp("ref")))
        return [(lab, normaliser(srv, base)(r)) for lab, r in results]
    finally:
        srv.stop()


def _require_quorumctl():
    if not os.path.exists(quorumctl_binary()):
        pytest.fail("quorumctl binary %r does not exist (set QUORUMCTL)" % quorumctl_binary())


@pytest.mark.time_limit(300)
def test_reference_script_sanity(reference):
    by = dict(reference)
    for lab, res in reference:
        assert "TIMEOUT" not in repr(res), "%s: %s" % (lab, fmt(res))
    assert by["get /a/b"] == (0, "1\n", "")
    assert by["get /a/missing"] == (4, "", "Error:  100: Key not found (/a/missing) [{B+1}]\n")
    assert by["watch: watch /w/k | write: set /w/k hello"]["watcher"] == (0, "hello\n", "")
    assert by["exec-watch /w/e"]["recorded"].count("---\n") == 3


@pytest.mark.time_limit(300)
def test_quorumctl_on_etcd_matches_etcdctl(reference, make_server, tmp_path):
    _require_quorumctl()
    srv = make_server(kind="etcd")
    base, results = run_script(quorumctl_binary(), srv, str(tmp_path))
    compare(reference, [(lab, normaliser(srv, base)(r)) for lab, r in results], "quorumctl + etcd")


@pytest.mark.time_limit(300)
def test_quorumctl_on_quorumd_matches_etcdctl(reference, make_server, tmp_path):
    _require_quorumctl()
    srv = make_server()
    base, results = run_script(quorumctl_binary(), srv, str(tmp_path))
    compare(reference, [(lab, normaliser(srv, base)(r)) for lab, r in results],
            "quorumctl + %s" % srv.kind)


# --------------------------------------------------------------------------- no server
def _both(args, url, timeout=CTL_TIMEOUT):
    """(etcdctl result, quorumctl result) for the same arguments."""
    return (run_ctl(cluster.etcdctl_binary(), url, args, timeout=timeout),
            run_ctl(quorumctl_binary(), url, args, timeout=timeout))


@pytest.mark.time_limit(120)
def test_no_server_is_a_bounded_error_like_etcdctl():
    _require_quorumctl()
    if not cluster.etcdctl_binary():
        pytest.skip("etcdctl not found")
    port = cluster.free_port()  # nothing listens there
    url = "http://127.0.0.1:%d" % port
    err = ("Error:  client: etcd cluster is unavailable or misconfigured; error #0: dial tcp "
           "127.0.0.1:%d: connect: connection refused\n\nerror #0: dial tcp 127.0.0.1:%d: connect: "
           "connection refused\n\n" % (port, port))
    cases = {
        ("get", "/a"): (2, "", err),
        ("--no-sync", "get", "/a"): (4, "", err),
        ("set", "/a", "1"): (2, "", err),
        ("member", "list"): (2, "", err),
        ("cluster-health",): (4, "cluster may be unhealthy: failed to list members\n", err),
    }
    for args, want in cases.items():
        ref, got = _both(list(args), url)
        assert ref == want, args
        assert got == want, args


@pytest.mark.time_limit(120)
def test_unanswering_server_times_out_like_etcdctl():
    """A socket that accepts connections but never answers: the header timeout, then exit 4."""
    _require_quorumctl()
    if not cluster.etcdctl_binary():
        pytest.skip("etcdctl not found")
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    try:
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        hdr = ("Error:  client: etcd cluster is unavailable or misconfigured; error #0: client: "
               "endpoint %s exceeded header timeout\n\nerror #0: client: endpoint %s exceeded "
               "header timeout\n\n" % (url, url))
        for args, want in [
            (["--timeout", "500ms", "get", "/a"], (4, "", hdr)),
            (["--total-timeout", "500ms", "--no-sync", "get", "/a"],
             (4, "", "Error:  context deadline exceeded\n")),
        ]:
            t0 = time.monotonic()
            got = run_ctl(quorumctl_binary(), url, args)
            took = time.monotonic() - t0
            ref = run_ctl(cluster.etcdctl_binary(), url, args)
            assert ref == want
            assert got == want
            assert took < 5
    finally:
        s.close()


@pytest.mark.time_limit(120)
def test_failover_to_the_next_endpoint(make_server):
    _require_quorumctl()
    srv = make_server()
    dead = "http://127.0.0.1:%d" % cluster.free_port()
    eps = dead + "," + srv.url
    for extra in ([], ["--no-sync"]):
        got = run_ctl(quorumctl_binary(), eps, extra + ["set", "/fo", "v"])
        assert got == (0, "v\n", "")
        got = run_ctl(quorumctl_binary(), eps, extra + ["get", "/fo"])
        assert got == (0, "v\n", "")
    env = ctl_env()
    env["ETCDCTL_ENDPOINTS"] = eps
    p = subprocess.run([quorumctl_binary(), "get", "/fo"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=CTL_TIMEOUT)
    assert (p.returncode, p.stdout, p.stderr) == (0, b"v\n", b"")


# --------------------------------------------------------------------------- export / import / du
def _ctl(srv, *args, stdin=None):
    return run_ctl(quorumctl_binary(), srv.url, list(args), stdin=stdin)


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("kind", ["quorumd", "etcd"])
def test_export_import_du(make_server, kind):
    _require_quorumctl()
    srv = make_server(kind=None if kind == "quorumd" else "etcd")
    for args in (["set", "/src/a", "1"], ["set", "/src/d/b", "two"], ["mkdir", "/src/empty"],
                 ["set", "--ttl", "300", "/src/d/t", "ttl <&>"], ["mkdir", "--ttl", "400", "/src/td"],
                 ["set", "/src/ünï code", "ü"], ["set", "/other", "x"]):
        assert _ctl(srv, *args)[0] == 0, args
    assert _ctl(srv, "du", "/src") == (0, "/src: 4 keys, 3 dirs, 13 bytes\n", "")
    assert _ctl(srv, "-o", "json", "du", "/src/d") == (
        0, '{"key":"/src/d","keys":2,"dirs":0,"bytes":10}\n', "")
    assert _ctl(srv, "du", "/missing") == (4, "", "Error:  100: Key not found (/missing) [%d]\n"
                                           % srv.index())
    rc, out, err = _ctl(srv, "export", "/src")
    assert (rc, err) == (0, "")
    out = re.sub(r'"ttl":(\d+)', lambda m: '"ttl":~%d' % (100 * round(int(m.group(1)) / 100)), out)
    assert out == (
        '{"quorumctl_export":1,"prefix":"/src","entries":[\n'
        '{"path":"","dir":true},\n'
        '{"path":"a","value":"1"},\n'
        '{"path":"d","dir":true},\n'
        '{"path":"d/b","value":"two"},\n'
        '{"path":"d/t","value":"ttl \\u003c\\u0026\\u003e","ttl":~300},\n'
        '{"path":"empty","dir":true},\n'
        '{"path":"td","dir":true,"ttl":~400},\n'
        '{"path":"ünï code","value":"ü"}\n'
        ']}\n')
    rc, dump, _ = _ctl(srv, "export", "/src")
    assert _ctl(srv, "import", "/dst", stdin=dump) == (
        0, "imported 4 keys and 4 directories under /dst\n", "")
    rc, again, _ = _ctl(srv, "export", "/dst")
    strip = lambda s: re.sub(r',"ttl":\d+', "", s).replace('"prefix":"/dst"', '"prefix":"/src"')
    assert strip(again) == strip(dump)
    assert _ctl(srv, "get", "/dst/d/b") == (0, "two\n", "")
    rc, out, _ = _ctl(srv, "-o", "extended", "get", "/dst/d/t")
    assert int(re.search(r"TTL: (\d+)", out).group(1)) > 250
    # importing again fails on the first existing key, unless --force
    rc, out, err = _ctl(srv, "import", "/dst", stdin=dump)
    assert (rc, out) == (4, "")
    assert re.fullmatch(r"Error:  105: Key already exists \(/dst/a\) \[\d+\]\n", err), err
    assert _ctl(srv, "import", "--force", "/dst", stdin=dump) == (
        0, "imported 4 keys and 4 directories under /dst\n", "")
    assert _ctl(srv, "import", "/x", stdin="not json") == (
        1, "", "Error:  standard input is not a quorumctl export\n")
    for bad in ('{"entries":[{"path":"a","value":5}]}', '{"entries":[{"value":"v"}]}',
                '{"entries":[{"path":"a","value":"v","ttl":"9"}]}', '{"entries":{}}', "[]"):
        assert _ctl(srv, "import", "/x", stdin=bad) == (
            1, "", "Error:  standard input is not a quorumctl export\n"), bad
    assert srv.keys("GET", "/x")[0] == 404  # nothing imported
    # a value with NUL bytes (set with curl) goes out and back whole
    st, _, _ = srv.keys("PUT", "/nul/k", form={"value": "a\0b\0"})
    assert st == 201
    rc, dump, _ = _ctl(srv, "export", "/nul")
    assert '"value":"a\\u0000b\\u0000"' in dump, dump
    assert _ctl(srv, "import", "/nul2", stdin=dump)[0] == 0
    assert srv.keys("GET", "/nul2/k")[2]["node"]["value"] == "a\0b\0"
    assert _ctl(srv, "export") == (1, "", "Error:  prefix required\n")
    # a single key exports as itself
    assert _ctl(srv, "export", "/other") == (
        0, '{"quorumctl_export":1,"prefix":"/other","entries":[\n{"path":"","value":"x"}\n]}\n', "")


# --------------------------------------------------------------------------- membership changes
def _member_changes(binary, srv):
    """update of an unknown member, then an add (after which a one-member etcd has lost its
    quorum, so nothing else is changed) and the list. Orders that follow random member ids
    are sorted."""
    peer = "http://127.0.0.1:%d" % cluster.free_port()
    out = [run_ctl(binary, srv.url, ["member", "update", "ffff", "http://127.0.0.1:1"]),
           run_ctl(binary, srv.url, ["member", "add", "n2", peer]),
           run_ctl(binary, srv.url, ["--no-sync", "member", "list"])]
    norm = normaliser(srv, 0)

    def fix(x):
        if not isinstance(x, str):
            return x
        x = norm(x).replace(peer, "<new-peer>")
        x = re.sub(r'ETCD_INITIAL_CLUSTER="([^"]*)"',
                   lambda m: 'ETCD_INITIAL_CLUSTER="%s"' % ",".join(sorted(m.group(1).split(","))), x)
        if "peerURLs=" in x:
            x = "".join(sorted(x.splitlines(True)))
        return x
    return [tuple(fix(x) for x in o) for o in out]


@pytest.mark.time_limit(120)
def test_member_add_update_on_etcd_like_etcdctl(make_server):
    _require_quorumctl()
    if not cluster.etcdctl_binary():
        pytest.skip("etcdctl not found")
    want = _member_changes(cluster.etcdctl_binary(), make_server(kind="etcd"))
    got = _member_changes(quorumctl_binary(), make_server(kind="etcd"))
    assert got == want
    assert want[1][0] == 0 and "ETCD_INITIAL_CLUSTER_STATE=\"existing\"" in want[1][1]


@pytest.mark.time_limit(120)
def test_debug_lines_like_etcdctl(make_server):
    """--debug: the sync's lines ("start to sync cluster using endpoints(...)", the members
    request, "got endpoints(...) after sync"), Cluster-Endpoints and the request, as etcdctl
    prints them; with --no-sync every endpoint is listed (etcdctl shuffles them: compared as
    sets)."""
    _require_quorumctl()
    if not cluster.etcdctl_binary():
        pytest.skip("etcdctl not found")
    srv = make_server(kind="etcd")
    url = srv.url
    assert srv.keys("PUT", "/dbg", form={"value": "v"})[0] == 201
    ref, got = _both(["--debug", "get", "/dbg"], url)
    assert got == ref
    assert got[2] == ("start to sync cluster using endpoints(%s)\n"
                      "cURL Command: curl -X GET %s/v2/members\n"
                      "got endpoints(%s) after sync\n"
                      "Cluster-Endpoints: %s\n"
                      "cURL Command: curl -X GET %s/v2/keys/dbg?quorum=false&recursive=false&sorted=false\n"
                      % (url, url, url, url, url)), got[2]
    other = "http://127.0.0.1:%d" % cluster.free_port()
    ref, got = _both(["--debug", "--no-sync", "get", "/dbg"], url + "," + other)
    line = [l for l in got[2].splitlines() if l.startswith("Cluster-Endpoints: ")]
    ref_line = [l for l in ref[2].splitlines() if l.startswith("Cluster-Endpoints: ")]
    assert len(line) == 1 and set(line[0][19:].split(", ")) == set(ref_line[0][19:].split(", ")) \
        == {url, other}, (got, ref)
    assert got[:2] == ref[:2] == (0, "v\n")
