"""FlatModule: one vector over a module's float tensors, no second copy."""
import numpy as np
import pytest

import sotto

torch = pytest.importorskip("torch")
nn = torch.nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        return self.fc(self.bn(self.conv(x)).relu().flatten(1))


def test_layout_views_and_load():
    torch.manual_seed(0)
    net = Net()
    x = torch.randn(5, 1, 8, 8)
    net.train()
    net(x)  # moves the BatchNorm statistics away from their defaults
    before = {k: v.clone() for k, v in net.state_dict().items()}
    flat = sotto.FlatModule(net)
    names = [n for n, _ in flat.layout]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "fc.weight", "fc.bias",
                     "bn.running_mean", "bn.running_var"]
    assert flat.skipped == ["bn.num_batches_tracked"]
    assert flat.vector.numel() == sum(int(np.prod(s)) for _, s in flat.layout)
    for k, v in net.state_dict().items():  # same values, now inside the vector
        assert torch.equal(v, before[k])
    base = flat.vector.data_ptr()
    end = base + 4 * flat.vector.numel()
    for _, t in list(net.named_parameters()) + [("m", net.bn.running_mean), ("v", net.bn.running_var)]:
        assert base <= t.data_ptr() < end
    # Training moves the vector: it is the model.
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    v0 = flat.numpy().copy()
    net(x).sum().backward()
    opt.step()
    assert not np.array_equal(v0, flat.numpy())
    # An averaged vector loads back with one copy, buffers included.
    avg = np.arange(flat.vector.numel(), dtype=np.float32) / 1000
    flat.load(avg)
    assert torch.equal(net.fc.bias, torch.from_numpy(avg[-3 - 8:-8]))  # fc.bias sits before the 8 BN stats
    assert np.array_equal(flat.numpy(), avg)
    assert float(net.bn.running_var[-1]) == pytest.approx(float(avg[-1]))
    with pytest.raises(ValueError):
        flat.load(avg[:-1])


def test_refuses_other_dtypes():
    net = nn.Linear(3, 2).double()
    with pytest.raises(TypeError, match="float32"):
        sotto.FlatModule(net)


def test_large_model_no_second_copy():
    """About 10^8 parameters (400 MB): building the vector must not hold two models."""
    import resource

    net = nn.Sequential(*[nn.Linear(5000, 5000, bias=False) for _ in range(4)])  # 10^8
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    flat = sotto.FlatModule(net)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    assert flat.vector.numel() == 10 ** 8
    # The vector (400 MB) plus at most one layer's old storage, never a second 400 MB.
    assert grown_mb < 400 + 150, grown_mb
