"""Architecture diagrams: a network drawn from the model itself, one box per layer or block.

``architecture_boxes(model, input_size)`` runs the model once on zeros with forward hooks
and returns the boxes in the order the data meets them; ``architecture(...)`` lays those
same boxes out in columns and draws them::

    architecture(models.alexnet_paper(), (1, 3, 227, 227))          # two towers (groups=2)
    architecture(models.resnet50(), (1, 3, 224, 224), expand="layer2.0")
    architecture({"plain": deep_mlp(20), "residual": deep_mlp(20, residual=True)},
                 (1, 1, 28, 28))                                    # panels side by side

Activations, batch norm, dropout and LRN are folded into the box before them (listed
after a "·"), so a box is a layer that transforms the data. Residual blocks are one box
with their shortcut drawn beside it (identity, projection or zero-pad); ``expand`` draws
a block layer by layer, ending in the addition.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
from matplotlib.backends.backend_agg import RendererAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.path import Path

from deepnets import checks
from deepnets.models.resnet import ZeroPadShortcut
from deepnets.summary import count_params

__all__ = ["Box", "architecture", "architecture_boxes"]


@dataclass(frozen=True)
class Box:
    """One drawn layer or block: what it is, what comes out, where it sits in the figure.

    ``towers`` > 1 draws the box as that many side-by-side halves of its channels (a
    grouped convolution and the layers around it); ``mixes_channels`` says whether each
    output sees every input channel, i.e. whether arrows cross between towers.
    ``shortcut`` is "identity", "projection" or "zero-pad" on the box that adds it (a
    whole block, or a block's "Add" when it is expanded), None elsewhere and in plain
    blocks; ``block`` names the residual block a box belongs to.
    """

    name: str
    op: str
    channels: int | None
    out_shape: tuple[int, ...]
    params: int
    followed_by: tuple[str, ...] = ()
    detail: str = ""
    group: str | None = None
    block: str | None = None
    shortcut: str | None = None
    towers: int = 1
    mixes_channels: bool = True
    split_groups: int = 1

    @property
    def kind(self) -> str:
        """E.g. "Conv 3x3/1, 96", "MaxPool 3/2", "Bottleneck", "Linear, 4096"."""
        return self.op if self.channels is None else f"{self.op}, {self.channels}"


# -- which modules become boxes -------------------------------------------------------

_FOLDED = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid,
           nn.Softplus, nn.Mish, nn.Hardswish, nn.PReLU, nn.modules.batchnorm._BatchNorm,
           nn.LayerNorm, nn.GroupNorm, nn.Dropout, nn.Dropout2d, nn.LocalResponseNorm)
_POOLS = (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)


def _is_block(m: nn.Module) -> bool:
    # ResNet-style blocks carry `downsample` (ours and torchvision's); the deep MLP's carry
    # a boolean `residual`.
    return hasattr(m, "downsample") or isinstance(getattr(m, "residual", None), bool)


def _shortcut_kind(block: nn.Module) -> str | None:
    if getattr(block, "residual", True) is False:
        return None  # a plain net's block: same layers, nothing added
    down = getattr(block, "downsample", None)
    if down is None:
        return "identity"
    return "zero-pad" if isinstance(down, ZeroPadShortcut) else "projection"


def _pair(v) -> tuple[int, int]:
    return (v[0], v[1]) if isinstance(v, (tuple, list)) else (v, v)


def _folded_label(m: nn.Module) -> str | None:
    if isinstance(m, nn.modules.batchnorm._BatchNorm):
        return "BN"
    if isinstance(m, nn.LocalResponseNorm):
        return "LRN"
    if isinstance(m, (nn.Dropout, nn.Dropout2d)):
        return f"Dropout {m.p:g}"
    if isinstance(m, _FOLDED):
        return type(m).__name__
    return None


def _describe(m: nn.Module) -> tuple[str, int | None, bool, int]:
    """(op, output channels, mixes channels, groups) of a layer that gets its own box."""
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        k, s = _pair(m.kernel_size), _pair(m.stride)
        kernel = f"{k[0]}" if isinstance(m, nn.Conv1d) else f"{k[0]}x{k[1]}"
        return f"Conv {kernel}/{s[0]}", m.out_channels, m.groups == 1, m.groups
    if isinstance(m, nn.Linear):
        return "Linear", m.out_features, True, 1
    if isinstance(m, _POOLS):
        kind = "MaxPool" if "Max" in type(m).__name__ else "AvgPool"
        return f"{kind} {_pair(m.kernel_size)[0]}/{_pair(m.stride or m.kernel_size)[0]}", None, False, 1
    if isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        size = _pair(m.output_size)
        kind = "AvgPool" if "Avg" in type(m).__name__ else "MaxPool"
        return ("Global" + kind if size == (1, 1) else f"Adaptive{kind} {size[0]}x{size[1]}"), None, False, 1
    if isinstance(m, nn.Flatten):
        return "Flatten", None, False, 1
    return type(m).__name__, None, True, 1


def _weighted(m: nn.Module) -> list[nn.Module]:
    return [c for c in m.modules() if isinstance(c, (nn.Conv1d, nn.Conv2d, nn.Linear))]


def _block_box(name: str, block: nn.Module, shape: tuple[int, ...], params: int) -> Box:
    down = getattr(block, "downsample", None)
    shortcut_layers = set(_weighted(down)) if down is not None else set()
    main = [c for c in _weighted(block) if c not in shortcut_layers]
    shortcut = _shortcut_kind(block)
    if len(main) == 1:
        # One weighted layer (the deep MLP's Linear -> act): draw it as that layer.
        op, channels, _, _ = _describe(main[0])
        folded = tuple(label for c in block.modules() if c is not block
                       and (label := _folded_label(c)) is not None)
        return Box(name, op, channels, shape, params, folded, group=_group_of(name),
                   block=name, shortcut=shortcut)
    steps = []
    for c in main:
        if isinstance(c, nn.Linear):
            steps.append(f"fc, {c.out_features}")
        else:
            k, s = _pair(c.kernel_size), _pair(c.stride)[0]
            steps.append(f"{k[0]}x{k[1]}{'' if s == 1 else f'/{s}'}, {c.out_channels}")
    return Box(name, type(block).__name__, None, shape, params, detail=" → ".join(steps),
               group=_group_of(name), block=name, shortcut=shortcut)


def _group_of(name: str) -> str | None:
    # Boxes inside a top-level container (a ResNet stage, VGG's `features`) share a frame.
    return name.split(".")[0] if "." in name else None


def _units(model: nn.Module, expand: set[str]) -> tuple[dict[str, nn.Module], dict[str, nn.Module]]:
    """Modules that become boxes (leaves and collapsed blocks), and the expanded blocks."""
    units: dict[str, nn.Module] = {}
    expanded: dict[str, nn.Module] = {}

    def walk(module: nn.Module, prefix: str) -> None:
        for child_name, child in module.named_children():
            path = f"{prefix}.{child_name}" if prefix else child_name
            if _is_block(child) and path not in expand:
                units[path] = child
            elif not list(child.children()):
                units[path] = child
            else:
                if _is_block(child):
                    expanded[path] = child
                walk(child, path)

    if _is_block(model):
        expanded[""] = model  # a block on its own is drawn layer by layer
    if list(model.children()):
        walk(model, "")
    else:
        units[""] = model
    return units, expanded


# -- running the model once ----------------------------------------------------------

def _check_model(model: object, input_size: object) -> tuple[int, ...]:
    if not isinstance(model, nn.Module):
        raise checks.ArgumentTypeError(f"architecture() draws a torch.nn.Module, but got a "
                        f"{type(model).__name__} ({str(model)[:60]!r}). Pass the network "
                        f"itself, e.g. architecture(models.resnet50(), (1, 3, 224, 224)).")
    if (not isinstance(input_size, (tuple, list, torch.Size)) or not input_size
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0
                       for s in input_size)):
        raise checks.ArgumentValueError(f"input_size must be the shape of one input batch, a tuple of "
                         f"positive ints such as (1, 3, 224, 224), but got {input_size!r}. "
                                        f"Pass the shape of one batch, batch dimension first.")
    n_values = 1
    for side in input_size:
        n_values *= side
    checks.fits_in_memory("input_size", 4 * n_values, f"An input of size {tuple(input_size)}")
    first = next((m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d))), None)
    dims = {nn.Conv1d: 3, nn.Conv2d: 4}.get(type(first))
    if dims is not None and len(input_size) != dims:
        # Convolutions also accept an input without its batch dimension, and would then
        # report every shape one dimension short.
        example = ((1, *input_size) if len(input_size) == dims - 1
                   else (1, first.in_channels) + (224,) * (dims - 2))
        raise checks.ArgumentValueError(f"input_size must be (batch, channels{', height, width' if dims == 4 else ', length'}) "
                         f"for a net that starts with a {type(first).__name__}, but got "
                         f"{tuple(input_size)}. Include the batch dimension, e.g. {example}.")
    return tuple(input_size)


def _run_failed(model: nn.Module, input_size: tuple[int, ...], err: Exception) -> checks.InputError:
    first = next(((n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))), None)
    hint = ""
    if first is not None:
        n, m = first
        wants = (f"{m.in_channels} input channels" if not isinstance(m, nn.Linear)
                 else f"{m.in_features} input features")
        hint = f" Its first layer, {n or type(m).__name__} ({m}), expects {wants}."
    return checks.InputError(f"{type(model).__name__} cannot run on an input of size {input_size}: "
                      f"{str(err).rstrip('.')}.{hint} Pass the size the model was built for as "
                      f"(batch, channels, height, width), e.g. (1, 3, 224, 224) for the "
                      f"ImageNet nets, (1, 3, 227, 227) for alexnet_paper(), (1, 1, 28, 28) "
                      f"for the Fashion-MNIST ones.")


def _state(t: torch.Tensor) -> tuple[int, int]:
    # Storage and version counter: an addition makes a new tensor (`out + identity`) or
    # bumps the version (torchvision's `out += identity`); an in-place ReLU keeps the
    # storage, and its bumped version is recorded after it ran.
    return t.data_ptr(), t._version


def _first_tensor(x) -> torch.Tensor | None:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, (tuple, list)) and x and isinstance(x[0], torch.Tensor):
        return x[0]
    return None


def _trace(model: nn.Module, input_size: tuple[int, ...], units: dict[str, nn.Module],
           expanded: dict[str, nn.Module]) -> list[tuple]:
    """Events in the order the data meets them: ("unit", name, shape) and ("add", block, shape)."""
    events: list[tuple] = []
    last: dict[str, tuple[int, int] | None] = {}   # expanded block -> its main path's output
    added: dict[str, bool] = {}

    def owner(name: str) -> str | None:
        # The innermost expanded block around `name`, if `name` is on its main path.
        for block in sorted(expanded, key=len, reverse=True):
            if block == "" or name.startswith(block + "."):
                rest = name[len(block) + 1:] if block else name
                return None if rest.split(".")[0] == "downsample" else block
        return None

    def in_shortcut(name: str) -> bool:
        return any(name.startswith(f"{b}.downsample" if b else "downsample") for b in expanded)

    def add_if_changed(block: str, t: torch.Tensor) -> None:
        if not added[block] and _shortcut_kind(expanded[block]) and _state(t) != last[block]:
            added[block] = True
            events.append(("add", block, tuple(t.shape[1:])))

    def unit_pre(name):
        block = owner(name)

        def hook(module, args):
            t = _first_tensor(args)
            if block is not None and t is not None:
                add_if_changed(block, t)
        return hook

    def unit_post(name):
        block = owner(name)

        def hook(module, args, output):
            t = _first_tensor(output)
            if in_shortcut(name) or t is None:
                return  # the shortcut's own layers are drawn as the bypass arrow
            events.append(("unit", name, tuple(t.shape[1:])))
            if block is not None:
                last[block] = _state(t)
        return hook

    def block_pre(name):
        def hook(module, args):
            t = _first_tensor(args)
            last[name] = _state(t) if t is not None else None
            added[name] = False
        return hook

    def block_post(name):
        def hook(module, args, output):
            t = _first_tensor(output)
            if _shortcut_kind(module) and not added[name] and t is not None:
                added[name] = True
                events.append(("add", name, tuple(t.shape[1:])))
        return hook

    handles = []
    for name, m in units.items():
        handles.append(m.register_forward_pre_hook(unit_pre(name)))
        handles.append(m.register_forward_hook(unit_post(name)))
    for name, m in expanded.items():
        handles.append(m.register_forward_pre_hook(block_pre(name)))
        handles.append(m.register_forward_hook(block_post(name)))
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()  # BatchNorm with a batch of one, and no dropout
    try:
        with torch.no_grad():
            model(torch.zeros(input_size, device=device))
    except Exception as err:  # any failure here is the input size not fitting the model
        raise _run_failed(model, input_size, err) from err
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return events


def architecture_boxes(model: nn.Module, input_size: Sequence[int], *,
                       expand: str | Iterable[str] = ()) -> list[Box]:
    """The boxes `architecture` draws, in the order the data meets them."""
    input_size = _check_model(model, input_size)
    expand = {expand} if isinstance(expand, str) else set(expand)
    blocks = [n for n, m in model.named_modules() if n and _is_block(m)]
    unknown = sorted(expand - set(blocks))
    if unknown:
        known = ", ".join(blocks[:6]) + (", ..." if len(blocks) > 6 else "") or "none"
        raise checks.ArgumentValueError(f"expand names blocks this {type(model).__name__} does not have: "
                         f"{unknown}. Its residual blocks are: {known}; pass one of those "
                         f"(e.g. expand={blocks[0]!r})." if blocks else
                         f"expand names blocks this {type(model).__name__} does not have: "
                         f"{unknown}. It has no residual blocks to expand; drop expand=.")
    units, expanded = _units(model, expand)
    events = _trace(model, input_size, units, expanded)

    raw: list[Box] = []
    counted: set[int] = set()   # a module called twice (a shared ReLU) owns its parameters once
    for event in events:
        if event[0] == "add":
            _, block, shape = event
            module = expanded[block]
            down = getattr(module, "downsample", None)
            params = count_params(down) if down is not None else 0
            raw.append(Box(f"{block}.add" if block else "add", "Add", None, shape, params,
                           group=_group_of(block) if block else None, block=block,
                           shortcut=_shortcut_kind(module), mixes_channels=False))
            continue
        _, name, shape = event
        m = units[name]
        params = 0 if id(m) in counted else count_params(m)
        counted.add(id(m))
        block = next((b for b in sorted(expanded, key=len, reverse=True)
                      if b == "" or name.startswith(b + ".")), None)
        if name in units and _is_block(m):
            raw.append(_block_box(name, m, shape, params))
            continue
        if isinstance(m, nn.Identity):
            continue  # e.g. the CIFAR stem's "no max-pool", AlexNet-paper's "no avgpool"
        label = _folded_label(m)
        prev = raw[-1] if raw else None
        if (label is not None and prev is not None and prev.group == _group_of(name)
                and prev.block == block and not (prev.shortcut and prev.op != "Add")):
            raw[-1] = replace(prev, followed_by=prev.followed_by + (label,), out_shape=shape,
                              params=prev.params + params)
            continue
        if label is not None:
            raw.append(Box(name, label, None, shape, params, group=_group_of(name),
                           block=block, mixes_channels=False))
            continue
        op, channels, mixes, groups = _describe(m)
        raw.append(Box(name, op, channels, shape, params, group=_group_of(name), block=block,
                       mixes_channels=mixes, split_groups=groups))
    return _with_towers(_with_stages(raw))


def _with_stages(boxes: list[Box]) -> list[Box]:
    """Split a container holding several pools (VGG's, AlexNet's `features`) into stages
    that each end with a pool, as the papers' tables group them."""
    out = list(boxes)
    for group in dict.fromkeys(b.group for b in boxes if b.group):
        members = [i for i, b in enumerate(boxes) if b.group == group]
        pools = [i for i in members if "Pool" in boxes[i].op and not boxes[i].op.startswith(("Global", "Adaptive"))]
        if len(pools) < 2:
            continue
        stage = 1
        for i in members:
            out[i] = replace(out[i], group=f"{group}, stage {stage}")
            if i in pools:
                stage += 1
    return out


def _with_towers(boxes: list[Box]) -> list[Box]:
    """Towers for grouped convolutions: a grouped conv's output is split, a channel-wise
    layer (pool, activation) keeps the split it gets, and a full layer whose output goes
    straight into a grouped conv is drawn split too (the paper's conv1 and conv3)."""
    n = len(boxes)
    split_out = [1] * n
    for i, b in enumerate(boxes):
        if b.split_groups > 1:
            split_out[i] = b.split_groups
        elif not b.mixes_channels and i > 0:
            split_out[i] = split_out[i - 1]
    needed = [1] * n
    for i in range(n - 2, -1, -1):
        nxt = boxes[i + 1]
        if nxt.split_groups > 1:
            needed[i] = nxt.split_groups
        elif not nxt.mixes_channels:
            needed[i] = needed[i + 1]
    return [replace(b, towers=max(split_out[i], needed[i])) for i, b in enumerate(boxes)]


# -- drawing -------------------------------------------------------------------------

_FILL = {"conv": "#dbe9f6", "pool": "#fde2c8", "linear": "#d9f0d3", "block": "#e8def3",
         "add": "#eeeeee", "other": "#f4f4f4"}
_EDGE = {"conv": "#4a7bb7", "pool": "#d9822b", "linear": "#3c9a4a", "block": "#7b5ea7",
         "add": "#777777", "other": "#888888"}
_SHORTCUT_COLOR = {"identity": "#444444", "projection": "#c0392b", "zero-pad": "#1f8a70"}

# Lengths in inches: the axes span the figure with 1 data unit = 1 inch, so text in points
# and boxes in inches keep their sizes whatever the figure's.
_GAP = 0.3           # between rows: an arrow, or a ⊕ and an arrow
_FRAME_GAP = 0.24    # extra where a frame starts or ends: its label and a margin
_COL_GAP = 0.4
_LANE = 0.36         # right of the boxes: the shortcut's arrow and its (upright) label
_PAD = 0.07


def _family(b: Box) -> str:
    if b.op == "Add":
        return "add"
    if b.op.startswith("Conv"):
        return "conv"
    if "Pool" in b.op:
        return "pool"
    if b.op == "Linear":
        return "linear"
    return "block" if b.detail else "other"


def _human(n: int) -> str:
    if n < 1000:
        return str(n)
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= scale:
            v = n / scale
            return f"{v:.0f}{unit}" if v >= 100 else f"{v:.1f}{unit}"
    return str(n)


def _shape_text(shape: tuple[int, ...]) -> str:
    return "×".join(str(s) for s in shape)


def _lines(b: Box, towers_split: bool) -> list[tuple[str, str]]:
    """Text lines of one box (or one tower of it), each (text, style)."""
    t = b.towers if towers_split else 1
    channels = None if b.channels is None else b.channels // t
    kind = b.op if channels is None else f"{b.op}, {channels}"
    shape = (b.out_shape[0] // t,) + b.out_shape[1:] if b.out_shape else b.out_shape
    stats = _shape_text(shape) + (f" · {_human(b.params // t)}" if b.params else "")
    ops = " · ".join(b.followed_by)
    if b.op == "Add":
        kind = "Add ⊕"
    lines = []
    if ops and not towers_split:
        lines.append((f"{kind} · {ops}", "kind"))
    else:
        lines.append((kind, "kind"))
        if ops:
            lines.append((ops, "ops"))
    if b.detail:
        lines.append((b.detail, "detail"))
    lines.append((stats, "stats"))
    return lines


class _Measure:
    """Text widths in inches, from the same Agg renderer that draws the PNG."""

    def __init__(self, fontsize: float):
        self.renderer = RendererAgg(10, 10, 72)
        self.fonts = {"kind": FontProperties(size=fontsize, weight="bold"),
                      "ops": FontProperties(size=fontsize - 1),
                      "detail": FontProperties(size=fontsize - 1),
                      "stats": FontProperties(size=fontsize - 1),
                      "label": FontProperties(size=fontsize - 1, weight="bold")}

    def width(self, text: str, style: str) -> float:
        w, _, _ = self.renderer.get_text_width_height_descent(text, self.fonts[style], ismath=False)
        return w / 72


@dataclass
class _Panel:
    label: str | None
    boxes: list[Box]
    input_size: tuple[int, ...]
    total_params: int
    model_name: str


def _atoms(boxes: list[Box]) -> list[list[int]]:
    # Boxes of one expanded block stay in one column, so its shortcut stays beside it.
    atoms: list[list[int]] = []
    for i, b in enumerate(boxes):
        prev = boxes[i - 1] if i else None
        if prev is not None and b.block is not None and b.block == prev.block and b.op != "Add" or (
                prev is not None and b.op == "Add" and prev.block == b.block):
            atoms[-1].append(i)
        else:
            atoms.append([i])
    return atoms


def _columns(boxes: list[Box], rows: int) -> list[list[int]]:
    """Greedy packing into columns of at most `rows` boxes; a frame moves whole to the next
    column when it fits there and not here, and is split only when longer than a column."""
    segments: list[list[list[int]]] = []
    for atom in _atoms(boxes):
        g = boxes[atom[0]].group
        if segments and g is not None and boxes[segments[-1][0][0]].group == g:
            segments[-1].append(atom)
        else:
            segments.append([atom])
    columns: list[list[int]] = [[]]
    for seg in segments:
        size = sum(len(a) for a in seg)
        if columns[-1] and len(columns[-1]) + size > rows and size <= rows:
            columns.append([])
        for atom in seg:
            if columns[-1] and len(columns[-1]) + len(atom) > rows:
                columns.append([])
            columns[-1].extend(atom)
    return columns




class _Layout:
    """Positions (inches, y down) of every box of one panel, given its columns."""

    def __init__(self, panel: _Panel, columns: list[list[int]], box_w: float, box_h: float,
                 lane: float, x0: float, y0: float, expanded: set):
        self.panel, self.columns, self.box_w, self.box_h = panel, columns, box_w, box_h
        self.col_w = box_w + lane
        self.x0, self.y0 = x0, y0
        self.expanded = expanded
        self.pos: dict[int, tuple[float, float]] = {}   # index -> (left, top)
        self.column_of: dict[int, int] = {}
        boxes = panel.boxes
        self.input_h = 0.24
        bottoms = []
        for c, col in enumerate(columns):
            x = x0 + c * (self.col_w + _COL_GAP)
            y = y0 + (self.input_h + _GAP if c == 0 else 0.22)
            for k, i in enumerate(col):
                prev = boxes[col[k - 1]] if k else None
                # Each frame that starts or ends here needs room for its label and margin.
                y += (_GAP if k else 0) + _FRAME_GAP * (
                    (prev.group if prev else None) != boxes[i].group
                    or (prev is None and boxes[i].group is not None)) + _FRAME_GAP * (
                    self._block(prev) != self._block(boxes[i]))
                self.pos[i] = (x, y)
                self.column_of[i] = c
                y += box_h
            bottoms.append(y + 0.45)  # room for a last ⊕, the line to the next column, a frame
        self.width = len(columns) * self.col_w + (len(columns) - 1) * _COL_GAP
        self.bottom = max(bottoms)

    def _block(self, b: Box | None) -> str | None:
        return b.block if b is not None and b.block in self.expanded else None


def architecture(model: nn.Module | Mapping[str, nn.Module],
                 input_size: Sequence[int] | Mapping[str, Sequence[int]], *,
                 title: str | None = None, expand: str | Iterable[str] = (),
                 max_rows: int | None = None, fontsize: float = 8.0) -> Figure:
    """Draw a network (or several, side by side) as boxes from one run of the model.

    Args:
        model: the network, or {panel title: network} to compare several side by side.
        input_size: one input batch's shape, e.g. (1, 3, 224, 224); or {panel title: shape}
            when the networks take different inputs.
        title: drawn above everything.
        expand: names of residual blocks to draw layer by layer (e.g. "layer2.0").
        max_rows: boxes per column before wrapping; None picks a landscape layout.
        fontsize: of the layer names; the rest is a point smaller.

    The figure's ``boxes`` attribute holds what was drawn: the list of ``Box`` from
    ``architecture_boxes``, or {panel title: list} for several models.
    """
    if max_rows is not None:
        checks.positive_int("max_rows", max_rows, fix="Pass None for an automatic layout.")
    models = dict(model) if isinstance(model, Mapping) else {None: model}
    if not models:
        raise checks.ArgumentValueError("architecture() got an empty mapping of models; pass a model or "
                         "{'name': model, ...} with at least one.")
    if isinstance(input_size, Mapping):
        if set(input_size) != set(models):
            raise checks.ArgumentValueError(f"A mapping of input sizes needs one entry per model: models "
                             f"{list(models)}, input sizes {list(input_size)}. Give the same "
                             f"keys, or one input size for all.")
        sizes = dict(input_size)
    else:
        sizes = {label: input_size for label in models}
    expand = [expand] if isinstance(expand, str) else list(expand)
    panels = []
    for label, m in models.items():
        boxes = architecture_boxes(m, sizes[label], expand=expand)
        panels.append(_Panel(label, boxes, tuple(sizes[label]), count_params(m), type(m).__name__))

    measure = _Measure(fontsize)
    line_h = fontsize * 1.3 / 72
    full_w, tower_w, n_lines = 1.6, 0.0, 2
    for p in panels:
        for b in p.boxes:
            lines = _lines(b, False)
            n_lines = max(n_lines, len(lines))
            full_w = max(full_w, max(measure.width(t, s) for t, s in lines) + 2 * _PAD)
            if b.towers > 1:
                tl = _lines(b, True)
                n_lines = max(n_lines, len(tl))
                tower_w = max(tower_w, max(measure.width(t, s) for t, s in tl) + 2 * _PAD)
    box_w = max(full_w, 2 * tower_w + 0.12)
    box_h = n_lines * line_h + 2 * _PAD
    has_shortcut = any(b.shortcut for p in panels for b in p.boxes)
    lane = _LANE if has_shortcut else 0.15
    expanded = set(expand) | {""}

    def layouts_for(rows: int) -> list[_Layout]:
        out, x = [], 0.3
        for p in panels:
            top = 0.15 + (0.3 if title else 0) + (0.3 if any(q.label for q in panels) else 0)
            lay = _Layout(p, _columns(p.boxes, rows), box_w, box_h, lane, x, top, expanded)
            out.append(lay)
            x += lay.width + 0.8
        return out

    if max_rows is None:
        # Aim for a landscape figure about 1.6 times as wide as tall, at most 12 inches wide.
        longest = max(len(p.boxes) for p in panels)
        best = None
        for rows in range(min(longest, 4), longest + 1):
            lays = layouts_for(rows)
            w = sum(lay.width for lay in lays) + 0.8 * (len(lays) - 1) + 0.6
            h = max(lay.bottom for lay in lays) + 0.4
            # A wrap where towers part, join or cross would hide what the figure is for.
            hidden = sum(_changes(lay.panel.boxes, col[0]) for lay in lays for col in lay.columns[1:])
            score = abs(math.log(w / h / 1.6)) + (5 if w > 12.5 else 0) + 0.5 * hidden
            if best is None or score < best[0] - 1e-9:
                best = (score, rows)
        max_rows = best[1]
    layouts = layouts_for(max_rows)
    for lay in layouts:  # one baseline for every panel's parameter count
        lay.bottom = max(other.bottom for other in layouts)
    width = sum(lay.width for lay in layouts) + 0.8 * (len(layouts) - 1) + 0.6
    height = max(lay.bottom for lay in layouts) + 0.25

    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    for lay in layouts:
        _draw_panel(ax, lay, fontsize, line_h, expanded)
    if title:
        ax.text(width / 2, 0.12, title, ha="center", va="top", fontsize=fontsize + 3,
                weight="bold")
    fig.boxes = panels[0].boxes if None in models else {p.label: p.boxes for p in panels}
    return fig


def _changes(boxes: list[Box], i: int) -> bool:
    b, prev = boxes[i], boxes[i - 1]
    return b.towers != prev.towers or (b.towers > 1 and b.mixes_channels)


def _arrow(ax, points: list[tuple[float, float]], color: str = "#333333", lw: float = 0.9,
           head: bool = True) -> None:
    path = Path(points, [Path.MOVETO] + [Path.LINETO] * (len(points) - 1))
    ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>" if head else "-", color=color,
                                 lw=lw, mutation_scale=7, shrinkA=0, shrinkB=0,
                                 joinstyle="miter", zorder=2))


