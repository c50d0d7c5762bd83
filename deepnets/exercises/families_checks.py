"""Checks for notebook 05 (the families side by side): VGG16's fc1 behind a global average
pool, a bottleneck's multiply-adds, the cheapest ResNet that matches VGG19-BN's top-5, the activation
memory of one image written as a function, and the pair of nets for the latency experiment."""

from __future__ import annotations

import torch
from torch import nn

from deepnets.families import activation_bytes, build, imagenet_meta
from deepnets.models import Bottleneck, resnet50, vgg16_bn
from deepnets.summary import layer_table

from ._core import LearnerError, as_int, check, count, run, say

__all__ = ["check_gap_fc1_params", "check_bottleneck_macs", "check_cheapest_match",
           "check_activation_bytes", "check_timing_pair"]


@check("compute", "05", "give the parameters of VGG16's fc1 (4096 outputs, biases included) if a global "
                        "average pool replaced the 7x7 flatten before it (an int).")
def check_gap_fc1_params(answer) -> bool:
    with torch.device("meta"):
        fc1 = build("vgg16").classifier[0]
    channels = fc1.in_features // 49
    right = (channels + 1) * fc1.out_features
    mine = as_int(answer, "a parameter count")
    text = f"({channels} + 1) x {fc1.out_features} = {right:,}"
    if mine == right:
        return say(True, f"{text}, against {count(fc1):,} with the 7x7x{channels} flatten: "
                         f"{count(fc1) / right:.0f}x fewer, the 49 positions no longer each get their own weights.")
    if mine == channels * fc1.out_features:
        return say(False, f"you left out the {fc1.out_features:,} biases: {text}.")
    if mine == count(fc1):
        return say(False, f"{mine:,} is fc1 as it is, on the 7x7x{channels} = {fc1.in_features:,} flattened "
                          f"values; the pool averages each channel's 7x7 map to one value: {text}.")
    return say(False, f"the pool leaves {channels} values (one per channel): {text}; you have {mine:,}.")


@check("compute", "05", "give the multiply-adds of Bottleneck(256, 64) on a 56x56 map, convolutions "
                        "only (an int).")
def check_bottleneck_macs(answer) -> bool:
    block = Bottleneck(256, 64)
    with torch.device("meta"):
        macs = layer_table(block.to("meta"), (1, 256, 56, 56)).total_flops // 2
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    terms = " + ".join(f"{m.kernel_size[0]}*{m.kernel_size[0]}*{m.in_channels}*{m.out_channels}" for m in convs)
    text = f"56*56 x ({terms}) = {macs:,}"
    mine = as_int(answer, "a count of multiply-adds")
    three = 56 * 56 * 9 * 64 * 64
    if mine == macs:
        return say(True, f"{text}; the 3x3 conv does {three / macs:.0%} of them, on 64 channels, between "
                         "two 1x1 convs that shrink 256 channels to 64 and widen them back.")
    if mine == 2 * macs:
        return say(False, f"{mine:,} counts FLOPs, 2 per multiply-add; torchvision's `_ops` and this "
                          f"question count multiply-adds: {text}.")
    if mine == three:
        return say(False, f"that is the 3x3 conv alone; add the two 1x1 convs: {text}.")
    return say(False, f"every output pixel of a conv costs k*k*C_in*C_out multiply-adds: {text}; "
                      f"you have {mine:,}.")


@check("compute", "05", "name the ResNet (e.g. 'resnet18') with the fewest multiply-adds whose top-5, as "
                        "torchvision records it for its V1 weights, is at least VGG19-BN's (a string).")
