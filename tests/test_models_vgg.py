"""deepnets.models.vgg against independent facts: torchvision's own models (parameter
counts, state_dict layout, outputs), the paper's shapes, and the 3x3 arithmetic computed
a second way (gradients for receptive fields, closed-form sums for parameters)."""

import pytest
import torch
import torch.nn as nn
import torchvision

from deepnets.models import (receptive_field, vgg, vgg11, vgg11_bn, vgg13, vgg13_bn,
                             vgg16, vgg16_bn, vgg19, vgg19_bn)
from deepnets.models import vgg_cfgs as cfgs

PAIRS = [
    (vgg11, torchvision.models.vgg11), (vgg11_bn, torchvision.models.vgg11_bn),
    (vgg13, torchvision.models.vgg13), (vgg13_bn, torchvision.models.vgg13_bn),
    (vgg16, torchvision.models.vgg16), (vgg16_bn, torchvision.models.vgg16_bn),
    (vgg19, torchvision.models.vgg19), (vgg19_bn, torchvision.models.vgg19_bn),
]


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def on_meta(constructor, **kwargs) -> nn.Module:
    # Shapes and counts without allocating (or initialising) 138M floats.
    with torch.device("meta"):
        return constructor(**kwargs)


def randomised(model: nn.Module) -> nn.Module:
    # Materialise a meta-device model with random weights (He-scaled, so activations stay
    # O(1) through 16 layers) and random BatchNorm statistics. Faster than the default
    # initialisation of 138M parameters, and no download.
    model = model.to_empty(device="cpu")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                t.zero_()
            elif name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen) + 0.5)
            elif t.dim() > 1:
                t.copy_(torch.randn(t.shape, generator=gen) * (2.0 / t[0].numel()) ** 0.5)
            else:
                t.copy_(torch.randn(t.shape, generator=gen) * 0.1 + (1.0 if name.endswith("weight") else 0.0))
    return model.eval()


@pytest.mark.parametrize("ours, theirs", PAIRS, ids=[p[0].__name__ for p in PAIRS])
def test_state_dict_layout_matches_torchvision(ours, theirs):
    a, b = on_meta(ours).state_dict(), on_meta(theirs).state_dict()
    assert list(a) == list(b)
    assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}
    assert n_params(on_meta(ours)) == n_params(on_meta(theirs))


def test_vgg16_parameter_count():
    # Paper's Table 2 says "138" million; torchvision's count is exact.
    assert n_params(on_meta(vgg16)) == 138_357_544 == n_params(on_meta(torchvision.models.vgg16))


def test_paper_table_2_parameter_counts_in_millions():
    # Table 2 of Simonyan & Zisserman: A, A-LRN 133; B 133; C 134; D 138; E 144.
    counts = {name: n_params(on_meta(vgg, cfg=name)) for name in "ABDE"}
    assert {k: round(v / 1e6) for k, v in counts.items()} == {"A": 133, "B": 133, "D": 138, "E": 144}


def test_fc1_holds_102_764_544_parameters():
    fc1 = on_meta(vgg16).classifier[0]
    assert (fc1.in_features, fc1.out_features) == (7 * 7 * 512, 4096)
    assert n_params(fc1) == 25088 * 4096 + 4096 == 102_764_544


def test_vgg16_loads_torchvision_weights_and_gives_the_same_outputs():
    theirs = randomised(on_meta(torchvision.models.vgg16))  # random weights, no download
    ours = on_meta(vgg16).to_empty(device="cpu").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = theirs(x)
        assert expected.std() > 0.1  # the comparison is not between two near-zero vectors
        assert torch.equal(ours(x), expected)


def test_vgg11_bn_loads_torchvision_weights_including_running_stats():
    theirs = randomised(on_meta(torchvision.models.vgg11_bn))
    ours = on_meta(vgg11_bn).to_empty(device="cpu").eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)  # torchvision's adaptive pool accepts >= 32; so does ours
    with torch.no_grad():
        expected = theirs(x)
        assert expected.std() > 0.1
        assert torch.equal(ours(x), expected)