def _tower_centers(lay: _Layout, i: int) -> list[float]:
    left, _ = lay.pos[i]
    t = lay.panel.boxes[i].towers
    w = (lay.box_w - 0.12 * (t - 1)) / t
    return [left + k * (w + 0.12) + w / 2 for k in range(t)]


def _exit_y(lay: _Layout, i: int) -> float:
    # Below a collapsed residual block the path goes through its ⊕.
    _, top = lay.pos[i]
    b = lay.panel.boxes[i]
    return top + lay.box_h + (0.175 if b.shortcut and b.op != "Add" else 0)


def _connect(ax, lay: _Layout, src: list[float], src_y: float, dst_i: int) -> None:
    """Arrows from the towers of one row into the next: straight, crossing, fanning out or merging."""
    b = lay.panel.boxes[dst_i]
    dst = _tower_centers(lay, dst_i)
    dst_y = lay.pos[dst_i][1]
    if len(src) == len(dst) and not (b.mixes_channels and len(dst) > 1):
        for s, d in zip(src, dst):
            _arrow(ax, [(s, src_y), (d, dst_y)])
    elif len(src) == 1 or len(dst) == 1:
        # One path parting into towers, or towers joining: right angles, like a bus.
        turn = dst_y - 0.08 if len(src) == 1 else src_y + 0.1
        for s in src:
            for d in dst:
                _arrow(ax, [(s, src_y), (s, turn), (d, turn), (d, dst_y)])
    else:
        for s in src:   # every tower reads every tower: the paper's conv3
            for d in dst:
                _arrow(ax, [(s, src_y), (d, dst_y)], color="#333333" if s == d else "#777777",
                       lw=0.9 if s == d else 0.7)


