#!/usr/bin/python3
"""interop_check.py: an independent implementation of sotto's sealed frames.

Uses only Debian's python3-nacl (libsodium bindings) and python3-msgpack, and
follows docs/protocol.md, not sotto's code:

  1. sotto (interop_helper seal) seals a MASKED and an INVITE from A to B;
     this script opens them with B's key, checks every header field, decodes
     the msgpack bodies and checks every message field.
  2. this script seals PING, ACCEPT (ephemeral keys signed with PyNaCl) and a
     200 kB MASKED from B to A; sotto (interop_helper open) must accept each,
     decode the same fields, re-encode the same bytes and verify the
     signature; then refuse a replay, a tampered frame, a frame from a key it
     does not know and a frame of another version.

Run: /usr/bin/python3 interop_check.py INTEROP_HELPER. Exit 77 (skipped) when
the Python modules are missing.
"""
import os
import struct
import subprocess
import sys
import tempfile

try:
    import msgpack
    import nacl.bindings as nb
    import nacl.encoding
    import nacl.exceptions
    import nacl.hash
except ImportError as e:
    print("interop: skipped: python3-nacl and python3-msgpack are needed (%s)" % e)
    sys.exit(77)

MAGIC = b"STO"
FRAME_VERSION = 1
HEADER = 112
MSG_VERSION = 10  # protocol/msg.h
T_INVITE, T_ACCEPT, T_MASKED, T_PING, T_SPLIT_SIG = 1, 2, 6, 11, 16


def blake2b(data, key=b"", size=32):
    return nacl.hash.blake2b(data, digest_size=size, key=key,
                             encoder=nacl.encoding.RawEncoder)


class Identity:
    def __init__(self, seed):
        self.seed = seed
        self.pk, self.sk = nb.crypto_sign_seed_keypair(seed)
        self.dh_sk = nb.crypto_sign_ed25519_sk_to_curve25519(self.sk)


def direction_key(me, peer_pk, sender_pk, recipient_pk):
    """K(sender -> recipient) = BLAKE2b-256(key = X25519, label || pks)."""
    ss = nb.crypto_scalarmult(me.dh_sk, nb.crypto_sign_ed25519_pk_to_curve25519(peer_pk))
    return blake2b(b"sotto-seal-v1" + sender_pk + recipient_pk, key=ss)


def header(mtype, flags, sender, recipient, round_id, counter, nonce, version=FRAME_VERSION):
    return (MAGIC + bytes([version, mtype, flags, 0, 0]) + sender + recipient +
            struct.pack(">QQ", round_id, counter) + nonce)


def seal(me, peer_pk, mtype, round_id, counter, body, version=FRAME_VERSION):
    nonce = os.urandom(24)
    hdr = header(mtype, 0, me.pk, peer_pk, round_id, counter, nonce, version)
    key = direction_key(me, peer_pk, me.pk, peer_pk)
    return hdr + nb.crypto_aead_xchacha20poly1305_ietf_encrypt(body, hdr, nonce, key)


def open_frame(me, peer_pk, frame):
    assert frame[:3] == MAGIC, "magic"
    assert frame[3] == FRAME_VERSION, "frame version"
    hdr = frame[:HEADER]
    h = {
        "type": hdr[4], "flags": hdr[5], "reserved": hdr[6:8],
        "sender": hdr[8:40], "recipient": hdr[40:72],
        "round": struct.unpack(">Q", hdr[72:80])[0],
        "counter": struct.unpack(">Q", hdr[80:88])[0], "nonce": hdr[88:112],
    }
    key = direction_key(me, peer_pk, h["sender"], h["recipient"])
    body = nb.crypto_aead_xchacha20poly1305_ietf_decrypt(frame[HEADER:], hdr, h["nonce"], key)
    return h, body


def read_frames(path):
    data = open(path, "rb").read()
    frames, off = [], 0
    while off < len(data):
        n = struct.unpack(">I", data[off:off + 4])[0]
        frames.append(data[off + 4:off + 4 + n])
        off += 4 + n
    assert off == len(data)
    return frames


def write_frames(path, frames):
    with open(path, "wb") as f:
        for fr in frames:
            f.write(struct.pack(">I", len(fr)) + fr)


def unpack(body):
    # Strict like sotto: bin stays bytes, str must be UTF-8, no maps expected.
    return msgpack.unpackb(body, raw=False, strict_map_key=True, use_list=True)


def check(cond, what):
    if not cond:
        print("interop: FAIL: " + what)
        sys.exit(1)


