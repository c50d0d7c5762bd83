"""A layer table: each layer's output shape, parameters and FLOPs for one input size.

Shapes come from forward hooks, FLOPs from torch's own `FlopCounterMode` (forward pass,
2 FLOPs per multiply-add), so nothing here re-derives a formula by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from deepnets import checks
from deepnets.modes import measurement_mode


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those that require gradients)."""
    _check_model(model)
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


@dataclass
class LayerTable:
    """Rows of {name, type, output_shape, params, flops} plus totals; print() it."""

    rows: list[dict[str, Any]]
    total_params: int
    total_flops: int
    input_size: tuple[int, ...]

    def __str__(self) -> str:
        unit, scale = ("GFLOPs", 1e9) if self.total_flops >= 1e10 else ("MFLOPs", 1e6)
        name_w = max([len("layer")] + [len(r["name"]) for r in self.rows])
        type_w = max([len("type")] + [len(r["type"]) for r in self.rows])
        shape_w = max([len("output shape")] + [len(_shape(r["output_shape"])) for r in self.rows])
        head = (f"{'layer':<{name_w}}  {'type':<{type_w}}  {'output shape':<{shape_w}}  "
                f"{'params':>12}  {unit:>10}")
        lines = [f"input {_shape(self.input_size[1:])}", head, "-" * len(head)]
        for r in self.rows:
            lines.append(f"{r['name']:<{name_w}}  {r['type']:<{type_w}}  "
                         f"{_shape(r['output_shape']):<{shape_w}}  {r['params']:>12,}  "
                         f"{r['flops'] / scale:>10,.2f}")
        lines.append("-" * len(head))
        lines.append(f"{'total':<{name_w + type_w + shape_w + 4}}  {self.total_params:>12,}  "
                     f"{self.total_flops / scale:>10,.2f}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise checks.ArgumentTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}. "
                                       f"Pass the network itself, e.g. lenet5(), not its class or output.")


def _shape(shape: Sequence[int]) -> str:
    return " x ".join(str(s) for s in shape)


def layer_table(model: nn.Module, input_size: Sequence[int] = (1, 3, 224, 224),
                depth: int | None = None) -> LayerTable:
    """Output shape (without the batch), parameters and forward FLOPs of every layer.

    Layers are the leaf modules; `depth=1` groups them by top-level child, `depth=2`
    one level further, and so on. Shapes are per image, FLOPs for the whole input batch.
    """
    _check_model(model)
    if isinstance(input_size, (str, bytes)) or not isinstance(input_size, Sequence) or len(input_size) != 4:
        raise checks.ArgumentValueError(f"input_size must be (batch, channels, height, width), got "
                                        f"{input_size!r}. Pass e.g. (1, 1, 28, 28).")
    for i, n in enumerate(input_size):
        checks.positive_int(f"input_size[{i}]", n)
    if depth is not None:
        checks.positive_int("depth", depth, fix="Pass None for every leaf layer.")
    batch, channels, height, width = input_size
    checks.fits_in_memory("input_size", 4 * batch * channels * height * width,
                          f"An input of size {tuple(input_size)}")
    if next(model.parameters(), None) is None:
        raise checks.ArgumentValueError(f"model ({type(model).__name__}) has no parameters, so there "
                                        f"is nothing to tabulate. Pass a network with layers.")
    named = [(n, m) for n, m in model.named_modules() if n]
    if depth is None:
        chosen = [(n, m) for n, m in named if not list(m.children())]
    else:
        chosen = [(n, m) for n, m in named
                  if n.count(".") + 1 == depth or (n.count(".") + 1 < depth and not list(m.children()))]
    shapes: dict[str, tuple] = {}

    def remember(name: str):
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            out = output[0] if isinstance(output, (tuple, list)) else output
            shapes[name] = tuple(out.shape[1:])
        return hook

    handles = [m.register_forward_hook(remember(n)) for n, m in chosen]
    device = next(model.parameters()).device
    try:
        with measurement_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(tuple(input_size), device=device))
    finally:
        for h in handles:
            h.remove()
    root = type(model).__name__
    flops = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    rows = [{
        "name": n,
        "type": type(m).__name__,
        "output_shape": shapes.get(n, ()),
        "params": count_params(m),
        "flops": int(flops.get(f"{root}.{n}", 0)),
    } for n, m in chosen if n in shapes]
    return LayerTable(rows, count_params(model), int(counter.get_total_flops()), tuple(input_size))
