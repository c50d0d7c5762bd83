"""VGG (Simonyan & Zisserman 2014, "Very Deep Convolutional Networks for Large-Scale
Image Recognition"), laid out like torchvision's ``torchvision.models.vgg``.

One config list per network (Table 1 of the paper, configurations A, B, D and E)
builds VGG11, VGG13, VGG16 and VGG19, with or without batch norm. At the defaults the
models are weight-compatible with torchvision's: the same ``features.N`` and
``classifier.N`` keys, so ``vgg16().load_state_dict(torchvision_vgg16.state_dict())``
works with ``strict=True`` and gives the same outputs.

Unlike torchvision, the width (a channel multiplier), the input channels, the input size
and the width of the classifier are arguments, so the same code builds the
138-million-parameter ImageNet net and a CPU-sized one for 28x28 or 32x32 grey images::

    vgg16()                                                   # ImageNet, 224x224x3
    vgg11_bn(num_classes=10, in_channels=1, input_size=32,    # Fashion-MNIST resized
             width=0.25, fc_width=256, fc_std=None)           # to 32x32
    vgg([32, 32, "M", 64, 64, "M"], in_channels=1, input_size=28, num_classes=10)

(``fc_std=None``: He initialisation for a narrow classifier; torchvision's fc weights,
drawn with standard deviation 0.01, are sized for 4096 units.) Batch norm is not in the
paper (it came in 2015); the ``_bn`` variants are torchvision's.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
import torch.nn as nn

from deepnets import checks

__all__ = [
    "VGG",
    "vgg_cfgs",
    "vgg_make_layers",
    "vgg",
    "fashion_vgg",
    "vgg11",
    "vgg11_bn",
    "vgg13",
    "vgg13_bn",
    "vgg16",
    "vgg16_bn",
    "vgg19",
    "vgg19_bn",
    "receptive_field",
]

Config = list[int | str]

# Table 1 of the paper (layout in Section 2.1). A number is a 3x3 convolution (stride 1,
# padding 1) with that many output channels, followed by ReLU; "M" is a 2x2 max-pool with
# stride 2. Columns A-LRN and C (1x1 convolutions) are not built.
vgg_cfgs: dict[str, Config] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG11
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],  # VGG13
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
          512, 512, 512, "M", 512, 512, 512, "M"],  # VGG16
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],  # VGG19
}


class VGG(nn.Module):
    """``features`` (the conv/pool stack) -> ``avgpool`` -> flatten -> ``classifier``.

    The classifier is fc1 -> ReLU -> Dropout -> fc2 -> ReLU -> Dropout -> fc3, as in the
    paper and torchvision (``classifier.0``, ``classifier.3``, ``classifier.6``). fc1's
    input size is ``feature_channels * feature_size ** 2``: 512 * 7 * 7 = 25088 for
    224x224 inputs. ``avgpool`` (adaptive average pooling to ``feature_size``) is a no-op
    at the input size the model was built for and, as in torchvision, lets larger inputs
    through.
    """

    def __init__(
        self,
        features: nn.Sequential,
        num_classes: int = 1000,
        init_weights: bool = True,
        dropout: float = 0.5,
        *,
        feature_size: int = 7,
        fc_width: int = 4096,
        fc_std: float | None = 0.01,
    ) -> None:
        super().__init__()
        convs = [m for m in features.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise checks.ArgumentValueError("features must contain at least one nn.Conv2d, got none. "
                                            "Build it with vgg_make_layers(...).")
        self.in_channels = convs[0].in_channels
        self.num_pools = sum(isinstance(m, nn.MaxPool2d) for m in features.modules())
        feature_channels = convs[-1].out_channels

        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((feature_size, feature_size))
        self.classifier = nn.Sequential(
            nn.Linear(feature_channels * feature_size * feature_size, fc_width),  # fc1
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(fc_width, fc_width),  # fc2
            nn.ReLU(True),
            nn.Dropout(p=dropout),
            nn.Linear(fc_width, num_classes),  # fc3
        )
        if init_weights:
            # torchvision's initialisation, not the paper's: the paper (Section 3.1)
            # trained net A from random weights and initialised the first four conv and
            # the last three fc layers of the deeper nets from A (their other layers
            # random); torchvision trains every
            # depth from scratch with He init for the convs. The fc weights' std 0.01
            # suits 4096 units: each layer scales the signal by about 0.01 * sqrt(fan_in),
            # 0.64 at 4096 but 0.16 at 256, so narrow classifiers start with vanishing
            # logits and gradients; fc_std=None uses He init there.
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    if m.bias is not None:
                        nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    nn.init.constant_(m.weight, 1)
                    nn.init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    if fc_std is None:
                        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                    else:
                        nn.init.normal_(m.weight, 0, fc_std)
                    nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.in_channels, self.num_pools)
        x = self.features(x)
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        x = self.classifier(x)
        return x


def vgg_make_layers(cfg: Config, batch_norm: bool = False, in_channels: int = 3,
                width: float = 1.0) -> nn.Sequential:
    """The conv/pool stack for one config: conv3x3 [-> BatchNorm] -> ReLU per number,
    MaxPool2d(2, 2) per "M". Channel counts are multiplied by ``width`` (rounded, at
    least 1)."""
    layers: list[nn.Module] = []
    for v in cfg:
        if v == "M":
            layers += [nn.MaxPool2d(kernel_size=2, stride=2)]
        else:
            channels = _scale(v, width)
            conv2d = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)
            if batch_norm:
                layers += [conv2d, nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]
            else:
                layers += [conv2d, nn.ReLU(inplace=True)]
            in_channels = channels
    return nn.Sequential(*layers)


def vgg(
    cfg: str | Config = "D",
    batch_norm: bool = False,
    *,
    num_classes: int = 1000,
    in_channels: int = 3,
    input_size: int = 224,
    width: float = 1.0,
    fc_width: int = 4096,
    dropout: float = 0.5,
    init_weights: bool = True,
    fc_std: float | None = 0.01,
) -> VGG:
    """A VGG from a config name ("A", "B", "D", "E") or a config list of ints and "M".

    Args:
        cfg: which network; a list builds your own (e.g. ``[32, 32, "M", 64, 64, "M"]``).
        batch_norm: BatchNorm2d after every convolution (torchvision's ``vgg16_bn``;
            not in the paper, which predates batch norm).
        num_classes: outputs of fc3.
        in_channels: channels of the input images (3 for RGB, 1 for grey).
        input_size: height = width of the input the model is built for. Each "M"
            halves it (rounding down), so the five pools of A-E need at least 32; fc1
            takes the last feature map, ``input_size // 2**pools`` on a side.
        width: multiplies every conv's channel count (0.25 turns 64..512 into 16..128).
        fc_width: units of fc1 and fc2 (4096 in the paper).
        dropout: dropout probability on the outputs of fc1 and fc2 (0.5 in the paper,
            Section 3.1, and torchvision).
        init_weights: torchvision's initialisation (He for convs, N(0, fc_std) for fcs).
        fc_std: standard deviation of the fc weights at initialisation; torchvision's
            0.01 is sized for 4096-wide layers (the paper, Section 3.1, writes "10^-2
            variance" for its randomly initialised layers, which read literally is a
            standard deviation of 0.1). None: He init (std
            sqrt(2 / fan_in)), which keeps a narrow classifier's signal from vanishing.
    """
    config = _resolve_cfg(cfg)
    for name, value in (("num_classes", num_classes), ("in_channels", in_channels),
                        ("input_size", input_size), ("fc_width", fc_width)):
        checks.positive_int(name, value)
    checks.positive_number("width", width, fix="Pass a channel multiplier such as 1.0 or 0.25.")
    if fc_std is not None:
        checks.positive_number("fc_std", fc_std, fix="Pass a standard deviation such as 0.01, or None (He init).")
    checks.probability("dropout", dropout, upper_open=True)
    num_pools = config.count("M")
    sizes = _pooled_sizes(input_size, num_pools)
    if sizes[-1] < 1:
        raise checks.InputTooSmallError(_too_small_message("input_size", input_size, num_pools))
    feature_size = sizes[-1]
    features = vgg_make_layers(config, batch_norm=batch_norm, in_channels=in_channels, width=width)
    return VGG(features, num_classes=num_classes, init_weights=init_weights, dropout=dropout,
               feature_size=feature_size, fc_width=fc_width, fc_std=fc_std)


def vgg11(num_classes: int = 1000, **kwargs: Any) -> VGG:
    """VGG11, configuration A (8 conv + 3 fc). Keyword arguments as in :func:`vgg`."""
    return vgg("A", False, num_classes=num_classes, **kwargs)


def vgg11_bn(num_classes: int = 1000, **kwargs: Any) -> VGG:
    """VGG11 with batch norm. Keyword arguments as in :func:`vgg`."""
    return vgg("A", True, num_classes=num_classes, **kwargs)


def vgg13(num_classes: int = 1000, **kwargs: Any) -> VGG:
    """VGG13, configuration B (10 conv + 3 fc). Keyword arguments as in :func:`vgg`."""
    return vgg("B", False, num_classes=num_classes, **kwargs)


def vgg13_bn(num_classes: int = 1000, **kwargs: Any) -> VGG:
    """VGG13 with batch norm. Keyword arguments as in :func:`vgg`."""
    return vgg("B", True, num_classes=num_classes, **kwargs)


def vgg16(num_classes: int = 1000, **kwargs: Any) -> VGG:
    """VGG16, configuration D (13 conv + 3 fc): 138,357,544 parameters at the defaults,
    the same state_dict keys as ``torchvision.models.vgg16``. Keyword arguments as in
    :func:`vgg`."""
    return vgg("D", False, num_classes=num_classes, **kwargs)


def vgg16_bn(num_classes: int = 1000, **kwargs: Any) -> VGG:
    """VGG16 with batch norm (``torchvision.models.vgg16_bn``'s layout). Keyword
    arguments as in :func:`vgg`."""
    return vgg("D", True, num_classes=num_classes, **kwargs)


def vgg19(num_classes: int = 1000, **kwargs: Any) -> VGG:
    """VGG19, configuration E (16 conv + 3 fc). Keyword arguments as in :func:`vgg`."""
    return vgg("E", False, num_classes=num_classes, **kwargs)


def vgg19_bn(num_classes: int = 1000, **kwargs: Any) -> VGG:
    """VGG19 with batch norm. Keyword arguments as in :func:`vgg`."""
    return vgg("E", True, num_classes=num_classes, **kwargs)


def fashion_vgg(batch_norm: bool = True, cfg: str | Config | None = None, **kwargs: Any) -> VGG:
    """Notebook 02's net for 28x28 grey images, VGG-B/4 (which ``deepnets.bench`` also times).

    Configuration B without its fifth stage (four pools: 28 -> 1), a quarter of the widths
    (16..128 channels), a 256-unit classifier without dropout and He initialisation there
    (``fc_std=None``: see :func:`vgg`). ``cfg`` and keyword arguments as in :func:`vgg`
    override these.
    """
    options: dict[str, Any] = dict(num_classes=10, in_channels=1, input_size=28, width=0.25,
                                   fc_width=256, dropout=0.0, fc_std=None)
    options.update(kwargs)
    return vgg(vgg_cfgs["B"][:-3] if cfg is None else cfg, batch_norm, **options)


def receptive_field(layers: nn.Module) -> int:
    """Side length, in input pixels, of the window one output unit of ``layers`` sees.

    Walks the Conv2d / MaxPool2d / AvgPool2d modules in registration order (a chain, as
    in ``VGG.features``) with the usual recurrence: each layer widens the window by
    ``(kernel - 1) * dilation * jump``, where ``jump`` is the product of the strides
    before it. Square kernels assumed. Two stacked 3x3 convs give 5, three give 7.
    """
    field, jump = 1, 1
    for m in layers.modules():
        if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
            kernel, stride = _first(m.kernel_size), _first(m.stride)
            dilation = _first(getattr(m, "dilation", 1))
            field += (kernel - 1) * dilation * jump
            jump *= stride
    return field


def _first(v: int | tuple[int, ...]) -> int:
    return v[0] if isinstance(v, tuple) else v


def _scale(channels: int, width: float) -> int:
    return max(1, int(round(channels * width)))


def _resolve_cfg(cfg: str | Config) -> Config:
    if isinstance(cfg, str):
        checks.one_of("cfg", cfg, vgg_cfgs, fix="Pass one of those (A=VGG11, B=VGG13, D=VGG16, "
                      "E=VGG19) or a list like [64, 64, 'M', 128, 128, 'M'].")
        return list(vgg_cfgs[cfg])
    config = list(cfg)
    bad = [v for v in config
           if v != "M" and not (isinstance(v, int) and not isinstance(v, bool) and v > 0)]
    if bad or not any(v != "M" for v in config):
        raise checks.ArgumentValueError(
            f"cfg must be a list of positive ints (3x3 conv output channels) and 'M' (2x2 max-pool) "
            f"with at least one conv; got {cfg!r}. Pass e.g. [64, 64, 'M', 128, 128, 'M'].")
    return config


def _pooled_sizes(size: int, num_pools: int) -> list[int]:
    sizes = []
    for _ in range(num_pools):  # a 3x3 conv with padding 1 keeps the size; a 2x2/2 pool halves it
        sizes.append(checks.conv_out_size(sizes[-1] if sizes else size, 2, 2))
    return sizes or [size]


def _too_small_message(what: str, size: int, num_pools: int) -> str:
    return checks.too_small_message(
        what, size, _pooled_sizes(size, num_pools), 2 ** num_pools, f"{num_pools} max-pools",
        f"use images of at least {2 ** num_pools} pixels (e.g. resize 28x28 Fashion-MNIST to 32 "
        f"with Batches(size=32)) or a config with at most {max(size.bit_length() - 1, 0)} 'M' entries.")


def _check_input(x: torch.Tensor, in_channels: int, num_pools: int) -> None:
    checks.images("images", x, channels=in_channels, model="This VGG")
    smallest = min(x.shape[2], x.shape[3])
    if smallest < 2 ** num_pools:
        raise checks.InputTooSmallError(_too_small_message("input height/width", smallest, num_pools))


def __getattr__(name: str) -> Any:
    # The torchvision names, kept for one release beside the one public name of each value.
    renamed = {"cfgs": "vgg_cfgs", "make_layers": "vgg_make_layers"}
    if name in renamed:
        warnings.warn(f"deepnets.models.vggs.{name} is now {renamed[name]}; use that name.",
                      DeprecationWarning, stacklevel=2)
        return globals()[renamed[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
