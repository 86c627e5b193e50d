#!/usr/bin/python3
"""bench_external.py: what the external-trainer path costs per round, against
a built-in model of the same size, in one run on this machine.

    /usr/bin/python3 bench/bench_external.py [-b build/sotto] [-s SECONDS]

Two clusters of three `sotto run` processes on Unix sockets, one after the
other, with the same [Gossip] settings (GroupSize 3, Interval 1) and the
same parameter layout (the MLP 784-128-10: fc1.weight, fc1.bias,
fc2.weight, fc2.bias, 101,770 values):

  builtin   [Model] Type = mlp, each node training on a Dirichlet-0.5 shard
  external  [Model] Type = external, each node's trainer a numpy process
            that moves its vector a little (a stand-in for SGD steps) and
            syncs every 20 ms

Per cluster it reports the rounds completed, the round time (the "round
done in" lines of every member: median and 90th percentile), the bytes a
node sent over the network per round, and for the external cluster the
bytes over the trainer socket per round (pushes and results) and the
trainer's own time for a sync that adds a result in (receive, add, push). Timings are
ratios within this run; bytes do not depend on the machine.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import sotto  # noqa: E402

LAYOUT = [("fc1.weight", (128, 784)), ("fc1.bias", (128,)), ("fc2.weight", (10, 128)),
          ("fc2.bias", (10,))]
N_PARAMS = sum(int(np.prod(s)) for _, s in LAYOUT)


def init(binary, out, template, n=3):
    tpl = os.path.join(out, "template.ini")
    with open(tpl, "w") as f:
        f.write(template)
    sites = ["%d=ipc://%s/%d.sock" % (i, out, i) for i in range(n)]
    subprocess.run([binary, "init", "-o", os.path.join(out, "sites"), "-t", tpl] + sites,
                   check=True, capture_output=True)
    return [os.path.join(out, "sites", str(i)) for i in range(n)]


def start(binary, dirs):
    procs = []
    for i, d in enumerate(dirs):
        log = open(os.path.join(d, "node.log"), "w")
        procs.append(subprocess.Popen([binary, "run", "-c", "%d.conf" % i], cwd=d, stdout=log,
                                      stderr=subprocess.STDOUT))
    return procs


def stop(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(timeout=30)


def status(d, i):
    return sotto.trainer.node_status(os.path.join(d, "state", "control.sock"))


def round_times(dirs):
    t = []
    for d in dirs:
        with open(os.path.join(d, "node.log")) as f:
            t += [float(m.group(1)) for m in re.finditer(r"round done in ([0-9.]+)s", f.read())]
    return t


def summary(name, dirs, seconds, extra=""):
    st = [status(d, i) for i, d in enumerate(dirs)]
    rounds = [int(s["rounds_completed"]) for s in st]
    out = [int(s["bytes_out"]) for s in st]
    rt = sorted(round_times(dirs))
    p90 = rt[int(0.9 * (len(rt) - 1))] if rt else float("nan")
    per = sum(out) / max(1, sum(rounds))
    print("%-9s rounds/node %5.1f  round time median %6.1f ms  p90 %6.1f ms  "
          "network bytes/node/round %8.0f%s" % (
              name, sum(rounds) / len(rounds), 1000 * statistics.median(rt) if rt else float("nan"),
              1000 * p90, per, extra), flush=True)
    return {"rounds": rounds, "median_ms": 1000 * statistics.median(rt) if rt else None,
            "bytes_per_round": per}


def builtin(binary, tmp, seconds):
    out = os.path.join(tmp, "builtin")
    os.makedirs(out)
    subprocess.run([binary, "data", "split", os.path.join(ROOT, "data", "mnist-train.sdat.gz"),
                    os.path.join(out, "shard"), "--nodes", "3", "--mode", "dirichlet", "--alpha",
                    "0.5", "--seed", "7"], check=True, capture_output=True)
    dirs = init(binary, out, "[Model]\nType = mlp\nHidden = 128\nSeed = 5\n[Training]\n"
                "Dataset = ../../shard-{name}.sdat.gz\nEpochs = 1000\n[Gossip]\n"
                "GroupSize = 3\nInterval = 1\n")
    for i, d in enumerate(dirs):
        c = os.path.join(d, "%d.conf" % i)
        with open(c) as f:
            text = f.read().replace("{name}", str(i))
        with open(c, "w") as f:
            f.write(text)
    procs = start(binary, dirs)
    time.sleep(seconds)
    r = summary("builtin", dirs, seconds)
    stop(procs)
    return r


class ToyTrainer(threading.Thread):
    def __init__(self, conf, seed, stop_at):
        super().__init__(daemon=True)
        rng = np.random.default_rng(seed)
        self.v = (rng.normal(size=N_PARAMS) * 0.05).astype(np.float32)
        self.t = sotto.Trainer(conf, rows=2667)
        self.stop_at = stop_at
        self.fold_ms = []
        self.rng = rng

    def run(self):
        self.t.attach(self.v, layout=LAYOUT)
        seen = 0
        while time.time() < self.stop_at:
            self.v += (self.rng.normal(size=N_PARAMS) * 1e-3).astype(np.float32)
            t0 = time.time()
            got = self.t.sync(epochs=1.0)
            if got:
                seen += got
                self.fold_ms.append(1000 * (time.time() - t0))
            time.sleep(0.02)
        self.t.close()


def external(binary, tmp, seconds):
    out = os.path.join(tmp, "external")
    os.makedirs(out)
    dirs = init(binary, out, "[Model]\nType = external\n[Gossip]\nGroupSize = 3\nInterval = 1\n")
    procs = start(binary, dirs)
    stop_at = time.time() + seconds
    trainers = [ToyTrainer(os.path.join(d, "%d.conf" % i), i, stop_at)
                for i, d in enumerate(dirs)]
    for t in trainers:
        t.start()
    for t in trainers:
        t.join()
    results = sum(t.t.results for t in trainers)
    sock_in = sum(t.t.bytes_in for t in trainers) / max(1, results)
    sock_out = sum(t.t.bytes_out for t in trainers) / max(1, results)
    r = summary("external", dirs, seconds,
                "\n          trainer socket per round per node: %.0f bytes of results in, "
                "%.0f bytes of pushes out (one push: %d bytes); a sync that adds a result "
                "takes the trainer %.1f ms (median)" % (
                    sock_in, sock_out, 4 * N_PARAMS,
                    statistics.median([m for t in trainers for m in t.fold_ms] or [0])))
    stop(procs)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-b", "--binary", default=os.path.join(ROOT, "build", "sotto"))
    ap.add_argument("-s", "--seconds", type=float, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sotto-bench-ext-") as tmp:
        print("layout: MLP 784-128-10, %d values; 3 nodes, GroupSize 3, Interval 1, %.0f s each"
              % (N_PARAMS, args.seconds), flush=True)
        b = builtin(args.binary, tmp, args.seconds)
        e = external(args.binary, tmp, args.seconds)
        if b["median_ms"] and e["median_ms"]:
            print("external / builtin: round time %.2fx, network bytes per round %.3fx" % (
                e["median_ms"] / b["median_ms"], e["bytes_per_round"] / b["bytes_per_round"]))


if __name__ == "__main__":
    main()
