"""A LeNet-5-sized CNN: the course's yardstick for Fashion-MNIST (LeCun et al. 1998).

Modernised in the two ways every later net in the course shares: ReLU instead of tanh,
and max pooling instead of trainable average pooling. Everything else is LeNet-5:
6 and 16 filters of 5x5, then 120 -> 84 -> 10 fully connected units.
"""

import torch
import torch.nn as nn


class LeNet5(nn.Module):
    """conv 6@5x5 -> pool -> conv 16@5x5 -> pool -> fc 120 -> fc 84 -> fc num_classes."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
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
        if x.dim() != 4 or x.shape[-2:] != (28, 28):
            raise ValueError(f"LeNet5 takes images of 28x28 pixels as [batch, channels, 28, 28], "
                             f"got {tuple(x.shape)}. Resize with Batches(size=None).")
        return self.classifier(self.features(x))


def lenet5(num_classes: int = 10, in_channels: int = 1) -> LeNet5:
    """The LeNet-5-sized baseline (61,706 parameters for 10 classes)."""
    return LeNet5(num_classes, in_channels)
