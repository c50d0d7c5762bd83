"""ResNet models checked against independent facts: torchvision's implementation (random
weights, no download), the paper's Table 6 parameter counts, the paper's layer counting
and the published ~4.1 GMACs of ResNet-50 at 224x224."""
import pytest
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
import torchvision

from deepnets.models import resnet as R


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def weighted_layers(model):
    """Conv/linear layers the paper counts in the depth (projection shortcuts excluded)."""
    return [name for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear)) and "downsample" not in name]


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_torchvision_state_dict_and_outputs_match(name):
    torch.manual_seed(0)
    ref = getattr(torchvision.models, name)(weights=None).eval()
    # random, non-trivial BN statistics so eval mode really exercises them
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    ours = getattr(R, name)(num_classes=1000).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    assert list(ours.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=1e-4, atol=1e-5)


# Structure-only checks build the nets on the meta device: shapes, no memory, no arithmetic.

def test_resnet50_has_25_557_032_params():
    with torch.device("meta"):
        assert n_params(R.resnet50()) == 25_557_032
        assert n_params(torchvision.models.resnet50(weights=None)) == 25_557_032


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"])
def test_param_counts_match_torchvision(name):
    with torch.device("meta"):
        ours, ref = getattr(R, name)(), getattr(torchvision.models, name)(weights=None)
    assert n_params(ours) == n_params(ref)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
           [(k, v.shape) for k, v in ref.state_dict().items()]


@pytest.mark.parametrize("name,depth", [("resnet18", 18), ("resnet34", 34), ("resnet50", 50),
                                        ("resnet101", 101), ("resnet152", 152)])
def test_imagenet_depth_counts_weighted_layers(name, depth):
    with torch.device("meta"):
        assert len(weighted_layers(getattr(R, name)())) == depth


def test_resnet50_about_4_1_gmacs_at_224():
    with torch.device("meta"):
        model = R.resnet50().eval()
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.randn(1, 3, 224, 224))
    gmacs = counter.get_total_flops() / 2 / 1e9
    assert 4.0 < gmacs < 4.2


def test_stage_shapes_resnet50():
    with torch.device("meta"):
        model = R.resnet50().eval()
        x = torch.randn(1, 3, 224, 224)
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    assert x.shape == (1, 64, 56, 56)
    expected = {"layer1": (256, 56), "layer2": (512, 28), "layer3": (1024, 14), "layer4": (2048, 7)}
    with torch.no_grad():
        for name in model.stage_names:
            x = getattr(model, name)(x)
            assert x.shape == (1, expected[name][0], expected[name][1], expected[name][1])
    assert [len(getattr(model, n)) for n in model.stage_names] == [3, 4, 6, 3]


# Paper Table 6 (CIFAR-10, 3-channel input, 10 classes): parameters in millions.
@pytest.mark.parametrize("depth,paper_m,digits", [(20, 0.27, 2), (32, 0.46, 2), (44, 0.66, 2),
                                                  (56, 0.85, 2), (110, 1.7, 1)])
def test_cifar_param_counts_match_paper_table6(depth, paper_m, digits):
    model = R.cifar_resnet(depth, in_channels=3, num_classes=10)
    assert round(n_params(model) / 1e6, digits) == paper_m


@pytest.mark.parametrize("depth", [20, 56])
def test_cifar_net_has_6n_plus_2_layers_and_plain_twin_same_params(depth):
    res = R.cifar_resnet(depth)
    plain = R.cifar_resnet(depth, shortcut=None)
    assert len(weighted_layers(res)) == depth == len(weighted_layers(plain))
    # option A shortcuts have no parameters: identical parameter lists
    assert [(k, v.shape) for k, v in res.state_dict().items()] == \
           [(k, v.shape) for k, v in plain.state_dict().items()]
    assert not any(isinstance(m, nn.Conv2d) and "downsample" in n for n, m in res.named_modules())


def test_cifar_forward_shapes_fashion_mnist():
    model = R.cifar_resnet(20).eval()
    x = torch.randn(3, 1, 28, 28)
    with torch.no_grad():
        assert model(x).shape == (3, 10)
        h = model.relu(model.bn1(model.conv1(x)))
        sizes = []
        for name in model.stage_names:
            h = getattr(model, name)(h)
            sizes.append(tuple(h.shape[1:]))
    assert sizes == [(16, 28, 28), (32, 14, 14), (64, 7, 7)]


@pytest.mark.parametrize("depth", [0, 7, 19, 21, 57, -4, 2])
def test_bad_depth_raises(depth):
    with pytest.raises(ValueError, match="6n\\+2"):
        R.cifar_resnet(depth)


