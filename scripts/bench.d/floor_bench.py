#!/usr/bin/python3
"""floor_bench: what this machine leaves for any server on the throughput rows of the
one-member table. The same GET and PUT workloads as scripts/bench (128 and 16 connections,
loadgen.c) run against etcd 3.4, quorumd and floor_server.c: a server that only answers (a
canned etcd-shaped answer; for PUT, after one write + fdatasync per event-loop round, the least
a durable server can do). floor/etcd is then the highest ratio any real server could reach
here against etcd; quorumd/floor says how much of that quorumd gets.

Each server runs alone on a fresh data dir; the three alternate per repetition. Also printed:
server and load-generator CPU per request, since on two vCPUs shared by server and load
generator their sum bounds throughput (2 CPU-seconds per second of run).

Run by `scripts/bench --floor [--quick]`.
"""
import datetime
import http.client
import os
import platform
import shutil
import subprocess
import sys
import time

from cluster_bench import children, free_port, loadgen, median, request, setup, terminate

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {"quick": dict(put16=5000, put128=15000, get=30000, reps=1),
         "default": dict(put16=20000, put128=60000, get=150000, reps=3)}
TARGETS = {"get": 2.5, "put128": 4, "put16": 2}  # issue 2's ratios against etcd


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(kind, binary, workdir, tag):
    port, peer = free_port(), free_port()
    data = os.path.join(workdir, f"{kind}-{tag}")
    c, p = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{peer}"
    if kind == "floor":
        argv = [binary, "-p", str(port), "--sync", data + ".log"]
    else:
        argv = [binary, "--name", "b", "--data-dir", data, "--listen-client-urls", c,
                "--advertise-client-urls", c, "--listen-peer-urls", p,
                "--initial-advertise-peer-urls", p]
        if kind == "etcd":
            argv += ["--enable-v2", "--initial-cluster", f"b={p}"]
    logf = open(data + ".out", "a")
    proc = subprocess.Popen(argv, stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    logf.close()
    children.append(proc)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if request(port, "GET", "/v2/keys/", timeout=1)[0] == 200:
                return proc, port
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.01)
    proc.kill()
    return None, None


def main():
    a, cfg, workdir, lg = setup("floor_bench", MODES)
    fl = os.path.join(workdir, "floor_server")
    subprocess.run(["cc", "-O2", "-Wall", "-o", fl, os.path.join(HERE, "floor_server.c")],
                   check=True)
    kinds = (("etcd", a.etcd), ("quorumd", a.quorumd), ("floor", fl))
    runs = [("put16", 16, cfg["put16"], "PUT", "/v2/keys/b/p16/k", ()),
            ("put128", 128, cfg["put128"], "PUT", "/v2/keys/b/p128/k", ()),
            ("gload", 16, 1000, "PUT", "/v2/keys/b/g/k", ()),
            ("get", 128, cfg["get"], "GET", "/v2/keys/b/g/k", ("-K", 1000))]
    res = {k: {} for k, _ in kinds}
    errors = []
    try:
        for rep in range(cfg["reps"]):
            for kind, binary in kinds:
                proc, port = start(kind, binary, workdir, f"r{rep}")
                if not proc:
                    errors.append(f"{kind}: did not start")
                    continue
                for name, conns, n, method, prefix, extra in runs:
                    c0 = proc_cpu_s(proc.pid)
                    r = loadgen(lg, port, conns, n, method, prefix, extra)
                    c1 = proc_cpu_s(proc.pid)
                    if "fatal" in r or r.get("errors"):
                        errors.append(f"{kind} {name}: {r.get('fatal') or r.get('status')}")
                    if "fatal" in r or name == "gload":
                        continue
                    R = res[kind]
                    R.setdefault(name + ".ops", []).append(r["ops_s"])
                    R.setdefault(name + ".srv_us", []).append((c1 - c0) / r["ok"] * 1e6)
                    R.setdefault(name + ".lg_us", []).append(r["client_cpu_s"] / r["ok"] * 1e6)
                    print(f"[{kind}#{rep}] {name}: {r['ops_s']:.0f} ops/s, server "
                          f"{(c1 - c0) / r['ok'] * 1e6:.1f} µs CPU/request, loadgen "
                          f"{r['client_cpu_s'] / r['ok'] * 1e6:.1f} µs, errors {r['errors']}",
                          flush=True)
                terminate(proc)
    finally:
        for p in children:
            if p.poll() is None:
                p.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    def m(kind, key):
        return median(res[kind].get(key, []))

    head = ("workload", "etcd", "quorumd", "floor", "quorumd/etcd", "floor/etcd",
            "quorumd/floor", "target")
    rows = []
    for name, title in (("get", "GET 128 conns"), ("put128", "PUT 128 conns"),
                        ("put16", "PUT 16 conns")):
        e, q, f = m("etcd", name + ".ops"), m("quorumd", name + ".ops"), m("floor", name + ".ops")
        ratio = lambda x, y: "%.2fx" % (x / y) if x and y else "-"
        ops = lambda v: "%.0f ops/s" % v if v else "-"
        rows.append((title, ops(e), ops(q), ops(f), ratio(q, e), ratio(f, e), ratio(q, f),
                     "≥ %gx" % TARGETS[name]))
        us = lambda k, key: "%.1f + %.1f µs" % (m(k, key + ".srv_us"), m(k, key + ".lg_us")) \
            if m(k, key + ".srv_us") is not None else "-"
        rows.append((title + ": CPU/request, server + loadgen", us("etcd", name),
                     us("quorumd", name), us("floor", name), "", "", "", ""))
    print("\n## Markdown\n")
    print(f"`scripts/bench --floor{' --quick' if a.quick else ''}`, {datetime.date.today()}, "
          f"{len(os.sched_getaffinity(0))} CPUs, Linux {platform.release()}; one server at a "
          f"time on loopback with the load generator; medians of {cfg['reps']} run(s).\n")
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in rows:
        print("| " + " | ".join(r) + " |")
    if errors:
        print("\nanomalies:\n  " + "\n  ".join(errors))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
