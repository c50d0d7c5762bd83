"""The four-layer net of the ReLU-vs-tanh experiment, against the convolution arithmetic
written out by hand and against the experiment's requirements (no regularisation)."""

import pytest
import torch
import torch.nn as nn

from deepnets.models import convnet4
from conftest import losses_on_one_batch


def side_after(n: int) -> int:
    # conv 5x5 with padding 2 keeps n; a 3x3 max-pool with stride 2 gives floor((n - 3) / 2) + 1
    return (n - 3) // 2 + 1


def test_four_layers_with_weights_and_the_shapes_of_the_arithmetic():
    model = convnet4("relu")
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(weighted) == 4
    sides = [28]
    for _ in range(3):
        sides.append(side_after(sides[-1]))
    assert sides == [28, 13, 6, 2]
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in model.features if isinstance(m, nn.MaxPool2d)]
    out = model(torch.randn(2, 1, 28, 28))
    for h in hooks:
        h.remove()
    assert shapes == [(32, 13, 13), (32, 6, 6), (64, 2, 2)]
    assert out.shape == (2, 10) and model.classifier.in_features == 64 * 2 * 2


def test_parameter_count_by_hand():
    # (5 * 5 * c_in + 1) * c_out per conv, (n_in + 1) * n_out for the linear layer
    expected = (25 * 1 + 1) * 32 + (25 * 32 + 1) * 32 + (25 * 32 + 1) * 64 + (256 + 1) * 10
    assert sum(p.numel() for p in convnet4().parameters()) == expected == 80_298


def test_the_activation_is_the_only_switch_and_nothing_regularises():
    relu, tanh = convnet4("relu"), convnet4("tanh")
    assert sum(isinstance(m, nn.ReLU) for m in relu.modules()) == 3
    assert sum(isinstance(m, nn.Tanh) for m in tanh.modules()) == 3
    assert not any(isinstance(m, nn.ReLU) for m in tanh.modules())
    assert [tuple(p.shape) for p in relu.parameters()] == [tuple(p.shape) for p in tanh.parameters()]
    assert not any(isinstance(m, (nn.Dropout, nn.BatchNorm2d, nn.LocalResponseNorm))
                   for m in relu.modules())


def test_init_std_draws_the_papers_gaussian():
    torch.manual_seed(0)
    model = convnet4("tanh", widths=(64, 64, 64), init_std=0.01)
    conv2 = model.features[3]
    assert abs(float(conv2.weight.detach().std()) - 0.01) < 5e-4
    assert all(float(m.bias.detach().abs().max()) == 0.0 for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))


@pytest.mark.parametrize("kwargs, match", [
    (dict(widths=(32, 32)), "three positive ints"),
    (dict(init_std=0.0), "init_std"),
    (dict(image_size=14), "too small"),
    (dict(activation="swish"), "activation must be one of"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        convnet4(**kwargs)


def test_learns_a_batch_with_sgd_and_momentum():
    torch.manual_seed(0)
    model = convnet4("tanh")
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = losses_on_one_batch(model, x, y, opt, steps=60)
    assert losses[-1] < 0.1 * losses[0]
