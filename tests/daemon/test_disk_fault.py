#!/usr/bin/env python3
"""raftkvd --test-disk-fault: a failed sync stops the node; a write torn by a crash is cut at restart
(label integration).

A one-node cluster elects itself and persists its first entry; the injected fdatasync failure must
make it log a FATAL line naming the fsync and exit 1 (it must never go on after a failed fsync).
A bad spec must be refused with exit 2 and a message naming the field.
With torn-crash:1 the node's first WAL write is cut in half and the process kills itself (SIGKILL):
restarted with a sound disk it must log the torn tail it cut, elect itself and serve a write.

A follower's failed sync (it saves on its loop thread, node.c save_inline) must stop it the same
way, while the two other nodes keep serving writes.

Both followers' disks stalling at once for longer than an election timeout (fsync-stall:N:800)
must cost only latency: the leader keeps its leadership (no step-down, no new term) and writes go
on once the disks are back.

A disk that fills up while a snapshot is written must stop the node too (exit 1, FATAL).

usage: test_disk_fault.py PATH/TO/raftkvd
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peers import write_peers  # noqa: E402


def text_set(port, key, value):
    """One seed-protocol set; the reply's first line ("OK <version>" when stored), or "" when the
    node does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as c:
            c.sendall(b"set %s 0 %d\r\n%s\r\n" % (key, len(value), value))
            return c.recv(200).decode(errors="replace").splitlines()[0]
    except (OSError, IndexError):
        return ""


