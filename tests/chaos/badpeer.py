#!/usr/bin/python3
"""badpeer.py: misbehaving peers for the chaos harness, speaking NNG's SP over TCP.

What it is:
  - ReplayProxy: a TCP proxy in front of one node. The node's peers dial
    the proxy (their configs name it as the node's endpoint); it forwards
    every frame and keeps copies, then re-sends copies into the same
    connection: at once (a duplicate) and later (an old frame). The node
    must count them as replays (rejected_replay), or, for frames sealed
    with a round key the node has since wiped, as rejected_bad_tag, and
    act on none of them.
  - Garbage: a client that connects straight to a node's listener as a
    PUSH peer and sends malformed, mis-versioned, unknown-sender, forged,
    large and oversized frames, and an unfinished frame; run_garbage()
    returns how many of each it sent, so the caller can compare with the
    node's rejected_<reason> counters.

A process whose key is not in the config is a real `sotto run` with its
own key (cluster.py makes it with `sotto init` and leaves it out of the
others' configs): it seals genuine frames, which the nodes must count as
rejected_unknown_sender. A member that goes silent is SOTTO_TEST_SILENT_AFTER.

The framing (NNG's TCP transport, nng/src/sp/transport/tcp): each side
first sends 8 bytes "\\0SP\\0" + protocol (16-bit big-endian; PUSH0 = 0x50,
PULL0 = 0x51) + 2 zero bytes; then each message is a 64-bit big-endian
length followed by that many bytes. PUSH/PULL add no header of their own.

What it is not: a sotto implementation (no keys, no sealing). Standard
library only.

Usage (stand-alone, for poking at a running node):
  badpeer.py proxy LISTEN_PORT TARGET_HOST:PORT [--replay-every S]
  badpeer.py garbage HOST:PORT RECIPIENT_KEY_HEX [PEER_KEY_HEX]
"""

import os
import random
import socket
import struct
import sys
import threading
import time

SP_PUSH = 0x50
SP_PULL = 0x51

# crypto/seal.h
FRAME_MAGIC = b"STO"
FRAME_VERSION = 1
HEADER_BYTES = 112
TAG_BYTES = 16


def sp_header(proto):
    return b"\x00SP\x00" + struct.pack(">H", proto) + b"\x00\x00"


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return bytes(buf)


def frame(payload):
    return struct.pack(">Q", len(payload)) + payload


