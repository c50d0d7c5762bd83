"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet Classification with Deep
Convolutional Neural Networks"), laid out like torchvision's ``torchvision.models.alexnet``.

One class builds three nets:

* ``alexnet()`` -- torchvision's version (64-192-384-256-256 kernels, conv1 padded by 2,
  no LRN, adaptive average pooling to 6x6). Same ``features.N`` / ``classifier.N`` keys,
  so ``alexnet().load_state_dict(torchvision_alexnet.state_dict())`` works with
  ``strict=True`` and gives the same outputs. 61,100,840 parameters.
* ``alexnet_paper()`` -- the net of the paper (Section 3.5, Figure 2): 96-256-384-384-256
  kernels, conv1 without padding on a 227x227x3 input, local response normalisation (LRN)
  after conv1 and conv2, overlapping 3x3/2 max pooling, dropout 0.5 on the outputs of fc6
  and fc7 (Section 4.2), and (by default) the two-GPU split: conv2, conv4 and conv5 only
  see the kernel maps of their own GPU (``groups=2``). 60,965,224 parameters (62,378,344
  without the split).
* ``alexnet_small()`` -- the paper's pattern shrunk for 28x28 grey images (Fashion-MNIST):
  a 3x3 stride-1 stem instead of 11x11 stride 4, and a quarter of the widths.

The tools the paper lists (ReLU, dropout, overlapping pooling, LRN) are constructor
arguments, so an ablation is ``alexnet_small(lrn=False)``, not a copy of the class::

    alexnet()                                          # torchvision, 224x224x3
    alexnet_paper()                                    # the paper, 227x227x3
    alexnet_small(activation="tanh", dropout=0.0)      # Fashion-MNIST, 28x28x1
    alexnet_small(pool=(2, 2), width=0.5)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from deepnets import checks
from deepnets.checks import conv_out_size
from .activations import Activation, make_activation

__all__ = [
    "AlexNet",
    "LocalResponseNorm",
    "alexnet",
    "alexnet_paper",
    "alexnet_small",
    "local_response_norm",
    "PAPER_WIDTHS",
    "TORCHVISION_WIDTHS",
]

# Kernels of conv1..conv5. The paper's counts are for both GPUs together (48 + 48 = 96 in
# conv1, ...). torchvision's single-GPU layout is not the one printed in "One weird trick"
# (Krizhevsky 2014), whose footnote gives 64-192-384-384-256: its conv4 has 256 kernels,
# as in the single-GPU layer file of Krizhevsky's cuda-convnet2
# (layers/layers-imagenet-1gpu.cfg), which torchvision's maintainers name as its source
# (pytorch/vision pull request 463). torchvision's pretrained weights use this layout.
PAPER_WIDTHS = (96, 256, 384, 384, 256)
TORCHVISION_WIDTHS = (64, 192, 384, 256, 256)


