"""Checks for notebook 01 (AlexNet): conv and pool arithmetic, the two-GPU parameter
counts, LRN written out and its smallest shrink factor, and the switches of the ReLU/tanh
experiment under the paper's initialisation."""

from __future__ import annotations

import torch
from torch import nn

from deepnets.models import AlexNet, alexnet_paper, alexnet_small, local_response_norm

from ._core import LearnerError, as_float, as_int, check, close, conv_formula, count, run, say

__all__ = ["check_conv1_output", "check_alexnet_sizes", "check_fc6_inputs", "check_conv_params",
           "check_pool_sizes", "check_lrn", "check_lrn_factor", "check_paper_init_pair"]

CONV_NAMES = ("conv1", "conv2", "conv3", "conv4", "conv5")


def _first(v):
    return v[0] if isinstance(v, tuple) else v


def _steps(model: AlexNet) -> list[tuple[str, nn.Module]]:
    """conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5 with their modules."""
    steps, c = [], 0
    for m in model.features:
        if isinstance(m, nn.Conv2d):
            c += 1
            steps.append((f"conv{c}", m))
        elif isinstance(m, nn.MaxPool2d):
            steps.append((f"pool{c}", m))   # named after the conv it follows: pool1, pool2, pool5
    return steps


@check("compute", "01", "give the side of conv1's output for the paper's 227x227 input (11x11, stride 4, no padding).")
def check_conv1_output(answer) -> bool:
    conv1 = alexnet_paper().features[0]
    k, s, p = _first(conv1.kernel_size), _first(conv1.stride), _first(conv1.padding)
    side = (227 + 2 * p - k) // s + 1
    mine = as_float(answer, "a side")
    if mine == side:
        return say(True, f"{conv_formula(227, k, s, p)}: a whole number, as it must be for the "
                         f"windows to tile the image; {side}x{side}x{conv1.out_channels}, as in Figure 2.")
    from_224 = (224 + 2 * p - k) / s + 1
    if close(mine, from_224, 1e-2) or mine == int(from_224):
        return say(False, f"{mine} is what 224 gives: (224 - {k}) / {s} + 1 = {from_224}, not a whole "
                          f"number. The arithmetic needs 227: {conv_formula(227, k, s, p)}.")
    if mine in (side - 1, side + 1):
        return say(False, f"off by one: {conv_formula(227, k, s, p)}; the +1 counts the first window position.")
    if mine == (227 + 2 * 2 - k) // s + 1:
        return say(False, f"that is with padding 2 (torchvision's conv1); the paper's conv1 has none: "
                          f"{conv_formula(227, k, s, p)}.")
    return say(False, f"{conv_formula(227, k, s, p)}, not {mine}.")


@check("compute", "01", "give the sides after conv1, pool1, conv2, pool2, conv3, conv4, conv5, pool5 "
                        "for a 227x227 input, as a list of eight ints.")
def check_alexnet_sizes(answer) -> bool:
    model = alexnet_paper()
    steps = _steps(model)
    sides = [s for _, s in model.sizes(227)]
    answer = [as_int(a, "a side") for a in answer]
    if len(answer) != len(sides):
        return say(False, f"give {len(sides)} sides, one after each of "
                          f"{', '.join(n for n, _ in steps)}; you gave {len(answer)}.")
    n = 227
    for (name, m), side, mine in zip(steps, sides, answer):
        if mine != side:
            k, s, p = (_first(v) for v in (m.kernel_size, m.stride, m.padding))
            hint = ""
            if name.startswith("pool") and mine == n // 2:
                hint = " The pool is 3x3 with stride 2 (overlapping), not 2x2: it does not simply halve."
            elif name.startswith("conv") and mine < n and p > 0:
                hint = f" {name} is padded by {p}, which keeps the side."
            return say(False, f"after {name} the side is {side}, not {mine}: {conv_formula(n, k, s, p)}.{hint}")
        n = side
    return say(True, "227 -> " + " -> ".join(f"{side} ({name})" for (name, _), side in zip(steps, sides))
               + ": conv3-5 keep 13 with padding 1, and each 3x3/2 pool takes (n - 3) // 2 + 1.")


