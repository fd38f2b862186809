"""etcd's configuration file (--config-file, ETCD_CONFIG_FILE): the same YAML files given to
etcd 3.4 and to quorumd are refused by both or give both the same member, the flags and
ETCD_* variables are ignored as etcd ignores them, and TLS is set up from the file's
client-transport-security mapping."""
import os
import signal
import subprocess
import time

import pytest
import requests

import cluster
from conftest import SANITIZER_MARKS
from test_quorumctl_tls import make_pki

pytestmark = pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd's own command line")

# Each file is written with {client}, {peer} and {dir} filled in; etcd needs enable-v2 to serve
# the v2 API (its flags are ignored once a file is given, --enable-v2 too).
BASE = """\
data-dir: {dir}
listen-client-urls: http://127.0.0.1:{client}
advertise-client-urls: http://127.0.0.1:{client}
listen-peer-urls: http://127.0.0.1:{peer}
initial-advertise-peer-urls: http://127.0.0.1:{peer}
enable-v2: true
"""

# (what quorumd and etcd do with it, what the case shows, the settings after BASE). Each
# that serves names its member: with the default name, etcd keeps its default initial cluster
# (default=http://localhost:2380) and refuses a member advertising another peer URL, where
# quorumd, with a file as with flags, derives it from the advertised URL.
CASES = [
    ("serves", "a name and a cluster", "name: 'm1'\ninitial-cluster: m1=http://127.0.0.1:{peer}\n"
     "initial-cluster-token: 'tok'\ninitial-cluster-state: 'new'\n"),
    ("serves", "the name alone derives the initial cluster", "name: solo\n"),
    ("serves", "a repeated key: the last wins", "name: first\nname: second\n"),
    ("serves", "YAML 1.1 integers and booleans", "name: ints\nsnapshot-count: 0x10\n"
     "heartbeat-interval: 1_00\nelection-timeout: 1e3\nstrict-reconfig-check: off\n"
     "enable-v2: Y\n"),
    ("serves", "null keeps the default", "name: nulls\nsnapshot-count:\ndiscovery:\nwal-dir:\n"
     "initial-cluster-state: ~\n"),
    ("serves", "unknown keys are ignored", "name: typo\nhearbeat-interval: 5000\n"
     "client-transport-security:\n  no-such-key: 1\n"),
    ("serves", "lists", "name: lists\nlog-outputs: [stderr]\n"),
    ("serves", "etcd.conf.yml.sample's empty settings", "name: sample\nwal-dir:\n"
     "max-snapshots: 5\nmax-wals: 5\ncors:\ndiscovery-fallback: 'proxy'\ndiscovery-proxy:\ndiscovery-srv:\n"
     "proxy: 'off'\nproxy-failure-wait: 5000\nproxy-refresh-interval: 30000\n"
     "proxy-dial-timeout: 1000\nproxy-write-timeout: 5000\nproxy-read-timeout: 0\n"
     "client-transport-security:\n  cert-file:\n  key-file:\n  client-cert-auth: false\n"
     "  trusted-ca-file:\n  auto-tls: false\npeer-transport-security:\n  cert-file:\n"
     "  key-file:\n  client-cert-auth: false\n  trusted-ca-file:\n  auto-tls: false\n"
     "debug: false\nforce-new-cluster: false\nauto-compaction-retention: \"1\"\n"),
    ("refuses", "a quoted number", "heartbeat-interval: '200'\n"),
    ("refuses", "a quoted boolean", "enable-v2: 'true'\n"),
    ("refuses", "a negative number", "snapshot-count: -1\n"),
    ("refuses", "a fraction", "election-timeout: 1.5\n"),
    ("refuses", "a list for a single value", "cors: ['*']\n"),
    ("refuses", "a bad cluster state", "initial-cluster-state: bogus\n"),
    ("refuses", "TLS settings that are not a mapping", "client-transport-security: 5\n"),
    ("refuses", "a quoted boolean in a TLS mapping",
     "peer-transport-security:\n  client-cert-auth: 'true'\n"),
    ("refuses", "not YAML", "name: [a\n"),
    ("refuses", "timers etcd refuses", "heartbeat-interval: 500\n"),
]


def start(binary, yaml_text, workdir, args=(), env=None, via_env=False):
    """Starts binary with the file; returns (process, client port, log path)."""
    client, peer = cluster.free_port(), cluster.free_port()
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "etcd.conf.yml")
    with open(path, "w") as f:
        f.write((BASE + yaml_text).format(client=client, peer=peer,
                                          dir=os.path.join(workdir, "data")))
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    e.update(env or {})
    argv = [binary] + list(args)
    if via_env:
        e["ETCD_CONFIG_FILE"] = path
    else:
        argv += ["--config-file", path]
    log = os.path.join(workdir, "log")
    with open(log, "w") as out:
        p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=e,
                             stdin=subprocess.DEVNULL, start_new_session=True)
    return p, client, log


