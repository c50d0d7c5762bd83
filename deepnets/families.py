"""AlexNet, VGG and ResNet side by side: what each net costs, and what torchvision says it scores.

The costs are measured on the course's own models (`deepnets.models`, weight-compatible with
torchvision's): parameters, forward FLOPs (via `deepnets.layer_table`, i.e. `FlopCounterMode`),
the activation memory of one image, and CPU latency. The ImageNet accuracies are read from
torchvision's weight enums, whose metadata ships with the package: reading it downloads nothing.
"""

from __future__ import annotations

import statistics
import time
from typing import NamedTuple

import torch
import torch.nn as nn
import torchvision

from deepnets import models
from deepnets.summary import layer_table

#: family -> the course's constructor names, oldest and smallest first
FAMILIES: dict[str, tuple[str, ...]] = {
    "AlexNet": ("alexnet",),
    "VGG": ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"),
    "ResNet": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"),
}
NETS: tuple[str, ...] = tuple(name for names in FAMILIES.values() for name in names)
#: torchvision's first ImageNet weights of each net, SGD for 90 epochs in all three families
#: (its ResNet-50/101/152 also have V2 weights, trained with a newer recipe).
WEIGHTS = "IMAGENET1K_V1"


class ImageNetMeta(NamedTuple):
    """What torchvision's weight enum records for one net's weights."""

    weights: str        # e.g. "ResNet50_Weights.IMAGENET1K_V1"
    top1: float         # ImageNet-1K validation accuracy, %
    top5: float
    num_params: int
    gmacs: float        # torchvision's `_ops`: giga multiply-adds per 224x224 image
    recipe: str         # where torchvision documents how the weights were trained
    resize: int         # the evaluation preprocessing: shorter side resized to this...
    crop: int           # ...then one centre crop of crop x crop


class Latency(NamedTuple):
    """The median of the timed forward passes and their range, in milliseconds, and how many were timed."""

    ms: float
    repeats: int
    low: float          # the fastest timed pass
    high: float         # the slowest


def family_of(name: str) -> str:
    """'VGG' for 'vgg16_bn', and so on."""
    for family, names in FAMILIES.items():
        if name in names:
            return family
    raise ValueError(f"Unknown net {name!r}. Use one of: {', '.join(NETS)}.")


def build(name: str) -> nn.Module:
    """The course's ImageNet model called `name` (1000 classes, random weights), in eval mode."""
    family_of(name)  # a clear message for a typo
    return getattr(models, name)().eval()


def imagenet_meta(name: str, weights: str = WEIGHTS) -> ImageNetMeta:
    """Top-1/top-5, parameters and GMACs that torchvision records for `name`'s `weights`."""
    enum = torchvision.models.get_model_weights(name)
    if weights not in enum.__members__:
        raise ValueError(f"torchvision has no {weights!r} weights for {name}; it has "
                         f"{', '.join(enum.__members__)}.")
    entry = enum[weights]
    meta = entry.meta
    scores = meta["_metrics"]["ImageNet-1K"]
    preprocess = entry.transforms()
    return ImageNetMeta(f"{enum.__name__}.{weights}", scores["acc@1"], scores["acc@5"],
                        meta["num_params"], meta["_ops"], meta["recipe"], preprocess.resize_size[0],
                        preprocess.crop_size[0])


def forward_flops(model: nn.Module, size: int = 224) -> int:
    """FLOPs of one forward pass of one size x size RGB image (2 per multiply-add)."""
    return layer_table(model, (1, 3, size, size)).total_flops


def activation_bytes(model: nn.Module, size: int = 224) -> int:
    """Bytes of every layer's output in one forward pass of one image, each tensor once.

    The layers are the leaf modules (conv, batch norm, ReLU, pooling, linear, ...). An output
    that *is* its input -- an in-place ReLU, dropout in eval mode, an identity -- takes no new
    memory and is not counted again. The residual additions and the flatten inside `forward`
    are not modules and are left out. Build the model under `torch.device("meta")` to count
    without computing.
    """
    total = 0

    def add(module, args, output):
        nonlocal total
        if not any(output is a for a in args):
            total += output.numel() * output.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(add) for m in leaves]
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size, device=device))
    finally:
        for h in handles:
            h.remove()
    return total


def latency(model: nn.Module, batch: int, size: int = 224, repeats: int = 5,
            max_seconds: float | None = None) -> Latency:
    """Median wall time of a forward pass of `batch` random images, eval and inference mode.

    One untimed pass first (oneDNN picks its kernels and memory is allocated on the first
    call); then up to `repeats` timed passes, stopping early once they add up to
    `max_seconds`, so that a slow net still gets at least one.
    """
    if batch < 1 or repeats < 1:
        raise ValueError(f"batch and repeats must be at least 1; got batch={batch}, repeats={repeats}.")
    model.eval()
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    times: list[float] = []
    with torch.inference_mode():
        model(x)
        while len(times) < repeats and (not times or max_seconds is None or sum(times) < max_seconds):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return Latency(1000 * statistics.median(times), len(times), 1000 * min(times), 1000 * max(times))


def stage_of(name: str, model: nn.Module) -> str:
    """The stage or group a leaf module belongs to.

    ResNet: torchvision's stages, 'stem', 'layer1'..'layer4', 'fc'. AlexNet: Caffe's layer
    names, convs numbered in order and the convs up to each max pool in one group ('conv3-5'),
    then 'fc6'..'fc8'. VGG: notebook 02's names, group 'conv1' holding conv1_1, conv1_2 (the
    convs up to the first max pool), and so on, then 'fc1'..'fc3'.
    """
    top = name.split(".")[0]
    if isinstance(model, models.ResNet):
        return top if top.startswith("layer") or top == "fc" else "stem"
    convs = [i for i, m in enumerate(model.features) if isinstance(m, nn.Conv2d)]
    if top == "features":
        index = int(name.split(".")[1])
        pools = [i for i, m in enumerate(model.features) if isinstance(m, nn.MaxPool2d)]
        start = max([p for p in pools if p < index], default=-1)
        end = min([p for p in pools if p >= index], default=len(model.features))
        if isinstance(model, models.VGG):
            return f"conv{sum(p < index for p in pools) + 1}"
        block = [convs.index(i) + 1 for i in convs if start < i < end]
        return f"conv{block[0]}" if len(block) == 1 else f"conv{block[0]}-{block[-1]}"
    if top == "classifier":
        index = int(name.split(".")[1])
        linears = max(sum(isinstance(m, nn.Linear) for m in model.classifier[:index + 1]), 1)
        return f"fc{linears}" if isinstance(model, models.VGG) else f"fc{len(convs) + linears}"
    return top  # the pool between the two halves: no parameters, no counted FLOPs


def stage_costs(model: nn.Module, size: int = 224) -> dict[str, dict[str, int]]:
    """{stage: {'params': ..., 'flops': ...}} in forward order, from `deepnets.layer_table`."""
    table = layer_table(model, (1, 3, size, size))
    costs: dict[str, dict[str, int]] = {}
    for row in table.rows:
        stage = costs.setdefault(stage_of(row["name"], model), {"params": 0, "flops": 0})
        stage["params"] += row["params"]
        stage["flops"] += row["flops"]
    return {k: v for k, v in costs.items() if v["params"] or v["flops"]}
