#!/usr/bin/python3
"""make_seeds.py: writes the seed corpora of fuzz_frame and fuzz_msg_*.

One valid body per message type (docs/protocol.md layouts), placed in the
corpus of the harness that owns that type, and for fuzz_frame real frames
sealed from A to B (seeds 0..31 and 32..63), a body for the round-trip mode
and a replay state image. Needs python3-nacl and python3-msgpack; the
committed corpora were made with it, so a normal build never runs it.

Run from anywhere: /usr/bin/python3 tests/fuzz/make_seeds.py
"""
import os
import struct

import msgpack
import nacl.bindings as nb
import nacl.encoding
import nacl.hash

HERE = os.path.dirname(os.path.abspath(__file__))
R = 0x1122334455667788
MSG_VERSION = 7  # protocol/msg.h


def blake2b(data, key=b"", size=32):
    return nacl.hash.blake2b(data, digest_size=size, key=key, encoder=nacl.encoding.RawEncoder)


def body(t, fields, rid=R, attempt=0):
    return msgpack.packb([MSG_VERSION, t, rid, attempt] + fields, use_bin_type=True)


# flags, mask_pk, share_pk, seed_commit, sig: values only need the right lengths here
eph = [0, bytes([0x41] * 32), bytes([0x42] * 32), bytes([0x43] * 32), bytes([0x44] * 64)]
eph_known = [1] + eph[1:]
codec = [1, 1, 4, 3, 250000, 7, 8, [16, 18, 0.5],
         [[1000, 8, 10, 0, 0.0078125, 0.9921875], [10, 12, 14, 1, 0.001, 2.047]]]
SEEDS = {
    "fuzz_msg_invite": {
        "invite": body(1, [3, [bytes([0x10 + i] * 32) for i in range(4)], 5000,
                           1700000000123, codec, [1, [128, 64], 7], 1], attempt=2),
        "invite_k3": body(1, [2, [bytes([0x20 + i] * 32) for i in range(3)], 100, 0,
                              [1, 1, 3, 0, 1000000, 0, 0, [0, 0, 0.0],
                               [[5, 1, 2, 0, 1.0, 1.0]]], [0, [], 1], 0]),
    },
    "fuzz_msg_keys": {
        "accept": body(2, [3] + eph),
        "keys": body(4, [[[i * 2] + (eph_known if i == 1 else eph) for i in range(3)]]),
    },
    "fuzz_msg_shares": {
        "shares_out": body(5, [[[1, 0, bytes(range(100))], [1, 2, bytes(107)]]]),
        "shares_relay": body(5, [[[0, 3, bytes(107)], [1, 3, bytes(107)], [2, 3, b"x"]]]),
        "unmask_resp": body(8, [1, [[0, bytes(33)], [2, bytes(range(33))]]]),
    },
    "fuzz_msg_vector": {
        "masked": body(6, [2, 24, 1.25, bytes(range(30))]),
        "result": body(9, [[0, 1, 3], 16, 3.5, bytes(range(64))]),
        "part": body(17, [3, 1, 1024, 24, bytes(range(30))]),
        "part_sum": body(19, [0, 2, 48, 16, bytes(range(20))]),
    },
    "fuzz_msg_control": {
        "decline": body(3, [1, "in round 77", 2750]),
        "abort": body(10, [5, "2 of 4 left, need 3"]),
        "abort_empty_text": body(10, [1, ""]),  # once UB: memcpy from NULL
        "unmask_req": body(7, [[0, 1, 3], [2], [[i, bytes([0x50 + i] * 64)] for i in (0, 1, 3)]]),
        "split": body(15, [[0, 1, 3], [2]]),
        "split_sig": body(16, [3, bytes([0x77] * 64)]),
        "ping": body(11, [9, 123456789], rid=0),
        "status": body(12, [9, 123456789, True, 10, 1, 3600]),
        "checked": body(13, [2, bytes([0x5c] * 32)]),
        "commit": body(14, [0, bytes([0x5d] * 32)]),
        "seeds": body(18, [[[0, 0, bytes([0x60] * 32)], [2, 1, bytes([0x61] * 32)]]]),
    },
}


class Identity:
    def __init__(self, seed):
        self.pk, self.sk = nb.crypto_sign_seed_keypair(seed)
        self.dh_sk = nb.crypto_sign_ed25519_sk_to_curve25519(self.sk)


def seal(a, b_pk, t, rid, counter, plain):
    ss = nb.crypto_scalarmult(a.dh_sk, nb.crypto_sign_ed25519_pk_to_curve25519(b_pk))
    key = blake2b(b"sotto-seal-v1" + a.pk + b_pk, key=ss)
    nonce = bytes(range(counter, counter + 24))
    hdr = b"STO" + bytes([1, t, 0, 0, 0]) + a.pk + b_pk + struct.pack(">QQ", rid, counter) + nonce
    return hdr + nb.crypto_aead_xchacha20poly1305_ietf_encrypt(plain, hdr, nonce, key)


def state_image(tx, peers):
    img = b"SORP" + struct.pack("<IQII", 1, tx, len(peers), 0)
    for pk, top in peers:
        img += pk + struct.pack("<Q", top)
    return img + blake2b(img, size=16)


def main():
    a = Identity(bytes(range(32)))
    b = Identity(bytes(range(32, 64)))
    frames = {
        "frame_ping": b"\0" + seal(a, b.pk, 11, 0, 1, SEEDS["fuzz_msg_control"]["ping"]),
        "frame_masked": b"\0" + seal(a, b.pk, 6, R, 2, SEEDS["fuzz_msg_vector"]["masked"]),
        "frame_invite": b"\0" + seal(a, b.pk, 1, R, 3, SEEDS["fuzz_msg_invite"]["invite"]),
        "body_status": b"\1" + SEEDS["fuzz_msg_control"]["status"],
        "state": b"\2" + state_image(65536, [(a.pk, 17), (bytes([9] * 32), 1 << 40)]),
    }
    SEEDS["fuzz_frame"] = frames
    for harness, seeds in SEEDS.items():
        d = os.path.join(HERE, "corpus", harness)
        os.makedirs(d, exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
    print("seeds written")


if __name__ == "__main__":
    main()
