"""The course's networks, each written to be read (and weight-compatible with torchvision where it has one)."""

from .lenet import LeNet5, lenet5  # noqa: F401
from .resnet import (BasicBlock, Bottleneck, ResNet, cifar_resnet, fashion_resnet,  # noqa: F401
                     resnet18, resnet34, resnet50, resnet101, resnet152)
from .mlp import ACTIVATIONS, DeepMLP, deep_mlp  # noqa: F401
from .vgg import (VGG, cfgs as vgg_cfgs, make_layers as vgg_make_layers, vgg, vgg11,  # noqa: F401
                  vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, receptive_field)
from .alexnet import (AlexNet, LocalResponseNorm, PAPER_WIDTHS, TORCHVISION_WIDTHS, alexnet,  # noqa: F401
                      alexnet_paper, alexnet_small, local_response_norm)
from .convnet4 import ConvNet4, convnet4  # noqa: F401
