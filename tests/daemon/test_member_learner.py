#!/usr/bin/env python3
"""Learners: a node added with `raftkv member add-learner` gets the log but never votes, campaigns
or counts in a majority, survives restarts as a learner, and is promoted once it has caught up
(label integration).

Nodes 1-3 run with a peers file of 1-3 only; snapshots every 100 entries, 10 kept behind.
  1. 300 writes (the leader compacts). Node 4 starts (peers file 1-4, itself a spare) and is
     added as a learner by address: every node reports voters 1-3 and learners 4, node 4
     catches up from a snapshot and serves a linearizable read, MEMBER LIST says "learner",
     `raftkv status` shows its role as learner.
  2. Refusals: `member add 4` (a learner is promoted, not added; exit 2), `member promote 3`
     (already a voter; exit 2), `member promote 9` (unknown; exit 2).
  3. 300 more writes (every snapshot is past the change, so its configuration is read back from
     a snapshot file with learners). Nodes 1 and 4 restart: both still report learners 4.
  4. The learner does not count: with nodes 3 and 4 killed, nodes 1 and 2 still write (a
     majority of 3 voters, not of 4 nodes). With the two voters other than the leader killed,
     the leader and node 4 make no majority -- no write succeeds, the leader steps down, and
     node 4 never campaigns (its term and role stay). The two voters come back.
  5. `member promote 4`: voters 1-4 everywhere, no learners. Now it counts: with node 2 killed,
     1, 3 and 4 are three of four and writes succeed. `member demote 4` makes it a learner again
     everywhere (a second demote is refused), and it is promoted again.
  6. Node 5 is added as a learner before it runs: promoting it is refused (exit 3: it never
     answered). It starts, catches up and is removed: learners go back to none everywhere,
     node 5 included (the leader no longer sends to it: it learns its removal by asking).

usage: test_member_learner.py PATH/TO/raftkvd
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import info  # noqa: E402
from peers import free_ports  # noqa: E402
from harness import Harness, loopback_nodes, member, resp_call, set_many, try_call  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
RAFTKV = os.path.join(os.path.dirname(RAFTKVD), "raftkv")
H = Harness("raftkv-member-learner-")
procs, TMP, fail, check, wait = H.procs, H.tmp, H.fail, H.check, H.wait


def main():
    every = loopback_nodes(5, free_ports(15))

    def peers_file(name, ids, spare=None):
        path = os.path.join(TMP, name)
        with open(path, "w") as f:
            json.dump([dict(every[i], **({"voter": False} if i == spare else {})) for i in ids],
                      f)
        return path

    p123 = peers_file("peers123.json", [1, 2, 3])
    files = {1: p123, 2: p123, 3: p123, 4: peers_file("peers1234.json", [1, 2, 3, 4], spare=4),
             5: peers_file("peers12345.json", [1, 2, 3, 4, 5], spare=5)}

    def start(i):
        log = open(H.log_path(i), "a")
        procs[i] = subprocess.Popen(
            [RAFTKVD, "--id", str(i), "--peers", files[i], "--data-dir",
             os.path.join(TMP, "data%d" % i), "--snapshot-threshold", "100",
             "--snapshot-trailing", "10"], stdout=log, stderr=log)

    def port(i):
        return every[i]["resp_port"]

    def addr(i):
        e = every[i]
        return "127.0.0.1:%d:%d:%d" % (e["peer_port"], e["client_port"], e["resp_port"])

    def field(i, name):
        v = info(port(i))
        return v.get(name) if v else None

    def ids(i, name):
        got = field(i, name)
        return None if got is None else sorted(x for x in got.split(",") if x)

    def leader():
        for i in (1, 2, 3):
            v = info(port(i))
            if v and v.get("role") == "leader":
                return i
        return None

    def write(prefix, n):
        got = set_many(port(wait("a leader", leader)), prefix, n)
        check(all(r == "OK" for r in got), "writes %s* failed: %r" % (prefix, got[:3]))

    def write_among(nodes, key, value, what):
        """A SET on whichever of nodes leads, until one succeeds (they may be electing)."""
        deadline = time.time() + H.wait_s
        while True:
            lead = next((i for i in nodes if field(i, "role") == "leader"), None)
            got = try_call(port(lead), "SET", key, value) if lead else None
            if got in (b"OK", "OK"):
                return
            check(time.time() < deadline, "no write with %s: %r" % (what, got))
            time.sleep(0.2)

    def cli(*args):
        r = subprocess.run([RAFTKV, "--peers", p123] + list(args), capture_output=True,
                           text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    try:
        for i in (1, 2, 3):
            start(i)
        wait("a leader", leader)
        write("a", 300)
        wait("the leader to compact", lambda: int(field(leader(), "snapshot_index")) >= 200)

        # 1. node 4 joins as a learner
        start(4)
        code, out, err = member(H, RAFTKV, p123, "add-learner", "4", addr(4))
        check(code == 0 and out.strip() == "node 4 added as a learner",
              "add-learner 4: %d %r %r" % (code, out, err))
        for i in (1, 2, 3, 4):
            wait("node %d to report voters 1-3, learners 4" % i,
                 lambda i=i: ids(i, "voters") == ["1", "2", "3"] and ids(i, "learners") == ["4"])
        wait("node 4 to apply", lambda: int(field(4, "applied")) >= 300)
        check("snapshot from node" in H.log(4), "node 4 did not catch up from a snapshot")
        check("this node is a learner" in H.log(4), "node 4 did not log that it is a learner")
        check(resp_call(port(4), "GET", "a299") == b"v299", "the learner does not serve a299")
        e4 = every[4]
        line4 = "4 127.0.0.1:%d client=%d resp=%d learner" % (e4["peer_port"], e4["client_port"],
                                                               e4["resp_port"])
        listing = resp_call(port(1), "RAFTKV.MEMBER", "LIST")
        check(isinstance(listing, bytes) and line4 in listing.decode(), "LIST: %r" % listing)
        code, out, err = cli("status")
        rows = {r[0]: r for r in (l.split() for l in out.splitlines()[1:])}
        check(code == 0 and "4" in rows and rows["4"][2] == "learner",
              "status: %d %r %r" % (code, out, err))

        # 2. refusals
        code, out, err = cli("member", "add", "4")
        check(code == 2 and "is a learner" in err, "add 4 (a learner): %d %r" % (code, err))
        code, out, err = cli("member", "promote", "3")
        check(code == 2 and "already a voter" in err, "promote 3: %d %r" % (code, err))
        code, out, err = cli("member", "promote", "9")
        check(code == 2 and "is unknown" in err, "promote 9: %d %r" % (code, err))

        # 3. the change leaves the logs; a voter and the learner restart from snapshots
        write("b", 300)
        for i in (1, 2, 3, 4):
            wait("node %d to snapshot past the change" % i,
                 lambda i=i: int(field(i, "snapshot_index")) >= 500)
        for i in (1, 4):
            H.kill(i)
            start(i)
        for i in (1, 4):
            wait("node %d to report learners 4 after its restart" % i,
                 lambda i=i: ids(i, "learners") == ["4"] and ids(i, "voters") == ["1", "2", "3"])
        wait("node 4 to apply again", lambda: int(field(4, "applied")) >= 600)

        # 4. the learner counts in no majority and never campaigns: with it and a voter down,
        # the two other voters still write (a quorum of 3, not of 4) ...
        H.kill(3)
        H.kill(4)
        write_among((1, 2), "d", "two", "voters 1, 2 of 3")  # the leader may have been node 3
        start(3)
        start(4)
        wait("node 4 to apply the write", lambda: (field(4, "applied") or "0") != "0" and
             resp_call(port(4), "GET", "d") == b"two")
        # ... and with the two other voters down, the leader and the learner write nothing
        lead = wait("a leader", leader)
        others = [i for i in (1, 2, 3) if i != lead]
        for i in others:
            H.kill(i)
        got = try_call(port(lead), "SET", "lost", "x", timeout=3)
        term = field(4, "term")  # after any heartbeat of the leader's term still on its way
        check(got != b"OK" and got != "OK", "a write succeeded with 1 voter of 3 and a learner")
        time.sleep(2)  # several election timeouts
        check(field(4, "role") == "follower" and field(4, "term") == term,
              "the learner campaigned: role %s term %s -> %s" % (field(4, "role"), term,
                                                                  field(4, "term")))
        check(field(lead, "role") != "leader", "node %d leads without a majority of voters" % lead)
        for i in others:
            start(i)
        wait("a leader", leader)

        # 5. promotion
        code, out, err = member(H, RAFTKV, p123, "promote", "4")
        check(code == 0 and out.strip() == "node 4 promoted", "promote 4: %d %r %r"
              % (code, out, err))
        for i in (1, 2, 3, 4):
            wait("node %d to report voters 1-4, no learners" % i,
                 lambda i=i: ids(i, "voters") == ["1", "2", "3", "4"] and ids(i, "learners") == [])
        wait("a leader", leader)
        H.kill(2)
        write_among((1, 3, 4), "c", "after", "1, 3, 4 of 4 voters")  # 2 may have led
        start(2)
        # ... demoted back to a learner (it keeps the log), and promoted again
        code, out, err = member(H, RAFTKV, p123, "demote", "4")
        check(code == 0 and out.strip() == "node 4 demoted to a learner",
              "demote 4: %d %r %r" % (code, out, err))
        for i in (1, 2, 3, 4):
            wait("node %d to report voters 1-3, learners 4 again" % i,
                 lambda i=i: ids(i, "voters") == ["1", "2", "3"] and ids(i, "learners") == ["4"])
        code, out, err = cli("member", "demote", "4")
        check(code == 2 and "already a learner" in err, "demote 4 twice: %d %r" % (code, err))
        code, out, err = member(H, RAFTKV, p123, "promote", "4")
        check(code == 0, "promote 4 again: %d %r %r" % (code, out, err))
        wait("node 1 to report voters 1-4 again", lambda: ids(1, "voters") == ["1", "2", "3", "4"])

        # 6. a learner that never answered is not promoted (its progress was just reset: idle 0,
        # match 0, and the commit index is below 1,000), then it starts and is removed
        code, out, err = member(H, RAFTKV, p123, "add-learner", "5", addr(5))
        check(code == 0, "add-learner 5: %d %r %r" % (code, out, err))
        code, out, err = cli("member", "promote", "5")
        check(code == 3 and "has not caught up" in err,
              "promote 5 (never started): %d %r %r" % (code, out, err))
        start(5)
        wait("node 5 to catch up as a learner", lambda: ids(5, "learners") == ["5"] and
             int(field(5, "applied") or 0) >= int(field(1, "commit") or 1) - 5)
        removed_lines = H.log(5).count("this node is not a voter")  # one at start, as a spare
        code, out, err = member(H, RAFTKV, p123, "remove", "5")
        check(code == 0 and out.strip() == "node 5 removed", "remove 5: %d %r %r"
              % (code, out, err))
        for i in (1, 2, 3, 4):
            wait("node %d to report no learners" % i,
                 lambda i=i: ids(i, "learners") == [] and len(ids(i, "voters")) == 4)
        # the leader stopped sending to node 5 as soon as the removal was in its log: node 5
        # learns it by asking, once it has heard nothing for an election timeout
        wait("node 5 to learn its removal", lambda: ids(5, "learners") == [] and
             len(ids(5, "voters")) == 4)
        wait("node 5 to log its removal",
             lambda: H.log(5).count("this node is not a voter") > removed_lines)
        print("ok: learner added, caught up, restarted, counted in no majority, promoted, "
              "and a learner removed")
    finally:
        H.cleanup()


main()
