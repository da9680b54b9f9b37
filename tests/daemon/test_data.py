#!/usr/bin/env python3
"""Process-level data test of raftkvd with its client front-end (label integration).

3 raftkvd on loopback, small snapshot threshold, snapshot chunks (4 KiB) more than half of the
per-peer queue bound (8 KiB), so a transfer must wait for the queue between chunks. Writes go
through RESP to any node (followers forward). Checks:
  1. kill -9 of the leader while writing: a new leader serves writes, no acknowledged write lost;
  2. a follower killed while >1000 writes go by (several snapshots and compactions) catches up
     through a snapshot transfer and serves the same data;
  3. kill -9 of every node, restart: every acknowledged write is there, on every node.
Skips (exit 0, "SKIP") when raftkvd was built without the front-end. Bounded waits; every process
is killed at the end.

usage: test_data.py PATH/TO/raftkvd
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Resp, RespError, info  # noqa: E402
from peers import write_peers  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
WAIT_S = 30
procs = {}
acked = {}  # key -> last acknowledged value
unknown = {}  # key -> values whose outcome is unknown (error reply, lost link): may still apply


def fail(msg):
    print("FAIL: " + msg)
    for i in sorted(procs):
        print("---- log of node %d (tail) ----" % i)
        sys.stdout.write(read_log(i)[-3000:])
    sys.exit(1)


def read_log(i):
    try:
        with open(os.path.join(tmp, "node%d.log" % i)) as f:
            return f.read()
    except OSError:
        return ""


def start(i):
    log = open(os.path.join(tmp, "node%d.log" % i), "a")
    procs[i] = subprocess.Popen(
        [RAFTKVD, "--id", str(i), "--peers", peers_path, "--data-dir",
         os.path.join(tmp, "data%d" % i), "--snapshot-threshold", "200", "--snapshot-trailing",
         "50", "--write-timeout-ms", "2000",
         # chunks bigger than half the peer queue: each waits for the queue to drain
         "--snapshot-chunk-bytes", "4096", "--peer-queue-bytes", "8192"], stdout=log, stderr=log)


def resp_port(i):
    return peers[i - 1]["resp_port"]


def wait_ready(nodes):
    """Until every node answers INFO and agrees on one leader among nodes."""
    deadline = time.time() + WAIT_S
    while time.time() < deadline:
        views = [info(resp_port(i)) for i in nodes]
        leaders = {v.get("leader") for v in views}
        if len(leaders) == 1 and all(views):
            leader = leaders.pop()
            if leader and leader.isdigit() and int(leader) in nodes:
                return int(leader)
        time.sleep(0.1)
    fail("no leader agreed by %s within %ds" % (nodes, WAIT_S))


def write_keys(nodes, first, count, tag, stop_after=None):
    """SET k<first..> on the nodes in turn; records acknowledged writes. Tolerates errors."""
    conns = {}
    done = 0
    for n in range(first, first + count):
        if stop_after is not None and done == stop_after:
            stop_after = None
            yield n
        node = nodes[n % len(nodes)]
        key, value = "k%d" % (n % 700), "%s-%d" % (tag, n)
        try:
            if node not in conns:
                conns[node] = Resp(resp_port(node))
            if conns[node].call("SET", key, value) == "OK":
                acked[key] = value  # an earlier unknown outcome may still land later
            else:
                unknown.setdefault(key, set()).add(value)
        except (OSError, RespError, ConnectionError):
            unknown.setdefault(key, set()).add(value)
            conns.pop(node, None)
        done += 1
    for c in conns.values():
        c.close()


lock = threading.Lock()


def pipelined_writer(worker, node):
    """Sends 100 SETs of its own keys without waiting, then reads the 100 replies in order."""
    try:
        c = Resp(resp_port(node))
        keys = ["p%d-%d" % (worker, i) for i in range(100)]
        c.send_many([("SET", k, "v-" + k) for k in keys])
        for k in keys:
            try:
                ok = c.reply() == "OK"
            except RespError:
                ok = False
            with lock:
                if ok:
                    acked[k] = "v-" + k
                else:
                    unknown.setdefault(k, set()).add("v-" + k)
        c.close()
    except (OSError, ConnectionError):
        pass


def check_all(nodes, what):
    for i in nodes:
        c = Resp(resp_port(i))
        try:
            for key, value in sorted(acked.items()):
                got = c.call("GET", key)
                allowed = {value.encode()} | {v.encode() for v in unknown.get(key, ())}
                if got not in allowed:
                    fail("%s: node %d: GET %s = %r, acknowledged %r" % (what, i, key, got, value))
        finally:
            c.close()
    print("ok: %s: %d acknowledged keys intact on nodes %s" % (what, len(acked), nodes))


def main():
    global tmp, peers, peers_path
    tmp = tempfile.mkdtemp(prefix="raftkv-daemon-data-")
    peers_path = os.path.join(tmp, "peers.json")
    peers = write_peers(peers_path, 3)
    try:
        for i in (1, 2, 3):
            start(i)
        time.sleep(0.3)
        if "client front-ends not built in" in read_log(1):
            print("SKIP: raftkvd built without the client front-end")
            return
        leader = wait_ready([1, 2, 3])

        # 1. kill -9 of the leader in the middle of a stream of writes.
        for _ in write_keys([1, 2, 3], 0, 600, "a", stop_after=300):
            procs[leader].send_signal(signal.SIGKILL)
            procs[leader].wait()
        rest = [i for i in (1, 2, 3) if i != leader]
        new_leader = wait_ready(rest)
        list(write_keys(rest, 600, 100, "b"))
        check_all(rest, "after kill -9 of leader %d (new leader %d)" % (leader, new_leader))
        for i in rest:  # INFO's counters move with the traffic (operators read them)
            v = info(resp_port(i))
            for field in ("fsyncs", "peer_msgs_sent", "peer_msgs_received"):
                if int(v.get(field, "0")) <= 0:
                    fail("node %d: INFO %s is %r after 100 writes" % (i, field, v.get(field)))
        start(leader)
        wait_ready([1, 2, 3])

        # 2. a follower misses >1000 writes (compacted away) and catches up through a snapshot.
        follower = [i for i in (1, 2, 3) if i != new_leader][0]
        procs[follower].send_signal(signal.SIGKILL)
        procs[follower].wait()
        others = [i for i in (1, 2, 3) if i != follower]
        list(write_keys(others, 1000, 1200, "c"))
        start(follower)
        wait_ready([1, 2, 3])
        deadline = time.time() + WAIT_S
        while not re.search(r"snapshot installed", read_log(follower)):
            if time.time() > deadline:
                fail("node %d did not install a snapshot" % follower)
            time.sleep(0.1)
        check_all([follower], "follower %d caught up through a snapshot" % follower)

        # 3. pipelined writers on every node (group commit), then kill -9 of every node and a
        #    restart: nothing acknowledged is lost.
        threads = [threading.Thread(target=pipelined_writer, args=(w, 1 + w % 3))
                   for w in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=WAIT_S)
        for i in (1, 2, 3):
            procs[i].send_signal(signal.SIGKILL)
            procs[i].wait()
        for i in (1, 2, 3):
            start(i)
        wait_ready([1, 2, 3])
        check_all([1, 2, 3], "kill -9 of every node and restart")
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
