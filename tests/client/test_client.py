#!/usr/bin/env python3
"""raftkv CLI against fake nodes (fake_server.py): every subcommand, redirects, nodes down,
retries, exit codes and usage errors.  usage: test_client.py PATH/TO/raftkv"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fake_server import FakeNode, Store  # noqa: E402

RAFTKV = None


def dead_port():
    """A port nobody listens on (bound then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run(*args, stdin=b"", env=None, cwd=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RAFTKV_")}
    full_env.update(env or {})
    p = subprocess.run([RAFTKV] + list(args), input=stdin, capture_output=True, timeout=60,
                       env=full_env, cwd=cwd)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def addr(node):
    return "127.0.0.1:%d" % node.text_port


class Base(unittest.TestCase):
    def setUp(self):
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.close()

    def node(self, store=None, node_id=1):
        n = FakeNode(store=store, node_id=node_id)
        self.nodes.append(n)
        return n

    def kv(self, cluster, *args, **kw):
        return run("--cluster", cluster, "--timeout", "2000", *args, **kw)


class Usage(Base):
    def test_help_documents_exit_codes(self):
        rc, out, _ = run("--help")
        self.assertEqual(rc, 0)
        for word in (b"Exit codes", b"cluster unavailable", b"get KEY", b"mset", b"status",
                     b"cluster start"):
            self.assertIn(word, out)

    def test_usage_errors_exit_2(self):
        cases = [
            (),
            ("frobnicate",),
            ("get",),
            ("get", "a", "b"),
            ("get", "has space"),
            ("get", "x" * 251),
            ("set", "k"),
            ("cas", "k", "notanumber", "v"),
            ("cas", "k", "1"),
            ("mset", "k"),
            ("mset", "a", "1", "b"),
            ("mget",),
            ("get", "k", "--ttl", "5"),
            ("set", "k", "v", "--ttl", "-1"),
            ("get", "k", "--timeout", "zero"),
            ("get", "k", "--bogus"),
            ("set", "a", "-", "--", "b"),
            ("status", "extra"),
            ("get", "k", "--nodes", "3"),
            ("member",),
            ("member", "add"),
            ("member", "add", "0"),
            ("member", "add", "x1"),
            ("member", "remove", "1", "2"),
            ("member", "list", "x"),
            ("member", "promote", "1", "2"),
            ("member", "promote", "0"),
            ("member", "add-learner"),
            ("member", "add-learner", "4", "127.0.0.1:0:1:2"),
            ("member", "demote", "1", "2"),
            ("member", "relegate", "1"),
            ("get", "k", "--spares", "1"),
        ]
        for args in cases:
            rc, out, err = run("--cluster", "127.0.0.1:1", *args)
            self.assertEqual(rc, 2, "%r: rc %d, %s" % (args, rc, err))
            self.assertIn("raftkv", err)
            self.assertEqual(out, b"", args)

    def test_member_needs_resp_ports(self):
        rc, out, err = run("--cluster", "127.0.0.1:1", "member", "list")
        self.assertEqual((rc, out), (3, b""), err)
        self.assertIn("no RESP port known", err)
        rc, out, err = run("--cluster", "127.0.0.1:1:2", "member", "add", "2")
        self.assertEqual((rc, out), (3, b""), err)
        self.assertIn("no node answered on its RESP port (1 tried)", err)

    def test_bad_cluster_specs(self):
        for spec in ("", "nohostport", "h:0", "h:70000", "h:12:x", ":5"):
            rc, _, err = run("--cluster", spec, "get", "k")
            self.assertEqual(rc, 2, spec)
            self.assertIn("--cluster", err)

    def test_cluster_and_peers_together(self):
        rc, _, err = run("--cluster", "127.0.0.1:1", "--peers", "/nonexistent", "get", "k")
        self.assertEqual(rc, 2)
        self.assertIn("not both", err)

    def test_no_cluster_given(self):
        with tempfile.TemporaryDirectory() as d:
            rc, _, err = run("get", "k", cwd=d)
        self.assertEqual(rc, 2)
        self.assertIn("no cluster given", err)

    def test_invalid_key_never_contacts_the_server(self):
        n = self.node()
        rc, _, _ = self.kv(addr(n), "set", "bad\tkey", "v")
        self.assertEqual(rc, 2)
        self.assertEqual(n.received, [])


class Commands(Base):
    def test_set_get_getm_delete(self):
        n = self.node()
        rc, out, err = self.kv(addr(n), "set", "greeting", "hello")
        self.assertEqual((rc, out), (0, b"1\n"), err)
        self.assertEqual(n.received[-1], ("set", ["greeting", "0", "5"], [b"hello"]))
        rc, out, _ = self.kv(addr(n), "get", "greeting")
        self.assertEqual((rc, out), (0, b"hello"))
        rc, out, _ = self.kv(addr(n), "getm", "greeting")
        self.assertEqual((rc, out), (0, b"1 0\nhello"))
        rc, out, _ = self.kv(addr(n), "delete", "greeting")
        self.assertEqual((rc, out), (0, b""))
        rc, out, err = self.kv(addr(n), "get", "greeting")
        self.assertEqual((rc, out), (1, b""))
        self.assertIn("not found", err)
        rc, _, _ = self.kv(addr(n), "delete", "greeting")
        self.assertEqual(rc, 1)

    def test_ttl_is_sent_and_shown(self):
        n = self.node()
        rc, _, _ = self.kv(addr(n), "set", "k", "v", "--ttl", "100")
        self.assertEqual(rc, 0)
        self.assertEqual(n.received[-1][1], ["k", "100", "1"])
        rc, out, _ = self.kv(addr(n), "getm", "k")
        self.assertEqual(rc, 0)
        version, left = out.split(b"\n")[0].split()
        self.assertTrue(90 <= int(left) <= 100, out)

    def test_binary_value_from_stdin(self):
        n = self.node()
        value = bytes(range(256)) + b"\r\nEND\r\n\x00tail"
        rc, out, err = self.kv(addr(n), "set", "bin", "-", stdin=value)
        self.assertEqual(rc, 0, err)
        rc, out, _ = self.kv(addr(n), "get", "bin")
        self.assertEqual((rc, out), (0, value))
        self.assertEqual(n.received[0][2], [value])

    def test_empty_value(self):
        n = self.node()
        self.assertEqual(self.kv(addr(n), "set", "e", "")[0], 0)
        self.assertEqual(self.kv(addr(n), "get", "e")[:2], (0, b""))

    def test_value_starting_with_dashes_after_double_dash(self):
        n = self.node()
        rc, _, err = self.kv(addr(n), "set", "k", "--", "--not-an-option")
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.kv(addr(n), "get", "k")[1], b"--not-an-option")

    def test_cas(self):
        n = self.node()
        self.kv(addr(n), "set", "k", "one")
        rc, out, _ = self.kv(addr(n), "cas", "k", "1", "two", "--ttl", "30")
        self.assertEqual((rc, out), (0, b"2\n"))
        self.assertEqual(n.received[-1], ("cas", ["k", "30", "1", "3"], [b"two"]))
        rc, out, err = self.kv(addr(n), "cas", "k", "1", "three")
        self.assertEqual((rc, out), (1, b""))
        self.assertIn("version mismatch", err)
        self.assertEqual(self.kv(addr(n), "get", "k")[1], b"two")
        rc, _, err = self.kv(addr(n), "cas", "missing", "1", "x")
        self.assertEqual(rc, 1)

    def test_mset_then_mget(self):
        n = self.node()
        rc, out, err = self.kv(addr(n), "mset", "a", "1", "b", "two words", "--ttl", "9")
        self.assertEqual((rc, out), (0, b"1\n"), err)
        self.assertEqual(n.received[-1], ("mset", ["2"], [("a", 9, b"1"), ("b", 9, b"two words")]))
        rc, out, _ = self.kv(addr(n), "mget", "a", "b")
        self.assertEqual((rc, out), (0, b"a 1\n1\nb 9\ntwo words\n"))
        rc, out, _ = self.kv(addr(n), "mget", "a", "zz", "b")
        self.assertEqual((rc, out), (1, b"a 1\n1\nzz -\nb 9\ntwo words\n"))

    def test_server_rejects_command(self):
        n = self.node()
        n.cmd_err = True
        rc, _, err = self.kv(addr(n), "set", "k", "v")
        self.assertEqual(rc, 2)
        self.assertIn("ERR_CMD_ERR", err)

    def test_peers_file(self):
        n = self.node()
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "peers.json")
            with open(path, "w") as f:
                json.dump([{"id": 7, "host": "127.0.0.1", "peer_port": 1, "client_port": n.text_port,
                            "resp_port": n.resp_port}], f)
            rc, out, err = run("--peers", path, "set", "k", "v")
            self.assertEqual((rc, out), (0, b"1\n"), err)
            rc, out, _ = run("get", "k", env={"RAFTKV_PEERS": path})
            self.assertEqual((rc, out), (0, b"v"))
            with open(path, "w") as f:
                json.dump([{"id": 1, "host": "127.0.0.1", "client_port": "x"}], f)
            rc, _, err = run("--peers", path, "get", "k")
            self.assertEqual(rc, 2)
            self.assertIn("client_port", err)
            self.assertIn("peers.json", err)

    def test_cluster_from_environment(self):
        n = self.node()
        rc, out, err = run("set", "k", "v", env={"RAFTKV_CLUSTER": addr(n)})
        self.assertEqual((rc, out), (0, b"1\n"), err)


