"""The training loop: `fit` trains, `evaluate` and `predict` measure.

One loop for every notebook, written to be read: forward, loss, backward, step.
Around it, what keeps a learner's run safe: a NaN check, a clean stop on Ctrl-C,
and a checkpoint per epoch that `resume=True` picks up exactly where it stopped.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn as nn
from tqdm.auto import tqdm


# Headless runs (make notebooks, CI) set TQDM_DISABLE=1: one printed line per epoch is
# the log, and no progress-bar widgets end up in committed notebooks. tqdm's notebook bar
# ignores that variable by itself, so we honour it here.
HEADLESS = os.environ.get("TQDM_DISABLE", "").lower() in ("1", "true", "yes")


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's random generators (CPU and CUDA)."""
    random.seed(seed)
    torch.manual_seed(seed)  # also seeds every CUDA device


def get_device() -> torch.device:
    """CUDA when a GPU is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class History:
    """Per-epoch measurements of a training run; accuracies are fractions in [0, 1]."""

    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    images_per_sec: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    interrupted: bool = False

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    def to_dict(self) -> dict:
        """Plain lists and numbers, safe for JSON and `torch.load(weights_only=True)`."""
        return asdict(self)


def _check_positive(name: str, value, kind=int) -> None:
    if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}.")


def _save_atomically(obj: dict, path: Path) -> None:
    # Write a temporary file, then rename: a crash mid-write leaves the old checkpoint whole.
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by `fit` (tensors and plain data only: weights_only=True)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_weights(model: nn.Module, state_dict: dict) -> None:
    """Load a state_dict strictly; a mismatch names the keys and shapes that differ."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
             for k, v in own.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing from the checkpoint: {', '.join(missing[:8])}"
                         + (" ..." if len(missing) > 8 else ""))
        if unexpected:
            parts.append(f"not in the model: {', '.join(unexpected[:8])}"
                         + (" ..." if len(unexpected) > 8 else ""))
        if wrong:
            parts.append("shapes differ: " + "; ".join(wrong[:8]) + (" ..." if len(wrong) > 8 else ""))
        raise ValueError("This checkpoint was saved from a different architecture ("
                         + " | ".join(parts) + "). Build the model with the same constructor "
                         "and arguments that saved it.")
    model.load_state_dict(state_dict)


def _check_classes(logits: torch.Tensor, y: torch.Tensor) -> None:
    top = int(y.max())
    if logits.dim() != 2 or logits.shape[1] <= top:
        raise ValueError(f"The model outputs {tuple(logits.shape[1:])} scores per image but the "
                         f"labels go up to {top}: build it with num_classes={top + 1} or more.")


