#!/usr/bin/python3
"""gen_vectors.py: known-answer vectors for learn/, from an independent
numpy implementation (float64, direct loops for convolution, no im2col).

Writes learn_kat.txt next to this file: for each case, the model shape,
parameters (PyTorch layout, in sotto's flat order), a batch, and the
expected logits, mean loss, gradient and the parameters after two steps of
SGD (momentum, weight decay) and of Adam. tests/unit/learn_kat_test.c
compares learn/ against them. If PyTorch is installed, the script also
checks its own numbers against torch (forward, autograd, torch.optim).

    /usr/bin/python3 tests/vectors/learn/gen_vectors.py
"""
import os
import sys

import numpy as np

rng = np.random.default_rng(20261127)


def dense_f(x, w, b):
    return x @ w.T + b


def conv_f(x, w, b):
    # x (B, C, H, W), w (O, C, K, K), valid, stride 1
    B, C, H, W = x.shape
    O, _, K, _ = w.shape
    y = np.zeros((B, O, H - K + 1, W - K + 1))
    for i in range(H - K + 1):
        for j in range(W - K + 1):
            patch = x[:, :, i:i + K, j:j + K]
            y[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3]))
    return y + b[None, :, None, None]


def conv_b(dy, x, w):
    B, C, H, W = x.shape
    O, _, K, _ = w.shape
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for i in range(H - K + 1):
        for j in range(W - K + 1):
            patch = x[:, :, i:i + K, j:j + K]
            g = dy[:, :, i, j]  # (B, O)
            dw += np.tensordot(g, patch, axes=([0], [0]))
            dx[:, :, i:i + K, j:j + K] += np.tensordot(g, w, axes=([1], [0]))
    return dx, dw, dy.sum(axis=(0, 2, 3))


