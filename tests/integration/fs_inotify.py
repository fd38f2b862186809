"""inotifywait (Debian inotify-tools) on a quorumfs mount, for the quorumfs tests.

Inotify(mountpoint) runs `inotifywait -m -r` on the mount and collects its events; `kinds()`
filters them to what a change is made of (CREATE, MODIFY, CLOSE_WRITE, DELETE, MOVED_FROM/TO,
with ISDIR),
dropping the reads that any access makes (OPEN, ACCESS, CLOSE_NOWRITE) and the watch
bookkeeping (DELETE_SELF, IGNORED), and merging repeated MODIFYs of one file in a row (a local
O_TRUNC write gives two).
"""
import os
import shutil
import subprocess
import threading
import time

import pytest

KEEP = ("CREATE", "MODIFY", "CLOSE_WRITE", "DELETE", "MOVED_FROM", "MOVED_TO")


def need_inotifywait():
    if not shutil.which("inotifywait"):
        pytest.skip("inotifywait (inotify-tools) is not installed")


class Inotify:
    def __init__(self, mountpoint):
        need_inotifywait()
        self.root = mountpoint.rstrip("/") + "/"
        self.lines = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen(
            ["inotifywait", "-m", "-r", "--format", "%w%f\t%e", self.root],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line or b"Watches established" in line:
                break
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            path, _, ev = line.decode("utf-8", "replace").rstrip("\n").partition("\t")
            rel = path[len(self.root):] if path.startswith(self.root) else path
            with self.lock:
                self.lines.append((rel.rstrip("/"), ev))

    def raw(self):
        with self.lock:
            return list(self.lines)

    def kinds(self, under=None):
        """[(path, 'CREATE' | 'CREATE,ISDIR' | 'MODIFY' | 'CLOSE_WRITE' | 'DELETE' | ...)]"""
        out = []
        for path, ev in self.raw():
            flags = ev.split(",")
            kind = next((k for k in KEEP if k in flags), None)
            if kind is None or not path:
                continue
            if under is not None and not (path == under or path.startswith(under + "/")):
                continue
            item = (path, kind + (",ISDIR" if "ISDIR" in flags else ""))
            if kind == "MODIFY" and out and out[-1] == item:
                continue
            out.append(item)
        return out

    def clear(self):
        with self.lock:
            self.lines = []

    def expect(self, expected, timeout=5.0, under=None, settle=0.3):
        """The filtered events become EXPECTED within TIMEOUT and stay so for SETTLE s (nothing
        reported twice)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.kinds(under) == expected:
                break
            time.sleep(0.02)
        time.sleep(settle)
        got = self.kinds(under)
        assert got == expected, "inotify events:\n got      %r\n expected %r\n raw %r" % (
            got, expected, self.raw())

    def per_path(self):
        d = {}
        for path, kind in self.kinds():
            d.setdefault(path, []).append(kind)
        return d

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


# What a local change gives (and so a remote one must give), after kinds()'s filtering.
def created(name, empty=False):
    return [(name, "CREATE")] + ([] if empty else [(name, "MODIFY")]) + [(name, "CLOSE_WRITE")]


def modified(name):
    return [(name, "MODIFY"), (name, "CLOSE_WRITE")]


def mkdired(name):
    return [(name, "CREATE,ISDIR")]


def deleted(name, isdir=False):
    return [(name, "DELETE,ISDIR" if isdir else "DELETE")]


def settle_for_watch(path, timeout=2.0, iw=None, name=None):
    """inotifywait -r adds a watch on a new directory after its CREATE: give it that time.
    For a directory made elsewhere, pass iw and its name: the wait is then for its CREATE
    event, without looking the path up (a lookup racing the replay would take the name before
    the replay reports it)."""
    deadline = time.monotonic() + timeout
    if iw is not None:
        while time.monotonic() < deadline and (name, "CREATE,ISDIR") not in iw.kinds():
            time.sleep(0.01)
    else:
        while time.monotonic() < deadline and not os.path.isdir(path):
            time.sleep(0.01)
    time.sleep(0.15)
