#!/usr/bin/env python3
"""A node that lags behind a removal and a re-addition still finds the leader, even when that
leader is the node it forgot (label integration). Found by review: a lagging node installed a
snapshot whose configuration left the re-added leader out, forgot it, refused its connections
as those of a removed node, and stayed cut off.

Nodes 1-4 run with a peers file of 1-4; node 5 joins by address. Snapshots every 50 entries,
5 kept behind; node 5 has the shortest election timeout.
  1. Node 5 is added; a follower of 1-4 (node 4 unless it leads) is stopped: its log knows node 5
     as a voter.
  2. Node 5 is removed; 120 writes: the leader's snapshot (voters 1-4) passes the removal.
  3. Node 5 is added back at the same address and catches up from that snapshot; the leader is
     killed until node 5 leads (the killed node restarts each time).
  4. The stopped node restarts: node 5 sends it the snapshot whose voters are 1-4, so it forgets
     node 5; it must still take node 5's appends, learn node 5 again from the re-addition,
     connect to it and serve the last write.

usage: test_member_lag.py PATH/TO/raftkvd
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import info  # noqa: E402
from peers import free_ports  # noqa: E402
from harness import Harness, member, try_call as call, loopback_nodes, set_many  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
RAFTKV = os.path.join(os.path.dirname(RAFTKVD), "raftkv")
H = Harness("raftkv-member-lag-")
procs, TMP, check, wait = H.procs, H.tmp, H.check, H.wait



def main():
    ports = free_ports(15)
    nodes = loopback_nodes(5, ports)
    p1234 = os.path.join(TMP, "peers1234.json")
    with open(p1234, "w") as f:
        json.dump([nodes[i] for i in (1, 2, 3, 4)], f)
    p5 = os.path.join(TMP, "peers5.json")
    with open(p5, "w") as f:
        json.dump([nodes[i] for i in (1, 2, 3, 4)] + [dict(nodes[5], voter=False)], f)

    def start(i):
        log = open(H.log_path(i), "a")
        timeouts = ["--election-timeout-min-ms", "100", "--election-timeout-max-ms", "150"] \
            if i == 5 else []
        procs[i] = subprocess.Popen(
            [RAFTKVD, "--id", str(i), "--peers", p5 if i == 5 else p1234, "--data-dir",
             os.path.join(TMP, "data%d" % i), "--snapshot-threshold", "50",
             "--snapshot-trailing", "5"] + timeouts, stdout=log, stderr=log)

    kill = H.kill

    def leader():
        for i in sorted(procs):
            if procs[i].poll() is not None:
                continue
            v = info(nodes[i]["resp_port"])
            if v.get("role") == "leader":
                return i
        return None

    def write(prefix, n):
        got = set_many(nodes[wait("a leader", leader)]["resp_port"], prefix, n)
        check(all(r == "OK" for r in got), "writes %s*: %r" % (prefix, got[:3]))

    addr5 = "127.0.0.1:%d:%d:%d" % (nodes[5]["peer_port"], nodes[5]["client_port"],
                                    nodes[5]["resp_port"])
    try:
        for i in (1, 2, 3, 4):
            start(i)
        wait("a leader", leader)
        start(5)
        code, out, err = member(H, RAFTKV, p1234, "add", "5", addr5)
        check(code == 0, "add 5: %d %r %r" % (code, out, err))
        write("a", 10)
        lag = [i for i in (4, 3, 2, 1) if i != leader()][0]  # a follower: no election needed
        wait("node %d to learn node 5" % lag,
             lambda: "learned node 5 at" in H.log(lag))
        kill(lag)

        # 2. removal, then a snapshot past it
        code, out, err = member(H, RAFTKV, p1234, "remove", "5")
        check(code == 0, "remove 5: %d %r %r" % (code, out, err))
        write("b", 120)

        # 3. node 5 back, and leading
        code, out, err = member(H, RAFTKV, p1234, "add", "5", addr5)
        check(code == 0, "add 5 again: %d %r %r" % (code, out, err))
        wait("node 5 to catch up", lambda: call(nodes[5]["resp_port"], "GET", "b119") == b"v119")
        for _ in range(8):
            lead = wait("a leader", leader)
            if lead == 5:
                break
            kill(lead)  # never the lagging node: it is down
            wait("a new leader", lambda: leader() not in (None, lead))
            start(lead)
            wait("node %d back" % lead, lambda: bool(info(nodes[lead]["resp_port"])))
        check(leader() == 5, "node 5 never led")
        write("c", 5)

        # 4. the lagging node returns
        start(lag)
        wait("node %d to serve c4" % lag,
             lambda: call(nodes[lag]["resp_port"], "GET", "c4") == b"v4")
        wait("node %d to connect to node 5" % lag,
             lambda: "connected=1" in info(nodes[lag]["resp_port"]).get("peer_5", ""))
        log = H.log(lag)
        print("ok: node %d, stopped before node 5's removal and re-addition, caught up from node 5 "
              "(leading)%s" % (lag, " after forgetting it" if "forgot node 5" in log else ""))
    finally:
        H.cleanup()


if __name__ == "__main__":
    main()
