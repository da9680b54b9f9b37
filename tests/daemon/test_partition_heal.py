#!/usr/bin/env python3
"""A follower cut off by a network partition is back within seconds of the heal (label
integration).

3 raftkvd in a private network namespace (unshare -n), on 127.0.0.1-3. iptables drops every packet
to and from one follower for 30 s while the leader keeps writing. A peer connection carrying
heartbeats is never idle, so keepalive cannot end it; without TCP_USER_TIMEOUT it survives the
partition and the follower hears again only at TCP's next retransmission, backed off to tens of
seconds. After the heal the follower must serve the last key written within 8 s.
Skips (exit 0) where a network namespace cannot be made (not root, no unshare/iptables).

usage: test_partition_heal.py PATH/TO/raftkvd
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

PARTITION_S = 30
HEAL_LIMIT_S = 8
BASE = 7400


def text(node, payload, lines=1, timeout=1.0):
    """One request to node's text port; the reply ("" when there is none in time)."""
    try:
        with socket.create_connection(("127.0.0.%d" % node, BASE + 10 + node), timeout=timeout) as s:
            s.sendall(payload)
            buf, end = b"", time.monotonic() + timeout
            while buf.count(b"\r\n") < lines and time.monotonic() < end:
                chunk = s.recv(65536)
                if not chunk:
                    break
                buf += chunk
            return buf
    except OSError:
        return b""


def iptables(op, node):
    for rule in (["-s", "127.0.0.%d" % node], ["-d", "127.0.0.%d" % node]):
        subprocess.run(["iptables", op, "INPUT", "-i", "lo"] + rule + ["-j", "DROP"], check=True)


def main():
    raftkvd = os.path.abspath(sys.argv[1])
    if os.environ.get("RAFTKV_IN_NETNS") != "1":
        if os.geteuid() != 0 or not shutil.which("unshare") or not shutil.which("iptables"):
            print("SKIP: needs root, unshare and iptables")
            return
        env = dict(os.environ, RAFTKV_IN_NETNS="1")
        r = subprocess.run(["unshare", "-n", sys.executable, os.path.abspath(__file__), raftkvd],
                           env=env)
        sys.exit(r.returncode)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    tmp = tempfile.mkdtemp(prefix="raftkv-daemon-partition-")
    peers = [{"id": i, "host": "127.0.0.%d" % i, "peer_port": BASE + i, "client_port": BASE + 10 + i,
              "resp_port": BASE + 20 + i} for i in (1, 2, 3)]
    with open(os.path.join(tmp, "peers.json"), "w") as f:
        json.dump(peers, f)
    procs, cut = {}, None
    try:
        for i in (1, 2, 3):
            with open(os.path.join(tmp, "node%d.log" % i), "w") as log:
                procs[i] = subprocess.Popen(
                    [raftkvd, "--id", str(i), "--peers", os.path.join(tmp, "peers.json"),
                     "--data-dir", os.path.join(tmp, "data%d" % i)], stdout=log, stderr=log)
        leader, deadline = None, time.monotonic() + 20
        while leader is None and time.monotonic() < deadline:
            for i in (1, 2, 3):
                if text(i, b"set first 0 1\r\nx\r\n").startswith(b"OK"):
                    leader = i
            time.sleep(0.2)
        if leader is None:
            sys.exit("FAIL: no leader within 20 s")
        cut = 3 if leader != 3 else 2
        iptables("-I", cut)
        k, start = 0, time.monotonic()
        while time.monotonic() - start < PARTITION_S:
            if text(leader, b"set p%d 0 1\r\ny\r\n" % k).startswith(b"OK"):
                k += 1
            time.sleep(0.5)
        iptables("-D", cut)
        victim, cut, healed = cut, None, time.monotonic()
        if k == 0:
            sys.exit("FAIL: the leader and the other follower served no write during the partition")
        while time.monotonic() - healed < HEAL_LIMIT_S:
            if text(victim, b"get p%d\r\n" % (k - 1), lines=2).startswith(b"VALUE"):
                break
            time.sleep(0.1)
        else:
            logs = "".join(open(os.path.join(tmp, "node%d.log" % i)).read()[-1500:] for i in (1, 2, 3))
            sys.exit("FAIL: the follower did not serve key p%d within %d s of the heal:\n%s" %
                     (k - 1, HEAL_LIMIT_S, logs))
        print("ok: partitioned %d s (%d writes), the follower served the last one %.1f s after "
              "the heal" % (PARTITION_S, k, time.monotonic() - healed))
    finally:
        if cut is not None:
            iptables("-D", cut)
        for p in procs.values():
            p.kill()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
