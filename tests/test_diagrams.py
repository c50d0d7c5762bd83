"""Architecture diagrams against the models themselves, the papers' shapes and the PNG budget."""

import functools
import io

import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn as nn
import torchvision

from deepnets import models
from deepnets.diagrams import architecture, architecture_boxes
from deepnets.models.resnet import BasicBlock, Bottleneck

# Each built once for this file: VGG16's 138M weights take about 2 s to initialise, ResNet-50's
# 0.5 s, and the tests read only the architecture (the trace restores the model's hooks and mode).
vgg16 = functools.cache(models.vgg16)
resnet50 = functools.cache(models.resnet50)


def hooked_shapes(model, input_size, names):
    """A second derivation: each named module's output shape, in the order they first run."""
    shapes = {}
    modules = dict(model.named_modules())

    def remember(name):
        def hook(module, args, out):
            shapes.setdefault(name, tuple(out.shape[1:]))
        return hook

    handles = [modules[n].register_forward_hook(remember(n)) for n in names]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(input_size))
    for h in handles:
        h.remove()
    return shapes


def total(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("build, size", [
    (models.alexnet_paper, (1, 3, 227, 227)),
    (vgg16, (1, 3, 224, 224)),
    (resnet50, (1, 3, 224, 224)),
    (lambda: models.cifar_resnet(20), (1, 1, 28, 28)),
    (lambda: models.cifar_resnet(20, shortcut=None), (1, 1, 28, 28)),
    (lambda: models.deep_mlp(12, residual=True), (1, 1, 28, 28)),
    (lambda: models.deep_mlp(12, batch_norm=True), (1, 1, 28, 28)),
])
def test_boxes_are_the_layers_in_order_with_their_shapes_and_parameters(build, size):
    torch.manual_seed(0)
    model = build()
    boxes = architecture_boxes(model, size)
    names = [b.name for b in boxes]
    shapes = hooked_shapes(model, size, names)
    assert list(shapes) == names  # the order the data meets them
    assert [b.out_shape for b in boxes] == [shapes[n] for n in names]
    assert sum(b.params for b in boxes) == total(model)


def test_alexnet_paper_shapes_and_two_towers():
    boxes = architecture_boxes(models.alexnet_paper(), (1, 3, 227, 227))
    convs = [b for b in boxes if b.op.startswith("Conv")]
    pools = [b for b in boxes if b.op.startswith("MaxPool")]
    # The paper, section 3.5 and Figure 2 (channels, height, width).
    assert [b.out_shape for b in convs] == [(96, 55, 55), (256, 27, 27), (384, 13, 13),
                                            (384, 13, 13), (256, 13, 13)]
    assert [b.out_shape for b in pools] == [(96, 27, 27), (256, 13, 13), (256, 6, 6)]
    assert [b.kind for b in convs] == ["Conv 11x11/4, 96", "Conv 5x5/1, 256", "Conv 3x3/1, 384",
                                       "Conv 3x3/1, 384", "Conv 3x3/1, 256"]
    assert convs[0].followed_by == ("ReLU", "LRN")
    # Every conv layer sits on both GPUs; only conv3 reads across them; fc6 joins them.
    assert all(b.towers == 2 for b in convs + pools)
    assert [b.mixes_channels for b in convs] == [True, False, True, False, False]
    linears = [b for b in boxes if b.op == "Linear"]
    assert [b.towers for b in linears] == [1, 1, 1] and linears[0].params == 9216 * 4096 + 4096
    assert all(b.towers == 1 for b in architecture_boxes(models.alexnet(), (1, 3, 224, 224)))
    assert all(b.towers == 1 for b in architecture_boxes(models.alexnet_paper(two_gpu=False),
                                                         (1, 3, 227, 227)))


def test_vgg16_stages_end_at_each_pool_and_width_changes_the_shapes():
    boxes = architecture_boxes(vgg16(), (1, 3, 224, 224))
    pools = [b for b in boxes if b.op == "MaxPool 2/2"]
    assert [b.out_shape[1] for b in pools] == [112, 56, 28, 14, 7]
    stages = [g for g in dict.fromkeys(b.group for b in boxes) if g and "stage" in g]
    convs_per_stage = [sum(b.group == g and b.op.startswith("Conv") for b in boxes) for g in stages]
    assert convs_per_stage == [2, 2, 3, 3, 3]  # configuration D, Table 1 of the paper
    half = architecture_boxes(models.vgg16(width=0.5), (1, 3, 224, 224))
    assert [b.out_shape[0] for b in half if b.op.startswith("Conv")][-1] == 256
    assert [b.out_shape for b in half] != [b.out_shape for b in boxes]


def test_resnet50_stages_and_shortcuts():
    boxes = architecture_boxes(resnet50(), (1, 3, 224, 224))
    blocks = [b for b in boxes if b.op == "Bottleneck"]
    stages = ["layer1", "layer2", "layer3", "layer4"]
    assert [sum(b.group == s for b in blocks) for s in stages] == [3, 4, 6, 3]  # Table 1
    last = {b.group: b.out_shape for b in blocks}
    assert [last[s] for s in stages] == [(256, 56, 56), (512, 28, 28), (1024, 14, 14), (2048, 7, 7)]
    assert [b.shortcut for b in blocks] == (
        ["projection", "identity", "identity"] + ["projection"] + ["identity"] * 3
        + ["projection"] + ["identity"] * 5 + ["projection"] + ["identity"] * 2)
    assert blocks[0].detail == "1x1, 64 → 3x3, 64 → 1x1, 256"
    assert blocks[3].detail == "1x1, 128 → 3x3/2, 128 → 1x1, 512"


def test_expanding_a_block_ends_it_in_the_addition_with_the_projection():
    model = resnet50()
    boxes = architecture_boxes(model, (1, 3, 224, 224), expand="layer2.0")
    inside = [b for b in boxes if b.block == "layer2.0"]
    assert [b.name for b in inside] == ["layer2.0.conv1", "layer2.0.conv2", "layer2.0.conv3",
                                        "layer2.0.add"]
    add = inside[-1]
    assert add.shortcut == "projection" and add.followed_by == ("ReLU",)
    assert add.params == total(model.layer2[0].downsample) == 256 * 512 + 2 * 512
    assert inside[2].followed_by == ("BN",)  # the ReLU comes after the addition
    assert sum(b.params for b in boxes) == total(model)


@pytest.mark.parametrize("block, size, layers", [
    (BasicBlock(64, 64), (1, 64, 8, 8), 2),
    (Bottleneck(256, 64), (1, 256, 8, 8), 3),
    # torchvision adds in place (`out += identity`): found by the tensor's version counter
    (torchvision.models.resnet.BasicBlock(16, 16), (1, 16, 8, 8), 2),
])
def test_a_block_on_its_own_is_drawn_layer_by_layer(block, size, layers):
    boxes = architecture_boxes(block, size)
    assert [b.op.startswith("Conv") for b in boxes] == [True] * layers + [False]
    assert boxes[-1].op == "Add" and boxes[-1].shortcut == "identity"
    assert boxes[-1].followed_by == ("ReLU",) and boxes[-2].followed_by == ("BN",)
    assert sum(b.params for b in boxes) == total(block)


def test_cifar_resnets_zero_pad_where_the_stage_changes_and_plain_twins_have_none():
    boxes = architecture_boxes(models.cifar_resnet(20), (1, 1, 28, 28))
    shortcuts = {b.name: b.shortcut for b in boxes if b.op == "BasicBlock"}
    assert shortcuts["layer1.0"] == "identity"
    assert shortcuts["layer2.0"] == shortcuts["layer3.0"] == "zero-pad"
    assert sum(s == "identity" for s in shortcuts.values()) == 7
    plain = architecture_boxes(models.cifar_resnet(20, shortcut=None), (1, 1, 28, 28))
    assert all(b.shortcut is None for b in plain)
    deeper = architecture_boxes(models.cifar_resnet(32), (1, 1, 28, 28))
    assert len(deeper) - len(boxes) == 6  # n = 5 instead of 3 blocks in each of 3 stages


def test_deep_mlp_identity_shortcuts_skip_the_layers_that_change_width():
    boxes = architecture_boxes(models.deep_mlp(6, residual=True), (1, 1, 28, 28))
    assert [b.kind for b in boxes] == ["Linear, 256"] * 5 + ["Linear, 10"]
    assert [b.shortcut for b in boxes] == [None] + ["identity"] * 4 + [None]
    assert boxes[1].followed_by == ("Sigmoid",)
    plain = architecture_boxes(models.deep_mlp(6), (1, 1, 28, 28))
    assert all(b.shortcut is None for b in plain)


def test_figure_is_drawn_from_the_same_boxes_and_side_by_side_panels():
    model = models.cifar_resnet(8)
    fig = architecture(model, (1, 1, 28, 28), title="ResNet-8")
    assert fig.boxes == architecture_boxes(model, (1, 1, 28, 28))
    plt.close(fig)
    pair = {"two 3x3": nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                                     nn.Conv2d(8, 8, 3, padding=1), nn.ReLU()),
            "one 5x5": nn.Sequential(nn.Conv2d(8, 8, 5, padding=2), nn.ReLU())}
    fig = architecture(pair, (1, 8, 16, 16))
    assert [len(v) for v in fig.boxes.values()] == [2, 1]
    assert fig.boxes["one 5x5"][0].params == 8 * 8 * 25 + 8
    plt.close(fig)


