"""The shared v2 conformance corpus (recorded from etcd 3.4.23) replayed against the server."""
import os
import re
import subprocess

import pytest

import cluster

RUNNER = os.path.join(cluster.SHARED_DIR, "conformance", "run.py")


@pytest.mark.time_limit(400)
@pytest.mark.parametrize("loops", [None, 3], ids=["default", "3-http-loops"])
def test_conformance_corpus(make_server, loops):
    if loops and cluster.is_etcd_target():
        pytest.skip("--http-loops is quorumd's own")
    server = make_server(extra_args=("--http-loops", str(loops)) if loops else ())
    if not os.path.exists(RUNNER):
        pytest.fail("conformance runner not found at %s (QUORUM_SHARED_DIR=%r)"
                    % (RUNNER, os.environ.get("QUORUM_SHARED_DIR")), pytrace=False)
    try:
        p = subprocess.run([cluster.PYTHON, RUNNER, "--endpoint", server.url],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=360)
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        pytest.fail("conformance runner did not finish within 360 s\n" + out, pytrace=False)
    out = p.stdout.decode("utf-8", "replace")
    lines = [l for l in out.splitlines() if l.strip()]
    last = lines[-1] if lines else ""
    m = re.fullmatch(r"(\d+) passed, (\d+) failed", last.strip())
    failed = [l for l in lines if l.startswith("FAIL")]
    assert p.returncode == 0 and m and int(m.group(2)) == 0 and int(m.group(1)) > 0, (
        "conformance runner exit status %d, last line %r\n%d failing case(s):\n%s\n\n"
        "--- full runner output ---\n%s" % (p.returncode, last, len(failed), "\n".join(failed), out))
