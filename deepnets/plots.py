"""Plot helpers: training curves, image grids, confusion matrices, filters, feature maps.

Each returns its matplotlib Figure. A notebook asks for the course's look once, with
``plots.use_style()`` (importing this module changes no matplotlib setting).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib
import matplotlib.pyplot as plt
import torch

from deepnets import checks

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from deepnets.train import History

#: The course's look: small, readable figures. Committed notebooks stay light, a projector
#: still reads them.
STYLE = {"figure.dpi": 72, "savefig.dpi": 72, "font.size": 10, "axes.grid": True, "grid.alpha": 0.3}


def use_style() -> None:
    """Set matplotlib to the course's look (``STYLE``) for the rest of the session."""
    matplotlib.rcParams.update(STYLE)


def history(histories: History | Mapping[str, History], metrics: Sequence[str] = ("loss", "acc"),
            title: str = "Training curves") -> Figure:
    """Train (dashed) and validation (solid) loss/accuracy per epoch for one or more runs."""
    if not isinstance(histories, Mapping):
        histories = {"": histories}
    if not histories:
        raise checks.EmptyDataError("histories is empty: there is no run to plot. Pass the History "
                                    "that fit() returned, or {name: history}.")
    for name, h in histories.items():
        if not hasattr(h, "train_loss") or not hasattr(h, "epochs"):
            raise checks.ArgumentTypeError(f"histories must hold what fit() returns (a History), got "
                                           f"{type(h).__name__}{f' for {name!r}' if name else ''}. Pass "
                                           f"history = fit(...) or {{name: history}}.")
        if h.epochs == 0:
            raise checks.EmptyDataError(f"histories{f'[{name!r}]' if name else ''} has no finished epoch "
                                        f"to plot. Train for at least one epoch first.")
    for metric in metrics:
        checks.one_of("metrics", metric, ("loss", "acc", "err"))
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 3.6), squeeze=False)
    labels = {"loss": "cross-entropy loss", "acc": "accuracy (%)", "err": "error (%)"}
    for ax, metric in zip(axes[0], metrics):
        for i, (name, h) in enumerate(histories.items()):
            color = f"C{i}"
            epochs = range(1, h.epochs + 1)
            for split, style in (("train", "--"), ("val", "-")):
                if metric == "err":
                    values = [100 * (1 - a) for a in getattr(h, f"{split}_acc")]
                elif metric == "acc":
                    values = [100 * a for a in getattr(h, f"{split}_acc")]
                else:
                    values = getattr(h, f"{split}_loss")
                if all(math.isnan(v) for v in values):
                    continue
                label = f"{name} {split}".strip()
                ax.plot(epochs, values, style, color=color, marker="o", markersize=3, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(labels[metric])
        ax.set_title(labels[metric].split(" (")[0])
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def _as_images(images: torch.Tensor) -> torch.Tensor:
    images = images.detach().cpu()
    if images.dim() == 4:  # [B, C, H, W]: show the first channel (grey images)
        images = images[:, 0]
    return images.float()


def image_grid(images: torch.Tensor, labels: Sequence[int] | torch.Tensor | None = None,
               classes: Sequence[str] | None = None, preds: Sequence[int] | torch.Tensor | None = None,
               ncols: int = 8, title: str = "Images") -> Figure:
    """A grid of grey images, titled with their class (and prediction, red if wrong)."""
    checks.positive_int("ncols", ncols)
    images = _as_images(images)
    n = len(images)
    if n == 0:
        raise checks.EmptyDataError("images holds no images, so there is nothing to show. Pass at least one.")
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.1 * ncols, 1.3 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r", interpolation="nearest")  # dark clothes on white read well on a projector
        if labels is not None:
            name = classes[int(labels[i])] if classes else str(int(labels[i]))
            if preds is not None:
                guess = classes[int(preds[i])] if classes else str(int(preds[i]))
                wrong = int(preds[i]) != int(labels[i])
                ax.set_title(f"{name}\n→ {guess}", fontsize=7, color="C3" if wrong else "black")
            else:
                ax.set_title(name, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(preds: torch.Tensor, labels: torch.Tensor, classes: Sequence[str],
                     title: str = "Confusion matrix") -> Figure:
    """Counts of (true class, predicted class) on the test images, with per-class accuracy."""
    k = len(classes)
    checks.labels("labels", labels, num_classes=k)
    checks.labels("preds", preds, num_classes=k, count=len(labels))
    if len(labels) == 0:
        raise checks.EmptyDataError("labels and preds are empty: there is nothing to count. Pass the "
                                    "predictions of at least one image (deepnets.predict).")
    counts = torch.bincount(labels.long() * k + preds.long(), minlength=k * k).reshape(k, k)
    fig, ax = plt.subplots(figsize=(6.4, 5.4))
    ax.imshow(counts, cmap="Blues")
    ax.grid(False)
    for i in range(k):
        for j in range(k):
            v = int(counts[i, j])
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > counts.max() / 2 else "black")
    per_class = counts.diag() / counts.sum(1).clamp(min=1)
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), [f"{c} ({100 * a:.0f}%)" for c, a in zip(classes, per_class)], fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class (per-class accuracy)")
    ax.set_title(title)
    fig.tight_layout()
    return fig


def filters(weight: torch.Tensor, title: str = "Learned filters", ncols: int = 16) -> Figure:
    """Conv filters [out, in, kh, kw] as small images (first input channel, or RGB if 3)."""
    checks.positive_int("ncols", ncols)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 4:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise checks.InputError(f"weight must be a conv weight [out, in, kh, kw], got {shape}. Pass "
                                f"e.g. model.features[0].weight.")
    w = weight.detach().cpu().float()
    n = w.shape[0]
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(0.7 * ncols, 0.75 * nrows + 0.5), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        f = w[i]
        if f.shape[0] == 3:
            f = (f - f.min()) / (f.max() - f.min() + 1e-8)
            ax.imshow(f.permute(1, 2, 0), interpolation="nearest")
        else:
            ax.imshow(f[0], cmap="gray", interpolation="nearest")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def feature_maps(maps: torch.Tensor, title: str = "Feature maps", max_maps: int = 16,
                 ncols: int = 8) -> Figure:
    """The first `max_maps` channels of one image's feature maps [C, H, W]."""
    checks.positive_int("max_maps", max_maps)
    checks.positive_int("ncols", ncols)
    if not isinstance(maps, torch.Tensor) or maps.dim() != 3:
        shape = tuple(maps.shape) if isinstance(maps, torch.Tensor) else type(maps).__name__
        raise checks.InputError(f"maps must be one image's feature maps [C, H, W], got {shape}. Pass "
                                f"e.g. features(x)[0] for the first image of a batch.")
    maps = maps.detach().cpu().float()[:max_maps]
    n = len(maps)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.4 * nrows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(maps[i], cmap="viridis", interpolation="nearest")
            ax.set_title(f"ch {i}", fontsize=7)
    fig.suptitle(f"{title} ({maps.shape[-2]}x{maps.shape[-1]} each)")
    fig.tight_layout()
    return fig
