"""python-etcd's own integration suite (etcd/tests/integration/test_simple.py of Debian's
python3-etcd: 17 tests of reads, writes, TTLs, CAS, in-order keys, directories, watches with
and without index, generators, reconnection across a 3-member cluster that is stopped and
started again) run against quorumd standing in for the `etcd` binary it starts.

The suite starts its servers on fixed ports (6001.., 8001..), so it runs in a network
namespace of its own (`unshare --net`, loopback only): no other test or program can hold
those ports there. Its files are copied from the installed package into a temp dir at run
time, with one line changed (it imports `nottest` from nose, which Debian's python3 lacks:
replaced by a no-op decorator); nothing of it is kept in this repository.
Normal build only (tests/CMakeLists.txt): the suite starts ~30 servers one after the other.
"""
import os
import shutil
import subprocess
import sys

import pytest

import cluster


def test_python_etcd_integration_suite_passes_against_quorumd(tmp_path):
    etcd = pytest.importorskip("etcd")
    src = os.path.dirname(etcd.__file__)
    suite = os.path.join(src, "tests", "integration", "test_simple.py")
    if not os.path.exists(suite):
        pytest.fail("python3-etcd's integration tests are missing (%s)" % suite)
    for tool in ("unshare", "ip"):
        assert shutil.which(tool), "%s is missing (scripts/deps --test installs it)" % tool
    pkg = tmp_path / "etcd"
    shutil.copytree(src, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    test_file = pkg / "tests" / "integration" / "test_simple.py"
    text = test_file.read_text()
    assert "from nose.tools import nottest" in text
    test_file.write_text(text.replace("from nose.tools import nottest", "nottest = lambda f: f"))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(os.path.abspath(cluster.quorumd_binary()), bindir / "etcd")
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ.get("PATH", "")))
    script = ("ip link set lo up && exec %s -m pytest -q -p no:cacheprovider "
              "-W ignore::DeprecationWarning etcd/tests/integration/test_simple.py" % sys.executable)
    p = subprocess.run(["unshare", "--net", "sh", "-c", script], cwd=tmp_path, env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=400)
    out = p.stdout.decode("utf-8", "replace")
    assert p.returncode == 0, out[-20000:]
    assert "17 passed" in out, out[-5000:]
