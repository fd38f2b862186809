"""quorumctl's TLS options against etcdctl v2's, on real etcd 3.4 serving https.

A CA, a server certificate (SAN IP:127.0.0.1), a client certificate and a client certificate
of another CA are made with the `openssl` command in a temporary directory. Two servers:

  server TLS only        etcd --cert-file --key-file on an https:// client URL
  client certificates    the same plus --client-cert-auth --trusted-ca-file

Every case runs `ETCDCTL_API=2 etcdctl` and quorumctl with the same arguments (and the same
ETCDCTL_* variables) against the same server; stdout, stderr and the exit status must be equal,
and the important ones are also checked against the exact text etcdctl prints. Covered: --ca-file,
--cert-file, --key-file and ETCDCTL_CA_FILE / ETCDCTL_CERT_FILE / ETCDCTL_KEY_FILE; no CA (Go's
"x509: certificate signed by unknown authority", exit 4 for keys commands, 1 for member list, 4 for
cluster-health); unreadable or wrong files (etcdctl's messages, exit 1, and exit 4 for
cluster-health); a client certificate required and given, not given, or from another CA
("remote error: tls: bad certificate"); a key that does not belong to the certificate; an
http:// URL on the https port ("EOF").

etcdctl v2 has no --insecure-skip-tls-verify (its flag list has none); quorumctl rejects it the
same way, which is checked too.

libcurl is not Go: where Go's wording comes from its TLS stack, quorumctl maps libcurl's errors to
it (proto/v2_client.c, tls_failure). One difference is left to normalising: etcdctl itself
sometimes prefixes the alert with "readLoopPeekFailLocked: " (a race inside Go's net/http between
the alert and the connection's reader); that prefix is removed from etcdctl's output before the
comparison.
"""
import os
import re
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request

import pytest

import cluster
from test_quorumctl import CTL_TIMEOUT, ctl_env, quorumctl_binary

START_TIMEOUT = 20.0

UNKNOWN_CA = "x509: certificate signed by unknown authority"
BAD_CERT = "remote error: tls: bad certificate"


def cluster_err(msg):
    return ("Error:  client: etcd cluster is unavailable or misconfigured; error #0: %s\n\n"
            "error #0: %s\n\n" % (msg, msg))


