"""sotto: the Python side of sotto, a secure peer-to-peer gossip learning system.

What is here today: reading a model that a node exported
(``sotto export -c site.conf -o model.npz``) with numpy alone, predicting
with it, and loading it into a matching PyTorch module.

    >>> import sotto
    >>> m = sotto.load_export("model.npz")      # reads model.json beside it
    >>> m.predict_proba(rows)                   # raw feature rows, as the site's CSV
    >>> net = m.torch_module()                  # an nn.Module with the averaged weights
    >>> flat = sotto.FlatModule(net)            # one float32 vector over its tensors

A PyTorch (or any) training loop joins the secure rounds of a node whose
config says ``[Model] Type = external``:

    >>> trainer = sotto.Trainer("site.conf", rows=len(train_set))
    >>> trainer.sync(model)                     # every N steps: push, add results in
"""
from .data import Dataset, load_dataset
from .export import Export, load_export
from .torchflat import FlatModule
from .trainer import Trainer, TrainerError

__all__ = ["Dataset", "Export", "FlatModule", "Trainer", "TrainerError", "load_dataset",
           "load_export"]
__version__ = "0.1.0"
