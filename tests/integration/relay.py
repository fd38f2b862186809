"""A TCP relay to a server's port, for tests of clients that meet a member that fails:
close() drops every connection at once (a member that dies), and lose_answers_to makes it pass
requests of those methods on but lose their answers, the connection staying open and silent (a
member that applies a write whose answer never arrives), and on_request(data) runs before each
request's bytes are passed on (a test changes the store "meanwhile")."""
import socket
import threading


class Relay:
    def __init__(self, target_port, lose_answers_to=(), on_request=None):
        self.target = ("127.0.0.1", target_port)
        self.on_request = on_request
        self.lose = tuple(m.encode() + b" " for m in lose_answers_to)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.lost = 0  # requests whose answers were lost
        self.conns = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target)
            except OSError:
                c.close()
                continue
            with self.lock:
                self.conns += [c, u]
            state = {"lose": False}
            threading.Thread(target=self._up, args=(c, u, state), daemon=True).start()
            threading.Thread(target=self._down, args=(u, c, state), daemon=True).start()

    def _up(self, c, u, state):
        try:
            while True:
                data = c.recv(65536)
                if not data:
                    break
                if self.on_request is not None:
                    self.on_request(data)
                if self.lose and data.startswith(self.lose):
                    state["lose"] = True
                    self.lost += 1
                u.sendall(data)
        except OSError:
            pass
        self._shut(c, u)

    def _down(self, u, c, state):
        try:
            while True:
                data = u.recv(65536)
                if not data:
                    break
                if not state["lose"]:
                    c.sendall(data)
        except OSError:
            pass
        self._shut(c, u)

    @staticmethod
    def _shut(*socks):
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        with self.lock:
            for s in self.conns:
                self._shut(s)
                s.close()
