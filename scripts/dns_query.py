"""Ask one DNS server for the A record of one name; print the address, exit 1 if none.

Test infrastructure for the local cluster (scripts/local-cluster.sh, tests/e2e): the node has
no `dig`, and the check must go through the kube-dns Service address the pods use.

    python3 scripts/dns_query.py NAME SERVER
"""

from __future__ import annotations

import random
import socket
import struct
import sys


def query(name: str, server: str, timeout: float = 2.0) -> list[str]:
    """The IPv4 addresses `server` answers for `name` (an empty list for NXDOMAIN)."""
    ident = random.randrange(1 << 16)  # noqa: S311 - a query id, not a secret
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0) + question + struct.pack(">HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.sendto(packet, (server, 53))
        reply, _ = sock.recvfrom(4096)
    rid, _flags, _qd, ancount = struct.unpack(">HHHH", reply[:8])
    if rid != ident:
        raise OSError("reply to another query")
    offset = 12 + len(question) + 4
    addresses = []
    for _ in range(ancount):
        if reply[offset] & 0xC0 == 0xC0:  # compressed name pointer
            offset += 2
        else:
            while reply[offset]:
                offset += reply[offset] + 1
            offset += 1
        rtype, _cls, _ttl, length = struct.unpack(">HHIH", reply[offset : offset + 10])
        offset += 10
        if rtype == 1 and length == 4:
            addresses.append(socket.inet_ntoa(reply[offset : offset + 4]))
        offset += length
    return addresses


if __name__ == "__main__":
    found = query(sys.argv[1], sys.argv[2])
    print("\n".join(found))
    sys.exit(0 if found else 1)
