"""sotto.Trainer against real `sotto run` processes ([Model] Type = external):
the trainer socket refuses what it must with a reply that says why and keeps
the node as it was; three numpy trainers average; a node restarted from
DataDir/external.state hands a new trainer the rounds it had.

SOTTO_BIN names the binary (default: build/sotto of this checkout)."""
import os
import socket
import struct
import subprocess
import time

import msgpack
import numpy as np
import pytest

import sotto

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SOTTO_BIN", os.path.join(ROOT, "build", "sotto"))
LAYOUT = [("fc.weight", (4, 25)), ("fc.bias", (4,)), ("bn.running_var", (4,))]
N = 108


def sites(tmp_path, names="abc"):
    tpl = tmp_path / "tpl.ini"
    tpl.write_text("[Model]\nType = external\n[Gossip]\nGroupSize = 3\nInterval = 0.3\n")
    r = subprocess.run([BIN, "init", "-o", str(tmp_path / "s"), "-t", str(tpl)] +
                       ["%s=ipc://%s/%s.sock" % (n, tmp_path, n) for n in names],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return {n: tmp_path / "s" / n for n in names}


class Node:
    def __init__(self, d, name):
        self.d, self.name = d, name
        self.conf = str(d / ("%s.conf" % name))
        self.log = open(d / "node.log", "ab")
        self.p = subprocess.Popen([BIN, "run", "-c", "%s.conf" % name], cwd=d,
                                  stdout=self.log, stderr=subprocess.STDOUT)
        self.sock = str(d / "state" / "trainer.sock")
        for _ in range(100):
            if os.path.exists(self.sock):
                break
            time.sleep(0.05)
        assert os.path.exists(self.sock), (d / "node.log").read_text()

    def stop(self):
        self.p.terminate()
        try:
            rc = self.p.wait(timeout=60)
        finally:
            self.log.close()
        assert rc == 0, (self.d / "node.log").read_text()[-3000:]

    def text(self):
        return (self.d / "node.log").read_text()


@pytest.fixture
def nodes(tmp_path):
    ds = sites(tmp_path)
    ns = {n: Node(d, n) for n, d in ds.items()}
    yield ns
    # A clean stop, exit status 0: under the sanitizers that is also the leak check.
    for n in ns.values():
        if n.p.poll() is None:
            n.stop()


def raw_connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def send(s, body):
    s.sendall(struct.pack(">I", len(body)) + body)


def recv(s):
    def exact(n):
        b = b""
        while len(b) < n:
            k = s.recv(n - len(b))
            if not k:
                raise EOFError
            b += k
        return b
    (n,) = struct.unpack(">I", exact(4))
    return msgpack.unpackb(exact(n), raw=False)


def hello(layout=LAYOUT, rows=100):
    return msgpack.packb({"t": "hello", "v": 1, "dtype": "float32", "rows": rows,
                          "layout": [[n, list(s)] for n, s in layout]})


def test_socket_refuses_bad_input_and_changes_nothing(nodes):
    a = nodes["a"]
    assert oct(os.stat(a.sock).st_mode & 0o777) == "0o600"
    # Before any trainer: `sotto status` answers, and says what it waits for.
    st = sotto.trainer.node_status(str(a.d / "state" / "control.sock"))
    assert st["state"] == "waiting" and "trainer.sock" in st["trainer"], st
    s = raw_connect(a.sock)
    for body, why in [(b"\xc1", "msgpack"),
                      (msgpack.packb([1, 2]), "map"),
                      (msgpack.packb({"t": "nope"}), "unknown message type"),
                      (msgpack.packb({"t": "params", "applied": 0, "epochs": 0, "done": False,
                                      "x": b"\0" * 4}), "before"),
                      (msgpack.packb({"t": "hello", "v": 1, "dtype": "float64", "rows": 1,
                                      "layout": [["w", [2]]]}), "float32"),
                      (msgpack.packb({"t": "hello", "v": 9, "dtype": "float32", "rows": 1,
                                      "layout": [["w", [2]]]}), "protocol")]:
        send(s, body)
        m = recv(s)
        assert m["t"] == "error" and why in m["msg"], (why, m)
    # The same connection still works: nothing changed.
    send(s, hello())
    w = recv(s)
    assert w["t"] == "welcome" and w["n_params"] == N and w["rounds"] == 0
    # Wrong size, NaN, and an applied seq the node never sent: refused.
    x = np.zeros(N, np.float32)
    for fields, why in [({"x": b"\0" * 8}, "float32 values"),
                        ({"x": np.full(N, np.nan, np.float32).tobytes()}, "not finite"),
                        ({"x": x.tobytes(), "applied": 5}, "not sent")]:
        f = {"t": "params", "applied": 0, "epochs": 0.0, "done": False}
        f.update(fields)
        send(s, msgpack.packb(f))
        m = recv(s)
        assert m["t"] == "error" and why in m["msg"], (why, m)
    # A second trainer while one is attached: refused.
    s2 = raw_connect(a.sock)
    assert "attached to this node already" in recv(s2)["msg"]
    s2.close()
    st = sotto.trainer.node_status(str(a.d / "state" / "control.sock"))
    assert int(st["trainer_frames_refused"]) >= 10
    assert "no parameters pushed yet" in st["trainer"]
    # A frame larger than the limit: refused, and the connection closed.
    s.sendall(struct.pack(">I", 1 << 30))
    assert "frame of" in recv(s)["msg"]
    with pytest.raises((EOFError, ConnectionResetError)):
        recv(s)
    s.close()
    time.sleep(0.2)
    st = sotto.trainer.node_status(str(a.d / "state" / "control.sock"))
    assert "no trainer attached" in st["trainer"] and "declining" in st["trainer"]
    # Another layout than the node's: refused with both hashes.
    t = sotto.Trainer(a.conf, rows=100)
    with pytest.raises(sotto.TrainerError, match="layout"):
        t.attach(np.zeros(8, np.float32), layout=[("other", (8,))])
    assert a.p.poll() is None, a.text()


def toy_round(ns, seconds=6.0, rows=(100, 200, 300)):
    """Three numpy trainers that 'train' toward their own targets, then settle."""
    trainers, vecs, targets = [], [], []
    for i, n in enumerate(ns):
        v = np.zeros(N, np.float32)
        v[-4:] = 1.0  # a variance
        t = sotto.Trainer(n.conf, rows=rows[i])
        t.attach(v, layout=LAYOUT)
        trainers.append(t)
        vecs.append(v)
        targets.append(np.full(N, float(i), np.float32))
    end = time.time() + seconds
    while time.time() < end:
        for t, v, g in zip(trainers, vecs, targets):
            v[:-4] += 0.2 * (g[:-4] - v[:-4])
            t.sync(epochs=1.0)
        time.sleep(0.05)
    phases = [None] * 3
    end = time.time() + 60
    while time.time() < end and phases != ["done"] * 3:
        for i, t in enumerate(trainers):
            t.wait_result(timeout=0.1)
            t.sync(done=True)
            phases[i] = t.status()["phase"]
    return trainers, vecs, phases


def test_three_trainers_average_and_resume(nodes):
    ns = [nodes["a"], nodes["b"], nodes["c"]]
    trainers, vecs, phases = toy_round(ns)
    assert phases == ["done"] * 3, [n.text()[-2000:] for n in ns]
    assert all(t.results > 0 for t in trainers)
    # Every site holds the consensus: between the targets 0..2, the same everywhere.
    for v in vecs[1:]:
        assert np.linalg.norm(v - vecs[0]) <= 1e-3 * np.linalg.norm(vecs[0])
    assert 0.2 < vecs[0][:-4].mean() < 1.8
    assert (vecs[0][-4:] >= 0).all()
    rounds = int(trainers[0].status()["rounds_completed"])
    for t in trainers:
        t.close()
    # `sotto export` of an external model: the last average, named and shaped
    # as declared, readable by numpy alone; `sotto predict` says to use it.
    out = str(ns[0].d / "m.npz")
    r = subprocess.run([BIN, "export", "-c", ns[0].conf, "-o", out], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    with np.load(out) as z:
        got = np.concatenate([z[n].reshape(-1) for n, _ in LAYOUT])
        assert [tuple(z[n].shape) for n, _ in LAYOUT] == [s for _, s in LAYOUT]
    assert np.linalg.norm(got - vecs[0]) <= 1e-3 * np.linalg.norm(vecs[0])
    e = sotto.load_export(out)
    assert e.type == "external" and e.meta["trained"]["rounds_completed"] >= 1
    r = subprocess.run([BIN, "predict", "-c", ns[0].conf, out, str(ns[0].d / "p.csv")],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "load_into" in r.stderr
    # Restart node a: it resumes from DataDir/external.state, and a trainer
    # that attaches gets its rounds and last averaged model in the welcome.
    a = ns[0]
    a.stop()
    assert os.path.exists(a.d / "state" / "external.state")
    na = Node(a.d, "a")
    nodes["a"] = na
    t = sotto.Trainer(na.conf, rows=100)
    v = np.zeros(N, np.float32)
    t.attach(v, layout=LAYOUT, resume=True)
    assert t.welcome["rounds"] == rounds
    assert np.allclose(v, t.last) and np.linalg.norm(v - vecs[0]) <= 1e-3 * np.linalg.norm(vecs[0])
    assert "resumed from" in na.text()
    t.close()


def test_other_layout_declined_and_counted(nodes):
    """c's trainer declares another layout: c declines a's and b's invitations,
    logs why with both hashes, and counts them; nothing is averaged."""
    ts = []
    for n in (nodes["a"], nodes["b"]):
        t = sotto.Trainer(n.conf, rows=100)
        t.attach(np.zeros(N, np.float32), layout=LAYOUT)
        ts.append(t)
    tc = sotto.Trainer(nodes["c"].conf, rows=100)
    tc.attach(np.zeros(N, np.float32), layout=[("fc.weight", (4, 25)), ("other", (8,))])
    ts.append(tc)
    end = time.time() + 30
    while time.time() < end:
        for t in ts:
            t.vec.np[:] += 0.01
            t.sync(epochs=1.0)
        if int(tc.status()["declined_layout"]) >= 2:
            break
        time.sleep(0.1)
    st = tc.status()
    assert int(st["declined_layout"]) >= 2, nodes["c"].text()[-2000:]
    assert int(st["rounds_completed"]) == 0
    assert "parameter layout differs" in nodes["c"].text()
    assert "parameter layout differs" in nodes["a"].text() + nodes["b"].text()
    for t in ts:
        assert t.results == 0
        t.close()


def test_kill_mid_run_resumes_with_exact_sums(tmp_path):
    """SIGKILL a node while its trainer syncs and rounds run: the trainer sees
    the node go, a restarted node resumes from external.state, a trainer
    attaches again, and every round any node applied verifies exactly
    (SOTTO_TEST_VERIFY records, tests/chaos/verify.py)."""
    os.environ["SOTTO_TEST_VERIFY"] = "1"
    try:
        ds = sites(tmp_path)
        ns = {n: Node(d, n) for n, d in ds.items()}
    finally:
        del os.environ["SOTTO_TEST_VERIFY"]
    try:
        vecs = {n: np.full(N, float(i), np.float32) for i, n in enumerate("abc")}
        ts = {}
        for n in "abc":
            ts[n] = sotto.Trainer(ns[n].conf, rows=100)
            ts[n].attach(vecs[n], layout=LAYOUT)

        def run(seconds, names):
            end = time.time() + seconds
            while time.time() < end:
                for n in names:
                    vecs[n][:-4] += 0.001
                    ts[n].sync(epochs=1.0)
                time.sleep(0.05)

        def rounds_beyond(n):
            """Syncs in 2 s steps until node a completed more than n rounds:
            about 4 s on an idle machine, up to 30 s under a loaded test run
            (a CI run saw none in 4 s). A liveness check, not a timing."""
            for _ in range(15):
                run(2, "abc")
                if int(ts["a"].status()["rounds_completed"]) > n:
                    break
            return int(ts["a"].status()["rounds_completed"]) > n

        rounds_beyond(0)
        before = int(ts["a"].status()["rounds_completed"])
        assert before > 0, ns["a"].text()[-2000:]
        ns["a"].p.kill()
        ns["a"].p.wait()
        with pytest.raises(sotto.TrainerError):
            for _ in range(50):
                ts["a"].sync(epochs=1.0)
                time.sleep(0.05)
        run(2, "bc")
        os.environ["SOTTO_TEST_VERIFY"] = "1"
        try:
            ns["a"] = Node(ds["a"], "a")
        finally:
            del os.environ["SOTTO_TEST_VERIFY"]
        ts["a"] = sotto.Trainer(ns["a"].conf, rows=100)
        ts["a"].attach(vecs["a"], layout=LAYOUT)
        assert ts["a"].welcome["rounds"] >= 1
        # The restarted node completes a round again.
        assert rounds_beyond(ts["a"].welcome["rounds"]), ns["a"].text()[-2000:]
        for t in ts.values():
            t.close()
        for n in ns.values():
            n.stop()
        r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "chaos", "verify.py")]
                           + [str(ds[n] / "state") for n in "abc"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "verified 0 " not in r.stdout, r.stdout
    finally:
        for n in ns.values():
            if n.p.poll() is None:
                n.p.kill()
                n.p.wait()


def test_background_mode(nodes):
    """trainer.start(): a thread syncs while the loop trains under trainer.lock."""
    ts, vs = [], []
    for i, n in enumerate(("a", "b", "c")):
        v = np.full(N, float(i), np.float32)
        t = sotto.Trainer(nodes[n].conf, rows=100)
        t.start(v, every=0.05, layout=LAYOUT)
        ts.append(t)
        vs.append(v)
    # Two results each: about a second on an idle machine; up to 30 s under
    # a loaded test run (a liveness check, not a timing).
    end = time.time() + 30
    while time.time() < end and min(t.results for t in ts) < 2:
        for t, v in zip(ts, vs):
            with t.lock:
                v[:-4] += 0.001   # a training step
        time.sleep(0.01)
    for t in ts:
        t.stop(done=True)
        assert t.error is None
        assert t.results >= 1
        t.close()
