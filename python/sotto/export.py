"""Reading ``sotto export`` files: a NumPy .npz of named float32 tensors and
its JSON sidecar (docs/operations.md, "Taking the model out").

Only numpy is needed; PyTorch is imported when a torch module is asked for.
"""
import json
import os

import numpy as np

FORMAT = "sotto-export"
VERSION = 1


class Export:
    """A model exported by ``sotto export``: its sidecar (``meta``) and tensors."""

    def __init__(self, meta, tensors):
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise ValueError("not a %s version %d sidecar: %r"
                             % (FORMAT, VERSION, meta.get("format")))
        for name, shape in meta["tensors"].items():
            if name not in tensors:
                raise ValueError("the archive lacks %s" % name)
            if list(tensors[name].shape) != list(shape) or tensors[name].dtype != np.float32:
                raise ValueError("%s is %s %s, the sidecar says float32 %s"
                                 % (name, tensors[name].dtype, tensors[name].shape, shape))
        self.meta = meta
        self.tensors = tensors
        self.type = meta["model"]["type"]
        if self.type == "external":
            # A trainer's own model ([Model] Type = external): load_into() it.
            self.classes = None
            self.input_shape = None
            return
        self.classes = meta["model"]["classes"]
        self.input_shape = tuple(meta["model"]["input_shape"])

    # -- inputs ---------------------------------------------------------------

    def scale(self, raw):
        """Raw feature rows (n, features), as in the site's CSV or bytes of an
        image dataset, scaled the way the site's Dataset was."""
        x = np.asarray(raw, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        want = int(np.prod(self.input_shape))
        if x.shape[1] != want:
            raise ValueError("rows have %d features, the model takes %d" % (x.shape[1], want))
        how = self.meta["input"]
        if how.startswith("standardised"):
            return (x - self.tensors["input.mean"]) / self.tensors["input.std"]
        if how.startswith("bytes"):
            return x / np.float32(255)
        return x

    # -- numpy forward ----------------------------------------------------------

    def logits(self, x):
        """Logits of already scaled rows (n, features)."""
        t = self.tensors
        x = np.asarray(x, dtype=np.float32)
        if self.type == "logreg":
            return x @ t["fc.weight"].T + t["fc.bias"]
        if self.type == "mlp":
            n = len(self.meta["model"]["hidden"]) + 1
            for i in range(1, n + 1):
                x = x @ t["fc%d.weight" % i].T + t["fc%d.bias" % i]
                if i < n:
                    x = np.maximum(x, 0)
            return x
        if self.type == "cnn":
            c, h, w = self.input_shape
            x = x.reshape(-1, c, h, w)
            for name in ("conv1", "conv2"):
                x = _maxpool2(_conv_valid(x, t[name + ".weight"], t[name + ".bias"]))
                x = np.maximum(x, 0)
            x = x.reshape(x.shape[0], -1)
            return x @ t["fc.weight"].T + t["fc.bias"]
        raise ValueError("unknown model type %r" % self.type)

    def predict_proba(self, raw):
        """Class probabilities (n, classes) of raw feature rows."""
        z = self.logits(self.scale(raw)).astype(np.float64)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def predict(self, raw):
        """The most probable class of each raw row."""
        return self.predict_proba(raw).argmax(axis=1)

    # -- PyTorch ------------------------------------------------------------------

    def load_into(self, module):
        """Copies the tensors into a torch module by name: its parameters and
        floating buffers (BatchNorm statistics included). Every one of them must
        be in the export with the same shape; integer buffers (BatchNorm's
        num_batches_tracked) are left as they are. Returns the module."""
        import torch

        named = list(module.named_parameters()) + [
            (n, b) for n, b in module.named_buffers() if b is not None and b.dtype.is_floating_point]
        missing = [n for n, _ in named if n not in self.tensors]
        if missing:
            raise ValueError("the export lacks %s (another model?)" % ", ".join(missing[:5]))
        with torch.no_grad():
            for n, t in named:
                v = self.tensors[n]
                if tuple(v.shape) != tuple(t.shape):
                    raise ValueError("%s is %s in the export, %s in the module"
                                     % (n, tuple(v.shape), tuple(t.shape)))
                t.copy_(torch.from_numpy(np.ascontiguousarray(v)))
        return module

    def torch_module(self):
        """An ``nn.Module`` of the same architecture with these weights (its
        state_dict keys are the tensor names). It takes scaled rows: use
        ``torch.from_numpy(export.scale(raw))``."""
        import torch
        from torch import nn

        m = self.meta["model"]
        if self.type == "logreg":
            net = _Logreg(int(np.prod(self.input_shape)), self.classes, nn)
        elif self.type == "mlp":
            net = _MLP(int(np.prod(self.input_shape)), m["hidden"], self.classes, nn)
        elif self.type == "cnn":
            net = _CNN(self.input_shape, m["conv"], m["kernel"], self.classes, nn)
        elif self.type == "external":
            raise ValueError("an external model is the trainer's own module: use load_into()")
        else:
            raise ValueError("unknown model type %r" % self.type)
        state = {k: torch.from_numpy(v) for k, v in self.tensors.items()
                 if not k.startswith("input.")}
        net.load_state_dict(state, strict=True)
        net.eval()
        return net


def load_export(path, sidecar=None):
    """Reads ``sotto export``'s .npz and its JSON sidecar (by default the
    same path ending in .json)."""
    if sidecar is None:
        root, _ = os.path.splitext(path)
        sidecar = root + ".json"
    with open(sidecar, encoding="utf-8") as f:
        meta = json.load(f)
    with np.load(path, allow_pickle=False) as z:
        tensors = {k: z[k] for k in z.files}
    return Export(meta, tensors)


def _conv_valid(x, w, b):
    """x (n, c, h, w) * w (o, c, k, k), stride 1, no padding, + b: cross-correlation
    as PyTorch's Conv2d computes it."""
    n, c, h, wd = x.shape
    o, _, k, _ = w.shape
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(2, 3))  # n c oh ow k k
    y = np.einsum("ncijkl,ockl->noij", win, w, optimize=True)
    return (y + b[None, :, None, None]).astype(np.float32)


def _maxpool2(x):
    n, c, h, w = x.shape
    x = x[:, :, : h // 2 * 2, : w // 2 * 2]
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def _Logreg(d, classes, nn):
    class Logreg(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(d, classes)

        def forward(self, x):
            return self.fc(x.reshape(x.shape[0], -1))

    return Logreg()


def _MLP(d, hidden, classes, nn):
    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            sizes = [d] + list(hidden) + [classes]
            for i in range(len(sizes) - 1):
                setattr(self, "fc%d" % (i + 1), nn.Linear(sizes[i], sizes[i + 1]))
            self.n = len(sizes) - 1

        def forward(self, x):
            x = x.reshape(x.shape[0], -1)
            for i in range(1, self.n + 1):
                x = getattr(self, "fc%d" % i)(x)
                if i < self.n:
                    x = x.relu()
            return x

    return MLP()


def _CNN(shape, conv, kernel, classes, nn):
    c, h, w = shape

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(c, conv[0], kernel)
            self.conv2 = nn.Conv2d(conv[0], conv[1], kernel)
            ph = ((h - kernel + 1) // 2 - kernel + 1) // 2
            pw = ((w - kernel + 1) // 2 - kernel + 1) // 2
            self.fc = nn.Linear(conv[1] * ph * pw, classes)
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            x = x.reshape(x.shape[0], c, h, w)
            x = self.pool(self.conv1(x)).relu()
            x = self.pool(self.conv2(x)).relu()
            return self.fc(x.flatten(1))

    return CNN()
