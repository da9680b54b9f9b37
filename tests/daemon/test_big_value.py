#!/usr/bin/env python3
"""Values up to a raised max_value_bytes are accepted end to end (label integration).

A one-node cluster runs with --max-value-bytes 33554432 (32 MiB, above the Raft core's default
16 MiB entry limit): a 20 MiB value and a value of exactly 32 MiB must be stored and read back
whole, a value one byte over the limit must be refused with an error, and the node must keep
serving. Skips when raftkvd was built without the client front-end.

usage: test_big_value.py PATH/TO/raftkvd
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Resp, RespError  # noqa: E402
import single_node  # noqa: E402

LIMIT = 32 << 20


def main():
    raftkvd = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="raftkv-daemon-bigvalue-")
    proc, resp_port, log_path, frontend = single_node.start(
        raftkvd, tmp, ["--max-value-bytes", str(LIMIT)])
    try:
        if not frontend:
            print("SKIP: raftkvd built without the client front-end")
            return
        c = Resp(resp_port, timeout=60)
        for name, size in (("twenty", 20 << 20), ("limit", LIMIT)):
            value = bytes([65 + size % 26]) * size
            try:
                reply = c.call("SET", name, value)
            except RespError as e:
                reply = e
            if reply != "OK":
                sys.exit("FAIL: SET of %d bytes (limit %d) answered %r:\n%s" %
                         (size, LIMIT, reply, open(log_path).read()[-2000:]))
            if c.call("GET", name) != value:
                sys.exit("FAIL: GET of the %d-byte value did not return it whole" % size)
            print("ok: %d-byte value stored and read back" % size)
        try:
            reply = Resp(resp_port, timeout=60).call("SET", "over", b"x" * (LIMIT + 1))
        except (RespError, ConnectionError, OSError) as e:
            reply = e
        if reply == "OK":
            sys.exit("FAIL: a value over max_value_bytes was stored")
        print("ok: %d bytes refused: %s" % (LIMIT + 1, reply))
        if Resp(resp_port).call("SET", "after", "v") != "OK" or proc.poll() is not None:
            sys.exit("FAIL: the node stopped serving after the refused value")
    finally:
        single_node.stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")


if __name__ == "__main__":
    main()
