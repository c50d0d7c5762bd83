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

from typing import Optional, Sequence

import torch
import torch.nn as nn

from .alexnet import Activation, _make_activation

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
                 init_std: Optional[float] = None) -> None:
        super().__init__()
        widths = tuple(widths)
        if len(widths) != 3 or not all(isinstance(w, int) and w >= 1 for w in widths):
            raise ValueError(f"widths must be three positive ints (channels of conv1..conv3), "
                             f"got {widths!r}.")
        if init_std is not None and not init_std > 0:
            raise ValueError(f"init_std must be a positive standard deviation or None for "
                             f"PyTorch's default, got {init_std!r}.")
        layers: list[nn.Module] = []
        channels, size = in_channels, image_size
        for width in widths:
            # padding 2 keeps the side through a 5x5 conv; each 3x3/2 pool maps n to (n - 3) // 2 + 1
            layers += [nn.Conv2d(channels, width, kernel_size=5, padding=2),
                       _make_activation(activation),
                       nn.MaxPool2d(kernel_size=3, stride=2)]
            channels, size = width, (size - 3) // 2 + 1
        if size < 1:
            raise ValueError(f"image_size={image_size} is too small: three 3x3/2 pools need a "
                             f"side of at least 15 pixels.")
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels * size * size, num_classes)
        if init_std is not None:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.normal_(m.weight, 0.0, init_std)
                    nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def convnet4(activation: Activation = "relu", **kwargs) -> ConvNet4:
    """The four-layer net for 28x28 grey images; keyword arguments as in :class:`ConvNet4`."""
    return ConvNet4(activation, **kwargs)
