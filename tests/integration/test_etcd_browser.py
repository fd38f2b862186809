"""etcd-browser (henszey/etcd-browser, the AngularJS UI that README names as a client) against
the server, the way it talks to etcd: its Node server forwards a request's method and path
only (no headers either way) and pipes the body, so every PUT arrives chunked with an empty
body and its parameters in the query string; its page then loads directories, adds, edits,
copies and deletes keys and directories, and reads the three stats documents.

The proxy here is a few lines of Node written for this test with that behaviour (etcd-browser
is not packaged anywhere this machine can reach). The same requests are also sent straight to
the server with a browser's CORS preflight, as the page does when pointed at another origin.
Runs against quorumd, or against etcd with QUORUM_TARGET=etcd."""
import json
import os
import subprocess
import urllib.parse

import pytest

import cluster
import rawhttp

NODE = "/usr/bin/node"

PROXY_JS = r"""
// Forwards method and path to the server and pipes both bodies, nothing else (like
// etcd-browser's server.js): the status and headers of the answer are not passed on.
const http = require('http');
const [host, port] = [process.argv[2], Number(process.argv[3])];
const srv = http.createServer((req, res) => {
  const up = http.request({hostname: host, port: port, path: req.url, method: req.method},
                          (r) => r.pipe(res, {end: true}));
  up.on('error', (e) => { res.statusCode = 502; res.end(String(e)); });
  req.pipe(up, {end: true});
});
srv.listen(0, '127.0.0.1', () => console.log(srv.address().port));
"""

pytestmark = pytest.mark.skipif(not os.path.exists(NODE), reason="needs node")


