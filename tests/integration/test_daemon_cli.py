"""quorumd as a program: etcd's flags and ETCD_* variables, --version/--help, errors naming
the flag, and the data dir's format record (a foreign or damaged dir is refused, untouched)."""
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request

import pytest

import cluster

pytestmark = pytest.mark.skipif(cluster.is_etcd_target(), reason="quorumd's own command line")


def run(args, env=None, timeout=10):
    e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    e.update(env or {})
    return subprocess.run([cluster.quorumd_binary()] + args, capture_output=True, text=True,
                          timeout=timeout, env=e, stdin=subprocess.DEVNULL)


def answers(port):
    """True once a server on 127.0.0.1:port answers GET /version."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/version" % port, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def tree_digest(root):
    """A digest of every file name and content below root (LevelDB's informational LOG files
    and its LOCK file, which any open rewrites, excepted)."""
    h = hashlib.sha256()
    for d, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for f in sorted(files):
            if f in ("LOG", "LOG.old", "LOCK"):
                continue
            p = os.path.join(d, f)
            h.update(p.encode())
            with open(p, "rb") as fh:
                h.update(fh.read())
    return h.hexdigest()


def test_version_first_line():
    r = run(["--version"])
    assert r.returncode == 0
    assert r.stdout.splitlines()[0].startswith("quorumd Version: ")


def test_version_single_dash_and_env_ignored():
    r = run(["-version"], env={"ETCD_VERSION": "3.4.0"})
    assert r.returncode == 0
    assert r.stdout.startswith("quorumd Version: ")


def test_help_lists_flags():
    r = run(["--help"])
    assert r.returncode == 0
    for flag in ("--name", "--data-dir", "--listen-client-urls", "--advertise-client-urls",
                 "--initial-cluster", "--snapshot-count", "--heartbeat-interval",
                 "--election-timeout"):
        assert flag in r.stdout


def test_every_flag_of_etcds_help_is_known():
    """Each flag `etcd --help` (3.4) lists is one quorumd knows: used, accepted and ignored, or
    refused with a reason, but never "unknown flag" (given with a value, then --version)."""
    etcd = cluster.etcd_binary()
    if not etcd:
        pytest.skip("etcd is not installed")
    out = subprocess.run([etcd, "--help"], capture_output=True, text=True, timeout=10)
    flags = sorted({w for line in (out.stdout + out.stderr).splitlines()
                    for w in line.split()[:1] if w.startswith("--") and len(w) > 3})
    assert len(flags) > 60, flags
    unknown = [f for f in flags if "unknown flag" in run([f + "=1", "--version"]).stderr]
    assert not unknown, unknown


def test_unknown_flag_is_named():
    r = run(["--no-such-flag", "1"])
    assert r.returncode != 0
    assert "--no-such-flag" in r.stderr


def test_bad_number_is_named():
    r = run(["--snapshot-count", "lots"])
    assert r.returncode != 0
    assert "snapshot-count" in r.stderr and "lots" in r.stderr


def test_bad_env_value_is_named(tmp_path):
    r = run(["--data-dir", str(tmp_path / "d")], env={"ETCD_HEARTBEAT_INTERVAL": "soon"})
    assert r.returncode != 0
    assert "ETCD_HEARTBEAT_INTERVAL" in r.stderr


def test_env_variables_configure_the_server(tmp_path):
    """ETCD_* variables alone are enough to start a member."""
    port, peer = cluster.free_port(), cluster.free_port()
    url = "http://127.0.0.1:%d" % port
    env = {
        "ETCD_NAME": "envnode",
        "ETCD_DATA_DIR": str(tmp_path / "data"),
        "ETCD_LISTEN_CLIENT_URLS": url,
        "ETCD_ADVERTISE_CLIENT_URLS": url,
        "ETCD_LISTEN_PEER_URLS": "http://127.0.0.1:%d" % peer,
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": "http://127.0.0.1:%d" % peer,
    }
    srv = cluster.Server(str(tmp_path), name="envnode")
    srv.client_port, srv.peer_port = port, peer
    p = subprocess.Popen([cluster.quorumd_binary()], env=dict(os.environ, **env),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        import time
        deadline = time.time() + 10
        while True:
            try:
                st, _, body = cluster.http_request(url, path="/v2/members")
                break
            except OSError:
                assert time.time() < deadline, "server did not start"
                time.sleep(0.05)
        assert st == 200
        assert b'"name":"envnode"' in body
        assert os.path.exists(str(tmp_path / "data" / "quorumd.meta"))
    finally:
        p.terminate()
        p.wait(10)
    assert p.returncode == 0


def test_log_outputs(tmp_path):
    """--log-outputs (and ETCD_LOG_OUTPUTS) as etcd's: the log goes to a file (appended to, mode
    0600), to stdout, or to stderr (default); a list of outputs or a file that cannot be opened is
    refused at start."""
    sanitizer_marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
    for how in ("flag", "env", "stdout"):
        port, peer = cluster.free_port(), cluster.free_port()
        url = "http://127.0.0.1:%d" % port
        logfile = tmp_path / ("%s.log" % how)
        args = [cluster.quorumd_binary(), "--data-dir", str(tmp_path / ("d-" + how)),
                "--listen-client-urls", url, "--advertise-client-urls", url,
                "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
                "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
                "--initial-cluster", "default=http://127.0.0.1:%d" % peer]
        env = dict(os.environ)
        if how == "flag":
            args += ["--log-outputs", str(logfile)]
        elif how == "env":
            env["ETCD_LOG_OUTPUTS"] = str(logfile)
        else:
            args += ["--log-outputs", "stdout"]
        with open(tmp_path / ("%s.out" % how), "w") as out:
            p = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.PIPE, text=True,
                                 stdin=subprocess.DEVNULL)
            try:
                deadline = time.time() + 10
                while not answers(port):
                    assert time.time() < deadline, "server did not start"
                    time.sleep(0.05)
            finally:
                p.terminate()
                _, err = p.communicate(timeout=10)
        assert p.returncode == 0
        assert err == ""  # nothing left on stderr
        log = (tmp_path / ("%s.out" % how) if how == "stdout" else logfile).read_text()
        assert "quorumd: ready to serve client requests on %s\n" % url in log
        assert "received signal 15, shutting down" in log
        assert not any(m in log for m in sanitizer_marks), log[-5000:]
        if how != "stdout":
            assert oct(os.stat(logfile).st_mode & 0o777) == "0o600"
    r = run(["--data-dir", str(tmp_path / "x"), "--log-outputs", "stderr," + str(tmp_path / "y.log")])
    assert r.returncode == 1
    assert "quorumd writes its log to one output" in r.stderr
    r = run(["--data-dir", str(tmp_path / "x"), "--log-outputs", str(tmp_path / "no" / "such.log")])
    assert r.returncode == 1
    assert "cannot open the log output %s: No such file or directory" % (tmp_path / "no" / "such.log") in r.stderr
    assert not os.path.exists(tmp_path / "x")


def test_log_outputs_systemd_journal(tmp_path):
    """--log-outputs systemd/journal, etcd's name for journald: the log is a stream to
    journald's stdout socket, as systemd connects a service's output (its header, then a line
    an entry). Here a stand-in journald listens where the test hook points the member; without
    journald the output is refused at start, as etcd refuses it, and nothing is written."""
    import socket
    sock_path = str(tmp_path / "stdout.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    port, peer = cluster.free_port(), cluster.free_port()
    url = "http://127.0.0.1:%d" % port
    args = [cluster.quorumd_binary(), "--data-dir", str(tmp_path / "d"),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", "http://127.0.0.1:%d" % peer,
            "--initial-advertise-peer-urls", "http://127.0.0.1:%d" % peer,
            "--initial-cluster", "default=http://127.0.0.1:%d" % peer,
            "--log-outputs", "systemd/journal"]
    env = dict(os.environ, QUORUMD_TEST_HOOKS="1", QUORUMD_TEST_JOURNAL=sock_path)
    p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, stdin=subprocess.DEVNULL)
    got = b""
    try:
        srv.settimeout(10)
        conn, _ = srv.accept()
        conn.settimeout(10)
        deadline = time.time() + 10
        while not answers(port):
            assert time.time() < deadline, "server did not start"
            time.sleep(0.05)
        while b"ready to serve client requests" not in got:
            got += conn.recv(65536)
    finally:
        p.terminate()
        out, err = p.communicate(timeout=10)
    while True:
        more = conn.recv(65536)
        if not more:
            break
        got += more
    conn.close()
    srv.close()
    assert p.returncode == 0
    assert out == "" and err == ""  # everything went to the journal
    head, _, lines = got.decode().partition("0\n0\n0\n0\n")
    assert head == "quorumd\n\n6\n", got[:100]
    assert "quorumd: ready to serve client requests on %s\n" % url in lines
    assert lines.endswith("quorumd: received signal 15, shutting down\n"), lines[-300:]
    # No journald: refused, before the data dir is made.
    r = run(["--data-dir", str(tmp_path / "x"), "--log-outputs", "systemd/journal"],
            env={"QUORUMD_TEST_HOOKS": "1", "QUORUMD_TEST_JOURNAL": str(tmp_path / "none.sock")})
    assert r.returncode == 1
    assert r.stderr == ("quorumd: --log-outputs=systemd/journal: can't find journal (connect %s: "
                        "No such file or directory)\n" % (tmp_path / "none.sock")), r.stderr
    assert not os.path.exists(tmp_path / "x")


def test_flag_wins_over_env(tmp_path, make_server):
    """--name on the command line wins over ETCD_NAME, with etcd's warning (etcd 3.4 refuses to
    start instead); a variable that is no flag's (a typo) is warned about as etcd does, and one
    used is logged."""
    os.environ.update(ETCD_NAME="fromenv", ETCD_SNAPSHOT_COUNTS="5", ETCD_SNAPSHOT_COUNT="7")
    try:
        s = make_server(name="fromflag")
    finally:
        for k in ("ETCD_NAME", "ETCD_SNAPSHOT_COUNTS", "ETCD_SNAPSHOT_COUNT"):
            del os.environ[k]
    st, _, body = cluster.http_request(s.url, path="/v2/members")
    assert st == 200 and b'"name":"fromflag"' in body
    log = s.log_text()
    assert ("quorumd: warning: recognized environment variable ETCD_NAME, but unused: shadowed "
            "by corresponding flag\n") in log
    assert "quorumd: warning: unrecognized environment variable ETCD_SNAPSHOT_COUNTS=5\n" in log
    assert "quorumd: recognized and used environment variable ETCD_SNAPSHOT_COUNT=7\n" in log


def test_systemd_readiness_notification(make_server):
    """Under a unit of Type=notify (Debian's etcd.service is one) the member tells systemd that it
    is ready, as etcd does: one datagram READY=1 to $NOTIFY_SOCKET, a path or a name in the
    abstract namespace ('@'), sent once it serves keys."""
    sockdir = tempfile.mkdtemp(prefix="qn", dir="/tmp")
    try:
        for name in (os.path.join(sockdir, "notify"), "@quorum-test-%d" % os.getpid()):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind("\0" + name[1:] if name.startswith("@") else name)
            sock.settimeout(20)
            os.environ["NOTIFY_SOCKET"] = name
            try:
                s = make_server()
            finally:
                del os.environ["NOTIFY_SOCKET"]
            try:
                assert sock.recv(64) == b"READY=1"
                st, _, _ = s.keys("PUT", "/notified", form={"value": name})
                assert st in (200, 201)
                sock.settimeout(0.3)
                with pytest.raises(socket.timeout):  # once
                    sock.recv(64)
            finally:
                sock.close()
    finally:
        shutil.rmtree(sockdir)


def test_foreign_data_dir_refused_untouched(tmp_path):
    d = tmp_path / "foreign"
    (d / "member" / "wal").mkdir(parents=True)
    (d / "member" / "wal" / "0.wal").write_bytes(b"etcd data")
    before = tree_digest(str(d))
    r = run(["--data-dir", str(d), "--listen-client-urls", "http://127.0.0.1:%d" % cluster.free_port(),
             "--advertise-client-urls", "http://127.0.0.1:1",
             "--listen-peer-urls", "http://127.0.0.1:%d" % cluster.free_port()])
    assert r.returncode != 0
    assert str(d) in r.stderr and "refus" in r.stderr
    assert tree_digest(str(d)) == before


def test_other_format_record_refused_untouched(tmp_path):
    d = tmp_path / "other"
    d.mkdir()
    (d / "quorumd.meta").write_text("quorumd-data 99\nmember-id 1\ncluster-id 2\n")
    (d / "tree").mkdir()
    before = tree_digest(str(d))
    r = run(["--data-dir", str(d), "--listen-client-urls", "http://127.0.0.1:%d" % cluster.free_port(),
             "--advertise-client-urls", "http://127.0.0.1:1",
             "--listen-peer-urls", "http://127.0.0.1:%d" % cluster.free_port()])
    assert r.returncode != 0
    assert "refus" in r.stderr
    assert tree_digest(str(d)) == before


def test_corrupt_database_refused(tmp_path, make_server):
    """A data dir whose database files were damaged is refused with a message, not served."""
    s = make_server()
    for i in range(50):
        assert s.keys("PUT", "/c/%d" % i, form={"value": "v%d" % i})[0] in (200, 201)
    s.stop()
    tree = os.path.join(s.data_dir, "tree")
    damaged = 0
    for f in os.listdir(tree):
        if f.endswith(".log") or f.endswith(".ldb") or f.startswith("MANIFEST"):
            p = os.path.join(tree, f)
            size = os.path.getsize(p)
            if size:
                with open(p, "r+b") as fh:
                    fh.seek(size // 2)
                    fh.write(b"\xff" * min(64, size - size // 2))
                damaged += 1
    assert damaged
    before = tree_digest(s.data_dir)
    r = run(s.argv()[1:])
    if r.returncode == 0:
        pytest.fail("a damaged database was served:\n" + r.stderr)
    assert "data" in r.stderr.lower() or "corrupt" in r.stderr.lower()
    assert tree_digest(s.data_dir) == before


def test_each_start_records_request_ids_above_the_last_ones(make_server):
    """Entries proposed before a restart may be applied after it, matched to their requests by
    id: each start takes ids above every earlier start's, recorded in the data dir before it
    serves (with a wall clock set back between two starts the ids still grow)."""
    if cluster.target() == "etcd":
        pytest.skip("quorumd's data dir")
    s = make_server()
    path = os.path.join(s.data_dir, "quorumd.requests")
    first = int(open(path).read())
    assert abs((first >> 20) / 1000.0 - time.time()) < 60, first   # the clock's, in ms << 20
    s.restart()
    second = int(open(path).read())
    assert second >= first + (1 << 44)
    assert s.keys("PUT", "/after", form={"value": "x"})[0] == 201


def test_second_daemon_on_same_dir_refused(tmp_path, make_server):
    s = make_server()
    r = run(["--data-dir", s.data_dir, "--listen-client-urls", "http://127.0.0.1:%d" % cluster.free_port(),
             "--advertise-client-urls", "http://127.0.0.1:1",
             "--listen-peer-urls", "http://127.0.0.1:%d" % cluster.free_port()])
    assert r.returncode != 0
    assert "lock" in r.stderr.lower()
    assert "(another quorumd may be using this data dir)" in r.stderr, r.stderr
    assert s.keys("GET", "/")[0] == 200


@pytest.mark.parametrize("busy", ["client", "peer", "metrics"])
def test_a_port_in_use_fails_the_start_before_the_data_dir(tmp_path, make_server, busy):
    """A start that cannot listen (another process has the port) fails as etcd's does, with the
    address and the reason, before it creates a data dir or changes one: nothing is written.
    The same member then starts on free ports."""
    import socket
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    taken = holder.getsockname()[1]
    try:
        ports = {k: cluster.free_port() for k in ("client", "peer", "metrics")}
        ports[busy] = taken
        url = {k: "http://127.0.0.1:%d" % p for k, p in ports.items()}

        def args(d):
            return ["--name", "a", "--data-dir", str(d),
                    "--listen-client-urls", url["client"], "--advertise-client-urls", url["client"],
                    "--listen-peer-urls", url["peer"], "--initial-advertise-peer-urls", url["peer"],
                    "--initial-cluster", "a=" + url["peer"], "--listen-metrics-urls", url["metrics"]]
        d = tmp_path / "new"
        r = run(args(d))
        assert r.returncode == 1, r.stderr
        assert r.stderr.splitlines()[-1] == \
            "quorumd: cannot listen on %s: address already in use" % url[busy], r.stderr
        assert not os.path.exists(d)
        # An existing member's data dir is left exactly as it was.
        s = make_server()
        assert s.keys("PUT", "/k", form={"value": "v"})[0] == 201
        s.stop()
        before = tree_digest(s.data_dir)
        r = run(args(s.data_dir))
        assert r.returncode == 1, r.stderr
        assert "address already in use" in r.stderr
        assert tree_digest(s.data_dir) == before
    finally:
        holder.close()
    r = subprocess.Popen([cluster.quorumd_binary()] + args(d), stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.time() + 20
        while time.time() < deadline and not answers(ports["client"]):
            time.sleep(0.05)
        assert answers(ports["client"])
        assert os.path.exists(d / "quorumd.meta")
    finally:
        r.terminate()
        assert r.wait(10) == 0


def test_ready_line_logged(make_server):
    s = make_server()
    assert "ready to serve client requests" in s.log_text()


def test_sigterm_exits_cleanly(make_server):
    s = make_server()
    assert s.keys("PUT", "/x", form={"value": "1"})[0] == 201
    s.proc.terminate()
    assert s.proc.wait(10) == 0


def test_wal_dir_holds_the_raft_log(tmp_path, make_server):
    """--wal-dir (etcd's): the Raft log goes there (an empty directory made ready for it is
    fine), the data dir has no wal/; a restart with it keeps every write; without it the data
    dir is refused (its log is elsewhere) and left as it is; a second daemon cannot use a
    log in use."""
    wal = tmp_path / "fast" / "wal"
    wal.mkdir(parents=True)
    s = make_server(extra_args=["--wal-dir", str(wal)])
    for i in range(5):
        assert s.keys("PUT", "/w/k%d" % i, form={"value": "v%d" % i})[0] == 201
    names = os.listdir(wal)
    assert any(n.endswith(".wal") for n in names), names
    assert not os.path.exists(os.path.join(s.data_dir, "wal"))
    # Another member's data dir with the same log directory: refused while it is in use.
    r = run(["--name", "other", "--data-dir", str(tmp_path / "other"), "--wal-dir", str(wal),
             "--listen-client-urls", "http://127.0.0.1:%d" % cluster.free_port(),
             "--advertise-client-urls", "http://127.0.0.1:1",
             "--listen-peer-urls", "http://127.0.0.1:%d" % cluster.free_port()])
    assert r.returncode != 0
    assert "locked by another process" in r.stderr, r.stderr
    s.restart()
    st, _, body = s.keys("GET", "/w", params={"recursive": "true", "sorted": "true"})
    assert st == 200
    assert [n["value"] for n in body["node"]["nodes"]] == ["v%d" % i for i in range(5)]
    s.stop()
    before = tree_digest(s.data_dir)
    argv = s.argv()
    k = argv.index("--wal-dir")
    r = run(argv[1:k] + argv[k + 2:])
    assert r.returncode != 0
    assert "missing" in r.stderr and "wal/" in r.stderr, r.stderr
    assert tree_digest(s.data_dir) == before


def test_host_whitelist_refuses_other_hosts_over_http(make_server):
    """--host-whitelist (etcd's, against DNS rebinding): a plain-HTTP request naming another
    Host gets etcd's 421 answer, byte for byte but the Date, and changes nothing; listed names
    (with any port, IPv6 in brackets) pass."""
    s = make_server(extra_args=["--host-whitelist", "example.com,127.0.0.1,::1"])
    st, hdrs, body = cluster.http_request(s.url, "PUT", "/v2/keys/dns", body="value=x",
                                          headers={"Host": "evil.example:2379",
                                                   "Content-Type": "application/x-www-form-urlencoded"})
    assert st == 421
    assert hdrs["content-type"] == "text/plain; charset=utf-8"
    assert hdrs["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in hdrs
    assert body.decode() == (
        "\netcd received your request, but the Host header was unrecognized.\n\n"
        "To fix this, choose one of the following options:\n"
        "- Enable TLS, then any HTTPS request will be allowed.\n"
        "- Add the hostname you want to use to the whitelist in settings.\n"
        "  - e.g. etcd --host-whitelist \"evil.example\"\n\n"
        "This requirement has been added to help prevent \"DNS Rebinding\" attacks "
        "(CVE-2018-5702).\n\n")
    assert s.keys("GET", "/dns")[0] == 404  # (the harness names 127.0.0.1)
    for host in ("example.com:2379", "example.com", "[::1]:2379"):
        st, _, _ = cluster.http_request(s.url, "GET", "/version", headers={"Host": host})
        assert st == 200, host
    st, _, _ = cluster.http_request(s.url, "GET", "/version", headers={"Host": "example.com.evil"})
    assert st == 421


@pytest.mark.parametrize("kind", ["quorumd", "etcd"])
def test_cors_origins_listed_are_answered_others_not(make_server, kind):
    """--cors with a list: a request whose Origin is listed (exactly, port included) gets the
    CORS headers naming it, a preflight too; another origin, or none, gets none. The same on
    etcd 3.4, which this test also runs against."""
    if kind == "etcd" and not cluster.etcd_binary():
        pytest.skip("etcd is not installed")
    s = make_server(kind=kind, extra_args=["--cors", "http://a.example:80,https://b.example:8443"])
    for origin, allowed in (("http://a.example:80", True), ("https://b.example:8443", True),
                            ("http://a.example", False), ("http://c.example:80", False),
                            (None, False)):
        hdrs_in = {"Origin": origin} if origin else {}
        st, hdrs, _ = cluster.http_request(s.url, "GET", "/v2/keys/", headers=hdrs_in)
        assert st == 200
        assert hdrs.get("access-control-allow-origin") == (origin if allowed else None), (origin, hdrs)
        assert ("access-control-allow-methods" in hdrs) == allowed
        st, hdrs, _ = cluster.http_request(s.url, "OPTIONS", "/v2/keys/x", headers=dict(
            hdrs_in, **{"Access-Control-Request-Method": "PUT"}))
        assert st == 200 and hdrs.get("access-control-allow-origin") == (origin if allowed else None)


def test_cors_values_etcd_refuses_are_refused(tmp_path):
    """etcd takes "*" or scheme://host:port URLs for --cors (and ETCD_CORS), and refuses the
    rest at start: so does quorumd, naming the value."""
    for value, why in (("http://a.example", "host:port"), ("a.example:80", "http:// or https://"),
                       ("http://a.example:80/x", "path")):
        r = run(["--data-dir", str(tmp_path / "d"), "--cors", "*," + value])
        assert r.returncode != 0 and value in r.stderr and "--cors" in r.stderr and why in r.stderr, r.stderr
        r = run(["--data-dir", str(tmp_path / "d")], env={"ETCD_CORS": value})
        assert r.returncode != 0 and "ETCD_CORS" in r.stderr, r.stderr
    assert not os.path.exists(tmp_path / "d")


BOOTSTRAP_CASES = [
    # (--initial-cluster, --initial-advertise-peer-urls), {a} {b} {c}: free ports
    ("a=notaurl", "http://127.0.0.1:{a}"),
    ("a=http://127.0.0.1:{a}/x", "http://127.0.0.1:{a}"),
    ("a=http://127.0.0.1:{a},b=http://127.0.0.1:{a}", "http://127.0.0.1:{a}"),
    ("a=http://127.0.0.1:{b}", "http://127.0.0.1:{a}"),
    ("a=http://127.0.0.1:{a},a=http://127.0.0.1:{b}", "http://127.0.0.1:{a}"),
    ("a=http://127.0.0.1:{a}", "http://127.0.0.1:{a},http://127.0.0.1:{b}"),
    ("a=http://localhost:{a}", "http://127.0.0.1:{a}"),
    ("b=http://127.0.0.1:{a}", "http://127.0.0.1:{a}"),  # no member named a
]


@pytest.mark.parametrize("initial,advertise", BOOTSTRAP_CASES)
def test_bootstrap_refusals_are_etcds(tmp_path, initial, advertise):
    """A new member's --initial-cluster checked as etcd checks it before its first start: a
    malformed URL, a URL given to two members, this member's URLs not those it advertises
    (sorted sets; "localhost" is not resolved). quorumd refuses each with etcd 3.4's message,
    word for word, and writes nothing."""
    etcd = cluster.etcd_binary()
    if not etcd:
        pytest.skip("etcd is not installed")
    ports = {k: cluster.free_port() for k in "abc"}
    args = ["--name", "a", "--initial-cluster", initial.format(**ports),
            "--initial-advertise-peer-urls", advertise.format(**ports),
            "--listen-peer-urls", "http://127.0.0.1:%d" % ports["a"],
            "--listen-client-urls", "http://127.0.0.1:%d" % ports["c"],
            "--advertise-client-urls", "http://127.0.0.1:%d" % ports["c"]]
    e = subprocess.run([etcd, "--enable-v2", "--data-dir", str(tmp_path / "e")] + args,
                       capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)
    assert e.returncode != 0, e.stderr[-2000:]
    want = [line.split(" C | etcdmain: ", 1)[1] for line in e.stderr.splitlines()
            if " C | etcdmain: " in line]
    assert len(want) == 1, e.stderr[-2000:]
    r = run(["--data-dir", str(tmp_path / "q")] + args)
    assert r.returncode != 0
    assert r.stderr.splitlines()[0] == "quorumd: " + want[0]
    assert not os.path.exists(tmp_path / "q")


def test_bootstrap_takes_the_same_urls_in_another_order(make_server):
    """The advertised URLs and the member's URLs in --initial-cluster are compared as sets."""
    a, b = cluster.free_port(), cluster.free_port()
    s = make_server(extra_args=["--initial-cluster",
                                "t=http://127.0.0.1:%d,t=http://127.0.0.1:%d" % (a, b),
                                "--initial-advertise-peer-urls",
                                "http://127.0.0.1:%d,http://127.0.0.1:%d" % (b, a),
                                "--listen-peer-urls", "http://127.0.0.1:%d" % a])
    st, _, body = s.keys("PUT", "/boot", form={"value": "ok"})
    assert st == 201, body


@pytest.mark.parametrize("kind", ["quorumd", "etcd"])
def test_joining_an_existing_cluster_is_checked_against_it(make_server, tmp_path, kind):
    """--initial-cluster-state existing: before its first start the member reads the running
    cluster from the other members (GET /members on their peer URLs). Not added yet with
    `member add`: refused ("member count is unequal"); no member reachable: refused ("cannot
    fetch cluster info ..."); added: it starts and joins. The same on etcd 3.4."""
    binary = cluster.quorumd_binary() if kind == "quorumd" else cluster.etcd_binary()
    if not binary:
        pytest.skip("etcd is not installed")
    b = make_server(kind=kind, name="b")
    pa, ca = cluster.free_port(), cluster.free_port()
    a_peer, a_url = "http://127.0.0.1:%d" % pa, "http://127.0.0.1:%d" % ca

    def start_a(initial, data):
        argv = [binary] + (["--enable-v2"] if kind == "etcd" else []) + [
            "--name", "a", "--data-dir", str(tmp_path / data),
            "--listen-peer-urls", a_peer, "--initial-advertise-peer-urls", a_peer,
            "--listen-client-urls", a_url, "--advertise-client-urls", a_url,
            "--initial-cluster", initial, "--initial-cluster-state", "existing"]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                stdin=subprocess.DEVNULL)

    cluster_ab = "a=%s,b=%s" % (a_peer, b.peer_url)
    p = start_a(cluster_ab, "a1")
    out, _ = p.communicate(timeout=30)
    assert p.returncode != 0 and "member count is unequal" in out, out[-3000:]
    dead = cluster.free_port()
    p = start_a("a=%s,b=http://127.0.0.1:%d" % (a_peer, dead), "a2")
    out, _ = p.communicate(timeout=30)
    assert p.returncode != 0, out[-3000:]
    assert ("cannot fetch cluster info from peer urls: could not retrieve cluster information "
            "from the given URLs") in out, out[-3000:]
    st, _, body = b.request("POST", "/v2/members", body=json.dumps({"peerURLs": [a_peer]}),
                            headers={"Content-Type": "application/json"})
    assert st == 201, body
    # added, but the flags name another URL for it than the one added
    other = "http://127.0.0.1:%d" % cluster.free_port()
    p = start_a("a=%s,b=%s" % (other, b.peer_url), "a4")
    out, _ = p.communicate(timeout=30)
    assert p.returncode != 0, out[-3000:]
    assert "PeerURLs: no match found for existing member (" in out, out[-3000:]
    p = start_a(cluster_ab, "a3")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                st, _, body = cluster.http_request(a_url, "GET", "/v2/members")
                if st == 200 and len(json.loads(body)["members"]) == 2:
                    break
            except OSError:
                pass
            assert p.poll() is None and time.monotonic() < deadline, p.stdout.read()[-3000:]
            time.sleep(0.1)
        st, _, _ = b.keys("PUT", "/joined", form={"value": "1"})
        assert st == 201
        st, _, body = cluster.http_request(a_url, "GET", "/v2/keys/joined?quorum=true")
        assert st == 200 and json.loads(body)["node"]["value"] == "1"
    finally:
        p.terminate()
        p.wait(timeout=20)
