#!/usr/bin/env python3
"""leak_sim.py: what a curious member learns from sums once nodes stop training.

A model of the gossip, not the node code: n nodes, random groups of k = 4,
every node but one victim done training (its input is the last group result
it applied, known to that group's members), the victim always fresh. For
each round the victim is in, and each curious member (or pair of colluders)
in it, the victim's input is recovered when every other input in the sum is
one the curious party knows. "after" applies the rule of protocol version 3
(docs/security.md, "What a small group leaks"): a fresh member refuses a sum
with 1 or 2 fresh inputs. Prints the share of shared rounds recovered.

    python3 bench/leak_sim.py
"""
import random, itertools, sys
def sim(n, k=4, rounds=20000, seed=1, rule=False, minfresh=3):
    rng = random.Random(seed)
    V = 0
    knownby = {j: {j} for j in range(n)}
    fresh = {j: False for j in range(n)}; fresh[V] = True
    s1 = r1 = s2 = r2 = 0; done = aborted = 0
    for _ in range(rounds):
        g = rng.sample(range(n), k)
        if V in g:
            if rule:
                f = sum(fresh[j] for j in g)
                if 0 < f < minfresh:
                    aborted += 1; continue
            others = [j for j in g if j != V]
            for c in others:
                s1 += 1
                r1 += all(c in knownby[j] for j in others if j != c)
            for c1, c2 in itertools.combinations(others, 2):
                s2 += 1
                r2 += all((c1 in knownby[j] or c2 in knownby[j]) for j in others if j not in (c1, c2))
        done += 1
        for j in g:
            knownby[j] = set(g) if j != V else {V}
    return r1 / max(s1, 1), r2 / max(s2, 1), aborted
for n in (5, 8, 16):
    a = sim(n); b = sim(n, rule=True)
    print("n=%2d before: one curious %5.1f%%  two colluders %5.1f%% | after (fresh rule): %5.1f%% %5.1f%% (%d victim rounds aborted)" % (n, 100*a[0], 100*a[1], 100*b[0], 100*b[1], b[2]))
