#!/usr/bin/env python3
"""Conformance and robustness tests of the client front-ends (text protocol and RESP2) against the
fake node cluster of fe_testsrv, over real loopback sockets.

usage: test_frontend.py <path to fe_testsrv> [unittest args]

Node 1 leads (unless a test changes it), node 2 redirects text writes, node 3 forwards them; both
followers forward RESP writes. No assertion depends on timing: waits are only upper bounds.
"""
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

SERVER = None  # path to fe_testsrv, from argv
IO_TIMEOUT = 20.0


class Server:
    """One fe_testsrv process: 3 fake nodes with their front-ends."""

    def __init__(self, *args):
        # The server appends to its own descriptor; we read through another one (a shared file
        # offset would let our reads move its writes).
        fd, self.errpath = tempfile.mkstemp(prefix="fe_testsrv.", suffix=".log")
        os.close(fd)
        with open(self.errpath, "ab") as err:
            self.proc = subprocess.Popen([SERVER, *map(str, args)], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=err)
        words = self.proc.stdout.readline().decode().split()
        assert words and words[0] == "PORTS", f"fe_testsrv did not start: {words}"
        ports = list(map(int, words[1:]))
        self.text = {1: ports[0], 2: ports[2], 3: ports[4]}
        self.resp = {1: ports[1], 2: ports[3], 3: ports[5]}

    def ctl(self, line):
        self.proc.stdin.write((line + "\n").encode())
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().decode().strip()
        assert answer.startswith("ok"), f"control '{line}': {answer}"
        return answer

    def stats(self, node):
        return dict(kv.split("=") for kv in self.ctl(f"stats {node}").split()[1:])

    def log(self):
        with open(self.errpath, "rb") as err:
            return err.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """Quit; the server exits 0 only if it closed every handle (and ASan found no leak)."""
        if self.proc.poll() is None:
            self.ctl("quit")
        rc = self.proc.wait(timeout=60)
        log = self.log()
        os.unlink(self.errpath)
        return rc, log


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def closed(self):
        """True once the server closed the connection (after any pending bytes)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()

    # ---- text protocol ----
    def text_reply(self):
        """One reply: a line, or for VALUE lines the value too, as (line, value)."""
        line = self.line()
        if line.startswith(b"VALUE "):
            n = int(line.split()[-1])
            value = self.exact(n + 2)
            assert value.endswith(b"\r\n"), value
            return line, value[:-2]
        return line, None

    def text(self, data):
        self.send(data)
        return self.text_reply()

    def mget_reply(self):
        items = []
        while True:
            line, value = self.text_reply()
            if line == b"END":
                return items
            items.append(value if value is not None else line)

    # ---- RESP ----
    def resp_reply(self):
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind in (b"+", b"-"):
            return (kind.decode(), rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.exact(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.resp_reply() for _ in range(n)]
        raise AssertionError(f"bad RESP reply line {line!r}")

    def resp(self, *args):
        self.send(resp_cmd(*args))
        return self.resp_reply()


def resp_cmd(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def text_set(key, value, exptime=0, noreply=False):
    key = key if isinstance(key, bytes) else key.encode()
    value = value if isinstance(value, bytes) else value.encode()
    return b"set %s %d %d%s\r\n%s\r\n" % (key, exptime, len(value), b" noreply" if noreply else b"", value)


OK = ("+", "OK")


class FrontendCase(unittest.TestCase):
    """Shares one server; every test starts with node 1 leading and immediate completions."""

    server = None
    args = ()

    @classmethod
    def setUpClass(cls):
        cls.server = Server(*cls.args)

    @classmethod
    def tearDownClass(cls):
        rc, log = cls.server.stop()
        if rc != 0:
            raise AssertionError(f"fe_testsrv exited {rc}:\n{log[-4000:]}")

    def setUp(self):
        self.assertTrue(self.server.alive(), self.server.log()[-4000:])
        for line in ("leader 1", "outcome ok", "lifo off", "hold off", "busy 0", "ports 1 0 0"):
            self.server.ctl(line)
        self.conns = []

    def tearDown(self):
        for c in self.conns:
            c.close()
        self.assertTrue(self.server.alive(), "the server died:\n" + self.server.log()[-4000:])

    def text(self, node=1):
        c = Conn(self.server.text[node])
        self.conns.append(c)
        return c

    def resp(self, node=1):
        c = Conn(self.server.resp[node])
        self.conns.append(c)
        return c

    def key(self, name):
        return f"{self.id().rsplit('.', 1)[-1]}-{name}"


class TextProtocol(FrontendCase):
    def test_set_get_getm_cas_delete(self):
        c = self.text()
        k = self.key("k").encode()
        line, _ = c.text(text_set(k, "hello"))
        self.assertTrue(line.startswith(b"OK "), line)
        v1 = int(line.split()[1])
        self.assertEqual(c.text(b"get %s\r\n" % k), (b"VALUE 5", b"hello"))
        line, value = c.text(b"getm %s\r\n" % k)
        self.assertEqual((line, value), (b"VALUE %d 0 5" % v1, b"hello"))
        line, _ = c.text(b"cas %s 0 %d 3\r\nnew\r\n" % (k, v1))
        self.assertTrue(line.startswith(b"OK "), line)
        v2 = int(line.split()[1])
        self.assertGreater(v2, v1)
        self.assertEqual(c.text(b"get %s\r\n" % k), (b"VALUE 3", b"new"))
        self.assertEqual(c.text(b"cas %s 0 %d 1\r\nx\r\n" % (k, v1)), (b"ERR_VERSION", None))
        self.assertEqual(c.text(b"delete %s\r\n" % k), (b"DELETED", None))
        self.assertEqual(c.text(b"get %s\r\n" % k), (b"ERR_NOT_FOUND", None))
        self.assertEqual(c.text(b"getm %s\r\n" % k), (b"ERR_NOT_FOUND", None))
        self.assertEqual(c.text(b"delete %s\r\n" % k), (b"ERR_NOT_FOUND", None))
        self.assertEqual(c.text(b"cas %s 0 1 1\r\nx\r\n" % k), (b"ERR_NOT_FOUND", None))

    def test_versions_increase(self):
        c = self.text()
        versions = []
        for i in range(5):
            line, _ = c.text(text_set(self.key(str(i)), "v"))
            versions.append(int(line.split()[1]))
        self.assertEqual(versions, sorted(set(versions)))

    def test_noreply_suppresses_successes_only(self):
        c = self.text()
        k = self.key("k").encode()
        c.send(text_set(k, "one", noreply=True) + b"cas %s 0 1 1 noreply\r\nx\r\n" % k +
               b"get %s\r\n" % k)
        # the set is silent; the cas (wrong version) still reports its error, in order
        self.assertEqual(c.text_reply(), (b"ERR_VERSION", None))
        self.assertEqual(c.text_reply(), (b"VALUE 3", b"one"))
        c.send(b"delete %s noreply\r\ndelete %s noreply\r\nget %s\r\n" % (k, k, k))
        self.assertEqual(c.text_reply(), (b"ERR_NOT_FOUND", None))  # the second delete
        self.assertEqual(c.text_reply(), (b"ERR_NOT_FOUND", None))  # the get
        # a follower that redirects says so even to noreply: the write was not done
        f = self.text(2)
        f.send(text_set(k, "two", noreply=True) + b"get %s\r\n" % k)
        self.assertEqual(f.text_reply()[0][:12], b"ERR_REDIRECT")
        self.assertEqual(f.text_reply(), (b"ERR_NOT_FOUND", None))

    def test_exptime_and_getm_seconds_left(self):
        c = self.text()
        k = self.key("k").encode()
        c.text(text_set(k, "v", exptime=100))
        line, _ = c.text(b"getm %s\r\n" % k)
        left = int(line.split()[2])
        self.assertTrue(1 <= left <= 100, line)
        self.server.ctl("clock 101000")
        self.assertEqual(c.text(b"get %s\r\n" % k), (b"ERR_NOT_FOUND", None))

    def test_mset_mget(self):
        c = self.text()
        a, b, missing = (self.key(x).encode() for x in "abz")
        c.send(b"mset 2\r\n%s 0 1\r\nx\r\n%s 0 2\r\nyy\r\n" % (a, b))
        line, _ = c.text_reply()
        self.assertTrue(line.startswith(b"OK "), line)
        c.send(b"mget %s %s %s\r\n" % (a, missing, b))
        self.assertEqual(c.mget_reply(), [b"x", b"ERR_NOT_FOUND", b"yy"])

    def test_binary_values(self):
        c = self.text()
        value = bytes(range(256)) + b"\r\nset x 0 1\r\n\0" * 3
        k = self.key("bin").encode()
        line, _ = c.text(text_set(k, value))
        self.assertTrue(line.startswith(b"OK"))
        self.assertEqual(c.text(b"get %s\r\n" % k), (b"VALUE %d" % len(value), value))
        # and through RESP
        self.assertEqual(self.resp().resp("GET", k), value)

    def test_big_value_1mib(self):
        c = self.text()
        value = os.urandom(1 << 20)
        k = self.key("big").encode()
        self.assertTrue(c.text(text_set(k, value))[0].startswith(b"OK"))
        self.assertEqual(c.text(b"get %s\r\n" % k), (b"VALUE %d" % len(value), value))

    def test_errors_keep_the_connection_when_resynchronizable(self):
        c = self.text()
        self.assertEqual(c.text(b"frobnicate x\r\n")[0], b"ERR_CMD_ERR")
        self.assertEqual(c.text(b"get\r\n")[0], b"ERR_CMD_ERR")
        self.assertEqual(c.text(b"get %s\r\n" % (b"k" * 251))[0], b"ERR_CMD_ERR")
        self.assertEqual(c.text(b"set k -1 1\r\nx\r\n")[0], b"ERR_CMD_ERR")
        self.assertEqual(c.text(b"get nope-%s\r\n" % self.key("x").encode())[0], b"ERR_NOT_FOUND")

    def test_missing_value_terminator_closes(self):
        c = self.text()
        c.send(b"set %s 0 3\r\nabcXYget x\r\n" % self.key("k").encode())
        self.assertEqual(c.text_reply()[0], b"ERR_CMD_ERR")
        self.assertTrue(c.closed())
        self.assertIn("closed after ERR_CMD_ERR", self.server.log())

    def test_huge_numbytes_closes_without_buffering(self):
        c = self.text()
        c.send(b"set k 0 99999999999999\r\n")
        self.assertEqual(c.text_reply()[0], b"ERR_CMD_ERR")
        self.assertTrue(c.closed())

    def test_pipelined_100_commands_in_one_write(self):
        c = self.text()
        batch, expect = [], []
        for i in range(50):
            k = self.key(str(i)).encode()
            batch.append(text_set(k, b"v%d" % i))
            batch.append(b"get %s\r\n" % k)
        c.send(b"".join(batch))
        for i in range(50):
            self.assertTrue(c.text_reply()[0].startswith(b"OK"))
            self.assertEqual(c.text_reply(), (b"VALUE %d" % len(b"v%d" % i), b"v%d" % i))

    def test_replies_in_order_when_completions_are_reversed(self):
        self.server.ctl("lifo on")
        self.server.ctl("hold on")
        c = self.text()
        k = self.key("k").encode()
        c.send(text_set(k, "1") + b"get %s\r\n" % k + text_set(k, "22") + b"get %s\r\n" % k +
               b"delete %s\r\n" % k + b"get %s\r\n" % k)
        self.server.ctl("hold off")  # release everything queued, in reverse order
        self.assertTrue(c.text_reply()[0].startswith(b"OK"))
        self.assertEqual(c.text_reply(), (b"VALUE 1", b"1"))
        self.assertTrue(c.text_reply()[0].startswith(b"OK"))
        self.assertEqual(c.text_reply(), (b"VALUE 2", b"22"))
        self.assertEqual(c.text_reply(), (b"DELETED", None))
        self.assertEqual(c.text_reply(), (b"ERR_NOT_FOUND", None))

    def test_split_writes_one_byte_at_a_time(self):
        c = self.text()
        k = self.key("k").encode()
        stream = text_set(k, b"a\r\nb") + b"getm %s\r\nmget %s %s\r\n" % (k, k, k)
        for byte in stream:
            c.send(bytes([byte]))
        self.assertTrue(c.text_reply()[0].startswith(b"OK"))
        line, value = c.text_reply()
        self.assertEqual(value, b"a\r\nb")
        self.assertEqual(c.mget_reply(), [b"a\r\nb", b"a\r\nb"])

    def test_redirect_on_follower_and_reads_served_there(self):
        leader = self.text(1)
        k = self.key("k").encode()
        leader.text(text_set(k, "v"))
        follower = self.text(2)
        self.assertEqual(follower.text(text_set(k, "w"))[0],
                         b"ERR_REDIRECT 127.0.0.1 %d" % self.server.text[1])
        self.assertEqual(follower.text(b"delete %s\r\n" % k)[0][:12], b"ERR_REDIRECT")
        self.assertEqual(follower.text(b"get %s\r\n" % k), (b"VALUE 1", b"v"))

    def test_forwarding_follower(self):
        c = self.text(3)
        k = self.key("k").encode()
        line, _ = c.text(text_set(k, "fwd"))
        self.assertTrue(line.startswith(b"OK "), line)
        version = int(line.split()[1])
        self.assertEqual(self.text(1).text(b"get %s\r\n" % k), (b"VALUE 3", b"fwd"))
        self.assertEqual(c.text(b"cas %s 0 %d 1\r\nx\r\n" % (k, version + 1000))[0], b"ERR_VERSION")
        # noreply is stripped on the way (so replies still match) and suppressed here
        c.send(text_set(k, "quiet", noreply=True) + b"get %s\r\n" % k)
        self.assertEqual(c.text_reply(), (b"VALUE 5", b"quiet"))
        # pipelined forwarded writes keep their order
        c.send(b"".join(text_set(k, b"%d" % i) for i in range(100)) + b"get %s\r\n" % k)
        versions = [int(c.text_reply()[0].split()[1]) for _ in range(100)]
        self.assertEqual(versions, sorted(versions))
        self.assertEqual(c.text_reply(), (b"VALUE 2", b"99"))
        c.send(b"mset 1\r\n%s 0 2\r\nms\r\n" % k)
        self.assertTrue(c.text_reply()[0].startswith(b"OK"))
        self.assertEqual(c.text(b"delete %s\r\n" % k)[0], b"DELETED")
        self.assertGreater(int(self.server.stats(3)["forwarded"]), 100)

    def test_forwarder_connections_are_not_forwarded_again(self):
        c = self.text(3)
        c.send(b"RAFTKV-FORWARDED\r\n" + text_set(self.key("k"), "v"))
        self.assertEqual(c.text_reply()[0], b"ERR_REDIRECT 127.0.0.1 %d" % self.server.text[1])
        # a client whose first bytes only look like the preamble is an ordinary client
        d = self.text(1)
        self.assertEqual(d.text(b"RAFTKV-FOO\r\n")[0], b"ERR_CMD_ERR")

    def test_leader_change_while_forwarding_is_err_internal(self):
        self.server.ctl("hold on")  # the leader's commit callbacks wait
        c = self.text(3)
        k = self.key("k").encode()
        c.send(text_set(k, "a"))
        deadline = time.time() + IO_TIMEOUT
        while int(self.server.stats(1)["queued"]) < 1 and time.time() < deadline:
            time.sleep(0.01)
        self.server.ctl("view 3 2")  # node 3 now believes node 2 leads
        c.send(text_set(k, "b"))
        self.assertEqual(c.text_reply()[0], b"ERR_INTERNAL")  # in flight when the leader changed
        self.assertEqual(c.text_reply()[0], b"ERR_INTERNAL")  # node 2 is no leader: redirect -> internal

    def test_unreachable_leader_is_err_internal(self):
        dead = socket.socket()
        dead.bind(("127.0.0.1", 0))
        port = dead.getsockname()[1]  # bound, never listening: connections are refused
        self.server.ctl(f"ports 1 {port} {port}")
        self.assertEqual(self.text(3).text(text_set(self.key("k"), "v"))[0], b"ERR_INTERNAL")
        kind, text = self.resp(2).resp("SET", self.key("k"), "v")
        self.assertEqual(kind, "-")
        self.assertIn("outcome unknown", text)
        self.assertIn("cannot connect to the leader (node 1)", self.server.log())
        dead.close()
        self.server.ctl("ports 1 0 0")
        self.assertEqual(self.resp(2).resp("SET", self.key("k"), "v"), OK)  # reconnects

    def test_replies_leave_before_the_nodes_other_work(self):
        # The node calls the front-end's reply flush after applying, then sends its peer
        # messages: the reply must be on the wire before that work, not after it.
        self.server.ctl("busy 600")
        k = self.key("k")
        t, r = self.text(1), self.resp(1)
        for ask, want in ((lambda: t.text(text_set(k, "v"))[0], b"OK "),
                          (lambda: t.text(b"get %s\r\n" % k.encode())[0], b"VALUE 1"),
                          (lambda: r.resp("SET", k, "w"), ("+", "OK"))):
            time.sleep(0.7)  # the previous round's busy time is over
            start = time.monotonic()
            answer = ask()
            elapsed = time.monotonic() - start
            if isinstance(want, bytes):
                self.assertTrue(answer.startswith(want), answer)
            else:
                self.assertEqual(answer, want)
            self.assertLess(elapsed, 0.3, "the reply waited for the node's work after applying")

    def test_client_half_close_still_gets_its_replies(self):
        c = self.text(1)
        k = self.key("k").encode()
        c.send(text_set(k, "v") + b"get %s\r\n" % k)
        c.sock.shutdown(socket.SHUT_WR)
        self.assertTrue(c.text_reply()[0].startswith(b"OK"))
        self.assertEqual(c.text_reply(), (b"VALUE 1", b"v"))
        self.assertTrue(c.closed())

    def test_no_leader_waits_then_err_internal(self):
        self.server.ctl("leader 0")
        c = self.text(1)
        self.assertEqual(c.text(text_set(self.key("k"), "v"))[0], b"ERR_INTERNAL")
        self.assertEqual(c.text(b"get %s\r\n" % self.key("k").encode())[0], b"ERR_INTERNAL")
        r = self.resp(1)
        self.assertEqual(r.resp("SET", "k", "v")[0], "-")

    def test_request_waiting_for_a_leader_is_served_when_one_appears(self):
        self.server.ctl("leader 0")
        c = self.text(1)
        k = self.key("k").encode()
        c.send(text_set(k, "v") + b"get %s\r\n" % k)
        self.server.ctl("leader 1")
        self.assertTrue(c.text_reply()[0].startswith(b"OK"))
        self.assertEqual(c.text_reply(), (b"VALUE 1", b"v"))

    def test_outcome_unknown_is_err_internal(self):
        self.server.ctl("outcome lost")
        c = self.text(1)
        self.assertEqual(c.text(text_set(self.key("k"), "v"))[0], b"ERR_INTERNAL")
        self.server.ctl("outcome timeout apply")
        self.assertEqual(c.text(text_set(self.key("k"), "v"))[0], b"ERR_INTERNAL")
        self.assertEqual(self.resp(1).resp("SET", "k", "v")[0], "-")


class Robustness(FrontendCase):
    def check_others_unaffected(self):
        c = self.text(1)
        k = self.key("probe").encode()
        self.assertTrue(c.text(text_set(k, "ok"))[0].startswith(b"OK"))
        self.assertEqual(self.resp(1).resp("PING"), ("+", "PONG"))

    def test_binary_noise_on_both_ports(self):
        rng = random.Random(7)
        victims = []
        for port in (self.server.text[1], self.server.resp[1], self.server.text[3], self.server.resp[2]):
            for _ in range(3):
                c = Conn(port)
                self.conns.append(c)
                try:
                    c.send(bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 20000))))
                except (BrokenPipeError, ConnectionResetError):
                    pass
                victims.append(c)
        self.check_others_unaffected()
        for c in victims:  # each either answered errors or was closed; none hangs the server
            c.sock.settimeout(0.2)
            c.closed()
        self.check_others_unaffected()

    def test_half_commands_then_disconnect(self):
        for data in (b"set k 0 10\r\nabc", b"get", b"mset 3\r\nk 0 1\r\n", b"*3\r\n$3\r\nSET\r\n$1",
                     b"cas k 0 1 5\r\n"):
            for port in (self.server.text[1], self.server.resp[1]):
                c = Conn(port)
                c.send(data)
                c.close()
        self.check_others_unaffected()

    def test_garbage_lines(self):
        c = self.text(1)
        for junk in (b"\r\n", b"   \r\n", b"get a b\r\n", b"mget\r\n", b"cas k 0 x 1\r\n",
                     b"\x00\xff\xfe\r\n"):
            c.send(junk)
            self.assertEqual(c.text_reply()[0], b"ERR_CMD_ERR", junk)
        self.assertEqual(c.text(b"mset 0\r\n")[0], b"ERR_CMD_ERR")
        # a set whose value's end cannot be known: answered, then closed (the value could read as
        # commands, e.g. "set k 0 -8\r\ndelete victim\r\n")
        for junk in (b"set\r\n", b"set k\r\n", b"set k x y\r\n", b"set k 0 -8\r\ndelete v\r\n",
                     b"set k 0 0 15\r\nxxdelete victim\r\n"):
            bad = self.text(1)
            bad.send(junk)
            self.assertEqual(bad.text_reply()[0], b"ERR_CMD_ERR", junk)
            self.assertTrue(bad.closed(), junk)
        self.check_others_unaffected()

    def test_resp_protocol_error_closes(self):
        c = self.resp(1)
        c.send(b"*1\r\n$abc\r\n")
        kind, text = c.resp_reply()
        self.assertEqual(kind, "-")
        self.assertIn("Protocol error", text)
        self.assertTrue(c.closed())
        self.check_others_unaffected()

    def test_many_idle_connections(self):
        idle = [Conn(self.server.text[1] if i % 2 else self.server.resp[1]) for i in range(400)]
        self.conns.extend(idle)
        self.check_others_unaffected()
        st = self.server.stats(1)
        self.assertGreaterEqual(int(st["text_conns"]) + int(st["resp_conns"]), 400)
        self.assertEqual(idle[0].resp("PING"), ("+", "PONG"))

    def test_slow_reader_does_not_block_others(self):
        k = self.key("big").encode()
        self.text(1).text(text_set(k, b"x" * 100000))
        slow = self.text(1)
        slow.send(b"get %s\r\n" % k * 100)  # 10 MB of replies it never reads
        self.check_others_unaffected()
        self.assertEqual(slow.text_reply()[1], b"x" * 100000)

    def test_output_batching_shares_writes(self):
        c = self.text(1)
        before = int(self.server.stats(1)["socket_writes"])
        k = self.key("k").encode()
        c.send(b"get %s\r\n" % k * 200)
        for _ in range(200):
            self.assertEqual(c.text_reply()[0], b"ERR_NOT_FOUND")
        writes = int(self.server.stats(1)["socket_writes"]) - before
        self.assertLess(writes, 200)  # 200 replies, far fewer socket writes


class Resp(FrontendCase):
    def test_ping_echo_command_quit_unknown(self):
        c = self.resp()
        self.assertEqual(c.resp("PING"), ("+", "PONG"))
        self.assertEqual(c.resp("ping", "hi"), b"hi")
        self.assertEqual(c.resp("COMMAND"), [])
        self.assertEqual(c.resp("COMMAND", "DOCS"), [])
        self.assertEqual(c.resp("SELECT", 0), OK)
        self.assertEqual(c.resp("SELECT", 1)[0], "-")
        self.assertEqual(c.resp("CLIENT", "SETNAME", "me"), OK)
        kind, text = c.resp("FOO", "bar")
        self.assertEqual(kind, "-")
        self.assertTrue(text.startswith("ERR unknown command 'FOO'"), text)
        self.assertEqual(c.resp("QUIT"), OK)
        self.assertTrue(c.closed())

    def test_inline_commands(self):
        c = self.resp()
        c.send(b"PING\r\n")
        self.assertEqual(c.resp_reply(), ("+", "PONG"))
        c.send(b'SET %s "a b"\r\nGET %s\r\n' % ((self.key("k").encode(),) * 2))
        self.assertEqual(c.resp_reply(), OK)
        self.assertEqual(c.resp_reply(), b"a b")

    def test_set_get_options(self):
        c = self.resp()
        k = self.key("k")
        self.assertEqual(c.resp("SET", k, "v"), OK)
        self.assertEqual(c.resp("GET", k), b"v")
        self.assertIsNone(c.resp("SET", k, "w", "NX"))
        self.assertEqual(c.resp("SET", k, "w", "XX"), OK)
        self.assertIsNone(c.resp("SET", k + "missing", "w", "XX"))
        self.assertEqual(c.resp("SET", k, "e", "EX", 100), OK)
        self.assertTrue(90 <= c.resp("TTL", k) <= 100)
        self.assertEqual(c.resp("SET", k, "p", "PX", 5000), OK)
        self.assertTrue(1 <= c.resp("TTL", k) <= 5)
        self.server.ctl("clock 6000")
        self.assertIsNone(c.resp("GET", k))
        self.assertEqual(c.resp("SET", k, "v", "EX", 0)[0], "-")
        self.assertEqual(c.resp("SET", k, "v", "BOGUS"), ("-", "ERR syntax error"))
        self.assertIsNone(c.resp("GET", k + "nothing"))

    def test_del_exists_mget_mset_dbsize(self):
        c = self.resp()
        a, b, z = self.key("a"), self.key("b"), self.key("z")
        self.assertEqual(c.resp("MSET", a, "1", b, "2"), OK)
        self.assertEqual(c.resp("MGET", a, z, b), [b"1", None, b"2"])
        self.assertEqual(c.resp("EXISTS", a, b, z, a), 3)
        self.assertGreaterEqual(c.resp("DBSIZE"), 2)
        self.assertEqual(c.resp("DEL", a, b, z), 2)
        self.assertEqual(c.resp("DEL", a), 0)
        self.assertEqual(c.resp("EXISTS", a), 0)

    def test_incr_expire_ttl(self):
        c = self.resp()
        k = self.key("n")
        self.assertEqual(c.resp("INCR", k), 1)
        self.assertEqual(c.resp("INCR", k), 2)
        self.assertEqual(c.resp("TTL", k), -1)
        self.assertEqual(c.resp("EXPIRE", k, 50), 1)
        self.assertTrue(40 <= c.resp("TTL", k) <= 50)
        self.assertEqual(c.resp("EXPIRE", k + "missing", 50), 0)
        self.assertEqual(c.resp("TTL", k + "missing"), -2)
        c.resp("SET", k, "abc")
        self.assertEqual(c.resp("INCR", k), ("-", "ERR value is not an integer or out of range"))
        self.assertEqual(c.resp("GET", "x", "y")[0], "-")  # wrong number of arguments

    def test_info_has_raft_section(self):
        info = self.resp(1).resp("INFO").decode()
        self.assertIn("# Raft", info)
        self.assertIn("role:leader", info)
        for field in ("term:", "leader:1", "commit:", "applied:", "peer_2:match="):
            self.assertIn(field, info)
        raft_only = self.resp(2).resp("INFO", "raft").decode()
        self.assertTrue(raft_only.startswith("# Raft"))
        self.assertIn("role:follower", raft_only)
        self.assertNotIn("# Server", raft_only)

    def test_follower_forwards_writes_and_serves_reads(self):
        c = self.resp(2)
        k = self.key("k")
        self.assertEqual(c.resp("SET", k, "via2"), OK)
        self.assertEqual(c.resp("GET", k), b"via2")
        self.assertEqual(self.resp(1).resp("GET", k), b"via2")
        self.assertEqual(c.resp("INCR", k + "n"), 1)
        self.assertEqual(c.resp("DEL", k), 1)
        self.assertIsNone(c.resp("SET", k + "n", "x", "NX"))
        c.send(b"".join(resp_cmd("INCR", k + "c") for _ in range(100)) + resp_cmd("GET", k + "c"))
        self.assertEqual([c.resp_reply() for _ in range(100)], list(range(1, 101)))
        self.assertEqual(c.resp_reply(), b"100")
        # a forwarder's own connection is never forwarded again
        f = self.resp(3)
        self.assertEqual(f.resp("RAFTKV.FORWARDED"), OK)
        self.assertEqual(f.resp("SET", k, "v"), ("-", "ERR not the leader"))

    def test_pipelined_and_split(self):
        c = self.resp()
        k = self.key("k")
        stream = b"".join(resp_cmd("SET", f"{k}{i}", i) + resp_cmd("GET", f"{k}{i}") for i in range(50))
        c.send(stream)
        for i in range(50):
            self.assertEqual(c.resp_reply(), OK)
            self.assertEqual(c.resp_reply(), str(i).encode())
        for byte in resp_cmd("SET", k, b"\r\n\0") + resp_cmd("GET", k):
            c.send(bytes([byte]))
        self.assertEqual(c.resp_reply(), OK)
        self.assertEqual(c.resp_reply(), b"\r\n\0")

    @unittest.skipUnless(shutil.which("redis-cli"), "redis-cli not installed")
    def test_redis_cli(self):
        port = str(self.server.resp[2])  # through a follower: writes are forwarded
        k = self.key("cli")

        def cli(*args):
            return subprocess.run(["redis-cli", "-p", port, *args], capture_output=True, text=True,
                                  timeout=IO_TIMEOUT).stdout.strip()
        self.assertEqual(cli("SET", k, "hello"), "OK")
        self.assertEqual(cli("GET", k), "hello")
        self.assertIn("role:follower", cli("INFO", "raft"))
        self.assertEqual(cli("PING"), "PONG")


class OutputLimit(FrontendCase):
    args = ("--output-limit", 300000, "--max-value", 200000)

    def test_value_over_the_configured_limit(self):
        c = self.text(1)
        self.assertTrue(c.text(text_set(self.key("k"), b"v" * 200000))[0].startswith(b"OK"))
        c.send(b"set %s 0 200001\r\n" % self.key("k").encode())
        self.assertEqual(c.text_reply()[0], b"ERR_CMD_ERR")  # answered before the value arrives
        self.assertTrue(c.closed())
        r = self.resp(1)
        self.assertEqual(r.resp("SET", self.key("k"), b"v" * 200000), OK)
        kind, text = r.resp("SET", self.key("k"), b"v" * 200001)
        self.assertEqual(kind, "-")

    def test_connection_past_its_output_limit_is_closed(self):
        k = self.key("big").encode()
        self.text(1).text(text_set(k, b"y" * 100000))
        greedy = self.text(1)
        greedy.send(b"get %s\r\n" % k * 50)
        self.assertTrue(greedy.closed())
        self.assertIn("over the output limit of 300000 bytes", self.server.log())
        c = self.text(1)
        self.assertEqual(c.text(b"get %s\r\n" % k)[1], b"y" * 100000)  # others unaffected
        self.assertGreaterEqual(int(self.server.stats(1)["output_limit_closes"]), 1)


class ForwardTimeout(FrontendCase):
    args = ("--forward-timeout-ms", 300)

    def test_leader_silent_past_the_timeout_is_err_internal(self):
        self.server.ctl("hold on")  # the leader never completes the write
        c = self.text(3)
        self.assertEqual(c.text(text_set(self.key("k"), "v"))[0], b"ERR_INTERNAL")
        self.assertIn("within 300 ms", self.server.log())
        self.server.ctl("hold off")
        self.assertTrue(c.text(text_set(self.key("k"), "v"))[0].startswith(b"OK"))


class HeldCopies(FrontendCase):
    args = ("--leader-wait-ms", 20000)

    def rss_kib(self):
        with open("/proc/%d/status" % self.server.proc.pid) as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

    def held_writes_are_bounded(self, conn, request, count):
        """With no leader, every write waits holding a copy of itself: the connection must stop
        taking input near the held-bytes limit (8 MiB), not buffer all of them; once a leader is
        known every write is answered."""
        self.server.ctl("leader 0")
        before = self.rss_kib()
        sender = threading.Thread(target=lambda: conn.send(request * count), daemon=True)
        sender.start()
        deadline = time.monotonic() + 4
        peak = before
        while time.monotonic() < deadline and sender.is_alive():
            peak = max(peak, self.rss_kib())
            time.sleep(0.05)
        peak = max(peak, self.rss_kib())
        self.assertTrue(sender.is_alive(), "the server took all %d writes while none could be done"
                        % count)
        self.assertLess(peak - before, 48 * 1024, "RSS grew by %d KiB" % (peak - before))
        self.server.ctl("leader 1")
        sender.join(IO_TIMEOUT)
        self.assertFalse(sender.is_alive())
        return peak - before

    def test_text_writes_waiting_for_a_leader(self):
        c = self.text(1)
        grew = self.held_writes_are_bounded(c, text_set(self.key("k"), b"v" * (1 << 20)), 100)
        for _ in range(100):
            self.assertTrue(c.text_reply()[0].startswith(b"OK"), "grew %d KiB" % grew)

    def test_resp_writes_waiting_for_a_leader(self):
        c = self.resp(1)
        k = self.key("k").encode()
        value = b"v" * (1 << 20)
        request = b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(value), value)
        self.held_writes_are_bounded(c, request, 100)
        for _ in range(100):
            self.assertEqual(c.resp_reply(), OK)


class ConnLimit(FrontendCase):
    args = ("--max-conns", 5, "--max-pipeline", 4)

    def test_connections_over_the_limit_are_refused(self):
        kept = [self.resp(1) for _ in range(5)]
        for c in kept:
            self.assertEqual(c.resp("PING"), ("+", "PONG"))
        extra = Conn(self.server.resp[1])
        self.conns.append(extra)
        self.assertTrue(extra.closed())
        self.assertIn("the limit (max_conns) is 5", self.server.log(), self.server.stats(1))

    def test_held_input_waits_for_the_groups_own_flush(self):
        # 20 writes in one segment: 4 are taken, 16 held. The node's reply flush (the fake calls
        # it after completing the 4) only writes; the held ones are parsed afterwards, outside the
        # node (the fake aborts if node_write is called from inside the flush).
        self.server.ctl("hold on")
        c = self.text(1)
        k = self.key("k")
        c.send(b"".join(text_set(k, b"%d" % i) for i in range(20)))
        time.sleep(0.3)
        self.server.ctl("hold off")
        for _ in range(20):
            self.assertTrue(c.text_reply()[0].startswith(b"OK"))

    def test_small_pipeline_limit_still_answers_everything(self):
        c = self.text(1)
        k = self.key("k").encode()
        c.send(b"".join(text_set(k, b"%d" % i) + b"get %s\r\n" % k for i in range(300)))
        for i in range(300):
            self.assertTrue(c.text_reply()[0].startswith(b"OK"))
            self.assertEqual(c.text_reply()[1], b"%d" % i)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    SERVER = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
