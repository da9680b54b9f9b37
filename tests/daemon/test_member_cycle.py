#!/usr/bin/env python3
"""A cluster that replaces nodes for ever: a node joined by address that is no longer a voter is
forgotten when room is needed, so ids beyond the 16 a node can know at once come and go, and a
removed node can come back at another address (label integration).

Nodes 1-3 run with a peers file of 1-3 only (the default snapshot threshold: the log keeps every
configuration entry).
  1. For k = 4 .. 19 (19 distinct ids, more than 16): node k starts with a peers file of the
     voters and itself (a spare), `raftkv member add k HOST:PORTS` takes it, it serves a value
     written through the leader, and `raftkv member remove k` removes it. Nodes 1-3 each forget
     the oldest removed ones (4, 5, 6) to make room, never log that a book named more nodes
     than they can know, and still know node 19.
  2. Node 4 comes back at new ports with an empty data directory: `raftkv member add 4` with the
     new address is taken (a forgotten id is unknown again), every node logs that it learned node
     4 at the new peer port, and node 4 serves every value. Node 19, removed but not forgotten,
     comes back at new ports too: every node logs that it moved.
  3. Node 1 restarts: its log replays 35 configuration changes naming 19 ids without running out
     of room, connects to nodes 4 and 19 at their new addresses, and RAFTKV.MEMBER LIST names
     voters 1, 2, 3, 4 and 19.

usage: test_member_cycle.py PATH/TO/raftkvd
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import info  # noqa: E402
from peers import free_ports  # noqa: E402
from harness import Harness, member, try_call as call, loopback_nodes  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
RAFTKV = os.path.join(os.path.dirname(RAFTKVD), "raftkv")
H = Harness("raftkv-member-cycle-")
procs, TMP, check, wait = H.procs, H.tmp, H.check, H.wait
LAST = 19



def main():
    ports = free_ports(3 * (LAST + 1))
    nodes = loopback_nodes(LAST, ports)
    p123 = os.path.join(TMP, "peers123.json")
    with open(p123, "w") as f:
        json.dump([nodes[i] for i in (1, 2, 3)], f)

    def start(i, peers_path, data):
        log = open(H.log_path(i), "a")
        procs[i] = subprocess.Popen([RAFTKVD, "--id", str(i), "--peers", peers_path,
                                     "--data-dir", os.path.join(TMP, data)],
                                    stdout=log, stderr=log)

    def joining_file(i):
        path = os.path.join(TMP, "peers%d.json" % i)
        with open(path, "w") as f:
            json.dump([nodes[j] for j in (1, 2, 3)] + [dict(nodes[i], voter=False)], f)
        return path

    kill, log_of = H.kill, H.log

    def addr(i):
        e = nodes[i]
        return "127.0.0.1:%d:%d:%d" % (e["peer_port"], e["client_port"], e["resp_port"])

    def leader():
        v = info(nodes[1]["resp_port"])
        lead = v.get("leader", "0") if v else "0"
        return int(lead) if lead.isdigit() and int(lead) in (1, 2, 3) else None

    def write(key, value):
        def ok():
            lead = leader()
            return lead is not None and \
                call(nodes[lead]["resp_port"], "SET", key, value) == "OK"
        wait("SET %s" % key, ok)

    try:
        for i in (1, 2, 3):
            start(i, p123, "data%d" % i)
        wait("a leader", leader)

        # 1. ids 4 .. 19 join and leave in turn
        for k in range(4, LAST + 1):
            start(k, joining_file(k), "data%d" % k)
            code, out, err = member(H, RAFTKV, p123, "add", str(k), addr(k))
            check(code == 0, "add %d: %d %r %r" % (k, code, out, err))
            write("k%d" % k, "v%d" % k)
            wait("node %d to serve k%d" % (k, k),
                 lambda k=k: call(nodes[k]["resp_port"], "GET", "k%d" % k) == b"v%d" % k)
            code, out, err = member(H, RAFTKV, p123, "remove", str(k))
            check(code == 0, "remove %d: %d %r %r" % (k, code, out, err))
            kill(k)
        for i in (1, 2, 3):
            check("names more nodes than" not in log_of(i), "node %d ran out of slots" % i)
            for k in (4, 5, 6):
                check("forgot node %d at 127.0.0.1" % k in log_of(i),
                      "node %d did not forget node %d" % (i, k))
            check("forgot node %d " % LAST not in log_of(i), "node %d forgot node %d" % (i, LAST))

        # 2. id 4 again, at new ports, from an empty data directory
        fresh = free_ports(3)
        nodes[4] = dict(nodes[4], peer_port=fresh[0], client_port=fresh[1], resp_port=fresh[2])
        start(4, joining_file(4), "data4-again")
        code, out, err = member(H, RAFTKV, p123, "add", "4", addr(4))
        check(code == 0, "add 4 at new ports: %d %r %r" % (code, out, err))
        for i in (1, 2, 3):
            wait("node %d to learn node 4 at its new port" % i,
                 lambda i=i: "learned node 4 at 127.0.0.1 (peer %d," % fresh[0] in log_of(i))
        write("again", "yes")
        wait("node 4 (again) to serve the last write",
             lambda: call(nodes[4]["resp_port"], "GET", "again") == b"yes")
        for k in range(4, LAST + 1):
            check(call(nodes[4]["resp_port"], "GET", "k%d" % k) == b"v%d" % k,
                  "node 4 (again) does not serve k%d" % k)
        moved = free_ports(3)
        nodes[LAST] = dict(nodes[LAST], peer_port=moved[0], client_port=moved[1],
                           resp_port=moved[2])
        start(LAST, joining_file(LAST), "data%d-again" % LAST)
        code, out, err = member(H, RAFTKV, p123, "add", str(LAST), addr(LAST))
        check(code == 0, "add %d at new ports: %d %r %r" % (LAST, code, out, err))
        for i in (1, 2, 3):
            wait("node %d to move node %d" % (i, LAST),
                 lambda i=i: "node %d moved from 127.0.0.1" % LAST in log_of(i))
        write("moved", "yes")
        wait("node %d (moved) to serve the last write" % LAST,
             lambda: call(nodes[LAST]["resp_port"], "GET", "moved") == b"yes")

        # 3. node 1 replays every change
        kill(1)
        start(1, p123, "data1")
        for k in (4, LAST):
            wait("node 1 to connect to node %d at its new address" % k,
                 lambda k=k: "connected=1" in info(nodes[1]["resp_port"]).get("peer_%d" % k, ""))
        check("names more nodes than" not in log_of(1), "node 1 ran out of slots on replay")
        listing = call(nodes[1]["resp_port"], "RAFTKV.MEMBER", "LIST")
        check(isinstance(listing, bytes), "LIST on node 1: %r" % (listing,))
        voters = sorted(int(line.split()[0]) for line in listing.decode().splitlines()
                        if line.endswith(" voter"))
        check(voters == [1, 2, 3, 4, LAST], "node 1 lists voters %r after its restart" % (voters,))
        print("ok: ids 4-%d joined and left in turn (%d distinct ids), the oldest forgotten for "
              "room; id 4 came back at new ports after being forgotten, id %d moved while still "
              "known; node 1 replayed it all" % (LAST, LAST, LAST))
    finally:
        H.cleanup()


if __name__ == "__main__":
    main()
