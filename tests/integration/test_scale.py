"""Scale: many idle watchers woken by one write; many concurrent writers.

* QUORUM_SCALE_WATCHERS (default 10000) long-poll watchers `GET /v2/keys/w/k?wait=true`, each on
  its own connection, driven by raw non-blocking sockets in one thread (selectors). All must
  get their response headers (v2: sent at registration), stay connected while idle, and then
  ONE write must wake every one of them with the event JSON.
* QUORUM_SCALE_WRITERS (default 1000) concurrent keep-alive connections each doing
  QUORUM_SCALE_PUTS (default 5) sequential PUTs: zero errors, every write gets its own
  index, and every value is readable afterwards.

The server is started with a soft RLIMIT_NOFILE of 1024, so it has to raise its own limit to
serve the watchers; this test process raises its own soft limit to the hard limit.
"""
import json
import os
import resource
import selectors
import socket
import time
import urllib.parse

import pytest

from rawhttp import request

N_WATCHERS = int(os.environ.get("QUORUM_SCALE_WATCHERS", "10000"))
N_WRITERS = int(os.environ.get("QUORUM_SCALE_WRITERS", "1000"))
N_PUTS = int(os.environ.get("QUORUM_SCALE_PUTS", "5"))
SERVER_SOFT_NOFILE = 1024


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        soft = hard
    if soft < need:
        pytest.skip("RLIMIT_NOFILE hard limit %d is too low for %d client sockets" % (hard, need))


@pytest.fixture
def scale_server(make_server):
    return make_server(nofile_soft=SERVER_SOFT_NOFILE)


# --------------------------------------------------------------------------- HTTP parsing
def parse_head(buf):
    """(status, headers dict, rest) once the head is complete, else None."""
    i = buf.find(b"\r\n\r\n")
    if i < 0:
        return None
    lines = buf[:i].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return status, headers, buf[i + 4:]