# --------------------------------------------------------------------------- certificates
OPENSSL_CNF = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
[member]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1
"""


def _openssl(d, *args):
    p = subprocess.run(["openssl"] + list(args), cwd=d, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60)
    assert p.returncode == 0, "openssl %s:\n%s" % (" ".join(args), p.stdout.decode())


def make_pki(d):
    """ca.crt; server.crt/key signed by it; client.crt/key signed by it; other-client.crt/key
    signed by another CA; member.crt/key (server and client use, as a cluster member presents
    it both ways) signed by ca, other-member.crt/key by the other CA. Returns a dict of absolute
    paths."""
    with open(os.path.join(d, "openssl.cnf"), "w") as f:
        f.write(OPENSSL_CNF)

    def ca(name):
        _openssl(d, "req", "-config", "openssl.cnf", "-x509", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".crt", "-days", "2",
                 "-subj", "/CN=" + name, "-extensions", "v3_ca")

    def leaf(name, ca_name, ext):
        _openssl(d, "req", "-config", "openssl.cnf", "-new", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        _openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", ca_name + ".crt",
                 "-CAkey", ca_name + ".key", "-set_serial", str(int(time.time() * 1000)),
                 "-out", name + ".crt", "-days", "2", "-extfile", "openssl.cnf",
                 "-extensions", ext)

    ca("ca")
    ca("other-ca")
    leaf("server", "ca", "server")
    leaf("client", "ca", "client")
    leaf("other-client", "other-ca", "client")
    leaf("member", "ca", "member")
    leaf("other-member", "other-ca", "member")
    with open(os.path.join(d, "no-pem.txt"), "w") as f:
        f.write("not a PEM file\n")
    return {n: os.path.join(d, n) for n in os.listdir(d)}


# --------------------------------------------------------------------------- an https etcd
class TLSEtcd:
    """One real etcd member whose client URL is https://127.0.0.1:<free port>."""

    def __init__(self, workdir, pki, client_cert_auth=False):
        self.workdir = workdir
        self.pki = pki
        self.client_cert_auth = client_cert_auth
        self.proc = None
        self.log_path = os.path.join(workdir, "etcd.log")

    @property
    def url(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def http_url(self):
        return "http://127.0.0.1:%d" % self.port

    def argv(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        a = [cluster.etcd_binary(), "--enable-v2", "--name", "t",
             "--data-dir", os.path.join(self.workdir, "data"),
             "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
             "--initial-cluster", "t=" + peer,
             "--cert-file", self.pki["server.crt"], "--key-file", self.pki["server.key"]]
        if self.client_cert_auth:
            a += ["--client-cert-auth", "--trusted-ca-file", self.pki["ca.crt"]]
        return a

    def _healthy(self):
        ctx = ssl.create_default_context(cafile=self.pki["ca.crt"])
        if self.client_cert_auth:
            ctx.load_cert_chain(self.pki["client.crt"], self.pki["client.key"])
        try:
            with urllib.request.urlopen(self.url + "/health", context=ctx, timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def start(self):
        for _ in range(3):
            self.port = cluster.free_port()
            self.peer_port = cluster.free_port()
            with open(self.log_path, "wb") as log:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                             stderr=subprocess.STDOUT, cwd=self.workdir,
                                             start_new_session=True)
            cluster._live.add(self.proc)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                if self._healthy():
                    return self
                time.sleep(0.1)
            self.stop()
            if "address already in use" not in self.log().lower():
                break
            shutil.rmtree(os.path.join(self.workdir, "data"), ignore_errors=True)
        pytest.fail("https etcd did not start:\n%s" % self.log()[-5000:], pytrace=False)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc is None:
            return
        cluster._kill_group(self.proc, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            cluster._kill_group(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=10)
        cluster._live.discard(self.proc)
        self.proc = None


# --------------------------------------------------------------------------- running both
def run(binary, url, args, env_extra=None, stdin=b""):
    env = ctl_env()
    env.update(env_extra or {})
    try:
        p = subprocess.run([binary, "--endpoints", url] + list(args), input=stdin,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                           timeout=CTL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return ("TIMEOUT", "", "")
    return (p.returncode, p.stdout.decode("utf-8", "replace"),
            p.stderr.decode("utf-8", "replace"))


def norm_etcdctl(res):
    rc, out, err = res
    return rc, out, err.replace("readLoopPeekFailLocked: ", "")


def compare_cases(url, cases):
    """cases: (args, env, want or None). Runs etcdctl then quorumctl for each; returns the list
    of differences (and of etcdctl answers that are not the expected ones)."""
    diffs = []
    for args, env, want in cases:
        ref = norm_etcdctl(run(cluster.etcdctl_binary(), url, args, env))
        got = run(quorumctl_binary(), url, args, env)
        label = "%s %s" % (" ".join("%s=%s" % kv for kv in (env or {}).items()), " ".join(args))
        if want is not None and ref != want:
            diffs.append("### %s\netcdctl itself printed something else than expected:\n"
                         "  want: %r\n  etcdctl: %r" % (label, want, ref))
        if got != ref:
            diffs.append("### %s\n  etcdctl:   %r\n  quorumctl: %r" % (label, ref, got))
    return diffs


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.fail("the openssl command is missing (scripts/deps --test installs it)")
    if not cluster.etcd_binary() or not cluster.etcdctl_binary():
        pytest.skip("etcd/etcdctl not found on PATH")
    if not os.path.exists(quorumctl_binary()):
        pytest.fail("quorumctl binary %r does not exist (set QUORUMCTL)" % quorumctl_binary())
    return make_pki(str(tmp_path_factory.mktemp("pki")))


def tls_servers(cls, tmp_path, pki, prefix):
    """For a fixture: yields make(client_cert_auth=False), which starts a cls server in its own
    directory under tmp_path and returns its URL; stops every one started afterwards."""
    started = []

    def make(client_cert_auth=False):
        s = cls(str(tmp_path / ("%s%d" % (prefix, len(started)))), pki, client_cert_auth)
        os.makedirs(s.workdir)
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.stop()


@pytest.fixture
def tls_etcd(tmp_path, pki):
    yield from tls_servers(TLSEtcd, tmp_path, pki, "etcd")


# --------------------------------------------------------------------------- the tests
@pytest.mark.time_limit(120)
def test_server_tls_like_etcdctl(tls_etcd, pki):
    srv = tls_etcd()
    ca = pki["ca.crt"]
    missing = os.path.join(os.path.dirname(ca), "missing.pem")
    health = ("member <id> is healthy: got healthy result from %s\ncluster is healthy\n" % srv.url)
    cases = [
        (["--ca-file", ca, "set", "/tls/k", "v"], None, (0, "v\n", "")),
        (["--ca-file", ca, "get", "/tls/k"], None, (0, "v\n", "")),
        (["--ca-file", ca, "--no-sync", "-o", "json", "get", "/tls/missing"], None, None),
        (["get", "/tls/k"], {"ETCDCTL_CA_FILE": ca}, (0, "v\n", "")),
        (["member", "list"], {"ETCDCTL_CA_FILE": ca}, None),
        (["--ca-file", ca, "cluster-health"], None, None),
        # without the CA: the sync's failure is not a connection error, the get's is exit 4
        (["get", "/tls/k"], None, (4, "", cluster_err(UNKNOWN_CA))),
        (["--no-sync", "get", "/tls/k"], None, (4, "", cluster_err(UNKNOWN_CA))),
        (["member", "list"], None,
         (1, "", "client: etcd cluster is unavailable or misconfigured; error #0: %s\n\n" % UNKNOWN_CA)),
        (["cluster-health"], None,
         (4, "cluster may be unhealthy: failed to list members\n", cluster_err(UNKNOWN_CA))),
        # a CA that did not sign the server's certificate, a CA file without certificates
        (["--ca-file", pki["other-ca.crt"], "get", "/tls/k"], None, (4, "", cluster_err(UNKNOWN_CA))),
        (["--ca-file", pki["no-pem.txt"], "get", "/tls/k"], None, (4, "", cluster_err(UNKNOWN_CA))),
        # files that cannot be used: etcdctl's newClient fails (exit 1), before any request
        (["--ca-file", missing, "get", "/tls/k"], None,
         (1, "", "open %s: no such file or directory\n" % missing)),
        (["get", "/tls/k"], {"ETCDCTL_CA_FILE": missing},
         (1, "", "open %s: no such file or directory\n" % missing)),
        (["--ca-file", missing, "member", "list"], None,
         (1, "", "open %s: no such file or directory\n" % missing)),
        (["--ca-file", missing, "cluster-health"], None,
         (4, "", "Error:  open %s: no such file or directory\n" % missing)),
        (["--ca-file", os.path.dirname(ca), "get", "/tls/k"], None,
         (1, "", "read %s: is a directory\n" % os.path.dirname(ca))),
        (["--ca-file", pki["client.key"], "get", "/tls/k"], None,
         (1, "", "x509: malformed tbs certificate\n")),
        (["--ca-file", ca, "--cert-file", pki["client.crt"], "get", "/tls/k"], None,
         (1, "", "KeyFile and CertFile must both be present[key: , cert: %s]\n" % pki["client.crt"])),
        (["--ca-file", ca, "get", "/tls/k"], {"ETCDCTL_KEY_FILE": pki["client.key"]},
         (1, "", "KeyFile and CertFile must both be present[key: %s, cert: ]\n" % pki["client.key"])),
        (["--ca-file", ca, "--cert-file", pki["client.key"], "--key-file", pki["client.crt"],
          "get", "/tls/k"], None,
         (1, "", "tls: failed to find certificate PEM data in certificate input, but did find a "
                 "private key; PEM inputs may have been switched\n")),
        (["--ca-file", ca, "--cert-file", pki["client.crt"], "--key-file", pki["client.crt"],
          "get", "/tls/k"], None,
         (1, "", "tls: found a certificate rather than a key in the PEM for the private key\n")),
        (["--ca-file", ca, "--cert-file", pki["no-pem.txt"], "--key-file", pki["client.key"],
          "get", "/tls/k"], None, (1, "", "tls: failed to find any PEM data in certificate input\n")),
        (["--ca-file", ca, "--cert-file", pki["client.crt"], "--key-file", pki["no-pem.txt"],
          "get", "/tls/k"], None, (1, "", "tls: failed to find any PEM data in key input\n")),
        # a key of another certificate: found by libcurl when it loads them for the handshake
        (["--ca-file", ca, "--cert-file", pki["client.crt"], "--key-file", pki["server.key"],
          "get", "/tls/k"], None, (1, "", "tls: private key does not match public key\n")),
        (["--ca-file", ca, "--cert-file", pki["client.crt"], "--key-file", pki["server.key"],
          "cluster-health"], None, (4, "", "Error:  tls: private key does not match public key\n")),
        # a server that does not ask for a client certificate ignores the one given
        (["--ca-file", ca, "--cert-file", pki["client.crt"], "--key-file", pki["client.key"],
          "get", "/tls/k"], None, (0, "v\n", "")),
    ]
    diffs = compare_cases(srv.url, cases)
    # cluster-health with the CA: the member id is random, so check its shape apart
    rc, out, err = run(quorumctl_binary(), srv.url, ["--ca-file", ca, "cluster-health"])
    assert (rc, re.sub(r"\b[0-9a-f]{14,16}\b", "<id>", out), err) == (0, health, "")
    # http:// on the https port: etcd's listener closes the connection (Go: "EOF")
    diffs += compare_cases(srv.http_url, [
        (["--no-sync", "get", "/tls/k"], None, (4, "", cluster_err("EOF"))),
    ])
    assert not diffs, "\n\n".join(diffs)
    # etcdctl v2 has no --insecure-skip-tls-verify: a usage error (the app help that follows
    # lists other commands, so only its first line is compared)
    args = ["--insecure-skip-tls-verify", "get", "/tls/k"]
    ref, got = run(cluster.etcdctl_binary(), srv.url, args), run(quorumctl_binary(), srv.url, args)
    want = (1, "Incorrect Usage. flag provided but not defined: -insecure-skip-tls-verify",
            "flag provided but not defined: -insecure-skip-tls-verify\n")
    assert (ref[0], ref[1].split("\n")[0], ref[2]) == want
    assert (got[0], got[1].split("\n")[0], got[2]) == want


@pytest.mark.time_limit(120)
def test_client_cert_auth_like_etcdctl(tls_etcd, pki):
    srv = tls_etcd(client_cert_auth=True)
    ca, crt, key = pki["ca.crt"], pki["client.crt"], pki["client.key"]
    tls = ["--ca-file", ca, "--cert-file", crt, "--key-file", key]
    env = {"ETCDCTL_CA_FILE": ca, "ETCDCTL_CERT_FILE": crt, "ETCDCTL_KEY_FILE": key}
    other = ["--ca-file", ca, "--cert-file", pki["other-client.crt"],
             "--key-file", pki["other-client.key"]]
    cases = [
        # required and given
        (tls + ["set", "/cc/k", "v"], None, (0, "v\n", "")),
        (tls + ["-o", "extended", "--no-sync", "get", "/cc/nothere"], None, None),
        (["get", "/cc/k"], env, (0, "v\n", "")),
        (["-o", "json", "get", "/cc/k"], env, None),
        (tls + ["ls", "--sort", "/cc"], None, (0, "/cc/d\n/cc/k\n", "")),
        # flags win over the variables
        (["--cert-file", crt, "--key-file", key, "get", "/cc/k"],
         {"ETCDCTL_CA_FILE": ca, "ETCDCTL_CERT_FILE": pki["other-client.crt"],
          "ETCDCTL_KEY_FILE": pki["other-client.key"]}, (0, "v\n", "")),
        # required and not given: the server's alert
        (["--ca-file", ca, "get", "/cc/k"], None, (4, "", cluster_err(BAD_CERT))),
        (["--ca-file", ca, "--no-sync", "get", "/cc/k"], None, (4, "", cluster_err(BAD_CERT))),
        (["--ca-file", ca, "set", "/cc/k", "x"], None, (4, "", cluster_err(BAD_CERT))),
        (["--ca-file", ca, "member", "list"], None,
         (1, "", "client: etcd cluster is unavailable or misconfigured; error #0: %s\n\n" % BAD_CERT)),
        (["--ca-file", ca, "cluster-health"], None,
         (4, "cluster may be unhealthy: failed to list members\n", cluster_err(BAD_CERT))),
        # given, but from a CA the server does not trust
        (other + ["get", "/cc/k"], None, (4, "", cluster_err(BAD_CERT))),
        # given, but the server's certificate is not trusted either
        (["--cert-file", crt, "--key-file", key, "get", "/cc/k"], None,
         (4, "", cluster_err(UNKNOWN_CA))),
    ]
    assert run(quorumctl_binary(), srv.url, tls + ["mkdir", "/cc/d"]) == (0, "", "")
    diffs = compare_cases(srv.url, cases)
    assert not diffs, "\n\n".join(diffs)
    # the value was not changed by the refused set
    assert run(quorumctl_binary(), srv.url, tls + ["get", "/cc/k"]) == (0, "v\n", "")
