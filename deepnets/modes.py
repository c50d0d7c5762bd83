"""The one way the course puts a model in eval (or train) mode for a measurement, and back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["measurement_mode"]


@contextmanager
def measurement_mode(model: nn.Module, train: bool = False, keep_buffers: bool = False) -> Iterator[nn.Module]:
    """Run ``model`` in eval mode (``train=True``: train mode) inside the ``with``; afterwards
    every submodule gets back the mode it had. ``keep_buffers=True`` also restores the
    buffers (BatchNorm's running statistics move with every forward pass in train mode)."""
    modes = {m: m.training for m in model.modules()}
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()} if keep_buffers else {}
    model.train(train)
    try:
        yield model
    finally:
        for m, mode in modes.items():
            m.training = mode
        if buffers:
            with torch.no_grad():
                for n, b in model.named_buffers():
                    if n in buffers:
                        b.copy_(buffers[n])
