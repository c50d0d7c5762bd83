"""AlexNet against facts that do not come from our own code: torchvision's model, the
paper's layer list and sizes, PyTorch's own errors, and the LRN formula written out."""

import math

import pytest
import torch
import torch.nn as nn
import torchvision

from conftest import losses_on_one_batch
from deepnets.models import (AlexNet, alexnet, alexnet_paper, alexnet_small,
                             local_response_norm)

# The paper's Figure 2 / section 3.5, per layer: (kernels, kernel side, input channels each
# kernel sees with the two-GPU split, input channels without it). conv2, conv4 and conv5
# only see the kernel maps on their own GPU: half of the previous layer's kernels.
PAPER_CONVS = [
    (96, 11, 3, 3),      # conv1: 96 kernels of 11x11x3, stride 4
    (256, 5, 48, 96),    # conv2: 256 of 5x5x48
    (384, 3, 256, 256),  # conv3: 384 of 3x3x256 (connected to both GPUs)
    (384, 3, 192, 384),  # conv4: 384 of 3x3x192
    (256, 3, 192, 384),  # conv5: 256 of 3x3x192
]
PAPER_FCS = [(6 * 6 * 256, 4096), (4096, 4096), (4096, 1000)]
# Output of each stage for a 227x227x3 input (the sizes the paper's arithmetic gives).
PAPER_SHAPES_227 = [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13),
                    (384, 13, 13), (384, 13, 13), (256, 13, 13), (256, 6, 6)]


def paper_param_count(two_gpu: bool) -> int:
    convs = sum(k * side * side * (split if two_gpu else full) + k
                for k, side, split, full in PAPER_CONVS)
    fcs = sum(i * o + o for i, o in PAPER_FCS)
    return convs + fcs


def stage_shapes(model: nn.Module, x: torch.Tensor) -> list[tuple]:
    """Output shapes of every conv and max-pool, in forward order, from hooks."""
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    with torch.no_grad():
        model.eval()(x)
    for h in hooks:
        h.remove()
    return shapes


@pytest.fixture(scope="module")
def tv_alexnet():
    torch.manual_seed(0)
    return torchvision.models.alexnet(weights=None).eval()


@pytest.fixture(scope="module")
def ours():
    return alexnet()


@pytest.fixture(scope="module")
def paper():
    return alexnet_paper().eval()


# Size and error tests do not need 4096-unit fc layers (building them is most of the time).
SLIM = dict(fc_width=8)


# -- torchvision layout -------------------------------------------------------------------

def test_torchvision_state_dict_loads_strictly_and_outputs_match(tv_alexnet, ours):
    assert list(ours.state_dict()) == list(tv_alexnet.state_dict())
    ours.load_state_dict(tv_alexnet.state_dict(), strict=True)
    ours.eval()
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(ours(x), tv_alexnet(x), atol=1e-6, rtol=0)
        # adaptive average pooling: other sizes give the same as torchvision's too
        x = torch.randn(1, 3, 256, 300)
        assert torch.allclose(ours(x), tv_alexnet(x), atol=1e-6, rtol=0)


def test_torchvision_parameter_count(tv_alexnet, ours):
    expected = 61_100_840
    assert sum(p.numel() for p in tv_alexnet.parameters()) == expected
    assert sum(p.numel() for p in ours.parameters()) == expected
    # and from torchvision's layer list: 64-192-384-256-256, kernels 11, 5, 3, 3, 3
    convs = [(64, 11, 3), (192, 5, 64), (384, 3, 192), (256, 3, 384), (256, 3, 256)]
    fcs = [(9216, 4096), (4096, 4096), (4096, 1000)]
    assert (sum(k * s * s * c + k for k, s, c in convs) + sum(i * o + o for i, o in fcs)
            == expected)


def test_num_classes_changes_only_fc8():
    m = alexnet(num_classes=10, **SLIM)
    assert m.classifier[6].out_features == 10
    assert m(torch.randn(1, 3, 224, 224)).shape == (1, 10)


# -- the paper's net ----------------------------------------------------------------------

@pytest.mark.parametrize("two_gpu", [True, False])
def test_paper_parameter_count(two_gpu, paper):
    model = paper if two_gpu else alexnet_paper(two_gpu=False)
    count = sum(p.numel() for p in model.parameters())
    assert count == paper_param_count(two_gpu)
    assert count == (60_965_224 if two_gpu else 62_378_344)  # "60 million parameters"


