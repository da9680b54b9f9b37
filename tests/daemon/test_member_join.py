#!/usr/bin/env python3
"""Nodes that no peers file of the cluster lists join it: `raftkv member add ID HOST:PORTS`
replicates their addresses, in the configuration entry and in every snapshot (label integration).

Nodes 1-3 run with a peers file of 1-3 only; snapshots every 100 entries, 10 kept behind.
  1. 300 writes (the leader compacts). Node 4 starts with a peers file of 1-4 (itself a spare).
     `raftkv member add 4` without an address is refused (exit 2, "is unknown"), so is a
     malformed address (exit 2); with HOST:PEER:CLIENT:RESP it is taken (exit 0). Every node
     logs that it learned node 4, node 4 catches up from a snapshot and serves every value,
     every node's MEMBER LIST names node 4 with its address, and `raftkv status` given the peers
     file of 1-3 shows node 4's row as well.
  2. 300 more writes: every snapshot is past the configuration entry, which leaves the logs.
     Node 1 restarts with its old peers file (1-3): it learns node 4 from its snapshot and
     connects to it. Adding 4 again with another address is refused ("a voter at another address").
  3. Node 5 starts with a peers file of every member (1-4, as a joining node must: it has to
     accept the leader, which may be node 4, before it can learn anything) and itself, and is
     added by address. Then nodes 1 and 2 are killed: 3, 4 and 5 are three of five voters, so
     writes succeed only if 4 and 5 reach each other.

usage: test_member_join.py PATH/TO/raftkvd
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import info  # noqa: E402
from peers import free_ports  # noqa: E402
from harness import Harness, resp_call, set_many  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
RAFTKV = os.path.join(os.path.dirname(RAFTKVD), "raftkv")
H = Harness("raftkv-member-join-")
procs, TMP, fail, check, wait = H.procs, H.tmp, H.fail, H.check, H.wait
call = resp_call


def main():
    ports = free_ports(15)
    every = [{"id": i + 1, "host": "127.0.0.1", "peer_port": ports[3 * i],
              "client_port": ports[3 * i + 1], "resp_port": ports[3 * i + 2]} for i in range(5)]

    def peers_file(name, ids, spare=None):
        path = os.path.join(TMP, name)
        with open(path, "w") as f:
            json.dump([dict(every[i - 1], **({"voter": False} if i == spare else {}))
                       for i in ids], f)
        return path

    p123 = peers_file("peers123.json", [1, 2, 3])
    p1234 = peers_file("peers1234.json", [1, 2, 3, 4], spare=4)
    p12345 = peers_file("peers12345.json", [1, 2, 3, 4, 5], spare=5)
    files = {1: p123, 2: p123, 3: p123, 4: p1234, 5: p12345}

    def start(i):
        log = open(os.path.join(TMP, "node%d.log" % i), "a")
        procs[i] = subprocess.Popen(
            [RAFTKVD, "--id", str(i), "--peers", files[i], "--data-dir",
             os.path.join(TMP, "data%d" % i), "--snapshot-threshold", "100",
             "--snapshot-trailing", "10"], stdout=log, stderr=log)

    def kill(i):
        procs[i].send_signal(signal.SIGKILL)
        procs[i].wait()

    def port(i):
        return every[i - 1]["resp_port"]

    def addr(i):
        e = every[i - 1]
        return "127.0.0.1:%d:%d:%d" % (e["peer_port"], e["client_port"], e["resp_port"])

    def log_of(i):
        return open(os.path.join(TMP, "node%d.log" % i)).read()

    def cli(*args):
        r = subprocess.run([RAFTKV, "--peers", p123] + list(args), capture_output=True,
                           text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def leader():
        v = info(port(3))
        return int(v["leader"]) if v and v.get("leader", "0").isdigit() and \
            int(v["leader"]) > 0 else None

    def write(i, prefix, n):
        lead = wait("a leader", leader) if i is None else i
        got = set_many(port(lead), prefix, n)
        check(all(r == "OK" for r in got), "writes %s* failed: %r" % (prefix, got[:3]))

    def voters(i):
        v = info(port(i))
        return sorted((v.get("voters") or "").split(",")) if v else []

    try:
        for i in (1, 2, 3):
            start(i)
        wait("a leader", leader)
        write(None, "a", 300)
        wait("the leader to compact", lambda: int(info(port(leader())).get(
            "snapshot_index", "0")) >= 200)

        # 1. node 4 joins
        start(4)
        code, out, err = cli("member", "add", "4")
        check(code == 2 and "is unknown" in err, "add 4 without an address: %d %r" % (code, err))
        code, out, err = cli("member", "add", "4", "127.0.0.1:0:1:2")
        check(code == 2 and "HOST:PEER_PORT" in err, "add 4 bad address: %d %r" % (code, err))
        code, out, err = cli("member", "add", "4", addr(4))
        check(code == 0 and out.strip() == "node 4 added", "add 4: %d %r %r" % (code, out, err))
        for i in (1, 2, 3, 4):
            wait("node %d to report voters 1-4" % i, lambda i=i: voters(i) == ["1", "2", "3", "4"])
        for i in (1, 2, 3):  # logged when the entry's Ready is taken, maybe after INFO said so
            wait("node %d to log that it learned node 4" % i,
                 lambda i=i: "learned node 4 at 127.0.0.1" in log_of(i))
        wait("node 4 to apply", lambda: int(info(port(4))["applied"]) >= 300)
        check(call(port(4), "GET", "a299") == b"v299", "node 4 does not serve a299")
        check("snapshot from node" in log_of(4), "node 4 did not catch up from a snapshot")
        e4 = every[3]
        line4 = "4 127.0.0.1:%d client=%d resp=%d voter" % (e4["peer_port"], e4["client_port"],
                                                             e4["resp_port"])
        for i in (1, 2, 3, 4):
            listing = call(port(i), "RAFTKV.MEMBER", "LIST")
            check(isinstance(listing, bytes) and line4 in listing.decode(),
                  "LIST on node %d: %r" % (i, listing))
        # `raftkv status` with the peers file of 1-3 shows node 4 too (from MEMBER LIST)
        code, out, err = cli("status")
        rows = [l.split() for l in out.splitlines()[1:]]
        check(code == 0 and [r[0] for r in rows] == ["1", "2", "3", "4"] and
              rows[3][1] == "127.0.0.1:%d" % e4["client_port"] and
              rows[3][2] in ("follower", "leader"),
              "status with peers 1-3: %d %r %r" % (code, out, err))

        # 2. the entry leaves the logs; node 1 restarts with its old peers file
        write(None, "b", 300)
        for i in (1, 2, 3, 4):
            wait("node %d to snapshot past the change" % i,
                 lambda i=i: int(info(port(i)).get("snapshot_index", "0")) >= 500)
        kill(1)
        start(1)
        wait("node 1 to connect to node 4 again",
             lambda: "connected=1" in (info(port(1)) or {}).get("peer_4", ""))
        check("learned node 4 at 127.0.0.1 (peer %d, client %d, resp %d) from the snapshot"
              % (e4["peer_port"], e4["client_port"], e4["resp_port"]) in log_of(1),
              "node 1 did not learn node 4 from its snapshot after the restart")
        code, out, err = cli("member", "add", "4", "127.0.0.1:1:2:3")
        check(code == 2 and "is a voter at another address" in err,
              "add 4 at another address: %d %r" % (code, err))

        # 3. node 5 joins with a peers file from `raftkv member peers` (every member: the leader
        # may be node 4, which nodes 1-3 know only from the log) plus itself as a spare
        code, out, err = cli("member", "peers")
        check(code == 0, "member peers: %d %r" % (code, err))
        listed = json.loads(out)
        check([p["id"] for p in listed] == [1, 2, 3, 4] and listed[3] == every[3],
              "member peers printed %r" % (listed,))
        with open(files[5], "w") as f:
            json.dump(listed + [dict(every[4], voter=False)], f)
        start(5)
        code, out, err = cli("member", "add", "5", addr(5))
        check(code == 0, "add 5: %d %r %r" % (code, out, err))
        wait("node 5 to apply", lambda: int((info(port(5)) or {}).get("applied", "0")) >= 600)
        wait("node 3 to learn node 5", lambda: "learned node 5 at 127.0.0.1" in log_of(3))
        kill(1)
        kill(2)
        deadline = time.time() + H.wait_s
        ok = False
        while time.time() < deadline and not ok:
            lead = None
            for i in (3, 4, 5):
                v = info(port(i))
                if v and v.get("role") == "leader":
                    lead = i
            if lead is not None and call(port(lead), "SET", "c", "after") == "OK":
                ok = True
            time.sleep(0.2)
        check(ok, "no write with voters 3, 4 and 5 up (of 1-5)")
        for i in (3, 4, 5):
            wait("node %d to serve c" % i, lambda i=i: call(port(i), "GET", "c") == b"after")
        print("ok: nodes 4 and 5, in no peers file of the first three nodes, joined by address; "
              "node 1 learned node 4 from its snapshot after a restart; 3 of 5 voters (3, 4, 5) "
              "kept the cluster writable")
    finally:
        H.cleanup()


if __name__ == "__main__":
    main()
