"""Differential test of v2 auth's key permissions: quorumd against real etcd 3.4, model-free.

test_v2_auth.py runs one scripted sequence. This one draws, per seed, roles with random read
and write patterns (a key alone, a prefix with '*', the root's "/*", hidden and escaped names),
users holding random roles, and a guest role with some of them; turns auth on; then sends the
same random key requests to both servers as root, as each user, as the guest, with a wrong
password and as an unknown user: GET plain, recursive, sorted, waits answered from the
history; PUT, POST, DELETE plain, recursive and dir, with and without a trailing slash. Every
answer must agree: status, and the body (indexes counted from each server's index before the
sequence).

Replay: ADIFF_SEED=n (comma-separated list allowed), ADIFF_OPS=N (default 120; etcd checks a
password with bcrypt on every request, ~50 ms).
"""
import base64
import json
import os
import random
import urllib.parse

import pytest

from difffuzz import Normalizer, Req, RoundRobin, differences, env_seeds, etcd_and_server
from raft_cluster import make_cluster  # noqa: F401 (a fixture)

SEEDS = [1]
OPS = int(os.environ.get("ADIFF_OPS", "120"))

KEYS = [("a",), ("a", "b"), ("a", "b", "c"), ("a", "bc"), ("ab",), ("x y",), ("x y", "z"),
        ("_h",), ("_h", "k"), ("a", "_s"), ()]
PATTERNS = ["/a", "/a*", "/a/*", "/a/b", "/a/b*", "/a/b/*", "/*", "/ab", "/x y/*", "/x y",
            "/_h*", "/_h/*", "/a/_s", "/"]


def seeds():
    return env_seeds("ADIFF_SEED", SEEDS)


def basic(user, pw):
    return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, pw)).encode()).decode()}


def path_of(key, trailing=False):
    p = "/v2/keys/" + "/".join(urllib.parse.quote(c, safe="") for c in key)
    return p + "/" if trailing and key else p


def answer(srv, method, path, body, headers, base):
    hdrs = dict(headers or {})
    if body is not None:
        hdrs["Content-Type"] = "application/x-www-form-urlencoded"
    try:  # (a wait that history does not answer waits: both servers must make it wait)
        st, h, data = srv.request(method, path, body=body, headers=hdrs,
                                  timeout=0.7 if "wait=true" in path else 10)
    except (TimeoutError, OSError):
        return {"status": "waits", "body": None}
    text = data.decode("utf-8", "replace")
    try:
        parsed = json.loads(text) if text.strip() else text
    except ValueError:
        parsed = text
    if isinstance(parsed, dict) and path.startswith("/v2/keys"):
        parsed = Normalizer(base, set()).body(parsed, Req(method, ()))
    return {"status": st, "body": parsed}


def configure_auth(srv, roles, users, guest_grants):
    """Roles, users and the guest role as drawn; auth on. Returns the answers' statuses (both
    servers must agree on those too)."""
    out = []

    def put(path, obj, headers=None):
        st, _, body = srv.request("PUT", path, body=json.dumps(obj) if obj is not None else None,
                                  headers=headers)
        out.append((path, st))
    put("/v2/auth/users/root", {"user": "root", "password": "rootpw"})
    for name, (read, write) in roles.items():
        put("/v2/auth/roles/" + name, {"role": name, "permissions": {"kv": {"read": read, "write": write}}})
    for name, rs in users.items():
        put("/v2/auth/users/" + name, {"user": name, "password": name + "pw", "roles": rs})
    put("/v2/auth/enable", None)
    root = basic("root", "rootpw")
    read, write = guest_grants
    put("/v2/auth/roles/guest", {"role": "guest", "revoke": {"kv": {"read": ["/*"], "write": ["/*"]}}}, root)
    if read or write:
        put("/v2/auth/roles/guest", {"role": "guest", "grant": {"kv": {"read": read, "write": write}}}, root)
    return out


def draw(rnd):
    roles = {}
    for i in range(3):
        roles["r%d" % i] = (sorted(set(rnd.sample(PATTERNS, rnd.randint(1, 5)))),
                            sorted(set(rnd.sample(PATTERNS, rnd.randint(0, 4)))))
    users = {"u%d" % i: sorted(rnd.sample(sorted(roles), rnd.randint(i > 0, 2))) for i in range(3)}
    guest = (sorted(set(rnd.sample(PATTERNS, rnd.randint(0, 2)))),
             sorted(set(rnd.sample(PATTERNS, rnd.randint(0, 1)))))
    return roles, users, guest


