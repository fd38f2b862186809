"""--discovery (etcd's v2 discovery protocol): new members find each other through a directory
of a v2 keys API instead of a static --initial-cluster, whether the service is quorumd or
etcd, and real etcd members use quorumd as their discovery service. A member beyond the
size is refused ("discovery: cluster is full") before it writes anything; a missing or bad
size key, a bad URL and both bootstrap flags at once are errors; a member retries while the
service cannot be reached; and a member that has its data dir restarts without the service."""
import http.client
import http.server
import json
import os
import subprocess
import threading
import time
import urllib.parse

import pytest

import cluster
from conftest import SANITIZER_MARKS

SIZE_KEY = "/_config/size"


class ForwardProxy:
    """A minimal HTTP forward proxy (absolute-form requests) that records what it forwards."""

    def __init__(self):
        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self):
                seen.append((self.command, self.path))
                u = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
                c.request(self.command, u.path + ("?" + u.query if u.query else ""), body=body,
                          headers={k: v for k, v in self.headers.items()
                                   if k.lower() not in ("proxy-connection", "connection", "host")})
                r = c.getresponse()
                data = r.read()
                self.send_response(r.status)
                for k, v in r.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                c.close()

            do_GET = do_PUT = forward

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class DiscoveryMember(cluster.Server):
    """A quorumd (or etcd) member bootstrapped by --discovery URL."""

    def __init__(self, workdir, name, durl, kind="quorumd", extra_args=()):
        super().__init__(workdir, kind=kind, name=name, extra_args=extra_args)
        self.durl = durl
        self.client_port = cluster.free_port()
        self.peer_port = cluster.free_port()

    def argv(self):
        """cluster.Server's, bootstrapped by --discovery instead of --initial-cluster."""
        args = super().argv()
        i = args.index("--initial-cluster")
        return (args[:i] + ["--discovery", self.durl] + args[i + 2:len(args) - len(self.extra_args)]
                + ["--heartbeat-interval", "50", "--election-timeout", "500"] + self.extra_args)


@pytest.fixture
def members(tmp_path):
    made = []

    def make(n, durl, kind="quorumd", prefix="m"):
        ms = [DiscoveryMember(str(tmp_path / ("%s%d" % (prefix, i))), "%s%d" % (prefix, i), durl, kind)
              for i in range(1, n + 1)]
        made.extend(ms)
        return ms
    yield make
    bad = []
    for m in made:
        if m.running():
            m.stop()
        log = m.all_logs(400000)
        if m.kind == "quorumd" and any(x in log for x in SANITIZER_MARKS):
            bad.append("%s:\n%s" % (m.name, log[-20000:]))
    assert not bad, "sanitizer reports:\n" + "\n".join(bad)


def start_all(ms, timeout=30):
    """Starts members at once (each waits in discovery for the others)."""
    errors = []

    def run(m):
        try:
            m.start(timeout=timeout)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
    threads = [threading.Thread(target=run, args=(m,)) for m in ms]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def wait_one_cluster(ms):
    """Waits until every member of ms lists exactly ms (names, peer and client URLs)."""
    want = sorted((m.name, (m.peer_url,), (m.url,)) for m in ms)
    for m in ms:
        cluster_wait(lambda: member_names(m) == want, "%s lists the %d members" % (m.name, len(ms)))