def test_resnet50_png_stays_small():
    fig = architecture(resnet50(), (1, 3, 224, 224))
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=72)
    plt.close(fig)
    assert png.getbuffer().nbytes < 80 * 1024
    assert fig.get_size_inches()[0] <= 12.5


def test_mistakes_get_a_sentence_and_the_fix():
    with pytest.raises(TypeError, match=r"draws a torch.nn.Module.*Pass the network itself"):
        architecture("resnet50", (1, 3, 224, 224))
    with pytest.raises(ValueError, match=r"got \(3, 224, 224\)\. Include the batch dimension, "
                                         r"e\.g\. \(1, 3, 224, 224\)"):
        architecture_boxes(resnet50(), (3, 224, 224))
    with pytest.raises(ValueError, match=r"cannot run on an input of size \(1, 1, 224, 224\).*"
                                         r"expects 3 input channels"):
        architecture_boxes(resnet50(), (1, 1, 224, 224))
    with pytest.raises(ValueError, match=r"positive ints such as \(1, 3, 224, 224\), but got"):
        architecture_boxes(resnet50(), (1, 3, 224.0, 224))
    with pytest.raises(ValueError, match=r"does not have: \['layer9.0'\].*e\.g\. expand='layer1.0'"):
        architecture_boxes(resnet50(), (1, 3, 224, 224), expand="layer9.0")
