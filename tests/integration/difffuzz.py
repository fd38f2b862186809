"""Differential fuzzing of the v2 keys API: one seeded random sequence of requests is sent to
the server under test and to real etcd 3.4, and every pair of answers is compared after
normalisation (see test_differential.py for what is compared and what is deliberately not).

Model-free: nothing here predicts an answer. The generator only remembers what etcd (the
reference) answered, to aim later requests at keys, values and indexes that exist, and it
asks etcd (a GET, which changes nothing) in the one place where sending a request would make
the two stores diverge because of a documented etcd bug.

Requests are templates rendered per server: an in-order key name or an index parameter is
kept relative to that server's index before the sequence (its "base"), so the same request
means the same thing to both, whatever index each one started at.
"""
import calendar
import http.client
import json
import os
import random
import re
import socket
import time
import urllib.parse

WATCH_TIMEOUT = 5.0     # a watch here is always answered from history; this only bounds a bug

TRUE = ["true", "true", "true", "1", "t", "T", "True", "TRUE"]
FALSE = ["false", "false", "0", "f", "F", "False", "FALSE"]
VALUES = ["v1", "v2", "v3", "", "x y", "\u00fc\u00df", "10", "a&b=c%"]

# The name space, small so that requests collide: a few names per level, hidden ones, names
# that need escaping (space, '%', '+', UTF-8), and "b"/"bc" (a raw-prefix pair).
LEVEL1 = ["a", "d", "_h", "x y", "\u00e9"]
LEVEL2 = ["b", "bc", "_u", "\u00fc", "10"]
LEVEL3 = ["c", "_z", "9"]
RARE = ["p%q", "n+1", "%2F", ".dot", "a_b", "o(k)!*", "q'\"<>", "@:$&=;,~", "t\tab"]

SEQ_RE = re.compile(r"(?<=/)\d{20}(?=[/?\"&]|$)")
QUERY_IDX_RE = re.compile(r"\b(prevIndex|waitIndex)=(\d+)(?=[&\"]|$)")
CAUSE_IDX_RE = re.compile(r"\[(\d+) != (\d+)\]$")
CAUSE_401_RE = re.compile(r"\[(\d+)/(\d+)\]$")
RFC3339_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def is_true(v):
    return v in ("1", "t", "T", "TRUE", "true", "True")


# ------------------------------------------------------------------------------ requests
class Req:
    """One request template. key: tuple of components (str, or ("seq", rel) for an in-order
    name); query/form: lists of (name, value) with value a str or ("idx", rel); variant: None,
    'trailing', 'double', 'double?' (and an empty query), 'dot', 'dotdot', 'noslash' (root only)."""

    def __init__(self, method, key, query=(), form=None, variant=None, kind=""):
        self.method = method
        self.key = tuple(key)
        self.query = list(query)
        self.form = None if form is None else list(form)
        self.variant = variant
        self.kind = kind

    # ---- parameters as the server sees them (the body wins; first value of a repeated name)
    def params(self):
        eff = {}
        if self.form is not None and self.method in ("PUT", "POST"):
            for k, v in self.form:
                eff.setdefault(k, v)
        for k, v in self.query:
            eff.setdefault(k, v)
        return eff

    def flag(self, name):
        v = self.params().get(name)
        return isinstance(v, str) and is_true(v)

    @property
    def is_watch(self):
        return self.method == "GET" and self.flag("wait")

    # ---- rendering
    @staticmethod
    def _comp(c, base):
        if isinstance(c, tuple):
            return "%020d" % (base + c[1])
        return urllib.parse.quote(c, safe="") if c != "%2F" else "x%2Fy"

    @staticmethod
    def _val(v, base):
        if isinstance(v, tuple):
            return str(base + v[1])
        return v

    def path(self, base):
        comps = [self._comp(c, base) for c in self.key]
        p = "/v2/keys/" + "/".join(comps)
        v = self.variant
        if v == "trailing" and comps:
            p += "/"
        elif v == "noslash" and not comps:
            p = "/v2/keys"
        elif v in ("double", "double?"):
            p = "/v2/keys//" + "/".join(comps)
        elif v == "dot":
            p = "/v2/keys/./" + "/".join(comps)
        elif v == "dotdot" and comps:
            p = "/v2/keys/" + comps[0] + "/../" + "/".join(comps)
        q = [(k, self._val(x, base)) for k, x in self.query]
        if q:
            p += "?" + urllib.parse.urlencode(q)
        elif v == "double?":
            p += "?"    # an empty query
        return p

    def body(self, base):
        if self.form is None:
            return None
        return urllib.parse.urlencode([(k, self._val(x, base)) for k, x in self.form])

    def describe(self, base=None):
        def val(v):
            return ("{B+%d}" % v[1]) if isinstance(v, tuple) else v
        key = key_str(self.key)
        s = "%s %s" % (self.method, key)
        if self.variant:
            s += " (path variant %s)" % self.variant
        if self.query:
            s += " query=%s" % [(k, val(v)) for k, v in self.query]
        if self.form is not None:
            s += " form=%s" % [(k, val(v)) for k, v in self.form]
        if base is not None:
            s += "\n      sent as %s %s" % (self.method, self.path(base))
            if self.form is not None:
                s += "  body %r" % self.body(base)
        return s


