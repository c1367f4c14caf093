#!/usr/bin/env python3
"""Captures real Serf 0.9.4 traffic for the codec tests (standard library only).

Starts `serf agent` on loopback, joins it with the hand-written push-pull request of
memberlist-wire.md §2.4 (node "rust1", address 127.0.0.1, our UDP port), saves the reply
stream, then saves every datagram the agent sends us for a few seconds (it probes us:
pings, usually piggybacking gossip in compounds). Output: one hex line per capture in
serf-<what>.hex, the first word of each line naming it.
Usage: python3 capture.py OUTDIR
"""
import os, socket, subprocess, sys, tempfile, time

out = sys.argv[1] if len(sys.argv) > 1 else "."

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def fixstr(b): return bytes([0xa0 | len(b)]) + b

serf_port, rpc_port = free_port(), free_port()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.1", 0))
our_port = udp.getsockname()[1]
log = open(os.path.join(tempfile.gettempdir(), "serf-capture.log"), "w")
serf = subprocess.Popen(["serf", "agent", "-node", "s1", "-bind", f"127.0.0.1:{serf_port}",
                         "-rpc-addr", f"127.0.0.1:{rpc_port}", "-tag", "role=web",
                         "-log-level=debug"], stdout=log, stderr=log)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", serf_port), timeout=0.2).close(); break
        except OSError:
            time.sleep(0.1)
    port = bytes([0xcd, our_port >> 8, our_port & 0xff])
    req = (b"\x06\x83" + fixstr(b"Join") + b"\xc3" + fixstr(b"Nodes") + b"\x01"
           + fixstr(b"UserStateLen") + b"\x00"
           + b"\x87" + fixstr(b"Addr") + fixstr(bytes([127, 0, 0, 1]))
           + fixstr(b"Incarnation") + b"\x01" + fixstr(b"Meta") + fixstr(b"\xff\x80")
           + fixstr(b"Name") + fixstr(b"rust1") + fixstr(b"Port") + port
           + fixstr(b"State") + b"\x00" + fixstr(b"Vsn") + fixstr(bytes([1, 5, 2, 2, 5, 5])))
    c = socket.create_connection(("127.0.0.1", serf_port), timeout=5)
    c.sendall(req)
    reply = b""
    while True:
        chunk = c.recv(65536)
        if not chunk: break
        reply += chunk
    c.close()
    with open(os.path.join(out, "serf-pushpull.hex"), "w") as f:
        f.write("request " + req.hex() + "\n")
        f.write("reply " + reply.hex() + "\n")
    udp.settimeout(0.2)
    end = time.time() + 4
    with open(os.path.join(out, "serf-udp.hex"), "w") as f:
        while time.time() < end:
            try:
                data, src = udp.recvfrom(65536)
            except socket.timeout:
                continue
            f.write("datagram " + data.hex() + "\n")
finally:
    serf.kill(); serf.wait()
