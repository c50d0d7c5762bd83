"""The training loop: `fit` trains, `evaluate` and `predict` measure; `python -m deepnets.train`.

One loop for every notebook, written to be read: forward, loss, backward, step.
Around it, what keeps a learner's run safe: a NaN check, a clean stop on Ctrl-C,
and a checkpoint per epoch that `resume=True` picks up exactly where it stopped.

The same `fit` runs the command line (`main`, at the end of this file): any course model,
Fashion-MNIST or your own image folder, one GPU or many processes under torchrun
(see `deepnets.distributed`), mixed precision, a results file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import platform
import random
import shlex
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from deepnets.profiles import Profile
    from deepnets.results import Results

import torch
import torch.nn as nn
from tqdm.auto import tqdm

from deepnets import checks, distributed
from deepnets.checks import CheckpointError  # also importable from here, as before
from deepnets.files import write_atomically

# What fit, evaluate and predict iterate over: Batches, a DataLoader, or any iterable of
# (images, labels) pairs.
Batch = Iterable[tuple[torch.Tensor, torch.Tensor]]


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


def amp_dtype(device: torch.device) -> torch.dtype:
    """The autocast type `amp=True` uses: bf16 where the device has it, else fp16 (older GPUs)."""
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


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


# ---------------------------------------------------------------------------- checkpoints

CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "batches", "torch_rng", "history", "epoch")


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint written by `fit` (tensors and plain data only: weights_only=True)."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"The checkpoint path {path} is a folder. Give a file in it, e.g. {path / 'run.pt'}.")
    if not path.is_file():
        raise CheckpointError(f"There is no checkpoint at {path}. Check the path, or train without "
                              f"resuming to write one there.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, ValueError, OSError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"The checkpoint {path} cannot be read: it is truncated or corrupt (a copy cut short, a "
            f"disk that filled up) or not a checkpoint at all ({type(e).__name__}: {first_line}). "
            f"Delete it to train from scratch, or resume from a good copy.") from e


def load_weights(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Load a state_dict strictly; a mismatch names the keys and shapes that differ."""
    if not isinstance(model, nn.Module):
        raise checks.ArgumentTypeError(f"model must be a torch.nn.Module, got {type(model).__name__}. "
                                       f"Pass the network itself, e.g. lenet5(), not its class or output.")
    if not isinstance(state_dict, Mapping):
        is_path = isinstance(state_dict, (str, os.PathLike))
        got = f"the path {str(state_dict)!r}" if is_path else type(state_dict).__name__
        raise checks.ArgumentTypeError(f"state_dict must be the weights, a dict of tensors, got {got}. Pass "
                                       f"load_checkpoint(path)['model'] for a checkpoint fit wrote, or "
                                       f"another model's model.state_dict().")
    if isinstance(state_dict.get("model"), Mapping):
        raise CheckpointError(f"state_dict is a whole checkpoint (keys {', '.join(map(str, state_dict))}), not "
                              f"the model's weights. Pass its 'model' entry: load_weights(model, "
                              f"load_checkpoint(path)['model']).")
    own = model.state_dict()
    for prefix in ("module.", "_orig_mod."):  # what DistributedDataParallel and torch.compile add
        if own and state_dict and all(k.startswith(prefix) for k in state_dict) \
                and not all(k.startswith(prefix) for k in own):
            raise CheckpointError(
                f"The keys of state_dict all start with {prefix!r} (e.g. {next(iter(state_dict))}): the "
                f"weights of a wrapped model, and this model's keys have no such prefix. Use torch.nn.modules."
                f"utils.consume_prefix_in_state_dict_if_present(state_dict, {prefix!r}) to strip it, then load.")
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
        raise CheckpointError("These weights (state_dict) were saved from a different architecture ("
                              + " | ".join(parts) + "). Build the model with the same constructor "
                              "and arguments that saved it.")
    model.load_state_dict(state_dict)


def _writable_checkpoint(checkpoint: str | os.PathLike) -> Path:
    """The checkpoint path, refused now (not after the first hour of training) if unusable."""
    path = Path(checkpoint)
    if path.is_dir():
        raise CheckpointError(f"checkpoint={str(checkpoint)!r} is a folder. Give a file in it, "
                              f"e.g. checkpoint={str(path / 'run.pt')!r}.")
    if distributed.is_main():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=path.parent).close()  # can we write there? (deleted at once)
        except OSError as e:
            raise CheckpointError(f"Cannot write the checkpoint {path}: {e.strerror or e}. Choose a "
                                  f"path in a folder you can write to.") from e
    return path


