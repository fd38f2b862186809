"""/v2/members against real etcd 3.4, request by request: methods and paths (405 with etcd's
Allow, GET of an unknown path 404 "Not found", POST on any path below /v2/members, DELETE and
PUT without an id 405), the body as etcd reads it (Content-Type, Go's JSON syntax and type
errors, etcd's peer URL checks and messages) and error bodies without a newline. Each server
is a fresh one-member cluster; the requests change nothing but for the last, an add whose
answer is compared with the id left out (etcd draws it at random)."""
import json

from cluster import http_request

J = {"Content-Type": "application/json"}

# (method, path, body, headers)
STEPS = [
    ("GET", "/v2/members/zzz", None, None),
    ("GET", "/v2/members/1234", None, None),
    ("HEAD", "/v2/members/1234", None, None),
    ("HEAD", "/v2/members", None, None),
    ("GET", "/v2/members/", None, None),
    ("GET", "/v2/members/leader/", None, None),
    ("GET", "/v2/members/a/b", None, None),
    ("PUT", "/v2/members", "{}", J),
    ("DELETE", "/v2/members", None, None),
    ("DELETE", "/v2/members/", None, None),
    ("PATCH", "/v2/members", None, None),
    ("OPTIONS", "/v2/members", None, None),
    ("PATCH", "/v2/members/1234", None, None),
    ("DELETE", "/v2/members/zzz", None, None),
    ("DELETE", "/v2/members/1234", None, None),
    ("DELETE", "/v2/members/00001234", None, None),
    ("DELETE", "/v2/members/12345678901234567", None, None),
    ("DELETE", "/v2/members/leader", None, None),
    ("PUT", "/v2/members/1234", '{"peerURLs":["http://127.0.0.1:2"]}', J),
    ("PUT", "/v2/members/zzz", '{"peerURLs":["http://127.0.0.1:2"]}', J),
    ("PUT", "/v2/members/1234", "nojson", J),
    ("PUT", "/v2/members/1234", "{}", J),
    ("PUT", "/v2/members/1234", '{"peerURLs":["http://127.0.0.1:2"]}', None),
    ("POST", "/v2/members/1234", "{}", J),
    ("POST", "/v2/members/leader", "{}", J),
    ("POST", "/v2/members", '{"peerURLs":["http://127.0.0.1:1"]}', None),
    ("POST", "/v2/members", "{}", {"Content-Type": "text/plain"}),
    ("POST", "/v2/members", "{}", {"Content-Type": "Application/JSON"}),
    ("POST", "/v2/members", "{}", {"Content-Type": "Application/JSON ; charset=utf-8"}),
]
for body in ('[]', '"x"', 'null', '', '7', 'true', '{"peerURLs":[1]}', '{"peerURLs":[true]}',
             '{"peerURLs":{}}', '{"peerURLs":[[]]}', '{"peerURLs":"x"}', '{"peerURLs":["ftp://a:1"]}',
             '{"peerURLs":["http://[::1"]}', '{"peerURLs":["http://h:x"]}',
             '{"peerURLs":["https://127.0.0.1:6/"]}', '{"peerURLs":["http://127.0.0.1:6/p"]}',
             '{"peerURLs":["http://127.0.0.1:8"]} trailing', '{"peerURLs":["http://127.0.0.1:8"],}',
             '{"peerURLs":[""]}', '{"peerURLs":null}', '{"x":1}', 'nojson', '{"peerURLs":["a:b"]}',
             '{"peerURLs":["://x"]}', '{"peerURLs":["http:x"]}', '{"peerURLs":["http://127.0.0.1"]}',
             '{"peerURLs":["http://[::1]x"]}', '{"peerURLs":[null]}', '{"peerURLs":["1http://x:1"]}',
             '{"peerURLs":["http://127.0.0.1:9"],"peerURLs":[]}', '{"peerURLs":["http://a:1","bad"]}',
             '{"peerURLs":["http://127.0.0.1:9"'):
    STEPS.append(("POST", "/v2/members", body, J))


def _answer(srv, method, path, body, headers):
    st, h, data = http_request(srv.url, method, path, body=body, headers=headers)
    return {"status": st, "content-type": h.get("content-type"), "allow": h.get("allow"),
            "cluster-id": "x-etcd-cluster-id" in h, "body": data.decode("utf-8", "replace")}


def _normalise(srv, a):
    """A members list or leader names this server's own URLs and id: made comparable."""
    b = a["body"]
    for u in (srv.url, srv.peer_url):
        b = b.replace(u, "URL")
    try:
        v = json.loads(b)
    except ValueError:
        return dict(a, body=b)
    for m in v.get("members", [v]) if isinstance(v, dict) else []:
        if isinstance(m, dict) and "id" in m:
            m["id"] = "ID"
    return dict(a, body=v)