@check("compute", "01", "give the number of inputs of fc6 in the paper's net (an int).")
def check_fc6_inputs(answer) -> bool:
    model = alexnet_paper()
    fc6 = model.classifier[0]
    channels = model.widths[-1]
    side = model.feature_size
    mine = as_int(answer, "an input count")
    if mine == fc6.in_features:
        return say(True, f"conv5's pooled map, {side}x{side}x{channels}, flattened: "
                         f"{side} * {side} * {channels} = {fc6.in_features:,}.")
    for wrong_side in (13, 7, 5):
        if mine == wrong_side * wrong_side * channels:
            return say(False, f"{wrong_side}x{wrong_side}x{channels} = {mine:,}; fc6 sees the map after "
                              f"pool5, which is {side}x{side}: {side} * {side} * {channels} = {fc6.in_features:,}.")
    if mine == side * side * model.widths[-1] // 2:
        return say(False, "that is one GPU's half; fc6 connects to both GPUs' maps.")
    return say(False, f"fc6 takes pool5's {side}x{side}x{channels} map flattened: {fc6.in_features:,}, not {mine:,}.")


@check("compute", "01", "give the parameters of conv1..conv5 in the paper's two-GPU net as a dict "
                        "{'conv1': ..., ..., 'conv5': ...}.")
def check_conv_params(answer) -> bool:
    if not isinstance(answer, dict):
        raise LearnerError(f"give a dict with keys {list(CONV_NAMES)}; you gave {type(answer).__name__}.")
    convs = [m for m in alexnet_paper().features if isinstance(m, nn.Conv2d)]
    problems = []
    for name, m in zip(CONV_NAMES, convs):
        if name not in answer:
            problems.append(f"{name} is missing")
            continue
        mine, right = as_int(answer[name], "a count"), count(m)
        k, depth = m.kernel_size[0], m.in_channels // m.groups
        formula = f"({k}*{k}*{depth} + 1) * {m.out_channels} = {right:,}"
        if mine == right:
            continue
        ungrouped = (k * k * m.in_channels + 1) * m.out_channels
        if m.groups > 1 and mine == ungrouped:
            problems.append(f"{name}: {mine:,} connects every input channel; the net is split over "
                            f"two GPUs (groups={m.groups}), so each kernel sees {depth} of the "
                            f"{m.in_channels} channels: {formula}")
        elif mine == right - m.out_channels:
            problems.append(f"{name}: you left out the {m.out_channels} biases: {formula}")
        else:
            problems.append(f"{name}: {formula}, not {mine:,}")
    if problems:
        return say(False, "; ".join(problems) + ".")
    grouped = [n for n, m in zip(CONV_NAMES, convs) if m.groups > 1]
    return say(True, f"{sum(count(m) for m in convs):,} conv parameters; {', '.join(grouped)} see only "
                     "their own GPU's half of the input maps (groups=2), conv3 sees all of them.")


@check("compute", "01", "give the side after a 3x3/2 pool and after a 2x2/2 pool of conv1's 55x55 map, as a pair.")
def check_pool_sizes(answer) -> bool:
    results = {}
    for window in (3, 2):
        pool = nn.MaxPool2d(window, 2)
        results[window] = pool(torch.zeros(1, 1, 55, 55)).shape[-1]
    try:
        overlap, plain = (as_int(a, "a side") for a in answer)
    except (TypeError, ValueError):
        raise LearnerError(f"give a pair (after 3x3/2, after 2x2/2); you gave {answer!r}.") from None
    text = (f"3x3/2: {conv_formula(55, 3, 2, 0)}; 2x2/2: (55 - 2) / 2 + 1 = 27.5, rounded down "
            f"to {results[2]}")
    if (overlap, plain) == (results[3], results[2]):
        return say(True, f"{text}. Equal sizes, so the paper's comparison of the two (section 3.4) "
                         "changes only the overlap.")
    if plain == 28:
        return say(False, f"a pool rounds down (a window must fit): {text}.")
    return say(False, f"{text}; you gave ({overlap}, {plain}).")


@check("build", "01", "write lrn(a, n=5, alpha=1e-4, beta=0.75, k=2.0) for a [B, C, H, W] tensor by the "
                      "paper's formula (section 3.3) and pass the function.")
