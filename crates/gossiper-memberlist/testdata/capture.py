#!/usr/bin/env python3
"""Captures real Serf 0.9.4 traffic for the codec tests (standard library only).

Starts `serf agent` on loopback, joins it with the hand-written push-pull request of
memberlist-wire.md §2.4 (node "rust1", address 127.0.0.1, our UDP port), saves the reply
stream, then saves every datagram the agent sends us for a few seconds (it probes us:
pings, usually piggybacking gossip in compounds). Output: one hex line per capture in
serf-<what>.hex, the first word of each line naming it.
Half a second in, it sends `serf event deploy v42` through the agent, so a user event is among
the datagrams.

With `--encrypt`, the agent runs with `-encrypt KEY` (a fixed test key) and the join request is
sealed as memberlist does it (AES-GCM, `[10][u32 len]` with those 5 bytes as associated data;
this needs Python's `cryptography`); everything lands in serf-encrypted.hex, key first.
Usage: python3 capture.py OUTDIR [--encrypt]
"""
import base64, os, socket, subprocess, sys, tempfile, time

out = sys.argv[1] if len(sys.argv) > 1 else "."
encrypt = "--encrypt" in sys.argv
KEY = bytes(range(32))

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def fixstr(b): return bytes([0xa0 | len(b)]) + b

serf_port, rpc_port = free_port(), free_port()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); udp.bind(("127.0.0.1", 0))
our_port = udp.getsockname()[1]
log = open(os.path.join(tempfile.gettempdir(), "serf-capture.log"), "w")
args = ["serf", "agent", "-node", "s1", "-bind", f"127.0.0.1:{serf_port}",
        "-rpc-addr", f"127.0.0.1:{rpc_port}", "-tag", "role=web", "-log-level=debug"]
if encrypt:
    args += ["-encrypt", base64.b64encode(KEY).decode()]
serf = subprocess.Popen(args, stdout=log, stderr=log)

def seal_stream(plain):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    nonce = os.urandom(12)
    length = 1 + 12 + len(plain) + 16
    header = bytes([10]) + length.to_bytes(4, "big")
    return header + bytes([1]) + nonce + AESGCM(KEY).encrypt(nonce, plain, header)

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
    c.sendall(seal_stream(req) if encrypt else req)
    reply = b""
    while True:
        chunk = c.recv(65536)
        if not chunk: break
        reply += chunk
    c.close()
    f = open(os.path.join(out, "serf-encrypted.hex" if encrypt else "serf-pushpull.hex"), "w")
    if encrypt:
        f.write("key " + KEY.hex() + "\n")
    f.write("request " + req.hex() + "\n")
    f.write("reply " + reply.hex() + "\n")
    if not encrypt:
        f.close()
        f = open(os.path.join(out, "serf-udp.hex"), "w")
    udp.settimeout(0.2)
    start = time.time()
    sent_event = False
    with f:
        while time.time() < start + 4:
            if not sent_event and time.time() > start + 0.5:
                subprocess.run(["serf", "event", "-rpc-addr", f"127.0.0.1:{rpc_port}", "deploy", "v42"],
                               stdout=subprocess.DEVNULL, check=True)
                sent_event = True
            try:
                data, src = udp.recvfrom(65536)
            except socket.timeout:
                continue
            f.write("datagram " + data.hex() + "\n")
finally:
    serf.kill(); serf.wait()
