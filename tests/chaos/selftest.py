#!/usr/bin/python3
"""selftest.py: the chaos harness's own checks must be able to fail.

What it is: verify.py run over hand-made verification records (a correct
round, then one tampering per rule: a wrong sum, a value off by the ring's
modulus, a missing member input, appliers that disagree, an applied round
its initiator aborted, a layout mismatch), the SP/TCP framing of
badpeer.py against a minimal PULL peer of its own. Seconds, no sotto
binary needed.

What it is not: a test of sotto (chaos.py is). Standard library only.
"""

import os
import random
import socket
import struct
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import badpeer  # noqa: E402
import verify  # noqa: E402

FAILS = []


def expect(cond, what):
    print("%s %s" % ("ok  " if cond else "FAIL", what))
    if not cond:
        FAILS.append(what)


def write(d, name, data):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(os.path.join(d, name), mode) as f:
        f.write(data)


def make_cluster(root, rng, layout, k=4, n_nodes=5):
    """n_nodes data dirs; one round r1 with members 0..k-1, all applied correctly."""
    keys = ["%064x" % rng.getrandbits(256) for _ in range(n_nodes)]
    dirs = []
    for i in range(n_nodes):
        d = os.path.join(root, "n%d" % i)
        os.makedirs(os.path.join(d, "verify"))
        write(os.path.join(d, "verify"), "self", keys[i] + "\n")
        dirs.append(d)
    rid, a = "00000000000000a1", 0
    lay_text = "".join("%d %d\n" % seg for seg in layout)
    n = sum(length for length, _ in layout)
    inputs = []
    for i in range(k):
        vals = []
        for length, width in layout:
            vals += [rng.getrandbits(width) for _ in range(length)]
        vec = struct.pack("<%dI" % n, *vals)
        inputs.append(vec)
        v = os.path.join(dirs[i], "verify")
        write(v, "in-%s-%d.u32" % (rid, a), vec)
        write(v, "layout-%s-%d" % (rid, a), lay_text)
    total = verify.ring_sum(inputs, tuple(layout))
    counted = "counted " + " ".join(keys[:k]) + "\n"
    for i in range(k):
        v = os.path.join(dirs[i], "verify")
        write(v, "applied-%s-%d" % (rid, a), counted)
        write(v, "sum-%s-%d.u32" % (rid, a), total)
        write(v, "outcome-%s-%d" % (rid, a), "done\n")
    return dirs, keys, rid, a, total, inputs


def run_verify(dirs, initiators=None):
    recs = [verify.NodeRecords(os.path.basename(d), os.path.join(d, "verify")) for d in dirs]
    return verify.check(recs, initiators)


def test_verify():
    layout = [(300, 8), (7, 32), (50, 3)]
    for case in ("clean", "wrong-sum", "modulus", "missing-input", "disagree", "aborted",
                 "layout", "stranger", "self-aborted"):
        rng = random.Random(case)
        with tempfile.TemporaryDirectory() as root:
            dirs, keys, rid, a, total, inputs = make_cluster(root, rng, layout)
            v0 = os.path.join(dirs[0], "verify")
            v1 = os.path.join(dirs[1], "verify")
            inits = {rid: keys[0]}
            appliers = [os.path.join(d, "verify") for d in dirs[:4]]
            if case == "wrong-sum":
                bad = bytearray(total)
                bad[17] ^= 1
                for v in appliers:
                    write(v, "sum-%s-%d.u32" % (rid, a), bytes(bad))
            elif case == "modulus":
                # Off by exactly 2^8 in the first segment: equal only if the modulus is ignored.
                vals = list(struct.unpack("<%dI" % (len(total) // 4), total))
                vals[0] += 256
                for v in appliers:
                    write(v, "sum-%s-%d.u32" % (rid, a), struct.pack("<%dI" % len(vals), *vals))
            elif case == "missing-input":
                os.unlink(os.path.join(dirs[2], "verify", "in-%s-%d.u32" % (rid, a)))
            elif case == "disagree":
                write(v1, "applied-%s-%d" % (rid, a), "counted " + " ".join(keys[:3]) + "\n")
            elif case == "aborted":
                write(v0, "outcome-%s-%d" % (rid, a), "aborted too-few\n")
            elif case == "self-aborted":
                write(v1, "outcome-%s-%d" % (rid, a), "aborted timeout\n")
            elif case == "layout":
                write(v1, "layout-%s-%d" % (rid, a), "300 8\n7 32\n50 4\n")
            elif case == "stranger":
                for v in appliers:
                    write(v, "applied-%s-%d" % (rid, a), "counted " + " ".join(keys[:3]) + " " +
                          "ab" * 32 + "\n")
            if case == "aborted":
                # The initiator aborted, the others applied: must fail. Make node 0 a
                # non-applier so only the initiator rule can catch it.
                os.unlink(os.path.join(v0, "applied-%s-%d" % (rid, a)))
                os.unlink(os.path.join(v0, "sum-%s-%d.u32" % (rid, a)))
            fig, fails = run_verify(dirs, inits)
            if case == "clean":
                expect(not fails and fig["rounds_applied"] == 1 and fig["inputs_summed"] == 4,
                       "verify: a correct round passes (%s)" % (fails or fig["members_hist"]))
            else:
                expect(bool(fails), "verify: %s is caught (%s)" % (case, fails[:1]))


def test_verifier_sweep():
    rng = random.Random(5)
    with tempfile.TemporaryDirectory() as root:
        dirs, keys, rid, a, total, inputs = make_cluster(root, rng, [(64, 8)])
        ver = verify.Verifier([(os.path.basename(d), d) for d in dirs])
        got = ver.sweep(None, settle_s=3600, delete=True)
        expect(got == 0, "verifier: unsettled rounds wait (%d swept)" % got)
        got = ver.sweep(None, settle_s=None, delete=True)
        left = sum(len(os.listdir(os.path.join(d, "verify"))) for d in dirs)
        expect(got == 1 and not ver.fails and left == len(dirs),
               "verifier: sweeps, checks and deletes a settled round (%d left: the self files)"
               % left)


def test_sp_framing():
    """badpeer's handshake and framing against a minimal SP/TCP PULL written here."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = []

    def pull():
        c, _ = srv.accept()
        hdr = badpeer.recv_exact(c, 8)
        got.append(hdr)
        c.sendall(badpeer.sp_header(badpeer.SP_PULL))
        try:
            while True:
                (n,) = struct.unpack(">Q", badpeer.recv_exact(c, 8))
                got.append(badpeer.recv_exact(c, n))
        except (ConnectionError, OSError):
            pass
        c.close()

    t = threading.Thread(target=pull)
    t.start()
    s = badpeer._connect_push(srv.getsockname())
    s.sendall(badpeer.frame(b"hello") + badpeer.frame(b""))
    s.close()
    t.join(5)
    srv.close()
    expect(got[:1] == [b"\x00SP\x00\x00\x50\x00\x00"] and got[1:] == [b"hello", b""],
           "badpeer: SP handshake (PUSH 0x50) and 64-bit length framing")


def main():
    test_verify()
    test_verifier_sweep()
    test_sp_framing()
    if FAILS:
        print("selftest: %d FAILED" % len(FAILS))
        return 1
    print("selftest: all passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
