"""Bad input: invalid v2 parameters and malformed HTTP.

Every expected value here was taken from real etcd 3.4.23 (`QUORUM_TARGET=etcd` runs this very
file against it), except rows marked `etcd_bug`: those are etcd 3.4 bugs listed in
v2-api.md section 10, where the table expects the sensible behaviour; against real etcd such a
row is checked to still show the bug (so the mark stays true) instead of passing.

For every rejected request the test also checks that nothing was written: the store index
(X-Etcd-Index of a read) is unchanged and the row's key is absent, or unchanged when the row
created it beforehand.

The tables are run by one test each, which reports every failing row at once (ctest runs
pytest with -x).
"""
import re
import socket
import time
import urllib.parse

import pytest

from rawhttp import Closed, RawConn, build, request

ERRORS = {
    100: (404, "Key not found"),
    101: (412, "Compare failed"),
    102: (403, "Not a file"),
    104: (400, "Not a directory"),
    105: (412, "Key already exists"),
    107: (400, "Root is read only"),
    108: (403, "Directory not empty"),
    201: (400, "PrevValue is Required in POST form"),
    202: (400, "The given TTL in POST form is not a number"),
    203: (400, "The given index in POST form is not a number"),
    209: (400, "Invalid field"),
    210: (400, "Invalid POST form"),
    211: (400, "Value provided on refresh"),
    212: (400, "A TTL must be provided on refresh"),
}

WAIT_GET_ONLY = '"wait" can only be used with GET requests'
TTL = 'invalid value for "ttl"'
PREV_INDEX = 'invalid value for "prevIndex"'
WAIT_INDEX = 'invalid value for "waitIndex"'


def inv(name):
    return 'invalid value for "%s"' % name


class P:
    """One bad-parameter row.

    path: '{K}' is the row's key (/bad-<id>/k); query/form: dicts or lists of pairs, or raw
    strings (sent as written); setup: create {K} with value "orig" first; code: expected v2
    errorCode; cause: exact expected cause ('{K}', '{D}' (the row's top directory) and
    '{M}'/'{M+n}' (the setup node's modifiedIndex) are expanded); etcd_bug: why real etcd
    differs (v2-api.md section 10)."""

    def __init__(self, id, method, code, cause, path="{K}", query=None, form=None, setup=False,
                 etcd_bug=None):
        self.id, self.method, self.code, self.cause = id, method, code, cause
        self.path, self.query, self.form, self.setup = path, query, form, setup
        self.etcd_bug = etcd_bug

    @property
    def validation(self):
        """Validation errors (2xx codes) report index 0 in the body and in X-Etcd-Index."""
        return 200 <= self.code < 300


