#!/usr/bin/env python3
"""raftkvd --poll-us: the leader polls instead of sleeping while it has work, and only then
(label integration).

Three nodes with poll_us = 2000. While one client writes, the leader's loop must poll (INFO
loop_polls grows by more than one iteration per write) and the followers' must not (they never
poll: on a shared machine they would take the leader's core). Once the client stops, the leader
must go back to sleeping: over two idle seconds it may use at most a quarter of a core (heartbeats
still wake it every 50 ms, each for one window), where a loop that kept polling would use a whole
one. Then a cluster without the setting must never poll.

usage: test_poll.py PATH/TO/raftkvd
"""
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import write_peers  # noqa: E402
from resp import Resp, info  # noqa: E402

WRITES = 300


def start(raftkvd, tmp, tag, extra):
    peers_path = os.path.join(tmp, "peers-%s.json" % tag)
    peers = write_peers(peers_path, 3)
    procs = []
    for p in peers:
        with open(os.path.join(tmp, "%s%d.log" % (tag, p["id"])), "w") as log:
            procs.append(subprocess.Popen(
                [raftkvd, "--id", str(p["id"]), "--peers", peers_path, "--data-dir",
                 os.path.join(tmp, "%s%d" % (tag, p["id"]))] + extra,
                stdout=log, stderr=subprocess.STDOUT))
    return peers, procs


def leader_of(peers, deadline_s=15):
    end = time.time() + deadline_s
    while time.time() < end:
        for i, p in enumerate(peers):
            if info(p["resp_port"]).get("role") == "leader":
                return i
        time.sleep(0.1)
    sys.exit("FAIL: no leader within %d s" % deadline_s)


def polls(port):
    value = info(port).get("loop_polls")
    if value is None:
        sys.exit("FAIL: INFO on port %d has no loop_polls" % port)
    return int(value)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_some(port):
    c = Resp(port)
    try:
        for i in range(WRITES):
            c.call("SET", "k%d" % (i % 10), "v%d" % i)
    finally:
        c.close()


def stop(procs):
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    raftkvd = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="raftkv-poll-") as tmp:
        peers, procs = start(raftkvd, tmp, "poll", ["--poll-us", "2000"])
        try:
            lead = leader_of(peers)
            ports = [p["resp_port"] for p in peers]
            before = [polls(port) for port in ports]
            write_some(ports[lead])
            after = [polls(port) for port in ports]
            grown = after[lead] - before[lead]
            if grown <= WRITES:
                sys.exit("FAIL: the leader polled %d times during %d writes with poll_us=2000"
                         % (grown, WRITES))
            for i, port in enumerate(ports):
                if i != lead and after[i] != 0:
                    sys.exit("FAIL: follower %d polled (%d iterations): only a leader may"
                             % (peers[i]["id"], after[i]))
            time.sleep(0.5)
            pid = procs[lead].pid
            t0, c0 = time.monotonic(), cpu_seconds(pid)
            time.sleep(2.0)
            share = (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
            if share > 0.25:
                sys.exit("FAIL: the idle leader used %.0f %% of a core over 2 s: it did not stop "
                         "polling once its work ended" % (100 * share))
            print("ok: leader polled %d times in %d writes, followers 0, idle leader %.1f %% of a "
                  "core" % (grown, WRITES, 100 * share))
        finally:
            stop(procs)

        peers, procs = start(raftkvd, tmp, "off", [])
        try:
            lead = leader_of(peers)
            write_some(peers[lead]["resp_port"])
            counts = [polls(p["resp_port"]) for p in peers]
            if any(counts):
                sys.exit("FAIL: loop_polls %s without poll_us: the default must never poll"
                         % counts)
            print("ok: without poll_us no node polled")
        finally:
            stop(procs)
    print("PASS")


if __name__ == "__main__":
    main()