def _draw_panel(ax, lay: _Layout, fontsize: float, line_h: float,
                expanded: set) -> None:
    boxes = lay.panel.boxes
    # Frames first, beneath the boxes: stages (shaded), then expanded blocks (dashed).
    seen: set[str] = set()
    for col in lay.columns:
        runs: list[list[int]] = []
        for i in col:
            if boxes[i].group is None:
                continue
            if runs and boxes[runs[-1][-1]].group == boxes[i].group and runs[-1][-1] == i - 1:
                runs[-1].append(i)
            else:
                runs.append([i])
        for run in runs:
            group = boxes[run[0]].group
            left, top = lay.pos[run[0]]
            bottom = _exit_y(lay, run[-1]) + 0.08 + (0.1 if lay._block(boxes[run[-1]]) else 0)
            top -= _FRAME_GAP * (1 + (lay._block(boxes[run[0]]) is not None)) - 0.02
            ax.add_patch(FancyBboxPatch((left - 0.1, top), lay.col_w + 0.08 - 0.05, bottom - top,
                                        boxstyle="round,pad=0,rounding_size=0.06",
                                        fc="#f3f3f3", ec="#cccccc", lw=0.6, zorder=0))
            ax.text(left - 0.04, top + 0.04, group + (" (cont.)" if group in seen else ""),
                    ha="left", va="top", fontsize=fontsize - 1, weight="bold", color="#555555",
                    zorder=1)
            seen.add(group)
    blocks = dict.fromkeys(b.block for b in boxes if b.block in expanded)
    for block in blocks:
        members = [i for i, b in enumerate(boxes) if b.block == block]
        left, top = lay.pos[members[0]]
        bottom = lay.pos[members[-1]][1] + lay.box_h + 0.06
        top -= _FRAME_GAP - 0.06
        ax.add_patch(Rectangle((left - 0.06, top), lay.col_w - 0.02, bottom - top, fill=False,
                               ec="#7b5ea7", lw=0.8, ls=(0, (4, 2)), zorder=1))
        if block:  # a block drawn on its own needs no name: it is the whole figure
            ax.text(left - 0.02, top + 0.03, block, ha="left", va="top",
                    fontsize=fontsize - 1, style="italic", color="#7b5ea7", zorder=1)

    if lay.panel.label:
        ax.text(lay.x0 + lay.width / 2, lay.y0 - 0.08, lay.panel.label, ha="center",
                va="bottom", fontsize=fontsize + 2, weight="bold")

    # The input, as a small box above the first layer.
    first = lay.columns[0][0]
    in_x = lay.pos[first][0] + lay.box_w / 2
    in_top = lay.y0
    ax.add_patch(FancyBboxPatch((in_x - 0.7, in_top), 1.4, lay.input_h,
                                boxstyle="round,pad=0,rounding_size=0.05", fc="white",
                                ec="#888888", lw=0.7, zorder=3))
    ax.text(in_x, in_top + lay.input_h / 2, "input " + _shape_text(lay.panel.input_size[1:]),
            ha="center", va="center", fontsize=fontsize - 0.5, zorder=4)
    _connect(ax, lay, [in_x], in_top + lay.input_h, first)

    for c, col in enumerate(lay.columns):
        for k, i in enumerate(col):
            _draw_box(ax, lay, i, fontsize, line_h)
            if k + 1 < len(col):
                _connect(ax, lay, _exits(lay, i), _exit_y(lay, i), col[k + 1])
        if c + 1 < len(lay.columns):
            _wrap(ax, lay, col, lay.columns[c + 1][0])
    for i, b in enumerate(boxes):
        if b.shortcut:
            _draw_shortcut(ax, lay, i, fontsize)

    total = f"{lay.panel.total_params:,} parameters"
    ax.text(lay.x0 + lay.width / 2, lay.bottom, total, ha="center", va="top",
            fontsize=fontsize - 0.5, color="#555555")


