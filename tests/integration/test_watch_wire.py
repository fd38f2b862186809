"""Watch answers on the wire, byte-exact: the head of a waiting watch arrives at once (as etcd
flushes it, so clients see 200 before any event), each answer is one chunked body ending in
the last chunk, the connection stays usable after it (keep-alive), and a stream sends one
chunk per event and no last chunk. And strings in answers escaped byte for byte as etcd's Go
encoder escapes them. Runs against real etcd with QUORUM_TARGET=etcd too."""
import json
import urllib.parse
import socket

import pytest

from rawhttp import RawConn, build

pytestmark = pytest.mark.time_limit(60)


def put(conn, key, value):
    conn.send(build("PUT", "/v2/keys" + key, form={"value": value}))
    r = conn.read_response("PUT")
    assert r.status in (200, 201), r
    return r.json()["node"]["modifiedIndex"]


def read_head(conn, timeout=5.0):
    """The status line and headers only (the body has not been sent yet)."""
    import time
    deadline = time.monotonic() + timeout
    head = conn._read_until(b"\r\n\r\n", deadline)
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), headers


def test_waiting_watch_head_first_then_one_chunked_answer_and_keep_alive(module_server):
    srv = module_server
    with RawConn.to(srv) as w, RawConn.to(srv) as c:
        idx = put(c, "/wire/a", "1")
        w.send(build("GET", "/v2/keys/wire/a?wait=true"))
        status, headers = read_head(w)
        assert status == 200
        assert headers["transfer-encoding"] == "chunked"
        assert headers["content-type"] == "application/json"
        assert int(headers["x-etcd-index"]) >= idx
        # nothing more until the change
        w.sock.settimeout(0.3)
        with pytest.raises(socket.timeout):
            extra = w.sock.recv(1)
            assert extra, "connection closed"
        idx2 = put(c, "/wire/a", "2")
        # one chunk with the event, then the last chunk
        body = w.read_chunk_line()
        ev = json.loads(body)
        assert ev["action"] == "set"
        assert ev["node"] == {"key": "/wire/a", "value": "2", "modifiedIndex": idx2,
                              "createdIndex": idx2}
        assert ev["prevNode"]["value"] == "1"
        assert w.read_chunk_line() == b""   # the last chunk (and its CRLF)
        assert w.buf == b""
        # the same connection answers the next request
        w.send(build("GET", "/v2/keys/wire/a"))
        r = w.read_response()
        assert r.status == 200 and r.json()["node"]["value"] == "2"


def test_watch_answered_from_history_is_one_whole_response(module_server):
    srv = module_server
    with RawConn.to(srv) as c:
        idx = put(c, "/wire/h", "old")
        put(c, "/wire/h", "new")
        c.send(build("GET", "/v2/keys/wire/h?wait=true&waitIndex=%d" % idx))
        r = c.read_response()
        assert r.status == 200 and r.header("transfer-encoding") == "chunked"
        ev = r.json()
        assert ev["action"] == "set" and ev["node"]["value"] == "old"
        assert ev["node"]["modifiedIndex"] == idx
        assert c.buf == b""          # nothing after the last chunk
        c.send(build("GET", "/v2/keys/wire/h"))
        assert c.read_response().json()["node"]["value"] == "new"


def test_stream_sends_one_chunk_per_event_and_no_end(module_server):
    srv = module_server
    with RawConn.to(srv) as w, RawConn.to(srv) as c:
        w.send(build("GET", "/v2/keys/wire/s?wait=true&recursive=true&stream=true"))
        status, headers = read_head(w)
        assert status == 200 and headers["transfer-encoding"] == "chunked"
        got = []
        i1 = put(c, "/wire/s/x", "1")
        got.append(json.loads(w.read_chunk_line()))
        i2 = put(c, "/wire/s/y", "2")
        got.append(json.loads(w.read_chunk_line()))
        assert [(e["node"]["key"], e["node"]["value"], e["node"]["modifiedIndex"]) for e in got] \
            == [("/wire/s/x", "1", i1), ("/wire/s/y", "2", i2)]
        assert w.buf == b"" and w.is_open_now(0.3)


