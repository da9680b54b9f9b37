#!/usr/bin/env python3
"""raftkvd --test-disk-fault=fsync-eio:1 stops the node at its first sync (label integration).

A one-node cluster elects itself and persists its first entry; the injected fdatasync failure must
make it log a FATAL line naming the fsync and exit 1 (it must never go on after a failed fsync).
A bad spec must be refused with exit 2 and a message naming the field.

usage: test_disk_fault.py PATH/TO/raftkvd
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile


def main():
    raftkvd = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="raftkv-daemon-diskfault-")
    try:
        socks = [socket.socket() for _ in range(3)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        ports = [s.getsockname()[1] for s in socks]
        for s in socks:
            s.close()
        peers_path = os.path.join(tmp, "peers.json")
        with open(peers_path, "w") as f:
            json.dump([{"id": 1, "host": "127.0.0.1", "peer_port": ports[0],
                        "client_port": ports[1], "resp_port": ports[2]}], f)
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
