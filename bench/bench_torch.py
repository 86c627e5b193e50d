#!/usr/bin/python3
"""bench_torch.py: the PyTorch side of bench_learn. Trains the same model
(logreg, MLP 784-128-10 or the small CNN), with the same optimizer, batch
size and thread count, on the same bundled MNIST files, and prints one line
per epoch and a final "torch MODEL mean_epoch_s X best_acc Y" line that
bench_learn parses. Reads sotto's dataset format directly (header + rows).

    /usr/bin/python3 bench/bench_torch.py --model mlp --epochs 3 --batch 32 --threads 1
"""
import argparse
import gzip
import struct
import time

import numpy as np
import torch


def load(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"SOTTODAT", path
    ver, rows, dims, classes, elem, c, h, w, flags, _ = struct.unpack("<10I", b[8:48])
    assert ver == 1 and elem == 1 and flags == 0, "bench expects the bundled u8 MNIST"
    a = np.frombuffer(b, dtype=np.uint8, offset=48).reshape(rows, 1 + dims)
    x = torch.tensor(a[:, 1:].astype(np.float32) / 255.0).reshape(rows, c, h, w)
    y = torch.tensor(a[:, 0].astype(np.int64))
    return x, y, classes


def model(kind, classes, hidden):
    if kind == "logreg":
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, classes))
    if kind == "mlp":
        return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, hidden),
                                   torch.nn.ReLU(), torch.nn.Linear(hidden, classes))
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(512, classes))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mlp")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--momentum", type=float, default=0.9)
    ap.add_argument("--optimizer", default="sgd")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    xtr, ytr, classes = load(a.train)
    xte, yte, _ = load(a.test)
    net = model(a.model, classes, a.hidden)
    if a.optimizer == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=a.lr, betas=(a.momentum, 0.999))
    else:
        opt = torch.optim.SGD(net.parameters(), lr=a.lr, momentum=a.momentum)
    lossf = torch.nn.CrossEntropyLoss()
    times, cpus, best = [], [], 0.0
    for e in range(1, a.epochs + 1):
        t0, c0 = time.perf_counter(), time.thread_time()
        perm = torch.randperm(len(ytr))
        for i in range(0, len(ytr), a.batch):
            idx = perm[i:i + a.batch]
            opt.zero_grad()
            loss = lossf(net(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        dt = time.perf_counter() - t0
        times.append(dt)
        cpus.append(time.thread_time() - c0)
        with torch.no_grad():
            acc = (net(xte).argmax(1) == yte).float().mean().item()
        best = max(best, acc)
        print("torch %s epoch %d test acc %.2f%% %.3f s" % (a.model, e, 100 * acc, dt),
              flush=True)
    # The first epoch includes one-off warm-up; the mean of the rest is the figure.
    rest, crest = times[1:] or times, cpus[1:] or cpus
    print("torch %s mean_epoch_s %.4f best_acc %.4f cpu_s %.4f"
          % (a.model, sum(rest) / len(rest), best, sum(crest) / len(crest)))


if __name__ == "__main__":
    main()
