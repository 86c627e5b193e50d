#!/usr/bin/python3
"""lowrank_proxy.py: a numpy proxy of table (a)'s run for the low-rank codec
design (issue 14, docs/codec.md "Low-rank updates: design and evidence").

Not sotto: no masks, no network, no secure round. It keeps what decides the
codec question: 16 sites, the bundled 8,000 MNIST images split Dirichlet(0.5),
the MLP 784-128-10 trained with the bench's schedule (lr 0.05, momentum 0.9,
batch 32, a quarter epoch of local training per tick, 20 epochs), and
averaging in random groups of 4 (--rounds group passes per tick). Every
group average is exact and sample weighted; only the first layer W1
(128x784) is compressed, the other 1,418 parameters are averaged whole.

Methods (what a group does with W1):
  full      every coordinate                         (one masked sum)
  random    project on a fresh public random Q (784 x r), replace the
            projection by the group's mean:  W_i += (mean(W Q) - W_i Q) Q^T
            (mean preserving)                       (one masked sum)
  oracle    the same on the top r right singular vectors of the group's
            disagreement (an upper bound: no protocol can know them)
  power     one masked power step from a fresh random Q0: sum W_i Q0 gives
            mean(W Q0); sum W_i^T (W_i Q0 - mean(W Q0)) = C Q0 with C the
            group's disagreement covariance; Q = orth(C Q0); then the
            projection step on Q                    (three masked sums)

Bytes per node count what each member sends and receives of every masked
sum, at --bits per value (--sketch-bits for C Q0); not the round's fixed
overhead (keys, acknowledgements). The sketch C Q0 is rounded to
--sketch-bits with a per-layer clip before Q is taken from it.

  bench/lowrank_proxy.py --method power --rank 8 --rounds 4 --seed 1
"""
import argparse, gzip, os, sys, time
import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
N, K, H = 16, 4, 128


def load(name):
    b = gzip.open(os.path.join(ROOT, 'data', name)).read()
    n, d = np.frombuffer(b[12:20], '<u4')
    rec = np.frombuffer(b[48:], np.uint8).reshape(int(n), int(d) + 1)
    return rec[:, 1:].astype(np.float32) / 255, rec[:, 0].astype(np.int64)


def dirichlet_split(y, seed, alpha=0.5):
    r = np.random.default_rng(seed)
    idx = [[] for _ in range(N)]
    for c in range(10):
        ii = np.where(y == c)[0]
        r.shuffle(ii)
        cut = (np.cumsum(r.dirichlet([alpha] * N)) * len(ii)).astype(int)[:-1]
        for j, part in enumerate(np.split(ii, cut)):
            idx[j] += list(part)
    return [np.array(i, dtype=np.int64) for i in idx]


def forward(p, X):
    h = np.maximum(X @ p[0].T + p[1], 0)
    return h, h @ p[2].T + p[3]


def sgd_step(p, v, X, y, lr=0.05, mom=0.9):
    h, z = forward(p, X)
    z -= z.max(1, keepdims=True)
    e = np.exp(z)
    e /= e.sum(1, keepdims=True)
    e[np.arange(len(y)), y] -= 1
    e /= len(y)
    dh = (e @ p[2]) * (h > 0)
    for i, g in enumerate((dh.T @ X, dh.sum(0), e.T @ h, e.sum(0))):
        v[i] = mom * v[i] + g
        p[i] -= lr * v[i]


def orth(a):
    return np.linalg.qr(a)[0]


def quantize(a, bits):
    """Round to a grid of 2^(bits-1)-1 levels under a power-of-two clip."""
    m = float(np.abs(a).max())
    if m == 0:
        return a
    clip = 2.0 ** np.ceil(np.log2(m))
    q = clip / (2 ** (bits - 1) - 1)
    return np.round(a / q) * q


