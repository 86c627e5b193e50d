"""Read sotto's dataset files (.sdat, .sdat.gz; docs/learning.md, "The
dataset format") with numpy alone: what `sotto data import-csv`,
`import-mnist` and `split` write, so a trainer of its own ([Model] Type =
external) trains on exactly the rows a built-in model would.

    >>> d = sotto.load_dataset("shard-0.sdat.gz")
    >>> d.x.shape, d.y.shape            # (rows, dims) float32, (rows,) int64
    >>> d.images().shape                # (rows, C, H, W) for image data
"""
import gzip
import struct

import numpy as np

MAGIC = b"SOTTODAT"


class Dataset:
    def __init__(self, x, y, classes, shape, mean=None, std=None):
        self.x = x
        self.y = y
        self.classes = classes
        self.shape = shape          # (C, H, W) for images, else None
        self.mean = mean
        self.std = std

    def __len__(self):
        return len(self.y)

    def images(self):
        """The rows as (rows, C, H, W); ValueError for data that are not images."""
        if self.shape is None:
            raise ValueError("not an image dataset")
        return self.x.reshape((-1,) + self.shape)


def load_dataset(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 48 or raw[:8] != MAGIC:
        raise ValueError("%s: not a sotto dataset (wrong magic)" % path)
    version, rows, dims, classes, elem, c, h, w, flags = struct.unpack_from("<9I", raw, 8)
    if version != 1 or elem not in (1, 2):
        raise ValueError("%s: unsupported dataset version or element type" % path)
    off = 48
    mean = std = None
    if flags & 1:
        mean = np.frombuffer(raw, "<f4", dims, off).astype(np.float32)
        std = np.frombuffer(raw, "<f4", dims, off + 4 * dims).astype(np.float32)
        off += 8 * dims
    size = 1 if elem == 1 else 4
    stride = 1 + dims * size
    if len(raw) != off + rows * stride:
        raise ValueError("%s: %d bytes, the header says %d" % (path, len(raw), off + rows * stride))
    table = np.frombuffer(raw, np.uint8, rows * stride, off).reshape(rows, stride)
    y = table[:, 0].astype(np.int64)
    if elem == 1:
        x = table[:, 1:].astype(np.float32) / 255.0
    else:
        x = np.ascontiguousarray(table[:, 1:]).view("<f4").astype(np.float32)
    shape = (c, h, w) if c else None
    return Dataset(x, y, classes, shape, mean, std)
