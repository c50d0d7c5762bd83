"""The layer table against torchvision's models and hand-counted facts."""

import torch.nn as nn
import torchvision

from deepnets import count_params, layer_table


def test_alexnet_table_against_torchvision_and_the_formula():
    model = torchvision.models.alexnet()
    table = layer_table(model, (1, 3, 224, 224))
    assert table.total_params == 61_100_840  # torchvision's documented count
    conv1 = next(r for r in table.rows if r["name"] == "features.0")
    assert conv1["output_shape"] == (64, 55, 55)
    # a second computation: 2 FLOPs per multiply-add, one MAC per weight per output pixel
    assert conv1["flops"] == 2 * 64 * 3 * 11 * 11 * 55 * 55
    fc6 = next(r for r in table.rows if r["name"] == "classifier.1")
    assert fc6["params"] == 9216 * 4096 + 4096 and fc6["flops"] == 2 * 9216 * 4096
    assert sum(r["params"] for r in table.rows) == table.total_params
    assert "total" in str(table) and "61,100,840" in str(table)


def test_depth_groups_layers():
    model = torchvision.models.alexnet()
    rows = layer_table(model, (1, 3, 224, 224), depth=1).rows
    assert [r["name"] for r in rows] == ["features", "avgpool", "classifier"]
    assert rows[0]["output_shape"] == (256, 6, 6)


def test_count_params_trainable_only():
    model = nn.Sequential(nn.Linear(10, 5), nn.Linear(5, 2))
    model[0].weight.requires_grad_(False)
    assert count_params(model) == 55 + 12
    assert count_params(model, trainable_only=True) == 5 + 12
