"""Probes: look inside a network while gradients flow through it (notebooks 03 and 04).

- ``gradient_norms(model, x, y)``: one forward + one backward pass on a batch, and the L2
  (Frobenius) norm of the gradient of every Conv/Linear weight, ordered input -> output.
  Plot it on a log scale: a vanishing gradient is a line that falls towards the input.
- ``activation_stats(model, x)``: one forward pass, and for every activation layer the
  mean, the standard deviation, the fraction of *saturated* units (local slope below a
  threshold: almost no gradient gets through them) and the values themselves (a random
  sample, ready for a histogram) -- the measurements of Glorot & Bengio (2010): means and
  standard deviations during training (Figure 2, Section 3.1), percentiles and histograms
  (Figures 3-4, Sections 3.2-3.3; Figure 6, Section 4.2.2).

Both leave the model as they found it: its ``.grad`` fields, its train/eval mode and its
buffers (BatchNorm running statistics) are untouched.  They run the model in training mode
by default (``train=True``), the mode whose gradients ``fit`` follows.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import contextmanager

import torch
from torch import nn

from deepnets import checks
from deepnets.modes import measurement_mode

__all__ = ["gradient_norms", "activation_stats", "weight_layers", "ACTIVATION_TYPES"]

#: Layers whose weight gradient ``gradient_norms`` reports.
WEIGHT_LAYER_TYPES = (nn.Linear, nn.modules.conv._ConvNd)

#: Element-wise non-linearities that ``activation_stats`` looks at by default.
ACTIVATION_TYPES = (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU,
                    nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Softplus, nn.Hardtanh,
                    nn.Hardsigmoid, nn.Hardswish, nn.LogSigmoid, nn.Tanhshrink)


def _name(name: str, module: nn.Module) -> str:
    # The model itself is a single layer: named_modules() calls it "".
    return name or type(module).__name__


def weight_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """(name, module) of every Conv/Linear layer that has a trainable weight, in
    registration order (``gradient_norms`` reorders them by the forward pass)."""
    return [(_name(n, m), m) for n, m in model.named_modules()
            if isinstance(m, WEIGHT_LAYER_TYPES)
            and getattr(m, "weight", None) is not None and m.weight.requires_grad]


@contextmanager
def _forward_hooks(modules: Iterable[tuple[str, nn.Module]], hook: Callable, pre: bool = False):
    """Call ``hook(name, module, *args)`` after (or, with ``pre=True``, before) each module's
    forward; the hooks are removed on exit."""
    register = "register_forward_pre_hook" if pre else "register_forward_hook"
    handles = [getattr(m, register)(lambda mod, *args, name=name: hook(name, mod, *args))
               for name, m in modules]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   loss_fn: Callable | None = None, *, wrt: str = "weight",
                   train: bool = True) -> dict[str, float]:
    """L2 norm of the loss gradient of every Conv/Linear weight, for one batch.

    One forward and one backward pass (``torch.autograd.grad``, so ``.grad`` is not
    touched). Returns ``{module name: norm}`` ordered input -> output, i.e. in the order the
    forward pass calls the layers (for a ResNet the order the shortcut conv runs in, not
    the order it was registered in). A layer called more than once counts once, at its
    first call; a layer the forward pass never calls is left out.

    ``wrt="output"`` gives instead the norm of the gradient with respect to each layer's
    *output* (for a Linear layer, dL/da with a = Wh + b: the "delta" that backprop passes
    down, one per example, taken as one [batch, units] matrix). The chain rule bounds it
    layer by layer, so it is the quantity to put beside an analytic bound.

    ``loss_fn(output, y)`` defaults to cross-entropy (mean over the batch), so the norms are
    those of the gradient one SGD step of ``fit`` would take. ``x`` and ``y`` are moved to
    the model's device.
    """
    checks.one_of("wrt", wrt, ("weight", "output"))
    _check_model(model)
    checks.images("x", x, dims=x.dim() if isinstance(x, torch.Tensor) else 4, model="gradient_norms")
    if loss_fn is None:
        checks.labels("y", y, count=len(x))
    loss_fn = loss_fn if loss_fn is not None else nn.CrossEntropyLoss()
    layers = weight_layers(model)
    if not layers:
        raise checks.ArgumentValueError(f"model has no Conv/Linear layer with a trainable weight "
                                        f"({type(model).__name__}), so there is no gradient to measure. "
                                        f"Pass a network with at least one nn.Linear or nn.Conv2d.")
    device = next(model.parameters()).device
    x = x.to(device)
    y = y.to(device) if isinstance(y, torch.Tensor) else y

    outputs: dict[str, torch.Tensor] = {}                  # first call wins, order kept
    with measurement_mode(model, train, keep_buffers=True), torch.enable_grad(), \
            _forward_hooks(layers, lambda name, mod, inp, out: outputs.setdefault(name, out)):
        loss = loss_fn(model(x), y)
        if loss.dim() != 0:
            raise checks.ArgumentValueError(f"loss_fn must return a scalar, got shape {tuple(loss.shape)}. "
                                            f"Use a loss with reduction='mean' (the default).")
        by_name = dict(layers)
        targets = [by_name[n].weight if wrt == "weight" else outputs[n] for n in outputs]
        grads = torch.autograd.grad(loss, targets, allow_unused=True)
    # the norm in float64: squaring float32 entries above ~1e19 would overflow to inf
    return {n: (0.0 if g is None else g.detach().double().norm().item())
            for n, g in zip(outputs, grads)}


class ModuleNameError(checks.ArgumentValueError, KeyError):
    """A module name the model does not have (a KeyError, as a dict lookup would raise)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


