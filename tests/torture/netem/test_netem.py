#!/usr/bin/env python3
"""test_netem.py RAFTKV_NETEM: proves raftkv-netem delays, reorders, duplicates and drops packets.

Two network namespaces joined by a veth (10.78.0.1 <-> 10.78.0.2); in the first one an iptables
rule queues every outgoing IPv4 packet of eth0 except raftkv-netem's own marked duplicates, and
raftkv-netem runs there (`ip netns exec`). The test thread lives in that namespace and talks to a
UDP and TCP echo server in the other one, so every fault shows in the echoes:

  delay     TCP ping-pong: median RTT < 5 ms, >= 45 ms under --delay 50, < 5 ms again once
            raftkv-netem has stopped (on the same connection: held packets were released at exit)
  order     UDP at 1 ms spacing: --delay 30 alone keeps the order; --jitter 20 reorders
  reorder   --delay 60 --reorder 0.25: about a quarter of the echoes come back without the delay
  duplicate --duplicate 0.5: about half the datagrams come back twice
  loss      --loss 0.3: about 30 % never come back, and raftkv-netem counted each one
  limit     --limit 20 under a burst: the excess is accepted at once (overflow), nothing is lost

Seeded (--seed) and with tolerances of several standard deviations. Exit 77 (skipped) when not
root or without ip netns, iptables or the NFQUEUE target; namespaces are always deleted.
"""
import ctypes
import os
import re
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
A_ADDR, B_ADDR, PORT = "10.78.0.1", "10.78.0.2", 7841
MARK = "0x7a6b"
TAG = "rkn%d" % os.getpid()
NS_A, NS_B = TAG + "a", TAG + "b"
SKIP = 77

SERVER = r"""
import socket, sys, threading
addr = (sys.argv[1], int(sys.argv[2]))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
u.bind(addr)
t = socket.socket()
t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
t.bind(addr)
t.listen(4)
def tcp():
    while True:
        c, _ = t.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        def echo(c=c):
            while True:
                d = c.recv(4096)
                if not d:
                    return
                c.sendall(d)
        threading.Thread(target=echo, daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
print("ready", flush=True)
while True:
    d, peer = u.recvfrom(2048)
    u.sendto(d, peer)
"""

failures = []


def log(msg):
    print("test_netem: " + msg, flush=True)


def check(cond, what):
    log(("ok:   " if cond else "FAIL: ") + what)
    if not cond:
        failures.append(what)


def sh(*cmd, check_rc=True):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if check_rc and r.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (" ".join(cmd), r.returncode, r.stderr.strip()))
    return r


def skip(why):
    log("SKIPPED: " + why)
    sys.exit(SKIP)