def fit(model: nn.Module, train_batches, val_batches=None, epochs: int = 1,
        optimizer: torch.optim.Optimizer | None = None, scheduler=None,
        loss_fn: nn.Module | None = None, device: str | torch.device | None = None,
        grad_clip: float | None = None, checkpoint: str | os.PathLike | None = None,
        resume: bool = False, verbose: bool = True) -> History:
    """Train `model` for `epochs` passes over `train_batches`; evaluate on `val_batches`.

    Pass validation batches here, never the test set: whatever is watched while training
    (to pick epochs, a learning rate, a recipe) is no longer an unseen test.

    `scheduler.step()` runs after every batch (build schedules in batches, e.g.
    OneCycleLR(total_steps=epochs * len(train_batches))). With `checkpoint`, the state
    after each epoch is saved there; `resume=True` continues from it if it exists.
    """
    _check_positive("epochs", epochs)
    if grad_clip is not None:
        _check_positive("grad_clip", float(grad_clip), float)
    device = torch.device(device) if device is not None else get_device()
    model.to(device, memory_format=torch.channels_last)
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=1e-3)
    for group in optimizer.param_groups:
        if group["lr"] <= 0:
            raise ValueError(f"The learning rate must be positive, got {group['lr']!r}.")
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    history = History()
    start_epoch = 0

    path = Path(checkpoint) if checkpoint is not None else None
    if resume and path is None:
        raise ValueError("resume=True needs checkpoint=<path> to resume from.")
    if resume and path.exists():
        state = load_checkpoint(path)
        load_weights(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
        if state["batches"] is not None:
            train_batches.load_state_dict(state["batches"])
        torch.set_rng_state(state["torch_rng"])
        if torch.cuda.is_available() and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        history = History(**state["history"])
        start_epoch = state["epoch"]
        if verbose:
            print(f"Resumed from {path.name} after epoch {start_epoch}.")

    epoch = start_epoch
    try:
        for epoch in range(start_epoch, epochs):
            model.train()
            t0 = time.perf_counter()
            loss_sum, correct, seen = 0.0, 0, 0
            bar = tqdm(train_batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                       disable=not verbose or HEADLESS)
            for step, (x, y) in enumerate(bar):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                logits = model(x)
                if step == 0 and epoch == start_epoch:
                    _check_classes(logits, y)
                loss = loss_fn(logits, y)
                if not torch.isfinite(loss):
                    lr = optimizer.param_groups[0]["lr"]
                    raise FloatingPointError(
                        f"The loss became {loss.item()} at epoch {epoch + 1}, batch {step + 1}: "
                        f"training diverged. Lower the learning rate (it was {lr:.3g}), or clip "
                        f"gradients with grad_clip=1.0.")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if grad_clip is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
            seconds = time.perf_counter() - t0
            history.train_loss.append(loss_sum / seen)
            history.train_acc.append(correct / seen)
            history.lr.append(optimizer.param_groups[0]["lr"])
            history.images_per_sec.append(seen / seconds)
            if val_batches is not None:
                val_loss, val_acc = evaluate(model, val_batches, device, loss_fn)
            else:
                val_loss, val_acc = float("nan"), float("nan")
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
            history.epoch_seconds.append(time.perf_counter() - t0)
            if verbose:
                print(f"epoch {epoch + 1:>2}/{epochs}  train loss {history.train_loss[-1]:.4f} "
                      f"acc {history.train_acc[-1]:.2%}  val loss {val_loss:.4f} "
                      f"acc {val_acc:.2%}  {history.images_per_sec[-1]:,.0f} img/s  "
                      f"{history.epoch_seconds[-1]:.1f} s")
            if path is not None:
                _save_atomically({
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else None,
                    "batches": train_batches.state_dict() if hasattr(train_batches, "state_dict") else None,
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                    "history": history.to_dict(),
                    "epoch": epoch + 1,
                }, path)
    except KeyboardInterrupt:
        history.interrupted = True
        kept = f"; the checkpoint {path.name} holds the last finished epoch" if path else ""
        print(f"Training stopped by you during epoch {epoch + 1}: returning the history of "
              f"{history.epochs} finished epoch(s){kept}.")
    return history


@torch.inference_mode()
def evaluate(model: nn.Module, batches, device: str | torch.device | None = None,
             loss_fn: nn.Module | None = None) -> tuple[float, float]:
    """Mean loss and accuracy of `model` over `batches`, in eval mode."""
    device = torch.device(device) if device is not None else get_device()
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        logits = model(x)
        loss_sum += loss_fn(logits, y).item() * len(y)
        correct += (logits.argmax(1) == y).sum().item()
        seen += len(y)
    model.train(was_training)
    return loss_sum / seen, correct / seen


@torch.inference_mode()
def predict(model: nn.Module, batches, device: str | torch.device | None = None
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Predicted classes and true labels for every image in `batches` (on the CPU)."""
    device = torch.device(device) if device is not None else get_device()
    was_training = model.training
    model.eval()
    preds, labels = [], []
    for x, y in batches:
        preds.append(model(x.to(device)).argmax(1).cpu())
        labels.append(y.cpu())
    model.train(was_training)
    return torch.cat(preds), torch.cat(labels)