def _check_model(model: object) -> None:
    if not isinstance(model, nn.Module):
        raise checks.ArgumentTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}. "
                                       f"Pass the network itself, e.g. deep_mlp(20).")


def _resolve_modules(model: nn.Module, modules: object) -> list[tuple[str, nn.Module]]:
    named = [(_name(n, m), m) for n, m in model.named_modules()]
    if modules is None:
        return [(n, m) for n, m in named if isinstance(m, ACTIVATION_TYPES)]
    if isinstance(modules, type) or (isinstance(modules, tuple)
                                     and all(isinstance(t, type) for t in modules)):
        return [(n, m) for n, m in named if isinstance(m, modules)]
    lookup = dict(named)
    missing = [n for n in modules if n not in lookup]
    if missing:
        raise ModuleNameError(f"modules names {missing}, which the model does not have; names look "
                              f"like {[n for n, _ in named[1:4]]}. Pass names from model.named_modules().")
    return [(n, lookup[n]) for n in modules]


@torch.no_grad()
def activation_stats(model: nn.Module, x: torch.Tensor,
                     modules: Iterable[str] | type | tuple[type, ...] | None = None, *,
                     slope_threshold: float = 0.01, max_values: int = 20_000,
                     bins: int = 50, train: bool = True, seed: int = 0) -> dict[str, dict]:
    """Statistics of the outputs of the chosen layers for one batch ``x``.

    ``modules``: None = every activation layer (``ACTIVATION_TYPES``: nn.Sigmoid, nn.Tanh,
    nn.ReLU, ...); a module type or tuple of types; or a list of module names.

    Returns ``{name: stats}`` in forward order; ``stats`` holds
    - ``mean``, ``std``: of all output values (floats);
    - ``example_std``: how much a unit's output changes from one example to the next: the
      standard deviation over the batch of each unit (each position after the batch
      dimension), averaged over the units. ``std`` mixes units and examples; this is the part
      that carries information about the input (0: every example gives the same output);
    - ``saturated``: fraction of units whose local slope |f'(z)| at their input z is below
      ``slope_threshold`` (default 0.01: a sigmoid output below 0.01 or above 0.99, a tanh
      output beyond +-0.995, a ReLU unit at zero). Backprop multiplies by this slope, so a
      saturated unit passes (almost) no gradient. Only for element-wise layers whose output
      has the shape of their input; None for others (e.g. Linear);
    - ``dead``: fraction of units (positions after the batch dimension) saturated for every
      example of the batch: they pass no gradient at all (None where ``saturated`` is);
    - ``values``: a 1-D CPU tensor, a random sample of at most ``max_values`` outputs
      (seeded), for histograms;
    - ``hist``: ``(counts, edges)`` of all finite outputs, ``bins`` bins between min and max.
    """
    _check_model(model)
    checks.images("x", x, dims=x.dim() if isinstance(x, torch.Tensor) else 4, model="activation_stats")
    targets = _resolve_modules(model, modules)
    if not targets:
        raise checks.ArgumentValueError("modules selects no layer to watch: the model has no activation "
                                        "module of those types. Pass modules=... names or types it has.")
    device = next(iter(model.parameters()), torch.empty(0)).device
    inputs: dict[str, torch.Tensor | None] = {}
    captured: dict[str, tuple[nn.Module, torch.Tensor | None, torch.Tensor]] = {}

    def pre_hook(name, mod, inp):
        if name not in inputs:
            z = inp[0] if inp and isinstance(inp[0], torch.Tensor) else None
            # an in-place layer (nn.ReLU(inplace=True)) overwrites its input: keep a copy
            inputs[name] = z.clone() if z is not None and getattr(mod, "inplace", False) else z

    def hook(name, mod, inp, out):
        if name not in captured and isinstance(out, torch.Tensor):
            captured[name] = (mod, inputs.get(name), out)

    with measurement_mode(model, train, keep_buffers=True), _forward_hooks(targets, pre_hook, pre=True), \
            _forward_hooks(targets, hook):
        model(x.to(device))

    gen = torch.Generator().manual_seed(seed)
    stats = {}
    for name, (mod, z, out) in captured.items():
        a = out.detach().float().flatten()
        saturated = dead = None
        if z is not None and z.shape == out.shape:
            with torch.enable_grad():   # local slope f'(z), element-wise, by autograd
                zz = z.detach().clone().requires_grad_(True)
                slope, = torch.autograd.grad(mod(zz + 0).sum(), zz)  # +0: in-place safe
            flat = (slope.abs() < slope_threshold).flatten(1)
            saturated = flat.float().mean().item()
            dead = flat.all(0).float().mean().item()
        finite = a[torch.isfinite(a)]        # an exploded net can hold inf/NaN
        lo, hi = (finite.min().item(), finite.max().item()) if finite.numel() else (0.0, 0.0)
        if hi <= lo:
            hi = lo + 1e-6
        counts = torch.histc(finite, bins=bins, min=lo, max=hi).cpu()
        edges = torch.linspace(lo, hi, bins + 1)
        keep = a.cpu()
        if keep.numel() > max_values:
            keep = keep[torch.randperm(keep.numel(), generator=gen)[:max_values]]
        per_unit = out.detach().float().reshape(len(out), -1) if out.dim() > 0 else None
        example_std = per_unit.std(0, unbiased=False).mean().item() if per_unit is not None else 0.0
        stats[name] = {"mean": a.mean().item(), "std": a.std().item() if a.numel() > 1 else 0.0,
                       "example_std": example_std, "saturated": saturated, "dead": dead, "values": keep, "hist": (counts, edges)}
    return stats
