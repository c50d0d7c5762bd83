"""The benchmark's measuring pieces, checked against facts they must reproduce."""

import torch
import torch.nn as nn

from deepnets import bench


def test_train_flops_counts_forward_and_backward():
    # A linear layer: forward x@W is 2*B*I*O FLOPs; backward needs dX and dW, two more matmuls.
    b, i, o = 32, 64, 10
    model = nn.Linear(i, o, bias=False)
    flops = bench.train_flops(model, torch.randn(b, i, requires_grad=True), torch.randint(0, o, (b,)))
    assert flops == 3 * 2 * b * i * o


def test_training_nets_build_and_run_on_their_input_size():
    for label, (build, size) in bench.training_nets().items():
        out = build().eval()(torch.zeros(2, 1, size, size))
        assert out.shape == (2, 10), label


def test_course_models_match_torchvision_in_shape_for_the_speed_comparison():
    # Speed ratios are only fair between identical architectures.
    import torchvision
    from deepnets import count_params, models
    for name in ("alexnet", "resnet50"):
        assert count_params(getattr(models, name)()) == count_params(getattr(torchvision.models, name)())


def test_matmul_peak_is_positive():
    assert bench.matmul_gflops(n=256, repeats=2) > 0