def _wrap(ax, lay: _Layout, col: list[int], nxt: int) -> None:
    """From the bottom of one column to the top of the next, the towers travelling as one
    line and parting again above the next box, as they would have without the wrap."""
    last = col[-1]
    src = _exits(lay, last)
    y = _exit_y(lay, last)
    below = max(_exit_y(lay, j) for j in col) + 0.16
    gap_x = lay.pos[last][0] + lay.col_w + _COL_GAP / 2 - 0.05
    above = lay.pos[nxt][1] - _FRAME_GAP - 0.12
    shifted = [x - lay.pos[last][0] + lay.pos[nxt][0] for x in src]
    for x in src:
        _arrow(ax, [(x, y), (x, below)], color="#555555", lw=0.8, head=False)
    _arrow(ax, [(min(src), below), (gap_x, below), (gap_x, above), (max(shifted), above)],
           color="#555555", lw=0.8, head=False)
    _connect(ax, lay, shifted, above, nxt)


def _exits(lay: _Layout, i: int) -> list[float]:
    b = lay.panel.boxes[i]
    if b.shortcut and b.op != "Add":
        return [lay.pos[i][0] + lay.box_w / 2]  # through the ⊕
    return _tower_centers(lay, i)


def _draw_box(ax, lay: _Layout, i: int, fontsize: float, line_h: float) -> None:
    b = lay.panel.boxes[i]
    left, top = lay.pos[i]
    family = _family(b)
    t = b.towers
    w = (lay.box_w - 0.12 * (t - 1)) / t
    styles = {"kind": dict(fontsize=fontsize, weight="bold", color="#1a1a1a"),
              "ops": dict(fontsize=fontsize - 1, color="#333333"),
              "detail": dict(fontsize=fontsize - 1, color="#333333"),
              "stats": dict(fontsize=fontsize - 1, color="#555555")}
    for k in range(t):
        x = left + k * (w + 0.12)
        ax.add_patch(FancyBboxPatch((x, top), w, lay.box_h,
                                    boxstyle="round,pad=0,rounding_size=0.05",
                                    fc=_FILL[family], ec=_EDGE[family], lw=0.9, zorder=3))
        lines = _lines(b, t > 1)
        y = top + (lay.box_h - len(lines) * line_h) / 2 + line_h / 2
        for text, style in lines:
            ax.text(x + w / 2, y, text, ha="center", va="center", zorder=4, **styles[style])
            y += line_h


