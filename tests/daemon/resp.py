"""A minimal RESP2 client for the daemon's process tests (Python stdlib only)."""
import socket


class RespError(Exception):
    pass


class Resp:
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("connection closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            raise RespError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise ConnectionError("bad reply %r" % line)

    @staticmethod
    def encode(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def call(self, *args):
        self.sock.sendall(self.encode(args))
        return self._reply()

    def send_many(self, commands):
        """Pipelines commands (tuples of arguments); read the replies with reply()."""
        self.sock.sendall(b"".join(self.encode(c) for c in commands))

    def reply(self):
        return self._reply()


def info(port):
    """INFO as a dict of its key:value lines (empty when the node does not answer)."""
    try:
        c = Resp(port, timeout=2.0)
        try:
            text = c.call("INFO").decode()
        finally:
            c.close()
    except (OSError, RespError, ConnectionError):
        return {}
    return dict(l.split(":", 1) for l in text.splitlines() if ":" in l)
