#!/usr/bin/env python3
"""A storage write failure stops raftkvd at once (label integration).

A one-node cluster runs with RLIMIT_FSIZE = 1 MiB (and SIGXFSZ ignored, so the write fails with
EFBIG instead of killing the process). A first small write succeeds; a 2 MiB value needs a WAL
record larger than any file may grow, so the write fails: the node must log ONE "FATAL" line and
exit 1 without acknowledging the write (fsyncgate: never continue after a failed write).
Skips when raftkvd was built without the client front-end.

usage: test_fatal.py PATH/TO/raftkvd
"""
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Resp, RespError  # noqa: E402
import single_node  # noqa: E402


def limit_file_size():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))


def main():
    raftkvd = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="raftkv-daemon-fatal-")
    proc, resp_port, log_path, frontend = single_node.start(
        raftkvd, tmp, ["--segment-bytes", "65536", "--max-value-bytes", "4194304"],
        preexec_fn=limit_file_size)
    try:
        if not frontend:
            print("SKIP: raftkvd built without the client front-end")
            return
        c = Resp(resp_port)
        if c.call("SET", "small", "v") != "OK":
            sys.exit("FAIL: a small write was refused")
        reply = None
        try:
            reply = c.call("SET", "big", b"x" * (2 << 20))
        except (RespError, ConnectionError, OSError) as e:
            reply = e
        if reply == "OK":
            sys.exit("FAIL: a write the storage could not persist was acknowledged")
        try:
            rc = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            sys.exit("FAIL: the node kept running after a failed write:\n" + open(log_path).read())
        fatal = [l for l in open(log_path).read().splitlines() if "FATAL" in l]
        if rc != 1 or len(fatal) != 1:
            sys.exit("FAIL: exit %s, FATAL lines %r" % (rc, fatal))
        print("ok: failed WAL write -> exit 1 with: %s" % fatal[0].split(" ", 2)[2])
    finally:
        single_node.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
