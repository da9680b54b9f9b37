#!/usr/bin/env python3
"""A follower down for 10,000 writes catches up from the leader's log, not from a snapshot
(label integration).

3 raftkvd on loopback with snapshots far away (threshold 1,000,000). A follower is killed -9,
10,000 SETs go to the leader (pipelined over RESP, 500 at a time), the follower restarts: within a
bounded wait its applied index reaches the leader's commit, its log says no snapshot was installed,
and it serves every acknowledged value (a sample of 500 keys read through it).

usage: test_log_catchup.py PATH/TO/raftkvd
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Resp, RespError, info  # noqa: E402
from peers import write_peers  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
WRITES = 10000
WAIT_S = 60
procs = {}


def fail(msg, tmp):
    print("FAIL: " + msg)
    for i in sorted(procs):
        try:
            with open(os.path.join(tmp, "node%d.log" % i)) as f:
                print("---- log of node %d (tail) ----\n%s" % (i, f.read()[-2000:]))
        except OSError:
            pass
    sys.exit(1)


def main():
    tmp = tempfile.mkdtemp(prefix="raftkv-log-catchup-")
    peers_path = os.path.join(tmp, "peers.json")
    peers = write_peers(peers_path, 3)

    def start(i):
        log = open(os.path.join(tmp, "node%d.log" % i), "a")
        procs[i] = subprocess.Popen(
            [RAFTKVD, "--id", str(i), "--peers", peers_path, "--data-dir",
             os.path.join(tmp, "data%d" % i), "--snapshot-threshold", "1000000"],
            stdout=log, stderr=log)

    def port(i):
        return peers[i - 1]["resp_port"]

    def leader_of(nodes):
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            views = [info(port(i)) for i in nodes]
            leaders = {v.get("leader") for v in views if v}
            if len(leaders) == 1 and all(views):
                lead = leaders.pop()
                if lead and lead.isdigit() and int(lead) in nodes:
                    return int(lead)
            time.sleep(0.1)
        fail("no leader agreed by %s" % nodes, tmp)

    try:
        for i in (1, 2, 3):
            start(i)
        leader = leader_of([1, 2, 3])
        follower = [i for i in (1, 2, 3) if i != leader][0]
        procs[follower].send_signal(signal.SIGKILL)
        procs[follower].wait()

        acked = {}
        c = Resp(port(leader), timeout=30)
        for base in range(0, WRITES, 500):
            keys = ["lc%d" % n for n in range(base, base + 500)]
            c.send_many([("SET", k, "v-" + k) for k in keys])
            for k in keys:
                try:
                    if c.reply() == "OK":
                        acked[k] = "v-" + k
                except RespError:
                    pass
        c.close()
        if len(acked) < WRITES * 9 // 10:
            fail("only %d of %d writes acknowledged with a majority up" % (len(acked), WRITES), tmp)
        commit = int(info(port(leader)).get("commit", "0"))

        start(follower)
        deadline = time.time() + WAIT_S
        while True:
            view = info(port(follower)) or {}
            if int(view.get("applied", "0") or 0) >= commit:
                break
            if time.time() > deadline:
                fail("follower %d applied %s, leader commit %d" % (follower, view.get("applied"),
                                                                   commit), tmp)
            time.sleep(0.1)
        with open(os.path.join(tmp, "node%d.log" % follower)) as f:
            if "snapshot installed" in f.read():
                fail("follower %d caught up through a snapshot, not the log" % follower, tmp)
        r = Resp(port(follower))
        sample = sorted(acked)[::max(1, len(acked) // 500)]
        for k in sample:
            got = r.call("GET", k)
            if got != acked[k].encode():
                fail("follower %d: GET %s = %r, acknowledged %r" % (follower, k, got, acked[k]), tmp)
        r.close()
        print("ok: follower %d was down for %d acknowledged writes and caught up from the log to "
              "index %d; %d sampled keys match" % (follower, len(acked), commit, len(sample)))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
