"""The course's networks, each written to be read (and weight-compatible with torchvision where it has one).

One module per family: ``lenet``, ``alexnets`` (AlexNet and its small and paper versions),
``convnets`` (the four-layer net of AlexNet's Figure 1), ``vggs``, ``mlp`` (notebook 03's
deep MLPs) and ``resnet``; ``activations`` holds the activations by name. The names below
are the public ones; import them from here.
"""

from .activations import ACTIVATIONS, make_activation
from .alexnets import (PAPER_WIDTHS, TORCHVISION_WIDTHS, AlexNet, LocalResponseNorm, alexnet,
                       alexnet_paper, alexnet_small, local_response_norm)
from .convnets import ConvNet4, convnet4
from .lenet import LeNet5, lenet5
from .mlp import DeepMLP, deep_mlp
from .resnet import (SHORTCUTS, BasicBlock, Bottleneck, ResNet, ZeroPadShortcut, cifar_resnet,
                     fashion_resnet, resnet18, resnet34, resnet50, resnet101, resnet152)
from .vggs import (VGG, fashion_vgg, receptive_field, vgg, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16,
                   vgg16_bn, vgg19, vgg19_bn, vgg_cfgs, vgg_make_layers)

__all__ = [
    "ACTIVATIONS", "AlexNet", "BasicBlock", "Bottleneck", "ConvNet4", "DeepMLP", "LeNet5",
    "LocalResponseNorm", "PAPER_WIDTHS", "ResNet", "SHORTCUTS", "TORCHVISION_WIDTHS", "VGG",
    "ZeroPadShortcut", "alexnet", "alexnet_paper", "alexnet_small", "cifar_resnet", "convnet4",
    "deep_mlp", "fashion_resnet", "fashion_vgg", "lenet5", "local_response_norm", "make_activation",
    "receptive_field", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "vgg", "vgg11",
    "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "vgg_cfgs",
    "vgg_make_layers",
]
