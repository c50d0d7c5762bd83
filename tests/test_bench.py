"""The benchmark's measuring pieces, checked against facts they must reproduce."""

import pytest
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
    for label, (build, size, _batch) in bench.training_nets().items():
        out = build().eval()(torch.zeros(2, 1, size, size))
        assert out.shape == (2, 10), label


def test_course_models_match_torchvision_in_shape_for_the_speed_comparison():
    # Speed ratios are only fair between identical architectures.
    import torchvision
    from deepnets import count_params, models
    for name in ("alexnet", "resnet50"):
        assert count_params(getattr(models, name)()) == count_params(getattr(torchvision.models, name)())


def test_matmul_peak_is_2n_cubed_over_the_best_time(monkeypatch):
    # An n x n product is n^3 multiply-adds (2 n^3 FLOPs); the peak takes the fastest repeat.
    times = iter([0.004, 0.002, 0.003])
    monkeypatch.setattr(bench, "_time_once", lambda fn: next(times))
    assert bench.matmul_gflops(n=100, repeats=3) == pytest.approx(2 * 100 ** 3 / 0.002 / 1e9)


def test_bench_times_notebook_04s_net_from_its_one_constructor():
    # The notebook and the benchmark build the same net from one place, so they cannot drift.
    from deepnets.models.resnet import fashion_resnet
    build, size, batch = bench.training_nets()["resnet10 (04)"]
    assert build is fashion_resnet and (size, batch) == (28, 256)


def test_flop_kernel_share_tells_matmul_bound_from_memory_bound_steps():
    # A wide linear layer spends its step in matmuls; a lone ReLU spends none there.
    x, y = torch.randn(256, 1024), torch.randint(0, 10, (256,))
    wide = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    assert bench.flop_kernel_share(bench._train_step(wide, x, y)) > 0.5
    scale = nn.Parameter(torch.ones(1024))
    relu_only = nn.Sequential(nn.ReLU())
    relu_only.register_parameter("scale", scale)

    def step():
        (relu_only(x) * scale).sum().backward()
    assert bench.flop_kernel_share(step) == 0


def test_bars_compare_each_figure_with_its_target():
    nets = {f"{label.split(' ')[0]}_{fmt}_gflops": 60.0 for label in bench.training_nets() for fmt in ("nchw", "cl")}
    figures = {"figures": {"data_28_ratio": 49.9, "data_224_ratio": 4.0, "alexnet_ratio": 0.95,
                           "resnet50_ratio": 0.94, "matmul_gflops": 100.0, **nets,
                           "resnet10_nchw_gflops": 40.0, "resnet10_cl_gflops": 45.0, "smoke_all_notebooks_seconds": 180.0}}
    met = {bar.split(":")[0]: ok for bar, _, ok in bench.bars(figures)}
    assert met["data at 28x28"] is False          # 49.9 < 50
    assert met["data resized to 224, batch 128"] is True  # exactly 4x meets ">= 4x"
    assert met["alexnet"] is True and met["resnet50"] is False
    assert met["lenet5 (00)"] is True             # 60 of 100 GFLOP/s
    assert met["resnet10 (04)"] is False     # the better layout, 45 of 100 GFLOP/s
    assert met["all notebooks, smoke profile"] is False  # 180 s is not under 180 s