@pytest.fixture
def proxy(server, tmp_path):
    script = tmp_path / "proxy.js"
    script.write_text(PROXY_JS)
    p = subprocess.Popen([NODE, str(script), server.host, str(server.port)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline().strip()
        assert line.isdigit(), "proxy did not start: %r" % line
        yield "http://127.0.0.1:%s" % line
    finally:
        p.kill()
        p.wait()


def raw(url, method, path, chunked_empty_body=False, headers=None):
    """One request on its own connection, written as Node's HTTP client writes it (a PUT that
    pipes an empty body is chunked); returns (status, headers, body)."""
    host, port = url.split("//")[1].split(":")
    hdrs = dict(headers or {}, Connection="close")
    body = None
    if chunked_empty_body:
        hdrs["Transfer-Encoding"] = "chunked"
        body = b"0\r\n\r\n"
    with rawhttp.RawConn(host, int(port), timeout=5) as c:
        c.send(rawhttp.build(method, path, headers=hdrs, body=body))
        r = c.read_response(method)
    return r.status, r.headers, r.body


class Browser:
    """The page's requests (frontend/etcdbrowser.js): PUTs carry their parameters in the query
    string and, through the proxy, an empty chunked body."""

    def __init__(self, url, direct=False):
        self.url, self.direct = url, direct

    def call(self, method, path):
        extra = {"Origin": "http://browser.example"} if self.direct else {}
        if self.direct and method in ("PUT", "DELETE"):
            # A PUT or DELETE from another origin is preflighted by the browser.
            st, hd, _ = raw(self.url, "OPTIONS", path,
                            headers=dict(extra, **{"Access-Control-Request-Method": method}))
            assert st == 200, (st, hd)
            assert hd.get("access-control-allow-origin") in ("*", "http://browser.example")
            assert method in [m.strip() for m in hd["access-control-allow-methods"].split(",")]
        st, hd, body = raw(self.url, method, path, chunked_empty_body=(method == "PUT" and not self.direct),
                           headers=extra)
        if self.direct:
            assert hd.get("access-control-allow-origin") in ("*", "http://browser.example"), hd
        return st, json.loads(body)


def node_view(n):
    return {k: n[k] for k in ("key", "value", "dir") if k in n}


def by_key(n):
    return n["key"]


def children(b, key):
    st, data = b.call("GET", "/v2/keys" + key)
    return [node_view(n) for n in data["node"].get("nodes", [])]


def session(b):
    """What a user does on the page; every answer is checked as the page would use it."""
    # $scope.submit(): load the root.
    st, data = b.call("GET", "/v2/keys/")
    assert data["node"]["dir"] is True
    start = children(b, "/")

    # addNode on the root: PUT /v2/keys/<name>?value=<value>
    st, data = b.call("PUT", "/v2/keys/greeting?value=hello%20world")
    assert data["action"] == "set" and data["node"]["value"] == "hello world"
    first = data["node"]["modifiedIndex"]
    # createDir, then a property in it
    st, data = b.call("PUT", "/v2/keys/app?dir=true")
    assert data["action"] == "set" and data["node"] == {
        "key": "/app", "dir": True, "modifiedIndex": first + 1, "createdIndex": first + 1}
    st, data = b.call("PUT", "/v2/keys/app/port?value=8080")
    assert data["node"]["modifiedIndex"] == first + 2
    st, data = b.call("PUT", "/v2/keys/app/sub?dir=true")
    st, data = b.call("PUT", "/v2/keys/app/sub/deep?value=d%C3%A9j%C3%A0%20vu")
    assert data["node"]["value"] == "d\u00e9j\u00e0 vu"
    assert sorted(children(b, "/"), key=by_key) == sorted(
        start + [{"key": "/app", "dir": True}, {"key": "/greeting", "value": "hello world"}], key=by_key)
    assert sorted(children(b, "/app"), key=by_key) == [
        {"key": "/app/port", "value": "8080"}, {"key": "/app/sub", "dir": True}]

    # updateNode (the editable value): PUT with the new value, then reload
    st, data = b.call("PUT", "/v2/keys/app/port?value=9090")
    assert data["action"] == "set"
    assert data["prevNode"]["value"] == "8080" and data["node"]["value"] == "9090"

    # copyNode to another directory, copyDir (copyDirAux walks and PUTs every value)
    st, data = b.call("PUT", "/v2/keys/copy/greeting?value=hello%20world")
    assert data["node"]["key"] == "/copy/greeting"

    def copy_dir(src, dst):
        for n in children(b, src):
            name = n["key"].rsplit("/", 1)[1]
            if n.get("dir"):
                copy_dir(n["key"], dst + name + "/")
            else:
                b.call("PUT", "/v2/keys" + dst + name + "?value=" + urllib.parse.quote(n["value"]))
    copy_dir("/app", "/app2/")
    assert sorted(children(b, "/app2"), key=by_key) == [
        {"key": "/app2/port", "value": "9090"}, {"key": "/app2/sub", "dir": True}]
    assert children(b, "/app2/sub") == [{"key": "/app2/sub/deep", "value": "d\u00e9j\u00e0 vu"}]

    # deleteNode, deleteDir (?dir=true&recursive=true), each followed by a reload of the parent
    st, data = b.call("DELETE", "/v2/keys/greeting")
    assert data["action"] == "delete" and data["prevNode"]["value"] == "hello world"
    st, data = b.call("DELETE", "/v2/keys/app?dir=true&recursive=true")
    assert data["action"] == "delete" and data["node"]["dir"] is True
    st, data = b.call("GET", "/v2/keys/app/port")
    assert data["errorCode"] == 100 and data["message"] == "Key not found"
    names = {n["key"] for n in children(b, "/")}
    assert {"/app2", "/copy"} <= names and not names & {"/app", "/greeting"}

    # loadStats(): the three documents are JSON objects the page pretty-prints
    st, store = b.call("GET", "/v2/stats/store")
    assert store["setsSuccess"] >= 9 and store["deleteSuccess"] >= 2
    st, leader = b.call("GET", "/v2/stats/leader")
    st, me = b.call("GET", "/v2/stats/self")
    assert leader["leader"] == me["id"] and me["state"] == "StateLeader"
    return st


def test_through_etcd_browser_proxy(proxy):
    session(Browser(proxy))


def test_page_talking_to_the_server_directly(server):
    session(Browser(server.url, direct=True))
