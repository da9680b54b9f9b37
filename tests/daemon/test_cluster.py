#!/usr/bin/env python3
"""Process-level test of raftkvd (label integration).

Starts 3 raftkvd on loopback in a temp dir, waits for one leader (parsing the event logs), kills
the leader with SIGKILL and waits for a new one in a higher term, restarts the killed node and
waits until it follows, checks that intruders (another cluster id, an unknown node id) are
refused and logged, stops every node with SIGTERM (exit 0, storage closed), and checks that a bad
config exits 2 with one line naming the file and field. Every wait is bounded; every process is
killed at the end, whatever happens.

usage: test_cluster.py PATH/TO/raftkvd
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import free_ports, write_peers  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
WAIT_S = 20
SECRET = "correct horse"  # the cluster authenticates its handshakes
procs = {}


def fail(msg):
    print("FAIL: " + msg)
    for i in sorted(procs):
        print("---- log of node %d ----" % i)
        sys.stdout.write(read_log(i)[-4000:])
    sys.exit(1)


def read_log(i):
    try:
        with open(os.path.join(tmp, "node%d.log" % i)) as f:
            return f.read()
    except OSError:
        return ""


def start(i, extra=()):
    log = open(os.path.join(tmp, "node%d.log" % i), "a")
    procs[i] = subprocess.Popen(
        [RAFTKVD, "--id", str(i), "--peers", peers_path, "--data-dir",
         os.path.join(tmp, "data%d" % i), "--cluster-secret", SECRET] + list(extra),
        stdout=log, stderr=log)


def leader_view(i):
    """(term, leader) of the newest 'leader is node X (term T)' line in node i's log."""
    found = re.findall(r"leader is node (\d+) \(term (\d+)\)", read_log(i))
    if not found:
        return None
    leader, term = found[-1]
    return int(term), int(leader)


def wait_leader(nodes, min_term=0):
    """Waits until every node in `nodes` names the same leader in the same term >= min_term."""
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        views = {leader_view(i) for i in nodes}
        if len(views) == 1:
            view = views.pop()
            if view is not None and view[0] >= min_term and view[1] in nodes:
                return view
        for i in nodes:
            if procs[i].poll() is not None:
                fail("node %d exited with %s" % (i, procs[i].returncode))
        time.sleep(0.05)
    fail("no agreed leader among %s within %ds (views %s)" %
         (nodes, WAIT_S, {i: leader_view(i) for i in nodes}))


def wait_log(i, pattern, what):
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        if re.search(pattern, read_log(i)):
            return
        time.sleep(0.05)
    fail("node %d: %s not logged within %ds" % (i, what, WAIT_S))


def check_bad_config():
    bad = [dict(p) for p in peers]
    bad[2]["client_port"] = "x"
    path = os.path.join(tmp, "bad-peers.json")
    with open(path, "w") as f:
        json.dump(bad, f)
    r = subprocess.run([RAFTKVD, "--id", "1", "--peers", path], capture_output=True, text=True,
                       timeout=10)
    lines = r.stderr.strip().splitlines()
    expected = 'raftkvd: %s: [2].client_port: expected an integer 1..65535, got "x"' % path
    if r.returncode != 2 or lines != [expected]:
        fail("bad peers file: exit %d, stderr %r (expected 2 and %r)" %
             (r.returncode, r.stderr, expected))
    r = subprocess.run([RAFTKVD, "--id", "1", "--peers", peers_path, "--tick-ms", "0"],
                       capture_output=True, text=True, timeout=10)
    if r.returncode != 2 or "--tick-ms" not in r.stderr or len(r.stderr.splitlines()) != 1:
        fail("bad flag: exit %d, stderr %r" % (r.returncode, r.stderr))
    print("ok: bad config -> exit 2, one line naming the field")