def main():
    helper = sys.argv[1]
    a = Identity(bytes(range(32)))
    b = Identity(bytes(range(32, 64)))
    c = Identity(bytes([0x33] * 32))
    with tempfile.TemporaryDirectory() as tmp:
        # --- 1. sotto seals, Python opens ----------------------------------
        out = os.path.join(tmp, "from_sotto.bin")
        subprocess.run([helper, "seal", a.seed.hex(), b.seed.hex(), out], check=True)
        frames = read_frames(out)
        check(len(frames) == 2, "two frames from sotto")
        last_counter = 0
        for fr in frames:
            h, body = open_frame(b, a.pk, fr)
            check(h["sender"] == a.pk and h["recipient"] == b.pk, "sender/recipient keys")
            check(h["flags"] == 0 and h["reserved"] == b"\0\0", "flags and reserved bytes")
            check(h["counter"] > last_counter, "counters increase")
            last_counter = h["counter"]
            m = unpack(body)
            check(m[0] == MSG_VERSION and m[1] == h["type"], "version and type in the body")
            check(m[2] == h["round"] == 0x1122334455667788 and m[3] == 3, "round id, attempt")
            if h["type"] == T_MASKED:
                check(m[4:7] == [2, 800, 0.75], "MASKED index, n_values, weight")
                check(isinstance(m[6], float), "weight is a float64")
                check(m[7] == bytes((i * 7) & 0xFF for i in range(1000)), "MASKED vector")
            else:
                check(h["type"] == T_INVITE, "second frame is an INVITE")
                check(m[4] == 2 and m[5] == [bytes([0xA0 + i] * 32) for i in range(3)],
                      "INVITE threshold, members")
                check(m[6] == 2500 and m[7] == 1700000000000, "INVITE timeouts")
                check(m[8] == [1, 1, 3, 2, 1000000, 99, 100, [12, 14, 0.25],
                               [[784 * 128, 8, 10, 0, 0.01, 1.27],
                                [128, 8, 10, 1, 0.001, 0.127]]], "INVITE codec block")
                check(m[9] == [1, [128], 42], "INVITE [Model] settings (protocol 5 on)")
                check(m[11:14] == [0, 0, 0], "INVITE low-rank kind, rank, ref (protocol 8 on)")
        # Tampering is caught by this implementation too.
        bad = bytearray(frames[0])
        bad[200] ^= 1
        try:
            open_frame(b, a.pk, bytes(bad))
            check(False, "tampered frame opened in Python")
        except nacl.exceptions.CryptoError:
            pass
        print("interop: opened and decoded %d frames sealed by sotto" % len(frames))

        # --- 2. Python seals, sotto opens ----------------------------------
        rid, att = 0x0badc0ffee, 1
        mask_pk = nb.crypto_scalarmult_base(os.urandom(32))
        share_pk = nb.crypto_scalarmult_base(os.urandom(32))
        commit = os.urandom(32)
        flags = 1  # MSG_EPH_F_KNOWN
        signed = (b"sotto-eph-v2" + struct.pack(">QI", rid, att) + b.pk + bytes([flags]) +
                  mask_pk + share_pk + commit)
        sig = nb.crypto_sign(signed, b.sk)[:64]
        # the split {0, 1, 3} alive, {2} dropped over a transcript of 0x5a bytes
        split = (b"sotto-split-v1" + struct.pack(">QI", rid, att) + b.pk + bytes([0x5a] * 32) +
                 struct.pack(">II", 0b1011, 0b0100))
        split_sig = nb.crypto_sign(split, b.sk)[:64]
        vector = os.urandom(200000)
        bodies = [
            (T_PING, 0, [MSG_VERSION, T_PING, 0, 0, 41, 1234567]),
            (T_ACCEPT, rid, [MSG_VERSION, T_ACCEPT, rid, att, 1, flags, mask_pk, share_pk, commit,
                             sig]),
            (T_MASKED, rid, [MSG_VERSION, T_MASKED, rid, att, 1, 50000, 2.5, vector]),
            (T_SPLIT_SIG, rid, [MSG_VERSION, T_SPLIT_SIG, rid, att, 3, split_sig]),
        ]
        packed = [msgpack.packb(m, use_bin_type=True) for _, _, m in bodies]
        good = [seal(b, a.pk, t, r, i + 1, p) for i, ((t, r, _), p) in enumerate(zip(bodies, packed))]
        tampered = bytearray(seal(b, a.pk, T_PING, 0, 10, packed[0]))
        tampered[HEADER + 3] ^= 0x20
        extra = [
            good[0],                                    # replay
            bytes(tampered),                            # tampered ciphertext
            seal(c, a.pk, T_PING, 0, 11, packed[0]),    # key not pinned by A
            seal(b, a.pk, T_PING, 0, 12, packed[0], version=2),
            seal(b, a.pk, T_PING, 0, 13, msgpack.packb([MSG_VERSION + 1, T_PING, 0, 0, 1, 1])),
        ]
        path = os.path.join(tmp, "from_python.bin")
        write_frames(path, good + extra)
        res = subprocess.run([helper, "open", a.seed.hex(), b.seed.hex(), path],
                             check=True, capture_output=True, text=True)
        lines = res.stdout.splitlines()
        check(len(lines) == len(good) + len(extra), "one line per frame: %r" % lines)
        for line, p in zip(lines, packed):
            check(line.startswith("ok "), "sotto accepted: " + line)
            check(" body=" + blake2b(p).hex() in line, "sotto re-encodes the same bytes: " + line)
        check("type=11" in lines[0] and "seq=41 time_ms=1234567" in lines[0], "PING fields")
        check("type=2" in lines[1] and "index=1 sig=valid" in lines[1], "ACCEPT signature")
        check("type=6" in lines[2] and "index=1 n_values=50000 weight=2.5" in lines[2] and
              " vector=" + blake2b(vector).hex() in lines[2], "MASKED fields")
        check("type=16" in lines[3] and "index=3 sig=valid" in lines[3], "SPLIT_SIG signature")
        want = ["replayed frame", "authentication failed", "sender not in the configuration",
                "unsupported frame version", "unsupported protocol version"]
        for line, w in zip(lines[len(good):], want):
            check(line.startswith("refused") and w in line, "sotto refused (%s): %s" % (w, line))
        print("interop: sotto accepted %d frames sealed here and refused %d bad ones"
              % (len(good), len(extra)))
    print("interop: ok")


if __name__ == "__main__":
    main()
