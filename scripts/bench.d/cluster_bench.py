#!/usr/bin/python3
"""cluster_bench: a 3-member quorumd cluster against a 3-member etcd 3.4 cluster (--enable-v2)
on loopback, same flags and default timeouts (heartbeat 100 ms, election 1000 ms), one cluster
running at a time, alternating per repetition. Rows: PUT at 128 connections, sequential PUT
(1 connection), GET ?quorum=true at 128 connections, all sent to the leader, and failover: the
time from the leader's freeze (SIGSTOP: it closes nothing, as a host that died or was cut off;
it is let go on after), then from kill -9 of the leader (its sockets close: quorumd's followers
see it), to the next write acknowledged by a surviving member (a client writing sequentially to
that member all along, each request with a 0.5 s timeout). Then the
killed member comes back and writes in flight at a second kill are counted: 64 connections
writing through a follower when its leader dies (failed writes, slowest write). Last, a member
stopped while N keys are written (300,000; 100,000 with --quick) catches up again: the time from
its start to its first read of the last key, and the peak RSS of it and of the leader meanwhile,
and their peak anonymous memory (RssAnon sampled every 10 ms: what must stay resident; RSS
also counts file pages the kernel may drop, such as a quorumd snapshot's mapped file) (a quorumd
member gets the leader's store as a snapshot; etcd's, at its default --snapshot-count, gets a
snapshot once 100,000 entries have gone by).

Run by `scripts/bench --cluster [--quick]`; prints a text table and the same as Markdown.
Ratios are quorumd/etcd for throughput and etcd/quorumd for latency and failover time.
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
# The tests' free_port: a port below the kernel's ephemeral range, so that a member killed and
# started again on its ports finds them free (no connection made meanwhile can take one).
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))
from cluster import free_port  # noqa: E402
MODES = {"quick": dict(seq=500, put128=10000, qget=20000, reps=1, catchup=100000),
         "default": dict(seq=2000, put128=40000, qget=60000, reps=3, catchup=300000)}
children = []


def request(port, method, path, body=None, timeout=2.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        c.request(method, path, body=body, headers=hdrs)
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


class Cluster:
    def __init__(self, kind, binary, workdir, tag, n=3):
        self.kind, self.binary = kind, binary
        self.members = []
        for i in range(n):
            self.members.append(dict(name=f"m{i}", client=free_port(), peer=free_port(),
                                     data=os.path.join(workdir, f"{kind}-{tag}-m{i}"),
                                     log=os.path.join(workdir, f"{kind}-{tag}-m{i}.log"),
                                     proc=None))
        self.initial = ",".join(f"{m['name']}=http://127.0.0.1:{m['peer']}" for m in self.members)

    def start(self):
        for m in self.members:
            self.start_member(m)
        return self.leader(timeout=60)

    def start_member(self, m):
        """Starts member m (again: its data dir is kept)."""
        c, p = f"http://127.0.0.1:{m['client']}", f"http://127.0.0.1:{m['peer']}"
        argv = [self.binary, "--name", m["name"], "--data-dir", m["data"],
                "--listen-client-urls", c, "--advertise-client-urls", c,
                "--listen-peer-urls", p, "--initial-advertise-peer-urls", p,
                "--initial-cluster", self.initial, "--initial-cluster-token", "bench",
                "--initial-cluster-state", "new"]
        if self.kind == "etcd":
            argv.append("--enable-v2")
        logf = open(m["log"], "a")
        m["proc"] = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        logf.close()
        children.append(m["proc"])

    def leader(self, timeout=30, among=None):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for m in among or self.members:
                if m["proc"].poll() is not None:
                    continue
                try:
                    st, body = request(m["client"], "GET", "/v2/stats/self", timeout=0.5)
                    if st == 200 and json.loads(body).get("state") == "StateLeader":
                        # a write must go through before it counts as serving
                        st, _ = request(m["client"], "PUT", "/v2/keys/bench-ready", "value=1")
                        if st in (200, 201):
                            return m
                except (OSError, ValueError, http.client.HTTPException):
                    pass
            time.sleep(0.05)
        return None

    def stop(self):
        for m in self.members:
            p = m["proc"]
            if p and p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for m in self.members:
            p = m["proc"]
            if p:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def loadgen(lg, port, conns, n, method, prefix, extra=()):
    cmd = [lg, "load", "-p", str(port), "-c", str(conns), "-n", str(n), "-m", method, "-k",
           prefix, "-s", "64", "-t", "10", "-T", "180"] + [str(x) for x in extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    if r.returncode != 0 or not r.stdout.strip():
        return {"fatal": r.stderr[-300:]}
    return json.loads(r.stdout)


def failover(cl, freeze=False):
    """seconds from kill -9 of the leader (or, with freeze, SIGSTOP: a leader that answers
    nothing and closes nothing, as a host that died or dropped off the network) to the next
    write acknowledged by a survivor. A frozen leader is let go on again (SIGCONT) after."""
    leader = cl.leader(timeout=30)
    if not leader:
        return None
    survivor = [m for m in cl.members if m is not leader][0]
    acked_after = []
    stop = threading.Event()
    killed_at = []

    def writer():
        i = 0
        while not stop.is_set():
            i += 1
            sent = time.monotonic()
            try:
                st, _ = request(survivor["client"], "PUT", f"/v2/keys/failover/k{i % 100}",
                                "value=x", timeout=0.5)
            except (OSError, http.client.HTTPException):
                st = None
            # only a write sent after the kill counts (one in flight may finish after it)
            if st in (200, 201) and killed_at and sent > killed_at[0]:
                acked_after.append(time.monotonic())
                return
            if st not in (200, 201):
                time.sleep(0.002)

    t = threading.Thread(target=writer)
    t.start()
    time.sleep(0.5)
    killed_at.append(time.monotonic())
    if freeze:
        os.kill(leader["proc"].pid, signal.SIGSTOP)
    else:
        leader["proc"].kill()
    t.join(30)
    stop.set()
    if freeze:
        os.kill(leader["proc"].pid, signal.SIGCONT)
        wait_serving(leader)
    return acked_after[0] - killed_at[0] if acked_after else None


def inflight(cl, lg):
    """Writes in flight at a leader's death: 64 connections write through a follower, the
    leader is killed 2 s in, the load goes on 4 s more. Returns (failed writes, slowest write in
    s, a failure's sample), or None. etcd answers the writes its follower had forwarded to the dead leader with
    error 300 after its request timeout (7 s); quorumd proposes them again to the next leader."""
    leader = cl.leader(timeout=30)
    if not leader:
        return None
    follower = [m for m in cl.members if m is not leader and m["proc"].poll() is None][0]
    out = {}

    def load():
        out["r"] = loadgen(lg, follower["client"], 64, 10 ** 7, "PUT", "/v2/keys/inflight/k",
                           ("-T", 6, "-t", 20))

    t = threading.Thread(target=load)
    t.start()
    time.sleep(2)
    leader["proc"].kill()
    t.join(60)
    r = out.get("r")
    if not r or "fatal" in r:
        return None
    return r["errors"], r["lat_us"]["max"] / 1e6, (r.get("error_samples") or [""])[0][:160]


def wait_serving(m, timeout=30):
    """Until member m reads the key the leader wrote when it started serving (it has caught
    up that far), at most timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if request(m["client"], "GET", "/v2/keys/bench-ready")[0] == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)


