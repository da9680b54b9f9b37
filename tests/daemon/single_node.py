"""One raftkvd as a one-node cluster, for the daemon tests that need no peers. Standard library
only."""
import os
import subprocess
import sys
import time

from peers import write_peers
from resp import info


def start(raftkvd, tmp, args=(), preexec_fn=None, wait_s=20):
    """Starts node 1 of a one-node cluster in tmp (log tmp/node1.log, data tmp/data) and waits
    until it leads; exits the test with FAIL if it does not. Returns (proc, resp_port, log_path,
    frontend): frontend is False when raftkvd was built without the client front-ends."""
    peers_path = os.path.join(tmp, "peers.json")
    resp_port = write_peers(peers_path, 1)[0]["resp_port"]
    log_path = os.path.join(tmp, "node1.log")
    with open(log_path, "w") as log:
        proc = subprocess.Popen([raftkvd, "--id", "1", "--peers", peers_path, "--data-dir",
                                 os.path.join(tmp, "data"), *args], stdout=log, stderr=log,
                                preexec_fn=preexec_fn)
    deadline = time.time() + wait_s
    while info(resp_port).get("role") != "leader":
        if time.time() > deadline or proc.poll() is not None:
            stop(proc)
            sys.exit("FAIL: the single node did not become leader:\n" + open(log_path).read())
        time.sleep(0.05)
    with open(log_path) as f:
        frontend = "client front-ends not built in" not in f.read()
    return proc, resp_port, log_path, frontend


def stop(proc):
    """kill -9 and reap, if it still runs."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()
