#!/usr/bin/python3
"""fs_bench: quorumfs (the FUSE mount) against the HTTP API of the same quorumd.

Starts a one-member quorumd on a free port and fresh temp dir, mounts it with quorumfs, and
measures, on 127.0.0.1:
  - reading a key: open+read+close through the mount (in this process: no fork/exec), `cat` of
    it as a new process, and an HTTP GET of the same key on a keep-alive connection;
  - that cached reads make no request to the daemon: /v2/stats/store getsSuccess+getsFail
    before and after N reads through the mount;
  - remote change -> inotify event latency: a PUT on the API, timed to the IN_MODIFY (and
    IN_CLOSE_WRITE) that inotify reports on the mount (inotify read directly with ctypes, so
    nothing but the kernel sits between the mount and the clock), p50/p99, and the same for
    creates (IN_CREATE) of new keys.
Prints a Markdown table. Not a test: numbers vary with the load on the machine.

Usage: scripts/bench.d/fs_bench.py --quorumd BIN --quorumfs BIN [--quick]
"""
import argparse
import ctypes
import ctypes.util
import http.client
import json
import os
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time

from cluster_bench import free_port

IN_MODIFY, IN_CLOSE_WRITE, IN_CREATE, IN_DELETE = 0x2, 0x8, 0x100, 0x200




