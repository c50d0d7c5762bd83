"""Every exercise check: the right answer passes, a typical wrong one is rejected with a
message that names the mistake, and an empty answer says "not answered yet" without raising.

The right answers here are worked out independently of the checks (formulas written out,
or the package's own modules), so a check and its test do not share a derivation.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from deepnets import exercises as ex
from deepnets import stratified_subset
from deepnets.models import (BasicBlock, Bottleneck, alexnet_small, cifar_resnet, deep_mlp, lenet5, resnet50,
                             vgg, vgg16_bn, vgg_cfgs, vgg_make_layers)
from deepnets.train import History


# ---- hand-written answers (right and wrong) ---------------------------------------------

class HandLeNet(nn.Module):
    def __init__(self, pad=2):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5, padding=pad), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        side = ((28 + 2 * pad - 4) // 2 - 4) // 2
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(16 * side * side, 120), nn.ReLU(),
                                        nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def lrn(a, n=5, alpha=1e-4, beta=0.75, k=2.0):
    out = torch.empty_like(a)
    for i in range(a.shape[1]):
        lo, hi = max(0, i - n // 2), min(a.shape[1] - 1, i + n // 2)
        out[:, i] = a[:, i] / (k + alpha * (a[:, lo:hi + 1] ** 2).sum(1)) ** beta
    return out


def vgg_stage(i, o, n, batch_norm=False, padding=1):
    layers = []
    for _ in range(n):
        layers += [nn.Conv2d(i, o, 3, padding=padding)] + ([nn.BatchNorm2d(o)] if batch_norm else []) + [nn.ReLU()]
        i = o
    return nn.Sequential(*layers, nn.MaxPool2d(2, 2))


def bn_forward(x, gamma, beta, rm, rv, training, eps=1e-5, unbiased=False):
    mu, var = (x.mean(0), x.var(0, unbiased=unbiased)) if training else (rm, rv)
    return gamma * (x - mu) / torch.sqrt(var + eps) + beta


def bn_update(x, rm, rv, momentum=0.1, unbiased=True):
    return (1 - momentum) * rm + momentum * x.mean(0), (1 - momentum) * rv + momentum * x.var(0, unbiased=unbiased)


class HandBasic(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None, shortcut=True):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample, self.shortcut = downsample, shortcut

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        if self.shortcut:
            out = out + (x if self.downsample is None else self.downsample(x))
        return F.relu(out)


class HandBottleneck(nn.Module):
    def __init__(self, inplanes, planes, stride=1, downsample=None, expand=4):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, planes * expand, 1, bias=False), nn.BatchNorm2d(planes * expand)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def zero_pad(x, planes, stride, front=False):
    x = x[:, :, ::stride, ::stride]
    extra = planes - x.shape[1]
    return F.pad(x, (0, 0, 0, 0, extra, 0) if front else (0, 0, 0, 0, 0, extra))


def layer_row(conv, shape, macs=False):
    c, h, w = shape
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    o = (h + 2 * p - k) // s + 1
    params = k * k * c * conv.out_channels + (conv.out_channels if conv.bias is not None else 0)
    flops = o * o * conv.out_channels * k * k * c * (1 if macs else 2)
    return {"output_shape": (conv.out_channels, o, o), "params": params, "flops": flops}


def history(val, train):
    return History(train_loss=[0.0] * len(val), train_acc=train, val_loss=[0.0] * len(val), val_acc=val,
                   lr=[0.0] * len(val), images_per_sec=[1.0] * len(val), epoch_seconds=[1.0] * len(val))


def stub(*args, **kwargs):
    raise NotImplementedError


SMALL = dict(in_channels=1, input_size=28, num_classes=10, width=0.25, fc_width=256, fc_std=None)
LENET = {"conv1": (5 * 5 * 1 + 1) * 6, "conv2": (5 * 5 * 6 + 1) * 16, "fc1": (400 + 1) * 120,
         "fc2": (120 + 1) * 84, "fc3": (84 + 1) * 10}
ALEX_CONVS = {"conv1": (11 * 11 * 3 + 1) * 96, "conv2": (5 * 5 * 48 + 1) * 256, "conv3": (3 * 3 * 256 + 1) * 384,
              "conv4": (3 * 3 * 192 + 1) * 384, "conv5": (3 * 3 * 192 + 1) * 256}
VGG16 = sum((9 * a + 1) * b for a, b in zip([3, 64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512],
                                             [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512])) \
    + (25088 + 1) * 4096 + (4096 + 1) * 4096 + (4096 + 1) * 1000
BN_X = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
R20 = (9 * 1 * 16 + sum(9 * a * b for a, b in [(16, 16)] * 6 + [(16, 32)] + [(32, 32)] * 5 + [(32, 64)] + [(64, 64)] * 5)
       + 2 * (16 + 16 * 6 + 32 * 6 + 64 * 6) + 64 * 10 + 10)


def bench_pair(fashion, from_split=True):
    from deepnets.profiles import get_profile
    split = fashion.split(get_profile("full"))
    if from_split:
        return stratified_subset(split.train_images, split.train_labels, 100, seed=3)
    return stratified_subset(fashion.train_images, fashion.train_labels, 100, seed=3)


def act_bytes(model, size, once=True, scale=4):
    """Activation bytes of one image written out independently: every leaf module's output, an
    output that is its own input (in-place ReLU, eval-mode dropout) counted once when `once`."""
    total = 0

    def hook(m, args, out):
        nonlocal total
        if not (once and any(out is a for a in args)):
            total += out.numel() * scale

    hooks = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    for h in hooks:
        h.remove()
    return total


# check name -> (right answer, [(wrong answer, words the message must contain)], extra args)
CASES = {
    "check_split_sizes": (lambda f: (60_000 - 500 * 10, 500 * 10),
                          [(lambda f: (60_000, 5_000), "held out"), (lambda f: (55_000, 500), "per class")], ()),
    "check_lenet_sizes": (lambda f: [28, 14, 10, 5],
                          [(lambda f: [24, 12, 8, 4], "(28 + 2*2 - 5) / 1 + 1 = 28"),
                           (lambda f: [28, 14, 11, 5], "off-by-one")], ()),
    "check_lenet_params": (lambda f: sum(LENET.values()),
                           [(lambda f: sum(LENET.values()) - (6 + 16 + 120 + 84 + 10), "left out the biases"),
                            (lambda f: {**LENET, "fc1": 400 * 120}, "fc1")], ()),
    "check_mlp_params": (lambda f: 785 * 256 + 257 * 128 + 129 * 10,
                         [(lambda f: 784 * 256 + 256 * 128 + 128 * 10, "left out the 394 biases")], ()),
    "check_lenet": (lambda f: HandLeNet, [(lambda f: HandLeNet(pad=0), "(28 + 2*0 - 5) / 1 + 1 = 24")], ()),
    "check_bench_subset": (lambda f: bench_pair(f), [(lambda f: bench_pair(f, False), "validation images")], ()),
    "check_best_epoch": (lambda f: 2, [(lambda f: 4, "training accuracy"), (lambda f: 1, "counted from 1")],
                         (history([0.5, 0.8, 0.7, 0.6], [0.5, 0.7, 0.8, 0.9]),)),
    "check_conv1_output": (lambda f: (227 - 11) // 4 + 1,
                           [(lambda f: (224 - 11) / 4 + 1, "needs 227"), (lambda f: 56, "off by one")], ()),
    "check_alexnet_sizes": (lambda f: [55, 27, 27, 13, 13, 13, 13, 6],
                            [(lambda f: [55, 27, 27, 13, 11, 13, 13, 6], "padded by 1"),
                             (lambda f: [55, 27, 27, 13, 13, 13, 13, 7], "(13 + 2*0 - 3) / 2 + 1 = 6")], ()),
    "check_fc6_inputs": (lambda f: 6 * 6 * 256, [(lambda f: 13 * 13 * 256, "after pool5")], ()),
    "check_conv_params": (lambda f: ALEX_CONVS,
                          [(lambda f: {**ALEX_CONVS, "conv4": (3 * 3 * 384 + 1) * 384}, "two GPUs (groups=2)")], ()),
    "check_pool_sizes": (lambda f: ((55 - 3) // 2 + 1, (55 - 2) // 2 + 1), [(lambda f: (27, 28), "rounds down")], ()),
    "check_lrn": (lambda f: lrn, [(lambda f: nn.LocalResponseNorm(5, 1e-4, 0.75, 2.0), "divided alpha by n"),
                                  (lambda f: lambda a: lrn(a, beta=1.0), "power beta")], ()),
    "check_lrn_factor": (lambda f: 2 ** 0.75, [(lambda f: 2.0, "raised to beta"), (lambda f: 2 ** -0.75, "divisor")], ()),
    "check_paper_init_pair": (lambda f: {a: alexnet_small(activation=a, init="paper") for a in ("relu", "tanh")},
                              [(lambda f: {a: alexnet_small(activation=a, init="kaiming") for a in ("relu", "tanh")},
                                "init='paper'"),
                               (lambda f: {a: alexnet_small(init="paper") for a in ("relu", "tanh")},
                                "activation='tanh'")], ()),
    "check_receptive_field": (lambda f: 1 + 3 * 2, [(lambda f: 5, "after the third 3x3 conv it is 7"),
                                                    (lambda f: 9, "do not multiply")], ()),
    "check_stack_weights": (lambda f: (3 * 9 * 64 * 64, 49 * 64 * 64),
                            [(lambda f: (3 * 9 * 64 * 64 + 192, 49 * 64 * 64 + 64), "biases"),
                             (lambda f: (49 * 64 * 64, 3 * 9 * 64 * 64), "swapped")], ()),
    "check_vgg16_sizes": (lambda f: [224 // 2 ** i for i in range(1, 6)],
                          [(lambda f: [112, 56, 28, 14], "conv5_3 only"), (lambda f: [112, 56, 27, 14, 7], "pool3")], ()),
    "check_fc1_params": (lambda f: (512 * 7 * 7 + 1) * 4096, [(lambda f: 512 * 7 * 7 * 4096, "4,096 biases"),
                                                              (lambda f: (512 * 14 * 14 + 1) * 4096, "7x7x512")], ()),
    "check_vgg16_params": (lambda f: VGG16, [(lambda f: VGG16 - 9 * 64 * 64 + 9 * 3 * 64, "3x3x64, not 3x3x3")], ()),
    "check_conv_macs": (lambda f: 224 * 224 * 64 * 9 * 64, [(lambda f: 2 * 224 * 224 * 64 * 9 * 64, "FLOPs"),
                                                            (lambda f: 224 * 224 * 64 * 9 * 3, "not 3")], ()),
    "check_vgg_stage": (lambda f: vgg_stage, [(lambda f: lambda i, o, n, batch_norm=False: vgg_stage(i, o, n, batch_norm, 0),
                                               "(12 + 2*0 - 3) / 1 + 1 = 10"),
                                              (lambda f: lambda i, o, n, batch_norm=False: vgg_stage(i, o, n),
                                               "0 BatchNorm2d")], ()),
    "check_vgg19_config": (lambda f: [64, 64, "M", 128, 128, "M"] + [256] * 4 + ["M"] + ([512] * 4 + ["M"]) * 2,
                           [(lambda f: vgg_cfgs["D"], "stage 3"), (lambda f: [64, 64, 128, 128] + [256] * 4 + ["M"], "5 stages")], ()),
    "check_small_vgg_dropout": (lambda f: vgg(vgg_cfgs["B"][:-3], True, dropout=0.5, **SMALL),
                                [(lambda f: vgg(vgg_cfgs["B"][:-3], True, dropout=0.0, **SMALL), "dropout=0.5"),
                                 (lambda f: vgg("B", True, dropout=0.5, **{**SMALL, "input_size": 32}), "change only the dropout")], ()),
    "check_sigmoid_bound": (lambda f: 0.25 ** 10, [(lambda f: 0.5 ** 10, "sigma(0) itself"),
                                                   (lambda f: 0.25 ** 9, "one factor per layer")], ()),
    "check_underflow_depth": (lambda f: 75, [(lambda f: 63, "subnormal"), (lambda f: 74, "off by one")], ()),
    "check_max_slopes": (lambda f: {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0},
                         [(lambda f: {"sigmoid": 0.5, "tanh": 1.0, "relu": 1.0}, "sigmoid: 0.25")], ()),
    "check_init_std": (lambda f: {"he": math.sqrt(2 / 256), "xavier": math.sqrt(6 / 512) / math.sqrt(3)},
                       [(lambda f: {"he": 2 / 256, "xavier": math.sqrt(2 / 512)}, "square root"),
                        (lambda f: {"he": math.sqrt(2 / 256), "xavier": math.sqrt(6 / 512)}, "bound a of U(-a, a)")], ()),
    "check_bn_by_hand": (lambda f: (2 * (BN_X - 2.5) / math.sqrt(1.25) + 1).tolist(),
                         [(lambda f: (2 * (BN_X - 2.5) / math.sqrt(5 / 3) + 1).tolist(), "m - 1"),
                          (lambda f: ((BN_X - 2.5) / math.sqrt(1.25)).tolist(), "x_hat")], ()),
    "check_bn_forward": (lambda f: bn_forward,
                         [(lambda f: lambda x, g, b, rm, rv, t, eps=1e-5: bn_forward(x, g, b, rm, rv, True, eps),
                           "evaluation mode you normalised with the batch"),
                          (lambda f: lambda x, g, b, rm, rv, t, eps=1e-5: bn_forward(x, g, b, rm, rv, t, eps, unbiased=True),
                           "unbiased variance")], ()),
    "check_bn_running_update": (lambda f: bn_update,
                                [(lambda f: lambda x, rm, rv, momentum=0.1: bn_update(x, rm, rv, 0.9), "weight of the new batch"),
                                 (lambda f: lambda x, rm, rv, momentum=0.1: bn_update(x, rm, rv, unbiased=False), "unbiased")], ()),
    "check_bn_sigmoid_net": (lambda f: deep_mlp(20, 32, "sigmoid", batch_norm=True),
                             [(lambda f: deep_mlp(20, 32, "sigmoid"), "batch_norm=True"),
                              (lambda f: deep_mlp(19, 32, "sigmoid", batch_norm=True), "output layer included")], ()),
    "check_blocks_per_stage": (lambda f: (110 - 2) // 6, [(lambda f: 36, "each BasicBlock holds two")], ()),
    "check_resnet20_params": (lambda f: R20, [(lambda f: R20 - 2 * (16 + 16 * 6 + 32 * 6 + 64 * 6), "gamma and beta")], ()),
    "check_resnet50_stages": (lambda f: [(256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)],
                              [(lambda f: [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)], "x4"),
                               (lambda f: [(256, 112, 112), (512, 56, 56), (1024, 28, 28), (2048, 14, 14)], "the first stage keeps 56")], ()),
    "check_bottleneck_params": (lambda f: 256 * 64 + 9 * 64 * 64 + 64 * 256 + 2 * (64 + 64 + 256),
                                [(lambda f: 256 * 64 + 9 * 64 * 64 + 64 * 256, "gamma and beta")], ()),
    "check_basic_block": (lambda f: HandBasic,
                          [(lambda f: lambda i, p, s=1, d=None: HandBasic(i, p, s, d, shortcut=False),
                            "does not depend on x additively")], ()),
    "check_bottleneck": (lambda f: HandBottleneck,
                         [(lambda f: lambda i, p, s=1, d=None: HandBottleneck(i, p, s, d, expand=1), "layer 3")], ()),
    "check_zero_pad_shortcut": (lambda f: zero_pad, [(lambda f: lambda x, p, s: zero_pad(x, p, s, front=True), "zero channels first"),
                                                     (lambda f: lambda x, p, s: x[:, :, ::s, ::s], "pad 4 zero channels")], ()),
    "check_layer_row": (lambda f: layer_row, [(lambda f: lambda c, s: layer_row(c, s, macs=True), "2 per multiply-add")], ()),
    "check_plain_residual_pair": (lambda f: {"plain": cifar_resnet(110, shortcut=None), "residual": cifar_resnet(110)},
                                  [(lambda f: {"plain": cifar_resnet(110), "residual": cifar_resnet(110)}, "shortcut=None"),
                                   (lambda f: {"plain": cifar_resnet(56, shortcut=None), "residual": cifar_resnet(110)},
                                    "not 110")], ()),
    # 05: VGG16's fc1 is 25,088 -> 4,096 (Simonyan & Zisserman, Table 1: 7x7x512 into FC-4096); ResNet's
    # bottleneck is 1x1 256->64, 3x3 64->64, 1x1 64->256 (He et al., Fig. 5); top-5 of torchvision's V1
    # weights: VGG19-BN 91.842, ResNet-34 91.420, ResNet-50 92.862 (torchvision's model table).
    "check_gap_fc1_params": (lambda f: (512 + 1) * 4096,
                             [(lambda f: 512 * 4096, "biases"), (lambda f: 25088 * 4096 + 4096, "averages each channel")], ()),
    "check_bottleneck_macs": (lambda f: 56 * 56 * (256 * 64 + 9 * 64 * 64 + 64 * 256),
                              [(lambda f: 2 * 56 * 56 * (256 * 64 + 9 * 64 * 64 + 64 * 256), "FLOPs"),
                               (lambda f: 56 * 56 * 9 * 64 * 64, "3x3 conv alone")], ()),
    "check_cheapest_match": (lambda f: "resnet50", [(lambda f: "resnet34", "below VGG19-BN's"),
                                                    (lambda f: "resnet101", "reaches it with")], ()),
    "check_activation_bytes": (lambda f: act_bytes,
                               [(lambda f: lambda m, s: act_bytes(m, s, once=False), "its own input"),
                                (lambda f: lambda m, s: act_bytes(m, s, scale=1), "4 bytes")], ()),
    "check_timing_pair": (lambda f: {"resnet50": resnet50().eval(), "vgg16_bn": vgg16_bn().eval()},
                          [(lambda f: {"resnet50": resnet50(), "vgg16_bn": vgg16_bn().eval()}, "training mode")], ()),
}


def test_every_check_has_cases_and_there_are_enough():
    assert set(CASES) == set(ex.REGISTRY)
    assert len(ex.REGISTRY) >= 30
    for notebook, checks in ex.CHECKS.items():
        assert len(checks) >= 5, notebook
        assert {"compute", "build", "experiment"} & set(checks.values()) == {"compute", "build", "experiment"} \
            or notebook == "00" and {"compute", "build"} <= set(checks.values())


@pytest.mark.parametrize("name", list(CASES))
def test_right_answer_passes(name, fashion, capsys):
    right, _, extra = CASES[name]
    assert ex.REGISTRY[name](right(fashion), *extra) is True
    out = capsys.readouterr().out
    assert out.startswith("right: "), out


@pytest.mark.parametrize("name,i", [(n, i) for n, c in CASES.items() for i in range(len(c[1]))])
def test_wrong_answer_is_rejected_and_named(name, i, fashion, capsys):
    _, wrongs, extra = CASES[name]
    answer, words = wrongs[i]
    assert ex.REGISTRY[name](answer(fashion), *extra) is False
    out = capsys.readouterr().out
    assert out.startswith("wrong: "), out
    assert words in out, out


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("empty", [None, ...], ids=["None", "Ellipsis"])
def test_empty_answer_says_not_answered(name, empty, capsys):
    _, _, extra = CASES[name]
    assert ex.REGISTRY[name](empty, *extra) is False
    assert capsys.readouterr().out.startswith("not answered yet: ")


@pytest.mark.parametrize("name", [n for n, f in ex.REGISTRY.items() if f.kind == "build"])
def test_stub_raising_not_implemented_says_not_answered(name, capsys):
    assert ex.REGISTRY[name](stub) is False
    assert capsys.readouterr().out.startswith("not answered yet: ")


def test_learner_exception_is_reported_not_raised(capsys):
    def broken(*args):
        raise RuntimeError("shapes do not match")
    assert ex.check_lrn(broken) is False
    out = capsys.readouterr().out
    assert out.startswith("wrong: your code raised RuntimeError: shapes do not match")


def test_nonsense_answer_is_wrong_not_a_traceback(capsys):
    assert ex.check_receptive_field("seven") is False
    assert ex.check_alexnet_sizes(55) is False
    assert capsys.readouterr().out.count("wrong: ") == 2


def test_package_versions_pass_the_build_checks(capsys):
    """The package's own modules are right answers too (no hidden extra requirement)."""
    assert ex.check_lenet(lenet5)
    assert ex.check_basic_block(BasicBlock)
    assert ex.check_bottleneck(Bottleneck)
    assert ex.check_vgg_stage(lambda i, o, n, batch_norm=False: vgg_make_layers([o] * n + ["M"], batch_norm, i))
