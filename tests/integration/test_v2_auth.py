"""/v2/auth (users, roles, enable) and its checks on /v2/keys and /v2/members, against real
etcd 3.4 and across a Raft cluster.

test_auth_api_answers_as_etcd runs one scripted sequence (about 90 requests: users and roles
created, updated with grant/revoke, deleted; every error etcd's v2 auth store answers; auth
enabled and disabled; keys read and written as root, as a user with a role, as a guest, with
wrong or malformed credentials) against a fresh etcd and a fresh server under test, and
compares every answer: status, Content-Type, Allow, whether X-Etcd-Cluster-Id is sent, and
the body (JSON compared as values), and every index relative to each server's index at the
start: etcd keeps the auth state as values of its v2 store, so that its changes take etcd
indexes, and quorumd's take the same number (the X-Etcd-Index header too, where sent), and
they count in /v2/stats/store as the same creates, updates and deletes (each step's change of
the write counters is compared). Some answers
are also checked against their literal expected text, so that the test fails if both servers
were to agree on something wrong.
"""
import base64
import json
import threading

import pytest

from raft_cluster import make_cluster, put, wait_for  # noqa: F401  (make_cluster: a fixture)


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


ROOT = basic("root", "rootpw")
ALICE = basic("alice", "apw")

# (method, path, body, headers, expected status or None, expected body text or None)
STEPS = [
    ("GET", "/v2/auth/enable", None, None, 200, '{"enabled":false}\n'),
    ("GET", "/v2/auth/users", None, None, 200, '{"users":null}\n'),
    ("GET", "/v2/auth/roles", None, None, 200,
     '{"roles":[{"role":"root","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}]}\n'),
    ("GET", "/v2/auth/users/root", None, None, 404, '{"message":"auth: User root does not exist."}'),
    ("GET", "/v2/auth/roles/root", None, None, 200, None),
    ("GET", "/v2/auth/roles/guest", None, None, 404, None),
    ("PUT", "/v2/auth/enable", None, None, 409,
     '{"message":"auth: No root user available, please create one"}'),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice"}', None, 400, None),
    ("PUT", "/v2/auth/users/alice", '{"user":"bob","password":"x"}', None, 400, None),
    ("PUT", "/v2/auth/users/alice", 'notjson', None, 400, '{"message":"Invalid JSON in request body."}'),
    ("PUT", "/v2/auth/users/alice", '[1]', None, 400, None),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","roles":"x"}', None, 400, None),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","password":"apw"}', None, 201,
     '{"user":"alice","roles":null}\n'),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","password":"apw"}', None, 200,
     '{"user":"alice","roles":[]}\n'),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice"}', None, 400, None),
    ("PUT", "/v2/auth/users/carol", '{"user":"carol","password":"c","roles":["nosuch","app"]}', None, 200,
     '{"user":"carol","roles":["nosuch","app"]}\n'),
    ("PUT", "/v2/auth/users/carol", '{"user":"carol","password":"c","roles":["x"]}', None, 409, None),
    ("PUT", "/v2/auth/users/dave", '{"user":"dave","roles":["x"]}', None, 400, None),
    ("PUT", "/v2/auth/users/erin", '{"user":"erin","password":"e","roles":[]}', None, 201, None),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","grant":["app"],"roles":["x"]}', None, 400, None),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","grant":["app"]}', None, 200,
     '{"user":"alice","roles":["app"]}\n'),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","grant":["app"]}', None, 409,
     '{"message":"auth: Granting duplicate role app for user alice"}'),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","revoke":["zzz"]}', None, 409, None),
    ("PUT", "/v2/auth/users/erin", '{"user":"erin","grant":["b","a","c"],"revoke":["c"]}', None, 200,
     '{"user":"erin","roles":["a","b"]}\n'),
    ("PUT", "/v2/auth/users/nobody", '{"user":"nobody","grant":["app"]}', None, 404, None),
    ("GET", "/v2/auth/users/alice", None, None, 404, '{"message":"auth: Role app does not exist."}'),
    ("GET", "/v2/auth/users", None, None, 200, None),
    ("GET", "/v2/auth/users/nobody", None, None, 404, None),
    ("PUT", "/v2/auth/roles/app", '{"role":"app"}', None, 201,
     '{"role":"app","permissions":{"kv":{"read":null,"write":null}}}\n'),
    ("PUT", "/v2/auth/roles/app", '{"role":"app"}', None, 409, None),
    ("PUT", "/v2/auth/roles/root", '{"role":"root"}', None, 403,
     '{"message":"auth: Cannot modify role root: is root role."}'),
    ("PUT", "/v2/auth/roles/app", '{"role":"other"}', None, 400, None),
    ("PUT", "/v2/auth/roles/app2", '{"role":"app2","permissions":{"kv":{"read":["/b/*"],"write":[]}}}', None, 201, None),
    ("PUT", "/v2/auth/roles/app", '{"role":"app","grant":{"kv":{"read":["/pub","/app/*"],"write":["/app/*"]}}}', None, 200,
     '{"role":"app","permissions":{"kv":{"read":["/app/*","/pub"],"write":["/app/*"]}}}\n'),
    ("PUT", "/v2/auth/roles/app", '{"role":"app","grant":{"kv":{"read":["/app/*"]}}}', None, 409, None),
    ("PUT", "/v2/auth/roles/app", '{"role":"app","revoke":{"kv":{"read":["/nothere"]}}}', None, 400, None),
    ("PUT", "/v2/auth/roles/app", '{"role":"app","revoke":{"kv":{"read":["/pub","/nothere"]}}}', None, 200, None),
    ("PUT", "/v2/auth/roles/app", '{"role":"app","grant":{"kv":{"read":["/x"]}},"permissions":{"kv":{"read":["/y"]}}}', None, 400, None),
    ("PUT", "/v2/auth/roles/nosuch", '{"role":"nosuch","grant":{"kv":{"read":["/x"]}}}', None, 404, None),
    ("PUT", "/v2/auth/roles/app3", '{"role":"app3"}', None, 201, None),
    ("PUT", "/v2/auth/roles/app3", '{"role":"app3","revoke":{"kv":{"write":["/q"]}}}', None, 200,
     '{"role":"app3","permissions":{"kv":{"read":[],"write":[]}}}\n'),
    ("GET", "/v2/auth/roles/app", None, None, 200, None),
    ("GET", "/v2/auth/roles", None, None, 200, None),
    ("GET", "/v2/auth/users/alice", None, None, 200,
     '{"user":"alice","roles":[{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":["/app/*"]}}}]}\n'),
    ("GET", "/v2/auth/users/carol", None, None, 404, None),
    ("GET", "/v2/auth/users", None, None, 200, None),
    ("DELETE", "/v2/auth/roles/root", None, None, 403, None),
    ("DELETE", "/v2/auth/roles/nosuch", None, None, 404, None),
    ("DELETE", "/v2/auth/users/nobody", None, None, 404, '{"message":"auth: User nobody does not exist"}'),
    ("POST", "/v2/auth/users/x", None, None, 405, "Method Not Allowed\n"),
    ("HEAD", "/v2/auth/users", None, None, 405, None),
    ("GET", "/v2/auth/users/a/b", None, None, 400, '{"message":"Invalid path"}'),
    ("GET", "/v2/auth/users/", None, None, 200, None),
    ("GET", "/v2/auth/foo", None, None, 404, None),
    ("GET", "/v2/auth/enable/", None, None, 404, None),
    ("PUT", "/v2/auth/users/root", '{"user":"root","password":"rootpw"}', None, 201,
     '{"user":"root","roles":["root"]}\n'),
    ("GET", "/v2/auth/users/root", None, None, 200, None),
    ("PUT", "/v2/keys/app/k1", 'value=v1', None, 201, None),
    ("PUT", "/v2/keys/pub", 'value=p', None, 201, None),
    ("PUT", "/v2/auth/enable", None, None, 200, ""),
    ("PUT", "/v2/auth/enable", None, ROOT, 409, '{"message":"auth: already enabled"}'),
    ("GET", "/v2/auth/enable", None, None, 200, '{"enabled":true}\n'),
    ("GET", "/v2/auth/roles/guest", None, ROOT, 200,
     '{"role":"guest","permissions":{"kv":{"read":["/*"],"write":["/*"]}}}\n'),
    ("GET", "/v2/auth/users", None, None, 401, '{"message":"Insufficient credentials"}'),
    ("GET", "/v2/auth/users", None, basic("root", "bad"), 401, None),
    ("GET", "/v2/auth/users", None, ALICE, 401, None),
    ("GET", "/v2/keys/app/k1", None, None, 200, None),
    ("PUT", "/v2/auth/roles/guest", '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}', ROOT, 200, None),
    ("GET", "/v2/keys/app/k1", None, None, 401,
     '{"errorCode":110,"message":"The request requires user authentication",'
     '"cause":"Insufficient credentials","index":0}\n'),
    ("GET", "/v2/keys/app/k1", None, ALICE, 200, None),
    ("GET", "/v2/keys/app/k1", None, basic("alice", "wrong"), 401, None),
    ("GET", "/v2/keys/app/k1", None, basic("ghost", "x"), 401, None),
    ("GET", "/v2/keys/app/k1", None, {"Authorization": "Bearer zzz"}, 401, None),
    ("GET", "/v2/keys/app/k1", None, {"Authorization": "Basic !!!!"}, 401, None),
    ("GET", "/v2/keys/app/k1", None, {"Authorization": "Basic " + base64.b64encode(b"alice").decode()}, 401, None),
    ("GET", "/v2/keys/app/k1?bad=1&ttl=x", None, ALICE, None, None),
    ("PUT", "/v2/keys/app/k2", 'value=v2', ALICE, 201, None),
    ("PUT", "/v2/keys/other", 'value=v2', ALICE, 401, None),
    ("GET", "/v2/keys/pub", None, ALICE, 401, None),
    ("GET", "/v2/keys/app?recursive=true", None, ALICE, 401, None),
    ("GET", "/v2/keys/app/?recursive=true", None, ALICE, 200, None),
    ("GET", "/v2/keys/app", None, ALICE, 401, None),
    ("GET", "/v2/keys/app/k1?wait=true&waitIndex=1", None, ALICE, 200, None),
    ("DELETE", "/v2/keys/app/k2", None, ALICE, 200, None),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","password":"apw2"}', ROOT, 200, None),
    ("GET", "/v2/keys/app/k1", None, ALICE, 401, None),
    ("GET", "/v2/keys/app/k1", None, basic("alice", "apw2"), 200, None),
    ("PUT", "/v2/auth/users/alice", '{"user":"alice","revoke":["app"]}', ROOT, 200, None),
    ("GET", "/v2/keys/app/k1", None, basic("alice", "apw2"), 401, None),
    ("GET", "/v2/keys/", None, ROOT, 200, None),
    ("GET", "/v2/keys", None, ROOT, 200, None),
    ("GET", "/v2/members", None, None, 200, None),
    ("POST", "/v2/members", '{"peerURLs":["http://127.0.0.1:1"]}', None, 401, '{"message":"Insufficient credentials"}'),
    ("DELETE", "/v2/members/1234", None, basic("alice", "apw2"), 401, None),
    ("DELETE", "/v2/auth/users/root", None, ROOT, 403,
     '{"message":"auth: Cannot delete root user while auth is enabled."}'),
    ("DELETE", "/v2/auth/enable", None, ALICE, 401, None),
    ("DELETE", "/v2/auth/enable", None, ROOT, 200, ""),
    ("DELETE", "/v2/auth/enable", None, ROOT, 409, '{"message":"auth: already disabled"}'),
    ("GET", "/v2/keys/app/k1", None, None, 200, None),
    ("DELETE", "/v2/auth/roles/app", None, None, 200, ""),
    ("GET", "/v2/auth/users", None, None, 200, None),
    ("DELETE", "/v2/auth/users/alice", None, None, 200, ""),
    ("DELETE", "/v2/auth/users/root", None, None, 200, ""),
    ("GET", "/v2/auth/roles", None, None, 200, None),
]