class Routing(Base):
    def test_follows_redirect_to_leader(self):
        store = Store()
        follower, leader = self.node(store, 2), self.node(store, 1)
        follower.redirect = ("127.0.0.1", leader.text_port)
        rc, out, err = self.kv(addr(follower), "-v", "set", "k", "v")
        self.assertEqual((rc, out), (0, b"1\n"), err)
        self.assertIn("redirected to 127.0.0.1:%d" % leader.text_port, err)
        self.assertEqual((follower.count("set"), leader.count("set")), (1, 1))
        rc, out, _ = self.kv(addr(follower), "get", "k")
        self.assertEqual((rc, out), (0, b"v"))

    def test_redirect_loop_is_bounded(self):
        a, b = self.node(node_id=1), self.node(node_id=2)
        a.redirect = ("127.0.0.1", b.text_port)
        b.redirect = ("127.0.0.1", a.text_port)
        rc, _, err = self.kv(addr(a), "--redirects", "4", "set", "k", "v")
        self.assertEqual(rc, 3)
        self.assertIn("redirects", err)
        # 6 rounds of at most 1 + 4 hops: never unbounded.
        self.assertLessEqual(a.count("set") + b.count("set"), 30)
        self.assertGreater(a.count("set") + b.count("set"), 4)

    def test_redirect_loop_then_the_lists_next_node(self):
        store = Store()
        a, b, c = self.node(store, 1), self.node(store, 2), self.node(store, 3)
        a.redirect = ("127.0.0.1", b.text_port)
        b.redirect = ("127.0.0.1", a.text_port)
        rc, out, err = self.kv(",".join(map(addr, (a, b, c))), "--redirects", "2", "set", "k", "v")
        self.assertEqual((rc, out), (0, b"1\n"), err)
        self.assertEqual(c.count("set"), 1)

    def test_write_skips_a_node_that_accepts_but_never_answers(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # a stopped process: its kernel completes the handshake, nothing answers
        n = self.node()
        try:
            rc, out, err = self.kv("127.0.0.1:%d,%s" % (s.getsockname()[1], addr(n)), "set", "k", "v")
        finally:
            s.close()
        self.assertEqual((rc, out), (0, b"1\n"), err)
        self.assertEqual(n.count("set"), 1)

    def test_value_minus_h_is_written_not_help(self):
        n = self.node()
        rc, out, err = self.kv(addr(n), "set", "opt", "-h")
        self.assertEqual((rc, out), (0, b"1\n"), err)
        self.assertEqual(self.kv(addr(n), "get", "opt")[:2], (0, b"-h"))

    def test_redirect_to_dead_leader_then_next_node(self):
        store = Store()
        follower, leader = self.node(store, 2), self.node(store, 1)
        follower.redirect = ("127.0.0.1", dead_port())
        rc, out, err = self.kv(addr(follower) + "," + addr(leader), "set", "k", "v")
        self.assertEqual((rc, out), (0, b"1\n"), err)
        self.assertEqual(leader.count("set"), 1)

    def test_skips_node_that_is_down(self):
        n = self.node()
        spec = "127.0.0.1:%d,%s" % (dead_port(), addr(n))
        rc, out, err = self.kv(spec, "-v", "set", "k", "v")
        self.assertEqual((rc, out), (0, b"1\n"), err)
        self.assertIn("cannot connect", err)

    def test_all_nodes_down_exit_3(self):
        spec = "127.0.0.1:%d,127.0.0.1:%d" % (dead_port(), dead_port())
        for args in (("get", "k"), ("set", "k", "v"), ("mget", "a", "b")):
            rc, out, err = self.kv(spec, *args)
            self.assertEqual(rc, 3, args)
            self.assertIn("cluster unavailable", err)
            self.assertEqual(out, b"")

    def test_read_retries_internal_then_succeeds(self):
        n = self.node()
        self.kv(addr(n), "set", "k", "v")
        n.internal = 2
        rc, out, err = self.kv(addr(n), "get", "k")
        self.assertEqual((rc, out), (0, b"v"), err)
        self.assertEqual(n.count("get"), 3)

    def test_read_internal_forever_is_bounded(self):
        n = self.node()
        n.internal = 1000
        rc, _, err = self.kv(addr(n), "--retries", "2", "get", "k")
        self.assertEqual(rc, 3)
        self.assertIn("ERR_INTERNAL", err)
        self.assertEqual(n.count("get"), 6 * 3)  # 6 rounds x (1 + 2 retries)

    def test_write_internal_is_not_retried(self):
        n = self.node()
        n.internal = 1
        rc, _, err = self.kv(addr(n), "set", "k", "v")
        self.assertEqual(rc, 4)
        self.assertIn("may or may not", err)
        self.assertEqual(n.count("set"), 1)

    def test_write_connection_lost_is_unknown_and_not_resent(self):
        store = Store()
        a, b = self.node(store, 1), self.node(store, 2)
        a.drop = 1
        rc, _, err = self.kv(addr(a) + "," + addr(b), "set", "k", "v")
        self.assertEqual(rc, 4, err)
        self.assertIn("outcome unknown", err)
        self.assertEqual((a.count("set"), b.count("set")), (1, 0))

    def test_read_connection_lost_tries_next_node(self):
        store = Store()
        a, b = self.node(store, 1), self.node(store, 2)
        self.kv(addr(b), "set", "k", "v")
        a.drop = 1
        rc, out, err = self.kv(addr(a) + "," + addr(b), "get", "k")
        self.assertEqual((rc, out), (0, b"v"), err)

    def test_silent_server_times_out(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(8)  # accepts (backlog) but never answers
        try:
            rc, _, err = run("--cluster", "127.0.0.1:%d" % s.getsockname()[1], "--timeout", "200",
                             "get", "k")
        finally:
            s.close()
        self.assertEqual(rc, 3)
        self.assertIn("no reply within 200 ms", err)


class Status(Base):
    def spec(self, *nodes):
        return ",".join("127.0.0.1:%d:%d" % (n.text_port, n.resp_port) for n in nodes)

    def test_table_with_lag_and_down_node(self):
        leader, follower = self.node(node_id=1), self.node(node_id=2)
        leader.info = {"role": "leader", "term": 4, "leader": 1, "commit": 120, "applied": 120}
        follower.info = {"role": "follower", "term": 4, "leader": 1, "commit": 118, "applied": 117}
        spec = self.spec(leader, follower) + ",127.0.0.1:%d:%d" % (dead_port(), dead_port())
        rc, out, err = run("--cluster", spec, "status")
        self.assertEqual(rc, 0, err)
        lines = out.decode().splitlines()
        self.assertEqual(lines[0].split(), ["ID", "ADDRESS", "ROLE", "TERM", "LEADER", "COMMIT",
                                            "APPLIED", "LAG"])
        self.assertEqual(lines[1].split()[2:], ["leader", "4", "1", "120", "120", "0"])
        self.assertEqual(lines[2].split()[2:], ["follower", "4", "1", "118", "117", "3"])
        self.assertEqual(lines[3].split()[2:], ["down", "-", "-", "-", "-", "-"])
        self.assertIn("node 3 down", err)

    def test_output_that_cannot_be_written_is_an_error(self):
        leader = self.node(node_id=1)
        with open("/dev/full", "wb") as full:
            p = subprocess.run([RAFTKV, "--cluster", self.spec(leader), "status"], stdout=full,
                               stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn(b"stdout", p.stderr)

    def test_missing_fields_and_prefixed_names(self):
        a, b = self.node(node_id=1), self.node(node_id=2)
        a.info = {"raft_role": "leader", "raft_current_term": 9, "raft_commit_index": 50}
        b.info = {"state": "candidate"}
        rc, out, err = run("--cluster", self.spec(a, b), "status")
        self.assertEqual(rc, 0, err)
        lines = out.decode().splitlines()
        self.assertEqual(lines[1].split()[2:], ["leader", "9", "-", "50", "-", "-"])
        self.assertEqual(lines[2].split()[2:], ["candidate", "-", "-", "-", "-", "-"])

    def test_no_leader_exit_3(self):
        a = self.node()
        a.info = {"role": "follower", "term": 2, "leader": "none"}
        rc, out, err = run("--cluster", self.spec(a), "status")
        self.assertEqual(rc, 3)
        self.assertIn("follower", out.decode())
        self.assertIn("no node reports itself leader", err)

    def test_info_error_reply_is_down(self):
        a, b = self.node(node_id=1), self.node(node_id=2)
        b.info = None
        rc, out, err = run("--cluster", self.spec(a, b), "status")
        self.assertEqual(rc, 0)
        self.assertEqual(out.decode().splitlines()[2].split()[2], "down")
        self.assertIn("bulk string", err)

    def test_resp_port_unknown(self):
        a = self.node()
        rc, out, err = run("--cluster", addr(a), "status")
        self.assertEqual(rc, 3)
        self.assertIn("RESP port unknown", err)


if __name__ == "__main__":
    RAFTKV = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
