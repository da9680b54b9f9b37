#!/usr/bin/env python3
"""The nil-externality fast path on real raftkvd processes (docs/NILEXT.md; label integration).

3 nodes with "fast_path": true. A client registers a session, then sends each RAFTKV.FSET to every
node and counts it done when, in one term, the leader (index != 0) and every voter it lists
answered +FAST. Checked:
  1. refusals: FSET of an unknown session on the leader, malformed FSET, a non-fast cluster's
     refusal is covered by the node's EFASTOFF answer in the front-end tests;
  2. 300 writes in bursts of 30 pipelined per node; every node then serves every value;
  3. the leader is killed -9 right after a burst completes (its writes acknowledged, maybe not
     committed): the survivors elect a leader that recovers them -- every acknowledged value is
     read back; reads through the new leader see the newest value of each key;
  4. every node is killed -9 and restarted: the d-logs and logs give back every acknowledged
     write, and the session goes on (a seq already applied is skipped, a new one applies);
  5. RAFTKV.UNREGISTER (sent to a follower) closes the session: :1, then FSET is refused
     (unknown session) and a second UNREGISTER answers :0.

usage: test_fast_path.py PATH/TO/raftkvd
"""
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Resp, RespError, info  # noqa: E402
from peers import write_peers  # noqa: E402
from harness import Harness, resp_call  # noqa: E402

RAFTKVD = os.path.abspath(sys.argv[1])
H = Harness("raftkv-fast-", log_tail=3000)
procs, TMP, fail, check = H.procs, H.tmp, H.fail, H.check


def wait(what, pred):
    return H.wait(what, pred, step=0.05)