def test_zero_pad_shortcut_subsamples_and_pads():
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(1, 2, 4, 4)
    y = R.ZeroPadShortcut(planes=4, stride=2)(x)
    assert y.shape == (1, 4, 2, 2)
    torch.testing.assert_close(y[:, :2], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 2:]) == 0


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_zero_pad_shortcut_equals_slicing_forward_and_backward(layout):
    """The shortcut subsamples with a 1x1 max pool (for speed); it must give exactly what
    the plain reading x[:, :, ::2, ::2] gives, values and gradients, bit for bit."""
    torch.manual_seed(0)
    x = torch.randn(4, 16, 7, 7).contiguous(memory_format=layout)   # odd size: 7 -> 4
    grad_out = torch.randn(4, 32, 4, 4)
    a = x.clone().requires_grad_()
    b = x.clone().requires_grad_()
    y = R.ZeroPadShortcut(planes=32, stride=2)(a)
    sliced = b[:, :, ::2, ::2]
    expected = torch.cat([sliced, sliced.new_zeros(4, 16, 4, 4)], dim=1)
    assert torch.equal(y, expected)
    y.backward(grad_out)
    expected.backward(grad_out)
    assert torch.equal(a.grad, b.grad)


def test_zero_pad_shortcut_keeps_channels_last_gradients():
    # The reason for the max pool: the slice's backward hands back an NCHW gradient, which
    # made the ReLU backward next to it several times slower under channels_last.
    x = torch.randn(2, 8, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    y = R.ZeroPadShortcut(planes=16, stride=2)(x)
    y.backward(torch.randn_like(y).contiguous(memory_format=torch.channels_last))
    assert x.grad.is_contiguous(memory_format=torch.channels_last)


def test_fashion_resnet_matches_its_closed_form_parameter_count():
    # Written out from the architecture: stem conv 3x3x1x16 + BN; per stage one BasicBlock
    # (two 3x3 convs + two BNs; option A shortcuts have no weights); fc 128 -> 10.
    widths = [16, 32, 64, 128]
    stem = 9 * 1 * 16 + 2 * 16
    blocks = sum(9 * cin * c + 9 * c * c + 4 * c for cin, c in zip([16] + widths[:-1], widths))
    fc = 128 * 10 + 10
    model = R.fashion_resnet()
    assert n_params(model) == stem + blocks + fc == 297_338
    assert len(weighted_layers(model)) == 10
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_bottleneck_on_256d_costs_about_a_basic_block_on_64d():
    """Paper section 4.1, Fig. 5: the two blocks have similar time complexity."""
    basic, bottleneck = R.BasicBlock(64, 64), R.Bottleneck(256, 64)
    # multiply-adds per pixel (one per conv weight at stride 1), from the paper's kernel shapes:
    # two 3x3x64 convs on 64-d; 1x1 256->64, 3x3 64->64, 1x1 64->256 on 256-d
    basic_macs = 2 * (3 * 3 * 64 * 64)
    bottleneck_macs = 1 * 1 * 256 * 64 + 3 * 3 * 64 * 64 + 1 * 1 * 64 * 256
    conv = lambda m: sum(p.numel() for n, p in m.named_parameters() if "conv" in n)
    assert conv(basic) == basic_macs and conv(bottleneck) == bottleneck_macs
    assert 0.9 < conv(bottleneck) / conv(basic) < 1.0


def _zero_residual_branch(block):
    with torch.no_grad():
        for m in block.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.zero_()


@pytest.mark.parametrize("block_cls", [R.BasicBlock, R.Bottleneck])
def test_block_with_zero_branch_is_identity_only_with_shortcut(block_cls):
    """y = relu(F(x) + x): with F = 0 a residual block passes relu(x); a plain block gives 0."""
    ch = 16 * block_cls.expansion
    x = torch.randn(2, ch, 8, 8)
    res = block_cls(ch, 16, residual=True).eval()
    plain = block_cls(ch, 16, residual=False).eval()
    _zero_residual_branch(res)
    _zero_residual_branch(plain)
    with torch.no_grad():
        torch.testing.assert_close(res(x), torch.relu(x))
        assert torch.count_nonzero(plain(x)) == 0


def test_projection_shortcut_used_only_when_shape_changes():
    with torch.device("meta"):
        model = R.resnet18()
    downs = [n for n, m in model.named_modules() if n.endswith("downsample")]
    assert downs == ["layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample"]
    with torch.device("meta"):
        model = R.resnet50()   # bottleneck: layer1 also changes channels 64 -> 256
    downs = [n for n, m in model.named_modules() if n.endswith("downsample")]
    assert downs == [f"layer{i}.0.downsample" for i in range(1, 5)]


def test_plain_and_residual_nets_differ_and_both_backprop():
    torch.manual_seed(0)
    res = R.cifar_resnet(20)
    plain = R.cifar_resnet(20, shortcut=None)
    plain.load_state_dict(res.state_dict())
    x = torch.randn(4, 1, 28, 28)
    out_r, out_p = res(x), plain(x)
    assert not torch.allclose(out_r, out_p)
    (out_r.sum() + out_p.sum()).backward()
    assert all(p.grad is not None for p in res.parameters())
    assert all(p.grad is not None for p in plain.parameters())


def test_in_channels_and_num_classes():
    model = R.resnet18(num_classes=10, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 10)
    assert model.conv1.in_channels == 1