def check_cheapest_match(answer) -> bool:
    if not isinstance(answer, str):
        raise LearnerError(f"give a net's constructor name as a string, such as 'resnet18'; you gave {answer!r}.")
    vgg = imagenet_meta("vgg19_bn")
    resnets = [(imagenet_meta(n), n) for n in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")]
    matching = sorted((m.gmacs, n, m) for m, n in resnets if m.top5 >= vgg.top5)
    gmacs, right, meta = matching[0]
    mine = answer.strip().lower().replace("-", "")
    if mine == right:
        return say(True, f"{right}: top-5 {meta.top5:.2f}% against VGG19-BN's {vgg.top5:.2f}%, with {gmacs:.2f} "
                         f"GMACs against {vgg.gmacs:.2f} ({vgg.gmacs / gmacs:.1f}x fewer) and "
                         f"{meta.num_params / 1e6:.1f}M parameters against {vgg.num_params / 1e6:.1f}M.")
    known = {n: m for m, n in resnets}
    if mine not in known:
        return say(False, f"{answer!r} is not one of {', '.join(known)}.")
    if known[mine].top5 < vgg.top5:
        return say(False, f"{mine}'s top-5 is {known[mine].top5:.2f}%, below VGG19-BN's {vgg.top5:.2f}% "
                          "(the question asks for top-5, not top-1).")
    return say(False, f"{mine} reaches VGG19-BN's top-5 but costs {known[mine].gmacs:.2f} GMACs; "
                      f"{right} reaches it with {gmacs:.2f}.")


@check("build", "05", "write activation_bytes(model, size) returning the bytes of every leaf module's "
                      "output for one size x size RGB image, an output that is its own input counted "
                      "once (the check passes models built on the meta device: make the input on "
                      "next(model.parameters()).device), and pass the function.")
def check_activation_bytes(answer) -> bool:
    for name in ("alexnet", "vgg11_bn", "resnet18"):
        with torch.device("meta"):
            model = build(name)
        right = activation_bytes(model, 64)
        mine = run(answer, model, 64)
        if isinstance(mine, torch.Tensor):
            mine = mine.item()
        mine = as_int(mine, "a number of bytes")
        if mine == right:
            continue
        elements = right // 4
        if mine == elements:
            return say(False, f"{name}: {mine:,} is the number of values; a float32 value takes 4 bytes: "
                              f"{right:,} bytes.")
        if mine > right:
            return say(False, f"{name} at 64x64: {mine:,} bytes against {right:,}. Count an output that is "
                              "its own input (an in-place ReLU, dropout in eval mode) once: compare them "
                              "with `output is input`.")
        return say(False, f"{name} at 64x64: {mine:,} bytes against {right:,}. Hook every leaf module "
                          "(one with no children), not only the convolutions.")
    return say(True, "the same bytes as deepnets.families.activation_bytes for AlexNet, VGG11-BN and "
                     "ResNet-18 at 64x64.")


@check("experiment", "05", "build the pair {'resnet50': ..., 'vgg16_bn': ...}, the course's models ready "
                           "to time, and pass it.")
def check_timing_pair(answer) -> bool:
    if not isinstance(answer, dict) or set(answer) != {"resnet50", "vgg16_bn"}:
        keys = sorted(answer) if isinstance(answer, dict) else answer
        raise LearnerError(f"pass a dict with the keys 'resnet50' and 'vgg16_bn'; you gave {keys!r}.")
    for name, reference in (("resnet50", resnet50), ("vgg16_bn", vgg16_bn)):
        model = answer[name]
        if not isinstance(model, nn.Module):
            raise LearnerError(f"answer[{name!r}] should be a model; it is a {type(model).__name__}.")
        with torch.device("meta"):
            expected = count(reference())
        if count(model) != expected:
            return say(False, f"answer[{name!r}] has {count(model):,} parameters; the course's {name}() "
                              f"has {expected:,}.")
        if model.training:
            return say(False, f"answer[{name!r}] is in training mode: batch norm would normalise with each "
                              "batch's statistics (and update its running ones) and dropout would drop. "
                              "Call .eval() before timing, as the lesson's latency() does.")
    return say(True, "two nets in evaluation mode: time each with latency(model, batch) at batch 1, 8 and 32, "
                     "and set the ratio of their times beside the ratio of their FLOPs.")