def pool_f(x):
    B, C, H, W = x.shape
    y = np.zeros((B, C, H // 2, W // 2))
    arg = np.zeros((B, C, H // 2, W // 2, 2), dtype=int)
    for i in range(H // 2):
        for j in range(W // 2):
            win = x[:, :, 2 * i:2 * i + 2, 2 * j:2 * j + 2].reshape(B, C, 4)
            k = win.argmax(axis=2)  # first maximum, as learn/ does
            y[:, :, i, j] = win.max(axis=2)
            arg[:, :, i, j, 0] = 2 * i + k // 2
            arg[:, :, i, j, 1] = 2 * j + k % 2
    return y, arg


def pool_b(dy, arg, shape):
    dx = np.zeros(shape)
    B, C, PH, PW = dy.shape
    for b in range(B):
        for c in range(C):
            for i in range(PH):
                for j in range(PW):
                    dx[b, c, arg[b, c, i, j, 0], arg[b, c, i, j, 1]] += dy[b, c, i, j]
    return dx


def xent(z, y):
    m = z.max(axis=1, keepdims=True)
    lse = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    loss = (lse - z[np.arange(len(y)), y]).mean()
    p = np.exp(z - lse[:, None])
    p[np.arange(len(y)), y] -= 1
    return loss, p / len(y)


def relu(v):
    return np.maximum(v, 0)


def forward_backward(kind, P, x, y):
    """P: list of (name, array) in flat order. Returns logits, loss, grads (list)."""
    p = dict(P)
    g = {}
    if kind in ("logreg", "mlp"):
        acts = [x.reshape(len(x), -1)]
        layers = [n[:-7] for n, _ in P if n.endswith(".weight")]
        for i, L in enumerate(layers):
            a = dense_f(acts[-1], p[L + ".weight"], p[L + ".bias"])
            acts.append(relu(a) if i + 1 < len(layers) else a)
        z = acts[-1]
        loss, d = xent(z, y)
        for i in reversed(range(len(layers))):
            L = layers[i]
            if i + 1 < len(layers):
                d = d * (acts[i + 1] > 0)
            g[L + ".weight"] = d.T @ acts[i]
            g[L + ".bias"] = d.sum(axis=0)
            d = d @ p[L + ".weight"]
    else:
        c1 = relu(conv_f(x, p["conv1.weight"], p["conv1.bias"]))
        p1, a1 = pool_f(c1)
        c2 = relu(conv_f(p1, p["conv2.weight"], p["conv2.bias"]))
        p2, a2 = pool_f(c2)
        f = p2.reshape(len(x), -1)
        z = dense_f(f, p["fc.weight"], p["fc.bias"])
        loss, d = xent(z, y)
        g["fc.weight"] = d.T @ f
        g["fc.bias"] = d.sum(axis=0)
        d = (d @ p["fc.weight"]).reshape(p2.shape)
        d = pool_b(d, a2, c2.shape) * (c2 > 0)
        d, g["conv2.weight"], g["conv2.bias"] = conv_b(d, p1, p["conv2.weight"])
        d = pool_b(d, a1, c1.shape) * (c1 > 0)
        _, g["conv1.weight"], g["conv1.bias"] = conv_b(d, x, p["conv1.weight"])
    return z, loss, [g[n] for n, _ in P]


def flat(arrs):
    return np.concatenate([a.ravel() for a in arrs])


def optimize(kind, P, x, y, opt, steps, lr, mom, wd, b2=0.999, eps=1e-8):
    names = [n for n, _ in P]
    params = [a.copy() for _, a in P]
    m = [np.zeros_like(a) for a in params]
    v = [np.zeros_like(a) for a in params]
    for t in range(1, steps + 1):
        _, _, grads = forward_backward(kind, list(zip(names, params)), x, y)
        for i in range(len(params)):
            gi = grads[i] + wd * params[i]
            if opt == "sgd":
                m[i] = mom * m[i] + gi
                params[i] = params[i] - lr * m[i]
            else:
                m[i] = mom * m[i] + (1 - mom) * gi
                v[i] = b2 * v[i] + (1 - b2) * gi * gi
                mh = m[i] / (1 - mom ** t)
                vh = v[i] / (1 - b2 ** t)
                params[i] = params[i] - lr * mh / (np.sqrt(vh) + eps)
    return flat(params)


def make_case(name, kind, shape, classes, hidden, conv, B):
    C, H, W = shape
    D = C * H * W
    P = []

    def add(n, *s):
        fan_in = int(np.prod(s[1:])) if len(s) > 1 else None
        P.append((n, rng.uniform(-0.5, 0.5, size=s)))

    if kind == "logreg":
        add("fc.weight", classes, D)
        add("fc.bias", classes)
    elif kind == "mlp":
        prev = D
        for i, h in enumerate(hidden):
            add("fc%d.weight" % (i + 1), h, prev)
            add("fc%d.bias" % (i + 1), h)
            prev = h
        add("fc%d.weight" % (len(hidden) + 1), classes, prev)
        add("fc%d.bias" % (len(hidden) + 1), classes)
    else:
        K = 5
        add("conv1.weight", conv[0], C, K, K)
        add("conv1.bias", conv[0])
        h = ((H - K + 1) // 2 - K + 1) // 2
        w = ((W - K + 1) // 2 - K + 1) // 2
        add("conv2.weight", conv[1], conv[0], K, K)
        add("conv2.bias", conv[1])
        add("fc.weight", classes, conv[1] * h * w)
        add("fc.bias", classes)
    # Round everything to float32 first: the C side starts from the same numbers.
    P = [(n, a.astype(np.float32).astype(np.float64)) for n, a in P]
    x = rng.uniform(0, 1, size=(B, C, H, W)).astype(np.float32).astype(np.float64)
    y = rng.integers(0, classes, size=B)
    z, loss, grads = forward_backward(kind, P, x, y)
    out = {
        "kind": kind, "name": name, "shape": shape, "classes": classes,
        "hidden": hidden, "conv": conv, "B": B, "P": P, "x": x, "y": y,
        "logits": z, "loss": loss, "grad": flat(grads),
        "sgd": optimize(kind, P, x, y, "sgd", 2, 0.1, 0.9, 0.01),
        "adam": optimize(kind, P, x, y, "adam", 2, 0.01, 0.9, 0.01),
    }
    return out


def torch_check(c):
    try:
        import torch
    except ImportError:
        return "torch not installed: numpy only"
    torch.set_default_dtype(torch.float64)
    C, H, W = c["shape"]
    mods = []
    if c["kind"] == "cnn":
        net = torch.nn.Sequential(
            torch.nn.Conv2d(C, c["conv"][0], 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(c["conv"][0], c["conv"][1], 5), torch.nn.ReLU(),
            torch.nn.MaxPool2d(2), torch.nn.Flatten(),
            torch.nn.Linear(c["P"][4][1].shape[1], c["classes"]))
    else:
        layers = [torch.nn.Flatten()]
        ws = [a for n, a in c["P"] if n.endswith(".weight")]
        for i, w in enumerate(ws):
            layers.append(torch.nn.Linear(w.shape[1], w.shape[0]))
            if i + 1 < len(ws):
                layers.append(torch.nn.ReLU())
        net = torch.nn.Sequential(*layers)
    params = list(net.parameters())
    for p, (_, a) in zip(params, c["P"]):
        p.data = torch.tensor(a)
    x = torch.tensor(c["x"])
    y = torch.tensor(c["y"])
    z = net(x)
    loss = torch.nn.functional.cross_entropy(z, y)
    loss.backward()
    g = np.concatenate([p.grad.numpy().ravel() for p in params])
    assert np.allclose(z.detach().numpy(), c["logits"], atol=1e-10), "logits"
    assert abs(loss.item() - c["loss"]) < 1e-10, "loss"
    assert np.allclose(g, c["grad"], atol=1e-10), "grad"
    for opt, ctor in (("sgd", lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9,
                                                           weight_decay=0.01)),
                      ("adam", lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.9, 0.999),
                                                            eps=1e-8, weight_decay=0.01))):
        for p, (_, a) in zip(params, c["P"]):
            p.data = torch.tensor(a)
        o = ctor(params)
        for _ in range(2):
            o.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            o.step()
        after = np.concatenate([p.detach().numpy().ravel() for p in params])
        assert np.allclose(after, c[opt], atol=1e-10), opt
    return "torch %s agrees" % torch.__version__


def write(cases, path):
    with open(path, "w") as f:
        f.write("# learn/ known-answer vectors, written by gen_vectors.py (numpy %s).\n"
                % np.__version__)
        f.write("# Each line: NAME COUNT VALUES... A case starts with 'case'.\n")
        for c in cases:
            C, H, W = c["shape"]
            hid = c["hidden"] or []
            f.write("case 1 %s\n" % c["name"])
            f.write("type 1 %d\n" % {"logreg": 0, "mlp": 1, "cnn": 2}[c["kind"]])
            f.write("shape 3 %d %d %d\n" % (C, H, W))
            f.write("classes 1 %d\n" % c["classes"])
            f.write("hidden %d %s\n" % (len(hid), " ".join(str(h) for h in hid)))
            conv = c["conv"] or [0, 0]
            f.write("conv 2 %d %d\n" % tuple(conv))
            f.write("batch 1 %d\n" % c["B"])
            for key, arr in (("params", flat([a for _, a in c["P"]])),
                             ("x", c["x"].ravel()), ("labels", c["y"].astype(float)),
                             ("logits", c["logits"].ravel()), ("loss", np.array([c["loss"]])),
                             ("grad", c["grad"]), ("sgd2", c["sgd"]), ("adam2", c["adam"])):
                f.write("%s %d %s\n" % (key, arr.size,
                                        " ".join("%.9g" % v for v in arr)))


def main():
    cases = [
        make_case("logreg", "logreg", (1, 3, 4), 4, None, None, 5),
        make_case("mlp", "mlp", (1, 1, 7), 3, [6, 5], None, 4),
        make_case("cnn", "cnn", (2, 16, 16), 3, None, [3, 4], 3),
    ]
    for c in cases:
        print(c["name"], torch_check(c), file=sys.stderr)
    write(cases, os.path.join(os.path.dirname(os.path.abspath(__file__)), "learn_kat.txt"))


if __name__ == "__main__":
    main()
