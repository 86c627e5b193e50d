#!/usr/bin/python3
"""verify.py: checks the verification records of nodes run with SOTTO_TEST_VERIFY=1.

What it is: the offline check of docs/testing.md ("Verification files").
For every round any node applied it checks that
  - the applied sum equals exactly the ring sum, per segment modulo
    2^width, of the plaintext inputs of exactly the members counted;
  - every node that applied the round applied the same sum and counted
    the same members;
  - no node applied a round whose initiator recorded it as aborted, and no
    node applied a round that it recorded as aborted itself.

Ring sums are computed with Python integers: each uint32 is widened to a
64-bit slot of one big integer, so adding k vectors is k big-integer
additions (no slot can overflow into the next for k < 2^32), and the
per-segment modulus is one AND with a mask. That keeps a soak of thousands
of rounds to seconds.

What it is not: a check of the models themselves (status reports
model_nonfinite), or of privacy. Standard library only.

Usage: verify.py DATADIR... (each a node's DataDir, holding verify/)
"""

import os
import re
import sys

RE_NAME = re.compile(r"^(in|layout|applied|sum|outcome)-([0-9a-f]{16})-(\d+)(\.u32)?$")


class NodeRecords:
    def __init__(self, label, vdir):
        self.label = label
        self.vdir = vdir
        self.key = None
        self.files = {}  # (kind, rid, attempt) -> path
        self.tmp_leftovers = 0
        try:
            names = os.listdir(vdir)
        except OSError:
            names = []
        for name in names:
            if ".tmp." in name:
                self.tmp_leftovers += 1
                continue
            if name == "self":
                with open(os.path.join(vdir, name)) as f:
                    self.key = f.read().strip()
                continue
            m = RE_NAME.match(name)
            if m:
                self.files[(m.group(1), m.group(2), int(m.group(3)))] = os.path.join(vdir, name)

    def round_keys(self):
        return {(rid, a) for (_, rid, a) in self.files}

    def newest_mtime(self, rid, attempt):
        t = 0.0
        for kind in ("in", "layout", "applied", "sum", "outcome"):
            path = self.files.get((kind, rid, attempt))
            if path is not None:
                try:
                    t = max(t, os.stat(path).st_mtime)
                except OSError:
                    pass
        return t

    def delete_round(self, rid, attempt):
        for kind in ("in", "layout", "applied", "sum", "outcome"):
            path = self.files.pop((kind, rid, attempt), None)
            if path is not None:
                try:
                    os.unlink(path)
                except OSError:
                    pass

    def read(self, kind, rid, attempt, binary=False):
        path = self.files.get((kind, rid, attempt))
        if path is None:
            return None
        with open(path, "rb" if binary else "r") as f:
            return f.read()

    def rounds(self, kind, only=None):
        return sorted((rid, a) for (k, rid, a) in self.files
                      if k == kind and (only is None or (rid, a) in only))


def parse_layout(text):
    segs = []
    for line in text.splitlines():
        if not line.strip():
            continue
        length, width = line.split()
        length, width = int(length), int(width)
        if length <= 0 or not 1 <= width <= 32:
            raise ValueError("bad layout line %r" % line)
        segs.append((length, width))
    if not segs:
        raise ValueError("empty layout")
    return tuple(segs)


_mask_cache = {}


def layout_mask(layout):
    """Big integer with, in each 64-bit slot, 2^width - 1 of its segment."""
    m = _mask_cache.get(layout)
    if m is None:
        parts = []
        for length, width in layout:
            parts.append(((1 << width) - 1).to_bytes(8, "little") * length)
        m = int.from_bytes(b"".join(parts), "little")
        _mask_cache[layout] = m
    return m


def widen(u32bytes):
    """uint32 little-endian array -> one integer with each value in a 64-bit slot."""
    n = len(u32bytes) // 4
    wide = bytearray(8 * n)
    for j in range(4):
        wide[j::8] = u32bytes[j::4]
    return int.from_bytes(wide, "little")