def test_members_api_answers_as_etcd(make_server):
    etcd = make_server(kind="etcd")
    srv = make_server()
    for i, (method, path, body, headers) in enumerate(STEPS):
        a = _normalise(etcd, _answer(etcd, method, path, body, headers))
        b = _normalise(srv, _answer(srv, method, path, body, headers))
        assert b == a, "step %d: %s %s %r %r\n etcd:   %r\n server: %r" % (
            i, method, path, body, headers, a, b)
    # Some answers spelled out, so that both servers agreeing on something wrong fails too.
    def text(method, path, body=None, headers=None):
        return _answer(srv, method, path, body, headers)

    assert text("GET", "/v2/members/zzz")["body"] == '{"message":"Not found"}'
    assert text("POST", "/v2/members", "", J)["body"] == '{"message":"unexpected end of JSON input"}'
    r = text("POST", "/v2/members", '{"peerURLs":["http://127.0.0.1"]}', J)
    assert (r["status"], r["body"]) == (400, '{"message":"URL address does not have the form '
                                             '\\"host:port\\": http://127.0.0.1"}')
    r = text("PATCH", "/v2/members")
    assert (r["status"], r["allow"]) == (405, "GET,POST,DELETE,PUT")
    # An add: the URLs come back sorted, as etcd sorts them.
    add = '{"peerURLs":["http://127.0.0.1:3","HTTP://127.0.0.1:2"]}'
    a = _normalise(etcd, _answer(etcd, "POST", "/v2/members", add, J))
    b = _normalise(srv, _answer(srv, "POST", "/v2/members", add, J))
    assert b == a and b["status"] == 201
    assert b["body"]["peerURLs"] == ["http://127.0.0.1:2", "http://127.0.0.1:3"]


def test_other_endpoints_take_the_methods_etcd_takes(make_server):
    """/version, /health and /v2/stats/* take GET alone (HEAD is 405 there), /v2/machines GET
    and HEAD, /metrics any method; compared with etcd."""
    etcd = make_server(kind="etcd")
    srv = make_server()
    for path in ("/version", "/health", "/v2/machines", "/v2/stats/self", "/v2/stats/store",
                 "/v2/stats/leader", "/metrics"):
        for method in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"):
            a, b = (http_request(x.url, method, path, body="" if method in ("POST", "PUT") else None)
                    for x in (etcd, srv))
            what = "%s %s: etcd %r, server %r" % (method, path, a[:2], b[:2])
            assert (b[0], b[1].get("allow")) == (a[0], a[1].get("allow")), what
            if a[0] == 405:
                assert b[2] == a[2], what
    st, h, _ = http_request(srv.url, "HEAD", "/version")
    assert (st, h.get("allow")) == (405, "GET")


def _fnv(s, seed=0):
    """datadir_hash: FNV-1a 64 (ids are derived from it)."""
    h = 1469598103934665603 ^ seed
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) & (2 ** 64 - 1)
    return h or 1


CLUSTER_SEED = 0x9e3779b97f4a7c15


def _start_with_token(tmp_path, name, pick):
    """A quorumd started with the first token tok-N for which pick(peer_url, token) holds."""
    import cluster
    srv = cluster.Server(str(tmp_path / name), kind="quorumd", name=name)
    srv.client_port, srv.peer_port = cluster.free_port(), cluster.free_port()
    token = next(t for t in ("tok-%d" % i for i in range(1000000)) if pick(srv.peer_url, t))
    srv.extra_args = ["--initial-cluster-token", token]
    return srv.start(), token


def test_ids_are_shown_without_zero_padding(tmp_path):
    """etcd shows member and cluster ids as types.ID.String() does: hex without leading zeros
    (an id of 15 digits turns up in one cluster of 16). Tokens are chosen so that the member
    id of one server and the cluster id of another begin with a zero nibble, and every place
    that shows them must agree."""
    import cluster
    if cluster.is_etcd_target():
        return
    srv, token = _start_with_token(tmp_path, "z", lambda url, t: _fnv("%s|%s" % (url, t)) >> 60 == 0)
    try:
        mid = "%x" % _fnv("%s|%s" % (srv.peer_url, token))
        cid = "%x" % _fnv("quorumd-cluster|%s" % token, CLUSTER_SEED)
        assert len(mid) < 16
        st, hdrs, body = http_request(srv.url, path="/v2/members")
        assert json.loads(body)["members"][0]["id"] == mid
        assert hdrs["x-etcd-cluster-id"] == cid
        st, _, body = http_request(srv.url, path="/v2/members/leader")
        assert json.loads(body)["id"] == mid
        st, _, body = http_request(srv.url, path="/v2/stats/self")
        me = json.loads(body)
        assert me["id"] == mid and me["leaderInfo"]["leader"] == mid
        st, _, body = http_request(srv.url, path="/v2/stats/leader")
        assert json.loads(body)["leader"] == mid
        st, _, body = http_request(srv.url, path="/metrics")
        assert 'etcd_server_id{server_id="%s"} 1' % mid in body.decode()
        # Both spellings name the member (etcd parses the id as a hex number).
        st, _, body = http_request(srv.url, "PUT", "/v2/members/" + mid.zfill(16),
                                   body=json.dumps({"peerURLs": [srv.peer_url]}).encode(),
                                   headers={"Content-Type": "application/json"})
        assert st == 204, body
    finally:
        srv.stop()
    srv, token = _start_with_token(
        tmp_path, "c", lambda url, t: _fnv("quorumd-cluster|%s" % t, CLUSTER_SEED) >> 60 == 0)
    try:
        cid = "%x" % _fnv("quorumd-cluster|%s" % token, CLUSTER_SEED)
        assert len(cid) < 16
        for path in ("/v2/members", "/v2/keys/"):
            st, hdrs, body = http_request(srv.url, path=path)
            assert hdrs["x-etcd-cluster-id"] == cid
    finally:
        srv.stop()
