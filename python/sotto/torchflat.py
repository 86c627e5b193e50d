"""One flat float32 vector over a PyTorch module's parameters and floating
buffers (BatchNorm's running statistics included), without a second copy
of the model: the module's tensors become views into the vector, so reading
the vector is free, and loading an averaged one back is a single copy.

    >>> flat = sotto.FlatModule(model)     # once; model.to(...) after this breaks the views
    >>> v = flat.vector                    # float32, 1-D, shares memory with model
    >>> flat.load(averaged)                # copies averaged into the model's tensors
    >>> flat.layout                        # [(name, shape), ...] in vector order

The layout is what a sotto node needs to know about an external model:
names in `named_parameters()` then `named_buffers()` order, float32 only
(integer buffers such as BatchNorm's num_batches_tracked are left out, and
listed in `skipped`).
"""


class FlatModule:
    def __init__(self, module):
        import torch

        tensors = []
        self.skipped = []
        for name, p in module.named_parameters():
            tensors.append((name, p))
        for name, b in module.named_buffers():
            if b is None:
                continue
            if b.dtype.is_floating_point:
                tensors.append((name, b))
            else:
                self.skipped.append(name)
        for name, t in tensors:
            if t.dtype != torch.float32:
                raise TypeError("%s is %s: sotto averages float32 tensors" % (name, t.dtype))
            if t.device.type != "cpu":
                raise TypeError("%s is on %s: flatten on the CPU" % (name, t.device))
        n = sum(t.numel() for _, t in tensors)
        self.vector = torch.empty(n, dtype=torch.float32)
        self.layout = []
        off = 0
        with torch.no_grad():
            for name, t in tensors:
                k = t.numel()
                view = self.vector[off:off + k].view_as(t)
                view.copy_(t)
                # The module's tensor now lives in the vector; its old storage is freed
                # once nothing else refers to it (one tensor at a time, not a second model).
                t.data = view
                self.layout.append((name, tuple(t.shape)))
                off += k
        self.module = module

    def numpy(self):
        """The vector as a numpy array sharing its memory."""
        return self.vector.numpy()

    def load(self, values):
        """Copies values (n float32, numpy or torch) into the module's tensors."""
        import torch

        src = torch.as_tensor(values, dtype=torch.float32)
        if src.shape != self.vector.shape:
            raise ValueError("%s values for a layout of %d" % (tuple(src.shape), self.vector.numel()))
        with torch.no_grad():
            self.vector.copy_(src)