def narrow(value, n):
    """Inverse of widen for values below 2^32 per slot."""
    wide = value.to_bytes(8 * n, "little")
    out = bytearray(4 * n)
    for j in range(4):
        out[j::4] = wide[j::8]
    return bytes(out)


def ring_sum(inputs, layout):
    n = sum(length for length, _ in layout)
    total = 0
    for vec in inputs:
        total += widen(vec)
    return narrow(total & layout_mask(layout), n)


def new_figures():
    return {"rounds_applied": 0, "applications": 0, "inputs_summed": 0,
            "rounds_initiator_aborted": 0, "members_hist": {}, "tmp_leftovers": 0,
            "inputs_recorded": 0}


def check(records, initiators=None, only=None, figures=None):
    """Runs every check over the nodes' records.

    records: list of NodeRecords. initiators: optional dict rid -> key hex
    of the node that started the round (from the logs). only: a set of
    (rid, attempt) to look at (default all). figures: a dict from
    new_figures() to add to. Returns (figures, list of failure strings).
    """
    fails = []
    by_key = {}
    for r in records:
        if r.key is None:
            fails.append("%s: no verify/self (was SOTTO_TEST_VERIFY=1 set?)" % r.label)
            continue
        if r.key in by_key:
            fails.append("%s and %s have the same key" % (by_key[r.key].label, r.label))
        by_key[r.key] = r
    if figures is None:
        figures = new_figures()
    figures["tmp_leftovers"] = sum(r.tmp_leftovers for r in records)
    figures["inputs_recorded"] += sum(len(r.rounds("in", only)) for r in records)
    applied = {}  # (rid, a) -> list of (record, counted tuple, sum bytes)
    for r in records:
        for rid, a in r.rounds("applied", only):
            text = r.read("applied", rid, a)
            words = text.split()
            if not words or words[0] != "counted":
                fails.append("%s: applied-%s-%d is malformed: %r" % (r.label, rid, a, text[:80]))
                continue
            counted = tuple(words[1:])
            s = r.read("sum", rid, a, binary=True)
            if s is None:
                fails.append("%s: applied-%s-%d without sum-%s-%d.u32" % (r.label, rid, a, rid, a))
                continue
            applied.setdefault((rid, a), []).append((r, counted, s))
            outcome = r.read("outcome", rid, a)
            if outcome is not None and outcome.startswith("aborted"):
                fails.append("%s applied round %s-%d that it recorded as %r" %
                             (r.label, rid, a, outcome.strip()))
    for (rid, a), apps in sorted(applied.items()):
        figures["rounds_applied"] += 1
        figures["applications"] += len(apps)
        first_r, counted, s = apps[0]
        for r2, c2, s2 in apps[1:]:
            if set(c2) != set(counted):
                fails.append("round %s-%d: %s counted %s but %s counted %s" %
                              (rid, a, first_r.label, short(counted), r2.label, short(c2)))
            if s2 != s:
                fails.append("round %s-%d: %s and %s applied different sums" %
                             (rid, a, first_r.label, r2.label))
        nm = len(counted)
        figures["members_hist"][nm] = figures["members_hist"].get(nm, 0) + 1
        if nm < 1:
            fails.append("round %s-%d applied with no counted member" % (rid, a))
            continue
        # The layout: every member that encoded an input wrote the same one.
        layouts = set()
        inputs = []
        missing = []
        for key in counted:
            member = by_key.get(key)
            if member is None:
                missing.append("%s (not a node of this cluster)" % key[:12])
                continue
            vec = member.read("in", rid, a, binary=True)
            lay = member.read("layout", rid, a)
            if vec is None or lay is None:
                missing.append("%s (%s has no in-/layout-%s-%d)" % (key[:12], member.label, rid, a))
                continue
            try:
                layouts.add(parse_layout(lay))
            except ValueError as e:
                fails.append("%s: layout-%s-%d: %s" % (member.label, rid, a, e))
                continue
            inputs.append((member, vec))
        if missing:
            fails.append("round %s-%d applied by %s counts members whose input is not "
                         "recorded: %s" % (rid, a, ",".join(x[0].label for x in apps),
                                           "; ".join(missing)))
            continue
        if len(layouts) != 1:
            fails.append("round %s-%d: members recorded %d different layouts" %
                         (rid, a, len(layouts)))
            continue
        layout = layouts.pop()
        n = sum(length for length, _ in layout)
        bad = False
        for member, vec in inputs:
            if len(vec) != 4 * n:
                fails.append("%s: in-%s-%d.u32 has %d bytes, layout says %d values" %
                             (member.label, rid, a, len(vec), n))
                bad = True
            elif widen(vec) & ~layout_mask(layout):
                fails.append("%s: in-%s-%d.u32 has values outside its ring" %
                             (member.label, rid, a))
                bad = True
        if len(s) != 4 * n:
            fails.append("%s: sum-%s-%d.u32 has %d bytes, layout says %d values" %
                         (first_r.label, rid, a, len(s), n))
            bad = True
        if bad:
            continue
        expect = ring_sum([v for _, v in inputs], layout)
        figures["inputs_summed"] += len(inputs)
        if expect != s:
            diff = [i for i in range(n) if expect[4 * i:4 * i + 4] != s[4 * i:4 * i + 4]]
            fails.append("round %s-%d: applied sum differs from the ring sum of the %d counted "
                         "inputs at %d of %d values (first at %d)" %
                         (rid, a, nm, len(diff), n, diff[0]))
    # A round its initiator recorded as aborted must not have been applied.
    if initiators:
        for (rid, a), apps in sorted(applied.items()):
            key = initiators.get(rid)
            init = by_key.get(key) if key else None
            if init is None:
                continue
            outcome = init.read("outcome", rid, a)
            if outcome is not None and outcome.startswith("aborted"):
                figures["rounds_initiator_aborted"] += 1
                fails.append("round %s-%d: initiator %s recorded %r but %s applied it" %
                             (rid, a, init.label, outcome.strip(),
                              ",".join(x[0].label for x in apps)))
    return figures, fails


