#!/usr/bin/env python3
"""`raftkv cluster start|stop|status` with a fake raftkvd (fake_raftkvd/raftkvd): config files,
pid files, idempotent start, restart of a crashed node, stop by pid only, SIGKILL after the
timeout, a daemon that dies at once, a port in use.  usage: test_launcher.py PATH/TO/raftkv"""

import fcntl
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

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fake_raftkvd", "raftkvd")
RAFTKV = None


def free_base(nodes):
    """A base port P with P+i, P+100+i, P+200+i (i = 1..nodes) all free right now."""
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


def run(*args, env=None, timeout=90):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("RAFTKV_", "FAKE_"))}
    full_env.update(env or {})
    p = subprocess.run([RAFTKV] + list(args), capture_output=True, timeout=timeout, env=full_env,
                       stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def slurp(path):
    with open(path) as f:
        return f.read()


def wait_for_text(path, text, seconds=10):
    """The file's content once it holds text (a node may still be starting), or as it is."""
    deadline = time.time() + seconds
    while True:
        content = slurp(path)
        if text in content or time.time() > deadline:
            return content
        time.sleep(0.05)


def alive(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (FileNotFoundError, IndexError):
        return False


def wait_dead(pid, seconds=10):
    deadline = time.time() + seconds
    while time.time() < deadline and alive(pid):
        time.sleep(0.05)
    return not alive(pid)


class Launcher(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self.tmp.name, "c")
        self.base = free_base(3)

    def tearDown(self):
        # Never leave a fake daemon behind, whatever failed: only the pids this test started.
        for pid in self.pids(missing_ok=True).values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.tmp.cleanup()

    def pids(self, missing_ok=False):
        out = {}
        for i in range(1, 17):  # 1..3, and the spares some tests add
            path = os.path.join(self.dir, "node-%d.pid" % i)
            if os.path.exists(path):
                out[i] = int(slurp(path))
            elif not missing_ok and i <= 3:
                self.fail("missing " + path)
        return out

    def cluster(self, verb, *args, env=None):
        return run("cluster", verb, "--dir", self.dir, *args, env=env)

    def start(self, *args, env=None):
        return self.cluster("start", "--nodes", "3", "--base-port", str(self.base), "--raftkvd",
                            FAKE, "--wait", "20", *args, env=env)

    def test_start_status_use_stop(self):
        rc, out, err = self.start()
        self.assertEqual(rc, 0, out + err)
        peers = json.loads(slurp(os.path.join(self.dir, "peers.json")))
        self.assertEqual([p["id"] for p in peers], [1, 2, 3])
        self.assertEqual(peers[1], {"id": 2, "host": "127.0.0.1", "peer_port": self.base + 202,
                                    "client_port": self.base + 2, "resp_port": self.base + 102})
        raft = json.loads(slurp(os.path.join(self.dir, "raft.json")))
        self.assertIn("election_timeout_min_ms", raft)
        self.assertNotIn("data_dir", raft)
        self.assertIn("leader is node 1", out)
        self.assertIn("redis-cli -p %d" % (self.base + 102), out)
        self.assertIn("--peers %s/peers.json" % os.path.realpath(self.dir), out)
        pids = self.pids()
        for i, pid in pids.items():
            self.assertTrue(alive(pid))
            self.assertTrue(os.path.isdir(os.path.join(self.dir, "node-%d" % i)))
            log = wait_for_text(os.path.join(self.dir, "node-%d.log" % i), "serving")
            self.assertIn("--id %d" % i, log)
            self.assertIn("--data-dir %s/node-%d" % (os.path.realpath(self.dir), i), log)

        # Idempotent: a second start changes nothing.
        rc, out, err = self.start()
        self.assertEqual(rc, 0, err)
        self.assertIn("already running", out)
        self.assertEqual(self.pids(), pids)

        # The cluster answers through a follower (it redirects to node 1).
        peers_path = os.path.join(self.dir, "peers.json")
        follower = "127.0.0.1:%d" % (self.base + 2)
        rc, out, err = run("--cluster", follower, "set", "k", "v")
        self.assertEqual((rc, out), (0, "1\n"), err)
        rc, out, err = run("--peers", peers_path, "get", "k")
        self.assertEqual((rc, out), (0, "v"), err)

        rc, out, err = self.cluster("status")
        self.assertEqual(rc, 0, err)
        rows = [line.split() for line in out.splitlines()[1:]]
        self.assertEqual([r[2] for r in rows], ["leader", "follower", "follower"])
        self.assertEqual([r[7] for r in rows], ["0", "2", "2"])

        rc, out, err = self.cluster("stop")
        self.assertEqual(rc, 0, err)
        self.assertIn("stopped node 1 node 2 node 3", out)
        for pid in pids.values():
            self.assertTrue(wait_dead(pid, 1))
        self.assertEqual(self.pids(missing_ok=True), {})
        self.assertIn("SIGTERM, bye", slurp(os.path.join(self.dir, "node-2.log")))

        rc, out, _ = self.cluster("stop")
        self.assertEqual(rc, 0)
        self.assertIn("no node", out)
        rc, out, err = self.cluster("status")
        self.assertEqual(rc, 3)
        self.assertIn("down", out)

    def test_spares(self):
        """--spares K lists K more nodes with "voter": false, started like the others."""
        self.base = free_base(4)
        rc, out, err = self.start("--spares", "1")
        self.assertEqual(rc, 0, out + err)
        self.assertIn("3 nodes and spares", out)
        peers = json.loads(slurp(os.path.join(self.dir, "peers.json")))
        self.assertEqual([p["id"] for p in peers], [1, 2, 3, 4])
        self.assertNotIn("voter", peers[2])
        self.assertEqual(peers[3]["voter"], False)
        self.assertEqual(peers[3]["client_port"], self.base + 4)
        pid4 = int(slurp(os.path.join(self.dir, "node-4.pid")))
        self.assertTrue(alive(pid4))
        rc, out, err = self.cluster("stop")
        self.assertEqual(rc, 0, err)
        self.assertTrue(wait_dead(pid4, 5))
        rc, _, err = run("cluster", "start", "--dir", self.dir, "--spares", "12")
        self.assertEqual(rc, 2)
        self.assertIn("more than the 16 nodes", err)
        rc, _, err = run("get", "k", "--spares", "1")
        self.assertEqual(rc, 2)
        self.assertIn("are for `cluster`", err)

    def test_start_brings_back_a_crashed_node_only(self):
        self.assertEqual(self.start()[0], 0)
        before = self.pids()
        os.kill(before[2], signal.SIGKILL)
        self.assertTrue(wait_dead(before[2]))
        rc, out, err = self.cluster("status")
        self.assertEqual(rc, 0)
        self.assertEqual(out.splitlines()[2].split()[2], "down")
        self.assertIn("node 2: no raftkvd process", err)
        rc, out, err = self.start()
        self.assertEqual(rc, 0, err)
        self.assertIn("2 already running", out)
        after = self.pids()
        self.assertEqual((after[1], after[3]), (before[1], before[3]))
        self.assertNotEqual(after[2], before[2])
        self.assertTrue(alive(after[2]))
        self.assertEqual(self.cluster("stop")[0], 0)

    def test_stop_never_kills_a_foreign_pid(self):
        self.assertEqual(self.start()[0], 0)
        pids = self.pids()
        os.kill(pids[3], signal.SIGKILL)
        self.assertTrue(wait_dead(pids[3]))
        stranger = subprocess.Popen(["sleep", "60"])
        try:
            with open(os.path.join(self.dir, "node-3.pid"), "w") as f:
                f.write("%d\n" % stranger.pid)
            rc, out, err = self.cluster("stop")
            self.assertEqual(rc, 0, err)
            self.assertIsNone(stranger.poll())
            self.assertIn("not this cluster's raftkvd", err)
            self.assertTrue(wait_dead(pids[1], 1) and wait_dead(pids[2], 1))
        finally:
            stranger.kill()
            stranger.wait()

    def test_sigkill_after_stop_timeout(self):
        rc, _, err = self.start(env={"FAKE_RAFTKVD_IGNORE_TERM": "1"})
        self.assertEqual(rc, 0, err)
        pids = self.pids()
        for i in pids:  # SIGTERM must find the handler that ignores it installed
            self.assertIn("serving", wait_for_text(os.path.join(self.dir, "node-%d.log" % i), "serving"))
        rc, out, err = self.cluster("stop", "--stop-timeout", "1")
        self.assertEqual(rc, 0, err)
        self.assertIn("SIGKILL", err)
        for pid in pids.values():
            self.assertTrue(wait_dead(pid, 1))
        self.assertIn("ignoring SIGTERM", slurp(os.path.join(self.dir, "node-1.log")))

    def test_daemon_that_exits_at_once(self):
        rc, out, err = self.start(env={"FAKE_RAFTKVD_FAIL": "1"})
        self.assertEqual(rc, 3)
        self.assertIn("exited with status 2", err)
        self.assertIn("fake failure", err)  # the tail of its log
        self.cluster("stop")

    def test_one_start_or_stop_at_a_time(self):
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, ".lock"), "w") as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # another launcher is at work on this directory
            rc, out, err = self.start()
            self.assertEqual(rc, 3)
            self.assertIn("another raftkv cluster start or stop is running", err)
            self.assertEqual(self.pids(missing_ok=True), {})
        rc, out, err = self.start()  # the lock went with its holder
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.cluster("stop")[0], 0)

    def test_node_whose_pid_file_cannot_be_written_is_stopped(self):
        os.makedirs(os.path.join(self.dir, "node-1.pid.tmp"))  # the pid file's write must fail
        rc, out, err = self.start()
        self.assertEqual(rc, 3)
        self.assertIn("the node was stopped again", err)
        for pid in self.pids(missing_ok=True).values():
            os.kill(pid, signal.SIGKILL)
        # nothing holds node 1's ports: a later start (the directory fixed) gets them
        os.rmdir(os.path.join(self.dir, "node-1.pid.tmp"))
        rc, out, err = self.start()
        self.assertEqual(rc, 0, err)
        self.assertEqual(self.cluster("stop")[0], 0)

    def test_port_in_use(self):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.base + 102))
        s.listen(1)
        try:
            rc, out, err = self.start()
        finally:
            s.close()
        self.assertEqual(rc, 3)
        self.assertIn("port %d" % (self.base + 102), err)
        self.assertEqual(self.pids(missing_ok=True), {})

    def test_missing_daemon_and_bad_verbs(self):
        rc, _, err = self.start("--raftkvd", "/nonexistent/raftkvd")
        self.assertEqual(rc, 2)
        self.assertIn("--raftkvd", err)
        self.assertEqual(self.cluster("restart")[0], 2)
        self.assertEqual(run("cluster")[0], 2)
        self.assertEqual(run("cluster", "status", "--peers", "x")[0], 2)

    def test_existing_files_are_kept(self):
        self.assertEqual(self.start()[0], 0)
        self.assertEqual(self.cluster("stop")[0], 0)
        rc, out, err = self.cluster("start", "--nodes", "5", "--raftkvd", FAKE)
        self.assertEqual(rc, 0, err)
        self.assertIn("keeping its 3 nodes", err)
        self.assertEqual(len(self.pids()), 3)
        self.assertEqual(self.cluster("stop")[0], 0)


if __name__ == "__main__":
    RAFTKV = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
