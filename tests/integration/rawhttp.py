"""A tiny HTTP/1.1 client on raw sockets, for requests no ordinary client library will send
(malformed, pipelined, half-sent) and for reading responses byte-exactly."""
import json
import socket
import time


class Closed(Exception):
    """The peer closed (or reset) the connection before a complete response."""

    def __init__(self, msg, partial=b""):
        super().__init__(msg)
        self.partial = partial


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.header_list = headers                      # [(name, value)] as sent
        self.headers = {}
        for k, v in headers:
            self.headers.setdefault(k.lower(), v)
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        return self.headers.get(name.lower(), default)

    def has(self, name):
        return name.lower() in self.headers

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %r headers=%r body=%r>" % (self.status, self.reason, self.headers,
                                                         self.body[:300])


def build(method, path, headers=None, body=None, form=None, version="HTTP/1.1", host=True):
    """Bytes of one request. form: dict/list -> urlencoded body with Content-Type."""
    import urllib.parse
    hdrs = []
    if host:
        hdrs.append(("Host", "127.0.0.1"))
    if form is not None:
        body = urllib.parse.urlencode(form).encode()
        hdrs.append(("Content-Type", "application/x-www-form-urlencoded"))
    for k, v in (headers.items() if isinstance(headers, dict) else (headers or [])):
        hdrs.append((k, v))
    if body is not None and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hdrs):
        hdrs.append(("Content-Length", str(len(body))))
    head = "%s %s %s\r\n" % (method, path, version) + "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
    return head.encode("latin-1") + (body or b"")


class RawConn:
    def __init__(self, host, port, timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False
        self.timeout = timeout

    @classmethod
    def to(cls, server, timeout=10.0):
        return cls("127.0.0.1", server.port, timeout=timeout)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out waiting for the response")
        self.sock.settimeout(left)
        try:
            d = self.sock.recv(1 << 20)
        except ConnectionResetError:
            self.eof = True
            return False
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _read_until(self, marker, deadline):
        while marker not in self.buf:
            if not self._fill(deadline):
                raise Closed("connection closed while waiting for %r (got %d bytes)"
                             % (marker, len(self.buf)), self.buf)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_n(self, n, deadline):
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise Closed("connection closed in a body (%d of %d bytes)" % (len(self.buf), n),
                             self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method="GET", timeout=None, allow_1xx=False):
        """Reads one response. Raises Closed if the connection ends before the status line."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            head = self._read_until(b"\r\n\r\n", deadline)
            lines = head[:-4].decode("latin-1").split("\r\n")
            first = lines[0].split(" ", 2)
            version, status = first[0], int(first[1])
            reason = first[2] if len(first) > 2 else ""
            headers = []
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers.append((k.strip(), v.strip()))
            if 100 <= status < 200 and not allow_1xx:
                continue
            resp = Response(version, status, reason, headers, b"", head)
            break
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return resp
        te = resp.header("transfer-encoding", "").lower()
        if "chunked" in te:
            body = b""
            while True:
                line = self._read_until(b"\r\n", deadline)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    # trailers until an empty line
                    while self._read_until(b"\r\n", deadline) != b"\r\n":
                        pass
                    break
                body += self._read_n(size, deadline)
                self._read_n(2, deadline)
            resp.body = body
        elif resp.has("content-length"):
            resp.body = self._read_n(int(resp.header("content-length")), deadline)
        else:
            while self._fill(deadline):
                pass
            resp.body, self.buf = self.buf, b""
        return resp

    def read_chunk_line(self, timeout=None):
        """For streamed (chunked) bodies: the next chunk's payload."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        line = self._read_until(b"\r\n", deadline)
        size = int(line.split(b";")[0].strip(), 16)
        data = self._read_n(size, deadline)
        self._read_n(2, deadline)
        return data

    def wait_closed(self, timeout=5.0):
        """True if the peer closes the connection within timeout (any unread bytes are dropped)."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except socket.timeout:
            return False
        except OSError:
            return True

    def is_open_now(self, wait=0.2):
        """True if the connection is still open (no EOF within `wait` seconds)."""
        return not self.wait_closed(wait)


def read_until_close(sock):
    """Every byte the peer sends until it closes the connection."""
    data = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk


def request(server, method, path, timeout=10.0, **kw):
    with RawConn.to(server, timeout=timeout) as c:
        c.send(build(method, path, headers=dict(kw.pop("headers", {}) or {}, Connection="close"), **kw))
        return c.read_response(method)