def parse_body(headers, rest, eof=False):
    """(body, remaining bytes) once the body is complete, else None."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        pos = 0
        while True:
            j = rest.find(b"\r\n", pos)
            if j < 0:
                return None
            size = int(rest[pos:j].split(b";")[0], 16)
            if size == 0:
                k = rest.find(b"\r\n\r\n", j)      # k == j: no trailers
                if k < 0:
                    return None
                return body, rest[k + 4:]
            if len(rest) < j + 2 + size + 2:
                return None
            body += rest[j + 2:j + 2 + size]
            pos = j + 2 + size + 2
    if "content-length" in headers:
        n = int(headers["content-length"])
        if len(rest) < n:
            return None
        return rest[:n], rest[n:]
    return (rest, b"") if eof else None


# --------------------------------------------------------------------------- watchers
class W:
    __slots__ = ("sock", "phase", "buf", "status", "headers", "body", "error")

    def __init__(self, sock):
        self.sock, self.phase, self.buf = sock, "connecting", b""
        self.status = self.headers = self.body = self.error = None


@pytest.mark.time_limit(240)
def test_ten_thousand_idle_watchers_woken_by_one_write(scale_server):
    srv = scale_server
    n = N_WATCHERS
    raise_nofile(n + 200)
    req = b"GET /v2/keys/w/k?wait=true HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    sel = selectors.DefaultSelector()
    ws = []
    t0 = time.monotonic()
    try:
        # ---- phase 1: connect and register, at most `window` registrations in progress
        window = 500
        started = 0
        in_progress = 0
        deadline = time.monotonic() + 90
        done = 0
        while done < n:
            while started < n and in_progress < window:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                s.connect_ex(("127.0.0.1", srv.port))
                w = W(s)
                ws.append(w)
                sel.register(s, selectors.EVENT_WRITE, w)
                started += 1
                in_progress += 1
            if time.monotonic() > deadline:
                break
            for key, mask in sel.select(timeout=1.0):
                w = key.data
                if w.phase == "connecting":
                    err = w.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        w.error, w.phase = "connect: %s" % os.strerror(err), "failed"
                        sel.unregister(w.sock)
                        in_progress -= 1
                        done += 1
                        continue
                    w.sock.send(req)       # 55 bytes into an empty socket buffer
                    w.phase = "sent"
                    sel.modify(w.sock, selectors.EVENT_READ, w)
                elif mask & selectors.EVENT_READ:
                    try:
                        d = w.sock.recv(65536)
                    except OSError as e:
                        d, w.error = b"", repr(e)
                    if not d:
                        w.phase, w.error = "failed", w.error or "closed before the headers"
                        sel.unregister(w.sock)
                        in_progress -= 1
                        done += 1
                        continue
                    w.buf += d
                    h = parse_head(w.buf)
                    if h and w.phase == "sent":
                        w.status, w.headers, w.buf = h
                        w.phase = "waiting"
                        in_progress -= 1
                        done += 1
        t_reg = time.monotonic() - t0
        waiting = [w for w in ws if w.phase == "waiting"]
        failed = [w for w in ws if w.phase != "waiting"]
        assert not failed, ("%d of %d watchers did not get their response headers within %.0f s "
                            "(first: phase %s, %s)" % (len(failed), n, t_reg, failed[0].phase,
                                                       failed[0].error))
        bad = [w for w in waiting if w.status != 200 or "x-etcd-index" not in w.headers]
        assert not bad, "watch response head: %s %r" % (bad[0].status, bad[0].headers)

        # ---- phase 2: idle; nobody may be dropped or answered
        st = request(srv, "GET", "/v2/stats/store")
        watchers_stat = st.json().get("watchers") if st.status == 200 else None
        idle_until = time.monotonic() + 2.0
        while time.monotonic() < idle_until:
            for key, mask in sel.select(timeout=0.2):
                w = key.data
                try:
                    d = w.sock.recv(65536)
                except OSError as e:
                    d, w.error = b"", repr(e)
                if not d:
                    w.phase, w.error = "failed", w.error or "closed while idle"
                    sel.unregister(w.sock)
                else:
                    w.buf += d
        dropped = [w for w in ws if w.phase != "waiting"]
        assert not dropped, "%d watchers were dropped while idle (%s)" % (len(dropped), dropped[0].error)
        early = [w for w in ws if w.buf]
        assert not early, "%d watchers got data before any write: %r" % (len(early), early[0].buf[:200])

        # ---- phase 3: one write wakes them all
        t_w = time.monotonic()
        r = request(srv, "PUT", "/v2/keys/w/k", body=b"value=wake",
                    headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)
        assert r.status == 201, r
        idx = r.json()["node"]["modifiedIndex"]
        remaining = n
        deadline = time.monotonic() + 60
        while remaining and time.monotonic() < deadline:
            for key, mask in sel.select(timeout=1.0):
                w = key.data
                try:
                    d = w.sock.recv(65536)
                except OSError as e:
                    d, w.error = b"", repr(e)
                w.buf += d
                res = parse_body(w.headers, w.buf, eof=not d)
                if res is not None:
                    w.body = res[0]
                    w.phase = "done"
                    sel.unregister(w.sock)
                    remaining -= 1
                elif not d:
                    w.phase, w.error = "failed", w.error or "closed before the event"
                    sel.unregister(w.sock)
                    remaining -= 1
        t_wake = time.monotonic() - t_w
        not_done = [w for w in ws if w.phase != "done"]
        assert not not_done, ("%d of %d watchers were not woken within 60 s of the write "
                              "(first: %s %s, got %r)" % (len(not_done), n, not_done[0].phase,
                                                          not_done[0].error, not_done[0].buf[:200]))
        wrong = []
        for w in ws:
            try:
                ev = json.loads(w.body)
                ok = (ev["action"] == "set" and ev["node"]["key"] == "/w/k"
                      and ev["node"]["value"] == "wake" and ev["node"]["modifiedIndex"] == idx)
            except (ValueError, KeyError, TypeError):
                ok = False
            if not ok:
                wrong.append(w.body[:300])
        assert not wrong, "%d watchers got a wrong event, e.g. %r" % (len(wrong), wrong[0])
        print("%d watchers: registered in %.1f s, all woken %.2f s after the write"
              % (n, t_reg, t_wake))
        # The store statistics counted the idle watchers.
        assert watchers_stat == n, "/v2/stats/store reported watchers=%r with %d idle watchers" % (
            watchers_stat, n)
    finally:
        for w in ws:
            try:
                w.sock.close()
            except OSError:
                pass
        sel.close()
    # and the server is still fine
    assert request(srv, "GET", "/health").status == 200


# --------------------------------------------------------------------------- writers
class C:
    __slots__ = ("id", "sock", "phase", "buf", "i", "acks", "error")

    def __init__(self, cid, sock):
        self.id, self.sock, self.phase, self.buf, self.i = cid, sock, "connecting", b"", 0
        self.acks, self.error = [], None


def put_req(cid, i):
    body = urllib.parse.urlencode({"value": "val-%d-%d" % (cid, i)}).encode()
    return (b"PUT /v2/keys/scale/c%d/k%d HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
            b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n" % (cid, i, len(body)) + body)


@pytest.mark.time_limit(180)
def test_thousand_concurrent_writers(scale_server):
    srv = scale_server
    n = N_WRITERS
    raise_nofile(n + 200)
    sel = selectors.DefaultSelector()
    cs = []
    t0 = time.monotonic()
    try:
        for cid in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", srv.port))
            c = C(cid, s)
            cs.append(c)
            sel.register(s, selectors.EVENT_WRITE, c)
        remaining = n
        deadline = time.monotonic() + 120
        while remaining and time.monotonic() < deadline:
            for key, mask in sel.select(timeout=1.0):
                c = key.data
                if c.phase == "connecting":
                    err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        c.phase, c.error = "failed", "connect: %s" % os.strerror(err)
                        sel.unregister(c.sock)
                        remaining -= 1
                        continue
                    c.sock.send(put_req(c.id, c.i))
                    c.phase = "busy"
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                try:
                    d = c.sock.recv(65536)
                except OSError as e:
                    d, c.error = b"", repr(e)
                if not d:
                    c.phase, c.error = "failed", c.error or "closed by the server after %d PUTs" % c.i
                    sel.unregister(c.sock)
                    remaining -= 1
                    continue
                c.buf += d
                h = parse_head(c.buf)
                if not h:
                    continue
                status, headers, rest = h
                b = parse_body(headers, rest)
                if b is None:
                    continue
                body, c.buf = b
                if status != 201:
                    c.phase, c.error = "failed", "PUT %d: %s %r" % (c.i, status, body[:200])
                    sel.unregister(c.sock)
                    remaining -= 1
                    continue
                c.acks.append(json.loads(body)["node"])
                c.i += 1
                if c.i == N_PUTS:
                    c.phase = "done"
                    sel.unregister(c.sock)
                    remaining -= 1
                else:
                    c.sock.send(put_req(c.id, c.i))
        elapsed = time.monotonic() - t0
    finally:
        for c in cs:
            try:
                c.sock.close()
            except OSError:
                pass
        sel.close()
    failed = [c for c in cs if c.phase != "done"]
    assert not failed, ("%d of %d writers did not complete %d PUTs within 120 s (first: client %d "
                        "%s: %s)" % (len(failed), n, N_PUTS, failed[0].id, failed[0].phase, failed[0].error))
    indexes = [a["modifiedIndex"] for c in cs for a in c.acks]
    assert len(set(indexes)) == len(indexes) == n * N_PUTS, "two writes were given the same index"
    assert max(indexes) - min(indexes) + 1 == n * N_PUTS, "the writes' indexes are not contiguous"
    for c in cs:
        ix = [a["modifiedIndex"] for a in c.acks]
        assert ix == sorted(ix), "one connection's sequential writes went backwards: %r" % ix

    # every value is readable
    r = request(srv, "GET", "/v2/keys/scale?recursive=true", timeout=60)
    assert r.status == 200
    got = {}
    for d in r.json()["node"].get("nodes", []):
        for f in d.get("nodes", []):
            got[f["key"]] = (f["value"], f["modifiedIndex"])
    want = {a["key"]: (a["value"], a["modifiedIndex"]) for c in cs for a in c.acks}
    assert len(got) == n * N_PUTS
    missing = [k for k in want if got.get(k) != want[k]]
    assert not missing, "%d values differ, e.g. %s: %r vs %r" % (len(missing), missing[0],
                                                                  got.get(missing[0]), want[missing[0]])
    for cid in (0, n // 2, n - 1):
        for i in range(N_PUTS):
            r = request(srv, "GET", "/v2/keys/scale/c%d/k%d" % (cid, i))
            assert r.status == 200 and r.json()["node"]["value"] == "val-%d-%d" % (cid, i)
    print("%d writers x %d PUTs in %.1f s" % (n, N_PUTS, elapsed))
