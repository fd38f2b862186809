"""The built-in web UI (/ui/), end to end: tests/e2e/ui.test.mjs drives Debian's Chromium
(headless, through playwright-core from npm, installed by `scripts/deps --test` into
tests/e2e/node_modules) against two real quorumd daemons started here: the page is served by
the first; the second is the other endpoint for `?endpoint=`; a third has /v2/auth on, for
the sign-in. A real 3-member Raft cluster
(raft_cluster.RaftCluster) is also started, for the cluster panel opened on a follower.
Screenshots of the main views go to <build dir>/ui-screenshots (the folder of $QUORUMD)."""
import json
import os
import subprocess

import pytest

import cluster
from conftest import SANITIZER_MARKS
from raft_cluster import RaftCluster

NODE = "/usr/bin/node"
CHROMIUM = "/usr/bin/chromium"
E2E = os.path.join(cluster.SOURCE_DIR, "tests", "e2e")
SCRIPT = os.path.join(E2E, "ui.test.mjs")


def _missing():
    need = {NODE: "node", CHROMIUM: "Debian's chromium",
            os.path.join(E2E, "node_modules", "playwright-core", "package.json"): "playwright-core"}
    return [what for p, what in need.items() if not os.path.exists(p)]


def _stop_cluster(rc):
    """Stops every member; a member that exits uncleanly or whose log holds a sanitizer
    report (the ASan build) is an error, as for the single daemons of make_server."""
    bad = []
    for m in rc.members:
        was_running = m.running()
        code = m.stop() if was_running else None
        log = m.all_logs(200000)
        marks = [x for x in SANITIZER_MARKS if x in log]
        if marks or (was_running and code not in (0, None)):
            bad.append("%s: exit %s, %s\n%s" % (m.name, code, ", ".join(marks) or "no report", log[-20000:]))
    return bad


@pytest.mark.time_limit(270)
def test_ui_in_chromium(make_server, tmp_path):
    if cluster.is_etcd_target():
        pytest.skip("etcd does not serve the web UI")
    missing = _missing()
    assert not missing, "not installed: %s (scripts/deps --test installs them)" % ", ".join(missing)
    a = make_server(name="ui-a")
    b = make_server(name="ui-b")
    c = make_server(name="ui-c")  # /v2/auth on: root, "ed" who may write /ed/*, "amy" and "ann" (a subtree each)
    for method, path, body, hdrs in (
            ("PUT", "/v2/auth/users/root", {"user": "root", "password": "rootpw"}, None),
            ("PUT", "/v2/auth/roles/ed", {"role": "ed", "permissions": {"kv": {"read": ["/*"], "write": ["/ed/*"]}}}, None),
            ("PUT", "/v2/auth/users/ed", {"user": "ed", "password": "edpw", "roles": ["ed"]}, None),
            ("PUT", "/v2/keys/ed/k", "value=v", {"Content-Type": "application/x-www-form-urlencoded"}),
            # "amy" may read /amy and below only (and watch it: /amy*), "ann" /ann and /ann/*
            # (which etcd does not let her watch recursively): each page opens there
            ("PUT", "/v2/auth/roles/amy", {"role": "amy", "permissions": {"kv": {"read": ["/amy*"], "write": ["/amy/*"]}}}, None),
            ("PUT", "/v2/auth/users/amy", {"user": "amy", "password": "amypw", "roles": ["amy"]}, None),
            ("PUT", "/v2/keys/amy/sub/b", "value=2", {"Content-Type": "application/x-www-form-urlencoded"}),
            ("PUT", "/v2/auth/roles/ann", {"role": "ann", "permissions": {"kv": {"read": ["/ann", "/ann/*"], "write": ["/ann/*"]}}}, None),
            ("PUT", "/v2/auth/users/ann", {"user": "ann", "password": "annpw", "roles": ["ann"]}, None),
            ("PUT", "/v2/keys/ann/c", "value=3", {"Content-Type": "application/x-www-form-urlencoded"}),
            ("PUT", "/v2/auth/enable", None, None),
            ("PUT", "/v2/auth/roles/guest", {"role": "guest", "revoke": {"kv": {"read": ["/*"], "write": ["/*"]}}},
             {"Authorization": "Basic cm9vdDpyb290cHc="})):
        st, _, out = c.request(method, path, body=json.dumps(body) if isinstance(body, dict) else body,
                               headers=hdrs)
        assert st in (200, 201), (path, st, out)
    shots = os.path.join(os.path.dirname(os.path.abspath(cluster.quorumd_binary())), "ui-screenshots")
    raft = RaftCluster(str(tmp_path / "raft"), 3)
    try:
        raft.start()
        raft.leader()  # elected before the browser starts; the page test finds it again itself
        env = dict(os.environ, QUORUM_UI_URL=a.url, QUORUM_UI_URL2=b.url, QUORUM_UI_URL3=c.url,
                   QUORUM_UI_SHOTS=shots,
                   QUORUM_UI_CLUSTER=",".join(m.url for m in raft.members))
        proc = subprocess.Popen([NODE, SCRIPT], cwd=E2E, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        cluster._live.add(proc)  # killed with its group (Chromium too) if the test is cut short
        try:
            out, _ = proc.communicate(timeout=250)
        finally:
            cluster._kill_group(proc, 9)
            proc.wait()
            cluster._live.discard(proc)
    except BaseException:
        print(raft.logs())
        raise
    finally:
        bad_members = _stop_cluster(raft)
    text = out.decode("utf-8", "replace")
    print(text)
    with open(os.path.join(shots, "e2e.log"), "w") as f:  # kept beside the screenshots
        f.write(text)
    if proc.returncode != 0:
        print(raft.logs())  # shown with the failure (a leader change, a member's error...)
    assert proc.returncode == 0, "browser tests failed:\n" + text
    assert " 0 failed" in text and "passed" in text
    assert not bad_members, "cluster members:\n" + "\n".join(bad_members)