def test_vgg16_shapes_follow_the_paper():
    # 224 -> 112 -> 56 -> 28 -> 14 -> 7 after the five pools; conv1_2 is 64 x (3x3x64).
    model = on_meta(vgg16)
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and sum(isinstance(m, nn.Linear) for m in model.modules()) == 3
    assert tuple(convs[0].weight.shape) == (64, 3, 3, 3)
    assert tuple(convs[1].weight.shape) == (64, 64, 3, 3)
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) and c.stride == (1, 1) for c in convs)
    sizes, x = [], torch.zeros(1, 3, 224, 224, device="meta")
    for m in model.features:
        x = m(x)
        if isinstance(m, nn.MaxPool2d):
            sizes.append(x.shape[-1])
    assert sizes == [112, 56, 28, 14, 7]
    assert tuple(x.shape) == (1, 512, 7, 7)
    # Pooling follows conv1_2, conv2_2, conv3_3, conv4_3, conv5_3 only.
    kinds = ["M" if isinstance(m, nn.MaxPool2d) else m.out_channels
             for m in model.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    assert kinds == cfgs["D"]


@pytest.mark.parametrize("cfg, weight_layers", [("A", 11), ("B", 13), ("D", 16), ("E", 19)])
def test_configurations_have_their_depth(cfg, weight_layers):
    model = on_meta(vgg, cfg=cfg)
    convs = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    fcs = sum(isinstance(m, nn.Linear) for m in model.modules())
    assert convs + fcs == weight_layers and fcs == 3


def closed_form_params(cfg, in_channels, width, input_size, fc_width, num_classes, bn):
    # Written out independently of make_layers: 9*cin*cout + cout per conv (+2*cout BN).
    total, c, side = 0, in_channels, input_size
    for v in cfg:
        if v == "M":
            side //= 2
            continue
        out = max(1, round(v * width))
        total += 9 * c * out + out + (2 * out if bn else 0)
        c = out
    flat = c * side * side
    return total + flat * fc_width + fc_width + fc_width * fc_width + fc_width + fc_width * num_classes + num_classes


@pytest.mark.parametrize("cfg, width, size, bn", [
    ("D", 0.25, 32, True), ("A", 0.5, 32, False), ("E", 1 / 8, 64, True),
    ([32, 32, "M", 64, 64, "M", 128, 128, "M"], 1.0, 28, True),
])
def test_reduced_models_match_the_closed_form_count(cfg, width, size, bn):
    model = vgg(cfg, bn, num_classes=10, in_channels=1, input_size=size, width=width, fc_width=256)
    name_cfg = cfgs[cfg] if isinstance(cfg, str) else cfg
    assert n_params(model) == closed_form_params(name_cfg, 1, width, size, 256, 10, bn)
    out = model(torch.randn(2, 1, size, size))
    assert out.shape == (2, 10)


def test_width_multiplier_scales_every_conv():
    model = vgg16(width=0.25, num_classes=10, input_size=32)
    widths = [m.out_channels for m in model.features if isinstance(m, nn.Conv2d)]
    assert widths == [16, 16, 32, 32, 64, 64, 64, 128, 128, 128, 128, 128, 128]
    assert model.classifier[0].in_features == 128  # 32 / 2**5 = 1 pixel left


def test_classifier_is_sized_from_the_input_size():
    small = vgg([32, 32, "M", 64, 64, "M", 128, 128, "M"], in_channels=1, input_size=28,
                num_classes=10, fc_width=256)
    assert small.classifier[0].in_features == 128 * 3 * 3  # 28 -> 14 -> 7 -> 3
    assert small(torch.randn(1, 1, 28, 28)).shape == (1, 10)


def test_too_small_input_size_is_a_clear_error():
    with pytest.raises(ValueError, match=r"28 -> 14 -> 7 -> 3 -> 1 -> 0.*at least 32"):
        vgg16(input_size=28)


def test_wrong_channels_at_forward_is_a_clear_error():
    model = vgg16_bn(num_classes=10, input_size=32, width=0.25, fc_width=64)
    with pytest.raises(ValueError, match="3-channel images but got 1 channels.*in_channels=1"):
        model(torch.randn(2, 1, 32, 32))


def test_too_small_image_at_forward_is_a_clear_error():
    model = vgg11(num_classes=10, in_channels=1, input_size=32, width=0.25, fc_width=64)
    with pytest.raises(ValueError, match="at least 32"):
        model(torch.randn(2, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        model(torch.randn(1, 32, 32))


@pytest.mark.parametrize("bad", [dict(cfg="C"), dict(cfg=[64, "X"]), dict(cfg=["M"]),
                                 dict(width=0), dict(in_channels=0), dict(dropout=1.0)])
def test_bad_arguments_raise_value_error(bad):
    with pytest.raises(ValueError):
        vgg(**bad)


def measured_receptive_field(model: nn.Module, channels: int, size: int = 33) -> int:
    # Second way: which input pixels does the centre output unit's gradient reach?
    x = torch.rand(1, channels, size, size, requires_grad=True)
    y = model(x)
    y[0, :, y.shape[-2] // 2, y.shape[-1] // 2].sum().backward()
    rows = (x.grad[0].abs().sum(dim=(0, 2)) > 0).nonzero()
    return int(rows.max() - rows.min() + 1)


def positive_stack(n: int, k: int, channels: int = 2) -> nn.Sequential:
    layers = []
    for _ in range(n):
        conv = nn.Conv2d(channels, channels, k, padding=k // 2)
        nn.init.uniform_(conv.weight, 0.1, 1.0)  # positive: no cancellation, no dead ReLU
        layers += [conv, nn.ReLU()]
    return nn.Sequential(*layers)


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_stacked_3x3_receptive_field_is_2n_plus_1(n):
    stack = positive_stack(n, 3)
    assert receptive_field(stack) == 2 * n + 1 == measured_receptive_field(stack, 2)
    single = positive_stack(1, 2 * n + 1)
    assert receptive_field(single) == measured_receptive_field(single, 2) == 2 * n + 1


@pytest.mark.parametrize("c", [16, 64, 512])
def test_stacked_3x3_weights_vs_one_big_kernel(c):
    # Paper, section 2.3: three 3x3 layers have 3*(3^2 C^2) = 27C^2 weights, one 7x7 49C^2.
    for n, big in [(2, 5), (3, 7)]:
        stack = nn.Sequential(*[nn.Conv2d(c, c, 3, padding=1, bias=False) for _ in range(n)])
        single = nn.Conv2d(c, c, big, padding=big // 2, bias=False)
        assert n_params(stack) == n * 9 * c * c
        assert n_params(single) == big * big * c * c
        assert n_params(stack) < n_params(single)


def test_vgg16_receptive_fields():
    # conv5_3 sees 196x196 pixels, a pool5 unit 212x212 (well-known values), computed
    # here once by the recurrence and once by gradients (max-pool -> avg-pool so the
    # gradient reaches every pixel of the window).
    features = vgg16(init_weights=False, width=1 / 32).features
    assert receptive_field(features[:-1]) == 196
    assert receptive_field(features) == 212
    probe = nn.Sequential(*[nn.AvgPool2d(2, 2) if isinstance(m, nn.MaxPool2d) else m
                            for m in features])
    for m in probe:
        if isinstance(m, nn.Conv2d):
            nn.init.uniform_(m.weight, 0.1, 1.0)
    assert measured_receptive_field(probe, 3, size=224) == 212


@pytest.mark.parametrize("make, cfg, bn", [(vgg16, "D", False), (vgg13_bn, "B", True), (vgg19, "E", False)])
def test_named_constructors_take_the_reduced_sizes(make, cfg, bn):
    # The named nets pass width, input_size and fc_width on: the closed-form count of the reduced net.
    model = make(num_classes=10, input_size=32, width=0.125, fc_width=32)
    assert n_params(model) == closed_form_params(cfgs[cfg], 3, 0.125, 32, 32, 10, bn)


def test_fc_init_follows_torchvision_by_default_and_he_on_request():
    torch.manual_seed(0)
    paper = vgg16(num_classes=10, input_size=32, width=0.25, fc_width=1024)
    he = vgg16(num_classes=10, input_size=32, width=0.25, fc_width=1024, fc_std=None)
    for i in (0, 3, 6):
        assert paper.classifier[i].weight.std().item() == pytest.approx(0.01, rel=0.05)
        fan_in = he.classifier[i].in_features
        assert he.classifier[i].weight.std().item() == pytest.approx((2 / fan_in) ** 0.5, rel=0.1)
    with pytest.raises(ValueError, match="fc_std"):
        vgg16(fc_std=0.0)


def test_dropout_follows_fc1_and_fc2_only():
    # Paper, Section 3.1: dropout (ratio 0.5) on the first two fully connected layers.
    model = on_meta(vgg16)
    kinds = [type(m).__name__ for m in model.classifier]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert [m.p for m in model.classifier if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert [m.p for m in on_meta(vgg16, dropout=0.0).classifier if isinstance(m, nn.Dropout)] == [0.0, 0.0]
