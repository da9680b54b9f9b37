"""A tiny stand-in for raftkvd nodes, for testing the raftkv client (python3 stdlib only).

FakeNode serves the seed text protocol on one port and RESP INFO on another, each connection in
its own thread. Behaviour knobs (set as attributes, read on every command):
  redirect    (host, port) or None: answer every text command ERR_REDIRECT host port
  internal    number of commands still to answer ERR_INTERNAL (counts down)
  drop        number of commands still to swallow: close the connection without a reply
  cmd_err     answer every command ERR_CMD_ERR
  info        dict of Raft fields for INFO's "# Raft" section (None: the RESP port answers -ERR)
Every complete command received is appended to .received as (verb, args, values) so a test can
assert what reached the node and how often. Nodes of one fake cluster share a Store.

Run as a program (tests/client/fake_raftkvd/raftkvd) it plays a whole raftkvd process: see main().
"""

import os
import signal
import socket
import sys
import threading
import time


class Store:
    def __init__(self):
        self.lock = threading.Lock()
        self.data = {}  # key -> (value, version, deadline or 0)
        self.version = 0

    def _live(self, key):
        item = self.data.get(key)
        if item and item[2] and item[2] <= time.time():
            del self.data[key]
            return None
        return item

    def put(self, key, value, exptime):
        self.version += 1
        self.data[key] = (value, self.version, time.time() + exptime if exptime else 0)
        return self.version


def _listen(host="127.0.0.1", port=0):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(64)
    return sock


class Reader:
    def __init__(self, conn):
        self.conn = conn
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.conn.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, self.buf = self.buf.partition(b"\n")
        return line.rstrip(b"\r")

    def exact(self, n):
        while len(self.buf) < n:
            chunk = self.conn.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


class FakeNode:
    def __init__(self, store=None, node_id=1, text_port=0, resp_port=0, host="127.0.0.1"):
        self.store = store if store is not None else Store()
        self.node_id = node_id
        self.redirect = None
        self.internal = 0
        self.drop = 0
        self.cmd_err = False
        self.info = {"role": "leader", "term": 1, "leader": node_id, "commit": 0, "applied": 0}
        self.received = []
        self.text_sock = _listen(host, text_port)
        self.resp_sock = _listen(host, resp_port)
        self.host = host
        self.text_port = self.text_sock.getsockname()[1]
        self.resp_port = self.resp_sock.getsockname()[1]
        self.closed = False
        for sock, handler in ((self.text_sock, self._text_conn), (self.resp_sock, self._resp_conn)):
            threading.Thread(target=self._accept, args=(sock, handler), daemon=True).start()

    def close(self):
        self.closed = True
        for sock in (self.text_sock, self.resp_sock):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def count(self, verb):
        return sum(1 for r in self.received if r[0] == verb)

    def _accept(self, sock, handler):
        while not self.closed:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn, handler), daemon=True).start()

    def _serve(self, conn, handler):
        try:
            handler(conn)
        except OSError:
            pass
        finally:
            conn.close()

    # ---- RESP: only INFO ----
    def _resp_conn(self, conn):
        reader = Reader(conn)
        while True:
            head = reader.line()
            if head is None:
                return
            if not head.startswith(b"*"):
                conn.sendall(b"-ERR inline commands not supported by the fake\r\n")
                continue
            args = []
            for _ in range(int(head[1:])):
                size = int(reader.line()[1:])
                args.append(reader.exact(size + 2)[:-2])
            if args and args[0].upper() == b"INFO" and self.info is not None:
                body = "# Server\r\nredis_version:7.0.0-fake\r\n\r\n# Replication\r\nrole:master\r\n\r\n# Raft\r\n"
                body += "".join("%s:%s\r\n" % (k, v) for k, v in self.info.items())
                data = body.encode()
                conn.sendall(b"$%d\r\n%s\r\n" % (len(data), data))
            else:
                conn.sendall(b"-ERR unknown command\r\n")

    # ---- text protocol ----
    def _read_command(self, reader):
        """Returns (verb, args, values) or None at EOF."""
        line = reader.line()
        if line is None:
            return None
        parts = line.decode("latin-1").split()
        if not parts:
            return ("", [], [])
        verb, args, values = parts[0], parts[1:], []
        if verb in ("set", "cas") and len(args) >= 3:
            n = int(args[2] if verb == "set" else args[3])
            values.append(reader.exact(n + 2)[:-2])
        elif verb == "mset" and args:
            for _ in range(int(args[0])):
                block = reader.line().decode("latin-1").split()
                value = reader.exact(int(block[2]) + 2)[:-2]
                values.append((block[0], int(block[1]), value))
        return (verb, args, values)

    def _text_conn(self, conn):
        reader = Reader(conn)
        while True:
            cmd = self._read_command(reader)
            if cmd is None:
                return
            if cmd[0] == "":  # the client's probe: any live raftkvd answers an empty line at once
                conn.sendall(b"ERR_CMD_ERR\r\n")
                continue
            self.received.append(cmd)
            if self.drop > 0:
                self.drop -= 1
                return
            if self.redirect:
                conn.sendall(b"ERR_REDIRECT %s %d\r\n" % (self.redirect[0].encode(), self.redirect[1]))
            elif self.internal > 0:
                self.internal -= 1
                conn.sendall(b"ERR_INTERNAL\r\n")
            elif self.cmd_err:
                conn.sendall(b"ERR_CMD_ERR\r\n")
            else:
                with self.store.lock:
                    conn.sendall(self._execute(*cmd))

    def _execute(self, verb, args, values):
        s = self.store
        if verb in ("get", "getm") and len(args) == 1:
            item = s._live(args[0])
            if not item:
                return b"ERR_NOT_FOUND\r\n"
            value, version, deadline = item
            if verb == "get":
                return b"VALUE %d\r\n%s\r\n" % (len(value), value)
            left = max(1, int(deadline - time.time() + 0.999)) if deadline else 0
            return b"VALUE %d %d %d\r\n%s\r\n" % (version, left, len(value), value)
        if verb == "set" and len(args) == 3:
            return b"OK %d\r\n" % s.put(args[0], values[0], int(args[1]))
        if verb == "cas" and len(args) == 4:
            item = s._live(args[0])
            if not item:
                return b"ERR_NOT_FOUND\r\n"
            if item[1] != int(args[2]):
                return b"ERR_VERSION\r\n"
            return b"OK %d\r\n" % s.put(args[0], values[0], int(args[1]))
        if verb == "delete" and len(args) == 1:
            if not s._live(args[0]):
                return b"ERR_NOT_FOUND\r\n"
            del s.data[args[0]]
            return b"DELETED\r\n"
        if verb == "mget" and args:
            out = b""
            for key in args:
                item = s._live(key)
                out += b"VALUE %d\r\n%s\r\n" % (len(item[0]), item[0]) if item else b"ERR_NOT_FOUND\r\n"
            return out + b"END\r\n"
        if verb == "mset" and values:
            s.version += 1
            for key, exptime, value in values:
                s.data[key] = (value, s.version, time.time() + exptime if exptime else 0)
            return b"OK %d\r\n" % s.version
        return b"ERR_CMD_ERR\r\n"


