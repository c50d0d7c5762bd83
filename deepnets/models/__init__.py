"""The course's networks, each written to be read (and weight-compatible with torchvision where it has one)."""

from .lenet import LeNet5, lenet5  # noqa: F401
from .resnet import (BasicBlock, Bottleneck, ResNet, cifar_resnet, resnet18, resnet34,  # noqa: F401
                     resnet50, resnet101, resnet152)
from .mlp import ACTIVATIONS, DeepMLP, deep_mlp  # noqa: F401
from .vgg import (VGG, cfgs as vgg_cfgs, make_layers as vgg_make_layers, vgg, vgg11,  # noqa: F401
                  vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, receptive_field)
from .alexnet import (AlexNet, PAPER_WIDTHS, TORCHVISION_WIDTHS, alexnet, alexnet_paper,  # noqa: F401
                      alexnet_small, local_response_norm)
