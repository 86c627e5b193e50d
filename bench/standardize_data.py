#!/usr/bin/env python3
"""standardize_data.py: the per-site CSV files of bench/standardize.sh.

    bench/standardize_data.py DATASET SITES OUTDIR [--alpha A] [--seed S]

DATASET is breast (Wisconsin breast cancer, 569 rows, 30 features), digits
(1,797 8x8 digits, 64 features) or mnist (the bundled 8,000 + 2,000 images
of data/, 784 pixels as 0..255). The first two are the copies Debian's
python3-sklearn ships (read as CSV, no scikit-learn import). Writes
OUTDIR/site-I.csv (each site's training rows, label last; labels split
Dirichlet(A) over the sites), OUTDIR/test.csv (held-out rows every site
evaluates on: a stratified quarter, or MNIST's test images) and
OUTDIR/central.stats: the pooled training rows' mean and deviation per
feature, as one central standardisation would have them (the reference).
"""
import argparse
import gzip
import os
import struct
import sys

import numpy as np

SK = "/usr/lib/python3/dist-packages/sklearn/datasets/data"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_sdat(path):
    with gzip.open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"SOTTODAT"
    rows, dims, _classes, elem = struct.unpack_from("<IIII", b, 12)
    flags = struct.unpack_from("<I", b, 40)[0]
    assert elem == 1 and flags == 0, "the bundled MNIST files are raw bytes"
    a = np.frombuffer(b, dtype=np.uint8, offset=48).reshape(rows, dims + 1)
    return a[:, 1:].astype(np.float64), a[:, 0].astype(np.int64)


def load(name, rng):
    if name == "breast":
        a = np.loadtxt(os.path.join(SK, "breast_cancer.csv"), delimiter=",", skiprows=1)
        x, y = a[:, :-1], a[:, -1].astype(np.int64)
    elif name == "digits":
        a = np.loadtxt(os.path.join(SK, "digits.csv.gz"), delimiter=",")
        x, y = a[:, :-1], a[:, -1].astype(np.int64)
    else:
        xtr, ytr = load_sdat(os.path.join(ROOT, "data", "mnist-train.sdat.gz"))
        xte, yte = load_sdat(os.path.join(ROOT, "data", "mnist-test.sdat.gz"))
        return xtr, ytr, xte, yte
    test = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: len(idx) // 4]] = True
    return x[~test], y[~test], x[test], y[test]


def dirichlet_split(y, sites, alpha, rng):
    parts = [[] for _ in range(sites)]
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        p = rng.dirichlet([alpha] * sites)
        cuts = (np.cumsum(p)[:-1] * len(idx)).astype(int)
        for s, chunk in enumerate(np.split(idx, cuts)):
            parts[s].extend(chunk.tolist())
    return [np.array(sorted(p), dtype=np.int64) for p in parts]


def write_csv(path, x, y):
    with open(path, "w") as f:
        for row, lab in zip(x, y):
            f.write(",".join("%.10g" % v for v in row) + ",%d\n" % lab)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", choices=["breast", "digits", "mnist"])
    ap.add_argument("sites", type=int)
    ap.add_argument("out")
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    xtr, ytr, xte, yte = load(a.dataset, rng)
    os.makedirs(a.out, exist_ok=True)
    parts = dirichlet_split(ytr, a.sites, a.alpha, rng)
    for _ in range(100):  # every site needs rows of at least two classes
        if all(len(np.unique(ytr[p])) >= 2 for p in parts):
            break
        parts = dirichlet_split(ytr, a.sites, a.alpha, rng)
    for s, p in enumerate(parts):
        write_csv(os.path.join(a.out, "site-%d.csv" % s), xtr[p], ytr[p])
        hist = np.bincount(ytr[p], minlength=int(ytr.max()) + 1)
        print("site %d: %d rows, labels %s" % (s, len(p), " ".join(map(str, hist))))
    write_csv(os.path.join(a.out, "test.csv"), xte, yte)
    mean = xtr.mean(axis=0)
    var = (xtr * xtr).mean(axis=0) - mean * mean
    m2 = (xtr * xtr).mean(axis=0)
    std = np.where((var > 1e-12 * m2) & (var > 0), np.sqrt(np.maximum(var, 0)), 1.0)
    with open(os.path.join(a.out, "central.stats"), "w") as f:
        f.write("# pooled statistics of all training rows (bench/standardize_data.py)\n")
        f.write("sotto-stats 1 mean-std\nfeatures %d\nrows %d\n" % (xtr.shape[1], len(ytr)))
        for j in range(xtr.shape[1]):
            f.write("%d %.9g %.9g\n" % (j, mean[j], std[j]))
    print("test: %d rows; %d features, %d classes" % (len(yte), xtr.shape[1], ytr.max() + 1))


if __name__ == "__main__":
    sys.exit(main())
