"""Loopback ports and a peers.json for the daemon tests and figure scripts that start real raftkvd
processes. Standard library only."""
import json
import socket


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1: bound together (so they differ), then released."""
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def write_peers(path, nodes):
    """Writes to path a peers.json of nodes ids 1..nodes on free loopback ports (peer, text
    client and RESP port each); returns the list it wrote."""
    ports = free_ports(3 * nodes)
    peers = [{"id": i + 1, "host": "127.0.0.1", "peer_port": ports[3 * i],
              "client_port": ports[3 * i + 1], "resp_port": ports[3 * i + 2]}
             for i in range(nodes)]
    with open(path, "w") as f:
        json.dump(peers, f)
    return peers
