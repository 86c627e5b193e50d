"""One site of the PyTorch example: a CNN of the site's own definition (two
convolutions with BatchNorm), trained on this site's shard, averaged with the
other sites through its sotto node's secure rounds ([Model] Type = external).

    python3 mnist_cnn.py --config site.conf --data shard.sdat.gz --test test.sdat.gz
    python3 mnist_cnn.py --alone --data shard.sdat.gz --test test.sdat.gz   # no sotto

The sotto part is three lines: make a Trainer, call trainer.sync(model)
every few steps, and say done at the end. Prints one JSON line with the test
accuracy of this site's final model.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
import sotto  # noqa: E402


class Net(nn.Module):
    """The site's own model: nothing here is sotto's."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(16)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(32)
        self.fc1 = nn.Linear(32 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def evaluate(model, x, y):
    model.eval()
    with torch.no_grad():
        logits = model(x)
        loss = nn.functional.cross_entropy(logits, y).item()
        acc = (logits.argmax(1) == y).float().mean().item()
    model.train()
    return acc, loss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", help="this site's sotto config ([Model] Type = external)")
    ap.add_argument("--alone", action="store_true", help="train without sotto (the comparison)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--epochs", type=float, default=20)
    ap.add_argument("--steps", type=int,
                    help="optimizer steps in all (default: epochs of this shard); the example "
                         "gives every site the same, so they finish together")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--sync-every", type=int, default=5, help="steps between syncs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--settle", type=float, default=120.0,
                    help="at most this many seconds of averaging after training, until the "
                         "node reports the group agreed")
    ap.add_argument("--save", help="write the final parameters here (.npy)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)  # the same initial model at every site

    tr = sotto.load_dataset(args.data)
    te = sotto.load_dataset(args.test)
    x, y = torch.from_numpy(tr.images()), torch.from_numpy(tr.y)
    xt, yt = torch.from_numpy(te.images()), torch.from_numpy(te.y)
    model = Net()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    steps_per_epoch = math.ceil(len(y) / args.batch)
    total = args.steps if args.steps else int(args.epochs * steps_per_epoch)

    trainer = None
    if not args.alone:
        trainer = sotto.Trainer(args.config, rows=len(y))
        trainer.attach(model)   # declares the layout: parameters and BatchNorm buffers
    t0 = time.time()
    g = torch.Generator().manual_seed(args.seed * 7919)
    step = 0
    while step < total:
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), args.batch):
            if step >= total:
                break
            for group in opt.param_groups:  # cosine decay to 0 over the run
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            idx = perm[i:i + args.batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
            step += 1
            if trainer is not None and step % args.sync_every == 0:
                trainer.sync(model, epochs=step / steps_per_epoch)
    if trainer is not None:
        acc, loss = evaluate(model, xt, yt)
        trainer.sync(model, epochs=step / steps_per_epoch, done=True, accuracy=acc, loss=loss)
        # Keep averaging until the node says the group agrees: every site then
        # holds the same consensus.
        phase = trainer.settle(model, timeout=args.settle)
        flat = trainer.vec.np
    acc, loss = evaluate(model, xt, yt)
    out = {"site": args.config or args.data, "alone": args.alone, "accuracy": acc, "loss": loss,
           "rows": len(y), "epochs": step / steps_per_epoch, "seconds": time.time() - t0}
    if trainer is not None:
        out.update(phase=phase, results=trainer.results, trainer_bytes_out=trainer.bytes_out,
                   trainer_bytes_in=trainer.bytes_in, n_params=int(flat.size),
                   checksum=float(flat.astype("float64").sum()))
        trainer.close()
    if args.save:
        import numpy as np
        np.save(args.save, trainer.vec.np if trainer is not None else
                sotto.FlatModule(model).numpy())
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