def outcome(p, client, log, timeout=15.0):
    """("serves", the member as /v2/members shows it) or ("refuses", the log)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if p.poll() is not None:
                return "refuses", open(log).read()
            try:
                r = requests.get("http://127.0.0.1:%d/v2/members" % client, timeout=1)
                if r.status_code == 200:
                    return "serves", r.json()["members"]
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError("neither served nor exited in %.0f s:\n%s" % (timeout, open(log).read()))
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        text = open(log).read()
        assert not [m for m in SANITIZER_MARKS if m in text], text


def comparable(members, client, peer_of):
    """The member with its ports replaced by names, so two servers' answers compare."""
    out = []
    for m in members:
        out.append({"name": m["name"],
                    "peerURLs": [peer_of(u) for u in m["peerURLs"]],
                    "clientURLs": [u.replace(":%d" % client, ":CLIENT") for u in m["clientURLs"]]})
    return out


@pytest.mark.time_limit(300)
def test_the_same_files_as_etcd(tmp_path):
    etcd = cluster.etcd_binary()
    if not etcd:
        pytest.skip("real etcd binary not found on PATH: the comparison with etcd 3.4 cannot run")
    for i, (expected, what, text) in enumerate(CASES):
        if expected == "refuses":  # (named, so that etcd refuses it for what the case shows)
            text = "name: refused\n" + text
        got = {}
        for kind, binary in (("etcd", etcd), ("quorumd", cluster.quorumd_binary())):
            p, client, log = start(binary, text, str(tmp_path / ("%d-%s" % (i, kind))))
            state, detail = outcome(p, client, log)
            if state == "serves":
                detail = comparable(detail, client, lambda u: u.rsplit(":", 1)[0] + ":PEER")
            got[kind] = (state, detail)
        assert got["etcd"][0] == expected, "%s: %r\netcd: %r" % (what, text, got["etcd"])
        if expected == "serves":
            assert got["quorumd"] == got["etcd"], "%s: %r\netcd: %r\nquorumd: %r" % (
                what, text, got["etcd"], got["quorumd"])
        else:  # (the messages differ: quorumd's names the key, the file and the line)
            assert got["quorumd"][0] == "refuses", "%s: %r\nquorumd: %r" % (what, text, got["quorumd"])


def test_flags_and_variables_are_ignored_and_etcd_config_file_names_the_file(tmp_path):
    p, client, log = start(cluster.quorumd_binary(), "name: from-file\n", str(tmp_path / "a"),
                           args=["--name", "from-flag", "--snapshot-count", "5"],
                           env={"ETCD_NAME": "from-env"}, via_env=True)
    state, members = outcome(p, client, log)
    assert state == "serves", members
    assert [m["name"] for m in members] == ["from-file"]
    text = open(log).read()
    assert 'Loading server configuration from "%s". Other configuration command line flags and ' \
           "environment variables will be ignored if provided." % (tmp_path / "a" / "etcd.conf.yml") in text
    assert "ETCD_NAME" not in text


def test_a_bad_value_names_the_key_the_file_and_the_line(tmp_path):
    p, client, log = start(cluster.quorumd_binary(), "name: x\nsnapshot-count: '100'\n",
                           str(tmp_path / "a"))
    state, text = outcome(p, client, log)
    assert state == "refuses"
    assert p.returncode == 2
    path = tmp_path / "a" / "etcd.conf.yml"
    assert text.splitlines()[0] == (
        "quorumd: snapshot-count in %s, line 8: a non-negative integer is needed, not the string "
        "\"100\" (write it without quotes)" % path)
    assert not os.path.exists(tmp_path / "a" / "data"), "nothing may be written for a refused file"


def test_client_tls_from_the_file(tmp_path):
    os.makedirs(tmp_path / "pki")
    pki = make_pki(str(tmp_path / "pki"))
    client, peer = cluster.free_port(), cluster.free_port()
    path = tmp_path / "etcd.conf.yml"
    path.write_text(
        "name: tls\n"
        "data-dir: %s\n"
        "listen-client-urls: https://127.0.0.1:%d\n"
        "advertise-client-urls: https://127.0.0.1:%d\n"
        "listen-peer-urls: http://127.0.0.1:%d\n"
        "initial-advertise-peer-urls: http://127.0.0.1:%d\n"
        "client-transport-security:\n"
        "  cert-file: %s\n"
        "  key-file: %s\n"
        "  client-cert-auth: true\n"
        "  trusted-ca-file: %s\n"
        % (tmp_path / "data", client, client, peer, peer, pki["server.crt"], pki["server.key"],
           pki["ca.crt"]))
    log = tmp_path / "log"
    with open(log, "w") as out:
        p = subprocess.Popen([cluster.quorumd_binary(), "--config-file", str(path)], stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    url = "https://127.0.0.1:%d/v2/keys/tls" % client
    mine = (pki["client.crt"], pki["client.key"])
    try:
        deadline = time.monotonic() + 15
        while True:
            assert p.poll() is None, open(log).read()
            try:
                r = requests.put(url, data={"value": "over https"}, verify=pki["ca.crt"],
                                 cert=mine, timeout=2)
                break
            except requests.exceptions.ConnectionError:
                assert time.monotonic() < deadline, open(log).read()
                time.sleep(0.05)
        assert r.status_code == 201
        assert requests.get(url, verify=pki["ca.crt"], cert=mine, timeout=5).json()["node"]["value"] \
            == "over https"
        with pytest.raises(requests.exceptions.SSLError):  # client-cert-auth: true
            requests.get(url, verify=pki["ca.crt"], timeout=5)
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        assert p.wait(timeout=15) == 0, open(log).read()
        assert not [m for m in SANITIZER_MARKS if m in open(log).read()], open(log).read()
