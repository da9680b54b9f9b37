#!/usr/bin/env python3
"""Figures for docs/PERFORMANCE.md: time from start to first leader, and failover time after
kill -9 of the leader (median and max over --kills runs), for a local cluster of raftkvd.

Times come from the nodes' own log timestamps: 'first leader' is from the moment the last node
was started to the first "-> leader" line; 'failover' is from the kill to the "-> leader" line of
the next leader (a higher term). Default settings (election timeout 300..600 ms, heartbeat 50 ms).

usage: failover_figures.py PATH/TO/raftkvd [--nodes 3] [--kills 20] [-- extra raftkvd flags]
"""
import argparse
import datetime
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import write_peers  # noqa: E402

LEADER_RE = re.compile(r"^(\S+) node=(\d+) role \S+ -> leader \(term (\d+)\)", re.M)


def parse_ts(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raftkvd")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="raftkv-failover-")
    peers_path = os.path.join(tmp, "peers.json")
    peers = write_peers(peers_path, args.nodes)
    procs = {}

    def start(i):
        log = open(os.path.join(tmp, "node%d.log" % i), "a")
        procs[i] = subprocess.Popen(
            [os.path.abspath(args.raftkvd), "--id", str(i), "--peers", peers_path, "--data-dir",
             os.path.join(tmp, "data%d" % i)] + args.extra, stdout=log, stderr=log)

    def leaders():
        out = []
        for i in procs:
            with open(os.path.join(tmp, "node%d.log" % i)) as f:
                for ts, node, term in LEADER_RE.findall(f.read()):
                    out.append((int(term), parse_ts(ts), int(node)))
        return sorted(out)

    def wait_leader(min_term):
        deadline = time.time() + 30
        while time.time() < deadline:
            found = [l for l in leaders() if l[0] >= min_term]
            if found:
                return found[0]
            time.sleep(0.02)
        sys.exit("no leader in term >= %d within 30 s (logs in %s)" % (min_term, tmp))

    try:
        for i in range(1, args.nodes + 1):
            start(i)
        started = time.time()
        term, at, leader = wait_leader(1)
        print("start -> first leader: %.0f ms (node %d, term %d)" %
              ((at - started) * 1000, leader, term))
        times = []
        for _ in range(args.kills):
            time.sleep(1.0)  # let the cluster settle (heartbeats, the restarted node caught up)
            term, _, leader = leaders()[-1]
            killed = time.time()
            procs[leader].send_signal(signal.SIGKILL)
            procs[leader].wait()
            new_term, at, new_leader = wait_leader(term + 1)
            times.append((at - killed) * 1000)
            start(leader)
        print("failover after kill -9 of the leader, %d kills: median %.0f ms, max %.0f ms, "
              "min %.0f ms" % (len(times), statistics.median(times), max(times), min(times)))
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