def request(rnd):
    who = rnd.choice(["root", "u0", "u1", "u2", "u0", "u1", "guest", "wrongpw", "nobody"])
    headers = {"root": basic("root", "rootpw"), "wrongpw": basic("u0", "bad"),
               "nobody": basic("nobody", "x"), "guest": None}.get(who) or basic(who, who + "pw")
    if who == "guest":
        headers = None
    key = rnd.choice(KEYS)
    trailing = rnd.random() < 0.2
    method = rnd.choice(["GET", "GET", "GET", "PUT", "PUT", "POST", "DELETE"])
    q, body = [], None
    if method == "GET":
        for name, p in (("recursive", 0.4), ("sorted", 0.2)):
            if rnd.random() < p:
                q.append((name, "true"))
        if rnd.random() < 0.08:
            q += [("wait", "true"), ("waitIndex", "1")]
    elif method == "PUT":
        if rnd.random() < 0.3:
            q.append(("dir", "true"))
        else:
            body = "value=v%d" % rnd.randint(0, 9)
    elif method == "POST":
        body = "value=q"
    else:
        r = rnd.random()
        if r < 0.4:
            q.append(("recursive", "true"))
        elif r < 0.6:
            q.append(("dir", "true"))
    path = path_of(key, trailing) + ("?" + urllib.parse.urlencode(q) if q else "")
    return who, method, path, body, headers


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("seed", seeds())
def test_key_permissions_answer_as_etcd(make_server, seed):
    ref, sut = etcd_and_server(make_server, "nothing to compare")
    compare_permissions(ref, sut, seed)


@pytest.mark.time_limit(120)
@pytest.mark.parametrize("seed", seeds()[:1])
def test_key_permissions_answer_as_etcd_on_a_cluster(make_server, make_cluster, seed):
    """The same on a 3-member cluster, each request (the set-up's too) to the next member in
    turn: users, roles and grants made through one member are enforced by the others."""
    ref, _ = etcd_and_server(make_server, "nothing to compare")
    c = make_cluster(3).start()
    c.leader()
    sut = RoundRobin(c.members, auth=basic("root", "rootpw"))
    sut.wait_ready()
    compare_permissions(ref, sut, seed)


def compare_permissions(ref, sut, seed):
    rnd = random.Random(seed)
    roles, users, guest = draw(rnd)
    label = "seed %d (replay: ADIFF_SEED=%d)\nroles %r\nusers %r\nguest %r" % (
        seed, seed, roles, users, guest)
    # some keys to read, made before auth is on (as root would)
    for srv in (ref, sut):
        for key in KEYS[:-1]:
            if len(key) > 1:
                srv.request("PUT", path_of(key), body="value=init",
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
    base_r, base_s = ref.index(), sut.index()
    sa, sb = configure_auth(ref, roles, users, guest), configure_auth(sut, roles, users, guest)
    assert sa == sb, "%s\nthe set-up answered differently:\n etcd:   %r\n server: %r" % (label, sa, sb)
    history = []
    statuses = {}
    for i in range(OPS):
        who, method, path, body, headers = request(rnd)
        a = answer(ref, method, path, body, headers, base_r)
        b = answer(sut, method, path, body, headers, base_s)
        history.append("#%d as %s: %s %s %s -> %s" % (i, who, method, path, body or "", a["status"]))
        statuses[a["status"]] = statuses.get(a["status"], 0) + 1
        diffs = differences(a, b)
        if diffs:
            pytest.fail("%s\nrequest #%d as %s: %s %s %s\ndifferences (etcd vs server):\n  %s\n"
                        " etcd:   %s\n server: %s\n\nrequests before it:\n  %s"
                        % (label, i, who, method, path, body or "", "\n  ".join(diffs),
                           json.dumps(a, ensure_ascii=False), json.dumps(b, ensure_ascii=False),
                           "\n  ".join(history[-12:-1]) or "(none)"), pytrace=False)
    print("%s\nanswers by status: %r" % (label.split("\n")[0], statuses))
    assert statuses.get(401, 0) and sum(v for k, v in statuses.items()
                                        if isinstance(k, int) and k < 300), statuses
