"""Checks for notebook 00 (data and tools): the split, LeNet-5's sizes and parameters,
a LeNet written by hand, a bench subset drawn from the right images, an epoch chosen on
validation."""

from __future__ import annotations

import torch
from torch import nn

from deepnets.data import CLASSES, VAL_PER_CLASS, load_fashion_mnist, train_val_split
from deepnets.models import lenet5
from deepnets.profiles import get_profile

from ._core import LearnerError, as_int, check, conv_formula, copy_weights, count, run, say
from ._shapes import compare_outputs, conv_shapes, first_shape_mistake, instantiate

__all__ = ["check_split_sizes", "check_lenet_sizes", "check_lenet_params", "check_mlp_params",
           "check_lenet", "check_bench_subset", "check_best_epoch"]

LENET_LAYERS = ("conv1", "conv2", "fc1", "fc2", "fc3")


def _lenet_layers() -> dict[str, nn.Module]:
    """LeNet-5's weight layers by the names the exercises use."""
    model = lenet5()
    weighted = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return dict(zip(LENET_LAYERS, weighted))


@check("compute", "00", "give (training images, validation images) of the full split as two ints.")
def check_split_sizes(answer) -> bool:
    ds = load_fashion_mnist()
    index_train, _, index_val, _ = train_val_split(torch.arange(len(ds.train_labels)), ds.train_labels)
    n_train, n_val = len(index_train), len(index_val)
    try:
        train, val = (as_int(a, "an image count") for a in answer)
    except (TypeError, ValueError):
        raise LearnerError(f"give two numbers, (training, validation); you gave {answer!r}.") from None
    total = len(ds.train_labels)
    if (train, val) == (n_train, n_val):
        return say(True, f"{n_val:,} validation images ({VAL_PER_CLASS} of each of the "
                         f"{len(CLASSES)} classes) are held out of the {total:,}, leaving {n_train:,} to train on.")
    if (train, val) == (n_val, n_train):
        return say(False, "the two numbers are swapped: training comes first, (training, validation).")
    notes = []
    if val == VAL_PER_CLASS:
        notes.append(f"{val} is the validation images per class; there are {len(CLASSES)} classes, "
                     f"so {VAL_PER_CLASS} x {len(CLASSES)} = {n_val:,}")
    elif val != n_val:
        notes.append(f"validation: {VAL_PER_CLASS} per class x {len(CLASSES)} classes = {n_val:,}, not {val:,}")
    if train == total:
        notes.append(f"{total:,} is every training image; the validation images are held out of "
                     f"them, so {total:,} - {n_val:,} = {n_train:,} remain for training")
    elif train != n_train:
        notes.append(f"training: {total:,} - {n_val:,} = {n_train:,}, not {train:,}")
    return say(False, "; ".join(notes) + ".")


@check("compute", "00", "give the side of LeNet-5's feature maps after conv1, pool1, conv2, pool2 "
                        "for a 28x28 image, as a list of four ints.")
def check_lenet_sizes(answer) -> bool:
    model = lenet5()
    steps = [m for m in model.features if isinstance(m, (nn.Conv2d, nn.MaxPool2d))]
    names = ["conv1", "pool1", "conv2", "pool2"]
    sides = [shape[-1] for shape in conv_shapes(model, torch.zeros(1, 1, 28, 28),
                                               (nn.Conv2d, nn.MaxPool2d))]
    answer = [as_int(a, "a side") for a in answer]
    if len(answer) != len(sides):
        return say(False, f"give {len(sides)} sides, one after each of {', '.join(names)}; you gave {len(answer)}.")
    n = 28
    for name, m, side, mine in zip(names, steps, sides, answer):
        k, s, p = (v[0] if isinstance(v, tuple) else v for v in (m.kernel_size, m.stride, m.padding))
        if mine != side:
            hint = ""
            if name == "conv1" and mine == 24:
                hint = " conv1 pads the 28x28 image by 2 pixels, which LeNet-5's 32x32 inputs did not need."
            elif mine == side + 1 or mine == side - 1:
                hint = " An off-by-one: the +1 counts the window at the first position."
            return say(False, f"after {name} the side is {side}, not {mine}: {conv_formula(n, k, s, p)} "
                              f"(rounded down).{hint}")
        n = side
    return say(True, f"28 -> {' -> '.join(map(str, sides))}: each 5x5 conv takes k-1 = 4 pixels "
                     f"off (conv1 gives them back with padding 2), each 2x2/2 pool halves.")