def enter_ns(name):
    """Moves the calling thread into namespace `name` (setns acts on the thread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/" + name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns " + name)
    finally:
        os.close(fd)


def read_line(pipe, timeout):
    ready, _, _ = select.select([pipe], [], [], timeout)
    return pipe.readline() if ready else ""


class Netem:
    """raftkv-netem running in namespace A with `args`; stop() returns its exit counters."""

    def __init__(self, binary, *args):
        self.proc = subprocess.Popen(["ip", "netns", "exec", NS_A, binary, "--seed", "7"] +
                                     list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        first = read_line(self.proc.stdout, 5)
        if not first.startswith("raftkv-netem: queue"):
            self.proc.kill()
            out, err = self.proc.communicate()
            raise RuntimeError("raftkv-netem %s did not start: %s%s%s" %
                               (" ".join(args), first, out, err))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=10)
        if self.proc.returncode != 0:
            raise RuntimeError("raftkv-netem exited %d: %s" % (self.proc.returncode, err))
        m = re.search(r"exit: (.*)", out)
        if not m:
            raise RuntimeError("raftkv-netem printed no exit counters: %r" % out)
        words = m.group(1).split()
        return {words[i]: int(words[i + 1]) for i in range(0, len(words) - 1, 2)}


def tcp_rtts(conn, count):
    rtts = []
    for k in range(count):
        t0 = time.monotonic()
        conn.sendall(struct.pack("!Q", k))
        got = b""
        while len(got) < 8:
            chunk = conn.recv(8 - len(got))
            if not chunk:
                raise RuntimeError("echo server closed the TCP connection")
            got += chunk
        rtts.append((time.monotonic() - t0) * 1000)
        time.sleep(0.005)
    return rtts


def udp_run(count, spacing_s, drain_s):
    """Sends `count` numbered datagrams; returns (received seqs in arrival order, rtts ms by seq)."""
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    u.connect((B_ADDR, PORT))
    u.setblocking(False)
    sent = {}
    order, rtt = [], {}

    def receive(until):
        while True:
            left = until - time.monotonic()
            if left <= 0:
                return
            if not select.select([u], [], [], left)[0]:
                return
            while True:
                try:
                    d = u.recv(64)
                except BlockingIOError:
                    break
                seq = struct.unpack("!I", d[:4])[0]
                order.append(seq)
                rtt.setdefault(seq, (time.monotonic() - sent[seq]) * 1000)

    start = time.monotonic()
    for k in range(count):
        sent[k] = time.monotonic()
        u.send(struct.pack("!I", k))
        receive(start + (k + 1) * spacing_s)
    receive(time.monotonic() + drain_s)
    u.close()
    return order, rtt


def inversions(order):
    """Datagrams that arrived after one sent later than them."""
    seen_max, n = -1, 0
    for s in order:
        if s < seen_max:
            n += 1
        seen_max = max(seen_max, s)
    return n


def remove_stale():
    """Deletes the namespaces (and their processes) of earlier runs killed before their cleanup:
    rkn<pid>a/b whose pid is gone."""
    for line in sh("ip", "netns", "list", check_rc=False).stdout.splitlines():
        m = re.match(r"(rkn(\d+)[ab])\b", line)
        if not m or os.path.exists("/proc/" + m.group(2)):
            continue
        for pid in sh("ip", "netns", "pids", m.group(1), check_rc=False).stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        sh("ip", "netns", "del", m.group(1), check_rc=False)
        log("removed stale namespace " + m.group(1))


def setup():
    if os.geteuid() != 0:
        skip("needs root (network namespaces, iptables, NFQUEUE)")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            skip("%s not installed (scripts/deps installs iproute2 and iptables)" % tool)
    remove_stale()
    if sh("ip", "netns", "add", NS_A, check_rc=False).returncode != 0:
        skip("ip netns add failed: no network namespaces here")
    sh("ip", "netns", "add", NS_B)
    sh("ip", "-n", NS_A, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0",
       "netns", NS_B)
    for ns, addr in ((NS_A, A_ADDR), (NS_B, B_ADDR)):
        sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
    r = sh("ip", "netns", "exec", NS_A, "iptables", "-A", "OUTPUT", "-o", "eth0", "-m", "mark",
           "!", "--mark", MARK, "-j", "NFQUEUE", "--queue-num", "0", "--queue-bypass",
           check_rc=False)
    if r.returncode != 0:
        skip("cannot add an NFQUEUE rule (kernel without CONFIG_NETFILTER_XT_TARGET_NFQUEUE?): " +
             r.stderr.strip())


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: test_netem.py PATH-TO-raftkv-netem", file=sys.stderr)
        return 2
    binary = os.path.realpath(sys.argv[1])
    # SIGTERM (e.g. a ctest timeout) runs the cleanup in `finally` too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    server = netem = None
    t_start = time.monotonic()
    try:
        setup()
        server = subprocess.Popen(["ip", "netns", "exec", NS_B, sys.executable, "-c", SERVER,
                                   B_ADDR, str(PORT)], stdout=subprocess.PIPE, text=True)
        if read_line(server.stdout, 10).strip() != "ready":
            raise RuntimeError("echo server did not start")
        enter_ns(NS_A)

        # Delay, on one TCP connection that lives through start and stop.
        conn = socket.create_connection((B_ADDR, PORT), timeout=5)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        base = statistics.median(tcp_rtts(conn, 20))
        check(base < 5, "no netem (queue bypassed): TCP median RTT %.2f ms < 5" % base)
        netem = Netem(binary, "--delay", "50")
        delayed = statistics.median(tcp_rtts(conn, 20))
        counters = netem.stop()
        netem = None
        check(45 <= delayed < 80, "--delay 50: TCP median RTT %.1f ms in [45, 80)" % delayed)
        check(counters["delayed"] >= 20 and counters["dropped"] == 0,
              "--delay 50: counters %s" % counters)
        after = statistics.median(tcp_rtts(conn, 20))
        check(after < 5, "after SIGTERM, same connection: TCP median RTT %.2f ms < 5" % after)
        conn.close()

        # Order: a fixed delay keeps it, a jitter larger than the spacing does not.
        netem = Netem(binary, "--delay", "30")
        order, rtt = udp_run(300, 0.001, 0.3)
        counters = netem.stop()
        netem = None
        med = statistics.median(rtt.values())
        check(len(set(order)) == 300 and inversions(order) == 0 and med >= 28,
              "--delay 30: %d/300 back, %d out of order, median RTT %.1f ms (want 300, 0, >= 28)"
              % (len(set(order)), inversions(order), med))
        netem = Netem(binary, "--delay", "30", "--jitter", "20")
        order, rtt = udp_run(300, 0.001, 0.3)
        counters = netem.stop()
        netem = None
        inv = inversions(order)
        check(len(set(order)) == 300 and inv >= 60 and counters["reordered"] >= 60,
              "--delay 30 --jitter 20 at 1 ms spacing: %d/300 back, %d out of order, netem "
              "counted %d reordered (want 300, >= 60, >= 60)"
              % (len(set(order)), inv, counters["reordered"]))
        netem = Netem(binary, "--delay", "30", "--jitter", "10", "--dist", "normal")
        order, rtt = udp_run(200, 0.001, 0.3)
        netem.stop()
        netem = None
        med = statistics.median(rtt.values())
        check(len(set(order)) == 200 and inversions(order) >= 20 and 25 <= med < 40,
              "--jitter 10 --dist normal: %d/200 back, %d out of order, median %.1f ms"
              % (len(set(order)), inversions(order), med))

        # netem's reorder: a fraction skips the delay.
        netem = Netem(binary, "--delay", "60", "--reorder", "0.25")
        order, rtt = udp_run(400, 0.002, 0.3)
        counters = netem.stop()
        netem = None
        fast = sum(1 for v in rtt.values() if v < 20) / 400
        check(len(rtt) == 400 and 0.15 <= fast <= 0.35 and inversions(order) > 0,
              "--delay 60 --reorder 0.25: %.1f %% came back in < 20 ms (want 15-35 %%), %d out "
              "of order" % (100 * fast, inversions(order)))

        # Duplication.
        netem = Netem(binary, "--duplicate", "0.5")
        order, _ = udp_run(400, 0.002, 0.3)
        counters = netem.stop()
        netem = None
        extra = len(order) - len(set(order))
        check(len(set(order)) == 400 and 140 <= extra <= 260 and
              abs(counters["duplicated"] - extra) <= 2,
              "--duplicate 0.5: %d/400 back, %d duplicates (want 140-260), netem counted %d"
              % (len(set(order)), extra, counters["duplicated"]))

        # Loss.
        netem = Netem(binary, "--loss", "0.3")
        order, _ = udp_run(500, 0.001, 0.3)
        counters = netem.stop()
        netem = None
        lost = 500 - len(set(order))
        check(110 <= lost <= 190 and lost == counters["dropped"] and len(order) == len(set(order)),
              "--loss 0.3: %d/500 lost (want 110-190), netem counted %d dropped"
              % (lost, counters["dropped"]))

        # Bounded memory: beyond --limit, packets go through at once; none is lost.
        netem = Netem(binary, "--delay", "300", "--limit", "20")
        order, _ = udp_run(200, 0.0002, 0.5)
        counters = netem.stop()
        netem = None
        check(len(set(order)) == 200 and counters["overflow"] >= 100 and
              counters["delayed"] + counters["overflow"] == counters["queued"],
              "--limit 20, burst of 200: %d/200 back, counters %s" % (len(set(order)), counters))
    except RuntimeError as e:
        failures.append(str(e))
        log("FAIL: " + str(e))
    finally:
        if netem:
            netem.proc.kill()
            netem.proc.wait()
        if server:
            server.kill()
            server.wait()
        for ns in (NS_A, NS_B):
            sh("ip", "netns", "del", ns, check_rc=False)
    log("%s in %.1f s" % ("FAILED: " + "; ".join(failures) if failures else "passed",
                          time.monotonic() - t_start))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