def main(argv):
    """Plays raftkvd: `raftkvd --id N --peers FILE [--config F] [--data-dir D] [...]`.
    The node with the smallest id is the leader, the others redirect to it. Environment knobs:
    FAKE_RAFTKVD_FAIL=1 (print an error, exit 2), FAKE_RAFTKVD_IGNORE_TERM=1 (survive SIGTERM)."""
    import json

    opts = {}
    i = 1
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv):
            opts[argv[i][2:]] = argv[i + 1]
            i += 2
        else:
            i += 1
    print("fake raftkvd starting: %s" % " ".join(argv[1:]), file=sys.stderr, flush=True)
    if os.environ.get("FAKE_RAFTKVD_FAIL"):
        print("raftkvd: peers.json: [1].client_port: fake failure", file=sys.stderr, flush=True)
        return 2
    for need in ("id", "peers", "config", "data-dir"):
        if need not in opts:
            print("raftkvd: --%s: required" % need, file=sys.stderr, flush=True)
            return 2
    with open(opts["peers"]) as f:
        peers = json.load(f)
    with open(opts["config"]) as f:
        json.load(f)
    if not os.path.isdir(opts["data-dir"]):
        print("raftkvd: data dir %s missing" % opts["data-dir"], file=sys.stderr, flush=True)
        return 2
    my_id = int(opts["id"])
    me = [p for p in peers if p["id"] == my_id][0]
    leader = min(peers, key=lambda p: p["id"])
    node = FakeNode(node_id=my_id, text_port=me["client_port"], resp_port=me["resp_port"],
                    host=me["host"])
    # A per-process store: only the leader's matters, as followers redirect.
    role = "leader" if leader is me else "follower"
    node.info = {"role": role, "term": 2, "leader": leader["id"], "commit": 7, "applied": 7 if role == "leader" else 5}
    if leader is not me:
        node.redirect = (leader["host"], leader["client_port"])
    stop = threading.Event()
    if os.environ.get("FAKE_RAFTKVD_IGNORE_TERM"):
        signal.signal(signal.SIGTERM, lambda *_: print("ignoring SIGTERM", file=sys.stderr, flush=True))
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print("node %d serving as %s" % (my_id, role), file=sys.stderr, flush=True)
    while not stop.wait(0.1):
        pass
    print("node %d: SIGTERM, bye" % my_id, file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