@check("compute", "00", "give LeNet-5's parameter count: one int, or a dict with keys "
                        "'conv1', 'conv2', 'fc1', 'fc2', 'fc3'.")
def check_lenet_params(answer) -> bool:
    layers = _lenet_layers()
    per_layer = {name: count(m) for name, m in layers.items()}
    total = sum(per_layer.values())
    formula = {}
    for name, m in layers.items():
        if isinstance(m, nn.Conv2d):
            k = m.kernel_size[0]
            formula[name] = (f"({k}*{k}*{m.in_channels} + 1) * {m.out_channels} = {per_layer[name]:,}")
        else:
            formula[name] = f"({m.in_features} + 1) * {m.out_features} = {per_layer[name]:,}"
    if isinstance(answer, dict):
        missing = [n for n in LENET_LAYERS if n not in answer]
        if missing:
            return say(False, f"the dict needs the keys {list(LENET_LAYERS)}; missing {missing}.")
        wrong = [n for n in LENET_LAYERS if as_int(answer[n], "a count") != per_layer[n]]
        if not wrong:
            return say(True, f"{total:,} parameters: " + "; ".join(f"{n} {formula[n]}" for n in LENET_LAYERS) + ".")
        return say(False, "; ".join(f"{n}: you have {as_int(answer[n], 'a count'):,}, but "
                                    f"{formula[n]}" + _bias_note(answer[n], layers[n]) for n in wrong) + ".")
    mine = as_int(answer, "a parameter count")
    if mine == total:
        return say(True, f"{total:,} parameters, most of them in fc1: {formula['fc1']}.")
    biases = {n: m.bias.numel() for n, m in layers.items()}
    diff = total - mine
    if diff == sum(biases.values()):
        why = f"you left out the biases, one per output unit or channel: {sum(biases.values())} in all"
    elif diff in biases.values():
        name = next(n for n, b in biases.items() if b == diff)
        why = f"you left out {name}'s {diff} biases: {formula[name]}"
    elif diff in per_layer.values():
        name = next(n for n, c in per_layer.items() if c == diff)
        why = f"you left out {name}: {formula[name]}"
    else:
        why = "compare layer by layer: " + "; ".join(f"{n} {formula[n]}" for n in LENET_LAYERS)
    return say(False, f"the count is {total:,}, you have {mine:,} (off by {diff:+,}): {why}.")


def _bias_note(mine, layer: nn.Module) -> str:
    if as_int(mine, "a count") == count(layer) - layer.bias.numel():
        return f" (you left out the {layer.bias.numel()} biases)"
    return ""


@check("compute", "00", "give the parameter count of notebook 00's MLP (784 -> 256 -> 128 -> 10) as an int.")
def check_mlp_params(answer) -> bool:
    sizes = [28 * 28, 256, 128, 10]
    layers = [nn.Linear(a, b, device="meta") for a, b in zip(sizes, sizes[1:])]
    total = sum(count(layer) for layer in layers)
    terms = " + ".join(f"({a} + 1)*{b}" for a, b in zip(sizes, sizes[1:]))
    mine = as_int(answer, "a parameter count")
    lenet = count(lenet5())
    if mine == total:
        return say(True, f"{terms} = {total:,}: {total / lenet:.1f} times LeNet-5's {lenet:,}, "
                         "nearly all in the first layer, which connects every pixel to every unit.")
    biases = sum(sizes[1:])
    why = (f"you left out the {biases} biases" if total - mine == biases
           else f"one weight per input per unit plus one bias per unit: {terms} = {total:,}")
    return say(False, f"you have {mine:,}; {why}.")


@check("build", "00", "write LeNet-5 (conv 6@5x5 pad 2, pool, conv 16@5x5, pool, fc 120, 84, 10, "
                      "ReLU after each hidden layer) and pass the model (or its class).")
def check_lenet(answer) -> bool:
    reference = lenet5().eval()
    mine = instantiate(answer).eval()
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    mistake = first_shape_mistake(reference, mine, x, (nn.Conv2d, nn.MaxPool2d, nn.Linear))
    if mistake:
        return say(False, mistake)
    if count(mine) != count(reference):
        return say(False, f"your net has {count(mine):,} parameters, LeNet-5 {count(reference):,}; "
                          "compare the layer sizes (and biases) with the layer table in section 5.")
    copy_weights(reference, mine)
    ok, message = compare_outputs(reference, mine, x)
    if not ok:
        return say(False, message + " Check where the ReLUs sit: after each conv and each hidden "
                                    "fc layer, none after the last.")
    return say(True, f"same shapes, {count(mine):,} parameters and the same outputs as "
                     "deepnets.models.lenet5 with the same weights.")


