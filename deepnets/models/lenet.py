"""A LeNet-5-sized CNN: the course's yardstick for Fashion-MNIST (LeCun, Bottou, Bengio &
Haffner 1998, "Gradient-based learning applied to document recognition", Section II.B).

It keeps LeNet-5's sizes: 6 and 16 filters of 5x5, each followed by 2x2 pooling, then
120 -> 84 -> 10 units. It differs from the paper where every later net in the course does:
ReLU instead of a scaled tanh; max pooling instead of trainable subsampling (a 2x2 sum
times a learned coefficient plus a bias); the second conv sees all 6 input maps (the
paper's Table I connects each of its 16 maps to a subset, 1,516 parameters instead of
2,416 here); and the last layer is a linear layer trained with cross-entropy instead of
the paper's Euclidean RBF units. The paper's 32x32 inputs become 28x28 images padded by 2:
the first conv's output is 28x28 in both.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from deepnets import checks

__all__ = ["LeNet5", "lenet5"]


class LeNet5(nn.Module):
    """conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> fc 120 -> fc 84 -> fc num_classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1) -> None:
        """``num_classes`` outputs; ``in_channels`` 1 for grey images, 3 for RGB."""
        super().__init__()
        checks.positive_int("num_classes", num_classes)
        self.in_channels = checks.positive_int("in_channels", in_channels)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, kernel_size=5, padding=2),  # pad 2: 28x28 in, 28x28 out
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),                 # 14x14
            nn.Conv2d(6, 16, kernel_size=5),                       # 10x10
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=2, stride=2),                 # 5x5
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(inplace=True),
            nn.Linear(120, 84),
            nn.ReLU(inplace=True),
            nn.Linear(84, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        checks.images("images", x, channels=self.in_channels, model="LeNet5")
        if x.shape[-2:] != (28, 28):
            raise checks.InputError(f"LeNet5 takes images of 28x28 pixels, got {x.shape[-2]}x{x.shape[-1]} "
                                    f"(shape {tuple(x.shape)}). Resize them to 28 (Batches(size=None) "
                                    f"keeps Fashion-MNIST's 28x28).")
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """The LeNet-5-sized baseline (61,706 parameters for 10 classes)."""
    return LeNet5(num_classes, in_channels)
