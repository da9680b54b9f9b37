#!/usr/bin/env python3
"""raftkv against a real local cluster: `raftkv cluster start --nodes 3`, set/get through a
follower, binary values, the status table, kill -9 of the leader (a write still succeeds and
nothing acknowledged is lost), restart of the dead node with `cluster start`, a node joined as a
learner from outside the directory (shown by `cluster status`), then stop.
usage: test_cluster.py PATH/TO/raftkv PATH/TO/raftkvd"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

RAFTKV = RAFTKVD = None


def free_base(nodes):
    for _ in range(200):
        base = random.randrange(20000, 60000 - 300)
        socks = []
        try:
            for block in (0, 100, 200):
                for i in range(1, nodes + 1):
                    s = socket.socket()
                    socks.append(s)
                    s.bind(("127.0.0.1", base + block + i))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free port range")


def run(*args, stdin=b"", timeout=120):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAFTKV_")}
    p = subprocess.run([RAFTKV] + list(args), input=stdin, capture_output=True, timeout=timeout,
                       env=env)
    return p.returncode, p.stdout, p.stderr.decode(errors="replace")


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def table(out):
    """Rows of the status table as dicts keyed by the header."""
    lines = out.decode().splitlines()
    header = [h.lower() for h in lines[0].split()]
    return [dict(zip(header, line.split())) for line in lines[1:]]


class RealCluster(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "cluster")
        self.base = free_base(4)  # node 4 joins from outside the directory
        self.peers = os.path.join(self.dir, "peers.json")
        self.outsider = None

    def tearDown(self):
        if self.outsider is not None and self.outsider.poll() is None:
            self.outsider.kill()
            self.outsider.wait()
        run("cluster", "stop", "--dir", self.dir, "--stop-timeout", "10")
        for i in (1, 2, 3):  # whatever stop left behind (only pids this test started)
            path = os.path.join(self.dir, "node-%d.pid" % i)
            if os.path.exists(path):
                with open(path) as f:
                    pid = int(f.read())
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
        self.tmp.cleanup()

    def kv(self, *args, **kw):
        return run("--peers", self.peers, *args, **kw)

    def pid(self, node_id):
        with open(os.path.join(self.dir, "node-%d.pid" % node_id)) as f:
            return int(f.read())

    def status_rows(self):
        rc, out, err = self.kv("status")
        self.assertEqual(rc, 0, err)
        return table(out)

    def test_cluster_end_to_end(self):
        rc, out, err = run("cluster", "start", "--nodes", "3", "--dir", self.dir, "--base-port",
                           str(self.base), "--raftkvd", RAFTKVD, "--wait", "60")
        self.assertEqual(rc, 0, out.decode() + err)
        self.assertIn(b"leader is node", out)
        with open(self.peers) as f:
            peers = json.load(f)
        self.assertEqual(len(peers), 3)

        rows = self.status_rows()
        self.assertEqual(sorted(r["role"] for r in rows), ["follower", "follower", "leader"])
        leader_id = int([r for r in rows if r["role"] == "leader"][0]["id"])
        follower = [p for p in peers if p["id"] != leader_id][0]
        via_follower = "127.0.0.1:%d" % follower["client_port"]

        # A write through a follower: redirected (or forwarded) to the leader.
        rc, out, err = run("--cluster", via_follower, "set", "greeting", "hello")
        self.assertEqual(rc, 0, err)
        version = int(out)
        rc, out, err = run("--cluster", via_follower, "get", "greeting")
        self.assertEqual((rc, out), (0, b"hello"), err)
        rc, out, _ = self.kv("getm", "greeting")
        self.assertEqual(out.split(b"\n")[0], b"%d 0" % version)

        value = bytes(range(256)) * 4 + b"\r\nEND\r\n"
        self.assertEqual(self.kv("set", "bin", "-", stdin=value)[0], 0)
        self.assertEqual(self.kv("get", "bin")[:2], (0, value))
        self.assertEqual(self.kv("cas", "greeting", str(version), "hi")[0], 0)
        self.assertEqual(self.kv("cas", "greeting", str(version), "again")[0], 1)
        self.assertEqual(self.kv("mset", "a", "1", "b", "2")[0], 0)
        self.assertEqual(self.kv("mget", "a", "b", "nope")[:2], (1, b"a 1\n1\nb 1\n2\nnope -\n"))
        self.assertEqual(self.kv("delete", "a")[0], 0)
        self.assertEqual(self.kv("get", "a")[0], 1)
        # A value over the server's limit (1 MiB) is refused while it is being sent: a usage
        # error (2), not an outage (3), however far past the limit it is.
        for size in (2 << 20, 16 << 20):
            rc, _, err = self.kv("set", "big", "-", stdin=b"x" * size)
            self.assertEqual(rc, 2, err)
            self.assertIn("ERR_CMD_ERR", err)

        # Every node converges: lag 0 everywhere (bounded wait, no timed assertion).
        deadline = time.time() + 30
        while True:
            rows = self.status_rows()
            if all(r["lag"] == "0" for r in rows) or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual([r["lag"] for r in rows], ["0", "0", "0"], rows)

        # kill -9 the leader: the client finds the new leader by itself.
        leader_pid = self.pid(leader_id)
        os.kill(leader_pid, signal.SIGKILL)
        # Until it is gone its sockets may still accept; a write sent there has an unknown outcome.
        deadline = time.time() + 30
        while alive(leader_pid) and time.time() < deadline:
            time.sleep(0.01)
        rc, out, err = self.kv("set", "after", "failover", "--timeout", "2000")
        self.assertEqual(rc, 0, err)
        for key, expected in ((b"greeting", b"hi"), (b"bin", value), (b"after", b"failover")):
            self.assertEqual(self.kv("get", key.decode())[:2], (0, expected), key)
        rows = self.status_rows()
        dead = [r for r in rows if int(r["id"]) == leader_id][0]
        self.assertEqual(dead["role"], "down")

        # start brings the dead node back; it catches up.
        rc, out, err = run("cluster", "start", "--dir", self.dir, "--raftkvd", RAFTKVD, "--wait",
                           "60")
        self.assertEqual(rc, 0, err)
        self.assertIn(b"2 already running", out)
        deadline = time.time() + 30
        while True:
            rows = self.status_rows()
            if all(r["lag"] == "0" and r["role"] != "down" for r in rows) or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual([r["lag"] for r in rows], ["0", "0", "0"], rows)

        # Node 4 joins as a learner from outside the directory (its own peers file and data):
        # `cluster status` shows it too, from the leader's member list, with its role.
        node4 = {"id": 4, "host": "127.0.0.1", "peer_port": self.base + 204,
                 "client_port": self.base + 4, "resp_port": self.base + 104}
        own = os.path.join(self.tmp.name, "node4")
        os.mkdir(own)
        with open(os.path.join(own, "peers.json"), "w") as f:
            json.dump(peers + [dict(node4, voter=False)], f)
        with open(os.path.join(own, "log"), "w") as log:
            self.outsider = subprocess.Popen(
                [RAFTKVD, "--id", "4", "--peers", os.path.join(own, "peers.json"), "--data-dir",
                 os.path.join(own, "data")], stdout=log, stderr=log)
        addr = "127.0.0.1:%d:%d:%d" % (node4["peer_port"], node4["client_port"],
                                       node4["resp_port"])
        deadline = time.time() + 30
        while True:  # exit 3 (an election, a voter not heard from yet): ask again
            rc, out, err = self.kv("member", "add-learner", "4", addr)
            if rc != 3 or time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual((rc, out), (0, b"node 4 added as a learner\n"), err)
        deadline = time.time() + 30
        while True:
            rc, out, err = run("cluster", "status", "--dir", self.dir)
            rows = table(out) if rc == 0 else []
            if [r["role"] for r in rows if r["id"] == "4"] == ["learner"] or \
                    time.time() > deadline:
                break
            time.sleep(0.2)
        self.assertEqual([r["id"] for r in rows], ["1", "2", "3", "4"], out + err.encode())
        self.assertEqual(rows[3]["role"], "learner", rows)
        self.assertNotIn("node 4", err)  # no pid file expected outside the directory
        self.outsider.terminate()
        self.outsider.wait()

        pids = [self.pid(i) for i in (1, 2, 3)]
        rc, out, err = run("cluster", "stop", "--dir", self.dir)
        self.assertEqual(rc, 0, err)
        self.assertFalse(any(alive(p) for p in pids))
        for i in (1, 2, 3):
            with open(os.path.join(self.dir, "node-%d.log" % i)) as f:
                self.assertIn("stopped", f.read())


if __name__ == "__main__":
    RAFTKV = os.path.abspath(sys.argv.pop(1))
    RAFTKVD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
