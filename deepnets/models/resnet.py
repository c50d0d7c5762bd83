"""ResNet (He, Zhang, Ren, Sun 2015, "Deep Residual Learning for Image Recognition").

Read it top to bottom like torchvision's ``resnet.py``:

1. the two residual blocks, ``BasicBlock`` (two 3x3 convs, ResNet-18/34 and the paper's
   CIFAR nets) and ``Bottleneck`` (1x1 -> 3x3 -> 1x1, ResNet-50/101/152);
2. ``ResNet``: a stem, then *stages*.  Inside a stage the feature-map size and the channel
   count stay constant, so a stage is just copies of one block, built by the one function
   ``ResNet._make_stage`` (torchvision calls it ``_make_layer``).  Only the first block of a
   stage may change the shape (stride 2 and/or more channels); its shortcut must then change
   shape too;
3. the constructors: ``resnet18 ... resnet152`` (ImageNet layout, paper Table 1, state-dict
   compatible with ``torchvision.models.resnet*``), ``cifar_resnet(depth)`` (the paper's
   6n+2-layer CIFAR nets, section 4.2, and their "plain" twins without shortcuts) and
   ``fashion_resnet()`` (notebook 04's final net, which ``deepnets.bench`` also times).

Each block computes ``y = relu(F(x) + shortcut(x))``.  The stacked layers learn the
*residual* F(x) = H(x) - x of the mapping H(x) we want; if the identity is nearly right,
F only has to learn a small correction (pushing its weights towards zero is easy).

Shortcuts when a block changes the shape (paper section 3.3; options compared in Table 3):
- ``"zero_pad"`` (option A): take every other pixel and pad the extra channels with zeros.
  No parameters, so a ResNet and its plain twin have exactly the same parameter count.  The
  paper uses it for its CIFAR nets (section 4.2) and for the 18/34-layer ImageNet ResNets
  of its plain-vs-residual comparison (Table 2, Fig. 4);
- ``"projection"`` (option B): 1x1 conv with stride 2 (+ BatchNorm).  The paper uses it for
  ResNet-50/101/152 (section 4.1, "Deeper Bottleneck Architectures"); torchvision uses it
  in every ResNet.  In Table 3, B is slightly better than A; option C (projections on every
  shortcut) is marginally better again, and the paper does not use it further;
- ``None``: no shortcut at all, the "plain" net (same layers, nothing added).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from deepnets import checks

#: How a block's shortcut matches a change of shape (paper section 3.3); None: no shortcut.
SHORTCUTS = ("projection", "zero_pad", None)

__all__ = [
    "SHORTCUTS", "BasicBlock", "Bottleneck", "ZeroPadShortcut", "ResNet",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "cifar_resnet", "fashion_resnet",
]


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 (keeps the size when stride is 1); no bias (BN follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution: mixes channels only."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class ZeroPadShortcut(nn.Module):
    """Option A shortcut: subsample by ``stride``, zero-pad the channels up to ``planes``.

    Parameter-free; used where a stage starts (e.g. [B, 16, 28, 28] -> [B, 32, 14, 14]) by the
    paper's CIFAR ResNets and by the 18/34-layer ResNets of its ImageNet comparison (Table 2).
    """

    def __init__(self, planes: int, stride: int) -> None:
        """Output ``planes`` channels, taking every ``stride``-th pixel."""
        super().__init__()
        self.planes = planes
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Every stride-th pixel, read as x[:, :, ::2, ::2] but written as a 1x1 max pool: the same
        # numbers forward and backward (tested). The slice's backward hands its gradient back
        # in NCHW layout; among channels_last tensors the next ReLU backward then took 10.8 ms
        # instead of 1.8 ms at [256, 16, 28, 28], and fashion_resnet's training step ran about
        # 6% slower (medians of four runs, 2 threads).
        x = F.max_pool2d(x, kernel_size=1, stride=self.stride)
        extra = self.planes - x.shape[1]
        # F.pad pads the last dims first: (W left, W right, H top, H bottom, C front, C back)
        return F.pad(x, (0, 0, 0, 0, 0, extra))

    def extra_repr(self) -> str:
        return f"planes={self.planes}, stride={self.stride}"


class BasicBlock(nn.Module):
    """Two 3x3 convs: conv-BN-ReLU-conv-BN, plus the shortcut, then ReLU.

    ``downsample`` is the shortcut used when the shape changes (None = identity).
    ``residual=False`` drops the shortcut altogether: the block of a plain net.
    """

    expansion = 1  # output channels = planes * expansion

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, residual: bool = True) -> None:
        """``inplanes`` channels in, ``planes`` out; ``stride`` 2 halves the map in conv1."""
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))           # F(x)
        if self.residual:
            identity = x if self.downsample is None else self.downsample(x)
            out = out + identity                   # F(x) + x
        return self.relu(out)


class Bottleneck(nn.Module):
    """1x1 (reduce channels) -> 3x3 -> 1x1 (expand x4), plus the shortcut, then ReLU.

    The 3x3 conv works on ``planes`` channels, a quarter of the block's output.  The paper's
    comparison (section 4.1, Fig. 5): a bottleneck on 256-d maps costs about as much as a
    basic block on 64-d maps, with three layers instead of two.  Swapping every basic block
    of ResNet-34 for one gives ResNet-50: 3.8 against 3.6 billion multiply-adds (Table 1),
    though more parameters (25.6M against 21.8M), as its outputs are four times wider.
    The stride sits on the 3x3 conv, as in torchvision ("ResNet v1.5"); the authors' released
    models put it on the first 1x1 conv, which costs a little less compute.
    """

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1,
                 downsample: nn.Module | None = None, residual: bool = True) -> None:
        """``inplanes`` channels in, ``planes * 4`` out; ``stride`` 2 halves the map in conv2."""
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))            # F(x)
        if self.residual:
            identity = x if self.downsample is None else self.downsample(x)
            out = out + identity                   # F(x) + x
        return self.relu(out)


class ResNet(nn.Module):
    """stem -> stages (``layer1``, ``layer2``, ...) -> global average pool -> fc.

    block:            ``BasicBlock`` or ``Bottleneck``.
    blocks_per_stage: e.g. [3, 4, 6, 3] for ResNet-50 (torchvision calls it ``layers``).
    widths:           ``planes`` per stage (a block outputs planes * block.expansion channels).
    stem:             ``"imagenet"`` (7x7/2 conv + 3x3/2 max pool) or ``"cifar"`` (one 3x3 conv).
    shortcut:         ``"projection"`` (option B), ``"zero_pad"`` (option A) or ``None`` (plain).
    The first stage keeps the stem's resolution, every later stage halves it (stride 2).
    Module names match torchvision's, so its state dicts load with ``strict=True``.
    """

    def __init__(self, block: type[BasicBlock] | type[Bottleneck], blocks_per_stage: Sequence[int],
                 widths: Sequence[int] = (64, 128, 256, 512), num_classes: int = 1000,
                 in_channels: int = 3, stem: str = "imagenet",
                 shortcut: str | None = "projection", zero_init_residual: bool = False) -> None:
        """See the class docstring; ``zero_init_residual`` starts each block as the identity."""
        super().__init__()
        if block not in (BasicBlock, Bottleneck) and not (isinstance(block, type)
                                                          and hasattr(block, "expansion")):
            raise checks.ArgumentTypeError(f"block must be a block class with an `expansion` attribute, "
                                           f"got {block!r}. Pass BasicBlock or Bottleneck.")
        if isinstance(blocks_per_stage, (str, bytes)) or not isinstance(blocks_per_stage, Sequence):
            raise checks.ArgumentTypeError(f"blocks_per_stage must be a list of ints, one per stage, "
                                           f"got {blocks_per_stage!r}. Pass e.g. [2, 2, 2, 2].")
        if len(blocks_per_stage) != len(widths):
            raise checks.ArgumentValueError(
                f"blocks_per_stage {list(blocks_per_stage)} and widths {list(widths)} have different "
                f"lengths; give one entry per stage in each.")
        for i, (n, w) in enumerate(zip(blocks_per_stage, widths)):
            checks.positive_int(f"blocks_per_stage[{i}]", n)
            checks.positive_int(f"widths[{i}]", w)
        checks.positive_int("num_classes", num_classes)
        self.in_channels = checks.positive_int("in_channels", in_channels)
        checks.one_of("stem", stem, ("imagenet", "cifar"),
                      fix="Pass 'imagenet' (7x7 conv + max pool, for 224x224 images) or 'cifar' "
                          "(one 3x3 conv, for small images).")
        checks.one_of("shortcut", shortcut, SHORTCUTS,
                      fix="Pass 'projection' (option B), 'zero_pad' (option A) or None (a plain net).")
        self.shortcut = shortcut
        self.inplanes = widths[0]  # channels entering the next block; _make_stage updates it

        if stem == "imagenet":     # 224 -> 112 (7x7 conv, stride 2) -> 56 (max pool)
            self.conv1 = nn.Conv2d(in_channels, self.inplanes, kernel_size=7, stride=2,
                                   padding=3, bias=False)
        else:                      # small images: one 3x3 conv, keep the resolution
            self.conv1 = conv3x3(in_channels, self.inplanes)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        if stem == "imagenet":
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.maxpool = nn.Identity()

        # One stage per entry; names layer1, layer2, ... as in torchvision.
        self.stage_names: list[str] = []
        for i, (planes, blocks) in enumerate(zip(widths, blocks_per_stage)):
            stride = 1 if i == 0 else 2
            name = f"layer{i + 1}"
            self.add_module(name, self._make_stage(block, planes, blocks, stride))
            self.stage_names.append(name)

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)

        # Convs: He initialisation, as the paper (section 3.4, its reference [13]); torchvision
        # draws it for the backward pass (fan_out), one of the two forms [13] derives.
        # BN: scale 1, shift 0, i.e. plain normalisation. The fc keeps PyTorch's default.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        # Not in the paper (Goyal et al. 2017, "Accurate, Large Minibatch SGD"): the last BN
        # of each branch starts at scale 0, so F(x) = 0 and each block passes its input on.
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_stage(self, block: type[BasicBlock] | type[Bottleneck], planes: int, blocks: int,
                    stride: int = 1) -> nn.Sequential:
        """One stage: ``blocks`` blocks; only the first may change the shape."""
        out_planes = planes * block.expansion
        downsample = None
        if self.shortcut is not None and (stride != 1 or self.inplanes != out_planes):
            if self.shortcut == "projection":      # option B: 1x1 conv (+ BN)
                downsample = nn.Sequential(conv1x1(self.inplanes, out_planes, stride),
                                           nn.BatchNorm2d(out_planes))
            else:                                  # option A: subsample + zero channels
                downsample = ZeroPadShortcut(out_planes, stride)
        residual = self.shortcut is not None

        stage = [block(self.inplanes, planes, stride, downsample, residual)]
        self.inplanes = out_planes
        for _ in range(1, blocks):
            stage.append(block(self.inplanes, planes, residual=residual))
        return nn.Sequential(*stage)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checks.images("images", x, channels=self.in_channels, model="This ResNet")
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in self.stage_names:
            x = getattr(self, name)(x)
        x = torch.flatten(self.avgpool(x), 1)
        return self.fc(x)


# ImageNet ResNets (paper Table 1; option B where the shape changes, as torchvision).
# State dicts match torchvision.models.resnet*.

def resnet18(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-18 (paper Table 1): BasicBlocks, [2, 2, 2, 2] per stage; torchvision's state-dict keys.
    Keyword arguments as in :class:`ResNet`."""
    return ResNet(BasicBlock, [2, 2, 2, 2], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet34(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-34 (paper Table 1): BasicBlocks, [3, 4, 6, 3] per stage; torchvision's state-dict keys.
    Keyword arguments as in :class:`ResNet`."""
    return ResNet(BasicBlock, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet50(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-50 (paper Table 1): Bottlenecks, [3, 4, 6, 3] per stage; torchvision's state-dict keys.
    Keyword arguments as in :class:`ResNet`."""
    return ResNet(Bottleneck, [3, 4, 6, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet101(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-101 (paper Table 1): Bottlenecks, [3, 4, 23, 3] per stage; torchvision's state-dict keys.
    Keyword arguments as in :class:`ResNet`."""
    return ResNet(Bottleneck, [3, 4, 23, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


def resnet152(num_classes: int = 1000, in_channels: int = 3, **kwargs: Any) -> ResNet:
    """ResNet-152 (paper Table 1): Bottlenecks, [3, 8, 36, 3] per stage; torchvision's state-dict keys.
    Keyword arguments as in :class:`ResNet`."""
    return ResNet(Bottleneck, [3, 8, 36, 3], num_classes=num_classes, in_channels=in_channels, **kwargs)


# The paper's CIFAR-10 nets (section 4.2): a 3x3 conv, then 3 stages of 2n 3x3 convs with
# 16/32/64 filters on maps of size 32/16/8 (28/14/7 for Fashion-MNIST), global average
# pooling and a fully-connected layer: 6n + 2 weighted layers.

def cifar_resnet(depth: int, shortcut: str | None = "zero_pad", in_channels: int = 1,
                 num_classes: int = 10, widths: tuple[int, int, int] = (16, 32, 64),
                 residual: bool | None = None) -> ResNet:
    """ResNet-``depth`` with the paper's option A shortcuts (``shortcut="zero_pad"``), or its
    plain twin (``shortcut=None``: the same layers, no shortcuts); ``"projection"`` is option B.

    depth = 6n + 2: 20, 32, 44, 56, 110, ... ; each stage has n BasicBlocks.
    ``residual=`` is the old spelling (``residual=False`` is ``shortcut=None``), kept for one release.
    """
    if residual is not None:
        warnings.warn("cifar_resnet(residual=...) is now cifar_resnet(shortcut=...): residual=False is "
                      "shortcut=None, residual=True is shortcut='zero_pad' (the default).",
                      DeprecationWarning, stacklevel=2)
        shortcut = "zero_pad" if residual else None
    if isinstance(depth, bool) or not isinstance(depth, int):
        checks.positive_int("depth", depth, fix="Use one of 8, 14, 20, 32, 44, 56, 110, ... (6n+2).")
    if depth < 8 or (depth - 2) % 6 != 0:
        raise checks.ArgumentValueError(
            f"depth must be 6n+2 with n >= 1 (a CIFAR-style ResNet has 6n+2 layers); got depth={depth!r}. "
            f"Use one of 8, 14, 20, 32, 44, 56, 110, ...")
    n = (depth - 2) // 6
    return ResNet(BasicBlock, [n, n, n], widths=widths, num_classes=num_classes,
                  in_channels=in_channels, stem="cifar", shortcut=shortcut)


def fashion_resnet(num_classes: int = 10, in_channels: int = 1) -> ResNet:
    """Notebook 04's final net, a ResNet-10 for 28x28 grey images: ResNet-18's four stages
    (the width doubling as the map halves) at a quarter of its width, one BasicBlock per
    stage, the CIFAR stem (one 3x3 conv, no pooling) and option A shortcuts.

    Stages at 28, 14, 7 and 4 pixels with 16, 32, 64 and 128 filters; 297,338 parameters.
    """
    return ResNet(BasicBlock, [1, 1, 1, 1], widths=(16, 32, 64, 128), num_classes=num_classes,
                  in_channels=in_channels, stem="cifar", shortcut="zero_pad")
