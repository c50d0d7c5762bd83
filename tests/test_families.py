"""The families side by side: torchvision's metadata read right, and every count the notebook
shows checked against a second source (torchvision's own figures, or the layers written out)."""

import time

import pytest
import torch
from torch import nn

from deepnets import count_params, layer_table
from deepnets.families import (FAMILIES, NETS, activation_bytes, build, family_of, forward_flops,
                               imagenet_meta, latency, stage_costs)


def meta_model(name):
    with torch.device("meta"):   # shapes only: nothing allocated, nothing initialised
        return build(name)


def test_metadata_matches_torchvision_published_figures():
    # torchvision's model table (docs, "Classification"): ResNet-50 IMAGENET1K_V1 76.13 / 92.862,
    # 25.6M parameters, 4.09 GFLOPS; AlexNet 56.522 / 79.066.
    r50 = imagenet_meta("resnet50")
    assert (r50.top1, r50.top5, r50.num_params, r50.gmacs) == (76.13, 92.862, 25_557_032, 4.089)
    assert r50.weights == "ResNet50_Weights.IMAGENET1K_V1"
    assert imagenet_meta("alexnet").top1 == 56.522
    assert imagenet_meta("resnet50", "IMAGENET1K_V2").top1 == 80.858
    # The V1 weights are evaluated on one 224 crop of the image resized to 256, V2 on 232.
    assert (r50.resize, r50.crop) == (256, 224)
    assert imagenet_meta("resnet50", "IMAGENET1K_V2").resize == 232


def test_families_cover_the_course_nets_once():
    assert sorted(NETS) == sorted(["alexnet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
                                  + [f"vgg{d}{bn}" for d in (11, 13, 16, 19) for bn in ("", "_bn")])
    assert [family_of(n) for n in ("alexnet", "vgg19_bn", "resnet152")] == list(FAMILIES)


@pytest.mark.parametrize("name", NETS)
def test_parameters_equal_torchvision_metadata(name):
    assert count_params(meta_model(name)) == imagenet_meta(name).num_params


@pytest.mark.parametrize("name", NETS)
def test_counted_macs_agree_with_torchvision_ops(name):
    # torchvision's `_ops` ("GFLOPS" in its docs) counts multiply-adds: ResNet-50's 4.089 is
    # 2 x fewer than FlopCounterMode's FLOPs, which count 2 per multiply-add.
    gmacs = forward_flops(meta_model(name)) / 2e9
    assert gmacs == pytest.approx(imagenet_meta(name).gmacs, rel=0.02)


def test_activation_bytes_of_alexnet_written_out():
    # torchvision's AlexNet at 224, each module's output (C, H, W); the in-place ReLUs and
    # eval-mode dropouts return their input and add nothing.
    outputs = [(64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13), (384, 13, 13), (256, 13, 13),
               (256, 13, 13), (256, 6, 6), (256, 6, 6), (4096,), (4096,), (1000,)]
    expected = 4 * sum(torch.Size(s).numel() for s in outputs)
    assert activation_bytes(meta_model("alexnet")) == expected


def test_activation_bytes_counts_an_out_of_place_relu():
    def net(inplace):
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(inplace=inplace)).eval()
    assert activation_bytes(net(True), 10) == 4 * 8 * 10 * 10
    assert activation_bytes(net(False), 10) == 2 * 4 * 8 * 10 * 10


class Sleeper(nn.Module):
    """Sleeps 20 ms per call and remembers the mode it was called in."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append((self.training, torch.is_inference_mode_enabled()))
        time.sleep(0.02)
        return x


def test_latency_is_the_median_in_eval_and_inference_mode():
    net = Sleeper().train()
    result = latency(net, batch=2, size=4, repeats=3)
    assert result.repeats == 3 and len(net.modes) == 4          # one untimed warm-up pass
    assert 20 <= result.low <= result.ms <= result.high < 60
    assert set(net.modes) == {(False, True)}
    assert 20 <= result.ms < 60


def test_latency_stops_at_its_time_budget_after_one_pass_at_least():
    assert latency(Sleeper(), batch=1, size=4, repeats=10, max_seconds=0.05).repeats == 3  # 20, 40, 60 ms
    assert latency(Sleeper(), batch=1, size=4, repeats=10, max_seconds=0.0).repeats == 1


@pytest.mark.parametrize("name", ["alexnet", "vgg16", "resnet50"])
def test_stage_costs_add_up_to_the_whole_net(name):
    model = meta_model(name)
    costs = stage_costs(model)
    table = layer_table(model)
    assert sum(c["params"] for c in costs.values()) == count_params(model)
    assert sum(c["flops"] for c in costs.values()) == table.total_flops


def test_stage_names_and_the_vgg16_fc_layer():
    assert list(stage_costs(meta_model("alexnet"))) == ["conv1", "conv2", "conv3-5", "fc6", "fc7", "fc8"]
    assert list(stage_costs(meta_model("resnet50"))) == ["stem", "layer1", "layer2", "layer3", "layer4", "fc"]
    vgg = stage_costs(meta_model("vgg16"))
    assert list(vgg) == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "fc3"]  # notebook 02's names
    assert vgg["fc1"]["params"] == (7 * 7 * 512 + 1) * 4096   # VGG16's first fc layer
    # conv1_1 (3 -> 64) and conv1_2 (64 -> 64) at 224x224, 2 FLOPs per multiply-add
    assert vgg["conv1"]["flops"] == 2 * 224 * 224 * 9 * (3 * 64 + 64 * 64)


def test_mistakes_get_a_message():
    with pytest.raises(ValueError, match="Unknown net 'vgg17'"):
        build("vgg17")
    with pytest.raises(ValueError, match="no 'IMAGENET1K_V2' weights for vgg16"):
        imagenet_meta("vgg16", "IMAGENET1K_V2")
    with pytest.raises(ValueError, match="at least 1"):
        latency(nn.Identity(), batch=0)
