"""quorumd with several HTTP loops (--http-loops N): the main loop accepts and hands
connections round-robin to the loops, so N consecutive connections are served by N different
threads. Whatever loop a request lands on, it must see every write acknowledged before on any
other, and every loop's watchers must get every event, once, in order. quorumd only."""
import contextlib
import json
import threading
import time

import pytest

import cluster
from rawhttp import RawConn, build

pytestmark = [pytest.mark.time_limit(90),
              pytest.mark.skipif(cluster.is_etcd_target(), reason="a quorumd flag")]

LOOPS = 3
CONNS = 2 * LOOPS  # consecutive connections: every loop twice


@pytest.fixture(params=[0, 30], ids=["prompt", "lagging"])
def srv(make_server, monkeypatch, request):
    """lagging: the loops other than the main one hear of every outcome 30 ms late (a test
    hook), so a request served there runs before that loop has published the newest events."""
    if request.param:
        monkeypatch.setenv("QUORUMD_TEST_HOOKS", "1")
        monkeypatch.setenv("QUORUMD_TEST_LOOP_LAG_MS", str(request.param))
    return make_server(extra_args=("--http-loops", str(LOOPS)))


def call(conn, method, path, form=None):
    conn.send(build(method, path, form=form))
    r = conn.read_response(method)
    body = json.loads(r.body) if r.body else None
    return r, body


def put(conn, key, value):
    r, body = call(conn, "PUT", "/v2/keys" + key, form={"value": value})
    assert r.status in (200, 201), (r.status, body)
    return body["node"]["modifiedIndex"]


@contextlib.contextmanager
def conns(srv, n=CONNS):
    """n consecutive connections (each loop twice for the default), closed afterwards."""
    cs = [RawConn.to(srv) for _ in range(n)]
    try:
        yield cs
    finally:
        for c in cs:
            c.close()


def test_a_write_on_any_loop_is_read_on_every_loop(srv):
    with conns(srv) as cs:
        for i, w in enumerate(cs):
            idx = put(w, "/rw/k", "v%d" % i)
            for j, c in enumerate(cs):
                r, body = call(c, "GET", "/v2/keys/rw/k")
                assert r.status == 200
                assert body["node"]["value"] == "v%d" % i, (i, j)
                assert body["node"]["modifiedIndex"] == idx
                assert int(r.header("x-etcd-index")) >= idx


def test_every_loops_watchers_get_the_event(srv):
    with conns(srv) as cs, conns(srv, 1) as (writer,):
        first = put(writer, "/w/k", "0")
        for c in cs:
            c.send(build("GET", "/v2/keys/w/k?wait=true"))
        assert srv.wait_watchers(CONNS) == CONNS  # the stats count every loop's watchers
        idx = put(writer, "/w/k", "1")
        for c in cs:
            ev = json.loads(c.read_response("GET").body)
            assert ev["action"] == "set"
            assert ev["node"] == {"key": "/w/k", "value": "1", "modifiedIndex": idx,
                                  "createdIndex": idx}
            assert ev["prevNode"]["modifiedIndex"] == first
        assert srv.watchers() == 0


def test_a_watch_from_now_on_another_loop_skips_the_acknowledged_write(srv):
    """etcd registers a watch at the store's index: a write acknowledged before the watch was
    sent (on any connection) must not wake it, even if that loop has not published it yet."""
    with conns(srv) as cs:
        for i, w in enumerate(cs):
            for j, c in enumerate(cs):
                if i == j:
                    continue
                put(w, "/now/k", "before")
                c.send(build("GET", "/v2/keys/now/k?wait=true"))
                assert srv.wait_watchers(1) == 1
                idx = put(w, "/now/k", "after")
                ev = json.loads(c.read_response("GET").body)
                assert (ev["node"]["value"], ev["node"]["modifiedIndex"]) == ("after", idx), (i, j)


def test_streams_on_every_loop_get_every_event_in_order(srv):
    n = 60
    with conns(srv) as cs, conns(srv, 2) as (writer, writer2):
        for c in cs:
            c.send(build("GET", "/v2/keys/s?wait=true&recursive=true&stream=true"))
        assert srv.wait_watchers(CONNS) == CONNS
        idxs = []

        def more():  # writes from a second connection too, at the same time
            for k in range(n):
                put(writer2, "/s/b%d" % k, "x")

        t = threading.Thread(target=more)
        t.start()
        for k in range(n):
            idxs.append(put(writer, "/s/a%d" % k, "y"))
        t.join()
        for c in cs:
            # the head, then one chunk per event
            head = c._read_until(b"\r\n\r\n", time.monotonic() + 10)
            assert head.startswith(b"HTTP/1.1 200")
            got = [json.loads(c.read_chunk_line()) for _ in range(2 * n)]
            indexes = [e["node"]["modifiedIndex"] for e in got]
            assert indexes == sorted(indexes) and len(set(indexes)) == 2 * n
            assert [e["node"]["modifiedIndex"] for e in got if "/s/a" in e["node"]["key"]] == idxs


def test_quorum_reads_in_order_keys_members_and_history_on_every_loop(srv):
    with conns(srv) as cs:
        first = put(cs[0], "/q/k", "v")
        for i, c in enumerate(cs):
            r, body = call(c, "GET", "/v2/keys/q/k?quorum=true")
            assert (r.status, body["node"]["value"]) == (200, "v")
            r, body = call(c, "POST", "/v2/keys/q/dir", form={"value": str(i)})
            assert r.status == 201 and body["action"] == "create"
            r, body = call(c, "GET", "/v2/members")
            assert r.status == 200 and len(body["members"]) == 1
            r, body = call(c, "GET", "/v2/keys/q/k?wait=true&waitIndex=%d" % first)
            assert (r.status, body["node"]["modifiedIndex"]) == (200, first)
        r, body = call(cs[1], "GET", "/v2/keys/q/dir?sorted=true")
        assert [n["value"] for n in body["node"]["nodes"]] == [str(i) for i in range(CONNS)]


def test_sigterm_with_watchers_and_pipelined_requests_on_every_loop(srv):
    """The stop closes every loop's connections (pending requests aborted) and exits 0 with no
    sanitizer report (the fixture checks both)."""
    with conns(srv) as cs, conns(srv) as more:
        for c in cs:
            c.send(build("GET", "/v2/keys/stop?wait=true&recursive=true&stream=true"))
        assert srv.wait_watchers(CONNS) == CONNS
        for i, c in enumerate(more):
            c.send(build("PUT", "/v2/keys/stop/k%d" % i, form={"value": "x"}) * 5)
        assert srv.stop() == 0


def test_http_loops_flag_is_checked(tmp_path):
    s = cluster.Server(str(tmp_path / "bad"), extra_args=("--http-loops", "9"))
    with pytest.raises(cluster.ServerStartError) as e:
        s.start()
    assert "--http-loops must be at most 8 (set to 9)" in str(e.value)