def run(a):
    rng = np.random.default_rng(a.seed)
    Xtr, ytr = load('mnist-train.sdat.gz')
    Xte, yte = load('mnist-test.sdat.gz')
    parts = dirichlet_split(ytr, 1)
    r0 = np.random.default_rng(7)
    p0 = [r0.normal(0, np.sqrt(2 / 784), (H, 784)).astype(np.float32), np.zeros(H, np.float32),
          r0.normal(0, np.sqrt(2 / H), (10, H)).astype(np.float32), np.zeros(10, np.float32)]
    P = [[t.copy() for t in p0] for _ in range(N)]
    V = [[np.zeros_like(t) for t in p0] for _ in range(N)]
    ptr = [0] * N
    small = H + 10 * H + 10
    sent = 0.0
    hit = None
    acc = 0.0
    r = a.rank
    for tick in range(a.epochs * 4):
        for i in range(N):
            n = len(parts[i])
            for _ in range(max(1, int(0.25 * n / 32))):
                if ptr[i] + 32 > n:
                    rng.shuffle(parts[i])
                    ptr[i] = 0
                b = parts[i][ptr[i]:ptr[i] + 32]
                ptr[i] += 32
                sgd_step(P[i], V[i], Xtr[b], ytr[b])
        for _ in range(a.rounds):
            perm = rng.permutation(N)
            for g in range(N // K):
                G = perm[g * K:(g + 1) * K]
                w = np.array([len(parts[i]) for i in G], float)
                w /= w.sum()
                for li in (1, 2, 3):
                    m = sum(w[j] * P[i][li] for j, i in enumerate(G))
                    for i in G:
                        P[i][li] = m.copy()
                W = [P[i][0] for i in G]
                bits = small * a.bits
                if a.method == 'full':
                    m = sum(w[j] * W[j] for j in range(K))
                    for i in G:
                        P[i][0] = m.copy()
                    bits += H * 784 * a.bits
                else:
                    if a.method == 'random':
                        Q = orth(rng.normal(size=(784, r)))
                    elif a.method == 'oracle':
                        m = sum(w[j] * W[j] for j in range(K))
                        D = np.vstack([np.sqrt(w[j]) * (W[j] - m) for j in range(K)])
                        Q = np.linalg.svd(D, full_matrices=False)[2][:r].T
                    else:
                        Q0 = orth(rng.normal(size=(784, r)))
                        Y0 = [x @ Q0 for x in W]
                        Y0m = sum(w[j] * Y0[j] for j in range(K))
                        S = sum(w[j] * W[j].T @ (Y0[j] - Y0m) for j in range(K))
                        Q = orth(quantize(S, a.sketch_bits))
                        bits += H * r * a.bits + 784 * r * a.sketch_bits
                    Y = [x @ Q for x in W]
                    Ym = sum(w[j] * Y[j] for j in range(K))
                    for j, i in enumerate(G):
                        P[i][0] = W[j] + (Ym - Y[j]) @ Q.T
                    bits += H * r * a.bits
                sent += K * 2 * bits / 8  # each member sends and receives
        if tick % 4 == 3:
            acc = float(np.mean([(forward(P[i], Xte)[1].argmax(1) == yte).mean() for i in range(N)]))
            mb = sent / N / 1e6
            if hit is None and acc >= a.target:
                hit = mb
            if a.verbose:
                print(f'epoch {(tick + 1) // 4:2d} mean accuracy {acc:.4f} MB/node {mb:.2f}', flush=True)
    return acc, hit, sent / N / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--method', choices=('full', 'random', 'oracle', 'power'), default='power')
    ap.add_argument('--rank', type=int, default=8)
    ap.add_argument('--rounds', type=int, default=2, help='group passes per quarter epoch (2)')
    ap.add_argument('--bits', type=int, default=6, help='bits per value on the wire (6)')
    ap.add_argument('--sketch-bits', type=int, default=8, help='bits per sketch value (8)')
    ap.add_argument('--epochs', type=int, default=20)
    ap.add_argument('--target', type=float, default=0.93)
    ap.add_argument('--seed', type=int, default=1, help='group draws and batch order (1)')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()
    t0 = time.time()
    acc, hit, mb = run(a)
    to = f'{hit:.2f}' if hit is not None else '-'
    print(f'method {a.method} rank {a.rank} rounds {a.rounds} bits {a.bits} sketch_bits {a.sketch_bits} '
          f'seed {a.seed} final_mean {acc:.4f} mb_to_target {to} mb_total {mb:.2f} secs {time.time() - t0:.0f}')


if __name__ == '__main__':
    sys.exit(main())
