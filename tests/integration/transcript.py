"""transcript: normalising command transcripts (etcdctl, quorumctl) so that runs against
different servers can be compared exactly, and printing them for failure reports."""
import json
import re


def normaliser(srv, base, first=()):
    """A function that rewrites a transcript (strings, tuples, lists, dicts) so that two runs
    on different servers compare equal: indexes relative to base, URLs, member ids,
    expirations and TTLs (to 5 s). `first`: (pattern, function) pairs applied before the rest."""
    def rel(n):
        n = int(n)
        if n == 0:
            return "0"
        d = n - base
        return "{B%+d}" % d if d else "{B}"

    def rel20(m):
        n = int(m.group(0))
        d = n - base
        return "{B%+d:20}" % d if d else "{B:20}"

    # Member ids: hex without zero padding (etcd's types.ID), usually 16 digits.
    ids = set()
    st, _, body = srv.request("GET", "/v2/members")
    if st == 200:
        for mem in json.loads(body).get("members", []):
            ids.add(mem["id"])
            ids.add("%x" % int(mem["id"], 16))
    subs = list(first) + [
        (re.escape(srv.url), lambda m: "<client-url>"),
        (re.escape(srv.peer_url), lambda m: "<peer-url>"),
        (r"(?<![0-9])\d{20}(?![0-9])", rel20),
        (r"\[(\d+)\]", lambda m: "[%s]" % rel(m.group(1))),
        # compare failure on an index (the script only compares values that are not numbers)
        (r"\[(\d+) != (\d+)\]", lambda m: "[%s != %s]" % (rel(m.group(1)), rel(m.group(2)))),
        (r"(Created-Index|Modified-Index|Index): (\d+)",
         lambda m: "%s: %s" % (m.group(1), rel(m.group(2)))),
        (r'"(createdIndex|modifiedIndex|index)":(\d+)',
         lambda m: '"%s":%s' % (m.group(1), rel(m.group(2)))),
        (r"ETCD_WATCH_MODIFIED_INDEX=(\d+)", lambda m: "ETCD_WATCH_MODIFIED_INDEX=%s" % rel(m.group(1))),
        (r"\b[0-9a-f]{16}\b", lambda m: "<id>"),
    ] + [(r"\b%s\b" % i, lambda m: "<id>") for i in sorted(ids, key=len, reverse=True)] + [
        (r'"expiration":"[^"]*"', lambda m: '"expiration":"<expiration>"'),
        # TTLs: compared with a tolerance by rounding to the nearest multiple of 5 s
        (r"TTL: (\d+)", lambda m: "TTL: ~%d" % (5 * round(int(m.group(1)) / 5))),
        (r'"ttl":(\d+)', lambda m: '"ttl":~%d' % (5 * round(int(m.group(1)) / 5))),
    ]

    def norm(x):
        if isinstance(x, str):
            for pat, fn in subs:
                x = re.sub(pat, fn, x)
            return x
        if isinstance(x, tuple):
            return tuple(norm(v) for v in x)
        if isinstance(x, list):
            return [norm(v) for v in x]
        if isinstance(x, dict):
            return {k: norm(v) for k, v in x.items()}
        return x
    return norm


def fmt(res):
    if isinstance(res, tuple) and len(res) == 3:
        rc, out, err = res
        return "rc=%s\n  stdout: %r\n  stderr: %r" % (rc, out, err)
    if isinstance(res, dict):
        return "\n".join("%s: %s" % (k, fmt(v)) for k, v in res.items())
    if isinstance(res, list):
        return "\n".join(fmt(v) for v in res)
    return repr(res)