def _draw_shortcut(ax, lay: _Layout, i: int, fontsize: float) -> None:
    """The bypass beside a block: from its input, down the lane on the right, into the add."""
    boxes = lay.panel.boxes
    b = boxes[i]
    start = next(j for j, o in enumerate(boxes) if o.block == b.block)
    if lay.column_of[start] != lay.column_of[i]:
        return
    color = _SHORTCUT_COLOR[b.shortcut]
    left, top = lay.pos[start]
    cx = left + lay.box_w / 2
    lane_x = left + lay.box_w + 0.16
    y0 = top - 0.08
    if b.op == "Add":
        end_y = lay.pos[i][1] + lay.box_h / 2
        end = (left + lay.box_w, end_y)
    else:
        end_y = lay.pos[i][1] + lay.box_h + 0.12
        end = (cx + 0.055, end_y)
        ax.add_patch(Circle((cx, end_y), 0.055, fc="white", ec="#333333", lw=0.9, zorder=5))
        ax.plot([cx - 0.035, cx + 0.035], [end_y, end_y], color="#333333", lw=0.9, zorder=6)
        ax.plot([cx, cx], [end_y - 0.035, end_y + 0.035], color="#333333", lw=0.9, zorder=6)
    ax.add_patch(Circle((cx, y0), 0.025, color=color, zorder=5))
    _arrow(ax, [(cx, y0), (lane_x, y0), (lane_x, end_y), end], color=color, lw=1.0)
    ax.text(lane_x + 0.03, (y0 + end_y) / 2, b.shortcut, ha="left", va="center", rotation=90,
            fontsize=fontsize - 1.5, color=color, style="italic", zorder=5)
