#!/usr/bin/python3
"""Known answers for crypto/mask.c, computed without sotto or libsodium.

ChaCha20 here is written from RFC 7539 section 2.3 in the original (djb)
form that libsodium's crypto_stream_chacha20 uses: 64-bit block counter in
words 12-13, 64-bit nonce in words 14-15. It is checked against the
published all-zero-key keystream before anything is printed.

Layout (crypto/mask.h): segment i uses the keystream with nonce = i, read as
little-endian 64-bit words; a word holds floor(64 / w) values of w bits,
lowest first; the bits above the last value are unused.

Prints the C arrays of tests/unit/crypto_mask_test.c (test_kat_layout).
"""
import struct


def rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)


def block(key, counter, nonce):
    st = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    st += list(struct.unpack("<8I", key))
    st += [counter & 0xFFFFFFFF, counter >> 32]
    st += list(struct.unpack("<2I", nonce))
    w = st[:]
    for _ in range(10):
        quarter(w, 0, 4, 8, 12); quarter(w, 1, 5, 9, 13)
        quarter(w, 2, 6, 10, 14); quarter(w, 3, 7, 11, 15)
        quarter(w, 0, 5, 10, 15); quarter(w, 1, 6, 11, 12)
        quarter(w, 2, 7, 8, 13); quarter(w, 3, 4, 9, 14)
    return struct.pack("<16I", *[(a + b) & 0xFFFFFFFF for a, b in zip(w, st)])


def stream(key, nonce_int, nbytes):
    nonce = struct.pack("<Q", nonce_int)
    out = b"".join(block(key, c, nonce) for c in range((nbytes + 63) // 64))
    return out[:nbytes]


def mask(key, segs):
    """Mask values of every segment (len, width) of the layout."""
    vals = []
    for i, (n, w) in enumerate(segs):
        lanes = 64 // w
        words = (n + lanes - 1) // lanes
        ks = stream(key, i, 8 * words)
        for j in range(n):
            word = struct.unpack_from("<Q", ks, 8 * (j // lanes))[0]
            vals.append((word >> (w * (j % lanes))) & ((1 << w) - 1))
    return vals


def carr(vals):
    return ", ".join("0x%08xu" % v for v in vals)


# Published keystream of the all-zero key, nonce 0, block 0 (djb ChaCha20).
assert stream(bytes(32), 0, 16).hex() == "76b8e0ada0f13d90405d6ae55386bd28"

key = bytes(range(32))
layout = [(5, 32), (7, 12), (3, 1), (4, 9)]
print("expect[19] = {%s};" % carr(mask(key, layout)))
long = mask(key, [(5000, 29)])
print("expect_long[6] = {%s};  /* values 4410..4415 */" % carr(long[4410:4416]))
print("sum of the 5000 values mod 2^32 = %du" % (sum(long) & 0xFFFFFFFF))
zero = mask(bytes(32), [(7, 12)])
print("zero key, 7 values of 12 bits = {%s};" % carr(zero))
