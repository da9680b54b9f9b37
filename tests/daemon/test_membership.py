#!/usr/bin/env python3
"""Membership change on real raftkvd processes: a spare node is added, the leader removes itself,
and the new voter is what keeps the cluster writable (label integration).

4 raftkvd on loopback; node 4 is listed with "voter": false and snapshots are frequent (every 100
entries), so it catches up through a snapshot install once added.
  1. RAFTKV.MEMBER refuses what it must, naming why (unknown node, already a voter, not a voter,
     bad syntax); LIST names each node's part (and fails at once on the spare, which knows no
     current configuration); the CLI says the same.
  2. 500 writes; with one of the three voters killed, ADD 4 is refused (four voters, two
     answering: no majority); once it is back, RAFTKV.MEMBER ADD 4 sent to a follower (forwarded
     to the leader): +OK; every node reports voters 1,2,3,4 and node 4 serves every acknowledged
     value.
  3. The leader is removed with `raftkv member remove <leader>` (the CLI asks node 1, which
     forwards to the leader when it is not the leader itself): exit 0; a new leader is elected among
     the other three; the old leader is not a voter, never leads again, and stays so after a
     restart (the configuration comes from its log, not from the peers file); a read sent to it
     fails at once (it receives no entries).
  4. One of the remaining original voters that does not lead is killed: the leader and node 4
     (or node 4 leading, and the other) are a majority of the three voters, so writes still
     succeed -- node 4 counts.

usage: test_membership.py PATH/TO/raftkvd
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
RAFTKV = os.path.join(os.path.dirname(RAFTKVD), "raftkv")  # the CLI, built next to raftkvd
WAIT_S = 30
H = Harness("raftkv-membership-", WAIT_S)
procs, TMP, fail, check = H.procs, H.tmp, H.fail, H.check


def read_many(c, n):
    out = []
    for _ in range(n):
        try:
            out.append(c.reply())
        except RespError as e:
            out.append("ERR:" + str(e))
    return out


def small_cluster():
    """Voters 1 and 2, spare 3. With the follower frozen (SIGSTOP: its connections stay open),
    adding 3 is refused: only the leader answers. Removing the frozen follower leaves one voter,
    and one voter may grow to two (the new one cannot be counted before it votes)."""
    d = os.path.join(TMP, "small")
    os.makedirs(d)
    peers_path = os.path.join(d, "peers.json")
    peers = write_peers(peers_path, 3)
    peers[2]["voter"] = False
    with open(peers_path, "w") as f:
        json.dump(peers, f)
    for i in (1, 2, 3):
        log = open(os.path.join(TMP, "node%d.log" % (10 + i)), "a")
        procs[10 + i] = subprocess.Popen(
            [RAFTKVD, "--id", str(i), "--peers", peers_path, "--data-dir",
             os.path.join(d, "data%d" % i)], stdout=log, stderr=log)

    def call(i, *args):
        return resp_call(peers[i - 1]["resp_port"], *args)

    deadline = time.time() + WAIT_S
    lead = None
    while time.time() < deadline and lead is None:
        v = info(peers[0]["resp_port"])
        if v.get("leader") in ("1", "2") and info(peers[1]["resp_port"]).get("leader") == \
                v["leader"]:
            lead = int(v["leader"])
        time.sleep(0.1)
    check(lead is not None, "small cluster: no leader")
    frozen = 3 - lead
    procs[10 + frozen].send_signal(signal.SIGSTOP)
    time.sleep(1.0)  # over an election timeout (300 ms) without an answer from it
    got = call(lead, "RAFTKV.MEMBER", "ADD", "3")
    check(isinstance(got, str) and "majority" in got,
          "ADD 3 with voter %d frozen answered %r" % (frozen, got))
    got = call(lead, "RAFTKV.MEMBER", "REMOVE", str(frozen))
    check(got == "OK", "REMOVE of the frozen voter %d answered %r" % (frozen, got))
    procs[10 + frozen].send_signal(signal.SIGCONT)
    got = call(lead, "RAFTKV.MEMBER", "ADD", "3")
    check(got == "OK", "ADD 3 to a one-voter cluster answered %r" % (got,))
    check(call(lead, "SET", "small", "x") == "OK", "no write after one voter grew to two")


def main():
    peers_path = os.path.join(TMP, "peers.json")
    peers = write_peers(peers_path, 4)
    peers[3]["voter"] = False
    with open(peers_path, "w") as f:
        json.dump(peers, f)

    def start(i):
        log = open(os.path.join(TMP, "node%d.log" % i), "a")
        procs[i] = subprocess.Popen(
            [RAFTKVD, "--id", str(i), "--peers", peers_path, "--data-dir",
             os.path.join(TMP, "data%d" % i), "--snapshot-threshold", "100",
             "--snapshot-trailing", "10"],
            stdout=log, stderr=log)

    def port(i):
        return peers[i - 1]["resp_port"]

    def voters(i):
        v = info(port(i))
        return v.get("voters") if v else None

    def wait(what, pred):
        deadline = time.time() + WAIT_S
        while time.time() < deadline:
            got = pred()
            if got:
                return got
            time.sleep(0.1)
        fail("timed out waiting for " + what)

    def leader_among(nodes):
        def agreed():
            views = [info(port(i)) for i in nodes]
            if not all(views):
                return None
            leads = {v.get("leader") for v in views}
            if len(leads) != 1:
                return None
            lead = leads.pop()
            return int(lead) if lead and lead.isdigit() and int(lead) in nodes else None
        return wait("a leader agreed by %s" % nodes, agreed)

    def follower_of(lead):
        return [i for i in (1, 2, 3) if i != lead][0]

    def call(i, *args):
        return resp_call(port(i), *args)

    try:
        for i in (1, 2, 3, 4):
            start(i)
        leader = leader_among([1, 2, 3])  # node 4 hears from nobody: no leader sends to it
        check(voters(4) == "1,2,3" or sorted(voters(4).split(",")) == ["1", "2", "3"],
              "node 4 reports voters %r" % voters(4))

        # 1. refusals and LIST
        for args, want in [(("RAFTKV.MEMBER", "ADD", "9"), "is unknown"),
                           (("RAFTKV.MEMBER", "ADD", str(leader)), "already a voter"),
                           (("RAFTKV.MEMBER", "REMOVE", "4"), "not a voter"),
                           (("RAFTKV.MEMBER", "ADD"), "usage"),
                           (("RAFTKV.MEMBER", "ADD", "x"), "usage")]:
            got = call(leader, *args)
            check(isinstance(got, str) and got.startswith("ERR:") and want in got,
                  "%s answered %r, expected an error naming %r" % (" ".join(args), got, want))
        def cli(*args):
            r = subprocess.run([RAFTKV, "--peers", peers_path] + list(args),
                               capture_output=True, text=True, timeout=60)
            return r.returncode, r.stdout, r.stderr
        code, out, err = cli("member", "add", "9")
        check(code == 2 and "is unknown" in err,
              "raftkv member add 9: exit %d, stderr %r" % (code, err))
        code, out, err = cli("member", "list")
        check(code == 0 and len(out.splitlines()) == 4 and out.splitlines()[3].endswith(
            "not-voter"), "raftkv member list: exit %d, stdout %r" % (code, out))
        got = call(4, "RAFTKV.MEMBER", "LIST")  # the spare knows no current configuration
        check(isinstance(got, str) and "CLUSTERDOWN" in got, "LIST on the spare: %r" % (got,))
        listing = call(follower_of(leader), "RAFTKV.MEMBER", "LIST").decode()
        check(" voter" in listing.splitlines()[0] and "4 127.0.0.1" in listing and
              listing.splitlines()[3].endswith("not-voter"), "LIST said %r" % listing)

        # 2. add node 4 through a follower
        c = Resp(port(leader), timeout=30)
        c.send_many([("SET", "m%d" % n, "v%d" % n) for n in range(500)])
        check(all(r == "OK" for r in read_many(c, 500)), "a write failed before the change")
        c.close()
        wait("the leader to compact its log (snapshot past index 200)",
             lambda: int(info(port(leader)).get("snapshot_index", "0")) >= 200)
        follower, other = [i for i in (1, 2, 3) if i != leader]
        # With one of three voters down, a fourth voter (not caught up) would stop every write:
        # the leader refuses, naming why, until the missing voter is back.
        procs[other].send_signal(signal.SIGKILL)
        procs[other].wait()
        time.sleep(2.5)  # two check-quorum windows (1.2 s): the leader no longer hears it
        got = call(leader, "RAFTKV.MEMBER", "ADD", "4")
        check(isinstance(got, str) and "majority" in got,
              "ADD 4 with node %d down answered %r" % (other, got))
        start(other)
        got = wait("the add to be taken once node %d is back" % other,
                   lambda: (lambda r: r if r == "OK" or "majority" not in str(r) else None)(
                       call(follower, "RAFTKV.MEMBER", "ADD", "4")))
        check(got == "OK", "ADD 4 through follower %d answered %r" % (follower, got))
        for i in (1, 2, 3, 4):
            wait("node %d to report voters 1,2,3,4" % i,
                 lambda i=i: sorted((voters(i) or "").split(",")) == ["1", "2", "3", "4"])
        wait("node 4 to apply the leader's commit", lambda: int(info(port(4))["applied"]) >=
             int(info(port(leader))["commit"]) - 1)
        for n in (0, 123, 499):
            check(call(4, "GET", "m%d" % n) == b"v%d" % n, "node 4 lost m%d" % n)
        log4 = open(os.path.join(TMP, "node4.log")).read()
        check("snapshot from node %d written" % leader in log4,
              "node 4 did not catch up through a snapshot (its log: no 'snapshot from node')")

        # 3. the leader removes itself
        old = leader
        code, out, err = cli("member", "remove", str(old))
        check(code == 0 and out.strip() == "node %d removed" % old,
              "raftkv member remove %d (the leader): exit %d, %r %r" % (old, code, out, err))
        rest = [i for i in (1, 2, 3, 4) if i != old]
        leader = leader_among(rest)
        check(leader != old, "the removed node still leads")
        wait("node %d to know it is not a voter" % old,
             lambda: str(old) not in (voters(old) or str(old)).split(","))
        procs[old].send_signal(signal.SIGKILL)
        procs[old].wait()
        start(old)
        wait("node %d back" % old, lambda: bool(info(port(old))))
        # Its hard state may not say its removal committed: it pre-votes once, and the leader's
        # answer tells it; from then on it stays a follower.
        wait("node %d to settle as a follower" % old,
             lambda: info(port(old)).get("role") == "follower" and
             info(port(old)).get("leader") == str(leader))
        for _ in range(10):  # several election timeouts: a voter would have campaigned by now
            v = info(port(old))
            check(str(old) not in v["voters"].split(",") and v["role"] == "follower",
                  "after its restart node %d says voters=%s role=%s" % (old, v["voters"],
                                                                         v["role"]))
            time.sleep(0.1)
        check("not a voter" in open(os.path.join(TMP, "node%d.log" % old)).read(),
              "node %d's log does not say it is not a voter" % old)
        # It gets no entries any more: a read there fails at once instead of waiting for ever.
        t0 = time.time()
        got = call(old, "GET", "m1")
        check(isinstance(got, str) and "CLUSTERDOWN" in got and time.time() - t0 < 1.0,
              "GET on removed node %d answered %r after %.1f s" % (old, got, time.time() - t0))

        # 4. one of the remaining original voters dies: the new leader and node 4 carry on
        victims = [i for i in rest if i not in (leader, 4)]  # 4 may be the new leader itself
        procs[victims[0]].send_signal(signal.SIGKILL)
        procs[victims[0]].wait()
        c = Resp(port(leader), timeout=30)
        c.send_many([("SET", "after%d" % n, "w%d" % n) for n in range(100)])
        replies = read_many(c, 100)
        c.close()
        check(all(r == "OK" for r in replies),
              "writes failed with voters %d and 4 up: %r" % (leader, replies[:3]))
        check(call(4, "GET", "after99") == b"w99", "node 4 does not serve after99")
        for p in procs.values():
            p.kill()
            p.wait()
        procs.clear()
        small_cluster()
        print("ok: spare added through a follower (snapshot catch-up), leader removed itself and "
              "stayed out after a restart, new voter kept the cluster writable; a frozen voter "
              "is not counted; one voter grows to two")
    finally:
        H.cleanup()


if __name__ == "__main__":
    main()