def test_paper_shapes_for_227(paper):
    model = paper
    x = torch.randn(1, 3, 227, 227)
    assert stage_shapes(model, x) == PAPER_SHAPES_227
    # 6 x 6 x 256 = 9216 values feed fc6 -> 4096 -> 4096 -> 1000
    linears = [m for m in model.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == PAPER_FCS
    assert model(x).shape == (1, 1000)


def test_paper_kernel_shapes_match_the_two_gpu_split(paper):
    convs = [m for m in paper.features if isinstance(m, nn.Conv2d)]
    assert [tuple(c.weight.shape) for c in convs] == [
        (k, split, side, side) for k, side, split, _ in PAPER_CONVS]
    # conv1 has no zero padding and stride 4; conv2 is the one padded by 2
    assert convs[0].padding == (0, 0) and convs[0].stride == (4, 4)
    assert convs[1].padding == (2, 2)
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]


def test_paper_layer_order_lrn_then_pool_and_dropout_after_fc(paper):
    model = paper
    kinds = [type(m).__name__ for m in model.features]
    assert kinds[:8] == ["Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d",
                         "Conv2d", "ReLU", "LocalResponseNorm", "MaxPool2d"]
    assert all(m.kernel_size == 3 and m.stride == 2
               for m in model.features if isinstance(m, nn.MaxPool2d))
    kinds = [type(m).__name__ for m in model.classifier]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert all(m.p == 0.5 for m in model.classifier if isinstance(m, nn.Dropout))


def test_224_does_not_fit_the_paper_arithmetic(paper):
    # (224 - 11) / 4 + 1 = 54.25 is not a whole number: conv1 drops the last 1 pixel of a 224
    # input; (227 - 11) / 4 + 1 = 55 uses every pixel.
    model = paper
    conv1 = model.features[0]
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((11, 11), (4, 4), (0, 0))
    with torch.no_grad():
        assert conv1(torch.zeros(1, 3, 224, 224)).shape[-1] == (224 - 11) // 4 + 1 == 54
        assert conv1(torch.zeros(1, 3, 227, 227)).shape[-1] == (227 - 11) // 4 + 1 == 55
    assert model.output_size(224) == 5 and model.output_size(227) == 6
    with pytest.raises(ValueError, match=r"227x227.*9216.*5x5x256 = 6400"):
        model(torch.randn(1, 3, 224, 224))


# -- sizes and errors ---------------------------------------------------------------------

@pytest.mark.parametrize("size", [63, 64, 100, 224, 227, 231])
def test_size_arithmetic_matches_real_forward(size):
    models = [alexnet(**SLIM)] + ([alexnet_paper(input_size=size, **SLIM)] if size >= 67 else [])
    for model in models:
        expected = stage_shapes(model, torch.zeros(1, 3, size, size))
        assert [s for _, s in model.sizes(size)] == [shape[1] for shape in expected]


def test_smallest_input_is_named_and_is_really_the_smallest():
    model = alexnet(**SLIM).eval()
    assert model.min_input_size == 63
    model(torch.zeros(1, 3, 63, 63))  # works
    with pytest.raises(ValueError, match=r"smallest side that works is 63:"):
        model(torch.zeros(1, 3, 62, 62))
    # independent check: torchvision's own AlexNet cannot run a 62x62 image either
    tv = torchvision.models.alexnet(weights=None).eval()
    tv(torch.zeros(1, 3, 63, 63))
    with pytest.raises(RuntimeError):
        tv(torch.zeros(1, 3, 62, 62))


def test_too_small_input_size_at_construction():
    with pytest.raises(ValueError, match=r"smallest side that works is 67:"):
        alexnet_paper(input_size=28, **SLIM)


def test_wrong_channel_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"3-channel images but got 1 channels.*in_channels=1"):
        alexnet(**SLIM)(torch.zeros(1, 1, 224, 224))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        alexnet(**SLIM)(torch.zeros(3, 224, 224))