def key_str(key):
    return "/" + "/".join(("{N+%d}" % c[1]) if isinstance(c, tuple) else c for c in key)


def key_tmpl(s, base):
    """A key from a response ("/a/00000000000000000012") as a template."""
    if not s or s == "/":
        return ()
    out = []
    for c in s.strip("/").split("/"):
        out.append(("seq", int(c) - base) if re.fullmatch(r"\d{20}", c) else c)
    return tuple(out)


def send(url_port, req, base):
    """Returns (status, headers lower-case, body bytes), or ('TIMEOUT', {}, b'')."""
    timeout = WATCH_TIMEOUT if req.is_watch else 10.0
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=timeout)
    try:
        hdrs = {}
        body = req.body(base)
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(req.method, req.path(base), body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    except socket.timeout:
        return "TIMEOUT", {}, b""
    finally:
        conn.close()


# ------------------------------------------------------------------------------ normalising
def norm_index(v, base):
    """0 stays 0 (validation errors report index 0); any other index counts from base."""
    if isinstance(v, int) and not isinstance(v, bool) and v != 0:
        return v - base
    return v


def norm_path(s, base):
    return SEQ_RE.sub(lambda m: "{N%+d}" % (int(m.group()) - base), s)


class Normalizer:
    def __init__(self, base, stale_dirs):
        self.base = base
        # etcd bug 2: (key, normalised createdIndex) of directories whose TTL was changed by an
        # update; etcd keeps their old modifiedIndex in the store, so it is not compared.
        self.stale_dirs = stale_dirs

    def node(self, n, keep_order):
        if not isinstance(n, dict):
            return n
        out = {}
        for k, v in n.items():
            if k in ("modifiedIndex", "createdIndex"):
                out[k] = norm_index(v, self.base)
            elif k == "key" and isinstance(v, str):
                out[k] = norm_path(v, self.base)
            elif k == "nodes" and isinstance(v, list):
                lst = [self.node(x, keep_order) for x in v]
                if not keep_order:
                    lst.sort(key=lambda x: json.dumps(x.get("key") if isinstance(x, dict) else x))
                out[k] = lst
            else:
                out[k] = v
        if out.get("dir") is True and (out.get("key"), out.get("createdIndex")) in self.stale_dirs \
                and "modifiedIndex" in out:
            out["modifiedIndex"] = "<ignored: etcd bug 2>"
        return out

    def body(self, b, req):
        keep_order = req.flag("sorted")
        out = {}
        for k, v in b.items():
            if k in ("node", "prevNode"):
                out[k] = self.node(v, keep_order)
            elif k == "index":
                out[k] = norm_index(v, self.base)
            elif k == "cause" and isinstance(v, str):
                c = norm_path(v, self.base)
                if b.get("errorCode") == 101 and "prevIndex" in req.params():
                    c = CAUSE_IDX_RE.sub(lambda m: "[%s != %s]" % (
                        norm_index(int(m.group(1)), self.base), norm_index(int(m.group(2)), self.base)), c)
                if b.get("errorCode") == 401:
                    c = CAUSE_401_RE.sub(lambda m: "[%s/%s]" % (
                        norm_index(int(m.group(1)), self.base), norm_index(int(m.group(2)), self.base)), c)
                out[k] = c
            else:
                out[k] = v
        return out

    def response(self, resp, req):
        status, hdrs, data = resp
        out = {"status": status}
        if status == "TIMEOUT":
            return out
        for h in ("content-type", "location", "allow"):
            if h in hdrs:
                out[h] = self.text(hdrs[h]) if h == "location" else hdrs[h]
        if "x-etcd-index" in hdrs:
            try:
                out["x-etcd-index"] = norm_index(int(hdrs["x-etcd-index"]), self.base)
            except ValueError:
                out["x-etcd-index"] = hdrs["x-etcd-index"]
        for h in ("x-raft-index", "x-raft-term", "x-etcd-cluster-id"):
            out[h] = h in hdrs
        try:
            b = json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            b = None
        if isinstance(b, dict):
            out["body"] = self.body(b, req)
        else:
            out["body"] = self.text(data.decode("utf-8", "replace"))
        return out

    def text(self, s):
        """A Location, or a redirect's HTML: in-order names and index parameters in it. Only
        values that can be indexes of this sequence are normalised: an out-of-range parameter
        (e.g. prevIndex=2**64) was sent as it is to both servers and comes back as it is."""
        s = norm_path(s, self.base)

        def idx(m):
            v = int(m.group(2))
            return "%s=%s" % (m.group(1), norm_index(v, self.base) if v < 1 << 32 else v)
        return QUERY_IDX_RE.sub(idx, s)


def parse_time(s):
    m = RFC3339_RE.match(s) if isinstance(s, str) else None
    if not m:
        return None
    y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
    t = calendar.timegm((y, mo, d, h, mi, sec, 0, 0, 0)) + float(m.group(7) or 0)
    tz = m.group(8)
    if tz != "Z":
        off = int(tz[1:3]) * 3600 + int(tz[4:6]) * 60
        t -= off if tz[0] == "+" else -off
    return t


def differences(a, b, where="", out=None):
    """The paths where a and b differ; ttl within 2 s and expiration within 3 s count as equal
    (the two servers received the request at slightly different times)."""
    if out is None:
        out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = where + "." + k if where else k
            if k not in a or k not in b:
                out.append("%s: %s vs %s" % (p, json.dumps(a.get(k, "<absent>")),
                                             json.dumps(b.get(k, "<absent>"))))
            elif k == "ttl" and isinstance(a[k], int) and isinstance(b[k], int):
                if abs(a[k] - b[k]) > 2:
                    out.append("%s: %s vs %s" % (p, a[k], b[k]))
            elif k == "expiration":
                ta, tb = parse_time(a[k]), parse_time(b[k])
                if ta is None or tb is None or abs(ta - tb) > 3.0:
                    out.append("%s: %r vs %r" % (p, a[k], b[k]))
            else:
                differences(a[k], b[k], p, out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            differences(x, y, "%s[%d]" % (where, i), out)
    elif a != b or type(a) != type(b):
        out.append("%s: %s vs %s" % (where, json.dumps(a, ensure_ascii=False),
                                     json.dumps(b, ensure_ascii=False)))
    return out


# ------------------------------------------------------------------------------ test set-up
def env_seeds(var, default):
    """The seeds a comma-separated environment variable names (a replay), else DEFAULT."""
    env = os.environ.get(var, "").strip()
    return [int(x) for x in env.split(",") if x.strip()] if env else default


def etcd_and_server(make_server, why):
    """A fresh etcd 3.4 (the reference) and a fresh server under test; skipped when the
    target is etcd itself (WHY says what comparing etcd with itself would not show)."""
    import cluster
    if cluster.target() == "etcd":
        import pytest
        pytest.skip("etcd against itself: " + why)
    return make_server(kind="etcd", name="ref"), make_server()


# ------------------------------------------------------------------------------ documented etcd bugs
def note_stale_dir(ref_port, req, body, base, stale):
    """etcd bug 2: after a directory's TTL update (a PUT answered with action update on a
    directory), etcd keeps the directory's old modifiedIndex stored. BODY is etcd's normalised
    answer; the directory's (key, createdIndex) goes into STALE. Returns True when it did."""
    if req.method != "PUT" or not isinstance(body, dict) or body.get("action") != "update":
        return False
    node = body.get("node")
    if node is None:    # noValueOnSuccess: ask etcd what was updated
        st, _, data = send(ref_port, Req("GET", req.key), base)
        node = Normalizer(base, set()).node(json.loads(data).get("node"), False) \
            if st == 200 else None
    if isinstance(node, dict) and node.get("dir"):
        stale.add((node.get("key"), node.get("createdIndex")))
        return True
    return False



def is_below(key, d):
    return d == "/" and key != "/" or key.startswith(d + "/")


def hidden_between(watched, key):
    rest = key[len(watched):] if watched != "/" else key
    return any(c.startswith("_") for c in rest.split("/") if c)


def etcd_watch_bug(req, etcd_norm):
    """Which documented etcd 3.4 history-scan bug explains etcd's watch answer, if any:
    3 (an ancestor-delete match by raw string prefix) or 4 (hidden keys not skipped)."""
    b = etcd_norm.get("body")
    if not isinstance(b, dict) or not isinstance(b.get("node"), dict):
        return None
    key = b["node"].get("key")
    watched = key_str(req.key)
    if not isinstance(key, str):
        return None
    prev = b.get("prevNode") or {}
    if b.get("action") in ("delete", "expire") and prev.get("dir") and key != watched \
            and watched.startswith(key) and not is_below(watched, key):
        return 3
    if req.flag("recursive") and is_below(key, watched) and hidden_between(watched, key):
        return 4
    return None


# ------------------------------------------------------------------------------ generator
class Generator:
    """Seeded request generator. It learns from etcd's answers (learn()) which keys, values
    and indexes exist, so that conditions and watches hit something often enough."""

    def __init__(self, seed):
        self.rnd = random.Random(seed)
        self.pool = []          # key templates seen in answers
        self.mod = {}           # key template -> normalised modifiedIndex last seen
        self.events = []        # (normalised index, key template) of history events
        self.queues = [("a",), ("q",), ()]

    # ---- helpers
    def pick(self, seq):
        return self.rnd.choice(seq)

    def chance(self, p):
        return self.rnd.random() < p

    def fresh_key(self):
        r = self.rnd
        k = [self.pick(LEVEL1)]
        depth = r.choices([1, 2, 3], [3, 4, 3])[0]
        if depth >= 2:
            k.append(self.pick(LEVEL2))
        if depth >= 3:
            k.append(self.pick(LEVEL3))
        if self.chance(0.04):
            k[-1] = self.pick(RARE)
        return tuple(k)

    def key(self):
        if self.pool and self.chance(0.5):
            k = self.pick(self.pool)
            if k and self.chance(0.15):
                k = k[:-1] or k    # its parent
            return k
        return self.fresh_key()

    def ttl(self):
        return str(self.rnd.randint(1000, 100000))

    def value(self):
        return self.pick(VALUES)

    def index_ref(self, key):
        """prevIndex: the key's modifiedIndex as last seen, a wrong one, 0, or garbage."""
        r = self.rnd.random()
        m = self.mod.get(key)
        if r < 0.45 and m is not None:
            return ("idx", m)
        if r < 0.75:
            return ("idx", max(1, (m or 3) + self.rnd.randint(-3, 3)))
        if r < 0.85:
            return "0"
        return self.pick(["abc", "-1", "1.0", "", "+1", "18446744073709551616"])

    def split(self, method, params):
        """Spread parameters over query and form (PUT and POST bodies only)."""
        if method not in ("PUT", "POST") or self.chance(0.35):
            return params, None
        if self.chance(0.15) and params:
            # one name in both: the body wins
            name, v = self.pick(params)
            return [(name, "q-" + v if isinstance(v, str) else v)], params
        return [], params

    # ---- request kinds
    def op(self):
        kinds = [("get", 16), ("set", 18), ("cond", 14), ("refresh", 5), ("dir", 7), ("post", 8),
                 ("delete", 12), ("bad", 5), ("watch", 9), ("root", 3), ("variant", 4), ("head", 2),
                 ("method", 1)]
        kind = self.rnd.choices([k for k, _ in kinds], [w for _, w in kinds])[0]
        req = getattr(self, "op_" + kind)()
        req.kind = kind
        return req

    def op_get(self):
        q = []
        for name, p in (("recursive", 0.4), ("sorted", 0.4), ("quorum", 0.2)):
            if self.chance(p):
                q.append((name, self.pick(TRUE if self.chance(0.85) else FALSE)))
        return Req("GET", self.key(), q)

    def op_set(self):
        p = []
        if self.chance(0.9):
            p.append(("value", self.value()))
        if self.chance(0.3):
            p.append(("ttl", self.ttl()))
        elif self.chance(0.1):
            p.append(("ttl", ""))
        if self.chance(0.1):
            p.append(("noValueOnSuccess", "true"))
        q, f = self.split("PUT", p)
        return Req("PUT", self.key(), q, f)

    def op_cond(self):
        key = self.key()
        p = []
        if self.chance(0.85):
            p.append(("value", self.value()))
        r = self.rnd.random()
        if r < 0.35:
            p.append(("prevExist", self.pick(TRUE) if self.chance(0.6) else self.pick(FALSE)))
        if self.chance(0.4):
            p.append(("prevValue", self.value() or "v1"))
        if self.chance(0.4):
            p.append(("prevIndex", self.index_ref(key)))
        if not any(n in ("prevValue", "prevIndex", "prevExist") for n, _ in p):
            p.append(("prevExist", "true"))
        if self.chance(0.2):
            p.append(("ttl", self.pick([self.ttl(), ""])))
        if self.chance(0.07):
            p.append(("dir", "true"))
        if self.chance(0.05):
            p.append(("noValueOnSuccess", "true"))
        self.rnd.shuffle(p)
        q, f = self.split("PUT", p)
        return Req("PUT", key, q, f)

    def op_refresh(self):
        p = [("refresh", self.pick(TRUE))]
        r = self.rnd.random()
        if r < 0.85:
            p.append(("ttl", self.ttl()))
        elif r < 0.93:
            p.append(("ttl", ""))
        if self.chance(0.15):
            p.append(("value", self.pick(["", "v1"])))
        if self.chance(0.4):
            p.append(("prevExist", "true"))
        if self.chance(0.15):
            p.append(("dir", "true"))
        if self.chance(0.15):
            p.append(("prevValue", self.value() or "v1"))
        q, f = self.split("PUT", p)
        return Req("PUT", self.key(), q, f)

    def op_dir(self):
        p = [("dir", self.pick(TRUE))]
        if self.chance(0.4):
            p.append(("ttl", self.pick([self.ttl(), self.ttl(), ""])))
        if self.chance(0.35):
            p.append(("prevExist", self.pick(TRUE) if self.chance(0.6) else self.pick(FALSE)))
        if self.chance(0.1):
            p.append(("value", self.pick(["", "v1"])))
        q, f = self.split("PUT", p)
        return Req("PUT", self.key(), q, f)

    def op_post(self):
        p = []
        if self.chance(0.8):
            p.append(("value", self.value()))
        if self.chance(0.2):
            p.append(("ttl", self.ttl()))
        if self.chance(0.1):
            p.append(("dir", "true"))
        if self.chance(0.05):
            p.append(("prevExist", "false"))
        key = self.pick(self.queues) if self.chance(0.6) else self.key()
        q, f = self.split("POST", p)
        return Req("POST", key, q, f)

    def op_delete(self):
        key = self.key()
        q = []
        r = self.rnd.random()
        if r < 0.25:
            q.append(("recursive", self.pick(TRUE)))
        elif r < 0.45:
            q.append(("dir", self.pick(TRUE)))
        elif r < 0.6:
            q.append(("prevValue", self.value() or "v1"))
        elif r < 0.75:
            q.append(("prevIndex", self.index_ref(key)))
        if self.chance(0.1):
            q.append(("prevExist", self.pick(TRUE + FALSE)))
        return Req("DELETE", key, q)

    def op_bad(self):
        method = self.pick(["GET", "PUT", "PUT", "POST", "DELETE"])
        bad = self.pick([("ttl", "abc"), ("ttl", "-1"), ("ttl", "1.5"), ("ttl", "18446744073709551616"),
                         ("prevIndex", "-1"), ("prevIndex", "x"), ("waitIndex", "x"), ("waitIndex", "-1"),
                         ("recursive", "maybe"), ("sorted", ""), ("dir", "yes"), ("quorum", "2"),
                         ("prevExist", "yes"), ("prevExist", ""), ("refresh", "maybe"), ("prevValue", ""),
                         ("noValueOnSuccess", "x"), ("wait", "true"), ("stream", "x")])
        p = [bad]
        if self.chance(0.5):
            p.append(("value", self.value()))
        if self.chance(0.3):
            p.append(self.pick([("ttl", "abc"), ("prevExist", "maybe"), ("recursive", "x"),
                                ("refresh", "true")]))
        self.rnd.shuffle(p)
        if method == "GET" and any(n == "wait" for n, _ in p):
            p.append(("waitIndex", "abc"))   # never a real watch here
        q, f = self.split(method, p)
        return Req(method, self.key(), q, f)

    def op_watch(self):
        if not self.events:
            return self.op_get()
        idx, key = self.pick(self.events[-40:])
        q = [("wait", "true")]
        watched = key
        # an ancestor ("/" included) with no hidden name between it and the key: the event
        # itself then matches a recursive watch there too, so the history always answers
        ups = [n for n in range(len(key)) if not any(str(c).startswith("_") for c in key[n:])]
        if ups and self.chance(0.5):
            watched = key[:self.pick(ups)]
            q.append(("recursive", "true"))
        elif self.chance(0.3):
            q.append(("recursive", "true"))
        q.append(("waitIndex", ("idx", max(1, idx - self.rnd.randint(0, 8)))))
        self.rnd.shuffle(q)
        return Req("GET", watched, q)

    def op_root(self):
        m = self.pick(["GET", "GET", "PUT", "DELETE", "POST"])
        q = []
        if m == "GET":
            if self.chance(0.5):
                q.append(("recursive", "true"))
            if self.chance(0.5):
                q.append(("sorted", "true"))
        elif m == "PUT":
            q = self.pick([[("value", "x")], [("dir", "true")], [("refresh", "true"), ("ttl", "2000")],
                           [("prevExist", "true"), ("value", "x")]])
        elif m == "DELETE":
            q = self.pick([[], [("recursive", "true")], [("dir", "true")], [("prevValue", "x")]])
        else:
            q = [("value", "r")]
        return Req(m, (), q, variant="noslash" if self.chance(0.3) else None)

    def op_variant(self):
        base = self.pick([self.op_get, self.op_set, self.op_delete, self.op_cond])()
        base.variant = self.pick(["trailing", "trailing", "double", "double?", "dot", "dotdot"])
        return base

    def op_head(self):
        r = self.op_get()
        r.method = "HEAD"
        if self.chance(0.3):
            r.variant = self.pick(["trailing", "double", "dot"])
        return r

    def op_method(self):
        return Req(self.pick(["PATCH", "OPTIONS"]), self.key(), [])

    # ---- learning from etcd's answer
    def _remember(self, k):
        if k is not None and k not in self.pool:
            self.pool.append(k)

    def learn(self, req, resp, base):
        status, _, data = resp
        if status == "TIMEOUT" or not data:
            return
        try:
            b = json.loads(data.decode("utf-8"))
        except ValueError:
            return
        if not isinstance(b, dict):
            return

        def walk(n):
            if not isinstance(n, dict):
                return
            k = key_tmpl(n.get("key"), base) if n.get("key") else None
            if k:
                self._remember(k)
                if isinstance(n.get("modifiedIndex"), int):
                    self.mod[k] = n["modifiedIndex"] - base
            for c in n.get("nodes") or []:
                walk(c)
        walk(b.get("prevNode"))
        walk(b.get("node"))
        node = b.get("node")
        if req.method in ("PUT", "POST", "DELETE") and status in (200, 201) and isinstance(node, dict) \
                and node.get("key") and not req.flag("refresh"):
            k = key_tmpl(node["key"], base)
            self.events.append((node["modifiedIndex"] - base, k))
            if req.method == "POST" and self.chance(0.5):
                self.queues.append(k)      # POST below an in-order key next time


def bug1_target(req):
    """True when req is `dir=true&prevExist=true` without prevValue/prevIndex, which etcd 3.4
    applies to a *file* as an update that blanks it (documented bug 1)."""
    p = req.params()
    if req.method != "PUT" or req.variant not in (None, "trailing"):
        return False
    pi = p.get("prevIndex")
    return req.flag("dir") and req.flag("prevExist") and "prevValue" not in p and \
        (pi is None or pi == "0")


# ------------------------------------------------------------------------------ clusters
class RoundRobin:
    """A 3-member quorumd cluster as the server under test: each request goes to the next
    member in turn (writes through followers are forwarded, quorum reads ask the leader), and
    after each answer every member is waited for until it has applied as much as the one that
    answered, so that the next request, whichever member gets it, sees what etcd's one member
    does."""

    def __init__(self, members, auth=None):
        self.members = members
        self.auth = auth  # headers for the index reads (root's, once auth is on)
        self.turn = 0
        self.last = members[0]

    def _next(self):
        self.last = self.members[self.turn % len(self.members)]
        self.turn += 1
        return self.last

    def _index(self, m):
        _, hdrs, _ = m.request("GET", "/v2/keys/", headers=self.auth)
        return int(hdrs["x-etcd-index"])

    def request(self, method, path, body=None, headers=None, timeout=5.0):
        """Server.request on the next member, then settle (as Server.request returns)."""
        answer = self._next().request(method, path, body=body, headers=headers, timeout=timeout)
        self.settle()
        return answer

    @property
    def port(self):
        return self._next().client_port

    def index(self):
        return self._index(self.members[0])

    def wait_ready(self):
        """Each member serves keys once its own publication is applied."""
        for m in self.members:
            deadline = time.monotonic() + 10
            while m.keys("GET", "/")[0] != 200:
                assert time.monotonic() < deadline, "%s does not serve keys" % m.name
                time.sleep(0.05)
        self.settle()

    def settle(self):
        want = self._index(self.last)
        for m in self.members:
            deadline = time.monotonic() + 10
            while self._index(m) < want:
                assert time.monotonic() < deadline, "%s stuck below index %d" % (m.name, want)
                time.sleep(0.005)
