"""Checks for notebook 04 (ResNet): 6n+2 depths, parameter counts, stage shapes, a
BasicBlock, a Bottleneck and an option-A shortcut written by hand, a layer-table row, and
the switches of a plain/residual pair."""

from __future__ import annotations

import torch
from torch import nn

from deepnets.models import BasicBlock, Bottleneck, ResNet, cifar_resnet, resnet50
from deepnets.models.resnet import ZeroPadShortcut
from deepnets.summary import layer_table

from ._core import LearnerError, as_int, check, copy_weights, count, randomise_bn, run, say
from ._shapes import compare_outputs, first_shape_mistake, instantiate

__all__ = ["check_blocks_per_stage", "check_resnet20_params", "check_resnet50_stages",
           "check_bottleneck_params", "check_basic_block", "check_bottleneck", "check_zero_pad_shortcut",
           "check_layer_row", "check_plain_residual_pair"]


def _weighted(model: nn.Module) -> int:
    return sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules()
               if not isinstance(m, nn.Conv2d) or m.kernel_size != (1, 1))


@check("compute", "04", "give n, the BasicBlocks per stage, of the paper's CIFAR ResNet-110 (an int).")
def check_blocks_per_stage(answer, depth: int = 110) -> bool:
    model = cifar_resnet(depth)
    n = len(model.layer1)
    mine = as_int(answer, "a block count")
    if mine == n:
        return say(True, f"depth = 6n + 2: {depth} = 6 * {n} + 2; three stages of {n} blocks of two 3x3 convs, "
                         "plus the first conv and the fc layer.")
    if mine == 2 * n:
        return say(False, f"{mine} is the convs per stage; each BasicBlock holds two: n = ({depth} - 2) / 6 = {n}.")
    if mine == (depth - 2) // 3 or mine == depth // 6:
        return say(False, f"three stages x n blocks x 2 convs + 2 = 6n + 2, so n = ({depth} - 2) / 6 = {n}.")
    return say(False, f"n = ({depth} - 2) / 6 = {n}, not {mine}.")


@check("compute", "04", "give the parameter count of the paper's ResNet-20 for 1-channel images (cifar_resnet(20)).")
def check_resnet20_params(answer) -> bool:
    model = cifar_resnet(20)
    total = count(model)
    convs = sum(count(m) for m in model.modules() if isinstance(m, nn.Conv2d))
    bns = sum(count(m) for m in model.modules() if isinstance(m, nn.BatchNorm2d))
    fc = count(model.fc)
    mine = as_int(answer, "a parameter count")
    text = f"convs {convs:,} + batch norm {bns:,} + fc {fc:,} = {total:,}"
    if mine == total:
        return say(True, f"{text}; the option A shortcuts add none (they subsample and pad with zeros).")
    if mine == total - bns:
        return say(False, f"you left out batch norm's gamma and beta, two per channel after every conv: {text}.")
    if mine == total - model.fc.bias.numel():
        return say(False, f"you left out fc's {model.fc.bias.numel()} biases: {text}.")
    shortcut = count(ResNet(BasicBlock, [3, 3, 3], widths=(16, 32, 64), num_classes=10, in_channels=1,
                            stem="cifar", shortcut="projection"))
    if mine == shortcut:
        return say(False, f"{mine:,} counts 1x1 projection shortcuts (option B); the paper's CIFAR nets use "
                          f"option A, which has no parameters: {text}.")
    if mine == count(cifar_resnet(20, in_channels=3)):
        return say(False, f"that is for 3-channel CIFAR images; Fashion-MNIST has 1 channel: {text}.")
    return say(False, f"{text}; you have {mine:,}.")


@check("compute", "04", "give the output shape (C, H, W) of each of ResNet-50's four stages for a "
                        "224x224 image, as a list of four triples.")