@pytest.mark.parametrize("kwargs, match", [
    (dict(activation="swish"), "activation must be one of"),
    (dict(groups=2, widths=(64, 192, 384, 256, 255)), "divisible by 2"),
    (dict(dropout=1.0), "dropout"),
    (dict(pool=(3,)), "pool"),
    (dict(dropout_position="middle"), "dropout_position"),
    (dict(init="zeros"), "init"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AlexNet(**SLIM, **kwargs)


# -- LRN ----------------------------------------------------------------------------------

def test_lrn_is_the_papers_formula():
    k, n, alpha, beta = 2.0, 5, 1e-4, 0.75
    a = torch.randn(2, 7, 3, 3, dtype=torch.float64) * 40  # large, so the sum matters
    channels = a.shape[1]
    b = torch.empty_like(a)
    for i in range(channels):  # section 3.3, written out
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        b[:, i] = a[:, i] / (k + alpha * (a[:, lo:hi + 1] ** 2).sum(1)) ** beta
    assert torch.allclose(local_response_norm()(a), b, rtol=1e-10, atol=0)


@pytest.mark.parametrize("memory_format", [torch.channels_last, torch.contiguous_format])
@pytest.mark.parametrize("channels", [1, 4, 24])
def test_lrn_equals_pytorchs_outputs_and_gradients(memory_format, channels):
    # The faster forward must compute what nn.LocalResponseNorm computes, gradients included.
    ours = local_response_norm()
    theirs = nn.LocalResponseNorm(size=ours.size, alpha=ours.alpha, beta=ours.beta, k=ours.k)
    a = (torch.randn(3, channels, 5, 6, dtype=torch.float64) * 60).relu()
    a = a.contiguous(memory_format=memory_format).requires_grad_()
    b_ours, b_theirs = ours(a), theirs(a)
    assert torch.allclose(b_ours, b_theirs, rtol=1e-12, atol=0)
    w = torch.randn_like(b_theirs)  # a random upstream gradient
    g_ours, = torch.autograd.grad((b_ours * w).sum(), a)
    g_theirs, = torch.autograd.grad((b_theirs * w).sum(), a)
    assert torch.allclose(g_ours, g_theirs, rtol=1e-10, atol=1e-14)
    # other ranks fall back to PyTorch's own forward
    x = torch.randn(2, channels, 7, dtype=torch.float64)
    assert torch.equal(ours(x), theirs(x))


def test_lrn_shrinks_every_activation_by_at_least_2_to_the_075():
    a = torch.rand(4, 16, 5, 5) * 10
    ratio = local_response_norm()(a) / a
    assert (ratio <= 2 ** -0.75 + 1e-6).all()


# -- ablation switches --------------------------------------------------------------------

def test_switches_change_only_what_they_name():
    base = alexnet_small()
    tanh = alexnet_small(activation="tanh")
    # Another activation changes no weight: the same parameters, shape for shape.
    assert [tuple(p.shape) for p in tanh.parameters()] == [tuple(p.shape) for p in base.parameters()]
    assert not any(isinstance(m, nn.ReLU) for m in tanh.modules())
    assert sum(isinstance(m, nn.Tanh) for m in tanh.modules()) == 7  # 5 convs + fc6 + fc7
    assert all(m.p == 0.0 for m in alexnet_small(dropout=0.0).modules()
               if isinstance(m, nn.Dropout))
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in alexnet_small(lrn=True).modules()) == 2
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in base.modules())
    custom = alexnet_small(activation=nn.SiLU)
    assert sum(isinstance(m, nn.SiLU) for m in custom.modules()) == 7


def test_small_net_for_fashion_mnist():
    model = alexnet_small()
    x = torch.randn(4, 1, 28, 28)
    assert model(x).shape == (4, 10)
    assert [s[1] for s in stage_shapes(model, x)] == [28, 13, 13, 6, 6, 6, 6, 2]
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [24, 64, 96, 96, 64]  # the paper's / 4
    assert model.classifier[0].in_features == 64 * 2 * 2
    # non-overlapping 2x2 pooling keeps more: 28 -> 14 -> 7 -> 3
    pool2 = alexnet_small(pool=(2, 2))
    assert [s[1] for s in stage_shapes(pool2, x)] == [28, 14, 14, 7, 7, 7, 7, 3]
    assert pool2.classifier[0].in_features == 64 * 3 * 3
    wide = alexnet_small(width=0.5, in_channels=3)
    assert wide(torch.randn(1, 3, 28, 28)).shape == (1, 10)
    assert wide.features[0].out_channels == 48 and wide.classifier[0].out_features == 2048


def test_inits():
    torch.manual_seed(0)
    paper = alexnet_paper(init="paper", fc_width=64)
    convs = [m for m in paper.features if isinstance(m, nn.Conv2d)]
    assert [float(c.bias.detach().mean()) for c in convs] == [0.0, 1.0, 0.0, 1.0, 1.0]
    # Section 5: biases 1 in the hidden fully connected layers, 0 in "the remaining layers"
    fcs = [m for m in paper.classifier if isinstance(m, nn.Linear)]
    assert [float(fc.bias.detach().mean()) for fc in fcs] == [1.0, 1.0, 0.0]
    assert abs(float(convs[2].weight.detach().std()) - 0.01) < 1e-3
    he = alexnet_small(init="kaiming")
    w = he.features[6].weight  # conv3, fan_in 64 * 9
    assert abs(float(w.detach().std()) - math.sqrt(2 / (64 * 9))) < 0.1 * math.sqrt(2 / (64 * 9))


def test_small_net_learns_a_batch():
    torch.manual_seed(0)
    model = alexnet_small(dropout=0.0, init="kaiming")
    x, y = torch.randn(16, 1, 28, 28), torch.randint(0, 10, (16,))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = losses_on_one_batch(model, x, y, opt, steps=20)
    assert losses[-1] < 0.1 * losses[0]