class Inotify:
    def __init__(self, path, mask):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        if self.libc.inotify_add_watch(self.fd, path.encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch")
        self.queue = []

    def wait(self, want_mask, name, timeout=5.0):
        """Blocks until an event with WANT_MASK on NAME; returns time.perf_counter() at the
        read() that brought it."""
        deadline = time.monotonic() + timeout
        while True:
            for i, (t, mask, nm) in enumerate(self.queue):
                if mask & want_mask and nm == name:
                    del self.queue[:i + 1]
                    return t
            left = deadline - time.monotonic()
            r, _, _ = select.select([self.fd], [], [], max(0, left)) if left > 0 else ([], [], [])
            if not r:
                raise TimeoutError("no inotify event for %s" % name)
            t = time.perf_counter()
            buf = os.read(self.fd, 65536)
            i = 0
            while i < len(buf):
                wd, mask, cookie, ln = struct.unpack_from("iIII", buf, i)
                self.queue.append((t, mask, buf[i + 16:i + 16 + ln].rstrip(b"\0").decode()))
                i += 16 + ln

    def drain(self):
        self.queue = []
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quorumd", required=True)
    ap.add_argument("--quorumfs", required=True)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n_reads = 2000 if a.quick else 10000
    n_cat = 50 if a.quick else 200
    n_events = 100 if a.quick else 300

    work = tempfile.mkdtemp(prefix="quorumfs-bench-")
    port, peer = free_port(), free_port()
    url = "http://127.0.0.1:%d" % port
    qd = subprocess.Popen([a.quorumd, "--name", "b", "--data-dir", os.path.join(work, "data"),
                           "--listen-client-urls", url, "--advertise-client-urls", url,
                           "--listen-peer-urls", "http://127.0.0.1:%d" % peer],
                          stdout=open(os.path.join(work, "quorumd.log"), "wb"), stderr=subprocess.STDOUT)
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    fsp = None
    conn = None
    try:
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/version")
                conn.getresponse().read()
                break
            except OSError:
                conn = None
                time.sleep(0.02)
        if conn is None:
            sys.exit("fs_bench: quorumd did not start")

        def req(method, path, body=None):
            hdrs = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
            conn.request(method, path, body=body, headers=hdrs)
            r = conn.getresponse()
            return r.status, r.read()

        def gets():
            return sum(json.loads(req("GET", "/v2/stats/store")[1])[k] for k in ("getsSuccess", "getsFail"))

        req("PUT", "/v2/keys/bench/k", "value=" + "v" * 64)
        fsp = subprocess.Popen([a.quorumfs, "mount", url, mnt, "--prefix", "/bench", "-f"],
                               stdout=open(os.path.join(work, "quorumfs.log"), "wb"),
                               stderr=subprocess.STDOUT)
        for _ in range(500):
            if os.path.exists(os.path.join(mnt, "k")):
                break
            time.sleep(0.01)
        path = os.path.join(mnt, "k")

        # reads
        with open(path, "rb") as f:
            assert f.read() == b"v" * 64
        g0 = gets()
        t0 = time.perf_counter()
        for _ in range(n_reads):
            fd = os.open(path, os.O_RDONLY)
            os.read(fd, 4096)
            os.close(fd)
        t_mount = (time.perf_counter() - t0) / n_reads * 1e6
        g1 = gets()
        mount_gets = g1 - g0  # (the stats requests themselves are not store GETs)
        t0 = time.perf_counter()
        for _ in range(n_cat):
            subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
        t_cat = (time.perf_counter() - t0) / n_cat * 1e6
        cat_base = time.perf_counter()
        for _ in range(n_cat):
            subprocess.run(["cat", "/proc/self/stat"], stdout=subprocess.DEVNULL, check=True)
        t_cat_base = (time.perf_counter() - cat_base) / n_cat * 1e6
        g2 = gets()
        t0 = time.perf_counter()
        for _ in range(n_reads):
            req("GET", "/v2/keys/bench/k")
        t_http = (time.perf_counter() - t0) / n_reads * 1e6
        g3 = gets()

        # remote change -> inotify
        ino = Inotify(mnt, IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_DELETE)
        lat_mod, lat_cw, lat_create = [], [], []
        for i in range(n_events):
            ino.drain()
            t0 = time.perf_counter()
            req("PUT", "/v2/keys/bench/k", "value=v%d" % i)
            t1 = ino.wait(IN_MODIFY, "k")
            t2 = ino.wait(IN_CLOSE_WRITE, "k")
            lat_mod.append((t1 - t0) * 1e3)
            lat_cw.append((t2 - t0) * 1e3)
        for i in range(n_events):
            ino.drain()
            t0 = time.perf_counter()
            req("PUT", "/v2/keys/bench/n%d" % i, "value=x")
            lat_create.append((ino.wait(IN_CREATE, "n%d" % i) - t0) * 1e3)
        with open(path, "rb") as f:
            final = f.read()
        assert final == ("v%d" % (n_events - 1)).encode(), final

        print("# quorumfs benchmark (%s)" % ("quick" if a.quick else "default"))
        print("date: %s; %d CPUs; loadavg %s" % (time.strftime("%Y-%m-%d"), os.cpu_count(),
                                                 open("/proc/loadavg").read().split()[0]))
        print()
        print("| measure | value |")
        print("| --- | ---: |")
        print("| open+read+close of a cached 64-byte key through the mount (%d, in-process) | %.1f µs |" % (n_reads, t_mount))
        print("| HTTP GET of the same key (keep-alive, in-process) | %.1f µs |" % t_http)
        print("| GETs the daemon served during the %d mount reads | %d |" % (n_reads, mount_gets))
        print("| GETs the daemon served during the %d HTTP reads | %d |" % (n_reads, g3 - g2))
        print("| `cat` of the key as a new process (%d) / `cat /proc/self/stat` | %.0f µs / %.0f µs |" % (n_cat, t_cat, t_cat_base))
        print("| remote PUT -> IN_MODIFY, p50 / p99 (%d) | %.2f / %.2f ms |" % (n_events, pct(lat_mod, 50), pct(lat_mod, 99)))
        print("| remote PUT -> IN_CLOSE_WRITE, p50 / p99 | %.2f / %.2f ms |" % (pct(lat_cw, 50), pct(lat_cw, 99)))
        print("| remote PUT of a new key -> IN_CREATE, p50 / p99 (%d) | %.2f / %.2f ms |" % (n_events, pct(lat_create, 50), pct(lat_create, 99)))
        ok = mount_gets == 0 and pct(lat_mod, 50) <= 5.0
        print()
        print("cached reads made no request: %s; p50 event latency <= 5 ms: %s" % (
            "yes" if mount_gets == 0 else "NO", "yes" if pct(lat_mod, 50) <= 5.0 else "NO"))
        return 0 if ok else 1
    finally:
        if conn is not None:
            conn.close()
        subprocess.run(["fusermount3", "-u", "-z", mnt], capture_output=True)
        if fsp is not None:
            try:
                fsp.wait(timeout=10)
            except subprocess.TimeoutExpired:
                fsp.kill()
                fsp.wait()
        qd.send_signal(signal.SIGTERM)
        try:
            qd.wait(timeout=10)
        except subprocess.TimeoutExpired:
            qd.kill()
            qd.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
