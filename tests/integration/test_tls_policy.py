"""etcd's TLS flags beyond certificates and CAs, each case run on quorumd and on etcd 3.4 with
the same flags: --client-crl-file and --peer-crl-file (a revoked certificate is refused; the
list is read again for every connection, so a certificate revoked while the server runs is
refused from then on), --client-cert-allowed-hostname, --peer-cert-allowed-cn and
--peer-cert-allowed-hostname (the certificate a client or member presents must carry that
name), and --cipher-suites (TLS 1.2 suites by their IANA/Go names; a TLS 1.2 client offering
none of them is refused, TLS 1.3 is not restricted). Member checks are made on the peer port,
which answers GET /members over HTTPS in both servers. Certificates come from make_pki (the
openssl command) plus a client certificate for a host name and a CRL made with `openssl ca`."""
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

import cluster
from test_quorumctl_tls import TLSEtcd, _openssl, make_pki
from test_tls import TLSQuorumd, start_fails

EXTRA_CNF = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[named]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
subjectAltName = DNS:app.example.test
[ca]
default_ca = ca_default
[ca_default]
database = index.txt
crlnumber = crlnumber
default_md = sha256
default_crl_days = 2
"""

KINDS = ["quorumd", "etcd"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.fail("the openssl command is missing (scripts/deps --test installs it)")
    d = str(tmp_path_factory.mktemp("pki"))
    p = make_pki(d)
    with open(os.path.join(d, "extra.cnf"), "w") as f:
        f.write(EXTRA_CNF)
    for name in ("named-client", "revoked-client"):
        _openssl(d, "req", "-config", "extra.cnf", "-new", "-newkey", "rsa:2048", "-nodes",
                 "-keyout", name + ".key", "-out", name + ".csr", "-subj", "/CN=" + name)
        _openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-set_serial", str(0x5000 + len(name)), "-out", name + ".crt", "-days", "2",
                 "-extfile", "extra.cnf", "-extensions", "named")
    p.update({n: os.path.join(d, n) for n in os.listdir(d)})
    p["dir"] = d
    return p


def write_crl(pki, revoked):
    """crl.pem, signed by the CA, revoking the certificates named (e.g. "client")."""
    d = pki["dir"]
    lines = []
    for name in revoked:
        out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", name + ".crt"],
                             cwd=d, capture_output=True, text=True, check=True)
        serial = out.stdout.strip().split("=", 1)[1]
        lines.append("R\t301231000000Z\t250101000000Z\t%s\tunknown\t/CN=%s\n" % (serial, name))
    with open(os.path.join(d, "index.txt"), "w") as f:
        f.writelines(lines)
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("1000\n")
    _openssl(d, "ca", "-config", "extra.cnf", "-gencrl", "-batch", "-keyfile", "ca.key",
             "-cert", "ca.crt", "-out", "crl.new")
    os.replace(os.path.join(d, "crl.new"), os.path.join(d, "crl.pem"))   # whole, at once
    return os.path.join(d, "crl.pem")


def server_class(kind):
    base = TLSQuorumd if kind == "quorumd" else TLSEtcd

    class PolicyServer(base):
        """An https member (client certificates required) with extra flags; with peer_tls its
        peer URL is https too, member certificates required there."""

        def __init__(self, workdir, pki, extra=(), peer_tls=False, health_cert="client"):
            super().__init__(workdir, pki, client_cert_auth=True)
            self.extra = list(extra)
            self.peer_tls = peer_tls
            self.health_cert = health_cert

        def _healthy(self):
            return fetch(self.url + "/health", self.pki, self.health_cert) == 200

        @property
        def peer_url(self):
            return "https://127.0.0.1:%d" % self.peer_port

        def argv(self):
            a = super().argv()
            if self.peer_tls:
                http_peer = "http://127.0.0.1:%d" % self.peer_port
                a = [x.replace(http_peer, self.peer_url) for x in a]
                a += ["--peer-cert-file", self.pki["member.crt"],
                      "--peer-key-file", self.pki["member.key"],
                      "--peer-client-cert-auth", "--peer-trusted-ca-file", self.pki["ca.crt"]]
            return a + self.extra

    return PolicyServer


@pytest.fixture
def start(tmp_path, pki):
    started = []

    def make(kind, extra=(), peer_tls=False, health_cert="client"):
        if kind == "etcd" and not cluster.etcd_binary():
            pytest.skip("etcd is not installed")
        s = server_class(kind)(str(tmp_path / ("%s%d" % (kind, len(started)))), pki, extra,
                               peer_tls, health_cert)
        os.makedirs(s.workdir)
        started.append(s)
        return s.start()

    yield make
    for s in started:
        s.stop()


def fetch(url, pki, cert, tls12_ciphers=None):
    """GET url presenting cert (a make_pki name): the HTTP status, or "refused" when the TLS
    session (handshake, or the first read after a TLS 1.3 handshake) fails."""
    ctx = ssl.create_default_context(cafile=pki["ca.crt"])
    if cert:
        ctx.load_cert_chain(pki[cert + ".crt"], pki[cert + ".key"])
    if tls12_ciphers:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_ciphers(tls12_ciphers)
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return "refused"


@pytest.mark.parametrize("kind", KINDS)
def test_client_crl_refuses_revoked_certificates(start, pki, kind):
    crl = write_crl(pki, ["revoked-client"])
    s = start(kind, ["--client-crl-file", crl])
    assert fetch(s.url + "/version", pki, "client") == 200
    assert fetch(s.url + "/version", pki, "named-client") == 200
    assert fetch(s.url + "/version", pki, "revoked-client") == "refused"
    # revoked while the server runs: refused from the next connection on
    write_crl(pki, ["revoked-client", "client"])
    assert fetch(s.url + "/version", pki, "client") == "refused"
    assert fetch(s.url + "/version", pki, "named-client") == 200
    if kind == "quorumd":
        assert "revoked" in s.log(), s.log()[-2000:]


@pytest.mark.parametrize("kind", KINDS)
def test_client_cert_allowed_hostname(start, pki, kind):
    s = start(kind, ["--client-cert-allowed-hostname", "app.example.test"],
              health_cert="named-client")
    assert fetch(s.url + "/v2/keys/", pki, "named-client") == 200
    assert fetch(s.url + "/v2/keys/", pki, "client") == "refused"     # no such name in it
    assert fetch(s.url + "/v2/keys/", pki, None) == "refused"         # none at all


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("flags, allowed, refused", [
    (["--peer-cert-allowed-cn", "member"], "member", "client"),
    (["--peer-cert-allowed-hostname", "127.0.0.1"], "member", "named-client"),
])
def test_member_certificate_names(start, pki, kind, flags, allowed, refused):
    s = start(kind, flags, peer_tls=True)
    assert fetch(s.peer_url + "/members", pki, allowed) == 200
    assert fetch(s.peer_url + "/members", pki, refused) == "refused"
    assert fetch(s.url + "/version", pki, "client") == 200         # the client side unchanged


@pytest.mark.parametrize("kind", KINDS)
def test_peer_crl(start, pki, kind):
    crl = write_crl(pki, ["client"])
    s = start(kind, ["--peer-crl-file", crl], peer_tls=True)
    assert fetch(s.peer_url + "/members", pki, "member") == 200
    assert fetch(s.peer_url + "/members", pki, "client") == "refused"
    assert fetch(s.url + "/version", pki, "client") == 200         # --client-crl-file is not set


@pytest.mark.parametrize("kind", KINDS)
def test_cipher_suites(start, pki, kind):
    s = start(kind, ["--cipher-suites",
                     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305"])
    url = s.url + "/version"
    assert fetch(url, pki, "client", "ECDHE-RSA-AES128-GCM-SHA256") == 200
    assert fetch(url, pki, "client", "ECDHE-RSA-CHACHA20-POLY1305") == 200
    assert fetch(url, pki, "client", "ECDHE-RSA-AES256-GCM-SHA384") == "refused"
    assert fetch(url, pki, "client", "AES128-GCM-SHA256") == "refused"
    assert fetch(url, pki, "client") == 200                           # TLS 1.3


def test_both_member_names_at_once_are_refused_as_by_etcd(tmp_path, pki):
    peer = "https://127.0.0.1:%d" % cluster.free_port()
    args = ["--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", "t=" + peer, "--peer-cert-file", pki["member.crt"],
            "--peer-key-file", pki["member.key"], "--peer-client-cert-auth",
            "--peer-trusted-ca-file", pki["ca.crt"],
            "--peer-cert-allowed-cn", "nobody", "--peer-cert-allowed-hostname", "127.0.0.1"]
    rc, log, made = start_fails(tmp_path, args)
    assert rc == 1 and not made, log
    assert ('AllowedCN and AllowedHostname are mutually exclusive (cn="nobody", '
            'hostname="127.0.0.1")') in log, log


def test_bad_settings_are_refused_at_start(tmp_path, pki):
    https = "https://127.0.0.1:%d" % cluster.free_port()
    base = ["--listen-client-urls", https, "--advertise-client-urls", https,
            "--cert-file", pki["server.crt"], "--key-file", pki["server.key"],
            "--client-cert-auth", "--trusted-ca-file", pki["ca.crt"]]
    rc, log, made = start_fails(tmp_path, base + ["--cipher-suites", "TLS_NOPE_WITH_NOTHING"])
    assert rc == 1 and not made and 'unexpected TLS cipher suite "TLS_NOPE_WITH_NOTHING"' in log, log
    missing = str(tmp_path / "missing.crl")
    rc, log, made = start_fails(tmp_path, base + ["--client-crl-file", missing])
    assert rc == 1 and not made and "TLS: cannot read the CRL file " + missing in log, log
    rc, log, made = start_fails(tmp_path, base + ["--client-crl-file", pki["no-pem.txt"]])
    assert rc == 1 and not made and "holds no certificate revocation list" in log, log