class Nodes:
    """Three raftkvd processes on one fresh peers file in tmp; tag names their files."""

    def __init__(self, raftkvd, tmp, tag, common=()):
        self.raftkvd, self.tmp, self.tag, self.common = raftkvd, tmp, tag, list(common)
        self.peers_path = os.path.join(tmp, "peers-%s.json" % tag)
        self.peers = write_peers(self.peers_path, 3)
        self.procs, self.logs = {}, {}

    def start(self, i, extra=()):
        self.logs[i] = os.path.join(self.tmp, "%s%d.log" % (self.tag, i))
        with open(self.logs[i], "w") as log:
            self.procs[i] = subprocess.Popen(
                [self.raftkvd, "--id", str(i), "--peers", self.peers_path, "--data-dir",
                 os.path.join(self.tmp, "%s%d" % (self.tag, i))] + self.common + list(extra),
                stdout=log, stderr=subprocess.STDOUT)

    def log(self, i):
        with open(self.logs[i]) as f:
            return f.read()

    def kill_all(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()


def torn_crash(base, tmp, client_port):
    data = os.path.join(tmp, "data")
    shutil.rmtree(data, ignore_errors=True)
    try:
        r = subprocess.run(base + ["--test-disk-fault=torn-crash:1"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        sys.exit("FAIL: raftkvd with torn-crash:1 still running after 30 s")
    if r.returncode != -9 or "TEST torn-crash" not in r.stdout:
        sys.exit("FAIL: expected death by SIGKILL after a torn write, got exit %d:\n%s" %
                 (r.returncode, r.stdout))
    print("ok: killed mid-write: " + [l for l in r.stdout.splitlines() if "TEST torn-crash:" in l][0])
    log_path = os.path.join(tmp, "restart.log")
    with open(log_path, "w") as log:
        p = subprocess.Popen(base, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        reply = ""
        while time.monotonic() < deadline and not reply.startswith("OK"):
            time.sleep(0.2)
            reply = text_set(client_port, b"after-torn", b"ok")
        text = open(log_path).read()
        if not reply.startswith("OK"):
            sys.exit("FAIL: restarted node did not serve a write within 20 s (reply %r):\n%s" %
                     (reply, text))
        torn = [l for l in text.splitlines() if "torn tail" in l]
        if not torn:
            sys.exit("FAIL: recovery did not report the torn tail it cut:\n" + text)
        print("ok: restart cut the tail and served a write: " + torn[0])
    finally:
        p.terminate()
        p.wait(timeout=15)


def follower_fatal(raftkvd, tmp):
    nodes = Nodes(raftkvd, tmp, "n", ["--forward-to-leader"])
    peers, procs = nodes.peers, nodes.procs
    try:
        nodes.start(1)
        nodes.start(2)
        deadline = time.monotonic() + 20
        while not text_set(peers[0]["client_port"], b"before", b"1").startswith("OK"):
            if time.monotonic() > deadline:
                sys.exit("FAIL: nodes 1 and 2 did not serve a write within 20 s")
            time.sleep(0.2)
        # Node 3 joins as a follower; its second sync (a Ready of entries it is catching up on)
        # fails. It must not become leader first: a majority with a leader exists already.
        nodes.start(3, ["--test-disk-fault=fsync-eio:2"])
        for k in range(200):
            text_set(peers[k % 2]["client_port"], b"k%d" % k, b"v")
            if procs[3].poll() is not None:
                break
        try:
            rc = procs[3].wait(timeout=20)
        except subprocess.TimeoutExpired:
            sys.exit("FAIL: follower with fsync-eio:2 still running after 200 writes and 20 s")
        text = nodes.log(3)
        fatal = [line for line in text.splitlines() if "FATAL" in line]
        if rc != 1 or len(fatal) != 1 or "fsync" not in fatal[0] or "role follower -> leader" in text:
            sys.exit("FAIL: expected the follower to exit 1 with one FATAL line naming fsync, got "
                     "exit %d:\n%s" % (rc, text))
        print("ok: follower exit 1: " + fatal[0].split(" ", 1)[1])
        reply = text_set(peers[0]["client_port"], b"after", b"2") or \
            text_set(peers[1]["client_port"], b"after", b"2")
        if not reply.startswith("OK"):
            sys.exit("FAIL: nodes 1 and 2 stopped serving writes after node 3 died: %r" % reply)
        print("ok: the other two nodes still serve writes")
    finally:
        nodes.kill_all()


def writer(port, stop, counts):
    """Sequential writes on one connection until stop is set; counts[0] = writes acknowledged."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        k = 0
        while not stop.is_set():
            c.sendall(b"set w%d 0 3\r\nval\r\n" % (k % 500))
            line = b""
            while not line.endswith(b"\r\n"):
                chunk = c.recv(100)
                if not chunk:
                    return
                line += chunk
            if line.startswith(b"OK"):
                counts[0] += 1
            k += 1


def followers_stall(raftkvd, tmp):
    nodes = Nodes(raftkvd, tmp, "s")
    peers = nodes.peers
    try:
        # Node 1 (default timeouts: election 300-600 ms, check-quorum 1.2 s) times out first, so
        # it leads. Both followers' 300th sync stalls for 800 ms: their loop threads, which save
        # inline and answer heartbeats, go silent for longer than an election timeout.
        nodes.start(1)
        for i in (2, 3):
            nodes.start(i, ["--election-timeout-min-ms", "2000", "--election-timeout-max-ms", "3000",
                      "--test-disk-fault=fsync-stall:300:800"])
        deadline = time.monotonic() + 20
        while not text_set(peers[0]["client_port"], b"first", b"1").startswith("OK"):
            if time.monotonic() > deadline:
                sys.exit("FAIL: node 1 did not lead and serve a write within 20 s")
            time.sleep(0.2)
        stop, counts = threading.Event(), [0]
        t = threading.Thread(target=writer, args=(peers[0]["client_port"], stop, counts))
        t.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if all("TEST fsync-stall" in nodes.log(i) for i in (2, 3)):
                break
            time.sleep(0.1)
        else:
            stop.set()
            t.join()
            sys.exit("FAIL: the followers' syncs did not reach the stall in 30 s (%d writes)" %
                     counts[0])
        before = counts[0]
        time.sleep(1.5)  # the stalls are over; writes must flow again
        stop.set()
        t.join()
        after = counts[0]
        text = nodes.log(1)
        changes = [l for l in text.splitlines() if "leader -> follower" in l or "term 1 -> 2" in l]
        if changes:
            sys.exit("FAIL: the leader lost its leadership while its followers' disks stalled:\n" +
                     text)
        if after <= before:
            sys.exit("FAIL: no write acknowledged after the stalls (%d before, %d after)" %
                     (before, after))
        print("ok: both followers stalled 800 ms; node 1 stayed leader in term 1, %d writes, %d "
              "after the stalls" % (after, after - before))
    finally:
        nodes.kill_all()


def snapshot_enospc(raftkvd, tmp):
    """A full disk met while writing a snapshot stops the node like one met by the WAL (snap.h:
    ENOSPC is fatal). 19 writes of 200 KB after the election entry put about 6-7 MB through the
    WAL, and the snapshot taken at entry 20 (3.8 MB) crosses the 8.5 MB limit part way through."""
    peers_path = os.path.join(tmp, "peers-snap.json")
    port = write_peers(peers_path, 1)[0]["client_port"]
    log_path = os.path.join(tmp, "snap-enospc.log")
    with open(log_path, "w") as log:
        p = subprocess.Popen([raftkvd, "--id", "1", "--peers", peers_path, "--data-dir",
                              os.path.join(tmp, "snap-enospc"), "--snapshot-threshold", "20",
                              "--test-disk-fault=enospc:8500000"],
                             stdout=log, stderr=subprocess.STDOUT)
    try:
        value = b"v" * 200000
        deadline = time.monotonic() + 20
        while not text_set(port, b"k0", value).startswith("OK"):
            if time.monotonic() > deadline or p.poll() is not None:
                sys.exit("FAIL: the node did not serve a write within 20 s:\n" + open(log_path).read())
            time.sleep(0.2)
        for k in range(1, 19):
            reply = text_set(port, b"k%d" % k, value)
            if not reply.startswith("OK"):
                sys.exit("FAIL: write %d of 19 refused (%r) before the snapshot:\n%s" %
                         (k + 1, reply, open(log_path).read()))
        try:
            rc = p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sys.exit("FAIL: the node still runs 20 s after its snapshot met a full disk:\n" +
                     open(log_path).read())
        fatal = [l for l in open(log_path).read().splitlines() if "FATAL" in l]
        if rc != 1 or len(fatal) != 1 or "snapshot" not in fatal[0]:
            sys.exit("FAIL: expected exit 1 and one FATAL line naming the snapshot, got exit %d:\n%s"
                     % (rc, open(log_path).read()))
        print("ok: snapshot on a full disk, exit 1: " + fatal[0].split(" ", 1)[1])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def main():
    raftkvd = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="raftkv-daemon-diskfault-")
    try:
        peers_path = os.path.join(tmp, "peers.json")
        client_port = write_peers(peers_path, 1)[0]["client_port"]
        base = [raftkvd, "--id", "1", "--peers", peers_path,
                "--data-dir", os.path.join(tmp, "data")]
        try:
            r = subprocess.run(base + ["--test-disk-fault=fsync-eio:1"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            sys.exit("FAIL: raftkvd with fsync-eio:1 still running after 30 s")
        fatal = [line for line in r.stdout.splitlines() if "FATAL" in line]
        if r.returncode != 1 or len(fatal) != 1 or "fsync" not in fatal[0]:
            sys.exit("FAIL: expected exit 1 and one FATAL line naming fsync, got exit %d:\n%s" %
                     (r.returncode, r.stdout))
        print("ok: exit 1: " + fatal[0])
        r = subprocess.run(base + ["--test-disk-fault=fsync-eio:0"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=30)
        if r.returncode != 2 or "test_disk_fault" not in r.stdout:
            sys.exit("FAIL: a bad --test-disk-fault must be refused (exit 2), got exit %d:\n%s" %
                     (r.returncode, r.stdout))
        print("ok: bad spec refused: " + r.stdout.strip().splitlines()[-1])
        torn_crash(base, tmp, client_port)
        snapshot_enospc(raftkvd, tmp)
        follower_fatal(raftkvd, tmp)
        followers_stall(raftkvd, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