def _rel_indexes(v, base):
    """A /v2/keys answer with its indexes made relative to base (0 stays 0: etcd's index of a
    refused request), directory listings in key order (etcd lists without sorted=true in its
    map's order)."""
    if isinstance(v, dict):
        out = {k: (x - base if x else x) if k in ("modifiedIndex", "createdIndex", "index")
               else _rel_indexes(x, base) for k, x in v.items()}
        if isinstance(out.get("nodes"), list):
            out["nodes"].sort(key=lambda n: n.get("key", ""))
        return out
    if isinstance(v, list):
        return [_rel_indexes(x, base) for x in v]
    return v


def _index(srv):
    st, h, _ = srv.request("GET", "/v2/keys/", headers=ROOT)
    return int(h["x-etcd-index"])


def _writes(srv):
    """/v2/stats/store's write counters (the gets also count etcd's own reads, not compared)."""
    st, _, body = srv.request("GET", "/v2/stats/store")
    assert st == 200
    return {k: v for k, v in json.loads(body).items() if not k.startswith("gets") and k != "watchers"}


def _answer(srv, method, path, body, headers, base):
    before = _writes(srv)
    hdrs = dict(headers or {})
    if body is not None and path.startswith("/v2/keys"):
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    st, h, data = srv.request(method, path, body=body, headers=hdrs)
    text = data.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text else text
    except ValueError:
        parsed = text
    if path.startswith("/v2/keys"):
        parsed = _rel_indexes(parsed, base)
    index = h.get("x-etcd-index")
    if isinstance(parsed, dict) and "members" in parsed:  # (ids and ports are each server's)
        parsed = [m["name"] for m in parsed["members"]]
    after = _writes(srv)
    return {"status": st, "content-type": h.get("content-type"), "allow": h.get("allow"),
            "cluster-id": "x-etcd-cluster-id" in h, "body": parsed,
            "etcd-index": int(index) - base if index not in (None, "0") else index,
            "store writes counted": {k: after[k] - before[k] for k in after if after[k] != before[k]}}, text


