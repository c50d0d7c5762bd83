"""Checks for notebook 03 (the vanishing gradient): the 0.25**n bound and where it
underflows, activation slopes, initialisation scales, batch norm by hand, in training and
evaluation, its running statistics, and the switches of a remedy experiment."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from deepnets.models import DeepMLP, deep_mlp

from ._core import LearnerError, as_float, as_int, check, close, run, say

__all__ = ["check_sigmoid_bound", "check_underflow_depth", "check_max_slopes", "check_init_std",
           "check_bn_by_hand", "check_bn_forward", "check_bn_running_update", "check_bn_sigmoid_net"]

#: the batch of notebook 03's by-hand exercise: one unit, four images, gamma 2, beta 1, eps 0
BN_EXERCISE = dict(x=[1.0, 2.0, 3.0, 4.0], gamma=2.0, beta=1.0)


def _max_slope(f) -> float:
    z = torch.linspace(-6, 6, 12001, dtype=torch.float64, requires_grad=True)
    slope, = torch.autograd.grad(f(z).sum(), z)
    return slope.max().item()


@check("compute", "03", "give the largest possible factor sigmoid's slopes contribute over 10 layers (a number).")
def check_sigmoid_bound(answer, layers: int = 10) -> bool:
    s = _max_slope(torch.sigmoid)
    bound = s ** layers
    mine = as_float(answer, "a bound")
    if close(mine, bound):
        return say(True, f"sigma'(z) = sigma(z)(1 - sigma(z)) is at most {s:g} (at z = 0); one factor per "
                         f"layer: {s:g}^{layers} = {bound:.3g}.")
    if close(mine, 0.5 ** layers):
        return say(False, f"0.5 is sigma(0) itself; the factor is the slope sigma(0)(1 - sigma(0)) = {s:g}: "
                          f"{s:g}^{layers} = {bound:.3g}.")
    if close(mine, s * layers):
        return say(False, f"the factors multiply, they do not add: {s:g}^{layers} = {bound:.3g}, not {s:g} x {layers}.")
    for n in (layers - 1, layers + 1):
        if close(mine, s ** n):
            return say(False, f"that is {s:g}^{n}; one factor per layer, {layers} layers: {s:g}^{layers} = {bound:.3g}.")
    return say(False, f"{s:g}^{layers} = {bound:.3g}, not {mine:.3g}.")


@check("compute", "03", "give the smallest depth n at which 0.25**n, computed in float32, is exactly 0 (an int).")
def check_underflow_depth(answer) -> bool:
    value, n = torch.tensor(1.0, dtype=torch.float32), 0
    while value > 0:                      # one sigmoid layer's best factor at a time
        value, n = value * 0.25, n + 1
    info = torch.finfo(torch.float32)
    smallest = info.smallest_normal * info.eps   # the smallest subnormal, 2^-149
    normal_end = math.floor(math.log(info.tiny) / math.log(0.25)) + 1
    mine = as_int(answer, "a depth")
    if mine == n:
        return say(True, f"0.25^{n - 1} = 2^-{2 * (n - 1)} is still a (subnormal) float32, {0.25 ** (n - 1):.3g}; "
                         f"0.25^{n} = 2^-{2 * n} is half the smallest one, {smallest:.3g}, and rounds (to even) to 0. "
                         "A gradient that small is not 'zero' in any useful sense long before that.")
    if mine in (normal_end - 1, normal_end):
        return say(False, f"below 2^-126 = {info.tiny:.3g} (reached at n = {normal_end - 1}) numbers are no longer "
                          f"normal, but float32 keeps subnormal ones down to 2^-149 = {smallest:.3g}; "
                          f"0.25^n rounds to 0 first at n = {n}.")
    if mine == math.ceil(math.log(info.eps) / math.log(0.25)):
        return say(False, f"that uses eps ({info.eps:.3g}, the spacing of numbers near 1), not the smallest "
                          f"float32; 0.25^n reaches 0 at n = {n}.")
    if mine in (n - 1, n + 1):
        return say(False, f"off by one: 0.25^{n - 1} is still {0.25 ** (n - 1):.3g} in float32; 0.25^{n} is 0.")
    return say(False, f"multiply by 0.25 in float32 until it is 0: that takes n = {n}.")


@check("compute", "03", "give the largest slope of sigmoid, tanh and ReLU as a dict {'sigmoid': ..., 'tanh': ..., 'relu': ...}.")
def check_max_slopes(answer) -> bool:
    if not isinstance(answer, dict):
        raise LearnerError("give a dict {'sigmoid': ..., 'tanh': ..., 'relu': ...}.")
    slopes = {"sigmoid": _max_slope(torch.sigmoid), "tanh": _max_slope(torch.tanh), "relu": _max_slope(torch.relu)}
    why = {"sigmoid": "sigma(z)(1 - sigma(z)) peaks at z = 0, where sigma = 1/2",
           "tanh": "1 - tanh(z)^2 peaks at z = 0",
           "relu": "the slope is 1 for every z > 0"}
    wrong = [f"{name}: {slopes[name]:g}, not {answer.get(name)!r} ({why[name]})"
             for name in slopes if name not in answer or not close(as_float(answer[name], "a slope"), slopes[name])]
    if wrong:
        return say(False, "; ".join(wrong) + ".")
    return say(True, "sigmoid 0.25, tanh 1, ReLU 1: only the sigmoid shrinks the gradient even at its "
                     "best point; tanh and sigmoid also flatten on both sides, ReLU only for z < 0.")


@check("compute", "03", "give the weight standard deviations of a 256 -> 256 Linear layer under He "
                        "(normal, fan_in) and Xavier (uniform) init, as {'he': ..., 'xavier': ...}.")
def check_init_std(answer, fan_in: int = 256, fan_out: int = 256) -> bool:
    if not isinstance(answer, dict) or not {"he", "xavier"} <= set(answer):
        raise LearnerError("give a dict {'he': ..., 'xavier': ...}.")
    he = nn.init.calculate_gain("relu") / math.sqrt(fan_in)
    xavier = nn.init.calculate_gain("linear") * math.sqrt(2.0 / (fan_in + fan_out))
    problems = []
    mine_he, mine_x = as_float(answer["he"], "a std"), as_float(answer["xavier"], "a std")
    if not close(mine_he, he, 5e-3):
        if close(mine_he, he ** 2, 5e-3):
            problems.append(f"he: {mine_he:.4g} is the variance 2/fan_in; the std is its square root, {he:.4f}")
        elif close(mine_he, math.sqrt(2 / (fan_in + fan_out)) * math.sqrt(2), 5e-3) and fan_in != fan_out:
            problems.append(f"he: He's normal init uses fan_in only: sqrt(2/{fan_in}) = {he:.4f}")
        else:
            problems.append(f"he: sqrt(2 / fan_in) = sqrt(2/{fan_in}) = {he:.4f}, not {mine_he:.4g}")
    if not close(mine_x, xavier, 5e-3):
        bound = math.sqrt(6 / (fan_in + fan_out))
        if close(mine_x, bound, 5e-3):
            problems.append(f"xavier: {bound:.4f} is the bound a of U(-a, a); its std is a / sqrt(3) = {xavier:.4f}")
        elif close(mine_x, xavier ** 2, 5e-3):
            problems.append(f"xavier: that is the variance 2/(fan_in + fan_out); the std is {xavier:.4f}")
        else:
            problems.append(f"xavier: sqrt(2 / (fan_in + fan_out)) = {xavier:.4f}, not {mine_x:.4g}")
    if problems:
        return say(False, "; ".join(problems) + ".")
    return say(True, f"He: sqrt(2/{fan_in}) = {he:.4f} (the ReLU halves the variance, the 2 restores it); "
                     f"Xavier: sqrt(2/({fan_in} + {fan_out})) = {xavier:.4f}, a compromise between the "
                     "forward (fan_in) and backward (fan_out) passes.")


@check("compute", "03", "give batch norm's four outputs in training mode for x = [1, 2, 3, 4] (one unit), "
                        "gamma = 2, beta = 1, eps = 0, as a list.")
def check_bn_by_hand(answer) -> bool:
    x = torch.tensor(BN_EXERCISE["x"], dtype=torch.float64).unsqueeze(1)
    g, b = torch.tensor([BN_EXERCISE["gamma"]], dtype=torch.float64), torch.tensor([BN_EXERCISE["beta"]], dtype=torch.float64)
    y = F.batch_norm(x, None, None, g, b, training=True, eps=1e-12).squeeze(1).tolist()
    try:
        mine = [as_float(v, "an output") for v in answer]
    except TypeError:
        raise LearnerError(f"give a list of {len(y)} numbers.") from None
    if len(mine) != len(y):
        return say(False, f"one output per input: give {len(y)} numbers.")
    mu, var = x.mean().item(), x.var(unbiased=False).item()
    shown = ", ".join(f"{v:.4f}" for v in y)
    if all(close(a, c, 1e-3) for a, c in zip(mine, y)):
        return say(True, f"mean {mu}, variance {var} (divided by m = {len(y)}), x_hat = (x - {mu}) / sqrt({var}), "
                         f"y = 2 x_hat + 1 = [{shown}].")
    unbiased = x.var(unbiased=True).item()
    y_unbiased = [2 * (v - mu) / math.sqrt(unbiased) + 1 for v in BN_EXERCISE["x"]]
    if all(close(a, c, 1e-3) for a, c in zip(mine, y_unbiased)):
        return say(False, f"you divided the variance by m - 1 (giving {unbiased:.4f}); Algorithm 1 divides "
                          f"by m: {var}. y = [{shown}].")
    x_hat = [(v - mu) / math.sqrt(var) for v in BN_EXERCISE["x"]]
    if all(close(a, c, 1e-3) for a, c in zip(mine, x_hat)):
        return say(False, f"that is x_hat; apply gamma and beta: y = 2 x_hat + 1 = [{shown}].")
    return say(False, f"mean {mu}, variance {var}, y = 2 (x - {mu}) / sqrt({var}) + 1 = [{shown}].")


def _bn_case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = 3 + 2 * torch.randn(16, 5, generator=g, dtype=torch.float64)
    gamma = 0.5 + torch.rand(5, generator=g, dtype=torch.float64)
    beta = torch.randn(5, generator=g, dtype=torch.float64)
    mean = torch.randn(5, generator=g, dtype=torch.float64)
    var = 0.5 + torch.rand(5, generator=g, dtype=torch.float64)
    return x, gamma, beta, mean, var


@check("build", "03", "write bn_forward(x, gamma, beta, running_mean, running_var, training, eps=1e-5) "
                      "for x of shape [batch, units] (no update of the running statistics).")
def check_bn_forward(answer) -> bool:
    x, gamma, beta, mean, var = _bn_case()
    eps = 1e-5
    for training in (True, False):
        right = F.batch_norm(x, mean.clone(), var.clone(), gamma, beta, training=training, momentum=0.0, eps=eps)
        mine = run(answer, x.clone(), gamma.clone(), beta.clone(), mean.clone(), var.clone(), training, eps)
        if not isinstance(mine, torch.Tensor) or mine.shape != x.shape:
            return say(False, f"return a tensor shaped like x, {tuple(x.shape)}.")
        if torch.allclose(mine.double(), right, atol=1e-6):
            continue
        mode = "training" if training else "evaluation"
        other = F.batch_norm(x, mean.clone(), var.clone(), gamma, beta, training=not training, momentum=0.0, eps=eps)
        if torch.allclose(mine.double(), other, atol=1e-6):
            if training:
                return say(False, "in training mode you normalised with the running statistics; use the "
                                  "batch's own mean and variance (Algorithm 1).")
            return say(False, "in evaluation mode you normalised with the batch's statistics; use "
                              "running_mean and running_var, so each output depends on its input alone.")
        if training:
            unbiased = gamma * (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=True) + eps) + beta
            if torch.allclose(mine.double(), unbiased, atol=1e-6):
                return say(False, "in training mode you used the unbiased variance (divided by m - 1); "
                                  "Algorithm 1 divides by m.")
            no_affine = (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps)
            if torch.allclose(mine.double(), no_affine, atol=1e-6):
                return say(False, "you returned x_hat; multiply by gamma and add beta.")
        return say(False, f"in {mode} mode your outputs differ from nn.BatchNorm1d's by up to "
                          f"{(mine.double() - right).abs().max().item():.3g}.")
    return say(True, "training mode normalises with the batch's mean and biased variance, evaluation "
                     "mode with the running statistics; both then scale by gamma and shift by beta.")


@check("build", "03", "write bn_update(x, running_mean, running_var, momentum=0.1) returning the new "
                      "(running_mean, running_var) after one training batch x [batch, units].")
def check_bn_running_update(answer) -> bool:
    x, _, _, mean, var = _bn_case(1)
    m = 0.1
    new_mean, new_var = mean.clone(), var.clone()
    F.batch_norm(x, new_mean, new_var, training=True, momentum=m)
    out = run(answer, x.clone(), mean.clone(), var.clone(), m)
    try:
        got_mean, got_var = (t.double() for t in out)
    except (TypeError, ValueError, AttributeError):
        raise LearnerError("return a pair of tensors (new running_mean, new running_var).") from None
    ok_mean, ok_var = torch.allclose(got_mean, new_mean), torch.allclose(got_var, new_var)
    if ok_mean and ok_var:
        return say(True, "r <- (1 - 0.1) r + 0.1 * batch statistic, with the variance's unbiased "
                         "m/(m - 1) estimate, as nn.BatchNorm1d in training mode.")
    swapped = 0.1 * mean + 0.9 * x.mean(0)
    if torch.allclose(got_mean, swapped):
        return say(False, "momentum is the weight of the new batch: r <- 0.9 r + 0.1 * batch mean, "
                          "not 0.1 r + 0.9 * batch mean.")
    if ok_mean and torch.allclose(got_var, 0.9 * var + 0.1 * x.var(0, unbiased=False)):
        return say(False, "the running variance uses the unbiased batch variance (divided by m - 1), "
                          "though the normalisation itself divides by m.")
    return say(False, f"running_mean {'right' if ok_mean else 'off'}, running_var {'right' if ok_var else 'off'}: "
                      "r <- (1 - momentum) r + momentum * batch statistic.")


@check("experiment", "03", "build the 20-layer sigmoid MLP with batch norm (deep_mlp) and pass the model.")
def check_bn_sigmoid_net(answer, depth: int = 20) -> bool:
    if not isinstance(answer, DeepMLP):
        raise LearnerError("pass the model built with deepnets.models.deep_mlp(...).")
    reference = deep_mlp(depth, answer.width, "sigmoid", "default", batch_norm=True)
    linears = sum(isinstance(m, nn.Linear) for m in answer.modules())
    bns = sum(isinstance(m, nn.BatchNorm1d) for m in answer.modules())
    acts = {type(m).__name__ for m in answer.modules() if isinstance(m, (nn.Sigmoid, nn.Tanh, nn.ReLU, nn.GELU, nn.ELU, nn.LeakyReLU))}
    if linears != depth:
        return say(False, f"your net has {linears} Linear layers; depth counts every Linear, the output "
                          f"layer included: deep_mlp({depth}, ...).")
    if acts != {"Sigmoid"}:
        return say(False, f"your net uses {sorted(acts)}; the experiment keeps the sigmoid and adds batch norm.")
    want = sum(isinstance(m, nn.BatchNorm1d) for m in reference.modules())
    if bns != want:
        return say(False, f"your net has {bns} BatchNorm1d layers, the remedy {want}, one per hidden "
                          "layer: pass batch_norm=True.")
    if any(b.residual for b in answer.blocks):
        return say(False, "your net has shortcuts too (residual=True); change one thing at a time.")
    return say(True, f"{depth} Linear layers, sigmoid, one BatchNorm1d before each hidden sigmoid; "
                     "now train it and measure its validation accuracy in evaluation and in training mode "
                     "after every epoch, over three seeds, and compare the two modes with deepnets.compare.")