ROWS = [
    # ---- ttl (202)
    P("ttl_abc", "PUT", 202, TTL, form={"value": "x", "ttl": "abc"}),
    P("ttl_negative", "PUT", 202, TTL, form={"value": "x", "ttl": "-1"}),
    P("ttl_fraction", "PUT", 202, TTL, query={"value": "x", "ttl": "1.5"}),
    P("ttl_plus_sign", "PUT", 202, TTL, form={"value": "x", "ttl": "+5"}),
    P("ttl_leading_space", "PUT", 202, TTL, form={"value": "x", "ttl": " 5"}),
    P("ttl_exponent", "PUT", 202, TTL, form={"value": "x", "ttl": "1e3"}),
    P("ttl_2_pow_64", "PUT", 202, TTL, form={"value": "x", "ttl": "18446744073709551616"}),
    P("ttl_ns_overflow", "PUT", 202, TTL, form={"value": "x", "ttl": "99999999999"},
      etcd_bug="a ttl whose nanoseconds overflow int64 makes the key permanent instead of 202"),
    P("ttl_abc_on_post", "POST", 202, TTL, form={"value": "x", "ttl": "abc"}),
    P("ttl_abc_on_existing", "PUT", 202, TTL, form={"value": "x", "ttl": "abc"}, setup=True),
    # ---- prevIndex / waitIndex (203)
    P("prevIndex_negative", "PUT", 203, PREV_INDEX, form={"value": "x", "prevIndex": "-1"}),
    P("prevIndex_float", "PUT", 203, PREV_INDEX, form={"value": "x", "prevIndex": "1.0"}),
    P("prevIndex_2_pow_64", "PUT", 203, PREV_INDEX,
      form={"value": "x", "prevIndex": "18446744073709551616"}),
    P("prevIndex_abc_on_delete", "DELETE", 203, PREV_INDEX, query={"prevIndex": "abc"}, setup=True),
    P("waitIndex_x", "GET", 203, WAIT_INDEX, query={"wait": "true", "waitIndex": "x"}),
    P("waitIndex_negative", "GET", 203, WAIT_INDEX, query={"wait": "true", "waitIndex": "-1"}),
    P("waitIndex_bad_without_wait", "GET", 203, WAIT_INDEX, query={"waitIndex": "abc"}),
    # ---- booleans (209)
    P("recursive_maybe", "GET", 209, inv("recursive"), query={"recursive": "maybe"}),
    P("recursive_empty", "GET", 209, inv("recursive"), query="recursive="),
    P("recursive_yes_on_delete", "DELETE", 209, inv("recursive"), query={"recursive": "yes"},
      setup=True),
    P("sorted_2", "GET", 209, inv("sorted"), query={"sorted": "2"}),
    P("wait_maybe", "GET", 209, inv("wait"), query={"wait": "maybe"}),
    P("dir_maybe", "PUT", 209, inv("dir"), form={"dir": "maybe"}),
    P("quorum_x", "GET", 209, inv("quorum"), query={"quorum": "x"}),
    P("stream_x", "GET", 209, inv("stream"), query={"wait": "true", "stream": "x"}),
    P("noValueOnSuccess_x", "PUT", 209, inv("noValueOnSuccess"),
      form={"value": "x", "noValueOnSuccess": "x"}),
    P("prevExist_yes", "PUT", 209, "invalid value for prevExist", form={"value": "x", "prevExist": "yes"}),
    P("prevExist_empty", "PUT", 209, "invalid value for prevExist", query="value=x&prevExist="),
    P("refresh_maybe", "PUT", 209, "invalid value for refresh", form={"refresh": "maybe", "ttl": "5"},
      setup=True),
    # ---- wait on a non-GET (209)
    P("wait_on_put", "PUT", 209, WAIT_GET_ONLY, form={"value": "x", "wait": "true"}),
    P("wait_on_post", "POST", 209, WAIT_GET_ONLY, form={"value": "x", "wait": "true"}),
    P("wait_on_delete", "DELETE", 209, WAIT_GET_ONLY, query={"wait": "true"}, setup=True),
    # ---- prevValue= (201)
    P("prevValue_empty", "PUT", 201, '"prevValue" cannot be empty', form="value=x&prevValue=",
      setup=True),
    P("prevValue_empty_on_delete", "DELETE", 201, '"prevValue" cannot be empty', query="prevValue=",
      setup=True),
    # ---- refresh (211, 212)
    P("refresh_with_value", "PUT", 211, "A value was provided on a refresh",
      form={"refresh": "true", "value": "x", "ttl": "5"}, setup=True),
    P("refresh_without_ttl", "PUT", 212, "No TTL value set", form={"refresh": "true"}, setup=True),
    P("refresh_empty_ttl", "PUT", 212, "No TTL value set", form="refresh=true&ttl=", setup=True),
    P("refresh_missing_key_no_ttl", "PUT", 212, "No TTL value set", form={"refresh": "true"}),
    # ---- validation order (first failure wins)
    P("order_prevIndex_first", "GET", 203, PREV_INDEX,
      query={"prevIndex": "x", "waitIndex": "y", "wait": "true", "recursive": "z"}),
    P("order_waitIndex_before_bools", "GET", 203, WAIT_INDEX, query={"waitIndex": "x", "recursive": "z"}),
    P("order_recursive_before_sorted", "GET", 209, inv("recursive"), query={"sorted": "x", "recursive": "x"}),
    P("order_stream_before_wait_on_put", "PUT", 209, inv("stream"), form={"stream": "x", "wait": "true"}),
    P("order_wait_put_before_prevValue", "PUT", 209, WAIT_GET_ONLY, form="wait=true&prevValue="),
    P("order_prevValue_before_ttl", "PUT", 201, '"prevValue" cannot be empty', form="prevValue=&ttl=abc"),
    P("order_noValueOnSuccess_before_ttl", "PUT", 209, inv("noValueOnSuccess"),
      form={"noValueOnSuccess": "x", "ttl": "abc"}),
    P("order_ttl_before_prevExist", "PUT", 202, TTL, form={"ttl": "abc", "prevExist": "yes"}),
    P("order_prevExist_before_refresh", "PUT", 209, "invalid value for prevExist",
      form={"prevExist": "yes", "refresh": "maybe"}),
    P("body_wins_over_query", "PUT", 202, TTL, query={"value": "q", "ttl": "5"},
      form={"value": "x", "ttl": "abc"}),
    P("head_bad_bool", "HEAD", 209, None, query={"recursive": "maybe"}),
    # ---- malformed encodings (210)
    P("bad_escape_in_query", "PUT", 210, 'invalid URL escape "%zz"', query="value=%zz"),
    P("bad_escape_in_body", "PUT", 210, 'invalid URL escape "%zz"', form="value=%zz"),
    P("semicolon_in_query", "PUT", 210, "invalid semicolon separator in query", query="value=1;2"),
    # ---- the root (107; not a validation error: the current index)
    P("put_root", "PUT", 107, "/", path="/v2/keys/", form={"value": "x"}),
    P("put_root_no_slash", "PUT", 107, "/", path="/v2/keys", form={"value": "x"}),
    P("put_root_dir", "PUT", 107, "/", path="/v2/keys/", form={"dir": "true"}),
    P("put_root_create", "PUT", 107, "/", path="/v2/keys/", form={"value": "x", "prevExist": "false"}),
    P("delete_root", "DELETE", 107, "/", path="/v2/keys/"),
    P("delete_root_recursive", "DELETE", 107, "/", path="/v2/keys", query={"recursive": "true"}),
    # ---- semantic errors that must not write either
    P("post_below_file", "POST", 104, "{K}", path="{K}/sub", form={"value": "x"}, setup=True),
    P("put_below_file", "PUT", 104, "{K}", path="{K}/sub/deeper", form={"value": "x"}, setup=True),
    P("create_existing", "PUT", 105, "{K}", form={"value": "x", "prevExist": "false"}, setup=True),
    P("update_missing", "PUT", 100, "{D}", form={"value": "x", "prevExist": "true"}),
    P("cas_wrong_value", "PUT", 101, "[nope != orig]", form={"value": "x", "prevValue": "nope"},
      setup=True),
    P("cad_wrong_index", "DELETE", 101, "[{M+1000} != {M}]", query={"prevIndex": "{M+1000}"},
      setup=True),
    P("dir_onto_file_with_prevExist", "PUT", 102, "{K}", form={"dir": "true", "prevExist": "true"},
      setup=True,
      etcd_bug="dir=true&prevExist=true on a file is accepted as an update that blanks the value"),
]


