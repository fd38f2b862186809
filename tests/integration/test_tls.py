"""quorumd serving https:// client URLs: --cert-file/--key-file, --client-cert-auth with
--trusted-ca-file, and the TLS flags it refuses (TLS between members: test_peer_tls.py).

Certificates come from test_quorumctl_tls.make_pki (the openssl command): a CA, a server
certificate for IP 127.0.0.1, a client certificate of that CA and one of another CA. The v2 API
is checked over TLS with python-requests, python-etcd, etcdctl (v2) and quorumctl, including a
watch, pipelined requests and a body larger than one TLS record.
"""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests

import cluster
import rawhttp
from test_fs import Mount, quorumfs_binary
from test_quorumctl import ctl_env, quorumctl_binary
from test_quorumctl_tls import TLSEtcd, make_pki, tls_servers

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class TLSQuorumd(TLSEtcd):
    """One quorumd member whose client URL is https://127.0.0.1:<free port> (the same flags as
    the https etcd of test_quorumctl_tls)."""

    def argv(self):
        a = super().argv()
        assert a[1] == "--enable-v2"
        return [cluster.quorumd_binary()] + a[2:]

    def stop(self):
        super().stop()
        log = self.log()
        bad = [m for m in SANITIZER_MARKS if m in log]
        assert not bad, "quorumd's log has a sanitizer report:\n" + log[-20000:]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.fail("the openssl command is missing (scripts/deps --test installs it)")
    if not os.path.exists(cluster.quorumd_binary()):
        pytest.fail("quorumd binary %r does not exist" % cluster.quorumd_binary())
    return make_pki(str(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def tls_server(tmp_path, pki):
    yield from tls_servers(TLSQuorumd, tmp_path, pki, "q")


class TLSQuorumdLoops(TLSQuorumd):
    """The same with three HTTP loops: the main loop accepts and starts each TLS session, and
    the connection goes on on another loop's thread."""

    def argv(self):
        return super().argv() + ["--http-loops", "3"]


@pytest.fixture
def tls_server_loops(tmp_path, pki):
    yield from tls_servers(TLSQuorumdLoops, tmp_path, pki, "ql")


def run_ctl(binary, url, args, extra_env=None):
    env = ctl_env()
    env.update(extra_env or {})
    p = subprocess.run([binary, "--endpoints", url] + args, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=env, timeout=20)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def tls_socket(pki, port, client_cert=False):
    ctx = ssl.create_default_context(cafile=pki["ca.crt"])
    if client_cert:
        ctx.load_cert_chain(pki["client.crt"], pki["client.key"])
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_responses(sock, n):
    """Reads n complete HTTP responses with Content-Length bodies; returns [(status, body)]."""
    buf = b""
    out = []
    while len(out) < n:
        while b"\r\n\r\n" not in buf:
            chunk = sock.recv(65536)
            assert chunk, "connection closed after %d responses: %r" % (len(out), buf)
            buf += chunk
        head, rest = buf.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        clen = [int(l.split(":", 1)[1]) for l in lines if l.lower().startswith("content-length:")]
        assert clen, "no Content-Length in %r" % head
        while len(rest) < clen[0]:
            chunk = sock.recv(65536)
            assert chunk
            rest += chunk
        out.append((status, rest[:clen[0]]))
        buf = rest[clen[0]:]
    return out


@pytest.mark.time_limit(120)
def test_https_serves_the_v2_api_to_every_client(tls_server, pki):
    srv = tls_server()
    ca = pki["ca.crt"]
    base = srv.url + "/v2/keys"

    r = requests.put(base + "/tls/a", data={"value": "hello"}, verify=ca, timeout=5)
    assert r.status_code == 201
    assert r.json()["node"]["value"] == "hello"
    assert r.headers["X-Etcd-Index"] == str(r.json()["node"]["modifiedIndex"])
    assert requests.get(base + "/tls/a", verify=ca, timeout=5).json()["node"]["value"] == "hello"

    # A long poll answered over the same kind of connection when a change is made.
    got = {}

    def watch():
        got["r"] = requests.get(base + "/tls/a?wait=true", verify=ca, timeout=10)

    t = threading.Thread(target=watch)
    t.start()
    srv_deadline = time.monotonic() + 5
    while time.monotonic() < srv_deadline:
        st = requests.get(srv.url + "/v2/stats/store", verify=ca, timeout=5).json()
        if st["watchers"] >= 1:
            break
        time.sleep(0.05)
    requests.put(base + "/tls/a", data={"value": "changed"}, verify=ca, timeout=5)
    t.join(10)
    assert got["r"].status_code == 200
    assert got["r"].json()["action"] == "set"
    assert got["r"].json()["node"]["value"] == "changed"
    assert got["r"].json()["prevNode"]["value"] == "hello"

    # A value larger than one TLS record (16 KiB) both ways.
    big = "".join(chr(ord("a") + i % 26) for i in range(200000))
    r = requests.put(base + "/tls/big", data={"value": big}, verify=ca, timeout=10)
    assert r.status_code == 201
    assert requests.get(base + "/tls/big", verify=ca, timeout=5).json()["node"]["value"] == big

    # Pipelined requests in one TLS write are answered in order.
    with tls_socket(pki, srv.port) as s:
        s.sendall(b"PUT /v2/keys/tls/p HTTP/1.1\r\nHost: x\r\n"
                  b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 7\r\n\r\n"
                  b"value=1"
                  b"GET /v2/keys/tls/p HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /v2/keys/tls/missing HTTP/1.1\r\nHost: x\r\n\r\n")
        (s1, b1), (s2, b2), (s3, b3) = read_responses(s, 3)
    assert (s1, s2, s3) == (201, 200, 404)
    assert b'"value":"1"' in b2
    assert b'"errorCode":100' in b3

    # etcdctl v2 and quorumctl with --ca-file.
    for binary in (cluster.etcdctl_binary(), quorumctl_binary()):
        if not binary or not os.path.exists(binary):
            continue
        assert run_ctl(binary, srv.url, ["--ca-file", ca, "get", "/tls/a"]) == (0, "changed\n", "")
        assert run_ctl(binary, srv.url, ["--ca-file", ca, "set", "/tls/c", "v"]) == (0, "v\n", "")
        rc, out, _ = run_ctl(binary, srv.url, ["--ca-file", ca, "ls", "--sort", "/tls"])
        assert (rc, out) == (0, "/tls/a\n/tls/big\n/tls/c\n/tls/p\n")
        # Without the CA the server's certificate is not trusted.
        rc, out, err = run_ctl(binary, srv.url, ["get", "/tls/a"])
        assert rc == 4 and "x509: certificate signed by unknown authority" in err

    # python-etcd over https.
    import etcd
    c = etcd.Client(host="127.0.0.1", port=srv.port, protocol="https", ca_cert=ca)
    c.write("/tls/py", "pv")
    assert c.read("/tls/py").value == "pv"

    # Plain HTTP on the https port: Go's answer, then the connection closes.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET /v2/keys/tls/a HTTP/1.1\r\nHost: x\r\n\r\n")
        data = rawhttp.read_until_close(s)
    assert data == (b"HTTP/1.0 400 Bad Request\r\n\r\n"
                    b"Client sent an HTTP request to an HTTPS server.\n")

    # A client that does not trust the certificate fails; the server goes on serving.
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(base + "/tls/a", timeout=5)
    assert requests.get(srv.url + "/health", verify=ca, timeout=5).json()["health"] == "true"


@pytest.mark.time_limit(120)
def served_certificate(port):
    """The PEM certificate the server on 127.0.0.1:port presents now (not verified)."""
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=5)


@pytest.mark.time_limit(120)
def test_a_renewed_certificate_is_served_without_a_restart(tmp_path, pki):
    """As etcd, the member reads its certificate and key again when their files change: the
    next connection gets the renewed pair (a certificate from another CA here, so that the
    two differ), while one half written (a key that does not match) is not taken."""
    os.makedirs(tmp_path / "other-pki")
    other = make_pki(str(tmp_path / "other-pki"))
    cert, key = str(tmp_path / "server.crt"), str(tmp_path / "server.key")
    shutil.copy(pki["server.crt"], cert)
    shutil.copy(pki["server.key"], key)
    srv = TLSQuorumd(str(tmp_path / "q"), dict(pki, **{"server.crt": cert, "server.key": key}))
    os.makedirs(srv.workdir)
    srv.start()
    try:
        first = open(pki["server.crt"]).read()
        assert served_certificate(srv.port) == first
        r = requests.put(srv.url + "/v2/keys/rot", data={"value": "1"}, verify=pki["ca.crt"],
                         timeout=5)
        assert r.status_code == 201
        # Renewed (written to new files renamed over the old ones, as tools do).
        shutil.copy(other["server.crt"], cert + ".new")
        shutil.copy(other["server.key"], key + ".new")
        os.rename(cert + ".new", cert)
        os.rename(key + ".new", key)
        renewed = open(other["server.crt"]).read()
        assert served_certificate(srv.port) == renewed
        r = requests.get(srv.url + "/v2/keys/rot", verify=other["ca.crt"], timeout=5)
        assert r.json()["node"]["value"] == "1"
        with pytest.raises(requests.exceptions.SSLError):  # (the first CA does not sign it)
            requests.get(srv.url + "/v2/keys/rot", verify=pki["ca.crt"], timeout=5)
        # Half written: the first certificate with the renewed key. Not taken.
        shutil.copy(pki["server.crt"], cert)
        assert served_certificate(srv.port) == renewed
        # Completed: the first pair again.
        shutil.copy(pki["server.key"], key)
        assert requests.get(srv.url + "/v2/keys/rot", verify=pki["ca.crt"],
                            timeout=5).json()["node"]["value"] == "1"
    finally:
        srv.stop()


def test_client_certificates_are_required_when_asked(tls_server, pki):
    srv = tls_server(client_cert_auth=True)
    ca = pki["ca.crt"]
    url = srv.url + "/v2/keys/cc"
    mine = (pki["client.crt"], pki["client.key"])
    foreign = (pki["other-client.crt"], pki["other-client.key"])

    r = requests.put(url, data={"value": "ok"}, verify=ca, cert=mine, timeout=5)
    assert r.status_code == 201
    with pytest.raises(requests.exceptions.SSLError):  # no certificate
        requests.get(url, verify=ca, timeout=5)
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(url, verify=ca, cert=foreign, timeout=5)  # another CA's
    assert requests.get(url, verify=ca, cert=mine, timeout=5).json()["node"]["value"] == "ok"

    etcdctl = cluster.etcdctl_binary()
    if etcdctl:
        args = ["--ca-file", ca, "--cert-file", mine[0], "--key-file", mine[1], "get", "/cc"]
        assert run_ctl(etcdctl, srv.url, args) == (0, "ok\n", "")
        rc, _, err = run_ctl(etcdctl, srv.url, ["--ca-file", ca, "get", "/cc"])
        assert rc == 4 and "remote error: tls:" in err
    log = srv.log()
    assert "https: closing the connection from 127.0.0.1:" in log
    assert "peer did not return a certificate" in log


@pytest.mark.time_limit(120)
def test_quorumfs_mounts_an_https_endpoint_with_a_client_certificate(tls_server, pki, tmp_path):
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        pytest.skip("FUSE mounts cannot be tested on this machine")
    assert os.path.exists(quorumfs_binary()), quorumfs_binary()
    srv = tls_server(client_cert_auth=True)
    ca, crt, key = pki["ca.crt"], pki["client.crt"], pki["client.key"]
    mine = (crt, key)
    assert requests.put(srv.url + "/v2/keys/app/conf", data={"value": "a=1"}, verify=ca,
                        cert=mine, timeout=5).status_code == 201
    m = Mount(tmp_path / "ok", srv.url, opts="ca_file=%s,cert_file=%s,key_file=%s" % (ca, crt, key))
    m.start()
    try:
        with open(m.path("app", "conf")) as f:
            assert f.read() == "a=1"
        with open(m.path("app", "new"), "w") as f:
            f.write("written")
        r = requests.get(srv.url + "/v2/keys/app/new", verify=ca, cert=mine, timeout=5)
        assert r.json()["node"]["value"] == "written"
        # A remote change reaches the mount through its watch, over TLS too.
        requests.put(srv.url + "/v2/keys/app/conf", data={"value": "a=2"}, verify=ca, cert=mine,
                     timeout=5)
        deadline = time.monotonic() + 10
        while open(m.path("app", "conf")).read() != "a=2":
            assert time.monotonic() < deadline, "the remote change did not reach the mount"
            time.sleep(0.05)
    finally:
        assert m.unmount() == 0, m.log()
    # Without the client certificate the server refuses the mount's connections.
    bad = Mount(tmp_path / "bad", srv.url, opts="ca_file=%s,op_timeout=2" % ca)
    with pytest.raises(AssertionError) as e:
        bad.start(timeout=15)
    assert "quorumfs exited" in str(e.value), str(e.value)


@pytest.mark.time_limit(60)
def test_auto_tls_serves_https_with_a_self_signed_certificate(tmp_path):
    port = cluster.free_port()
    https = "https://127.0.0.1:%d" % port
    peer = "http://127.0.0.1:%d" % cluster.free_port()
    log = open(str(tmp_path / "log"), "wb")
    p = subprocess.Popen([cluster.quorumd_binary(), "--name", "t", "--data-dir",
                          str(tmp_path / "data"), "--listen-client-urls", https,
                          "--advertise-client-urls", https, "--listen-peer-urls", peer,
                          "--initial-advertise-peer-urls", peer, "--initial-cluster", "t=" + peer,
                          "--auto-tls"], stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    cluster._live.add(p)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                r = requests.put(https + "/v2/keys/auto", data={"value": "tls"}, verify=False,
                                 timeout=2)
                break
            except requests.exceptions.ConnectionError:
                assert time.monotonic() < deadline and p.poll() is None, open(log.name).read()
                time.sleep(0.1)
        assert r.status_code == 201
        # The certificate is self-signed, for the URL's IP, and encrypts: an unverified
        # connection works, a verifying one fails.
        pem = ssl.get_server_certificate(("127.0.0.1", port))
        der = ssl.PEM_cert_to_DER_cert(pem)
        assert b"quorumd" in der and bytes([127, 0, 0, 1]) in der
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(https + "/v2/keys/auto", timeout=5)
        r = requests.get(https + "/v2/keys/auto", verify=False, timeout=5)
        assert r.json()["node"]["value"] == "tls"
    finally:
        cluster._kill_group(p, signal.SIGTERM)
        p.wait(timeout=10)
        cluster._live.discard(p)
        log.close()
    assert p.returncode == 0, open(log.name).read()
    text = open(log.name).read()
    assert not [m for m in SANITIZER_MARKS if m in text], text


def start_fails(tmp_path, args):
    """Runs quorumd with args (plus a data dir and free ports) and returns (exit status, log,
    whether the data dir exists)."""
    data = str(tmp_path / "data")
    peer = "http://127.0.0.1:%d" % cluster.free_port()
    argv = [cluster.quorumd_binary(), "--name", "t", "--data-dir", data,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "t=" + peer] + args
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=20)
    return p.returncode, p.stdout.decode(), os.path.exists(data)


@pytest.mark.time_limit(60)
def test_tls_settings_are_checked_before_anything_is_written(tmp_path, pki):
    https = "https://127.0.0.1:%d" % cluster.free_port()
    listen = ["--listen-client-urls", https, "--advertise-client-urls", https]

    # Flag problems exit 2 (like every bad flag), files that cannot be used exit 1.
    rc, log, made = start_fails(tmp_path, listen)
    assert rc == 2 and not made
    assert ("TLS key/cert (--cert-file, --key-file) must be provided for client url %s with "
            "HTTPS scheme" % https) in log

    missing = str(tmp_path / "missing.pem")
    rc, log, made = start_fails(tmp_path, listen + ["--cert-file", missing,
                                                    "--key-file", pki["server.key"]])
    assert rc == 1 and not made
    assert "TLS: cannot load the certificate %s" % missing in log

    rc, log, made = start_fails(tmp_path, listen + ["--cert-file", pki["server.crt"],
                                                    "--key-file", pki["client.key"]])
    assert rc == 1 and not made
    assert "does not match the certificate" in log

    rc, log, made = start_fails(tmp_path, listen + ["--cert-file", pki["no-pem.txt"],
                                                    "--key-file", pki["server.key"]])
    assert rc == 1 and not made
    assert "TLS: cannot load the certificate" in log

    for flags, want in ((["--peer-cert-file", pki["server.crt"]], "--peer-cert-file and "
                         "--peer-key-file go together"),):
        rc, log, made = start_fails(tmp_path, flags)
        assert rc == 2 and not made, log
        assert want in log


@pytest.mark.time_limit(60)
def test_https_connections_handed_to_other_loops(tls_server_loops, pki):
    srv = tls_server_loops()
    socks = [tls_socket(pki, srv.port) for _ in range(6)]  # every loop twice
    try:
        for i, w in enumerate(socks):
            body = ("value=v%d" % i).encode()
            w.sendall(b"PUT /v2/keys/loops/k HTTP/1.1\r\nHost: x\r\nContent-Type: "
                      b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
            (st, b), = read_responses(w, 1)
            assert st in (200, 201), b
            for c in socks:  # pipelined: two GETs in one write
                c.sendall(b"GET /v2/keys/loops/k HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
                got = read_responses(c, 2)
                assert [(st, json.loads(b)["node"]["value"]) for st, b in got] == [(200, "v%d" % i)] * 2
    finally:
        for c in socks:
            c.close()


@pytest.mark.time_limit(120)
def test_a_client_certificate_names_the_v2_auth_user(tmp_path, pki):
    """With --client-cert-auth and /v2/auth on, a request without an Authorization header is
    the user named by its certificate's common name ("client" here), as in etcd; Basic
    credentials, when sent, decide instead. The same requests go to etcd and to quorumd."""
    import base64
    ca, mine = pki["ca.crt"], (pki["client.crt"], pki["client.key"])
    root = {"Authorization": "Basic " + base64.b64encode(b"root:rp").decode()}
    answers = {}
    for cls, name in ((TLSEtcd, "etcd"), (TLSQuorumd, "quorumd")):
        gen = tls_servers(cls, tmp_path / name, pki, name)
        make = next(gen)
        try:
            srv = make(client_cert_auth=True)

            def req(method, path, data=None, headers=None):
                r = requests.request(method, srv.url + path, data=data, headers=headers,
                                     verify=ca, cert=mine, timeout=5)
                return r.status_code, r.text

            steps = [
                ("PUT", "/v2/auth/users/root", '{"user":"root","password":"rp"}', None),
                ("PUT", "/v2/auth/roles/app", '{"role":"app","permissions":{"kv":{"read":["/app/*"],"write":["/app/*"]}}}', None),
                ("PUT", "/v2/auth/users/client", '{"user":"client","password":"cp","roles":["app"]}', None),
                ("PUT", "/v2/keys/other", {"value": "1"}, None),
                ("PUT", "/v2/auth/enable", None, None),
                ("PUT", "/v2/auth/roles/guest", '{"role":"guest","revoke":{"kv":{"read":["/*"],"write":["/*"]}}}', root),
                ("PUT", "/v2/keys/app/a", {"value": "1"}, None),
                ("GET", "/v2/keys/app/a", None, None),
                ("GET", "/v2/keys/other", None, None),
                ("GET", "/v2/keys/other", None, root),
                ("GET", "/v2/auth/users", None, None),
                ("GET", "/v2/keys/app/a", None, {"Authorization": "Basic " + base64.b64encode(b"client:bad").decode()}),
                ("DELETE", "/v2/auth/enable", None, root),
                ("GET", "/v2/keys/other", None, None),
            ]
            got = []
            for m, p, d, h in steps:
                st, text = req(m, p, d, h)
                if p.startswith("/v2/keys") and st < 300:
                    text = json.loads(text)["node"].get("value")
                got.append((m, p, st, text))
            answers[name] = got
        finally:
            for _ in gen:
                pass
    assert answers["quorumd"] == answers["etcd"]
    statuses = [g[2] for g in answers["quorumd"]]
    assert statuses == [201, 201, 200, 201, 200, 200, 201, 200, 401, 200, 401, 401, 200, 200], answers