def check_resnet50_stages(answer) -> bool:
    with torch.device("meta"):
        model = resnet50()
    shapes, x = [], torch.zeros(1, 3, 224, 224, device="meta")
    x = model.maxpool(model.relu(model.bn1(model.conv1(x))))
    for name in model.stage_names:
        x = getattr(model, name)(x)
        shapes.append(tuple(x.shape[1:]))
    mine = [tuple(as_int(v, "a size") for v in s) for s in answer]
    if mine == shapes:
        return say(True, "; ".join(f"layer{i + 1} {c}x{h}x{w}" for i, (c, h, w) in enumerate(shapes))
                   + ": the map halves and the channels double from stage to stage; a bottleneck outputs "
                     "4 x its width.")
    if len(mine) != len(shapes):
        return say(False, f"give {len(shapes)} triples, one per stage; you gave {len(mine)}.")
    i = next(i for i, (a, b) in enumerate(zip(mine, shapes)) if a != b)
    c, h, w = shapes[i]
    if mine[i][0] * 4 == c:
        why = f"a Bottleneck's last 1x1 conv expands its width x4: {c // 4} x 4 = {c} channels"
    elif mine[i][1:] != (h, w) and i == 0:
        why = "the stem takes 224 to 112 (7x7 conv, stride 2) and 56 (3x3/2 max pool); the first stage keeps 56"
    elif mine[i][1:] != (h, w):
        why = f"every stage after the first halves the map (stride 2 in its first block): {h}x{w}"
    else:
        why = f"{c} channels"
    return say(False, f"layer{i + 1} outputs {c}x{h}x{w}, not {'x'.join(map(str, mine[i]))}: {why}.")


@check("compute", "04", "give the parameters of Bottleneck(256, 64), BatchNorm included (an int).")
def check_bottleneck_params(answer) -> bool:
    block = Bottleneck(256, 64)
    total = count(block)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    bn = sum(count(m) for m in block.modules() if isinstance(m, nn.BatchNorm2d))
    terms = " + ".join(f"{m.kernel_size[0]}*{m.kernel_size[0]}*{m.in_channels}*{m.out_channels}" for m in convs)
    text = f"{terms} = {sum(count(m) for m in convs):,} conv weights (no biases) + {bn} BatchNorm = {total:,}"
    mine = as_int(answer, "a parameter count")
    if mine == total:
        basic = count(BasicBlock(64, 64))
        return say(True, f"{text}: about a basic block's {basic:,} on 64 channels, for a block four times wider.")
    if mine == total - bn:
        return say(False, f"you left out batch norm's gamma and beta (2 per channel): {text}.")
    if mine == total + sum(m.out_channels for m in convs):
        return say(False, f"ResNet's convs have no biases (the BatchNorm after each makes them redundant): {text}.")
    return say(False, f"{text}; you have {mine:,}.")