def test_auth_api_answers_as_etcd(make_server):
    etcd = make_server(kind="etcd")
    srv = make_server()
    base_a, base_b = _index(etcd), _index(srv)
    for i, (method, path, body, headers, want_status, want_text) in enumerate(STEPS):
        a, a_text = _answer(etcd, method, path, body, headers, base_a)
        b, b_text = _answer(srv, method, path, body, headers, base_b)
        what = "step %d: %s %s %s %s" % (i, method, path, body or "", (headers or {}).get("Authorization", ""))
        assert b == a, "%s\n etcd:   %r\n server: %r" % (what, a, b)
        if want_status is not None:
            assert b["status"] == want_status, what
        if want_text is not None:
            assert b_text == want_text, what


def test_a_changed_or_revoked_password_is_not_remembered(server):
    """A password found right is remembered (the slow hash is skipped afterwards): a change of
    the password, or of the user, must forget it at once."""
    def req(method, path, body=None, headers=None):
        return server.request(method, path, body=body, headers=headers)[0]

    assert req("PUT", "/v2/auth/users/root", '{"user":"root","password":"r"}') == 201
    assert req("PUT", "/v2/auth/users/u", '{"user":"u","password":"p1","roles":["w"]}') == 200
    assert req("PUT", "/v2/auth/roles/w", '{"role":"w","permissions":{"kv":{"read":["/w/*"],"write":["/w/*"]}}}') == 201
    assert req("PUT", "/v2/auth/enable", None, basic("root", "r")) == 200
    assert req("PUT", "/v2/auth/roles/guest", '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}',
               basic("root", "r")) == 200
    for _ in range(3):
        assert req("GET", "/v2/keys/w/?recursive=true", None, basic("u", "p1")) in (200, 404)
    assert req("PUT", "/v2/auth/users/u", '{"user":"u","password":"p2"}', basic("root", "r")) == 200
    assert req("GET", "/v2/keys/w/x", None, basic("u", "p1")) == 401
    assert req("GET", "/v2/keys/w/x", None, basic("u", "p2")) == 404
    # deleted and made again with the old password: only the new user's password counts
    assert req("DELETE", "/v2/auth/users/u", None, basic("root", "r")) == 200
    assert req("GET", "/v2/keys/w/x", None, basic("u", "p2")) == 401
    assert req("PUT", "/v2/auth/users/u", '{"user":"u","password":"p3","roles":["w"]}', basic("root", "r")) == 200
    assert req("GET", "/v2/keys/w/x", None, basic("u", "p2")) == 401
    assert req("GET", "/v2/keys/w/x", None, basic("u", "p3")) == 404
    # a restart keeps everything, with checking on
    server.restart()
    assert req("GET", "/v2/auth/enable") == 200
    assert json.loads(server.request("GET", "/v2/auth/enable")[2]) == {"enabled": True}
    assert req("GET", "/v2/keys/w/x") == 401
    assert req("GET", "/v2/keys/w/x", None, basic("u", "p3")) == 404
    assert req("PUT", "/v2/keys/w/x", "value=1", {**basic("u", "p3"),
               "Content-Type": "application/x-www-form-urlencoded"}) == 201
    assert req("PUT", "/v2/keys/y", "value=1", {**basic("u", "p3"),
               "Content-Type": "application/x-www-form-urlencoded"}) == 401


