"""A four-layer convolutional net: the kind of net behind AlexNet's Figure 1.

Krizhevsky, Sutskever & Hinton (2012), Section 3.1 and Figure 1: "a particular four-layer
convolutional network" on CIFAR-10 reached 25% training error six times faster with ReLUs
than with tanh units. The paper does not list that net's layers, so this one is ours,
sized for 28x28 grey images and a CPU: three 5x5 convolutions, each followed by the
activation and an overlapping 3x3/2 max-pool, and one fully connected layer, four layers
with weights in all. No dropout, no normalisation: Figure 1 used "no regularization of any
kind". The activation is the one switch the experiment turns::

    convnet4("relu")                  # 28 -> 28 -> pool 13 -> 13 -> pool 6 -> 6 -> pool 2
    convnet4("tanh", init_std=0.01)   # weights from N(0, 0.01), as in the paper's Section 5
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from deepnets import checks
from .activations import Activation, make_activation

__all__ = ["ConvNet4", "convnet4"]


class ConvNet4(nn.Module):
    """conv 5x5 -> act -> pool, three times, then one linear layer to the classes.

    Args:
        activation: "relu", "tanh", ... (the names of ``alexnet_small``) or a callable
            returning a module; used after each of the three convolutions.
        widths: output channels of the three convolutions.
        num_classes: outputs of the linear layer.
        in_channels: 1 for grey images.
        image_size: side of the square input; fixes the linear layer's input size.
        init_std: None keeps PyTorch's default initialisation (the same for every
            activation); a number draws every weight from N(0, init_std) and sets the biases
            to 0.
    """

    def __init__(self, activation: Activation = "relu", widths: Sequence[int] = (32, 32, 64),
                 num_classes: int = 10, in_channels: int = 1, image_size: int = 28,
                 init_std: float | None = None) -> None:
        super().__init__()
        widths = tuple(widths)
        if len(widths) != 3:
            raise checks.ArgumentValueError(f"widths must be three positive ints (channels of conv1..conv3), "
                                            f"got {widths!r}. Pass three, e.g. (32, 32, 64).")
        for i, w in enumerate(widths):
            checks.positive_int(f"widths[{i}]", w)
        for name, value in (("num_classes", num_classes), ("in_channels", in_channels),
                            ("image_size", image_size)):
            checks.positive_int(name, value)
        if init_std is not None:
            checks.positive_number("init_std", init_std, fix="Pass a standard deviation such as 0.01, "
                                   "or None for PyTorch's default.")
        layers: list[nn.Module] = []
        channels, sizes = in_channels, []
        for width in widths:
            # padding 2 keeps the side through a 5x5 conv; each 3x3/2 pool maps n to (n - 3) // 2 + 1
            layers += [nn.Conv2d(channels, width, kernel_size=5, padding=2),
                       make_activation(activation, inplace=True),
                       nn.MaxPool2d(kernel_size=3, stride=2)]
            channels = width
            sizes.append(checks.conv_out_size(sizes[-1] if sizes else image_size, 3, 2))
        if sizes[-1] < 1:
            raise checks.InputTooSmallError(checks.too_small_message(
                "image_size", image_size, sizes, 15, "three 3x3/2 max-pools",
                "pass image_size=15 or more and resize the images to it (Batches(size=...))."))
        self.in_channels, self.image_size = in_channels, image_size
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * sizes[-1] ** 2, num_classes)
        if init_std is not None:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.normal_(m.weight, 0.0, init_std)
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checks.images("images", x, channels=self.in_channels, model="This ConvNet4")
        if tuple(x.shape[2:]) != (self.image_size, self.image_size):
            raise checks.InputError(f"This ConvNet4 was built for {self.image_size}x{self.image_size} "
                                    f"images (its linear layer is sized for them), got "
                                    f"{x.shape[2]}x{x.shape[3]}. Resize them (Batches(size="
                                    f"{self.image_size})) or build it with image_size={x.shape[2]}.")
        return self.classifier(torch.flatten(self.features(x), 1))


def convnet4(activation: Activation = "relu", **kwargs: Any) -> ConvNet4:
    """The four-layer net for 28x28 grey images; keyword arguments as in :class:`ConvNet4`."""
    return ConvNet4(activation, **kwargs)