class Verifier:
    """Checks rounds as they settle, so a long soak needs neither hours nor gigabytes.

    dirs: list of (label, DataDir). sweep() checks every round whose
    records are all older than settle_s seconds (all rounds when settle_s
    is None) and, with delete=True, removes their files afterwards.
    """

    def __init__(self, dirs):
        self.dirs = list(dirs)
        self.figures = new_figures()
        self.fails = []
        self.done = set()

    def sweep(self, initiators=None, settle_s=None, delete=False):
        import time as _time
        records = [NodeRecords(label, os.path.join(d, "verify")) for label, d in self.dirs]
        keys = set()
        for r in records:
            keys |= r.round_keys()
        keys -= self.done
        if settle_s is not None:
            limit = _time.time() - settle_s
            keys = {k for k in keys if max(r.newest_mtime(*k) for r in records) < limit}
        if not keys:
            return 0
        _, fails = check(records, initiators, only=keys, figures=self.figures)
        self.fails.extend(fails)
        self.done |= keys
        if delete:
            for r in records:
                for k in keys:
                    r.delete_round(*k)
        return len(keys)

    def records_present(self):
        return any(os.path.exists(os.path.join(d, "verify", "self")) for _, d in self.dirs)


def short(keys):
    return "[" + ",".join(k[:8] for k in keys) + "]"


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    records = [NodeRecords(d, os.path.join(d, "verify")) for d in argv[1:]]
    figures, fails = check(records)
    for f in fails:
        print("FAIL: " + f)
    print("verified %d applied rounds (%d applications, %d inputs summed), members per round %s"
          % (figures["rounds_applied"], figures["applications"], figures["inputs_summed"],
             dict(sorted(figures["members_hist"].items()))))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