def test_password_checks_wait_off_the_loop_in_order(server):
    """A request whose password has to be hashed waits while the hash is made on a thread of
    its own (the HTTP loop goes on serving); pipelined requests are still answered in order,
    each by its own credentials, and a client that leaves while its check runs harms nothing."""
    import cluster
    import rawhttp

    def req(method, path, body=None, headers=None):
        return server.request(method, path, body=body, headers=headers)[0]

    assert req("PUT", "/v2/auth/users/root", '{"user":"root","password":"r"}') == 201
    assert req("PUT", "/v2/auth/users/u", '{"user":"u","password":"p","roles":["w"]}') == 200
    assert req("PUT", "/v2/auth/roles/w", '{"role":"w","permissions":{"kv":{"read":["/w/*"],"write":["/w/*"]}}}') == 201
    assert req("PUT", "/v2/auth/enable", None, basic("root", "r")) == 200
    assert req("PUT", "/v2/auth/roles/guest", '{"role":"guest","revoke":{"kv":{"write":["/*"]}}}',
               basic("root", "r")) == 200
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    # One connection, eight requests sent at once: wrong and right passwords of a user not
    # yet remembered, a guest, root, a user with no such name.
    steps = [
        ("PUT", "/v2/keys/w/a", "value=1", {**basic("u", "bad"), **form}, 401),
        ("PUT", "/v2/keys/w/a", "value=2", {**basic("u", "p"), **form}, 201),
        ("GET", "/v2/keys/w/a", None, {}, 200),                    # guest may read
        ("PUT", "/v2/keys/w/a", "value=3", form, 401),             # but not write
        ("PUT", "/v2/keys/w/a", "value=4", {**basic("u", "bad2"), **form}, 401),
        ("GET", "/v2/keys/w/a", None, basic("u", "p"), 200),
        ("GET", "/v2/keys/w/a", None, basic("nobody", "p"), 401),
        ("DELETE", "/v2/keys/w/a", None, basic("root", "r"), 200),
    ]
    with rawhttp.RawConn.to(server) as c:
        c.send(b"".join(rawhttp.build(m, p, headers=h, body=b.encode() if b else None)
                        for m, p, b, h, _ in steps))
        answers = [c.read_response(m) for m, _, _, _, _ in steps]
    assert [a.status for a in answers] == [want for *_, want in steps]
    assert answers[2].json()["node"]["value"] == "2"
    assert answers[5].json()["node"]["value"] == "2"
    assert answers[7].json()["prevNode"]["value"] == "2"
    assert answers[0].json()["errorCode"] == 110
    # Clients that close while their passwords are being checked.
    for i in range(20):
        with rawhttp.RawConn.to(server) as c:
            c.send(rawhttp.build("GET", "/v2/keys/w/a", headers=basic("u", "wrong%d" % i)))
    st, _, body = cluster.http_request(server.url, path="/v2/keys/w/b", method="PUT",
                                       body=b"value=5", headers={**basic("u", "p"), **form})
    assert st == 201 and json.loads(body)["node"]["value"] == "5"
    assert server.running()


