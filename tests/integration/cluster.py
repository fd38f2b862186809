"""Start and stop one-member servers for the whole-program tests.

The server under test is `quorumd` (path in $QUORUMD, default build/quorumd), or,
with QUORUM_TARGET=etcd, real `etcd --enable-v2` started with the very same
flags, so the tests themselves can be checked against the reference.

Only 127.0.0.1 and ports picked by binding port 0 are used; every process
started here is killed by pid (its own process group) when the test ends, and
also at interpreter exit as a last resort.
"""
import atexit
import fcntl
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.environ.get("QUORUM_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
SHARED_DIR = os.environ.get("QUORUM_SHARED_DIR") or os.path.join(os.path.dirname(SOURCE_DIR), "shared")
PYTHON = "/usr/bin/python3"

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0

_live = set()   # every Popen started here and not yet reaped


def _kill_leftovers():
    for proc in list(_live):
        _kill_group(proc, signal.SIGKILL)
        try:
            proc.wait(timeout=5)
        except Exception:
            pass


atexit.register(_kill_leftovers)


def _kill_group(proc, sig):
    """Signal the process group the child leads (it was started with a new session)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass


def target():
    """'etcd' or 'quorumd'."""
    return "etcd" if os.environ.get("QUORUM_TARGET", "").strip().lower() == "etcd" else "quorumd"


def is_etcd_target():
    return target() == "etcd"


def etcd_binary():
    return shutil.which("etcd")


def etcdctl_binary():
    return shutil.which("etcdctl")


def quorumd_binary():
    path = os.environ.get("QUORUMD")
    if path:
        return path
    return os.path.join(SOURCE_DIR, "build", "quorumd")


def default_signals():
    """preexec_fn for a child that a test sends SIGINT or SIGQUIT: a shell without job control
    starts its background commands with both ignored, and a child inherits that (a test run
    as `cmd &` then saw `stat` sleep through its SIGINT). Back to their defaults."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)


# Ports handed out by free_port(), each with the descriptor of its lock file (held for this
# process's life); and, set at the first call, the directory of those files (None: no locks)
# and the range the ports come from.
_port_locks = {}
_port_setup = []


def _port_range():
    """Where free_port() looks: below the kernel's ephemeral range (ip_local_port_range), from
    which every outgoing connection on the machine takes its local port. A member stopped and
    started again keeps its ports, and a port of the ephemeral range freed meanwhile can be
    taken by any connection (of this test or of another running beside it): the member then
    cannot start ("address already in use"). Above the range when there is little room below."""
    lo, hi = 32768, 60999
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        pass
    if lo - 1 - 10000 >= 4000:
        return 10000, lo - 1
    if 65535 - (hi + 1) >= 4000:
        return hi + 1, 65535
    return 10000, 65535  # (a machine whose ephemeral range is everything: nothing better)


def _claim(port, lock_dir):
    """Whether port is now this process's: no other test process holds its lock file (flock,
    let go when the process ends, however it ends), and it can be bound now."""
    if port in _port_locks or port in (2379, 2380):
        return False
    fd = None
    if lock_dir:
        try:
            fd = os.open(os.path.join(lock_dir, "%d.lock" % port), os.O_RDWR | os.O_CREAT, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            if fd is not None:
                os.close(fd)
            return False
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        if fd is not None:
            os.close(fd)
        return False
    finally:
        s.close()
    _port_locks[port] = fd
    return True


def free_port():
    """A port free now, never handed out before in this process nor held by another test process
    on this machine (a lock file in the temp dir), and outside the kernel's ephemeral range (see
    _port_range): a member whose client and peer URLs got the same port cannot start, and one
    started again on its ports must find them free."""
    if not _port_setup:
        lock_dir = os.path.join(tempfile.gettempdir(), "quorum-test-ports")
        try:
            os.makedirs(lock_dir, exist_ok=True)
            os.chmod(lock_dir, 0o1777)
        except OSError:
            if not os.access(lock_dir, os.W_OK):
                lock_dir = None
        _port_setup.append((lock_dir,) + _port_range())
    lock_dir, lo, hi = _port_setup[0]
    rng = random.Random()
    for _ in range(1000):
        port = rng.randint(lo, hi)
        if _claim(port, lock_dir):
            return port
    raise RuntimeError("no free port in %d..%d after 1000 tries" % (lo, hi))


def http_request(url, method="GET", path="/", body=None, headers=None, timeout=5.0):
    """One request on a fresh connection; returns (status, headers dict lower-case, body bytes)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        if isinstance(body, dict):
            body = urllib.parse.urlencode(body)
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


class ServerStartError(Exception):
    pass


class Server:
    """One single-member server (quorumd, or etcd when kind='etcd').

    s = Server(tmpdir); s.start(); s.url; s.stop(); s.kill9(); s.restart()
    """

    def __init__(self, workdir, kind=None, name="t", extra_args=(), binary=None, nofile_soft=None):
        self.kind = kind or target()
        self.name = name
        self.workdir = os.path.abspath(workdir)
        os.makedirs(self.workdir, exist_ok=True)
        self.data_dir = os.path.join(self.workdir, "data")
        self.extra_args = list(extra_args)
        # Start the server with this soft RLIMIT_NOFILE (to check that it raises its own).
        self.nofile_soft = nofile_soft
        if binary:
            self.binary = binary
        elif self.kind == "etcd":
            self.binary = etcd_binary()
        else:
            self.binary = quorumd_binary()
        self.client_port = None
        self.peer_port = None
        self.proc = None
        self.starts = 0
        self.log_path = None

    # ---------------------------------------------------------------- urls
    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.client_port

    @property
    def peer_url(self):
        return "http://127.0.0.1:%d" % self.peer_port

    @property
    def host(self):
        return "127.0.0.1"

    @property
    def port(self):
        return self.client_port

    def argv(self):
        args = [self.binary]
        if self.kind == "etcd":
            args.append("--enable-v2")
        args += [
            "--name", self.name,
            "--data-dir", self.data_dir,
            "--listen-client-urls", self.url,
            "--advertise-client-urls", self.url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", "%s=%s" % (self.name, self.peer_url),
        ]
        return args + self.extra_args

    # ---------------------------------------------------------------- lifecycle
    def start(self, timeout=START_TIMEOUT):
        if not self.binary or not os.path.exists(self.binary):
            raise ServerStartError("%s binary not found: %r (set QUORUMD, or QUORUM_TARGET=etcd)"
                                   % (self.kind, self.binary))
        first = self.client_port is None
        attempts = 3 if first else 1
        last_err = None
        for _ in range(attempts):
            if first:
                self.client_port = free_port()
                self.peer_port = free_port()
                while self.peer_port == self.client_port:
                    self.peer_port = free_port()
            try:
                self._spawn_and_wait(timeout)
                return self
            except ServerStartError as e:
                last_err = e
                log = self.log_text()
                # Someone else grabbed a port between probe and bind: retry with new ones.
                if first and ("address already in use" in log.lower() or
                              "already listens" in str(e)) and self.starts <= 3:
                    continue
                raise
        raise last_err

    def _check_ports_free(self):
        """Nothing may listen on this server's ports before it starts: a process of an earlier
        start still running there (a kill that missed it) would answer the health check in its
        place, and the new one would fail to listen unseen."""
        for port in (self.client_port, self.peer_port):
            if port is None:
                continue
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            except OSError:
                continue
            raise ServerStartError("%s %s: something already listens on 127.0.0.1:%d before its "
                                   "start (a process of an earlier start still running?)"
                                   % (self.kind, self.name or "", port))

    def _spawn_and_wait(self, timeout):
        self._check_ports_free()
        self.starts += 1
        self.log_path = os.path.join(self.workdir, "server-%d.log" % self.starts)
        logf = open(self.log_path, "wb")
        preexec = None
        if self.nofile_soft is not None:
            soft = self.nofile_soft

            def preexec():
                import resource
                _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(soft, hard), hard))
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, cwd=self.workdir,
                                         start_new_session=True, preexec_fn=preexec)
        finally:
            logf.close()
        _live.add(self.proc)
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self._reap()
                raise ServerStartError("%s exited with status %s during start-up\nargv: %s\n--- log %s ---\n%s"
                                       % (self.kind, rc, " ".join(self.argv()), self.log_path,
                                          self.log_text()))
            try:
                st, _, body = http_request(self.url, "GET", "/health", timeout=1.0)
                last = (st, body)
                if st == 200:
                    return
            except (OSError, http.client.HTTPException) as e:
                last = e
            time.sleep(0.05)
        self.kill9()
        raise ServerStartError("%s did not answer GET /health with 200 within %.0f s (last: %r)\n"
                               "argv: %s\n--- log %s ---\n%s"
                               % (self.kind, timeout, last, " ".join(self.argv()), self.log_path,
                                  self.log_text()))

    def _reap(self):
        if self.proc is not None:
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                _kill_group(self.proc, signal.SIGKILL)
                self.proc.wait(timeout=STOP_TIMEOUT)
            _live.discard(self.proc)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM, wait; SIGKILL if it does not go. Returns the exit status (or None)."""
        if self.proc is None:
            return None
        proc = self.proc
        if proc.poll() is None:
            _kill_group(proc, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill_group(proc, signal.SIGKILL)
                proc.wait(timeout=timeout)
        # Make sure nothing of its group survives either.
        _kill_group(proc, signal.SIGKILL)
        _live.discard(proc)
        return proc.returncode

    def kill9(self):
        if self.proc is None:
            return None
        proc = self.proc
        _kill_group(proc, signal.SIGKILL)
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        proc.wait(timeout=STOP_TIMEOUT)
        _live.discard(proc)
        return proc.returncode

    def restart(self, timeout=START_TIMEOUT):
        """Stop if running and start again with the same data dir and ports."""
        if self.running():
            self.stop()
        return self.start(timeout=timeout)

    # ---------------------------------------------------------------- helpers
    def log_text(self, limit=20000):
        if not self.log_path or not os.path.exists(self.log_path):
            return "(no log)"
        with open(self.log_path, "rb") as f:
            data = f.read()
        if len(data) > limit:
            data = b"...[cut]...\n" + data[-limit:]
        return data.decode("utf-8", "replace")

    def all_logs(self, limit=20000):
        out = []
        for i in range(1, self.starts + 1):
            p = os.path.join(self.workdir, "server-%d.log" % i)
            if os.path.exists(p):
                with open(p, "rb") as f:
                    d = f.read()
                if len(d) > limit:
                    d = b"...[cut]...\n" + d[-limit:]
                out.append("--- %s ---\n%s" % (p, d.decode("utf-8", "replace")))
        return "\n".join(out)

    def request(self, method, path, body=None, headers=None, timeout=5.0):
        return http_request(self.url, method, path, body=body, headers=headers, timeout=timeout)

    def keys(self, method, key, params=None, form=None, timeout=5.0):
        """Request on /v2/keys<key>; returns (status, headers, parsed JSON or raw bytes)."""
        path = "/v2/keys" + key
        if params:
            path += "?" + urllib.parse.urlencode(params)
        st, hdrs, data = self.request(method, path, body=form, timeout=timeout)
        try:
            parsed = json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            parsed = data
        return st, hdrs, parsed

    def watchers(self):
        """The `watchers` counter of /v2/stats/store (registered long-poll/stream watchers)."""
        st, _, body = self.request("GET", "/v2/stats/store")
        return json.loads(body)["watchers"] if st == 200 else None

    def wait_watchers(self, at_least, timeout=10.0):
        """Waits until at least `at_least` watchers are registered; returns the count seen last.
        Used as the sync point between starting a watch and the write that should wake it."""
        deadline = time.monotonic() + timeout
        n = None
        while time.monotonic() < deadline:
            n = self.watchers()
            if n is not None and n >= at_least:
                return n
            time.sleep(0.02)
        return n

    def index(self):
        """The current X-Etcd-Index (from a GET of the root)."""
        st, hdrs, _ = self.request("GET", "/v2/keys/")
        return int(hdrs["x-etcd-index"])

    def __repr__(self):
        return "<Server %s %s pid=%s>" % (self.kind, self.client_port and self.url,
                                           self.proc and self.proc.pid)
