"""Fixtures for the whole-program tests.

Target: quorumd ($QUORUMD, default <repo>/build/quorumd), or real etcd when
QUORUM_TARGET=etcd (to validate the tests themselves against the reference).

Fixtures
  server          a fresh one-member server of the target kind (function scope)
  module_server   one server of the target kind shared by a test module
  make_server     factory: make_server(kind=None, name="t", extra_args=()) -> started Server
  etcd_server     a fresh real etcd (always etcd; skipped if the binary is missing)
  module_etcd     one real etcd shared by a module

Every test runs under a wall-clock limit (default 120 s; @pytest.mark.time_limit(N)
to change it). When a test fails, the logs of the servers that were running are
attached to the report.
"""
import faulthandler
import os
import signal
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cluster  # noqa: E402
from cluster import Server  # noqa: E402,F401  (for tests that build their own)

DEFAULT_TIME_LIMIT = 120

_running = []   # Servers currently running (for the failure report)


def pytest_configure(config):
    config.addinivalue_line("markers", "time_limit(seconds): wall-clock limit for one test")


def pytest_report_header(config):
    t = cluster.target()
    b = cluster.etcd_binary() if t == "etcd" else cluster.quorumd_binary()
    return "quorum integration target: %s (%s)" % (t, b)


class TimeLimitExceeded(BaseException):
    """Raised in the main thread when a test overruns its time limit (BaseException so that
    `except Exception` in the test does not swallow it)."""


@pytest.fixture(autouse=True)
def _time_limit(request):
    m = request.node.get_closest_marker("time_limit")
    limit = m.args[0] if m else DEFAULT_TIME_LIMIT
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        faulthandler.dump_traceback(all_threads=True)
        raise TimeLimitExceeded("test exceeded its time limit of %s s" % limit)

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    # If even that does not end it (a hang in C code), at least show where it is stuck.
    faulthandler.dump_traceback_later(limit + 30, exit=False)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for s in list(_running):
            rep.sections.append(("server log %s %s" % (s.kind, s.workdir), s.all_logs()))


def _start(workdir, kind=None, **kw):
    s = cluster.Server(str(workdir), kind=kind, **kw)
    _running.append(s)
    err = None
    try:
        s.start()
    except cluster.ServerStartError as e:
        err = str(e)
    except BaseException:
        _running.remove(s)
        s.kill9()
        raise
    if err is not None:
        _running.remove(s)
        s.kill9()
        pytest.fail(err, pytrace=False)
    return s


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


def _finish(s):
    """Stops s; a quorumd that exits uncleanly or whose log holds a sanitizer report (the
    ASan/UBSan build) fails the test that used it."""
    was_running = s.running() if hasattr(s, "running") else True
    try:
        rc = s.stop()
    finally:
        if s in _running:
            _running.remove(s)
    if s.kind == "etcd":
        return
    log = s.all_logs(limit=200000)
    bad = [m for m in SANITIZER_MARKS if m in log]
    if bad:
        pytest.fail("quorumd's log has a sanitizer report (%s):\n%s" % (", ".join(bad), log[-20000:]),
                    pytrace=False)
    if was_running and rc not in (0, None):
        pytest.fail("quorumd exited with status %s on SIGTERM:\n%s" % (rc, log[-5000:]), pytrace=False)


def _require_etcd():
    if not cluster.etcd_binary():
        pytest.skip("real etcd binary not found on PATH: the comparison with etcd 3.4 cannot run")


def _require_target():
    if cluster.target() == "etcd":
        _require_etcd()
    else:
        b = cluster.quorumd_binary()
        if not os.path.exists(b):
            pytest.fail("quorumd binary %r does not exist (set QUORUMD=path, or QUORUM_TARGET=etcd "
                        "to run the tests against real etcd)" % b, pytrace=False)


@pytest.fixture
def make_server(tmp_path):
    started = []

    def make(kind=None, **kw):
        if (kind or cluster.target()) == "etcd":
            _require_etcd()
        else:
            _require_target()
        d = tmp_path / ("srv%d" % len(started))
        s = _start(d, kind=kind, **kw)
        started.append(s)
        return s

    yield make
    for s in started:
        _finish(s)


@pytest.fixture
def server(tmp_path):
    _require_target()
    s = _start(tmp_path / "server")
    yield s
    _finish(s)


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    _require_target()
    s = _start(tmp_path_factory.mktemp("module_server"))
    yield s
    _finish(s)


@pytest.fixture
def etcd_server(tmp_path):
    _require_etcd()
    s = _start(tmp_path / "etcd", kind="etcd")
    yield s
    _finish(s)


@pytest.fixture(scope="module")
def module_etcd(tmp_path_factory):
    _require_etcd()
    s = _start(tmp_path_factory.mktemp("module_etcd"), kind="etcd")
    yield s
    _finish(s)