def main():
    peers_path = os.path.join(TMP, "peers.json")
    peers = write_peers(peers_path, 3)
    cfg_path = os.path.join(TMP, "raft.json")
    with open(cfg_path, "w") as f:
        json.dump({"fast_path": True, "snapshot_threshold": 200, "snapshot_trailing": 20}, f)

    def start(i):
        log = open(os.path.join(TMP, "node%d.log" % i), "a")
        procs[i] = subprocess.Popen(
            [RAFTKVD, "--id", str(i), "--peers", peers_path, "--config", cfg_path,
             "--data-dir", os.path.join(TMP, "data%d" % i)], stdout=log, stderr=log)

    def kill(i):
        procs[i].send_signal(signal.SIGKILL)
        procs[i].wait()

    def port(i):
        return peers[i - 1]["resp_port"]

    def leader(nodes=(1, 2, 3)):
        views = [info(port(i)) for i in nodes]
        if not all(views):
            return None
        leads = {v.get("leader") for v in views}
        lead = leads.pop() if len(leads) == 1 else None
        return int(lead) if lead and lead.isdigit() and int(lead) in nodes else None

    def call(i, *args):
        return resp_call(port(i), *args, timeout=10)

    def burst(nodes, session, first_seq, keys, values):
        """Sends FSETs seq first_seq.. to every node in `nodes`, pipelined; returns the seqs
        that completed (leader and every listed voter answered in one term)."""
        conns = {i: Resp(port(i), timeout=10) for i in nodes}
        cmds = [("RAFTKV.FSET", session, first_seq + k, keys[k], values[k])
                for k in range(len(keys))]
        for c in conns.values():
            c.send_many(cmds)
        answers = {}
        for i, c in conns.items():
            for k in range(len(keys)):
                try:
                    answers[(i, k)] = c.reply()
                except RespError as e:
                    answers[(i, k)] = "ERR:" + str(e)
            c.close()
        done = []
        for k in range(len(keys)):
            by_term = {}
            for i in nodes:
                a = answers[(i, k)]
                if isinstance(a, str) and a.startswith("FAST "):
                    _, term, lead, index, voters, node = a.split(" ")
                    check(int(node) == i, "node %d answered as node %s" % (i, node))
                    t = by_term.setdefault(term, {"acks": set(), "leader": None})
                    t["acks"].add(int(node))
                    if int(index) != 0:
                        t["leader"] = int(node)
                        t["voters"] = {int(v) for v in voters.split(",")}
            if any(t["leader"] and t["voters"] <= t["acks"] for t in by_term.values()):
                done.append(first_seq + k)
        return done, answers

    try:
        for i in (1, 2, 3):
            start(i)
        lead = wait("a leader", leader)
        session = wait("a session", lambda: (lambda r: r if isinstance(r, int) else None)(
            call(lead, "RAFTKV.REGISTER")))

        # 1. refusals
        got = call(lead, "RAFTKV.FSET", 987654, 1, "k", "v")
        check(isinstance(got, str) and "unknown session" in got, "unknown session: %r" % got)
        got = call(lead, "RAFTKV.FSET", session, 1, "bad key", "v")
        check(isinstance(got, str) and "key:" in got, "malformed FSET: %r" % got)
        got = call(lead, "RAFTKV.FSET", session, 0, "k", "v")
        check(isinstance(got, str) and "seq: expected an integer" in got, "seq 0: %r" % got)

        # 2. bursts through every node
        expect = {}
        seq = 1
        for b in range(10):
            keys = ["k%d" % (k % 50) for k in range(b * 30, b * 30 + 30)]
            values = ["v%d" % (b * 30 + k) for k in range(30)]
            done, answers = burst((1, 2, 3), session, seq, keys, values)
            check(len(done) == 30, "burst %d: %d of 30 done; e.g. %r" % (
                b, len(done), [answers[(i, 0)] for i in (1, 2, 3)]))
            for k in range(30):
                expect[keys[k]] = values[k].encode()
            seq += 30
        for i in (1, 2, 3):
            for key, value in expect.items():
                got = call(i, "GET", key)
                check(got == value, "node %d: GET %s = %r, expected %r" % (i, key, got, value))
        # a seq the session applied already is refused by the leader (never acknowledged)
        got = call(leader(), "RAFTKV.FSET", session, 5, "k0", "again")
        check(isinstance(got, str) and "stale seq" in got, "an applied seq again: %r" % got)

        # 3. kill the leader right after a burst completed
        lead = leader()
        keys = ["k%d" % k for k in range(30)]
        values = ["w%d" % k for k in range(30)]
        done, _ = burst((1, 2, 3), session, seq, keys, values)
        kill(lead)
        check(len(done) == 30, "burst before the kill: %d of 30 done" % len(done))
        for k in range(30):
            expect[keys[k]] = values[k].encode()
        seq += 30
        rest = [i for i in (1, 2, 3) if i != lead]
        new = wait("a new leader among %s" % rest, lambda: leader(tuple(rest)))
        for key, value in expect.items():
            got = wait("GET %s on the new leader" % key,
                       lambda: (lambda g: g if not (isinstance(g, str) and g.startswith("ERR"))
                                else None)(call(new, "GET", key)))
            check(got == value, "after the leader's death: GET %s = %r, expected %r (node %d)"
                  % (key, got, value, new))
        old = lead
        start(old)

        # 4. every node killed and restarted: the d-logs and logs give everything back
        wait("node %d back in the cluster" % old,
             lambda: (info(port(old)) or {}).get("leader") == str(new))
        for i in (1, 2, 3):
            kill(i)
        for i in (1, 2, 3):
            start(i)
        lead = wait("a leader after the restart", leader)
        for key, value in expect.items():
            got = wait("GET %s after the restart" % key,
                       lambda: (lambda g: g if not (isinstance(g, str) and g.startswith("ERR"))
                                else None)(call(lead, "GET", key)))
            check(got == value, "after restarting every node: GET %s = %r, expected %r"
                  % (key, got, value))
        # an old seq never completes (the leader refuses it), and changes nothing; the next applies
        done, _ = burst((1, 2, 3), session, 1, ["k0"], ["stale"])
        check(done == [], "an old seq completed after the restart")
        check(call(lead, "GET", "k0") == expect["k0"], "an old seq overwrote k0")
        deadline = time.time() + H.wait_s
        done = []
        while not done and time.time() < deadline:  # a new seq per attempt: seqs must rise
            done, _ = burst((1, 2, 3), session, seq, ["k0"], ["fresh"])
            seq += 1
            if not done:
                time.sleep(0.1)
        check(done != [], "no new seq completed after the restart")
        check(wait("k0 fresh", lambda: call(lead, "GET", "k0") == b"fresh"), "k0 not fresh")

        # 5. the session closed (through a follower: forwarded): its writes are refused after
        follower = [i for i in (1, 2, 3) if i != leader()][0]
        got = call(follower, "RAFTKV.UNREGISTER", session)
        check(got == 1, "UNREGISTER %d: %r" % (session, got))
        got = call(leader(), "RAFTKV.FSET", session, seq, "k0", "closed")
        check(isinstance(got, str) and "unknown session" in got, "FSET after close: %r" % got)
        check(call(leader(), "RAFTKV.UNREGISTER", session) == 0, "UNREGISTER twice")
        for i in (1, 2, 3):
            wait("node %d to count no session" % i,
                 lambda i=i: info(port(i)).get("fast_sessions") == "0")
        got = call(leader(), "RAFTKV.UNREGISTER", "x")
        check(isinstance(got, str) and "usage" in got, "UNREGISTER x: %r" % got)
        print("ok: %d fast writes done through every node; a killed leader's acknowledged writes "
              "recovered by the next one; everything back after killing every node; the session "
              "closed" % (seq - 1))
    finally:
        H.cleanup()


if __name__ == "__main__":
    main()
