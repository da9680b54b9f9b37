#!/usr/bin/env python3
"""Soak: kill -9 at random moments never loses an acknowledged write (label soak).

3 raftkvd with a small snapshot threshold; 4 writer threads keep writing through random nodes
(followers forward) while, every 0.3-1.5 s, a random node is killed with SIGKILL and restarted
(sometimes two at once, so the cluster also loses its majority for a moment). Each writer owns its
keys, so "the last acknowledged value" of a key is well defined. At the end every node must
return, for every key, that value or one whose outcome was unknown. Bounded by --rounds; every process is killed at the end.

usage: test_chaos.py PATH/TO/raftkvd [--rounds 30] [--seed N]
"""
import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Resp, RespError, info  # noqa: E402
from peers import write_peers  # noqa: E402

procs = {}
lock = threading.Lock()
acked, unknown = {}, {}
stop = threading.Event()


def get_retrying(c, key):
    """GET, asked again after a transient error reply (not a lost write)."""
    for attempt in range(3):
        try:
            return c.call("GET", key)
        except RespError:
            if attempt == 2:
                raise
            time.sleep(0.5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raftkvd")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    print("seed %d" % args.seed)
    tmp = tempfile.mkdtemp(prefix="raftkv-chaos-")
    peers_path = os.path.join(tmp, "peers.json")
    peers = write_peers(peers_path, 3)

    def start(i):
        log = open(os.path.join(tmp, "node%d.log" % i), "a")
        procs[i] = subprocess.Popen(
            [os.path.abspath(args.raftkvd), "--id", str(i), "--peers", peers_path, "--data-dir",
             os.path.join(tmp, "data%d" % i), "--snapshot-threshold", "300",
             "--snapshot-trailing", "100", "--write-timeout-ms", "1500"],
            stdout=log, stderr=log)

    def writer(w):
        r = random.Random(args.seed * 31 + w)
        n = 0
        while not stop.is_set():
            node = r.choice(peers)
            try:
                c = Resp(node["resp_port"], timeout=3.0)
            except OSError:
                time.sleep(0.05)
                continue
            try:
                while not stop.is_set():
                    key = "k%d-%d" % (w, r.randrange(50))  # one writer per key: a clear order
                    value = "w%d-%d" % (w, n)
                    n += 1
                    try:
                        ok = c.call("SET", key, value) == "OK"
                    except RespError:
                        ok = False
                    with lock:
                        # An unknown outcome may still apply later, even after a later write
                        # was acknowledged (a request delayed in a forwarding link): it stays
                        # allowed for good.
                        if ok:
                            acked[key] = value
                        else:
                            unknown.setdefault(key, set()).add(value)
                    if not ok:
                        time.sleep(0.02)
            except (OSError, ConnectionError):
                with lock:
                    unknown.setdefault(key, set()).add(value)
            finally:
                c.close()

    try:
        for i in (1, 2, 3):
            start(i)
        threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for rnd_no in range(args.rounds):
            time.sleep(rnd.uniform(0.3, 1.5))
            victims = rnd.sample([1, 2, 3], 2 if rnd.random() < 0.2 else 1)
            for v in victims:
                procs[v].send_signal(signal.SIGKILL)
                if procs[v].wait() != -signal.SIGKILL:  # it died on its own: a crash
                    print("FAIL: seed %d: node %d had exited with %s before the kill; logs in %s"
                          % (args.seed, v, procs[v].returncode, tmp))
                    sys.exit(1)
            time.sleep(rnd.uniform(0.0, 0.8))
            for v in victims:
                start(v)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline:
            views = [info(p["resp_port"]) for p in peers]
            if all(v.get("leader") == views[0].get("leader") and v.get("leader", "0") != "0"
                   for v in views):
                break
            time.sleep(0.2)
        for p in peers:
            c = Resp(p["resp_port"], timeout=15.0)
            for key, value in sorted(acked.items()):
                try:
                    got = get_retrying(c, key)
                except (OSError, ConnectionError, RespError) as e:
                    print("FAIL: seed %d: node %d: GET %s: %r" % (args.seed, p["id"], key, e))
                    for q in peers:
                        print("node %d: %s" % (q["id"], {k: v for k, v in
                                                         info(q["resp_port"]).items()
                                                         if k in ("role", "term", "leader",
                                                                  "commit", "applied",
                                                                  "last_index", "peer_1",
                                                                  "peer_2", "peer_3")}))
                    print("logs kept in %s" % tmp)
                    sys.exit(1)
                allowed = {value.encode()} | {v.encode() for v in unknown.get(key, ())}
                if got not in allowed:
                    print("FAIL: seed %d: node %d: GET %s = %r, acknowledged %r" %
                          (args.seed, p["id"], key, got, value))
                    print("logs kept in %s" % tmp)
                    sys.exit(1)
            c.close()
        print("ok: %d rounds of kill -9, %d keys acknowledged, all intact on every node" %
              (args.rounds, len(acked)))
    finally:
        stop.set()
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
    shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