# --------------------------------------------------------------------------- helpers
def expand(text, row_key, row_dir, m):
    if text is None:
        return None

    def rep(mo):
        return str(m + int(mo.group(1) or 0))
    text = re.sub(r"\{M([+-]\d+)?\}", rep, text)
    return text.replace("{K}", row_key).replace("{D}", row_dir)


def encode(x, row_key, row_dir, m):
    if x is None:
        return None
    if isinstance(x, str):
        return expand(x, row_key, row_dir, m)
    items = x.items() if isinstance(x, dict) else x
    return urllib.parse.urlencode([(k, expand(v, row_key, row_dir, m)) for k, v in items])


def store_index(srv):
    r = request(srv, "GET", "/v2/keys/")
    assert r.status == 200, r
    return int(r.header("x-etcd-index"))


def get_node(srv, key):
    r = request(srv, "GET", "/v2/keys" + urllib.parse.quote(key))
    return r.status, (r.json() if r.body else None)


def run_param_row(srv, row):
    """Returns a list of problems (empty when the row behaves as expected)."""
    problems = []
    top = "/bad-" + row.id
    key = top + "/k"
    m = 0
    setup_node = None
    if row.setup:
        r = request(srv, "PUT", "/v2/keys" + key, form={"value": "orig"})
        assert r.status in (200, 201), "setup failed: %r" % r
        setup_node = r.json()["node"]
        m = setup_node["modifiedIndex"]
    path = expand(row.path, key, top, m)
    if path.startswith("/bad-"):
        path = "/v2/keys" + path
    q = encode(row.query, key, top, m)
    if q:
        path += "?" + q
    body = encode(row.form, key, top, m)
    headers = {}
    if body is not None:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        body = body.encode()
    before = store_index(srv)

    resp = request(srv, row.method, path, headers=headers, body=body)

    status, message = ERRORS[row.code]
    want_index = 0 if row.validation or row.code == 210 else before
    if resp.status != status:
        problems.append("status %s, expected %s" % (resp.status, status))
    if resp.header("content-type") != "application/json":
        problems.append("Content-Type %r, expected 'application/json'" % resp.header("content-type"))
    if resp.header("x-etcd-index") != str(want_index):
        problems.append("X-Etcd-Index %r, expected %r" % (resp.header("x-etcd-index"), str(want_index)))
    for h in ("x-raft-index", "x-raft-term"):
        if resp.has(h):
            problems.append("error response carries %s" % h)
    if row.method == "HEAD":
        if resp.body:
            problems.append("HEAD response has a body: %r" % resp.body[:200])
    else:
        want = {"errorCode": row.code, "message": message,
                "cause": expand(row.cause, key, top, m), "index": want_index}
        try:
            got = resp.json()
        except ValueError:
            got = resp.body
        if got != want:
            problems.append("body %r\n      expected %r" % (got, want))
        if not resp.body.endswith(b"}\n"):
            problems.append("body does not end with a newline: %r" % resp.body[-20:])

    # Nothing was written.
    after = store_index(srv)
    if after != before:
        problems.append("store index moved from %d to %d: something was written" % (before, after))
    st, node = get_node(srv, key)
    if row.setup:
        if st != 200 or node["node"] != setup_node:
            problems.append("the existing key changed: %s %r (was %r)" % (st, node, setup_node))
    elif path.startswith("/v2/keys/bad-"):
        if st != 404:
            problems.append("the key exists afterwards: %s %r" % (st, node))
    st, node = get_node(srv, key + "/sub")
    if st < 400:
        problems.append("%s/sub exists afterwards: %r" % (key, node))
    return problems


