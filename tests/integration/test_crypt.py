"""crypt (Debian's golang-github-xordataexchange-crypt), run unchanged against the server: a
command-line program on etcd's own Go v2 client library (go.etcd.io/etcd/client: KeysAPI Set
and Get, its JSON decoding and its error type). Values set from files, plain and encrypted
with OpenPGP, read back byte for byte and listed; v2 errors printed as the Go client decodes
them (code, message, cause, index); and the same against a follower of a 3-member cluster."""
import os
import shutil
import subprocess

import pytest

import cluster
from raft_cluster import make_cluster  # noqa: F401  (a fixture)

CRYPT = shutil.which("crypt-xordataexchange") or "/usr/bin/crypt-xordataexchange"
GPG = shutil.which("gpg") or "/usr/bin/gpg"


@pytest.fixture(autouse=True)
def _crypt_installed():
    if not os.path.exists(CRYPT):
        pytest.fail("%s is missing: scripts/deps --test installs it "
                    "(golang-github-xordataexchange-crypt)" % CRYPT, pytrace=False)


def crypt(endpoint, command, *args):
    out = subprocess.run([CRYPT, command, "-endpoint", endpoint] + list(args),
                         capture_output=True, text=True, timeout=30)
    return out.returncode, out.stdout, out.stderr


def node(server, key):
    st, hdrs, body = server.keys("GET", key)
    assert st == 200, body
    return body["node"]


def etcd_index(server, key):
    st, hdrs, body = server.keys("GET", key)
    return int({k.lower(): v for k, v in hdrs.items()}["x-etcd-index"])


CONFIG = '{"name": "caf\u00e9 \u2603", "ports": [80, 443],\n "path": "/srv/a b"}\n'


def test_plaintext_set_get_and_list(server, tmp_path):
    f = tmp_path / "config.json"
    f.write_text(CONFIG, encoding="utf-8")
    assert crypt(server.url, "set", "-plaintext", "/app/config", str(f)) == (0, "", "")
    assert node(server, "/app/config")["value"] == CONFIG       # stored as the file is
    assert crypt(server.url, "get", "-plaintext", "/app/config") == (0, CONFIG + "\n", "")
    # set again: the new value replaces it
    f.write_text("second\n")
    assert crypt(server.url, "set", "-plaintext", "/app/config", str(f)) == (0, "", "")
    assert crypt(server.url, "get", "-plaintext", "/app/config") == (0, "second\n\n", "")
    # list: "key: value" for each file directly below a directory (in the server's order:
    # etcd's is not sorted), values as they are (these end in a newline), directories skipped
    g = tmp_path / "other"
    g.write_text("x=1\n")
    assert crypt(server.url, "set", "-plaintext", "/app/a-other", str(g))[0] == 0
    st, _, _ = server.keys("PUT", "/app/sub/deep", form={"value": "below"})
    assert st == 201
    rc, out, err = crypt(server.url, "list", "-plaintext", "/app")
    assert (rc, err) == (0, "") and out.endswith("\n")
    assert sorted(out.splitlines()) == ["/app/a-other: x=1", "/app/config: second"]


def test_errors_as_the_go_client_decodes_them(server, tmp_path):
    st, _, _ = server.keys("PUT", "/app/file", form={"value": "v"})
    assert st == 201
    idx = etcd_index(server, "/app/file")
    rc, out, err = crypt(server.url, "get", "-plaintext", "/app/nope")
    assert (rc, out, err) == (1, "", "100: Key not found (/app/nope) [%d]\n" % idx)
    rc, out, err = crypt(server.url, "list", "-plaintext", "/nope")
    assert (rc, out, err) == (1, "", "100: Key not found (/nope) [%d]\n" % idx)
    rc, out, err = crypt(server.url, "list", "-plaintext", "/app/file")   # crypt's own check
    assert (rc, out, err) == (1, "", "key is not a directory\n")
    # a file where a directory is needed: error 104 from the server, decoded
    f = tmp_path / "v"
    f.write_text("w")
    rc, out, err = crypt(server.url, "set", "-plaintext", "/app/file/below", str(f))
    assert (rc, out) == (1, "")
    assert err.startswith("104: Not a directory (/app/file) ["), err
    assert node(server, "/app/file")["value"] == "v"                   # nothing written
    port = cluster.free_port()
    rc, out, err = crypt("http://127.0.0.1:%d" % port, "get", "-plaintext", "/app/file")
    assert rc == 1 and "client: etcd cluster is unavailable or misconfigured" in err, err


def make_keys(tmp_path):
    """An RSA OpenPGP key made with gpg: (armored public keyring, armored secret keyring)."""
    if not os.path.exists(GPG):
        pytest.fail("gpg is missing: scripts/deps --test installs it (gnupg)", pytrace=False)
    home = tmp_path / "gnupg"
    home.mkdir(mode=0o700)
    base = [GPG, "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run(base + ["--quick-gen-key", "quorum test <test@example.com>", "rsa2048",
                           "cert,sign,encr", "never"], check=True, capture_output=True, timeout=120)
    pub, sec = tmp_path / "pub.asc", tmp_path / "sec.asc"
    pub.write_bytes(subprocess.run(base + ["--armor", "--export"], check=True,
                                   capture_output=True, timeout=30).stdout)
    sec.write_bytes(subprocess.run(base + ["--armor", "--export-secret-keys"], check=True,
                                   capture_output=True, timeout=30).stdout)
    return str(pub), str(sec)


def test_encrypted_value_round_trip(server, tmp_path):
    pub, sec = make_keys(tmp_path)
    f = tmp_path / "secret.json"
    f.write_text(CONFIG, encoding="utf-8")
    assert crypt(server.url, "set", "-keyring", pub, "/app/secret", str(f)) == (0, "", "")
    stored = node(server, "/app/secret")["value"]
    assert "caf" not in stored and len(stored) > 200                # what is kept is ciphertext
    assert crypt(server.url, "get", "-secret-keyring", sec, "/app/secret") == (0, CONFIG + "\n", "")
    assert crypt(server.url, "list", "-secret-keyring", sec, "/app") == \
        (0, "/app/secret: " + CONFIG, "")


@pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd clusters only")
def test_through_a_follower_of_a_cluster(make_cluster, tmp_path):
    c = make_cluster(3).start()
    leader = c.leader()
    follower = c.followers(leader)[0]
    f = tmp_path / "config.json"
    f.write_text(CONFIG, encoding="utf-8")
    assert crypt(follower.url, "set", "-plaintext", "/app/config", str(f)) == (0, "", "")
    for m in c.members:
        st, _, body = m.keys("GET", "/app/config", params={"quorum": "true"})
        assert st == 200 and body["node"]["value"] == CONFIG
        assert crypt(m.url, "get", "-plaintext", "/app/config") == (0, CONFIG + "\n", "")