class LocalResponseNorm(nn.LocalResponseNorm):
    """``nn.LocalResponseNorm`` with the same arguments and outputs, faster on a CPU.

    For [N, C, H, W] inputs it sums the squares of the ``size`` neighbouring channels as
    shifted slices of a channels-last view, and raises to the power -beta as
    exp(-beta * log(x)): on a 2-core CPU PyTorch's ``pow`` with a fractional exponent and its
    pooling over channels made a training step of ``alexnet_small(lrn=True)`` 2.5-2.7x
    slower than without LRN; this forward and backward are about 2.7x faster than
    PyTorch's (outputs equal to float rounding, tested). Other input ranks use PyTorch's.
    """

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        if a.dim() != 4:
            return super().forward(a)
        n, mean_alpha = self.size, self.alpha / self.size  # PyTorch's alpha is Caffe's: per n
        x = a.permute(0, 2, 3, 1)  # [N, H, W, C]: a view, contiguous for channels_last inputs
        channels = x.shape[-1]
        squares = nn.functional.pad(x * x, (n // 2, (n - 1) // 2))  # zeros beyond the ends
        energy = squares[..., 0:channels]
        for shift in range(1, n):
            energy = energy + squares[..., shift:shift + channels]
        scale = torch.exp(-self.beta * torch.log(self.k + mean_alpha * energy))
        return (x * scale).permute(0, 3, 1, 2)


def local_response_norm(n: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                        k: float = 2.0) -> LocalResponseNorm:
    """The paper's LRN (Section 3.3), with its constants as defaults.

    b_i = a_i / (k + alpha * sum_{j=i-n/2}^{i+n/2} a_j^2) ** beta, the sum running over n
    adjacent channels at the same pixel. ``nn.LocalResponseNorm`` divides ``alpha`` by
    ``n`` (it averages the squares, as Caffe does), so the paper's alpha is passed in as
    ``alpha * n``.
    """
    return LocalResponseNorm(size=n, alpha=alpha * n, beta=beta, k=k)


def _first(v: int | tuple[int, ...]) -> int:
    return v[0] if isinstance(v, (tuple, list)) else v


class AlexNet(nn.Module):
    """``features`` (five convs, three max-pools) -> ``avgpool`` -> flatten -> ``classifier``.

    Args:
        num_classes: outputs of fc8 (1000 ImageNet classes, 10 for Fashion-MNIST).
        dropout: probability of dropping a unit before (or after) fc6 and fc7; 0 disables
            it (the ``nn.Dropout`` modules stay, so the state_dict keys do not move).
        widths: kernels of conv1..conv5.
        fc_width: units of fc6 and fc7 (4096 in the paper).
        in_channels: channels of the input images (3 for RGB, 1 for grey).
        stem: conv1's (kernel, stride, padding): (11, 4, 2) in torchvision, (11, 4, 0) in
            the paper; (3, 1, 1) keeps a 28x28 image at 28x28.
        activation: "relu" (the paper), "tanh" (what it replaced), ... or a callable
            returning a module. Used after every conv and after fc6 and fc7.
        pool: max-pool (window, stride): (3, 2) overlaps neighbouring windows, as in the
            paper; (2, 2) is the traditional non-overlapping pooling it compared against.
        lrn: local response normalisation after the activations of conv1 and conv2 (with
            the paper's k=2, n=5, alpha=1e-4, beta=0.75). It shifts the ``features.N``
            indices after conv1, so only ``lrn=False`` is weight-compatible with
            torchvision.
        groups: 2 reproduces the two-GPU split: conv2, conv4 and conv5 see only the
            kernel maps on their own GPU (half the input channels); conv3 and the fully
            connected layers talk across GPUs.
        dropout_position: "before" fc6 and fc7 (torchvision: the pooled features and fc6's
            output are dropped) or "after" them (the paper and Caffe: fc6's and fc7's
            outputs are dropped).
        input_size: None (torchvision): adaptive average pooling to 6x6 lets any input of
            at least ``min_input_size`` through. An int (the paper's 227): no average
            pooling, fc6 is sized for the feature map of exactly that input, and other
            inputs are accepted only if they give the same feature-map size.
        init: "default" (PyTorch's layer defaults, as in torchvision), "kaiming" (He et al.
            2015, gain matched to the activation: what the course trains with) or "paper"
            (Section 5: N(0, 0.01) weights; biases 1 in conv2, conv4, conv5 and the hidden
            fully connected layers fc6 and fc7, 0 in conv1, conv3 and fc8).

    ``sizes(n)`` and ``output_size(n)`` give the feature-map sides for an n x n input by the
    convolution arithmetic; ``min_input_size`` is the smallest side the stem accepts.
    Inputs with the wrong channel count raise ``checks.InputError``, too small a side
    ``checks.InputTooSmallError`` (both ValueErrors), saying what would work.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        dropout: float = 0.5,
        *,
        widths: Sequence[int] = TORCHVISION_WIDTHS,
        fc_width: int = 4096,
        in_channels: int = 3,
        stem: tuple[int, int, int] = (11, 4, 2),
        activation: Activation = "relu",
        pool: tuple[int, int] = (3, 2),
        lrn: bool = False,
        groups: int = 1,
        dropout_position: str = "before",
        input_size: int | None = None,
        init: str = "default",
    ) -> None:
        super().__init__()
        widths = tuple(widths)
        _check_args(num_classes, dropout, widths, fc_width, in_channels, stem, pool, groups,
                    dropout_position, input_size)
        self.in_channels = in_channels
        self.widths = widths
        self.input_size = input_size
        c1, c2, c3, c4, c5 = widths
        kernel, stride, padding = stem

        def act() -> nn.Module:
            return make_activation(activation, inplace=True)

        def max_pool() -> nn.MaxPool2d:
            return nn.MaxPool2d(kernel_size=pool[0], stride=pool[1])

        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, c1, kernel_size=kernel, stride=stride, padding=padding),
            act(),
        ]
        if lrn:
            layers.append(local_response_norm())  # the paper normalises, then pools
        layers += [
            max_pool(),
            # conv2's 5x5 kernels get padding 2, so it keeps the 27x27 size: this is the
            # layer where "zeros are added at the edges".
            nn.Conv2d(c1, c2, kernel_size=5, padding=2, groups=groups),
            act(),
        ]
        if lrn:
            layers.append(local_response_norm())
        layers += [
            max_pool(),
            # conv3 is the one conv that connects across the two GPUs (groups=1).
            nn.Conv2d(c2, c3, kernel_size=3, padding=1),
            act(),
            nn.Conv2d(c3, c4, kernel_size=3, padding=1, groups=groups),
            act(),
            nn.Conv2d(c4, c5, kernel_size=3, padding=1, groups=groups),
            act(),
            max_pool(),
        ]
        self.features = nn.Sequential(*layers)

        self.min_input_size = self._smallest_input()
        if input_size is None:
            # torchvision: whatever the input (>= min_input_size), average to 6x6, so the
            # classifier always sees 256 * 6 * 6 = 9216 values.
            self.feature_size = 6
            self.avgpool: nn.Module = nn.AdaptiveAvgPool2d((6, 6))
        else:
            if input_size < self.min_input_size:
                raise checks.InputTooSmallError(self._too_small_message(input_size, "input_size"))
            # The paper: no averaging, fc6 takes conv5's pooled map as it is (6x6 for 227).
            self.feature_size = self.output_size(input_size)
            self.avgpool = nn.Identity()

        fc6_in = c5 * self.feature_size * self.feature_size
        if dropout_position == "before":
            classifier = [nn.Dropout(p=dropout), nn.Linear(fc6_in, fc_width), act(),
                          nn.Dropout(p=dropout), nn.Linear(fc_width, fc_width), act(),
                          nn.Linear(fc_width, num_classes)]
        else:
            classifier = [nn.Linear(fc6_in, fc_width), act(), nn.Dropout(p=dropout),
                          nn.Linear(fc_width, fc_width), act(), nn.Dropout(p=dropout),
                          nn.Linear(fc_width, num_classes)]
        # fc8 gives raw scores; the softmax of the paper lives in the loss
        # (nn.CrossEntropyLoss = log-softmax + negative log-likelihood).
        self.classifier = nn.Sequential(*classifier)
        _init_weights(self, init, activation)

    # -- size arithmetic ---------------------------------------------------------------

    def sizes(self, size: int) -> list[tuple[str, int]]:
        """Height (= width) after each conv and pool for a ``size`` x ``size`` input,
        e.g. [("features.0", 55), ("features.2", 27), ...] for torchvision at 224."""
        out = []
        for name, m in self.features.named_children():
            if isinstance(m, (nn.Conv2d, nn.MaxPool2d)):
                size = conv_out_size(size, _first(m.kernel_size), _first(m.stride),
                                 _first(m.padding), _first(m.dilation),
                                 getattr(m, "ceil_mode", False))
                out.append((f"features.{name}", size))
                if size < 1:
                    break
        return out

    def output_size(self, size: int) -> int:
        """Side of the last feature map (before ``avgpool``) for a ``size`` input; 0 if
        the input is too small for the stem."""
        sizes = self.sizes(size)
        return sizes[-1][1] if all(s >= 1 for _, s in sizes) else 0

    def _smallest_input(self) -> int:
        size = 1
        while self.output_size(size) < 1:
            size += 1
        return size

    def _too_small_message(self, size: int, what: str) -> str:
        conv1 = self.features[0]
        return checks.too_small_message(
            what, size, [s for _, s in self.sizes(size)], self.min_input_size,
            f"this AlexNet's conv1 ({conv1.kernel_size[0]}x{conv1.kernel_size[1]}, stride "
            f"{conv1.stride[0]}, padding {conv1.padding[0]}) and three max-pools",
            "resize the images (e.g. Batches(size=...)) or use a smaller stem, as alexnet_small "
            "does for 28x28.")

    def _check_input(self, x: torch.Tensor) -> None:
        checks.images("images", x, channels=self.in_channels, model="This AlexNet")
        for side in (x.shape[2], x.shape[3]):
            if side < self.min_input_size:
                raise checks.InputTooSmallError(self._too_small_message(side, "input height/width"))
        if self.input_size is not None:
            for side in (x.shape[2], x.shape[3]):
                got = self.output_size(side)
                if got != self.feature_size:
                    fits = [s for s in range(self.min_input_size, 4 * self.input_size)
                            if self.output_size(s) == self.feature_size]
                    c5 = self.widths[4]
                    raise checks.InputError(
                        f"This AlexNet was built for {self.input_size}x{self.input_size} "
                        f"images: fc6 takes a {self.feature_size}x{self.feature_size}x{c5} = "
                        f"{self.feature_size ** 2 * c5} feature map, but a side of {side} "
                        f"gives {got}x{got}x{c5} = {got ** 2 * c5}. Resize the images to a side "
                        f"from {fits[0]} to {fits[-1]}, or build it with input_size={side}.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def _init_weights(model: nn.Module, init: str, activation: Activation) -> None:
    if init == "default":
        return  # PyTorch's own (kaiming_uniform with a=sqrt(5)), as in torchvision's AlexNet
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    if init == "kaiming":
        # He et al. 2015: variance gain^2 / fan_in keeps the signal's scale from layer to
        # layer. The gain follows the activation (sqrt(2) for ReLU, 5/3 for tanh), so each
        # activation starts from its own well-scaled weights.
        name = activation if isinstance(activation, str) else "relu"
        nonlinearity = {"relu": "relu", "tanh": "tanh", "sigmoid": "sigmoid",
                        "leaky_relu": "leaky_relu"}.get(name, "relu")
        for m in layers[:-1]:
            nn.init.kaiming_normal_(m.weight, nonlinearity=nonlinearity)
            nn.init.zeros_(m.bias)
        nn.init.normal_(layers[-1].weight, 0, 0.01)  # fc8: start with near-uniform scores
        nn.init.zeros_(layers[-1].bias)
    elif init == "paper":
        # Section 5: weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and the fully
        # connected hidden layers (to give the ReLUs positive inputs early on), 0 in the
        # remaining layers: conv1, conv3 and the output layer fc8.
        convs = [m for m in layers if isinstance(m, nn.Conv2d)]
        zero_bias = (convs[0], convs[2], layers[-1])
        for m in layers:
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.constant_(m.bias, 0.0 if any(m is z for z in zero_bias) else 1.0)
    else:
        checks.one_of("init", init, ("default", "kaiming", "paper"))


def _check_args(num_classes: int, dropout: float, widths: tuple[int, ...], fc_width: int,
                in_channels: int, stem: tuple[int, int, int], pool: tuple[int, int], groups: int,
                dropout_position: str, input_size: int | None) -> None:
    for name, value in (("num_classes", num_classes), ("fc_width", fc_width),
                        ("in_channels", in_channels), ("groups", groups)):
        checks.positive_int(name, value)
    if len(widths) != 5:
        raise checks.ArgumentValueError(f"widths must be five positive ints (kernels of conv1..conv5), "
                                        f"got {widths!r}. Pass five, e.g. {TORCHVISION_WIDTHS}.")
    for i, w in enumerate(widths):
        checks.positive_int(f"widths[{i}]", w)
    checks.probability("dropout", dropout, upper_open=True)
    if not isinstance(stem, Sequence) or len(stem) != 3:
        raise checks.ArgumentValueError(f"stem must be conv1's (kernel, stride, padding), got {stem!r}. "
                                        f"Pass three ints, e.g. (11, 4, 2).")
    checks.positive_int("stem kernel", stem[0])
    checks.positive_int("stem stride", stem[1])
    checks.non_negative_int("stem padding", stem[2])
    if not isinstance(pool, Sequence) or len(pool) != 2:
        raise checks.ArgumentValueError(f"pool must be the max-pool (window, stride), got {pool!r}. "
                                        f"Pass two ints, e.g. (3, 2).")
    checks.positive_int("pool window", pool[0])
    checks.positive_int("pool stride", pool[1])
    for i in (0, 1, 3, 4):  # the inputs and outputs of the grouped convs conv2, conv4, conv5
        if widths[i] % groups:
            raise checks.ArgumentValueError(
                f"groups={groups} splits conv2, conv4 and conv5 between GPUs, so widths "
                f"{widths[0]}, {widths[1]}, {widths[3]}, {widths[4]} must be divisible by {groups}; "
                f"got widths={widths!r}. Pass widths divisible by {groups}, or groups=1.")
    checks.one_of("dropout_position", dropout_position, ("before", "after"),
                  fix="Pass 'before' (torchvision) or 'after' (the paper) fc6 and fc7.")
    if input_size is not None:
        checks.positive_int("input_size", input_size, fix="Pass None for torchvision's adaptive pooling.")


def alexnet(num_classes: int = 1000, **kwargs: Any) -> AlexNet:
    """torchvision's AlexNet: 61,100,840 parameters at the defaults, the same state_dict
    keys as ``torchvision.models.alexnet``. Keyword arguments as in :class:`AlexNet`."""
    return AlexNet(num_classes=num_classes, **kwargs)


def alexnet_paper(num_classes: int = 1000, two_gpu: bool = True, **kwargs: Any) -> AlexNet:
    """The paper's AlexNet for 227x227x3 inputs (Section 3.5 and Figure 2).

    ``two_gpu=True`` keeps the split of the paper's Figure 2 (groups=2 in conv2, conv4,
    conv5: 60,965,224 parameters); ``False`` connects every layer fully (62,378,344).
    Other keyword arguments as in :class:`AlexNet` override the paper's choices.
    """
    options: dict[str, Any] = dict(widths=PAPER_WIDTHS, stem=(11, 4, 0), lrn=True,
                                   groups=2 if two_gpu else 1, dropout_position="after",
                                   input_size=227)
    options.update(kwargs)
    return AlexNet(num_classes=num_classes, **options)


def alexnet_small(num_classes: int = 10, width: float = 0.25, fc_width: int | None = None,
                  **kwargs: Any) -> AlexNet:
    """The paper's pattern for 28x28 grey images (Fashion-MNIST).

    The 11x11 stride-4 stem would turn 28 pixels into 5 (the three pools then leave
    nothing), so conv1 becomes 3x3 with stride 1 and padding 1: 28 -> 28 -> pool 13 ->
    pool 6 -> pool 2. The widths are the paper's times ``width`` (0.25: 24-64-96-96-64)
    and fc6/fc7 get ``fc_width`` units (default 4096 * width). No LRN and no two-GPU
    split unless asked for. Other keyword arguments as in :class:`AlexNet`.
    """
    checks.positive_number("width", width, fix="Pass a channel multiplier such as 0.25.")
    options: dict[str, Any] = dict(
        widths=tuple(max(1, round(w * width)) for w in PAPER_WIDTHS),
        fc_width=fc_width if fc_width is not None else max(1, round(4096 * width)),
        in_channels=1, stem=(3, 1, 1), dropout_position="after", input_size=28)
    options.update(kwargs)
    return AlexNet(num_classes=num_classes, **options)
