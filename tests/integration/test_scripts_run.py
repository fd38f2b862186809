"""scripts/run, the README's first command: a one-member quorumd on its data dir with its key
tree mounted by quorumfs, both stopped cleanly by Ctrl-C (SIGINT to the process group, as a
terminal sends it), and the data there again at the next run. The binaries under test are used
(QUORUM_BIN_DIR) instead of the project's build/ tree, which scripts/test builds anyway."""
import os
import signal
import subprocess
import threading
import time

import cluster
from test_fs import SANITIZER_MARKS, _need_fuse, read_file, write_file  # noqa: F401 (a fixture)

import pytest

pytestmark = pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd's own script")


class Run:
    """scripts/run in a process group of its own, its output collected."""

    def __init__(self, tmp_path, port, peer_port):
        self.url = "http://127.0.0.1:%d" % port
        self.mnt = str(tmp_path / "mnt")
        self.data = str(tmp_path / "data")
        env = dict(os.environ, QUORUM_PORT=str(port), QUORUM_PEER_PORT=str(peer_port),
                   QUORUM_DATA_DIR=self.data,
                   QUORUM_MOUNT=self.mnt,
                   QUORUM_BIN_DIR=os.path.dirname(os.path.abspath(cluster.quorumd_binary())))
        self.proc = subprocess.Popen([os.path.join(cluster.SOURCE_DIR, "scripts", "run")],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     preexec_fn=cluster.default_signals)
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.decode("utf-8", "replace"))

    def output(self):
        return "".join(self.lines)

    def wait_output(self, text, timeout=60):
        deadline = time.monotonic() + timeout
        while text not in self.output():
            assert self.proc.poll() is None, "scripts/run ended:\n" + self.output()
            assert time.monotonic() < deadline, "no %r in:\n%s" % (text, self.output())
            time.sleep(0.1)

    def ctrl_c(self):
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            raise AssertionError("scripts/run did not stop on Ctrl-C:\n" + self.output())
        self.reader.join(5)

    def kill(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        subprocess.run(["fusermount3", "-u", "-z", self.mnt], stderr=subprocess.DEVNULL)


def mounted(path):
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == path for line in f)


def wait_for(cond, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def test_run_serves_mounts_and_stops_on_ctrl_c_keeping_the_data(tmp_path):
    # (two ports of their own: the default peer port, the next one, may be taken; the next run
    # uses the same two, as the data dir records them)
    port, peer_port = cluster.free_port(), cluster.free_port()
    r = Run(tmp_path, port, peer_port)
    try:
        r.wait_output("quorumfs: key tree mounted at " + r.mnt)
        assert "quorumd: client URL %s (data dir %s)" % (r.url, r.data) in r.output()
        wait_for(lambda: mounted(r.mnt), what="the mount")
        # the API and the files are one tree
        st, _, body = cluster.http_request(r.url, "PUT", "/v2/keys/app/greeting",
                                           body={"value": "hello"})
        assert st == 201, body
        wait_for(lambda: os.path.exists(os.path.join(r.mnt, "app", "greeting")),
                 what="the key as a file")
        assert read_file(os.path.join(r.mnt, "app", "greeting")) == b"hello"
        write_file(os.path.join(r.mnt, "app", "reply"), b"hi\n")
        st, _, body = cluster.http_request(r.url, "GET", "/v2/keys/app/reply")
        assert st == 200 and b'"value":"hi\\n"' in body, body
        r.ctrl_c()
        assert not mounted(r.mnt), "still mounted after Ctrl-C:\n" + r.output()
        with pytest.raises(OSError):
            cluster.http_request(r.url, "GET", "/health", timeout=2)
        assert not any(mark in r.output() for mark in SANITIZER_MARKS), r.output()
    finally:
        r.kill()
    # the next run finds the data dir as it was left
    r = Run(tmp_path, port, peer_port)
    try:
        r.wait_output("quorumfs: key tree mounted at " + r.mnt)
        st, _, body = cluster.http_request(r.url, "GET", "/v2/keys/app/greeting")
        assert st == 200 and b'"value":"hello"' in body, body
        wait_for(lambda: mounted(r.mnt), what="the mount")
        assert read_file(os.path.join(r.mnt, "app", "reply")) == b"hi\n"
        r.ctrl_c()
        assert not mounted(r.mnt)
        assert not any(mark in r.output() for mark in SANITIZER_MARKS), r.output()
    finally:
        r.kill()
