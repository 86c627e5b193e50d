"""The Python package against the sotto binary: exports that numpy reads and
PyTorch loads, with the probabilities `sotto predict` computes.

SOTTO_BIN names the binary (default: build/sotto of this checkout)."""
import json
import os
import subprocess

import numpy as np
import pytest

import sotto

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("SOTTO_BIN", os.path.join(ROOT, "build", "sotto"))


def run(*args, cwd=None):
    r = subprocess.run([BIN] + list(args), cwd=cwd, capture_output=True, text=True)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def site(tmp_path, model, dataset, epochs=4):
    """A site config from `sotto init` whose checkpoint `sotto train` wrote."""
    tpl = tmp_path / "tpl.ini"
    tpl.write_text("[Model]\n%s\n[Training]\nDataset = %s\nEpochs = %d\n" % (model, dataset, epochs))
    run("init", "-o", str(tmp_path / "sites"), "-t", str(tpl),
        "a=127.0.0.1:1", "b=127.0.0.1:2", "c=127.0.0.1:3", "d=127.0.0.1:4")
    d = tmp_path / "sites" / "a"
    (d / "state").mkdir()
    run("train", "-c", "a.conf", "--save", "state/checkpoint", cwd=d)
    return d


@pytest.fixture
def tabular(tmp_path):
    rng = np.random.default_rng(5)
    y = np.arange(600) % 3
    x = 0.5 * rng.normal(size=(600, 6)) + 3 * np.eye(6)[2 * y] + np.arange(6)
    np.savetxt(tmp_path / "train.csv", np.column_stack([x, y]), delimiter=",", fmt="%.5f")
    run("data", "import-csv", str(tmp_path / "train.csv"), str(tmp_path / "train.sdat.gz"))
    return tmp_path, x, y


def test_mlp_export_matches_predict(tabular):
    tmp, x, y = tabular
    d = site(tmp, "Type = mlp\nHidden = 8, 5", tmp / "train.sdat.gz")
    run("export", "-c", "a.conf", "-o", "m.npz", cwd=d)
    m = sotto.load_export(str(d / "m.npz"))
    assert m.type == "mlp" and m.classes == 3 and m.meta["model"]["hidden"] == [8, 5]
    np.savetxt(tmp / "rows.csv", x[:50], delimiter=",", fmt="%.5f")
    run("predict", "-c", "a.conf", str(tmp / "rows.csv"), str(tmp / "p.csv"), cwd=d)
    want = np.loadtxt(tmp / "p.csv", delimiter=",", skiprows=1)
    rows = np.loadtxt(tmp / "rows.csv", delimiter=",")
    got = m.predict_proba(rows)
    assert np.abs(got - want[:, 1:]).max() < 1e-4
    assert (m.predict(rows) == want[:, 0]).all()
    assert (m.predict(x) == y).mean() > 0.9


def test_torch_module_matches_numpy(tabular):
    torch = pytest.importorskip("torch")
    tmp, x, _ = tabular
    d = site(tmp, "Type = mlp\nHidden = 8, 5", tmp / "train.sdat.gz")
    run("export", "-c", "a.conf", "-o", "m.npz", cwd=d)
    m = sotto.load_export(str(d / "m.npz"))
    net = m.torch_module()
    assert set(net.state_dict()) == {k for k in m.tensors if not k.startswith("input.")}
    with torch.no_grad():
        z = net(torch.from_numpy(m.scale(x[:40]))).numpy()
    assert np.abs(z - m.logits(m.scale(x[:40]))).max() < 1e-4


def test_logreg(tabular):
    tmp, x, y = tabular
    d = site(tmp, "Type = logreg", tmp / "train.sdat.gz")
    run("export", "-c", "a.conf", "-o", "m.npz", cwd=d)
    m = sotto.load_export(str(d / "m.npz"))
    assert sorted(m.tensors) == ["fc.bias", "fc.weight", "input.mean", "input.std"]
    assert (m.predict(x) == y).mean() > 0.9


def test_cnn_torch_and_numpy_agree(tmp_path):
    torch = pytest.importorskip("torch")
    run("data", "split", os.path.join(ROOT, "data", "mnist-test.sdat.gz"), str(tmp_path / "s"),
        "--nodes", "8", "--seed", "1")
    d = site(tmp_path, "Type = cnn", tmp_path / "s-0.sdat.gz", epochs=1)
    run("export", "-c", "a.conf", "-o", "m.npz", cwd=d)
    m = sotto.load_export(str(d / "m.npz"))
    assert m.type == "cnn" and m.input_shape == (1, 28, 28)
    assert m.meta["input"].startswith("bytes")
    raw = np.random.default_rng(1).integers(0, 256, size=(7, 784)).astype(np.float32)
    net = m.torch_module()
    with torch.no_grad():
        z = net(torch.from_numpy(m.scale(raw))).numpy()
    assert np.abs(z - m.logits(m.scale(raw))).max() < 1e-3


def test_refuses_what_does_not_match(tabular):
    tmp, _, _ = tabular
    d = site(tmp, "Type = logreg", tmp / "train.sdat.gz")
    run("export", "-c", "a.conf", "-o", "m.npz", cwd=d)
    meta = json.loads((d / "m.json").read_text())
    meta["tensors"]["fc.weight"] = [3, 7]
    (d / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="fc.weight"):
        sotto.load_export(str(d / "m.npz"), sidecar=str(d / "bad.json"))
    meta["format"] = "something-else"
    (d / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="sidecar"):
        sotto.load_export(str(d / "m.npz"), sidecar=str(d / "bad.json"))
    m = sotto.load_export(str(d / "m.npz"))
    with pytest.raises(ValueError, match="features"):
        m.predict(np.zeros((2, 5)))