def _shortcut_present(mine: nn.Module, channels: int) -> str | None:
    """Zero every weight of the block (F(x) = 0 in eval mode); a residual block then
    returns relu(x) = x for x >= 0, a plain one zeros."""
    with torch.no_grad():
        for p in mine.parameters():
            p.zero_()
        for m in mine.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.zero_()
                m.running_var.fill_(1)
    mine.eval()
    x = torch.rand(2, channels, 6, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y = run(mine, x.clone())
    if torch.allclose(y, x):
        return None
    if torch.count_nonzero(y) == 0:
        return ("with its residual branch F(x) set to 0 your block returns zeros: its output does not "
                "depend on x additively. Add the shortcut: out = F(x) + x, then the ReLU.")
    return ("with its residual branch F(x) set to 0 your block should return relu(x) = x for x >= 0 "
            "and does not: the shortcut adds x before the final ReLU, unchanged.")


def _check_block(answer, reference_cls, name: str) -> bool:
    g = torch.Generator().manual_seed(0)
    inplanes = 16 * reference_cls.expansion
    cases = [("identity shortcut", dict(inplanes=inplanes, planes=16, stride=1, downsample=None)),
             ("stride 2 with a projection shortcut",
              dict(inplanes=inplanes, planes=32, stride=2,
                   downsample=nn.Sequential(nn.Conv2d(inplanes, 32 * reference_cls.expansion, 1, 2, bias=False),
                                            nn.BatchNorm2d(32 * reference_cls.expansion))))]
    for label, kwargs in cases:
        torch.manual_seed(0)
        reference = reference_cls(**kwargs)
        randomise_bn(reference, g)
        reference.eval()
        torch.manual_seed(0)
        mine = instantiate(answer, kwargs["inplanes"], kwargs["planes"], kwargs["stride"],
                           kwargs["downsample"]).eval()
        x = torch.relu(torch.randn(2, inplanes, 8, 8, generator=g))
        mistake = first_shape_mistake(reference, mine, x, (nn.Conv2d,))
        if mistake:
            return say(False, f"{label}: {mistake}")
        if count(mine) != count(reference):
            return say(False, f"{label}: your block has {count(mine):,} parameters, the package's "
                              f"{count(reference):,}; convs without bias, one BatchNorm2d after each conv.")
        copy_weights(reference, mine)
        ok, message = compare_outputs(reference, mine, x)
        if not ok:
            if label == "identity shortcut":
                absent = _shortcut_present(instantiate(answer, inplanes, 16, 1, None), inplanes)
                if absent:
                    return say(False, absent)
            return say(False, f"{label}: {message} The order is conv -> BN -> ReLU inside F, the last BN "
                              "without ReLU, then add the shortcut, then ReLU.")
    return say(True, f"the same shapes, parameter count and outputs as deepnets' {name} (identity and "
                     "projection shortcuts, the same weights), and the output depends on x additively.")


@check("build", "04", "write a BasicBlock(inplanes, planes, stride=1, downsample=None) class and pass the class.")
def check_basic_block(answer) -> bool:
    return _check_block(answer, BasicBlock, "BasicBlock")


@check("build", "04", "write a Bottleneck(inplanes, planes, stride=1, downsample=None) class (1x1, 3x3 "
                      "with the stride, 1x1 to planes * 4) and pass the class.")
def check_bottleneck(answer) -> bool:
    return _check_block(answer, Bottleneck, "Bottleneck")


@check("build", "04", "write zero_pad_shortcut(x, planes, stride) (option A) and pass the function.")
def check_zero_pad_shortcut(answer) -> bool:
    x = torch.randn(2, 4, 7, 7, generator=torch.Generator().manual_seed(0))
    planes, stride = 8, 2
    right = ZeroPadShortcut(planes, stride)(x)
    mine = run(answer, x.clone(), planes, stride)
    if not isinstance(mine, torch.Tensor):
        raise LearnerError("return a tensor.")
    if mine.shape != right.shape:
        fix = ""
        if mine.shape[1] == x.shape[1]:
            fix = f" The channels must grow to {planes}: pad {planes - x.shape[1]} zero channels."
        elif mine.shape[-1] != right.shape[-1]:
            fix = (f" Take every {stride}nd pixel, x[:, :, ::{stride}, ::{stride}]: "
                   f"{x.shape[-1]} -> {right.shape[-1]}.")
        return say(False, f"your output is {tuple(mine.shape)}, option A's {tuple(right.shape)}.{fix}")
    if torch.equal(mine, right):
        return say(True, "every other pixel, then zero channels appended: no parameters, and the "
                         "first channels carry x unchanged.")
    if torch.equal(mine[:, :x.shape[1]], torch.zeros_like(mine[:, :x.shape[1]])) and torch.equal(mine[:, -x.shape[1]:], right[:, :x.shape[1]]):
        return say(False, "you put the zero channels first; append them after x's channels "
                          "(F.pad's last pair pads the channel dimension: (0, 0, 0, 0, 0, extra)).")
    if torch.allclose(mine[:, :x.shape[1]], nn.functional.avg_pool2d(x, 2, 2, ceil_mode=True)[..., :right.shape[-2], :right.shape[-1]], atol=1e-6):
        return say(False, "you averaged 2x2 windows; option A takes every other pixel, x[:, :, ::2, ::2].")
    if torch.equal(mine[:, :x.shape[1], :x[:, :, 1::2, 1::2].shape[2], :x[:, :, 1::2, 1::2].shape[3]], x[:, :, 1::2, 1::2]):
        return say(False, "you started at pixel 1; the stride-2 conv of the residual branch samples "
                          "pixels 0, 2, 4, ...: x[:, :, ::2, ::2].")
    if not torch.all(mine[:, x.shape[1]:] == 0):
        return say(False, "the extra channels must be zeros (option A adds no parameters).")
    return say(False, f"your output differs from option A's by up to {(mine - right).abs().max().item():.3g}.")


@check("build", "04", "write layer_row(conv, input_shape) returning {'output_shape': (C, H, W), 'params': ..., "
                      "'flops': ...} for an nn.Conv2d and a (C, H, W) input, and pass the function.")
def check_layer_row(answer) -> bool:
    cases = [nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 16, 5, stride=2, padding=1, bias=False),
             nn.Conv2d(4, 6, 7, stride=3)]
    for conv, size in zip(cases, (12, 15, 20)):
        table = layer_table(nn.Sequential(conv), (1, conv.in_channels, size, size))
        right = table.rows[0]
        mine = run(answer, conv, (conv.in_channels, size, size))
        if not isinstance(mine, dict):
            raise LearnerError("return a dict with 'output_shape', 'params' and 'flops'.")
        k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
        label = f"Conv2d({conv.in_channels}, {conv.out_channels}, k={k}, s={s}, p={p}) on {size}x{size}"
        if tuple(mine.get("output_shape", ())) != tuple(right["output_shape"]):
            return say(False, f"{label}: output shape {tuple(right['output_shape'])}, not "
                              f"{tuple(mine.get('output_shape', ()))}: side = ({size} + 2*{p} - {k}) // {s} + 1.")
        if mine.get("params") != right["params"]:
            bias = "" if conv.bias is None else f" + {conv.out_channels} biases"
            note = " (this conv has bias=False)" if conv.bias is None and mine.get("params") == right["params"] + conv.out_channels else ""
            return say(False, f"{label}: params {k}*{k}*{conv.in_channels}*{conv.out_channels}{bias} = "
                              f"{right['params']:,}, not {mine.get('params')}{note}.")
        if mine.get("flops") != right["flops"]:
            c, h, w = right["output_shape"]
            macs = right["flops"] // 2
            note = " (you gave multiply-adds; a FLOP count is 2 per multiply-add)" if mine.get("flops") == macs else ""
            return say(False, f"{label}: flops 2 * {h}*{w} outputs * {c} kernels * {k}*{k}*{conv.in_channels} "
                              f"= {right['flops']:,}, not {mine.get('flops')}{note}; torch counts no FLOPs for the bias.")
    return say(True, "the same output shape, parameters and FLOPs as deepnets.layer_table, for three convs "
                     "(with and without bias, strides 1 to 3).")