# --------------------------------------------------------------------------- parameter table
@pytest.mark.time_limit(120)
def test_bad_parameters_table(module_server):
    on_etcd = module_server.kind == "etcd"
    failures = []
    for row in ROWS:
        try:
            problems = run_param_row(module_server, row)
        except (AssertionError, OSError, Closed, ValueError) as e:
            problems = ["%s: %s" % (type(e).__name__, e)]
        if row.etcd_bug and on_etcd:
            # Real etcd is expected to show the documented bug, not the sensible answer.
            if not problems:
                failures.append("[%s] marked as an etcd bug (%s) but etcd answered the sensible "
                                "way: drop the mark" % (row.id, row.etcd_bug))
            continue
        if problems:
            failures.append("[%s] %s %s%s\n    %s" % (
                row.id, row.method, row.path, " (etcd 3.4 bug row: %s)" % row.etcd_bug
                if row.etcd_bug else "", "\n    ".join(problems)))
    assert not failures, "%d of %d rows failed:\n%s" % (len(failures), len(ROWS), "\n".join(failures))


# --------------------------------------------------------------------------- malformed HTTP
class Raw:
    """A raw request and what must come back.

    expect:
      ("status", N)           an HTTP response with status N, then the connection closes
      ("v2error", code, cause) a v2 JSON error (cause None: any non-empty string), then close
      ("closed_or", {N,...})  either no response at all (connection closed) or one of the
                              statuses, then close
      ("ok", N, value)        success N, the key holds value afterwards (written)
    """

    def __init__(self, id, data, expect, key=None, note=""):
        self.id, self.data, self.expect, self.key, self.note = id, data, expect, key, note