def _save_checkpoint(path: Path, epoch: int, model, optimizer, scheduler, scaler, batches,
                     history: History) -> None:
    """Everything an exact resume needs, after `epoch` finished epochs (called on every rank)."""
    rank_rng = distributed.all_rng_states()  # every rank takes part; rank 0 writes
    if distributed.is_main():
        _write_checkpoint(path, epoch, model, optimizer, scheduler, scaler, batches, history, rank_rng)
    # Every rank waits for the file to be whole: a resume that follows at once (another fit on
    # the same path) must not read the previous epoch's file on one rank and this one on another,
    # or the ranks would run different numbers of steps and wait on each other for ever.
    distributed.barrier()


def _write_checkpoint(path: Path, epoch: int, model, optimizer, scheduler, scaler, batches,
                      history: History, rank_rng: list[torch.Tensor]) -> None:
    # Written whole or not at all: a crash mid-write leaves the previous epoch's checkpoint.
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "optimizer_type": type(optimizer).__name__,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scheduler_type": type(scheduler).__name__ if scheduler is not None else None,
        "scaler": scaler.state_dict(),
        "batches": batches.state_dict() if hasattr(batches, "state_dict") else None,
        "torch_rng": rank_rng[0],
        "rank_rng": rank_rng,
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "history": history.to_dict(),
        "epoch": epoch,
    }
    write_atomically(path, lambda tmp: torch.save(state, tmp))


def _restore_checkpoint(path: Path, model, optimizer, scheduler, scaler, batches,
                        epochs: int) -> tuple[History, int]:
    """Put everything `_save_checkpoint` saved back; the history and the epochs done."""
    state = load_checkpoint(path)
    absent = [k for k in CHECKPOINT_KEYS if not isinstance(state, dict) or k not in state]
    if absent:
        raise CheckpointError(f"{path} is not a checkpoint written by fit (it lacks {', '.join(absent)}). "
                              f"Point checkpoint= to a file fit wrote, or to a new path to start afresh.")
    done = state["epoch"]
    if done > epochs:
        raise CheckpointError(f"The checkpoint {path.name} already holds {done} epochs, more than "
                              f"epochs={epochs}. Pass epochs={done} or more to continue it.")
    load_weights(model, state["model"])
    for what, given, saved in (("optimizer", optimizer, state.get("optimizer_type")),
                               ("schedule", scheduler, state.get("scheduler_type"))):
        given_name = type(given).__name__ if given is not None else None
        if "optimizer_type" in state and given_name != saved:
            raise CheckpointError(
                f"The checkpoint {path.name} was saved with {what} {saved}, but this run passes "
                f"{given_name}. Resume with the same optimizer and schedule as the run that saved it, "
                f"or start a new run under another checkpoint path (from these weights: "
                f"load_weights(model, load_checkpoint(path)['model']), or --init-from).")
    try:
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state["scheduler"] is not None:
            scheduler.load_state_dict(state["scheduler"])
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(
            f"The optimizer state in {path.name} does not fit the optimizer passed ({e}). Resume with "
            f"the same optimizer, over the same parameters, as the run that saved it.") from e
    if done < epochs:
        _check_schedule_left(scheduler, path, done, epochs, len(batches))
    if state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    if state["batches"] is not None:
        batches.load_state_dict(state["batches"])
    rank_rng = state.get("rank_rng") or [state["torch_rng"]]
    # Each rank's own dropout stream; with another number of processes the shards differ
    # anyway, so the run continues from rank 0's stream.
    same_ranks = len(rank_rng) == distributed.get_world_size()
    torch.set_rng_state(rank_rng[distributed.get_rank()] if same_ranks else rank_rng[0])
    if torch.cuda.is_available() and state.get("cuda_rng") is not None:
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return History(**state["history"]), done


def _check_schedule_left(scheduler, path: Path, done: int, epochs: int, steps_per_epoch: int) -> None:
    """Refuse to resume past the end of a schedule built for fewer steps (OneCycleLR would
    raise half-way; a cosine would silently climb back up)."""
    total = getattr(scheduler, "total_steps", None) or getattr(scheduler, "T_max", None)
    needed = (epochs - done) * steps_per_epoch
    if total is None or scheduler.last_epoch + needed <= total:
        return
    planned = total // steps_per_epoch
    raise CheckpointError(
        f"The checkpoint {path.name} holds {done} epochs of a run whose {type(scheduler).__name__} "
        f"schedule was built for {total} steps ({planned} epochs); it has "
        f"{total - scheduler.last_epoch} steps left, but epochs={epochs} needs {needed}. A schedule "
        f"that has run out cannot be stretched. To train further, start a new run from these "
        f"weights with a new optimizer, schedule and checkpoint path (python -m deepnets.train ... "
        f"--init-from {path}, or load_weights(model, load_checkpoint(path)['model'])); or resume "
        f"with epochs={planned} to finish the run as planned.")