def _auth_put(m, path, obj, headers=None):
    st, _, body = m.request("PUT", path, body=json.dumps(obj) if obj is not None else None,
                            headers=headers)
    return st, body


def test_auth_is_replicated_kept_in_snapshots_and_restarts(make_cluster):
    c = make_cluster(3, extra_args=("--snapshot-count", "50")).start()
    leader = c.leader()
    f1, f2 = c.followers(leader)
    f2.stop()  # it will come back after the log it missed is compacted: by snapshot
    # Changes through any member (a follower's go to the leader through the log).
    assert _auth_put(f1, "/v2/auth/users/root", {"user": "root", "password": "rp"})[0] == 201
    assert _auth_put(leader, "/v2/auth/roles/app", {"role": "app", "permissions": {"kv": {
        "read": ["/app/*"], "write": ["/app/*"]}}})[0] == 201
    assert _auth_put(f1, "/v2/auth/users/alice", {"user": "alice", "password": "ap", "roles": ["app"]})[0] == 200
    st, body = _auth_put(f1, "/v2/auth/enable", None)
    assert st == 200, body
    RP, AP = basic("root", "rp"), basic("alice", "ap")
    st, body = _auth_put(leader, "/v2/auth/roles/guest", {"role": "guest", "revoke": {"kv": {
        "read": ["/*"], "write": ["/*"]}}}, RP)
    assert st == 200, body

    def checks(m):
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        assert json.loads(m.request("GET", "/v2/auth/enable")[2]) == {"enabled": True}
        assert m.request("GET", "/v2/keys/app/a")[0] == 401
        assert m.request("PUT", "/v2/keys/other", body="value=1", headers={**AP, **form})[0] == 401
        st, _, body = m.request("GET", "/v2/auth/users/alice", headers=RP)
        assert st == 200 and json.loads(body)["roles"][0]["role"] == "app", body
        assert m.request("GET", "/v2/auth/users", headers=AP)[0] == 401

    for m in (leader, f1):
        wait_for(lambda: json.loads(m.request("GET", "/v2/auth/enable")[2])["enabled"], what="enabled")
        checks(m)
    # Enough writes (as alice, through the members) for the leader to compact its log.
    errors = []

    def writer(m, lo, hi):
        for i in range(lo, hi):
            st, _, _ = m.request("PUT", "/v2/keys/app/k%04d" % i, body="value=%d" % i,
                                 headers={**AP, "Content-Type": "application/x-www-form-urlencoded"})
            if st != 201:
                errors.append((i, st))

    n = 1200
    ts = [threading.Thread(target=writer, args=((leader, f1)[i % 2], i * n // 6, (i + 1) * n // 6))
          for i in range(6)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors[:5]
    f2.start()
    wait_for(lambda: f2.request("GET", "/v2/keys/app/k%04d" % (n - 1), headers=AP)[0] == 200,
             timeout=30, what="the stopped member catches up")
    # (the line is written after the store is in place, which the read above may see first)
    wait_for(lambda: "installed a snapshot" in f2.log_text(), what="the snapshot's log line")
    checks(f2)
    # The whole cluster restarted: every member still checks.
    for m in c.members:
        m.stop()
    for m in c.members:
        m.start()
    c.leader()
    for m in c.members:
        checks(m)
    st, _, body = f2.request("GET", "/v2/keys/app/k0000", headers=AP)
    assert st == 200 and json.loads(body)["node"]["value"] == "0"