def form_put(key, body, extra=b"", path=None):
    return (b"PUT " + (path or (b"/v2/keys" + key)) + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n" + extra + b"\r\n" + body)


def cl(n):
    return b"Content-Length: %d\r\n" % n


LONG_KEY = b"/raw-longkey/" + b"k" * 100000
RAW_ROWS = [
    Raw("garbage_request_line", b"GARBAGE\r\n\r\n", ("closed_or", {400})),
    Raw("request_line_without_version", b"HELLO WORLD\r\n\r\n", ("closed_or", {400})),
    Raw("unknown_http_version", b"GET /v2/keys/ HTTP/9.9\r\nHost: x\r\n\r\n", ("closed_or", {400, 505})),
    Raw("empty_path", b"GET  HTTP/1.1\r\nHost: x\r\n\r\n", ("closed_or", {400})),
    Raw("binary_junk", bytes(range(256)) * 4 + b"\r\n\r\n", ("closed_or", {400})),
    Raw("header_without_colon", b"GET /v2/keys/ HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", ("status", 400)),
    Raw("header_name_with_space", b"GET /v2/keys/ HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", ("status", 400)),
    Raw("nul_in_header_value", b"GET /v2/keys/ HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", ("status", 400)),
    Raw("http11_without_host", b"GET /v2/keys/ HTTP/1.1\r\n\r\n", ("status", 400)),
    Raw("bad_content_length", form_put(b"/raw-badcl", b"value=1", b"Content-Length: abc\r\n"),
        ("status", 400), key="/raw-badcl"),
    Raw("negative_content_length", form_put(b"/raw-negcl", b"value=1", b"Content-Length: -7\r\n"),
        ("status", 400), key="/raw-negcl"),
    Raw("conflicting_content_lengths",
        form_put(b"/raw-dupcl", b"value=12", b"Content-Length: 7\r\nContent-Length: 8\r\n"),
        ("status", 400), key="/raw-dupcl"),
    Raw("unsupported_transfer_encoding",
        form_put(b"/raw-gzip", b"value=1", b"Transfer-Encoding: gzip\r\n"), ("status", 501), key="/raw-gzip"),
    Raw("bad_chunk_size", form_put(b"/raw-badchunk", b"ZZ\r\nvalue=1\r\n0\r\n\r\n",
                                   b"Transfer-Encoding: chunked\r\n"),
        ("v2error", 210, None), key="/raw-badchunk"),
    Raw("huge_chunk_size", form_put(b"/raw-hugechunk", b"FFFFFFFFFFFFFFFFFFFF\r\nvalue=5\r\n0\r\n\r\n",
                                    b"Transfer-Encoding: chunked\r\n"),
        ("v2error", 210, None), key="/raw-hugechunk"),
    Raw("bad_escape_in_path", b"GET /v2/keys/a%zz HTTP/1.1\r\nHost: x\r\n\r\n", ("status", 400)),
    Raw("header_over_1MiB",
        b"GET /v2/keys/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1100 * 1024) + b"\r\n\r\n",
        ("status", 431)),
    Raw("huge_key_name_100k", form_put(LONG_KEY, b"value=x", cl(7)), ("closed_or", {400, 414, 431}),
        key="/raw-longkey",
        note="etcd 3.4 closes the connection when the request line exceeds 4 KiB (its cmux "
             "sniffer); a 4xx answer is as good; either way nothing may be written"),
    Raw("key_of_5000_levels", form_put(b"/raw-deep" + b"/a" * 5000, b"value=x", cl(7)),
        ("closed_or", {414}), key="/raw-deep",
        note="10 KB of target: etcd closes the connection (request line over 4 KiB); quorumd "
             "answers 414 (its limit is 8 KiB: a key's storage grows with the square of its "
             "depth); nothing is written"),
    # accepted: these must work
    Raw("chunked_body", form_put(b"/raw-chunked", b"3\r\nval\r\n5\r\nue=hi\r\n0\r\n\r\n",
                                 b"Transfer-Encoding: chunked\r\n"), ("ok", 201, "hi"), key="/raw-chunked"),
    Raw("chunked_body_with_extension_and_trailer",
        form_put(b"/raw-chunked2", b"8;ext=1\r\nvalue=ab\r\n0\r\nX-Trailer: t\r\n\r\n",
                 b"Transfer-Encoding: chunked\r\n"), ("ok", 201, "ab"), key="/raw-chunked2"),
    Raw("lf_only_line_ends", b"PUT /v2/keys/raw-lf HTTP/1.1\nHost: x\nContent-Type: "
        b"application/x-www-form-urlencoded\nContent-Length: 7\n\nvalue=1", ("ok", 201, "1"), key="/raw-lf"),
    Raw("http10_without_host", b"PUT /v2/keys/raw-http10 HTTP/1.0\r\nContent-Type: "
        b"application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=1", ("ok", 201, "1"),
        key="/raw-http10"),
    Raw("header_of_70KiB", form_put(b"/raw-bighdr", b"value=1", cl(7) + b"X-Big: " + b"a" * (70 * 1024) + b"\r\n"),
        ("ok", 201, "1"), key="/raw-bighdr",
        note="etcd accepts headers up to Go's 1 MiB default; only larger ones get 431"),
    Raw("many_headers", form_put(b"/raw-manyhdr", b"value=1", cl(7) + b"".join(b"X-H%d: v\r\n" % i for i in range(3000))),
        ("ok", 201, "1"), key="/raw-manyhdr"),
    Raw("absolute_uri", b"PUT http://127.0.0.1/v2/keys/raw-abs HTTP/1.1\r\nHost: x\r\nContent-Type: "
        b"application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\nvalue=1", ("ok", 201, "1"), key="/raw-abs"),
    Raw("key_of_4000_bytes", form_put(b"/raw-4k/" + b"k" * 4000, b"value=x", cl(7)), ("ok", 201, "x"),
        key="/raw-4k/" + "k" * 4000),
    Raw("key_of_1900_levels", form_put(b"/raw-1900" + b"/a" * 1900, b"value=x", cl(7)), ("ok", 201, "x"),
        key="/raw-1900" + "/a" * 1900),
]


def run_raw_row(srv, row):
    problems = []
    before = store_index(srv)
    conn = RawConn.to(srv, timeout=10)
    resp = None
    try:
        try:
            conn.send(row.data)
        except (BrokenPipeError, ConnectionResetError):
            pass    # the server may close while we are still sending (huge requests)
        try:
            resp = conn.read_response(timeout=10)
        except Closed:
            resp = None
        except socket.timeout:
            problems.append("no response and no close within 10 s")
            return problems
        closed = conn.wait_closed(5.0) if row.expect[0] != "ok" else None
    finally:
        conn.close()

    kind = row.expect[0]
    if kind == "closed_or":
        if resp is not None and resp.status not in row.expect[1]:
            problems.append("answered %s %r, expected a close or one of %s" % (resp.status, resp.body[:200],
                                                                               sorted(row.expect[1])))
        if not closed:
            problems.append("connection left open after a malformed request")
    elif kind == "status":
        if resp is None:
            problems.append("connection closed without a response, expected %s" % row.expect[1])
        elif resp.status != row.expect[1]:
            problems.append("status %s %r, expected %s" % (resp.status, resp.body[:200], row.expect[1]))
        if not closed:
            problems.append("connection left open after a malformed request")
    elif kind == "v2error":
        code, cause = row.expect[1], row.expect[2]
        if resp is None:
            problems.append("connection closed without a response, expected v2 error %d" % code)
        else:
            st, msg = ERRORS[code]
            try:
                j = resp.json()
            except ValueError:
                j = None
            if resp.status != st or not isinstance(j, dict) or j.get("errorCode") != code \
                    or j.get("message") != msg or j.get("index") != 0 \
                    or not isinstance(j.get("cause"), str) or not j.get("cause") \
                    or (cause is not None and j.get("cause") != cause):
                problems.append("got %s %r, expected %d {errorCode: %d, message: %r, cause: %s, index: 0}"
                                % (resp.status, resp.body[:300], st, code, msg, cause or "<non-empty>"))
            if resp.header("x-etcd-index") != "0":
                problems.append("X-Etcd-Index %r, expected '0'" % resp.header("x-etcd-index"))
        if not closed:
            problems.append("connection left open after a malformed body")
    elif kind == "ok":
        if resp is None or resp.status != row.expect[1]:
            problems.append("got %r, expected %s" % (resp, row.expect[1]))
        else:
            st, node = get_node(srv, row.key)
            if st != 200 or node["node"].get("value") != row.expect[2]:
                problems.append("key %s afterwards: %s %r" % (row.key[:60], st, node))
        return problems

    after = store_index(srv)
    if after != before:
        problems.append("store index moved from %d to %d" % (before, after))
    if row.key:
        st, node = get_node(srv, row.key)
        if st != 404:
            problems.append("key %s exists afterwards: %r" % (row.key[:60], node))
    return problems


@pytest.mark.time_limit(180)
def test_malformed_http_table(module_server):
    failures = []
    for row in RAW_ROWS:
        try:
            problems = run_raw_row(module_server, row)
        except (AssertionError, OSError, Closed, ValueError) as e:
            problems = ["%s: %s" % (type(e).__name__, e)]
        # The server must survive every row.
        try:
            r = request(module_server, "GET", "/health", timeout=5)
            if r.status != 200:
                problems.append("GET /health afterwards: %s" % r.status)
        except (OSError, Closed) as e:
            problems.append("server unreachable afterwards: %r" % e)
            failures.append("[%s] %s" % (row.id, "; ".join(problems)))
            break
        if problems:
            failures.append("[%s]%s\n    %s" % (row.id, " (%s)" % row.note if row.note else "",
                                                "\n    ".join(problems)))
    assert not failures, "%d of %d raw rows failed:\n%s" % (len(failures), len(RAW_ROWS),
                                                           "\n".join(failures))


# --------------------------------------------------------------------------- request size
@pytest.mark.time_limit(120)
def test_request_body_sizes(module_server):
    srv = module_server
    # Under the 1.5 MiB limit: stored intact.
    v = "a" * (1400 * 1024)
    r = request(srv, "PUT", "/v2/keys/size/ok", form={"value": v}, timeout=30)
    assert r.status == 201, r
    st, node = get_node(srv, "/size/ok")
    assert st == 200 and node["node"]["value"] == v

    # Over 10 MiB: Go's form limit in etcd; the v2 error 210.
    before = store_index(srv)
    big = b"value=" + b"b" * (11 * 1024 * 1024)
    with RawConn.to(srv, timeout=30) as c:
        try:
            c.send(form_put(b"/size/huge", big, cl(len(big))))
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            resp = c.read_response(timeout=30)
        except Closed:
            resp = None
    assert resp is not None, "no answer to an 11 MiB body (expected 400 errorCode 210)"
    assert resp.status == 400 and resp.json()["errorCode"] == 210 \
        and resp.json()["message"] == "Invalid POST form" and resp.json()["index"] == 0, resp
    assert store_index(srv) == before
    assert get_node(srv, "/size/huge")[0] == 404

    # 2 MiB: over --max-request-bytes (1.5 MiB). etcd 3.4 does not apply that limit to v2
    # (it stores the value); a server that enforces it must answer the v2 error 210 and write
    # nothing. Either way the answer must be complete and consistent with the store.
    v2 = "c" * (2 * 1024 * 1024)
    before = store_index(srv)
    r = request(srv, "PUT", "/v2/keys/size/two", form={"value": v2}, timeout=30)
    if r.status == 201:
        st, node = get_node(srv, "/size/two")
        assert st == 200 and node["node"]["value"] == v2
    else:
        j = r.json()
        assert r.status == 400 and j["errorCode"] == 210 and j["message"] == "Invalid POST form" \
            and j["index"] == 0 and j["cause"], r
        assert store_index(srv) == before and get_node(srv, "/size/two")[0] == 404


# --------------------------------------------------------------------------- connections
def put_bytes(key, value, extra=b""):
    body = b"value=" + value.encode()
    return (b"PUT /v2/keys" + key.encode() + b" HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n" + cl(len(body)) + extra + b"\r\n" + body)


def test_pipelined_requests_answered_in_order(module_server):
    srv = module_server
    reqs = (put_bytes("/pipe/k", "1")
            + b"GET /v2/keys/pipe/k HTTP/1.1\r\nHost: x\r\n\r\n"
            + put_bytes("/pipe/k", "2&ttl=ab")
            + b"HEAD /v2/keys/pipe/k HTTP/1.1\r\nHost: x\r\n\r\n"
            + put_bytes("/pipe/k", "3")
            + b"GET /v2/keys/pipe/nope HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"DELETE /v2/keys/pipe/k HTTP/1.1\r\nHost: x\r\n\r\n"
            + b"GET /v2/keys/pipe/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    with RawConn.to(srv) as c:
        c.send(reqs)
        rs = [c.read_response(m) for m in ("PUT", "GET", "PUT", "HEAD", "PUT", "GET", "DELETE", "GET")]
        assert c.wait_closed(5), "Connection: close on the last request was not honoured"
    assert [r.status for r in rs] == [201, 200, 400, 200, 200, 404, 200, 404], rs
    assert rs[0].json()["node"]["value"] == "1"
    assert rs[1].json()["node"]["value"] == "1"
    assert rs[2].json()["errorCode"] == 202
    assert rs[3].body == b"" and rs[3].header("x-etcd-index") == str(rs[0].json()["node"]["modifiedIndex"])
    assert rs[4].json()["node"]["value"] == "3" and rs[4].json()["prevNode"]["value"] == "1"
    assert rs[5].json()["cause"] == "/pipe/nope"
    assert rs[6].json()["action"] == "delete"
    assert rs[6].json()["node"]["modifiedIndex"] == rs[4].json()["node"]["modifiedIndex"] + 1
    assert rs[7].json()["errorCode"] == 100


def test_pipelined_requests_sent_byte_by_byte(module_server):
    """The parser must cope with a request split at every possible byte boundary."""
    srv = module_server
    data = put_bytes("/pipe2/k", "slow") + b"GET /v2/keys/pipe2/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with RawConn.to(srv) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
            if i % 16 == 0:
                time.sleep(0.002)
        r1 = c.read_response("PUT")
        r2 = c.read_response("GET")
    assert r1.status == 201 and r2.status == 200 and r2.json()["node"]["value"] == "slow"


def test_expect_100_continue(module_server):
    """curl sends `Expect: 100-continue` for bodies over 1 KiB and waits for the interim answer."""
    srv = module_server
    body = b"value=" + b"e" * 2000
    with RawConn.to(srv) as c:
        c.send(b"PUT /v2/keys/expect/k HTTP/1.1\r\nHost: x\r\nContent-Type: "
               b"application/x-www-form-urlencoded\r\n" + cl(len(body)) + b"Expect: 100-continue\r\n\r\n")
        t0 = time.monotonic()
        interim = c.read_response(timeout=5, allow_1xx=True)
        assert interim.status == 100, interim
        assert time.monotonic() - t0 < 1.0
        c.send(body)
        r = c.read_response("PUT")
    assert r.status == 201 and r.json()["node"]["value"] == "e" * 2000


def test_validation_error_keeps_connection_usable(module_server):
    srv = module_server
    with RawConn.to(srv) as c:
        c.send(build("PUT", "/v2/keys/ka/k?ttl=abc", form={"value": "x"}))
        r = c.read_response("PUT")
        assert r.status == 400 and r.json()["errorCode"] == 202
        c.send(build("PUT", "/v2/keys/ka/k", form={"value": "x"}))
        r = c.read_response("PUT")
        assert r.status == 201
        c.send(build("GET", "/v2/keys/ka/nope"))
        r = c.read_response("GET")
        assert r.status == 404
        c.send(build("GET", "/v2/keys/ka/k"))
        r = c.read_response("GET")
        assert r.status == 200 and r.json()["node"]["value"] == "x"


@pytest.mark.time_limit(60)
def test_bad_connection_does_not_harm_others(module_server):
    srv = module_server
    good = RawConn.to(srv)
    watcher = RawConn.to(srv)
    stuck = RawConn.to(srv)
    bad = []
    try:
        good.send(build("PUT", "/v2/keys/iso/k", form={"value": "1"}))
        assert good.read_response("PUT").status == 201
        # an open watch on another connection
        before = srv.watchers()
        watcher.send(build("GET", "/v2/keys/iso/k?wait=true"))
        assert srv.wait_watchers(before + 1) == before + 1, "the watch was not registered"
        # a half-sent request that never completes
        stuck.send(b"PUT /v2/keys/iso/stuck HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   b"application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nvalue=")
        # an assortment of malformed requests, each on its own connection
        for junk in (b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nBad Header\r\n\r\n",
                     b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 100,
                     b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"\r\n" * 1000, bytes(range(256)) * 8,
                     b"GET /v2/keys/ HTTP/1.1\r\nHost: x\r\nX: " + b"z" * (2 << 20)):
            c = RawConn.to(srv, timeout=5)
            bad.append(c)
            try:
                c.send(junk)
            except (BrokenPipeError, ConnectionResetError):
                pass
        # abrupt resets too
        for _ in range(5):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.send(b"GET /v2/keys/ HTTP/1.1\r\nHo")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
        time.sleep(0.3)
        # the good keep-alive connection still works
        good.send(build("PUT", "/v2/keys/iso/k", form={"value": "2"}))
        r = good.read_response("PUT")
        assert r.status == 200 and r.json()["node"]["value"] == "2"
        # and the watcher got exactly that event
        ev = watcher.read_response("GET", timeout=10)
        assert ev.status == 200 and ev.json()["node"]["value"] == "2", ev
        # new connections work
        r = request(srv, "GET", "/v2/keys/iso/k")
        assert r.status == 200 and r.json()["node"]["value"] == "2"
        # the half-sent request wrote nothing
        assert request(srv, "GET", "/v2/keys/iso/stuck").status == 404
    finally:
        for c in [good, watcher, stuck] + bad:
            c.close()
    # closing the half-sent request does not write anything either
    time.sleep(0.3)
    assert request(srv, "GET", "/v2/keys/iso/stuck").status == 404


def test_partial_body_then_close_writes_nothing(module_server):
    srv = module_server
    before = store_index(srv)
    for i in range(5):
        with RawConn.to(srv) as c:
            c.send(b"PUT /v2/keys/partial/k%d HTTP/1.1\r\nHost: x\r\nContent-Type: "
                   b"application/x-www-form-urlencoded\r\nContent-Length: 50\r\n\r\nvalue=abc" % i)
            time.sleep(0.05)
    with RawConn.to(srv) as c:
        c.send(b"PUT /v2/keys/partial/chunked HTTP/1.1\r\nHost: x\r\nContent-Type: "
               b"application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n7\r\nvalue=1\r\n")
        time.sleep(0.1)
    time.sleep(0.3)
    assert store_index(srv) == before
    assert request(srv, "GET", "/v2/keys/partial").status == 404


@pytest.mark.time_limit(120)
def test_large_responses_complete_with_connection_close(module_server):
    """A response much larger than the socket buffers must be delivered completely when the
    connection is to be closed after it (Connection: close, HTTP/1.0), even to a slow reader:
    the server may close only after the last byte was written."""
    srv = module_server
    v = "L" * (1400 * 1024)
    for i in range(8):
        r = request(srv, "PUT", "/v2/keys/bigresp/k%d" % i, form={"value": v + str(i)}, timeout=30)
        assert r.status == 201, r
    want_total = 8 * len(v)
    for version, extra in (("HTTP/1.1", {"Connection": "close"}), ("HTTP/1.0", {})):
        for attempt in range(3):
            with RawConn.to(srv, timeout=30) as c:
                c.send(build("GET", "/v2/keys/bigresp?recursive=true&sorted=true", headers=extra,
                             version=version))
                time.sleep(0.5)         # let the server fill the socket buffers and block
                try:
                    r = c.read_response("GET", timeout=30)
                except Closed as e:
                    pytest.fail("%s %s: the connection was closed before the response was "
                                "complete (%d bytes received)" % (version, extra, len(e.partial)))
            nodes = r.json()["node"]["nodes"]
            assert [n["value"] for n in nodes] == [v + str(i) for i in range(8)]
            assert sum(len(n["value"]) for n in nodes) >= want_total