def _image_keys(images: torch.Tensor) -> torch.Tensor:
    """One int64 per image (a random linear hash of its 784 bytes): equal images, equal keys."""
    flat = images.reshape(len(images), -1).contiguous()
    words = flat.view(torch.int64)
    weights = torch.randint(-2 ** 62, 2 ** 62, (words.shape[1],), generator=torch.Generator().manual_seed(1))
    return (words * weights).sum(1)


@check("build", "00", "draw 100 images of each class for a bench run and pass (images, labels).")
def check_bench_subset(answer, per_class: int = 100) -> bool:
    if callable(answer):              # a function that draws the subset
        answer = run(answer)
    try:
        images, labels = answer
    except (TypeError, ValueError):
        raise LearnerError(f"pass a pair (images, labels); you gave {type(answer).__name__}.") from None
    if not (isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and images.shape[1:] == (28, 28)):
        raise LearnerError("images should be the uint8 [N, 28, 28] tensor the split holds, "
                           "as stratified_subset returns it.")
    counts = torch.bincount(labels, minlength=len(CLASSES)).tolist()
    if set(counts) != {per_class}:
        return say(False, f"the counts per class are {counts}: a bench subset is stratified, "
                          f"{per_class} of every class (deepnets.stratified_subset).")
    split = load_fashion_mnist().split(get_profile("full"))
    train_keys, val_keys = set(_image_keys(split.train_images).tolist()), set(_image_keys(split.val_images).tolist())
    keys = _image_keys(images).tolist()
    leaked = sum(k in val_keys and k not in train_keys for k in keys)
    foreign = sum(k not in val_keys and k not in train_keys for k in keys)
    if leaked:
        return say(False, f"{leaked} of your {len(keys)} images are validation images: you drew from "
                          "all 60,000 training images (ds.train_images). Draw from split.train_images, "
                          "so that every choice made on the validation images stays honest.")
    if foreign:
        return say(False, f"{foreign} of your images are not training images at all (test images?). "
                          "Draw from split.train_images.")
    return say(True, f"{per_class} images of each class, all from the training split: none of the "
                     "validation images, which stay unseen until a choice is made on them.")


@check("experiment", "00", "train with val_batches, then give the epoch (counted from 1) you would "
                           "stop at: check_best_epoch(epoch, history).")
def check_best_epoch(answer, history=None) -> bool:
    if history is None or not hasattr(history, "val_acc"):
        raise LearnerError("pass the run's History too: check_best_epoch(epoch, history).")
    if not history.val_acc:
        return say(False, "the run has no validation accuracies: pass val_batches to fit, so "
                          "the choice can be made on images the net does not train on.")
    epoch = as_int(answer, "an epoch")
    val, train = list(history.val_acc), list(history.train_acc)
    best_val = max(val)
    chosen = [e + 1 for e, v in enumerate(val) if v == best_val]
    if epoch in chosen:
        return say(True, f"epoch {epoch} has the highest validation accuracy, {best_val:.2%}; "
                         "the test images are still unseen and will be scored once, at the end.")
    if 0 <= epoch < len(val) and epoch + 1 in chosen:
        return say(False, f"epochs are counted from 1 (the printout's 'epoch 1/..'): index {epoch} "
                          f"of val_acc is epoch {epoch + 1}.")
    if train and epoch == train.index(max(train)) + 1:
        return say(False, f"epoch {epoch} has the best training accuracy; the choice is made on "
                          f"validation accuracy, best at epoch {chosen[0]} ({best_val:.2%}).")
    if epoch == len(val):
        return say(False, f"the last epoch is not the best one on validation: epoch {chosen[0]} "
                          f"({best_val:.2%} against {val[-1]:.2%}).")
    where = (f"epoch {epoch} has validation accuracy {val[epoch - 1]:.2%}" if 1 <= epoch <= len(val)
             else f"the run has epochs 1 to {len(val)}")
    return say(False, f"{where}; the best is epoch {chosen[0]} ({best_val:.2%}).")