def set_size(service, token, size):
    st, _, body = service.request("PUT", "/v2/keys/" + token + SIZE_KEY, body="value=%s" % size,
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st == 201, body


def member_names(m):
    st, _, body = m.request("GET", "/v2/members")
    assert st == 200
    return sorted((x["name"], tuple(x["peerURLs"]), tuple(x["clientURLs"]))
                  for x in json.loads(body)["members"])


def quorumd_argv(tmp_path, name, *bootstrap):
    """The argv of a quorumd on fresh ports and the data dir <name>-data, bootstrapped by
    the given flags."""
    port, peer = cluster.free_port(), cluster.free_port()
    return [cluster.quorumd_binary(), "--name", name, "--data-dir", str(tmp_path / (name + "-data")),
            "--listen-client-urls", "http://127.0.0.1:%d" % port,
            "--advertise-client-urls", "http://127.0.0.1:%d" % port,
            "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer] + list(bootstrap)


def run_quorumd(tmp_path, name, durl, extra=(), env=None):
    argv = quorumd_argv(tmp_path, name, "--discovery", durl, *extra) if durl else \
        quorumd_argv(tmp_path, name, *extra)
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    return out.returncode, out.stderr, str(tmp_path / (name + "-data"))


def test_quorumd_members_discover_each_other(make_server, members, tmp_path):
    service = make_server(kind="quorumd", name="ds")
    set_size(service, "disc/c1", 3)
    durl = service.url + "/v2/keys/disc/c1"
    ms = members(3, durl)
    start_all(ms)
    wait_one_cluster(ms)
    # One cluster: a write through one member is read (quorum) through the others.
    st, _, body = ms[0].request("PUT", "/v2/keys/k", body="value=v",
                                headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert st in (200, 201), body
    for m in ms[1:]:
        st, _, body = m.request("GET", "/v2/keys/k?quorum=true")
        assert st == 200 and json.loads(body)["node"]["value"] == "v"
    # The directory: one key per member, named by its id, valued name=peerURL.
    st, _, body = service.request("GET", "/v2/keys/disc/c1?recursive=true")
    nodes = json.loads(body)["node"]["nodes"]
    ids = {m.name: json.loads(m.request("GET", "/v2/stats/self")[2])["id"] for m in ms}
    got = sorted((n["key"], n.get("value")) for n in nodes if not n["key"].endswith("/_config"))
    assert got == sorted(("/disc/c1/" + ids[m.name], "%s=%s" % (m.name, m.peer_url)) for m in ms)

    # A fourth member is refused before it registers or makes a data dir: with
    # --discovery-fallback=exit it exits; by default (etcd's "proxy") it serves the cluster as
    # a proxy.
    rc, err, data = run_quorumd(tmp_path, "m4", durl, extra=["--discovery-fallback=exit"])
    assert rc == 1 and "quorumd: discovery: cluster is full" in err, err
    assert not os.path.exists(data)
    m5 = DiscoveryMember(str(tmp_path / "m5"), "m5", durl)
    m5.start()
    try:
        st, _, body = m5.request("GET", "/v2/keys/k?quorum=true")
        assert st == 200 and json.loads(body)["node"]["value"] == "v", body
        st, _, body = m5.request("GET", "/v2/config/local/proxy")
        assert sorted(json.loads(body)["endpoints"]) == sorted(m.url for m in ms)
        assert "discovery: cluster is full: falling back to proxy" in m5.log_text()
        # no member's data: only what a proxy keeps (the peer URLs it found, as etcd's)
        assert os.listdir(m5.data_dir) == ["proxy"]
        assert os.listdir(os.path.join(m5.data_dir, "proxy")) == ["cluster"]
    finally:
        m5.stop()
    st, _, body = service.request("GET", "/v2/keys/disc/c1")
    assert len(json.loads(body)["node"]["nodes"]) == 3      # the three (_config is hidden)

    # A member with its data dir restarts without the service.
    service.stop()
    ms[0].restart()
    st, _, body = ms[0].request("GET", "/v2/keys/k?quorum=true")
    assert st == 200 and json.loads(body)["node"]["value"] == "v"


def cluster_wait(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting until " + what)


def test_errors_are_etcds(make_server, tmp_path):
    service = make_server(kind="quorumd", name="ds")
    base = service.url + "/v2/keys/"
    rc, err, data = run_quorumd(tmp_path, "a", base + "nosize")
    assert rc == 1 and "quorumd: discovery: size key not found" in err, err
    assert not os.path.exists(data)
    for bad in ("three", "-1", "0", ""):
        set_size(service, "bad" + bad, bad) if bad else service.request(
            "PUT", "/v2/keys/bad" + SIZE_KEY, body="value=",
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        rc, err, _ = run_quorumd(tmp_path, "b", base + "bad" + bad)
        assert rc == 1 and "quorumd: discovery: size key is bad" in err, (bad, err)
    # A member killed while it waits for the others has registered: started again with an
    # empty data dir it is told so (its id is taken), not let in twice.
    set_size(service, "dup", 2)
    argv = quorumd_argv(tmp_path, "e", "--discovery", base + "dup")
    p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        cluster_wait(lambda: len(json.loads(service.request("GET", "/v2/keys/dup")[2])
                                 ["node"].get("nodes", [])) == 1, "the member registered")
    finally:
        p.kill()
        p.communicate()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "quorumd: discovery: found duplicate id" in out.stderr, out.stderr
    rc, err, _ = run_quorumd(tmp_path, "c", "ftp://127.0.0.1:1/x")
    assert rc == 1 and "discovery: invalid URL" in err, err
    rc, err, _ = run_quorumd(tmp_path, "d", base + "x", extra=["--initial-cluster", "d=http://127.0.0.1:1"])
    assert rc == 2 and ("multiple discovery or bootstrap flags are set. Choose one of "
                        "\"initial-cluster\", \"discovery\" or \"discovery-srv\"") in err, err


def test_discovery_proxy(make_server, members):
    """--discovery-proxy: every discovery request goes through the HTTP proxy."""
    service = make_server(kind="quorumd", name="ds")
    set_size(service, "via-proxy", 2)
    proxy = ForwardProxy()
    try:
        ms = members(2, service.url + "/v2/keys/via-proxy")
        for m in ms:
            m.extra_args += ["--discovery-proxy", proxy.url]
        start_all(ms)
        wait_one_cluster(ms)
        paths = [p for _, p in proxy.seen]
        size_url = service.url + "/v2/keys/via-proxy/_config/size"
        assert paths.count(size_url) == 4            # twice per member
        assert sum(1 for m, p in proxy.seen if m == "PUT") == 2
        assert all(p.startswith(service.url + "/v2/keys/via-proxy") for p in paths), paths
    finally:
        proxy.close()


def test_waits_for_a_service_that_is_not_up_yet(members, tmp_path):
    port, peer = cluster.free_port(), cluster.free_port()
    durl = "http://127.0.0.1:%d/v2/keys/late" % port
    (m,) = members(1, durl)
    t = threading.Thread(target=lambda: m.start(timeout=40))
    t.start()
    time.sleep(1.5)
    service = cluster.Server(str(tmp_path / "late-service"), kind="quorumd", name="ls")
    service.client_port, service.peer_port = port, peer
    try:
        service.start()
        set_size(service, "late", 1)
        t.join(45)
        assert m.running()
        assert member_names(m) == [(m.name, (m.peer_url,), (m.url,))]
        assert "discovery: reading the cluster size failed" in m.log_text()
    finally:
        service.stop()


@pytest.mark.skipif(not cluster.etcd_binary() or not os.path.exists(cluster.etcd_binary()),
                    reason="needs etcd")
def test_etcd_members_discover_through_quorumd(make_server, members):
    """Real etcd 3.4's discovery client against quorumd as the service."""
    service = make_server(kind="quorumd", name="ds")
    set_size(service, "etcd-disc", 3)
    ms = members(3, service.url + "/v2/keys/etcd-disc", kind="etcd", prefix="e")
    start_all(ms)
    wait_one_cluster(ms)
    st, _, body = service.request("GET", "/v2/keys/etcd-disc")
    vals = sorted(n["value"] for n in json.loads(body)["node"]["nodes"] if "value" in n)
    assert vals == sorted("%s=%s" % (m.name, m.peer_url) for m in ms)


@pytest.mark.skipif(not cluster.etcd_binary() or not os.path.exists(cluster.etcd_binary()),
                    reason="needs etcd")
def test_quorumd_members_discover_through_etcd(make_server, members):
    service = make_server(kind="etcd", name="es")
    set_size(service, "q-disc", 2)
    ms = members(2, service.url + "/v2/keys/q-disc")
    start_all(ms)
    wait_one_cluster(ms)


# ------------------------------------------------------------------ etcd's discovery service
DISCOVERY_SERVICE = "/usr/bin/discovery.etcd.io"


class DiscoveryService:
    """etcd's public discovery service (Debian's etcd-discovery: the program behind
    discovery.etcd.io), keeping its tokens in BACKEND_URL's v2 keys API under
    /_etcd/registry through etcd's Go v2 client, and proxying members' requests there."""

    def __init__(self, workdir, backend_url):
        if not os.path.exists(DISCOVERY_SERVICE):
            pytest.fail("%s is missing: scripts/deps --test installs it (etcd-discovery)"
                        % DISCOVERY_SERVICE, pytrace=False)
        self.port = cluster.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.log_path = os.path.join(str(workdir), "discovery-service.log")
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([DISCOVERY_SERVICE, "--addr", "127.0.0.1:%d" % self.port,
                                      "--etcd", backend_url, "--host", self.url],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        cluster_wait(lambda: self._up(), "the discovery service listens")

    def _up(self):
        try:
            return self.get("/robots.txt")[0] == 200
        except OSError:
            return False

    def get(self, path):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            c.request("GET", path)
            r = c.getresponse()
            return r.status, r.read().decode()
        finally:
            c.close()

    def close(self):
        self.proc.terminate()
        self.proc.wait(10)
        self.log.close()


@pytest.mark.parametrize("kind", ["quorumd", "etcd"])
def test_etcds_discovery_service_on_quorumd(make_server, members, tmp_path, kind):
    """The discovery service's own health check and token making (Go client Create and a
    recursive Delete) against quorumd, then a cluster bootstrapped through its token URL."""
    if kind == "etcd" and not cluster.etcd_binary():
        pytest.skip("needs etcd")
    backend = make_server(kind="quorumd", name="ds")
    svc = DiscoveryService(tmp_path, backend.url)
    try:
        assert svc.get("/health") == (200, "OK")     # a size-0 token made, then deleted
        st, body = svc.get("/new?size=three")
        assert st == 400, body
        st, durl = svc.get("/new?size=3")
        assert st == 200, durl
        prefix, token = durl.rsplit("/", 1)
        assert prefix == svc.url and len(token) == 32 and int(token, 16) >= 0, durl
        st, _, body = backend.request("GET", "/v2/keys/_etcd/registry?recursive=true")
        tokens = json.loads(body)["node"]["nodes"]
        assert [n["key"] for n in tokens] == ["/_etcd/registry/" + token]  # /health's is gone
        st, body = svc.get("/%s/_config/size" % token)       # proxied by the service
        assert st == 200 and json.loads(body)["node"]["value"] == "3", body

        ms = members(3, durl, kind=kind, prefix=kind[0])
        start_all(ms)
        wait_one_cluster(ms)
        st, body = svc.get("/" + token)
        assert st == 200, body
        got = sorted(n["value"] for n in json.loads(body)["node"]["nodes"] if "value" in n)
        assert got == sorted("%s=%s" % (m.name, m.peer_url) for m in ms)
        st, _, body = ms[1].request("PUT", "/v2/keys/k", body="value=v",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st in (200, 201), body
        st, _, body = ms[2].request("GET", "/v2/keys/k?quorum=true")
        assert st == 200 and json.loads(body)["node"]["value"] == "v", body
        # the token is full: a fourth member is refused
        rc, err, data = run_quorumd(tmp_path, "x4", durl, extra=["--discovery-fallback=exit"])
        assert rc == 1 and "quorumd: discovery: cluster is full" in err, err
        assert not os.path.exists(data)
    finally:
        svc.close()


# ------------------------------------------------------------------ --discovery-srv (DNS)
class SrvServer:
    """A DNS server on UDP 127.0.0.1 that answers SRV queries from `records`
    ({"_etcd-server._tcp.example.test": [(target, port), ...]}) and NXDOMAIN otherwise."""

    def __init__(self, records):
        import socket as socketmod
        self.records = records
        self.sock = socketmod.socket(socketmod.AF_INET, socketmod.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.queries = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def labels(name):
        return b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"

    def serve(self):
        import struct
        while True:
            try:
                q, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            qid, _, qd = struct.unpack("!HHH", q[:6])
            i, parts = 12, []
            while q[i]:
                parts.append(q[i + 1:i + 1 + q[i]].decode())
                i += 1 + q[i]
            qname, question = ".".join(parts), q[12:i + 5]
            qtype = struct.unpack("!H", q[i + 1:i + 3])[0]
            self.queries.append((qname, qtype))
            recs = self.records.get(qname.lower()) if qtype == 33 else None
            answers = b""
            for target, port in recs or []:
                rdata = struct.pack("!HHH", 0, 0, port) + self.labels(target)
                answers += struct.pack("!HHHIH", 0xC00C, 33, 1, 60, len(rdata)) + rdata
            flags = 0x8180 if recs else 0x8183
            head = struct.pack("!HHHHHH", qid, flags, 1, len(recs or []), 0, 0)
            self.sock.sendto(head + question + answers, peer)

    def close(self):
        self.sock.close()


class SrvMember(DiscoveryMember):
    def __init__(self, workdir, name, domain, dns, extra_args=()):
        super().__init__(workdir, name, "", extra_args=extra_args)
        self.domain, self.dns = domain, dns

    def argv(self):
        args = super().argv()
        i = args.index("--discovery")
        return args[:i] + ["--discovery-srv", self.domain] + args[i + 2:]

    def _spawn_and_wait(self, timeout):
        os.environ["QUORUMD_TEST_DNS"] = self.dns
        try:
            return super()._spawn_and_wait(timeout)
        finally:
            os.environ.pop("QUORUMD_TEST_DNS", None)


def test_dns_srv_bootstrap(tmp_path):
    """--discovery-srv: the members are the SRV records (http ones under _etcd-server, with
    --discovery-srv-name as the suffix); this member is the record that resolves to its peer
    URL, the others are "0", "1" until they publish their names, as etcd does."""
    ms = []
    dns = SrvServer({})
    try:
        for i in range(1, 4):
            m = SrvMember(str(tmp_path / ("s%d" % i)), "s%d" % i, "example.test", dns.addr,
                          extra_args=["--discovery-srv-name", "c1"])
            ms.append(m)
        dns.records["_etcd-server-c1._tcp.example.test"] = [("127.0.0.1.", m.peer_port) for m in ms]
        start_all(ms)
        wait_one_cluster(ms)
        st, _, body = ms[0].request("PUT", "/v2/keys/k", body="value=v",
                                    headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st in (200, 201)
        st, _, body = ms[2].request("GET", "/v2/keys/k?quorum=true")
        assert st == 200 and json.loads(body)["node"]["value"] == "v"
        assert ("_etcd-server-ssl-c1._tcp.example.test", 33) in dns.queries

        # A member that is not in the records, and a domain without any.
        env = dict(os.environ, QUORUMD_TEST_DNS=dns.addr)
        rc, err, data = run_quorumd(tmp_path, "x", None, env=env,
                                    extra=["--discovery-srv", "example.test", "--discovery-srv-name", "c1"])
        assert rc == 1 and 'cannot find local etcd member "x" in SRV records' in err, err
        rc, err, data = run_quorumd(tmp_path, "x", None, env=env, extra=["--discovery-srv", "nothing.test"])
        assert rc == 1 and "discovery: no members in the DNS SRV records of nothing.test" in err, err
        assert not os.path.exists(data)
    finally:
        bad = []
        for m in ms:
            if m.running():
                m.stop()
            log = m.all_logs(400000)
            if any(x in log for x in SANITIZER_MARKS):
                bad.append(log[-20000:])
        dns.close()
        assert not bad, bad
