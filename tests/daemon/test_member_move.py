#!/usr/bin/env python3
"""Moving nodes, both ways, survives restarts from snapshots (label integration). Found by review:
a node took a moved node's old address back from its own snapshot after a restart.

Nodes 1-3 run with a peers file of 1-3 (snapshots every 50 entries, 5 kept behind).
  1. A peers-file node moves the operator's way: node 3 stops, the peers files are edited to give
     it new ports, and every node restarts with the edited file (node 3 first, from its own data).
     After 120 more writes (new snapshots), nodes 1 and 2 are restarted again: both stay
     connected to node 3's new port, and never log that node 3 moved back.
  2. A node added by address moves the cluster's way: node 4 joins by address; node 5 joins with a
     peers file that lists node 4 (as `raftkv member peers` prints it). Node 4 is removed and added
     back at new ports: node 5 follows it; after 120 writes node 5 restarts from its own snapshot,
     with its old file, and connects to node 4's new port again.
  3. Node 1 restarts with a peers file that lists node 4 at its new address, leads, and removes
     and adds node 2: node 5 restarts again (old file, new snapshot) and still finds node 4 (found
     by review: a book from a node whose file agreed with the cluster dropped the flag that says
     the cluster owns node 4's address).

usage: test_member_move.py PATH/TO/raftkvd
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import RespError, info  # noqa: E402
from peers import free_ports  # noqa: E402
from harness import Harness, member as member_cmd, try_call as call, loopback_nodes, set_many  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
RAFTKV = os.path.join(os.path.dirname(RAFTKVD), "raftkv")
H = Harness("raftkv-member-move-")
procs, TMP, check, wait = H.procs, H.tmp, H.check, H.wait




def main():
    ports = free_ports(21)
    nodes = loopback_nodes(5, ports)
    spare = ports[15:]

    def peers_file(name, entries):
        path = os.path.join(TMP, name)
        with open(path, "w") as f:
            json.dump(entries, f)
        return path

    files = {i: peers_file("peers123.json", [nodes[j] for j in (1, 2, 3)]) for i in (1, 2, 3)}

    def start(i, extra=()):
        log = open(H.log_path(i), "a")
        procs[i] = subprocess.Popen(
            [RAFTKVD, "--id", str(i), "--peers", files[i], "--data-dir",
             os.path.join(TMP, "data%d" % i), "--snapshot-threshold", "50",
             "--snapshot-trailing", "5"] + list(extra), stdout=log, stderr=log)

    kill, log_of = H.kill, H.log

    def cli(*args):
        r = subprocess.run([RAFTKV, "--peers", files[1]] + list(args), capture_output=True,
                           text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def member(*args):
        return member_cmd(H, RAFTKV, files[1], *args)

    def leader():
        for i in sorted(procs):
            if procs[i].poll() is None and info(nodes[i]["resp_port"]).get("role") == "leader":
                return i
        return None

    def write(prefix, n):
        def attempt():
            lead = leader()
            if lead is None:
                return False
            try:
                got = set_many(nodes[lead]["resp_port"], prefix, n)
            except (OSError, RespError):
                return False
            return all(r == "OK" for r in got)
        wait("%d writes %s*" % (n, prefix), attempt)

    def connected(i, j):
        return "connected=1" in info(nodes[i]["resp_port"]).get("peer_%d" % j, "")

    def addr(i):
        e = nodes[i]
        return "127.0.0.1:%d:%d:%d" % (e["peer_port"], e["client_port"], e["resp_port"])

    try:
        for i in (1, 2, 3):
            start(i)
        wait("a leader", leader)
        write("a", 120)
        for i in (1, 2):
            wait("node %d to snapshot" % i, lambda i=i: "snapshot taken" in log_of(i))

        # 1. node 3 moves by editing the peers files
        kill(3)
        old3 = nodes[3]["peer_port"]
        nodes[3] = dict(nodes[3], peer_port=spare[0], client_port=spare[1], resp_port=spare[2])
        edited = peers_file("peers123-edited.json", [nodes[j] for j in (1, 2, 3)])
        for i in (1, 2, 3):
            files[i] = edited
        start(3)
        for i in (1, 2):
            kill(i)
            start(i)
            wait("node %d to connect to node 3's new port" % i, lambda i=i: connected(i, 3))
            check("node 3 moved from" not in log_of(i),
                  "node %d moved node 3 (back to peer %d?)" % (i, old3))
        write("b", 120)
        for i in (1, 2):
            kill(i)
            start(i)
            wait("node %d to connect to node 3's new port again" % i,
                 lambda i=i: connected(i, 3))
            check("node 3 moved from" not in log_of(i),
                  "node %d moved node 3 (back to peer %d?)" % (i, old3))
        files[4] = peers_file("peers4.json", [nodes[j] for j in (1, 2, 3)] +
                              [dict(nodes[4], voter=False)])

        # 2. node 4 joins by address, node 5 with a file that lists it; node 4 moves
        start(4)
        code, out, err = member("add", "4", addr(4))
        check(code == 0, "add 4: %d %r %r" % (code, out, err))
        code, out, err = cli("member", "peers")
        check(code == 0, "member peers: %d %r" % (code, err))
        files[5] = peers_file("peers5.json", json.loads(out) + [dict(nodes[5], voter=False)])
        start(5)
        code, out, err = member("add", "5", addr(5))
        check(code == 0, "add 5: %d %r %r" % (code, out, err))
        wait("node 5 to connect to node 4", lambda: connected(5, 4))
        code, out, err = member("remove", "4")
        check(code == 0, "remove 4: %d %r %r" % (code, out, err))
        kill(4)
        nodes[4] = dict(nodes[4], peer_port=spare[3], client_port=spare[4], resp_port=spare[5])
        files[4] = peers_file("peers4-moved.json", [nodes[j] for j in (1, 2, 3, 5)] +
                              [dict(nodes[4], voter=False)])
        os.rename(os.path.join(TMP, "data4"), os.path.join(TMP, "data4-old"))
        start(4)
        code, out, err = member("add", "4", addr(4))
        check(code == 0, "add 4 at new ports: %d %r %r" % (code, out, err))
        wait("node 5 to follow node 4's move", lambda: connected(5, 4))
        write("c", 120)
        wait("node 5 to snapshot", lambda: "snapshot taken" in log_of(5))
        kill(5)
        start(5)
        wait("node 5, restarted with its old file, to connect to node 4's new port",
             lambda: connected(5, 4))
        wait("node 5 to serve c119", lambda: call(nodes[5]["resp_port"], "GET", "c119") == b"v119")

        # 3. node 1's file now lists node 4 at its new address (the same as the cluster's); node 1
        # leads and proposes changes: its books must still say the cluster owns node 4's address,
        # or node 5, restarted again with its old file, would go back to the old one
        code, out, err = cli("member", "peers")
        check(code == 0, "member peers: %d %r" % (code, err))
        files[1] = peers_file("peers1-new.json", [p for p in json.loads(out) if p["id"] != 1] +
                              [nodes[1]])
        kill(1)
        start(1, ["--election-timeout-min-ms", "100", "--election-timeout-max-ms", "150"])
        wait("node 1 back", lambda: bool(info(nodes[1]["resp_port"])))
        for _ in range(8):
            lead = wait("a leader", leader)
            if lead == 1:
                break
            kill(lead)
            wait("a new leader", lambda: leader() not in (None, lead))
            start(lead)
            wait("node %d back" % lead, lambda: bool(info(nodes[lead]["resp_port"])))
        check(leader() == 1, "node 1 never led")
        for args in (("remove", "2"), ("add", "2")):
            code, out, err = member(*args)
            check(code == 0, "member %s: %d %r %r" % (" ".join(args), code, out, err))
        # its own snapshot, or the leader's when node 5 fell behind its compaction point (it may
        # have been restarted above): either comes after the changes and starts with the new book
        def snapshots():
            return log_of(5).count("snapshot taken") + log_of(5).count("); installing it")
        taken = snapshots()  # before the writes: an install may end before they return
        write("d", 120)
        wait("node 5 to snapshot again", lambda: snapshots() > taken)
        kill(5)
        start(5)
        wait("node 5, restarted again with its old file, to connect to node 4's new port",
             lambda: connected(5, 4))
        print("ok: node 3 moved by edited peers files stays moved across snapshots and restarts; "
              "node 4, moved by remove and add, stays moved on node 5 after its restarts, also "
              "after node 1, whose file agrees with the cluster, led changes")
    finally:
        H.cleanup()


if __name__ == "__main__":
    main()