def test_strings_are_escaped_byte_for_byte_as_etcd_escapes_them(module_server):
    """Go's encoder (etcd's json.Encoder, HTML escaping on) writes "<", ">", "&", U+2028,
    U+2029 and control bytes other than \\t \\n \\r as lower-case \\u escapes and each byte that
    is not UTF-8 as \\ufffd, in keys, values and error causes alike: the same JSON as other
    escapes, but clients and scripts that compare answers see the bytes."""
    value = (b"\x08\x0c\x1f\t\n\r\"\\/\x7f<a&b>\xe2\x80\xa8\xe2\x80\xa9\xff\xed\xa0\x80x"
             b"\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e")
    want_value = (b'"\\u0008\\u000c\\u001f\\t\\n\\r\\"\\\\/\x7f\\u003ca\\u0026b\\u003e\\u2028'
                  b'\\u2029\\ufffd\\ufffd\\ufffd\\ufffdx\xc3\xa9\xe2\x82\xac\xf0\x9d\x84\x9e"')
    with RawConn.to(module_server) as c:
        c.send(build("PUT", "/v2/keys/wire/esc%3C%26%3E", body=b"value=" + urllib.parse.quote_from_bytes(
            value).encode(), headers=[("Content-Type", "application/x-www-form-urlencoded")]))
        r = c.read_response("PUT")
        assert r.status == 201, r
        idx = r.json()["node"]["modifiedIndex"]
        assert r.body == (b'{"action":"set","node":{"key":"/wire/esc\\u003c\\u0026\\u003e","value":'
                          + want_value + b',"modifiedIndex":%d,"createdIndex":%d}}\n' % (idx, idx))
        c.send(build("GET", "/v2/keys/wire/esc%3C%26%3E%E2%80%A8%FF"))
        r = c.read_response()
        assert r.status == 404, r
        assert r.body == (b'{"errorCode":100,"message":"Key not found","cause":'
                          b'"/wire/esc\\u003c\\u0026\\u003e\\u2028\\ufffd","index":%d}\n'
                          % int(r.header("x-etcd-index")))


CORS = ["Access-Control-Allow-Headers", "Access-Control-Allow-Methods",
        "Access-Control-Allow-Origin"]


@pytest.mark.parametrize("method,path,body,status_line,names,text", [
    ("GET", "/v2/keys/wire/order", None, "HTTP/1.1 200 OK",
     CORS + ["Content-Type", "X-Etcd-Cluster-Id", "X-Etcd-Index", "X-Raft-Index", "X-Raft-Term",
             "Date", "Content-Length"], None),
    ("GET", "/nope", None, "HTTP/1.1 404 Not Found",
     CORS + ["Content-Type", "X-Content-Type-Options", "Date", "Content-Length"],
     b"404 page not found\n"),
    ("GET", "/v2/auth/nope", None, "HTTP/1.1 404 Not Found",
     CORS + ["Content-Type", "X-Content-Type-Options", "Date", "Content-Length"],
     b"404 page not found\n"),
    ("POST", "/version", None, "HTTP/1.1 405 Method Not Allowed",
     CORS + ["Allow", "Content-Type", "X-Content-Type-Options", "Date", "Content-Length"],
     b"Method Not Allowed\n"),
    ("POST", "/v2/members", b"{}", "HTTP/1.1 415 Unsupported Media Type", None, None),
    ("PUT", "/config/local/log", b'{"Level":"INFO"}', "HTTP/1.1 204 No Content",
     CORS + ["Date"], b""),  # (a 204 has no Content-Length)
])
def test_status_lines_and_header_order_as_etcd(module_server, method, path, body, status_line,
                                                names, text):
    """Go writes a header block sorted by name (then Date and Content-Length), http.Error's
    answers carry X-Content-Type-Options, and a status line has Go's reason phrase."""
    with RawConn.to(module_server) as c:
        put(c, "/wire/order", "v")
        c.send(build(method, path, body=body))
        r = c.read_response(method)
        assert r.raw_head.split(b"\r\n")[0].decode() == status_line, r.raw_head
        if names is not None:
            assert [k for k, _ in r.header_list] == names, r.raw_head
        if text is not None:
            assert r.body == text


def test_stats_and_expvar_bodies_are_written_as_etcd_writes_them(module_server):
    """etcd writes its stats with w.Write(json.Marshal(..)) (no newline at the end), its other
    JSON answers with a json.Encoder (a newline), and /debug/vars is Go's expvar page: one
    variable per line, sorted, "name": compact JSON. /health and /v2/machines set no
    Content-Type, which Go's server then adds after Content-Length."""
    with RawConn.to(module_server) as c:
        for path, newline in (("/v2/stats/self", False), ("/v2/stats/leader", False),
                              ("/v2/stats/store", False), ("/v2/members", True),
                              ("/version", False)):
            c.send(build("GET", path))
            r = c.read_response()
            if path == "/v2/stats/leader" and r.status == 403:
                continue  # (not the leader: etcd's 403)
            assert r.status == 200, (path, r)
            assert r.body.endswith(b"}\n" if newline else b"}") and not r.body.endswith(
                b"\n\n"), (path, r.body[-20:])
        c.send(build("GET", "/debug/vars"))
        r = c.read_response()
        lines = r.body.decode().split("\n")
        assert lines[0] == "{" and lines[-2:] == ["}", ""], r.body[:200]
        names = [line.split('": ', 1)[0].lstrip('"') for line in lines[1:-2]]
        assert names == sorted(names) and names[:2] == ["cmdline", "file_descriptor_limit"], names
        assert all(line.endswith(",") for line in lines[1:-3]) and not lines[-3].endswith(",")
        for line in lines[1:-2]:
            json.loads("{%s}" % line.rstrip(","))
        for path in ("/health", "/v2/machines"):
            c.send(build("GET", path))
            r = c.read_response()
            assert [k for k, _ in r.header_list][-3:] == ["Date", "Content-Length",
                                                            "Content-Type"], r.raw_head