class ReplayProxy:
    """Forwards SP/TCP from the node's peers to the node and replays copies.

    replay_every: seconds between two bursts of replays per connection;
    burst: frames re-sent per burst; dup_prob: probability that a frame is
    duplicated right after it is forwarded. Counts what it injected.
    """

    def __init__(self, listen_host, listen_port, target, seed=1, replay_every=1.0, burst=3,
                 dup_prob=0.05, keep=256):
        self.listen = (listen_host, listen_port)
        self.target = target
        self.rng = random.Random(seed)
        self.replay_every = replay_every
        self.burst = burst
        self.dup_prob = dup_prob
        self.keep = keep
        self.lock = threading.Lock()
        self.forwarded = 0
        self.forwarded_bytes = 0
        self.injected_dup = 0
        self.injected_old = 0
        self.connections = 0
        self.errors = []
        self.stop_ev = threading.Event()
        self.replaying = threading.Event()
        self.replaying.set()
        self.srv = None
        self.threads = []

    @property
    def injected(self):
        return self.injected_dup + self.injected_old

    def start(self):
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(self.listen)
        self.srv.listen(16)
        self.srv.settimeout(0.2)
        t = threading.Thread(target=self._accept_loop, daemon=True)
        t.start()
        self.threads.append(t)

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(5)
        if self.srv:
            self.srv.close()

    def _accept_loop(self):
        while not self.stop_ev.is_set():
            try:
                c, _ = self.srv.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(c,), daemon=True)
            t.start()
            self.threads.append(t)

    def _serve(self, client):
        up = None
        wlock = threading.Lock()
        saved = []
        rng = random.Random(self.rng.random())
        try:
            client.settimeout(None)
            up = socket.create_connection(self.target, timeout=10)
            up.settimeout(None)
            # Handshakes pass through untouched (PUSH one way, PULL the other).
            up.sendall(recv_exact(client, 8))
            client.sendall(recv_exact(up, 8))
            back = threading.Thread(target=self._pump_back, args=(up, client), daemon=True)
            back.start()
            inj = threading.Thread(target=self._replayer, args=(up, wlock, saved, rng),
                                   daemon=True)
            inj.start()
            client.settimeout(0.5)
            while not self.stop_ev.is_set():
                try:
                    hdr = recv_exact(client, 8)
                except socket.timeout:
                    continue
                (n,) = struct.unpack(">Q", hdr)
                if n > (100 << 20):
                    raise ConnectionError("frame of %d bytes from a peer" % n)
                client.settimeout(None)
                body = recv_exact(client, n)
                client.settimeout(0.5)
                with wlock:
                    up.sendall(hdr + body)
                    dup = self.replaying.is_set() and rng.random() < self.dup_prob
                    if dup:
                        up.sendall(hdr + body)
                with self.lock:
                    self.forwarded += 1
                    self.forwarded_bytes += n
                    if dup:
                        self.injected_dup += 1
                    if n <= (1 << 20):
                        saved.append(hdr + body)
                        if len(saved) > self.keep:
                            del saved[: len(saved) - self.keep]
        except (OSError, ConnectionError) as e:
            if not self.stop_ev.is_set():
                self.errors.append(str(e))
        finally:
            client.close()
            if up is not None:
                up.close()

    def _pump_back(self, up, client):
        try:
            while True:
                b = up.recv(65536)
                if not b:
                    break
                client.sendall(b)
        except OSError:
            pass
        finally:
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _replayer(self, up, wlock, saved, rng):
        while not self.stop_ev.wait(self.replay_every):
            if not self.replaying.is_set():
                continue
            with self.lock:
                picks = [saved[rng.randrange(len(saved))] for _ in range(self.burst)] if saved else []
            if not picks:
                continue
            try:
                with wlock:
                    for f in picks:
                        up.sendall(f)
            except OSError:
                return
            with self.lock:
                self.injected_old += len(picks)


def _connect_push(addr, timeout=10):
    s = socket.create_connection(addr, timeout=timeout)
    s.sendall(sp_header(SP_PUSH))
    peer = recv_exact(s, 8)
    if peer[:4] != b"\x00SP\x00":
        raise ConnectionError("not an SP peer: %r" % peer)
    return s


def fake_header(rng, sender, recipient, version=FRAME_VERSION, mtype=1, flags=0,
                round_id=0, counter=None):
    h = bytearray()
    h += FRAME_MAGIC
    h += bytes([version, mtype, flags, 0, 0])
    h += sender
    h += recipient
    h += struct.pack(">Q", round_id)
    h += struct.pack(">Q", counter if counter is not None else rng.randrange(1, 1 << 62))
    h += bytes(rng.getrandbits(8) for _ in range(24))
    assert len(h) == HEADER_BYTES
    return bytes(h)