def vm_kib(pid, field):
    """VmHWM / VmRSS of a process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


class AnonPeak:
    """Samples the RssAnon of some processes every 10 ms on a thread: the peak of each, in KiB.
    (The kernel keeps a peak of RSS, VmHWM, but none of anonymous memory alone.)"""

    def __init__(self, pids):
        self.pids, self.peak, self.stop = list(pids), {}, threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop.is_set():
            for pid in self.pids:
                v = vm_kib(pid, "RssAnon")
                if v is not None and v > self.peak.get(pid, 0):
                    self.peak[pid] = v
            time.sleep(0.01)

    def end(self):
        self.stop.set()
        self.thread.join()
        return self.peak


def catchup(cl, lg, keys):
    """A follower stopped while `keys` keys are written (64 connections to the leader) starts
    again: (seconds from its start to a read of the last key on it, its peak RSS in MiB, the
    leader's peak RSS meanwhile in MiB, the same two for anonymous memory), or a string saying
    what failed."""
    for m in cl.members:  # (the member killed by the in-flight run back first)
        if m["proc"].poll() is not None:
            cl.start_member(m)
    leader = cl.leader(timeout=30)
    if not leader:
        return "no leader"
    for m in cl.members:
        wait_serving(m)
    lag = [m for m in cl.members if m is not leader and m["proc"].poll() is None][0]
    terminate(lag["proc"])
    r = loadgen(lg, leader["client"], 64, keys, "PUT", "/v2/keys/catchup/k", ("-K", keys))
    if "fatal" in r or r.get("errors"):
        return f"the load: {r.get('fatal') or r.get('status')}"
    last = f"/v2/keys/catchup/k{keys - 1}"
    if request(leader["client"], "GET", last)[0] != 200:
        return "the last key is not on the leader"
    try:  # the leader's peak from here on
        with open(f"/proc/{leader['proc'].pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    t0 = time.monotonic()
    cl.start_member(lag)
    anon = AnonPeak([lag["proc"].pid, leader["proc"].pid])
    took = None
    while time.monotonic() - t0 < 120 and lag["proc"].poll() is None:
        try:
            if request(lag["client"], "GET", last, timeout=1.0)[0] == 200:
                took = time.monotonic() - t0
                break
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.02)
    if took is None:
        anon.end()
        return "the member did not catch up within 120 s"
    time.sleep(1.0)  # (what it does right after: the install's end, compactions)
    peak = anon.end()
    mine, theirs = vm_kib(lag["proc"].pid, "VmHWM"), vm_kib(leader["proc"].pid, "VmHWM")
    return (took, (mine or 0) / 1024, (theirs or 0) / 1024,
            peak.get(lag["proc"].pid, 0) / 1024, peak.get(leader["proc"].pid, 0) / 1024)


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2


def setup(prog, modes):
    """The options of a comparison script (--quick, --quorumd, --etcd), its counts, a temp
    dir, and the load generator compiled there: (args, counts, workdir, loadgen path)."""
    ap = argparse.ArgumentParser(prog=prog)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--quorumd", required=True)
    ap.add_argument("--etcd", default=shutil.which("etcd"))
    a = ap.parse_args()
    if not a.etcd:
        sys.exit("%s: no etcd binary (apt-get install etcd-server)" % prog)
    workdir = tempfile.mkdtemp(prefix="quorum-%s-" % prog)
    lg = os.path.join(workdir, "loadgen")
    subprocess.run(["cc", "-O2", "-Wall", "-o", lg, os.path.join(HERE, "loadgen.c")], check=True)
    return a, modes["quick" if a.quick else "default"], workdir, lg


def terminate(proc, timeout=30):
    """SIGTERM, then SIGKILL if it does not exit within timeout."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    a, cfg, workdir, lg = setup("cluster_bench", MODES)
    res = {"quorumd": {}, "etcd": {}}
    errors = []
    try:
        for rep in range(cfg["reps"]):
            for kind, binary in (("quorumd", a.quorumd), ("etcd", a.etcd)):
                R = res[kind]
                cl = Cluster(kind, binary, workdir, f"r{rep}")
                leader = cl.start()
                if not leader:
                    errors.append(f"{kind}: no leader within 60 s")
                    cl.stop()
                    continue
                port = leader["client"]
                runs = [("seq", 1, cfg["seq"], "PUT", "/v2/keys/b/seq/k", ()),
                        ("put128", 128, cfg["put128"], "PUT", "/v2/keys/b/p/k", ()),
                        ("gload", 16, 1000, "PUT", "/v2/keys/b/g/k", ()),
                        ("qget", 128, cfg["qget"], "GET", "/v2/keys/b/g/k",
                         ("-K", 1000, "-q", "quorum=true"))]
                for name, conns, n, method, prefix, extra in runs:
                    r = loadgen(lg, port, conns, n, method, prefix, extra)
                    if "fatal" in r or r.get("errors"):
                        errors.append(f"{kind} {name}: {r.get('fatal') or r.get('status')}")
                    if "fatal" in r:
                        continue
                    R.setdefault(name + ".ops", []).append(r["ops_s"])
                    R.setdefault(name + ".p50", []).append(r["lat_us"]["p50"] / 1e3)
                    R.setdefault(name + ".p99", []).append(r["lat_us"]["p99"] / 1e3)
                    print(f"[{kind}#{rep}] {name}: {r['ops_s']:.0f} ops/s, p50 "
                          f"{r['lat_us']['p50'] / 1e3:.2f} ms, p99 {r['lat_us']['p99'] / 1e3:.2f} "
                          f"ms, errors {r['errors']}", flush=True)
                now = cl.leader(timeout=30)
                if now is not leader:
                    print(f"[{kind}#{rep}] note: the leader changed during the load "
                          f"({leader['name']} -> {now['name'] if now else None})", flush=True)
                fz = failover(cl, freeze=True)
                R.setdefault("failover_freeze", []).append(fz)
                print(f"[{kind}#{rep}] failover from a frozen leader: "
                      f"{'%.3f s' % fz if fz is not None else 'no write within 30 s'}", flush=True)
                if fz is None:
                    errors.append(f"{kind}: no write acknowledged within 30 s of the leader stop")
                fo = failover(cl)
                R.setdefault("failover", []).append(fo)
                print(f"[{kind}#{rep}] failover: "
                      f"{'%.3f s' % fo if fo is not None else 'no write within 30 s'}", flush=True)
                if fo is None:
                    errors.append(f"{kind}: no write acknowledged within 30 s of the leader kill")
                # the killed member back (as a follower), then writes in flight at a second kill
                gone = [m for m in cl.members if m["proc"].poll() is not None]
                for m in gone:
                    cl.start_member(m)
                back = cl.leader(timeout=30)
                for m in gone:
                    wait_serving(m)
                fl = inflight(cl, lg) if back else None
                if fl is None:
                    errors.append(f"{kind}: the in-flight writes run failed")
                else:
                    R.setdefault("inflight.failed", []).append(fl[0])
                    R.setdefault("inflight.slowest", []).append(fl[1])
                    print(f"[{kind}#{rep}] writes in flight at a leader kill: {fl[0]} failed, "
                          f"slowest {fl[1]:.3f} s{'; e.g. ' + fl[2] if fl[0] else ''}",
                          flush=True)
                cu = catchup(cl, lg, cfg["catchup"])
                if isinstance(cu, str):
                    errors.append(f"{kind}: the catch-up run failed: {cu}")
                else:
                    R.setdefault("catchup.s", []).append(cu[0])
                    R.setdefault("catchup.rss", []).append(cu[1])
                    R.setdefault("catchup.leader", []).append(cu[2])
                    R.setdefault("catchup.anon", []).append(cu[3])
                    R.setdefault("catchup.leader_anon", []).append(cu[4])
                    print(f"[{kind}#{rep}] a member back after {cfg['catchup']} writes: caught "
                          f"up in {cu[0]:.2f} s, its peak RSS {cu[1]:.0f} MiB, the leader's "
                          f"{cu[2]:.0f} MiB; peak anonymous memory {cu[3]:.0f} and {cu[4]:.0f} "
                          f"MiB", flush=True)
                cl.stop()
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    Q, E = res["quorumd"], res["etcd"]

    def cell(R, k, fmt):
        v = median(R.get(k, []))
        return fmt % v if v is not None else "-"

    def ratio(k, higher_better):
        if higher_better is None:  # (not comparable as a ratio)
            return ""
        q, e = median(Q.get(k, [])), median(E.get(k, []))
        if not q or not e:
            return "-"
        return "%.2fx" % (q / e if higher_better else e / q)

    rows = [("PUT, 128 connections (ops/s)", "put128.ops", "%.0f", True, ">= 3x"),
            ("sequential PUT, 1 connection (ops/s)", "seq.ops", "%.0f", True, ">= 2x"),
            ("sequential PUT p50 (ms)", "seq.p50", "%.2f", False, ""),
            ("GET ?quorum=true, 128 connections (ops/s)", "qget.ops", "%.0f", True, ">= 4x"),
            ("kill -9 leader -> next acknowledged write (s)", "failover", "%.3f", False,
             "<= etcd"),
            ("leader frozen (SIGSTOP) -> next acknowledged write (s)", "failover_freeze", "%.3f",
             False, "<= etcd"),
            ("64 conns writing via a follower, leader killed: failed writes", "inflight.failed",
             "%.0f", False, ""),
            ("the same: slowest acknowledged write (s; etcd's failures not in it)",
             "inflight.slowest", "%.3f", None, ""),
            (f"member back after {cfg['catchup']} writes: caught up in (s)", "catchup.s",
             "%.2f", False, ""),
            ("the same: its peak RSS (MiB)", "catchup.rss", "%.0f", False, ""),
            ("the same: the leader's peak RSS meanwhile (MiB)", "catchup.leader", "%.0f", False,
             ""),
            ("the same: its peak anonymous memory (MiB)", "catchup.anon", "%.0f", False, ""),
            ("the same: the leader's peak anonymous memory (MiB)", "catchup.leader_anon", "%.0f",
             False, "")]
    print("\n%-48s %12s %12s %8s %8s" % ("3 members, loopback", "quorumd", "etcd 3.4", "ratio",
                                          "target"))
    for title, k, fmt, hb, target in rows:
        print("%-48s %12s %12s %8s %8s" % (title, cell(Q, k, fmt), cell(E, k, fmt),
                                           ratio(k, hb), target))
    print("\n## Markdown\n")
    print(f"`scripts/bench --cluster{' --quick' if a.quick else ''}`, {datetime.date.today()}, "
          f"{len(os.sched_getaffinity(0))} CPUs, Linux {platform.release()}; 3 members each on "
          f"loopback, default timeouts, medians of {cfg['reps']} run(s); every process (both "
          f"clusters' members and the load generator) shares the same CPUs.\n")
    print("| 3 members | quorumd | etcd 3.4 | ratio | target |\n|---|---|---|---|---|")
    for title, k, fmt, hb, target in rows:
        print(f"| {title} | {cell(Q, k, fmt)} | {cell(E, k, fmt)} | {ratio(k, hb)} | {target} |")
    if errors:
        print("\nanomalies:\n  " + "\n  ".join(errors))
        return 1
    print("\nanomalies: none")
    return 0


if __name__ == "__main__":
    sys.exit(main())
