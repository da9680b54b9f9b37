"""What the process tests of raftkvd share: a temporary directory, the raftkvd processes started
in it, and fail/check/wait that print the nodes' log tails when a check fails (Python stdlib)."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from resp import Resp, RespError


class Harness:
    def __init__(self, prefix, wait_s=30, log_tail=2500):
        self.tmp = tempfile.mkdtemp(prefix=prefix)
        self.procs = {}  # node number -> Popen; its log is node<N>.log in tmp
        self.wait_s = wait_s
        self.log_tail = log_tail

    def log_path(self, i):
        return os.path.join(self.tmp, "node%d.log" % i)

    def fail(self, msg):
        print("FAIL: " + msg)
        for i in sorted(self.procs):
            try:
                with open(self.log_path(i)) as f:
                    print("---- log of node %d (tail) ----\n%s" % (i, f.read()[-self.log_tail:]))
            except OSError:
                pass
        sys.exit(1)

    def check(self, cond, msg):
        if not cond:
            self.fail(msg)

    def wait(self, what, pred, step=0.1):
        """pred() until it returns something true (returned), or fail after wait_s seconds."""
        deadline = time.time() + self.wait_s
        while time.time() < deadline:
            got = pred()
            if got:
                return got
            time.sleep(step)
        self.fail("timed out waiting for " + what)

    def kill(self, i):
        """kill -9 of node i's process, waited for."""
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()

    def log(self, i):
        """Node i's log so far."""
        with open(self.log_path(i)) as f:
            return f.read()

    def cleanup(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)


def resp_call(port, *args, timeout=15):
    """One command on a new connection: the reply, or "ERR:<text>" for an error reply."""
    c = Resp(port, timeout=timeout)
    try:
        return c.call(*args)
    except RespError as e:
        return "ERR:" + str(e)
    finally:
        c.close()


def member(h, raftkv, peers, *args):
    """`raftkv --peers PEERS member ARGS...` as (exit code, stdout, stderr), run again while it
    exits 3 (nothing changed: a voter not heard from since a restart, an election, a change in
    progress), as an operator would, until h.wait_s runs out."""
    last = []

    def attempt():
        r = subprocess.run([raftkv, "--peers", peers, "member"] + list(args), capture_output=True,
                           text=True, timeout=60)
        last[:] = [r.returncode, r.stdout, r.stderr]
        return r.returncode != 3

    h.wait("member %s" % " ".join(args), attempt)
    return tuple(last)


def try_call(port, *args, timeout=5):
    """resp_call, or None while nothing listens on port (a node starting)."""
    try:
        return resp_call(port, *args, timeout=timeout)
    except OSError:
        return None


def loopback_nodes(count, ports):
    """Peers-file entries of nodes 1..count on 127.0.0.1, three ports each from ports, by id."""
    return {i: {"id": i, "host": "127.0.0.1", "peer_port": ports[3 * i - 3],
                "client_port": ports[3 * i - 2], "resp_port": ports[3 * i - 1]}
            for i in range(1, count + 1)}


def set_many(port, prefix, n):
    """n pipelined SETs prefix<k> = v<k> on one connection: the replies, "ERR:..." for errors."""
    c = Resp(port, timeout=30)
    c.send_many([("SET", "%s%d" % (prefix, k), "v%d" % k) for k in range(n)])
    got = []
    for _ in range(n):
        try:
            got.append(c.reply())
        except RespError as e:
            got.append("ERR:" + str(e))
    c.close()
    return got