def run_garbage(addr, recipient_key, peer_key=None, seed=1, big_bytes=900 << 10, big_count=3,
                log=None):
    """Sends bad frames to the node listening at addr; returns counts by expected reason.

    recipient_key: the node's identity key (32 bytes). peer_key: a pinned
    peer's key, for frames that pass the sender check and must fail the tag.
    """
    rng = random.Random(seed)
    sent = {"malformed": 0, "version": 0, "unknown_sender": 0, "bad_tag": 0,
            "big": 0, "big_bytes": 0, "oversize_claims": 0, "unfinished": 0,
            "wrong_protocol": 0}
    s = _connect_push(addr)
    try:
        # Random bytes of random lengths (never a valid magic by construction).
        for _ in range(40):
            n = rng.choice([0, 1, 3, 7, 50, 111, 112, 127, 128, 500, 4000])
            body = bytes(rng.getrandbits(8) for _ in range(n))
            if body[:3] == FRAME_MAGIC:
                body = b"X" + body[1:]
            s.sendall(frame(body))
            sent["malformed"] += 1
        # A well-formed header, truncated before the tag.
        for _ in range(10):
            h = fake_header(rng, os.urandom(32), recipient_key)
            s.sendall(frame(h[: rng.randrange(4, HEADER_BYTES + TAG_BYTES)]))
            sent["malformed"] += 1
        # Header from the future: a frame version nobody speaks.
        for _ in range(10):
            h = fake_header(rng, peer_key or os.urandom(32), recipient_key,
                            version=rng.choice([0, 2, 7, 255]))
            s.sendall(frame(h + os.urandom(rng.randrange(16, 300))))
            sent["version"] += 1
        # A sender no config lists.
        for _ in range(10):
            h = fake_header(rng, os.urandom(32), recipient_key)
            s.sendall(frame(h + os.urandom(rng.randrange(16, 300))))
            sent["unknown_sender"] += 1
        # A pinned sender, but a forged tag.
        if peer_key is not None:
            for _ in range(10):
                h = fake_header(rng, peer_key, recipient_key)
                s.sendall(frame(h + os.urandom(rng.randrange(16, 300))))
                sent["bad_tag"] += 1
        # Large frames of garbage below the limit: refused, and not kept.
        for _ in range(big_count):
            body = b"Z" + os.urandom(big_bytes - 1)
            s.sendall(frame(body))
            sent["big"] += 1
            sent["big_bytes"] += len(body)
        s.close()
    except OSError as e:
        if log:
            log("garbage: connection ended early: %s" % e)
        s.close()
    # Claims beyond any limit: NNG must close the pipe without allocating. The node
    # bounds frames by its model (4 bytes a parameter + 64 KiB, at least 1 MiB).
    for claim in (1 << 40, (1 << 64) - 1, 200 << 20, 80 << 20, 3 << 20):
        try:
            s = _connect_push(addr)
            s.sendall(struct.pack(">Q", claim) + b"STO\x01")
            sent["oversize_claims"] += 1
            s.settimeout(10)
            try:
                s.recv(1)  # expect EOF or reset
            except OSError:
                pass
            s.close()
        except OSError as e:
            if log:
                log("garbage: oversize claim connection: %s" % e)
    # A frame announced and never finished, and a wrong SP protocol.
    try:
        s = _connect_push(addr)
        s.sendall(struct.pack(">Q", 512 << 10) + b"STO\x01" + os.urandom(1000))
        sent["unfinished"] += 1
        time.sleep(0.5)
        s.close()
    except OSError:
        pass
    try:
        s = socket.create_connection(addr, timeout=10)
        s.sendall(sp_header(SP_PULL))
        s.settimeout(5)
        try:
            s.recv(8)
            s.recv(8)
        except OSError:
            pass
        sent["wrong_protocol"] += 1
        s.close()
    except OSError:
        pass
    return sent


def _hostport(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def main(argv):
    if len(argv) >= 4 and argv[1] == "proxy":
        p = ReplayProxy("127.0.0.1", int(argv[2]), _hostport(argv[3]))
        p.start()
        try:
            while True:
                time.sleep(5)
                print("forwarded %d frames, injected %d dup + %d old" %
                      (p.forwarded, p.injected_dup, p.injected_old), flush=True)
        except KeyboardInterrupt:
            p.stop()
        return 0
    if len(argv) >= 4 and argv[1] == "garbage":
        peer = bytes.fromhex(argv[4]) if len(argv) > 4 else None
        print(run_garbage(_hostport(argv[2]), bytes.fromhex(argv[3]), peer, log=print))
        return 0
    print(__doc__.strip().split("Usage")[1], file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
