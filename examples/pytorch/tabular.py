"""The tabular example: a site's own PyTorch MLP on its own CSV, averaged
through its sotto node ([Model] Type = external).

    python3 tabular.py make-data OUTDIR              # three sites' CSVs and a test CSV
    python3 tabular.py train --config site.conf --csv site.csv --test test.csv
    python3 tabular.py train --alone --csv site.csv --test test.csv

The data are synthetic (no patient data in a repository): 12 numeric
features, 3 classes that depend on them non-linearly, and each site sees a
different mix of classes (non-IID), as hospitals with different case mixes
would. Features are scaled with constants every site agrees on (in practice
`sotto data import-csv --stats` or federated standardisation gives them).
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import sotto  # noqa: E402

FEATURES = 12
CLASSES = 3


def make_rows(rng, n, mix):
    y = rng.choice(CLASSES, size=n, p=mix)
    x = rng.normal(size=(n, FEATURES))
    # The class moves a non-linear function of the features: a radius and a sign.
    r = np.sqrt((x[:, :4] ** 2).sum(1))
    x[:, 0] += np.where(y == 1, 1.5, 0.0)
    x[:, 4] += np.where(y == 2, -1.5, 0.0) * np.sign(x[:, 5])
    x[:, 6] = r + 0.8 * (y == 0) + 0.3 * rng.normal(size=n)
    return x * 10.0 + 50.0, y  # raw units, as a lab value would be


def make_data(out):
    rng = np.random.default_rng(11)
    os.makedirs(out, exist_ok=True)
    mixes = [[0.7, 0.2, 0.1], [0.1, 0.7, 0.2], [0.2, 0.1, 0.7]]
    head = ",".join(["f%d" % i for i in range(FEATURES)] + ["label"])
    for i, mix in enumerate(mixes):
        x, y = make_rows(rng, 1500, mix)
        np.savetxt(os.path.join(out, "site-%d.csv" % i), np.column_stack([x, y]),
                   delimiter=",", header=head, comments="", fmt=["%.4f"] * FEATURES + ["%d"])
    x, y = make_rows(rng, 3000, [1 / 3] * 3)
    np.savetxt(os.path.join(out, "test.csv"), np.column_stack([x, y]), delimiter=",",
               header=head, comments="", fmt=["%.4f"] * FEATURES + ["%d"])


def load_csv(path):
    a = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64)
    x = ((a[:, :-1] - 50.0) / 10.0).astype(np.float32)  # the agreed scaling
    return torch.from_numpy(x), torch.from_numpy(a[:, -1].astype(np.int64))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(FEATURES, 64), nn.ReLU(), nn.Linear(64, 64),
                                 nn.ReLU(), nn.Linear(64, CLASSES))

    def forward(self, x):
        return self.net(x)


def train(args):
    torch.set_num_threads(1)
    torch.manual_seed(3)  # the same initial model at every site
    x, y = load_csv(args.csv)
    xt, yt = load_csv(args.test)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = None
    if not args.alone:
        trainer = sotto.Trainer(args.config, rows=len(y))
        trainer.attach(model)
    g = torch.Generator().manual_seed(hash(args.csv) % 1000)
    t0 = time.time()
    for step in range(args.steps):
        idx = torch.randint(len(y), (32,), generator=g)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        if trainer is not None and (step + 1) % 5 == 0:
            trainer.sync(model, epochs=(step + 1) * 32 / len(y))
            time.sleep(0.002)  # a real loop does more work per step than this toy
    phase = None
    if trainer is not None:
        trainer.sync(model, done=True)
        phase = trainer.settle(model, timeout=60)
        trainer.close()
    with torch.no_grad():
        acc = (model(xt).argmax(1) == yt).float().mean().item()
    print(json.dumps({"csv": args.csv, "alone": args.alone, "accuracy": acc, "rows": len(y),
                      "phase": phase, "seconds": time.time() - t0}), flush=True)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make-data")
    m.add_argument("out")
    t = sub.add_parser("train")
    t.add_argument("--config")
    t.add_argument("--alone", action="store_true")
    t.add_argument("--csv", required=True)
    t.add_argument("--test", required=True)
    t.add_argument("--steps", type=int, default=1500)
    args = ap.parse_args()
    if args.cmd == "make-data":
        make_data(args.out)
    else:
        train(args)


if __name__ == "__main__":
    main()
