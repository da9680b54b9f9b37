#!/usr/bin/env python3
"""Figures for docs/PERFORMANCE.md: write throughput of a local raftkvd cluster measured with
redis-benchmark (SET through the leader's RESP port): 1 client, 64 clients, 64 clients with 16
pipelined requests each, and GET on a follower (linearizable ReadIndex reads), fsync on.

usage: write_figures.py PATH/TO/raftkvd [--nodes 3] [--requests 100000] [-- extra raftkvd flags]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import info  # noqa: E402
from peers import write_peers  # noqa: E402


def bench(port, args):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-q"] + args,
                         capture_output=True, text=True, timeout=600).stdout
    found = re.findall(r"([0-9.]+) requests per second(?:, p50=([0-9.]+) msec)?",
                       out.replace("\r", "\n"))
    return found[-1] if found else ("?", "?")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raftkvd")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100000)
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()
    if shutil.which("redis-benchmark") is None:
        sys.exit("redis-benchmark not found (Debian package redis-tools)")
    tmp = tempfile.mkdtemp(prefix="raftkv-write-figures-")
    peers_path = os.path.join(tmp, "peers.json")
    peers = write_peers(peers_path, args.nodes)
    procs = []
    try:
        for p in peers:
            log = open(os.path.join(tmp, "node%d.log" % p["id"]), "w")
            procs.append(subprocess.Popen(
                [os.path.abspath(args.raftkvd), "--id", str(p["id"]), "--peers", peers_path,
                 "--data-dir", os.path.join(tmp, "data%d" % p["id"])] + args.extra,
                stdout=log, stderr=log))
        deadline = time.time() + 30
        leader = None
        while leader is None and time.time() < deadline:
            for p in peers:
                if info(p["resp_port"]).get("role") == "leader":
                    leader = p
            time.sleep(0.1)
        if leader is None:
            sys.exit("no leader within 30 s (logs in %s)" % tmp)
        follower = next(p for p in peers if p is not leader)
        n = str(args.requests)
        rows = [
            ("SET, 1 client", leader, ["-t", "set", "-n", str(min(args.requests, 10000)),
                                       "-c", "1"]),
            ("SET, 64 clients", leader, ["-t", "set", "-n", n, "-c", "64", "-r", "100000"]),
            ("SET, 64 clients x 16 pipelined", leader,
             ["-t", "set", "-n", n, "-c", "64", "-P", "16", "-r", "100000"]),
            ("GET on a follower, 64 clients", follower,
             ["-t", "get", "-n", n, "-c", "64", "-r", "100000"]),
        ]
        print("%d nodes, fsync on, redis-benchmark against %s" %
              (args.nodes, "127.0.0.1 (RESP)"))
        for name, node, bargs in rows:
            rps, p50 = bench(node["resp_port"], bargs)
            print("  %-34s %12s req/s   p50 %s ms" % (name, rps, p50 or "?"))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
