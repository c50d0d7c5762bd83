"""Checks for notebook 02 (VGG16): receptive fields and weights of 3x3 stacks, VGG16's
sizes, parameters and multiply-adds, a stage and a configuration written by hand, and the
switches of the dropout experiment."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from deepnets.models import VGG, receptive_field, vgg, vgg16, vgg_cfgs, vgg_make_layers

from ._core import LearnerError, as_int, check, copy_weights, count, randomise_bn, run, say
from ._shapes import compare_outputs, first_shape_mistake, instantiate

__all__ = ["check_receptive_field", "check_stack_weights", "check_vgg16_sizes", "check_fc1_params",
           "check_vgg16_params", "check_conv_macs", "check_vgg_stage", "check_vgg19_config",
           "check_small_vgg_dropout"]

#: notebook 02's small net: configuration B without its fifth stage, a quarter of the width
SMALL_VGG = dict(cfg=vgg_cfgs["B"][:-3], in_channels=1, input_size=28, num_classes=10,
                 width=0.25, fc_width=256, fc_std=None)


def _stack(n: int, channels: int, kernel: int, bias: bool = False) -> nn.Sequential:
    return nn.Sequential(*[nn.Conv2d(channels, channels, kernel, padding=kernel // 2, bias=bias,
                                     device="meta") for _ in range(n)])


def _vgg16_meta() -> VGG:
    with torch.device("meta"):
        return vgg16()


@check("compute", "02", "give the receptive field (a side, in pixels) of three stacked 3x3 convs.")
def check_receptive_field(answer) -> bool:
    fields = [receptive_field(_stack(n, 1, 3)) for n in (1, 2, 3)]
    mine = as_int(answer, "a receptive field")
    if mine == fields[2]:
        return say(True, f"{' -> '.join(map(str, fields))}: each 3x3 conv (stride 1) adds kernel - 1 = 2 "
                         f"pixels, so three see {fields[2]}x{fields[2]}, what one 7x7 kernel sees.")
    if mine == fields[1]:
        return say(False, f"your receptive field is {mine}; that is after the second conv; after the "
                          f"third 3x3 conv it is {fields[2]}: each conv adds kernel - 1 = 2 pixels.")
    if mine == 3 * 3:
        return say(False, f"the fields do not multiply: each conv adds kernel - 1 = 2 pixels to the "
                          f"window, 3 -> 5 -> {fields[2]}.")
    return say(False, f"your receptive field is {mine}; after the third 3x3 conv it is {fields[2]}: "
                      "1 + 3 * (3 - 1), each conv adds kernel - 1 pixels.")


@check("compute", "02", "give (weights of three stacked 3x3 convs, weights of one 7x7 conv) for 64 "
                        "channels in and out, no biases, as a pair of ints.")
def check_stack_weights(answer, channels: int = 64) -> bool:
    three, one = count(_stack(3, channels, 3)), count(_stack(1, channels, 7))
    try:
        a, b = (as_int(v, "a weight count") for v in answer)
    except (TypeError, ValueError):
        raise LearnerError(f"give a pair (three 3x3, one 7x7); you gave {answer!r}.") from None
    c = channels
    text = f"3 * (3*3*{c}*{c}) = {three:,} against 7*7*{c}*{c} = {one:,}"
    if (a, b) == (three, one):
        return say(True, f"{text}: {three / one:.0%} of the weights (27/49), for the same 7x7 view "
                         "and three ReLUs instead of one.")
    if (a, b) == (one, three):
        return say(False, f"the pair is swapped: (three 3x3, one 7x7) = ({three:,}, {one:,}).")
    notes = []
    if a == three + 3 * c or b == one + c:
        notes.append("the exercise leaves out biases (one per output channel)")
    if a in (27 * c, 9 * c * 3) or b == 49 * c:
        notes.append(f"each kernel spans all {c} input channels and there are {c} kernels: k*k*C*C")
    return say(False, f"{text}" + (f"; {'; '.join(notes)}" if notes else "") + ".")


@check("compute", "02", "give the side of VGG16's feature map after pool1 .. pool5 for 224x224 inputs (five ints).")
def check_vgg16_sizes(answer) -> bool:
    model = _vgg16_meta()
    sides, n = [], 224
    for m in model.features:
        if isinstance(m, nn.MaxPool2d):
            n = (n - m.kernel_size) // m.stride + 1
            sides.append(n)
    answer = [as_int(a, "a side") for a in answer]
    if answer == sides:
        return say(True, f"224 -> {' -> '.join(map(str, sides))}: the 3x3 convs (padding 1) keep the "
                         "size, only the five 2x2/2 pools halve it.")
    if len(answer) != len(sides):
        return say(False, f"give {len(sides)} sides, after each of the {len(sides)} pools; you gave "
                          f"{len(answer)}. Pools follow conv1_2, conv2_2, conv3_3, conv4_3 and conv5_3 only.")
    i = next(i for i, (a, b) in enumerate(zip(answer, sides)) if a != b)
    before = 224 if i == 0 else sides[i - 1]
    return say(False, f"after pool{i + 1} the side is {sides[i]}, not {answer[i]}: a 2x2/2 pool maps "
                      f"{before} to ({before} - 2) / 2 + 1 = {sides[i]}, and the convs in between keep it.")


@check("compute", "02", "give fc1's parameter count in VGG16 (an int).")
def check_fc1_params(answer) -> bool:
    model = _vgg16_meta()
    fc1 = model.classifier[0]
    right, total = count(fc1), count(model)
    mine = as_int(answer, "a parameter count")
    formula = f"(512 * 7 * 7 + 1) * {fc1.out_features} = ({fc1.in_features:,} + 1) * {fc1.out_features:,} = {right:,}"
    if mine == right:
        return say(True, f"{formula}: {right / total:.0%} of VGG16's {total:,} parameters in one layer.")
    if mine == right - fc1.out_features:
        return say(False, f"you left out the {fc1.out_features:,} biases: {formula}.")
    if mine == (512 * 14 * 14 + 1) * fc1.out_features:
        return say(False, f"fc1 sees the map after pool5, 7x7x512, not 14x14x512: {formula}.")
    return say(False, f"{formula}, not {mine:,}.")


@check("compute", "02", "give VGG16's total parameter count (an int).")
def check_vgg16_params(answer) -> bool:
    model = _vgg16_meta()
    total = count(model)
    mine = as_int(answer, "a parameter count")
    convs = [m for m in model.features if isinstance(m, nn.Conv2d)]
    fcs = [m for m in model.classifier if isinstance(m, nn.Linear)]
    conv_total, fc_total = sum(count(m) for m in convs), sum(count(m) for m in fcs)
    if mine == total:
        return say(True, f"{total:,}: {conv_total:,} in the 13 convs and {fc_total:,} in the 3 fc layers.")
    biases = sum(m.bias.numel() for m in convs + fcs)
    conv1_2 = convs[1]
    notes_slip = total - 9 * conv1_2.in_channels * conv1_2.out_channels + 9 * 3 * conv1_2.out_channels
    if mine == total - biases:
        why = f"you left out the {biases:,} biases"
    elif mine == notes_slip:
        why = (f"conv1_2's kernels are 3x3x{conv1_2.in_channels}, not 3x3x3 (its input is conv1_1's "
               f"{conv1_2.in_channels} maps; the study notes' slip)")
    elif mine == conv_total:
        why = f"that is the convs alone; the fc layers add {fc_total:,}"
    elif mine == fc_total:
        why = f"that is the fc layers alone; the convs add {conv_total:,}"
    else:
        why = f"convs {conv_total:,} + fc layers {fc_total:,}"
    return say(False, f"the total is {total:,}, you have {mine:,}: {why}.")


@check("compute", "02", "give the multiply-adds (MACs) of conv1_2 for one 224x224 image (an int).")
def check_conv_macs(answer) -> bool:
    model = _vgg16_meta()
    conv = [m for m in model.features if isinstance(m, nn.Conv2d)][1]
    with FlopCounterMode(display=False) as counter:
        conv(torch.zeros(1, conv.in_channels, 224, 224, device="meta"))
    macs = counter.get_total_flops() // 2  # torch counts 2 FLOPs per multiply-add
    mine = as_int(answer, "a MAC count")
    formula = (f"224 * 224 output pixels * {conv.out_channels} kernels * 3*3*{conv.in_channels} "
               f"= {macs:,}")
    if mine == macs:
        return say(True, f"{formula} ({macs / 1e9:.2f} GMACs): one layer costs more than all of fc1's "
                         f"{count(model.classifier[0]) / 1e6:.0f}M multiply-adds.")
    if mine == 2 * macs:
        return say(False, f"that is FLOPs (2 per multiply-add); MACs: {formula}.")
    if mine == 224 * 224 * conv.out_channels * 9 * 3:
        return say(False, f"conv1_2's input has {conv.in_channels} channels, not 3: {formula}.")
    if mine == 9 * conv.in_channels * conv.out_channels:
        return say(False, "that is the weight count; the work repeats it at every output pixel: " + formula + ".")
    return say(False, f"{formula}, not {mine:,}.")


@check("build", "02", "write vgg_stage(in_channels, out_channels, n_convs, batch_norm=False) returning "
                      "an nn.Sequential: n x (3x3 conv [-> BatchNorm] -> ReLU), then a 2x2/2 max-pool.")
def check_vgg_stage(answer) -> bool:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 12, 12, generator=g)
    for batch_norm in (False, True):
        reference = vgg_make_layers([8] * 2 + ["M"], batch_norm=batch_norm, in_channels=3)
        randomise_bn(reference, g)
        reference.eval()
        mine = instantiate(answer, 3, 8, 2, batch_norm=batch_norm).eval()
        where = f"with batch_norm={batch_norm}: "
        mistake = first_shape_mistake(reference, mine, x, (nn.Conv2d, nn.MaxPool2d))
        if mistake:
            return say(False, where + mistake)
        n_bn = sum(isinstance(m, nn.BatchNorm2d) for m in mine.modules())
        if n_bn != (2 if batch_norm else 0):
            return say(False, where + f"your stage has {n_bn} BatchNorm2d layers; "
                       + ("one after each conv, before its ReLU." if batch_norm else "none without batch norm."))
        if count(mine) != count(reference):
            return say(False, where + f"{count(mine):,} parameters, the package's {count(reference):,}: "
                       "VGG's convs have biases (bias=True, the default).")
        copy_weights(reference, mine)
        ok, message = compare_outputs(reference, mine, x)
        if not ok:
            return say(False, where + message + " The order is conv -> (BatchNorm) -> ReLU; pool last.")
    return say(True, "the same layers, shapes and outputs as deepnets.models.vgg_make_layers, with "
                     "and without batch norm.")


@check("build", "02", "write configuration E (VGG19) as a config list of ints and 'M'.")
def check_vgg19_config(answer) -> bool:
    right = vgg_cfgs["E"]
    mine = list(run(answer) if callable(answer) else answer)

    def stages(cfg):
        out, cur = [], []
        for v in cfg:
            if v == "M":
                out.append(cur)
                cur = []
            else:
                cur.append(v)
        return out + ([cur] if cur else [])

    if mine == right:
        n_conv = sum(v != "M" for v in right)
        return say(True, f"{n_conv} convs in five stages of {', '.join(str(len(s)) for s in stages(right))}; "
                         f"with the 3 fc layers, {n_conv + 3} weight layers.")
    rs, ms = stages(right), stages(mine)
    if len(ms) != len(rs):
        return say(False, f"VGG19 has {len(rs)} stages, each ended by 'M'; yours has {len(ms)}.")
    i = next(i for i, (a, b) in enumerate(zip(rs, ms)) if a != b)
    return say(False, f"stage {i + 1} is {rs[i]} (its convs all have {rs[i][0]} channels), yours {ms[i]}.")


@check("experiment", "02", "build notebook 02's small VGG with dropout 0.5 in the classifier and pass the model.")
def check_small_vgg_dropout(answer, p: float = 0.5) -> bool:
    if not isinstance(answer, VGG):
        raise LearnerError("pass the VGG model built with deepnets' vgg(...) (the notebook's small_vgg).")
    dropouts = [m.p for m in answer.classifier if isinstance(m, nn.Dropout)]
    batch_norm = any(isinstance(m, nn.BatchNorm2d) for m in answer.modules())
    reference = vgg(SMALL_VGG["cfg"], batch_norm, **{k: v for k, v in SMALL_VGG.items() if k != "cfg"})
    if count(answer) != count(reference):
        return say(False, f"your net has {count(answer):,} parameters, the notebook's "
                          f"{'batch-norm ' if batch_norm else ''}small VGG {count(reference):,}: change "
                          "only the dropout, so the comparison isolates it.")
    if dropouts != [p, p]:
        return say(False, f"the classifier's dropout probabilities are {dropouts}; pass dropout={p} "
                          "(fc1 and fc2, as the paper, section 3.1).")
    return say(True, f"the notebook's net with dropout {p} after fc1 and fc2; train it beside the "
                     "dropout-0 net over three seeds and compare the train-validation gaps with deepnets.compare.")