@check("experiment", "04", "build the pair {'plain': ..., 'residual': ...} of 110-layer CIFAR nets and pass it.")
def check_plain_residual_pair(answer, depth: int = 110) -> bool:
    if not isinstance(answer, dict) or set(answer) != {"plain", "residual"}:
        raise LearnerError("pass a dict {'plain': model, 'residual': model}.")
    problems = []
    for name, model in answer.items():
        if not isinstance(model, ResNet):
            problems.append(f"'{name}' is not a ResNet: build it with cifar_resnet({depth}, shortcut=...)")
            continue
        layers = _weighted(model)
        if layers != depth:
            problems.append(f"'{name}' has {layers} weighted layers (convs other than 1x1 shortcuts, plus fc), not {depth}")
        blocks = [b for b in model.modules() if isinstance(b, (BasicBlock, Bottleneck))]
        residual = {b.residual for b in blocks}
        if name == "plain" and residual != {False}:
            problems.append("the 'plain' net has shortcuts: pass shortcut=None")
        if name == "residual" and residual != {True}:
            problems.append("the 'residual' net has blocks without shortcuts: pass shortcut='zero_pad' (the default)")
    if not problems and count(answer["plain"]) != count(answer["residual"]):
        problems.append(f"the two nets have {count(answer['plain']):,} and {count(answer['residual']):,} "
                        "parameters; with option A shortcuts they are equal, so only the shortcuts differ")
    if problems:
        return say(False, "; ".join(problems) + ".")
    return say(True, f"two {depth}-layer nets with the same {count(answer['plain']):,} parameters, one with "
                     "option A shortcuts; compare their training error (the paper's Fig. 6) over seeds.")