def check_intruders():
    """A node of another cluster and a node id missing from the peers file are refused."""
    ports = free_ports(5)
    other = peers + [{"id": 9, "host": "127.0.0.1", "peer_port": ports[0],
                      "client_port": ports[1], "resp_port": ports[2]}]
    path = os.path.join(tmp, "intruder-peers.json")
    with open(path, "w") as f:
        json.dump(other, f)
    log = open(os.path.join(tmp, "node9.log"), "a")
    procs[9] = subprocess.Popen(
        [RAFTKVD, "--id", "9", "--peers", path, "--data-dir", os.path.join(tmp, "data9"),
         "--cluster-secret", SECRET],
        stdout=log, stderr=log)
    wait_log(1, r"handshake refused: inbound from .*: node id 9 is not a peer", "refusal of node 9")
    wait_log(9, r"handshake refused: by peer 1 .*node id 9 is not a peer", "refusal seen by node 9")
    procs[9].kill()
    procs[9].wait()
    del procs[9]
    # Same ids and ports, another cluster id: node 1's twin dials node 2.
    twin_peers = [dict(p) for p in peers]
    twin_peers[0].update(peer_port=ports[0], client_port=ports[3], resp_port=ports[4])
    path = os.path.join(tmp, "twin-peers.json")
    with open(path, "w") as f:
        json.dump(twin_peers, f)
    log = open(os.path.join(tmp, "node8.log"), "a")
    twins = [(["--cluster-id", "other", "--cluster-secret", SECRET],
              r'handshake refused: .*is in cluster "other", this is cluster "raftkv"',
              "refusal of another cluster"),
             (["--cluster-secret", "wrong horse"],
              r"handshake refused: .*node 1 hung up during the handshake \(its cluster_secret",
              "refusal of a wrong secret"),
             ([], r"handshake refused: .*node 1 has no cluster_secret, this node requires one",
              "refusal of a node without the secret")]
    for flags, pattern, what in twins:
        mark = len(read_log(2))
        procs[8] = subprocess.Popen(
            [RAFTKVD, "--id", "1", "--peers", path, "--data-dir",
             os.path.join(tmp, "data-twin")] + flags, stdout=log, stderr=log)
        deadline = time.time() + WAIT_S
        while not re.search(pattern, read_log(2)[mark:]):
            if time.time() > deadline:
                fail("node 2: %s not logged within %ds" % (what, WAIT_S))
            time.sleep(0.05)
        procs[8].kill()
        procs[8].wait()
        del procs[8]
    print("ok: another cluster, a wrong or missing secret and an unknown node id are refused "
          "and logged")


def main():
    global tmp, peers, peers_path
    tmp = tempfile.mkdtemp(prefix="raftkv-daemon-test-")
    peers_path = os.path.join(tmp, "peers.json")
    peers = write_peers(peers_path, 3)
    try:
        check_bad_config()
        t0 = time.time()
        for i in (1, 2, 3):
            start(i)
        term, leader = wait_leader([1, 2, 3])
        print("ok: leader %d in term %d after %.2fs" % (leader, term, time.time() - t0))

        t0 = time.time()
        procs[leader].send_signal(signal.SIGKILL)
        procs[leader].wait()
        rest = [i for i in (1, 2, 3) if i != leader]
        term2, leader2 = wait_leader(rest, term + 1)
        print("ok: kill -9 of leader %d -> leader %d in term %d after %.2fs" %
              (leader, leader2, term2, time.time() - t0))

        start(leader)
        wait_log(leader, r"recovered from .*: term [1-9]", "recovery of the old term")
        term3, leader3 = wait_leader([1, 2, 3], term2)
        print("ok: node %d restarted and follows leader %d (term %d)" % (leader, leader3, term3))

        check_intruders()

        for i in (1, 2, 3):
            procs[i].send_signal(signal.SIGTERM)
        for i in (1, 2, 3):
            try:
                rc = procs[i].wait(timeout=WAIT_S)
            except subprocess.TimeoutExpired:
                fail("node %d did not stop within %ds of SIGTERM" % (i, WAIT_S))
            if rc != 0:
                fail("node %d exited %d after SIGTERM" % (i, rc))
            if "stopped: storage closed cleanly" not in read_log(i):
                fail("node %d did not log its clean stop" % i)
        print("ok: SIGTERM -> every node exits 0 after closing its storage")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