def check_lrn(answer) -> bool:
    g = torch.Generator().manual_seed(0)
    a = torch.relu(torch.randn(2, 12, 5, 5, generator=g)) * 30  # large enough for neighbours to matter
    reference = local_response_norm()(a)
    mine = run(answer, a.clone())
    if not isinstance(mine, torch.Tensor) or mine.shape != a.shape:
        return say(False, f"return a tensor shaped like the input, {tuple(a.shape)}; got "
                          f"{tuple(mine.shape) if isinstance(mine, torch.Tensor) else type(mine).__name__}.")
    if torch.allclose(mine, reference, rtol=1e-4, atol=1e-6):
        return say(True, "b_i = a_i / (k + alpha * sum of a_j^2 over the n channels around i)^beta, "
                         "as deepnets' local_response_norm (which passes alpha * n to PyTorch's LRN, "
                         "since PyTorch averages the squares).")
    pytorch_style = nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(a)
    if torch.allclose(mine, pytorch_style, rtol=1e-4, atol=1e-6):
        return say(False, "you divided alpha by n (PyTorch's and Caffe's convention, an average of the "
                          "squares); the paper's formula sums the n squares with alpha = 1e-4.")
    no_beta = a / (2.0 + 1e-4 * _window_sum(a * a, 5))
    if torch.allclose(mine, no_beta, rtol=1e-4, atol=1e-6):
        return say(False, "the denominator is raised to the power beta = 0.75.")
    spatial = a / (2.0 + 1e-4 * torch.nn.functional.avg_pool2d(a * a, 5, 1, 2, count_include_pad=True) * 25) ** 0.75
    if torch.allclose(mine, spatial, rtol=1e-4, atol=1e-6):
        return say(False, "you summed over neighbouring pixels; the sum runs over n adjacent channels "
                          "(kernel maps) at the same pixel.")
    return say(False, f"your output differs from the paper's formula by up to "
                      f"{(mine - reference).abs().max().item():.3g}; the sum runs over channels "
                      "max(0, i - n/2) .. min(C - 1, i + n/2), n/2 rounded down.")


def _window_sum(sq: torch.Tensor, n: int) -> torch.Tensor:
    """Sum of sq over the n channels centred on each channel (zeros beyond the edges)."""
    padded = torch.nn.functional.pad(sq, (0, 0, 0, 0, n // 2, (n - 1) // 2))
    return torch.stack([padded[:, i:i + sq.shape[1]] for i in range(n)]).sum(0)


@check("compute", "01", "give the smallest factor by which the paper's LRN divides an activation (a number).")
def check_lrn_factor(answer) -> bool:
    lrn = local_response_norm()
    factor = lrn.k ** lrn.beta
    mine = as_float(answer, "a factor")
    if close(mine, factor, 5e-3):
        return say(True, f"with no activity around, the denominator is k^beta = {lrn.k}^{lrn.beta} = "
                         f"{factor:.3f}: every value shrinks at least that much.")
    if close(mine, 1 / factor, 5e-3):
        return say(False, f"{mine:.3f} is the multiplier 1/{factor:.3f}; the question asks for the divisor, k^beta.")
    if close(mine, lrn.k, 1e-6):
        return say(False, f"k is raised to beta: {lrn.k}^{lrn.beta} = {factor:.3f}.")
    return say(False, f"with the sum of squares at 0 the denominator is k^beta = {factor:.3f}, not {mine}.")


@check("experiment", "01", "build the pair {'relu': ..., 'tanh': ...} of alexnet_small nets with the "
                           "paper's initialisation and pass it before training.")
def check_paper_init_pair(answer) -> bool:
    if not isinstance(answer, dict) or set(answer) != {"relu", "tanh"}:
        raise LearnerError("pass a dict {'relu': model, 'tanh': model}.")
    reference = alexnet_small()
    problems = []
    for name, want in (("relu", nn.ReLU), ("tanh", nn.Tanh)):
        model = answer[name]
        if not isinstance(model, AlexNet):
            problems.append(f"'{name}' is not an AlexNet: build it with alexnet_small(...)")
            continue
        acts = {type(m) for m in model.modules() if isinstance(m, (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU))}
        if acts != {want}:
            problems.append(f"the '{name}' net uses {sorted(a.__name__ for a in acts)}: pass activation='{name}'")
        if count(model) != count(reference):
            problems.append(f"the '{name}' net has {count(model):,} parameters, the bench net "
                            f"{count(reference):,}: change only the activation and the init")
        layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        stds = [m.weight.detach().std().item() for m in layers]
        if not all(0.008 < s < 0.012 for s in stds):
            problems.append(f"the '{name}' net's weights have standard deviations {min(stds):.3f} to "
                            f"{max(stds):.3f}, not the paper's 0.01: pass init='paper' (and check before training)")
        elif not all(m.bias.detach().abs().max().item() in (0.0, 1.0) for m in layers):
            problems.append(f"the '{name}' net's biases are not the paper's 0s and 1s: pass init='paper'")
    if problems:
        return say(False, "; ".join(problems) + ".")
    return say(True, "both nets have the paper's N(0, 0.01) weights and biases of 1 in conv2, conv4, "
                     "conv5 and the fc layers; only the activation differs. Train both with the "
                     "notebook's threshold protocol and compare the epochs to the threshold.")