# ---------------------------------------------------------------------------- the loop

def _check_labels(logits: torch.Tensor, y: torch.Tensor, where: str) -> None:
    try:
        checks.labels("labels", y)  # integer class indices, one per image, none negative
    except checks.InputError as e:
        raise checks.InputError(f"In {where}: {e}") from None
    top = int(y.max())
    if logits.dim() != 2 or logits.shape[1] <= top:
        raise checks.InputError(f"The model outputs {tuple(logits.shape[1:])} scores per image but the "
                                f"labels go up to {top} ({where}): build it with num_classes={top + 1} "
                                f"or more, or map the labels to 0..{logits.shape[-1] - 1}.")


def _no_images(what: str, where: str) -> checks.EmptyDataError:
    return checks.EmptyDataError(f"{what} yielded no images {where}. Pass batches of at least one "
                                 f"image: check the subset or folder they were built from is not empty.")


def fit(model: nn.Module, train_batches: Batch, val_batches: Batch | None = None, epochs: int = 1,
        optimizer: torch.optim.Optimizer | None = None,
        scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
        loss_fn: nn.Module | None = None, device: str | torch.device | None = None,
        grad_clip: float | None = None, checkpoint: str | os.PathLike | None = None,
        resume: bool = False, verbose: bool = True, amp: bool = False,
        compile: bool = False, channels_last: bool = True) -> History:
    """Train `model` for `epochs` passes over `train_batches`; evaluate on `val_batches`.

    Pass validation batches here, never the test set: whatever is watched while training
    (to pick epochs, a learning rate, a recipe) is no longer an unseen test.

    `scheduler.step()` runs after every batch (build schedules in batches, e.g.
    OneCycleLR(total_steps=epochs * len(train_batches))). With `checkpoint`, the state
    after each epoch is saved there; `resume=True` continues from it if it exists.
    `amp=True` computes in bf16 (fp16 with loss scaling on GPUs without bf16) under autocast.
    Under torchrun (`deepnets.distributed`) the model trains as DistributedDataParallel:
    give each process its share of the batches; only rank 0 prints and writes the checkpoint.
    """
    epochs = checks.positive_int("epochs", epochs)
    if grad_clip is not None:
        grad_clip = checks.positive_number("grad_clip", grad_clip, "Pass e.g. grad_clip=1.0, or None to not clip.")
    if hasattr(train_batches, "__len__") and len(train_batches) == 0:
        raise _no_images("train_batches", "(it holds no batches)")
    device = torch.device(device) if device is not None else get_device()
    model.to(device, memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    optimizer = optimizer or torch.optim.AdamW(model.parameters(), lr=1e-3)
    for group in optimizer.param_groups:
        if group["lr"] <= 0:
            raise checks.ArgumentValueError(f"The learning rate must be positive, got {group['lr']!r}. "
                                            f"Build the optimizer with a learning rate above 0, e.g. lr=1e-3.")
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    autocast = torch.autocast(device.type, dtype=amp_dtype(device), enabled=amp)
    scaler = torch.amp.GradScaler(device.type, enabled=amp and amp_dtype(device) == torch.float16)
    verbose = verbose and distributed.is_main()

    path = _writable_checkpoint(checkpoint) if checkpoint is not None else None
    if resume and path is None:
        raise checks.ArgumentValueError("resume=True needs checkpoint=<path> to resume from. Pass "
                                        "checkpoint='run.pt' (the file an earlier fit wrote), or resume=False.")
    history, start_epoch = History(), 0
    if resume and path.exists():
        history, start_epoch = _restore_checkpoint(path, model, optimizer, scheduler, scaler,
                                                   train_batches, epochs)
        if verbose:
            print(f"Resumed from {path.name} after epoch {start_epoch}.")
    net = distributed.wrap(model, device)  # DistributedDataParallel under torchrun, else model
    if compile:
        net = torch.compile(net)

    epoch = start_epoch
    try:
        for epoch in range(start_epoch, epochs):
            if hasattr(train_batches, "set_epoch"):  # a DistributedSampler's order depends on it
                train_batches.set_epoch(epoch)
            model.train()
            t0 = time.perf_counter()
            loss_sum, correct, seen = 0.0, 0, 0
            bar = tqdm(train_batches, desc=f"epoch {epoch + 1}/{epochs}", leave=False,
                       disable=not verbose or HEADLESS)
            for step, (x, y) in enumerate(bar):
                x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
                with autocast:
                    logits = net(x)
                    _check_labels(logits, y, f"epoch {epoch + 1}, batch {step + 1}")
                    loss = loss_fn(logits, y)
                if not torch.isfinite(loss):
                    lr = optimizer.param_groups[0]["lr"]
                    raise FloatingPointError(
                        f"The loss became {loss.item()} at epoch {epoch + 1}, batch {step + 1}: "
                        f"training diverged. Lower the learning rate (it was {lr:.3g}), or clip "
                        f"gradients with grad_clip=1.0.")
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()  # the scaler passes the loss through unless fp16
                if grad_clip is not None:
                    scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
                scaler.step(optimizer)
                scaler.update()
                if scheduler is not None:
                    scheduler.step()
                loss_sum += loss.item() * len(y)
                correct += (logits.argmax(1) == y).sum().item()
                seen += len(y)
                if step % 20 == 0:
                    bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
            loss_sum, correct, seen = distributed.reduce_sums(loss_sum, correct, seen)
            if seen == 0:
                raise _no_images("train_batches", f"in epoch {epoch + 1}")
            seconds = time.perf_counter() - t0
            history.train_loss.append(loss_sum / seen)
            history.train_acc.append(correct / seen)
            history.lr.append(optimizer.param_groups[0]["lr"])
            history.images_per_sec.append(seen / seconds)
            if val_batches is not None:
                val_loss, val_acc = evaluate(model, val_batches, device, loss_fn, amp=amp)
            else:
                val_loss, val_acc = float("nan"), float("nan")
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
            history.epoch_seconds.append(time.perf_counter() - t0)
            if verbose:
                print(f"epoch {epoch + 1:>2}/{epochs}  train loss {history.train_loss[-1]:.4f} "
                      f"acc {history.train_acc[-1]:.2%}  val loss {val_loss:.4f} "
                      f"acc {val_acc:.2%}  {history.images_per_sec[-1]:,.0f} img/s  "
                      f"{history.epoch_seconds[-1]:.1f} s", flush=True)
            if path is not None:
                _save_checkpoint(path, epoch + 1, model, optimizer, scheduler, scaler, train_batches,
                                 history)
    except KeyboardInterrupt:
        history.interrupted = True
        kept = f"; the checkpoint {path.name} holds the last finished epoch" if path else ""
        if distributed.is_main():
            print(f"Training stopped by you during epoch {epoch + 1}: returning the history of "
                  f"{history.epochs} finished epoch(s){kept}.")
    return history


@torch.inference_mode()
def evaluate(model: nn.Module, batches: Batch, device: str | torch.device | None = None,
             loss_fn: nn.Module | None = None, amp: bool = False) -> tuple[float, float]:
    """Mean loss and accuracy of `model` over `batches`, in eval mode.

    Under torchrun every process passes its own share of the batches and gets the figures
    over all of them.
    """
    device = torch.device(device) if device is not None else get_device()
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    was_training = model.training
    model.eval()
    loss_sum, correct, seen = 0.0, 0, 0
    with torch.autocast(device.type, dtype=amp_dtype(device), enabled=amp):
        for step, (x, y) in enumerate(batches):
            x, y = x.to(device), y.to(device)
            logits = model(x)
            _check_labels(logits, y, f"evaluation batch {step + 1}")
            loss_sum += loss_fn(logits, y).item() * len(y)
            correct += (logits.argmax(1) == y).sum().item()
            seen += len(y)
    model.train(was_training)
    loss_sum, correct, seen = distributed.reduce_sums(loss_sum, correct, seen)
    if seen == 0:
        raise _no_images("The batches to evaluate", "(there were none)")
    return loss_sum / seen, correct / seen


@torch.inference_mode()
def predict(model: nn.Module, batches: Batch, device: str | torch.device | None = None
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
    if not preds:
        raise _no_images("The batches to predict", "(there were none)")
    return torch.cat(preds), torch.cat(labels)


# ---------------------------------------------------------------------------- the command

def _model_table() -> dict[str, tuple[Callable[[int, int, int], nn.Module], int]]:
    """name -> (constructor(num_classes, in_channels, image_size), the input side it was made for)."""
    from deepnets import models

    table: dict[str, tuple[Callable[[int, int, int], nn.Module], int]] = {
        "alexnet": (lambda k, c, s: models.alexnet(k, in_channels=c), 224),
        "alexnet_paper": (lambda k, c, s: models.alexnet_paper(k, in_channels=c, input_size=s), 227),
    }
    for name in ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"):
        table[name] = (lambda k, c, s, make=getattr(models, name): make(k, in_channels=c, input_size=s), 224)
    for name in ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152"):
        table[name] = (lambda k, c, s, make=getattr(models, name): make(k, in_channels=c), 224)
    for depth in (20, 32, 44, 56, 110):  # the CIFAR-10 nets of He et al.'s section 4.2, 32x32
        table[f"cifar_resnet{depth}"] = (lambda k, c, s, d=depth: models.cifar_resnet(d, in_channels=c, num_classes=k), 32)
        table[f"cifar_plain{depth}"] = (lambda k, c, s, d=depth: models.cifar_resnet(d, shortcut=None, in_channels=c, num_classes=k), 32)
    # The notebooks' CPU-sized nets, for 28x28 grey images.
    table.update({
        "lenet5": (lambda k, c, s: models.lenet5(k, c), 28),
        "convnet4": (lambda k, c, s: models.convnet4(num_classes=k, in_channels=c, image_size=s), 28),
        "alexnet_small": (lambda k, c, s: models.alexnet_small(k, in_channels=c, input_size=s, init="kaiming"), 28),
        "fashion_vgg": (lambda k, c, s: models.fashion_vgg(num_classes=k, in_channels=c, input_size=s), 28),
        "fashion_resnet": (lambda k, c, s: models.fashion_resnet(k, c), 28),
    })
    return table


MODEL_NAMES = ("alexnet", "alexnet_paper", "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn",
               "vgg19", "vgg19_bn", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
               *(f"cifar_{kind}{d}" for kind in ("resnet", "plain") for d in (20, 32, 44, 56, 110)),
               "lenet5", "convnet4", "alexnet_small", "fashion_vgg", "fashion_resnet")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def build_parser() -> argparse.ArgumentParser:
    """The command line of `python -m deepnets.train`."""
    parser = argparse.ArgumentParser(
        prog="python -m deepnets.train",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a course model on Fashion-MNIST or on your own image folder, on one "
                    "process or many (torchrun), and write its figures to a results file.",
        epilog="""\
several processes:  torchrun --standalone --nproc_per_node=N -m deepnets.train ...
  DistributedDataParallel: gloo on the CPU, NCCL on CUDA (one GPU per process). Every
  process trains on a disjoint share of each global batch; only rank 0 prints and writes
  the checkpoint and results.
learning-rate scaling: --batch-size is the GLOBAL batch (split evenly over the processes),
  so the same --lr means the same run on 1 or N processes and needs no scaling. If you
  raise --batch-size, raise --lr in proportion (the linear scaling rule, Goyal et al. 2017,
  "Accurate, Large Minibatch SGD"); the one-cycle schedule gives the warm-up it needs.
several machines: the same command on each, with torchrun's own rendezvous, e.g.
  torchrun --nnodes=2 --nproc_per_node=8 --rdzv-backend=c10d --rdzv-id=run1 \\
           --rdzv-endpoint=HOST_OF_NODE_0:29400 -m deepnets.train ...""")
    arg = parser.add_argument
    arg("--model", required=True, choices=MODEL_NAMES, metavar="NAME",
        help="one of: " + ", ".join(MODEL_NAMES) + ". lenet5 ... fashion_resnet are the notebooks' "
             "CPU-sized nets for 28x28 grey images; the others are the papers' nets")
    arg("--data", default="fashion-mnist", metavar="fashion-mnist|PATH",
        help="fashion-mnist (in memory; the course's train/validation split; default), or a folder "
             "in torchvision's ImageFolder layout: PATH/train/<class>/*.jpg and PATH/val/<class>/*.jpg")
    arg("--epochs", type=int, default=10, help="passes over the training images (default 10)")
    arg("--batch-size", type=int, default=128, help="global batch, split over the processes (default 128)")
    arg("--optimizer", choices=("sgd", "adamw"), default="sgd",
        help="sgd (with --momentum, Nesterov; the papers') or adamw (default sgd)")
    arg("--lr", type=float, default=0.05,
        help="peak learning rate (default 0.05); see the scaling rule below")
    arg("--schedule", choices=SCHEDULES, default="onecycle",
        help="onecycle (warm up to --lr, then anneal; default), cosine (from --lr to 0), step "
             "(/10 at 50%% and 75%% of the steps, He et al.'s CIFAR schedule) or constant")
    arg("--weight-decay", type=float, default=5e-4, help="L2 weight decay (default 5e-4, the AlexNet and VGG papers')")
    arg("--momentum", type=float, default=0.9, help="SGD momentum (default 0.9)")
    arg("--image-size", type=int, default=None,
        help="side of the square input; default: the size the model was made for (227 for "
             "alexnet_paper, 224 for ImageNet nets, 32 for cifar_*, 28 for the CPU-sized nets)")
    arg("--augment", action="store_true",
        help="Fashion-MNIST only: random crop (pad 2) and horizontal flip; a folder always gets "
             "RandomResizedCrop and flips")
    arg("--pad", type=int, default=2,
        help="Fashion-MNIST with --augment: the zero padding of the random crop, in pixels (default 2; "
             "0: flips only, notebook 04's recipe)")
    arg("--label-smoothing", type=float, default=0.0,
        help="the share of each target spread over all classes (default 0; notebook 04 uses 0.1)")
    arg("--no-test", action="store_true",
        help="Fashion-MNIST: leave the test set unscored. For runs that inform a choice, which the "
             "validation split makes; the test set is for a final run, once")
    arg("--amp", action="store_true",
        help="mixed precision: autocast to bf16 (fp16 with loss scaling on GPUs without bf16). "
             "On the CPU it also runs in bf16, which only CPUs with bf16 units speed up")
    arg("--channels-last", action=argparse.BooleanOptionalAction, default=True,
        help="channels-last memory layout for convolutions (default on, as in the notebooks)")
    arg("--compile", action="store_true", help="torch.compile the model (the first steps compile)")
    arg("--sync-bn", action="store_true",
        help="with several GPUs: batch-norm statistics over the global batch (SyncBatchNorm; CUDA only)")
    arg("--checkpoint", default=None, metavar="PATH", help="save the whole training state here after every epoch")
    arg("--resume", action="store_true",
        help="continue from --checkpoint exactly where it stopped (same flags as the run that wrote it)")
    arg("--init-from", default=None, metavar="PATH",
        help="start from the weights of a checkpoint (not its optimizer or schedule): to train a "
             "finished run further, with a new schedule and a new --checkpoint")
    arg("--seed", type=int, default=0, help="seed of the weights, the order and the augmentation (default 0)")
    arg("--results", default=None, metavar="PATH", help="write the run's figures (with its device) to this JSON file")
    arg("--workers", type=int, default=min(8, os.cpu_count() or 1),
        help="DataLoader worker processes per training process, for a folder (default: min(8, CPUs))")
    arg("--limit", type=int, default=None, metavar="N",
        help="only N images per class of each split: a quick check of the whole path")
    return parser


def _check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("epochs", "batch_size", "limit", "image_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {value}.")
    if args.pad < 0:
        parser.error(f"--pad must be 0 (flips only) or more pixels, got {args.pad}.")
    if not 0 <= args.label_smoothing < 1:
        parser.error(f"--label-smoothing must be at least 0 and below 1, got {args.label_smoothing}.")
    for name in ("lr", "weight_decay", "momentum"):
        value = getattr(args, name)
        if not (math.isfinite(value) and (value > 0 if name == "lr" else value >= 0)):
            parser.error(f"--{name.replace('_', '-')} must be a {'positive' if name == 'lr' else 'non-negative'} "
                         f"number, got {value}.")
    if args.resume and not args.checkpoint:
        parser.error("--resume needs --checkpoint PATH, the file to continue from.")
    if args.sync_bn and not torch.cuda.is_available():
        parser.error("--sync-bn works on CUDA GPUs only (SyncBatchNorm); on the CPU leave it out.")
    if args.workers < 0:
        parser.error(f"--workers must be 0 (load in the training process) or more, got {args.workers}.")


def fashion_mnist_batches(args: argparse.Namespace, channels: int, size: int, device: torch.device):
    """Fashion-MNIST as this process's training, validation and test batches (the course's split)."""
    from deepnets.data import Batches, load_fashion_mnist, stratified_subset
    from deepnets.profiles import get_profile

    ds = load_fashion_mnist()
    train_x, train_y, val_x, val_y, test_x, test_y = ds.split(get_profile("full"))
    if args.limit:
        train_x, train_y = stratified_subset(train_x, train_y, args.limit, seed=args.seed)
        val_x, val_y = stratified_subset(val_x, val_y, min(args.limit, 500), seed=args.seed)
        test_x, test_y = stratified_subset(test_x, test_y, args.limit, seed=args.seed)

    def batches(x, y, train: bool):
        b = Batches(x, y, batch_size=args.batch_size, shuffle=train, seed=args.seed, augment=train and args.augment,
                    pad=args.pad, size=None if size == 28 else size, channels=channels, device=device)
        return distributed.ShardedBatches(b, pad=train) if distributed.get_world_size() > 1 else b

    return batches(train_x, train_y, True), batches(val_x, val_y, False), batches(test_x, test_y, False), len(ds.classes)


def image_folder_loaders(args: argparse.Namespace, size: int, device: torch.device):
    """Training and validation loaders of an ImageFolder tree (PATH/train, PATH/val)."""
    from torchvision import datasets
    from torchvision.transforms import v2

    root = Path(args.data)
    for part in ("train", "val"):
        if not (root / part).is_dir():
            raise checks.DataError(
                f"--data {root} has no {part}/ folder. An image folder needs {root}/train/<class>/*.jpg and "
                f"{root}/val/<class>/*.jpg (torchvision's ImageFolder layout), one subfolder per class.")
    to_tensor = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    train_set = datasets.ImageFolder(root / "train", transform=v2.Compose(
        [v2.ToImage(), v2.RandomResizedCrop(size, antialias=True), v2.RandomHorizontalFlip(), *to_tensor]))
    # Evaluation: resize the short side to size / 0.875 (256 for 224), then the centre crop.
    val_set = datasets.ImageFolder(root / "val", transform=v2.Compose(
        [v2.ToImage(), v2.Resize(round(size / 0.875), antialias=True), v2.CenterCrop(size), *to_tensor]))
    if train_set.classes != val_set.classes:
        raise checks.DataError(f"{root}/train and {root}/val hold different classes ({len(train_set.classes)} "
                               f"vs {len(val_set.classes)} folders). Give both the same class subfolders.")
    num_classes = len(train_set.classes)
    if args.limit:
        train_set, val_set = _per_class(train_set, args.limit), _per_class(val_set, args.limit)
    pin = device.type == "cuda"
    return (distributed.folder_loader(train_set, args.batch_size, True, args.seed, args.workers, pin),
            distributed.folder_loader(val_set, args.batch_size, False, args.seed, args.workers, pin),
            num_classes)


def _per_class(dataset, n: int):
    """The first n images of every class of an ImageFolder."""
    seen: dict[int, int] = {}
    keep = []
    for i, label in enumerate(dataset.targets):
        if seen.get(label, 0) < n:
            seen[label] = seen.get(label, 0) + 1
            keep.append(i)
    return torch.utils.data.Subset(dataset, keep)


def make_schedule(name: str, optimizer: torch.optim.Optimizer, total_steps: int, lr: float):
    """The learning-rate schedule `name`, stepped after every batch over `total_steps`."""
    if name == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps)
    if name == "step":  # He et al. 2016 (CIFAR): /10 at 32k and 48k of 64k iterations
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [total_steps // 2, total_steps * 3 // 4], 0.1)
    return None


def _write_json(summary: dict, path: Path) -> None:
    # Strict JSON (NaN and infinities as null), written whole or not at all.
    def plain(v):
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    write_atomically(path, json.dumps(plain(summary), indent=2, allow_nan=False) + "\n")


def main(argv: list[str] | None = None) -> dict:
    """`python -m deepnets.train ...`: train, evaluate, report; the results as a dict."""
    from deepnets.results import device_name

    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    _check_args(parser, args)
    maker, made_for = _model_table()[args.model]
    size = args.image_size or made_for
    folder = args.data != "fashion-mnist"
    # The CPU-sized and CIFAR nets take grey Fashion-MNIST as it is; the ImageNet nets get the
    # grey channel copied to RGB, so they are exactly the papers' networks.
    channels = 3 if folder or made_for > 32 else 1
    device = distributed.start()
    seed_everything(args.seed)
    if folder:
        (train, val, num_classes), test = image_folder_loaders(args, size, device), None
    else:
        train, val, test, num_classes = fashion_mnist_batches(args, channels, size, device)
    model = maker(num_classes, channels, size)
    if args.init_from:
        load_weights(model, load_checkpoint(args.init_from)["model"])
    distributed.seed_per_rank(args.seed)
    if args.sync_bn:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if args.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                                    nesterov=args.momentum > 0, weight_decay=args.weight_decay)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = make_schedule(args.schedule, optimizer, args.epochs * len(train), args.lr)
    where = f"{distributed.get_world_size()} processes x {device_name()}" if distributed.get_world_size() > 1 else device_name()
    params = sum(p.numel() for p in model.parameters())
    if distributed.is_main():
        print(f"{args.model}: {params:,} parameters, {size}x{size}x{channels} inputs, {num_classes} classes; "
              f"{'folder ' + args.data if folder else 'Fashion-MNIST'}; global batch {args.batch_size}, "
              f"{args.optimizer} lr {args.lr:g} ({args.schedule}), {args.epochs} epochs; {where}"
              + (f"; autocast to {str(amp_dtype(device)).removeprefix('torch.')}" if args.amp else ""),
              flush=True)
    history = fit(model, train, val, epochs=args.epochs, optimizer=optimizer, scheduler=scheduler,
                  loss_fn=nn.CrossEntropyLoss(label_smoothing=args.label_smoothing), device=device,
                  checkpoint=args.checkpoint, resume=args.resume, amp=args.amp, compile=args.compile,
                  channels_last=args.channels_last)
    figures = {"val_acc": history.val_acc[-1], "val_loss": history.val_loss[-1],
               "train_loss": history.train_loss[-1], "epochs": history.epochs, "params": params,
               "image_size": size, "batch_size": args.batch_size, "lr": args.lr}
    if test is not None and not args.no_test:  # Fashion-MNIST: the test set, once, after training
        figures["test_loss"], figures["test_acc"] = evaluate(model, test, device, amp=args.amp)
    summary = {
        "command": "python -m deepnets.train " + shlex.join(argv),
        "model": args.model, "data": args.data, "device": where,
        "processes": distributed.get_world_size(), "amp": str(amp_dtype(device)).removeprefix("torch.") if args.amp else None,
        "torch": torch.__version__, "python": platform.python_version(),
        "figures": figures,
        "timings": {"train_seconds": sum(history.epoch_seconds),
                    "images_per_sec": history.images_per_sec[-1]},
        "history": history.to_dict(),
    }
    if distributed.is_main():
        if "test_acc" in figures:
            print(f"test accuracy {figures['test_acc']:.2%} ({args.model}, {where})")
        if args.results:
            _write_json(summary, Path(args.results))
    # stop() only after success: leaving the group waits for the other ranks, which may be
    # waiting in an all-reduce for this one; a rank that raises just exits, and torchrun,
    # seeing it fail, ends the job.
    distributed.stop()
    return summary


# ---------------------------------------------------------------------------- the gpu profile

# The notebooks' real-size runs: each paper's net at its paper's input size, on Fashion-MNIST
# resized (grey copied to RGB), as Dive into Deep Learning trains AlexNet and VGG on its GPUs.
PAPER_SIZE_RUNS = {
    "alexnet_paper": ["--image-size", "227", "--batch-size", "128", "--lr", "0.01", "--epochs", "10"],
    "vgg16": ["--image-size", "224", "--batch-size", "128", "--lr", "0.01", "--epochs", "5"],
    "resnet50": ["--image-size", "224", "--batch-size", "256", "--lr", "0.1", "--epochs", "10"],
}


def paper_size_run(model: str, profile: str | Profile, results: Results | None = None, *, require_gpu: bool = True,
                   extra: list[str] = ()) -> dict | None:
    """Train `model` at its paper's input size, with AMP, in the gpu profile on a CUDA GPU.

    Elsewhere it prints what it would run and returns None. The figures go into `results`
    (a `deepnets.Results`) as real_size_*. `require_gpu=False` and `extra` flags (e.g. a
    small --image-size and --limit) run the same path on the CPU, which the tests do.
    """
    from deepnets.profiles import get_profile

    checks.one_of("model", model, PAPER_SIZE_RUNS)
    profile = get_profile(profile if isinstance(profile, str) else profile.name)
    argv = ["--model", model, *PAPER_SIZE_RUNS[model], "--amp", *extra]
    command = "python -m deepnets.train " + shlex.join(argv)
    side = PAPER_SIZE_RUNS[model][1]
    if require_gpu and (profile.name != "gpu" or not torch.cuda.is_available()):
        why = ("this machine has no CUDA GPU" if not torch.cuda.is_available()
               else f"this run uses the {profile.name} profile")
        print(f"{model} at {side}x{side} with mixed precision trains in the gpu profile on a CUDA GPU; "
              f"{why}, so it is skipped here. On a machine with a GPU:\n"
              f"  make notebooks PROFILE=gpu    (this section, inside the notebook)\n"
              f"  {command}    (the same run, on its own)")
        return None
    summary = main(argv)
    f, t = summary["figures"], summary["timings"]
    print(f"{model} at {f['image_size']}x{f['image_size']} in {summary['amp']}: validation accuracy {f['val_acc']:.2%}, test accuracy "
          f"{f['test_acc']:.2%} after {f['epochs']} epochs; {t['images_per_sec']:,.0f} training images/s on "
          f"{summary['device']}")
    if results is not None:
        results.record(real_size_model=model, real_size_image_size=f["image_size"], real_size_epochs=f["epochs"],
                       real_size_val_acc=f["val_acc"], real_size_test_acc=f["test_acc"],
                       real_size_amp=summary["amp"], real_size_device=summary["device"],
                       real_size_images_per_sec=t["images_per_sec"], real_size_train_seconds=t["train_seconds"])
    return summary


if __name__ == "__main__":
    main()
