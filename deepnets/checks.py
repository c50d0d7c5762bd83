"""One home for the checks of what a user passes in, and the exception types they raise.

Every public function of ``deepnets`` checks its arguments with these before doing any
work, so a mistake ends in one sentence that names the argument, shows the value given,
says what is allowed and what to do -- never in a traceback from deep inside torch.

Exception types, one per kind of mistake. Each subclasses the builtin that code already
catches (``except ValueError`` keeps working):

- ``ArgumentTypeError(TypeError)``: the wrong type, e.g. ``True`` or ``2.0`` for a count.
- ``ArgumentValueError(ValueError)``: the right type, a value outside what is allowed
  (a negative count, a probability of 1.5, an unknown name).
- ``InputError(ValueError)``: a tensor of the wrong dtype, shape, channel count or range
  (images fed to a model, labels outside 0..num_classes-1).
- ``InputTooSmallError(InputError)``: images too small for a net's convolutions and pools.
- ``EmptyDataError(ValueError)``: no images, no batches, or one class where several are needed.
- ``TooMuchMemoryError(ValueError)``: a size that would need more memory than the machine has.
- ``DataError(RuntimeError)``: the Fashion-MNIST files or their folder are missing,
  unreadable, corrupt or truncated.
- ``ResultsFileError(ValueError)``: a results file that is partial, unreadable or not ours.
- ``CheckpointError(ValueError)``: a checkpoint that cannot be read or written, or that does
  not match the run resuming it (another optimizer, a schedule that has run out).

Checks (each returns the value, converted where it says so, or raises with the message):

- ``positive_int(name, value)``, ``non_negative_int(name, value)``: ints, bools and floats refused;
- ``positive_number(name, value)``: an int or float > 0 (bools refused), returned as float;
- ``probability(name, value, upper_open=False)``: a number in [0, 1] (or [0, 1));
- ``one_of(name, value, choices)``: a value from a fixed list;
- ``images(name, x, ...)``, ``labels(name, y, num_classes)``: a tensor's dtype, rank, size, range;
- ``fits_in_memory(name, nbytes, what)``: refuses what would not fit in this machine's memory;
- ``conv_out_size(...)``, ``too_small_message(...)``: the conv/pool size arithmetic of
  ``nn.Conv2d`` and ``nn.MaxPool2d``'s documentation, and the "input too small" sentence.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Sequence
from typing import Any

import torch

__all__ = [
    "ArgumentTypeError", "ArgumentValueError", "CheckpointError", "DataError", "EmptyDataError", "InputError",
    "InputTooSmallError", "ResultsFileError", "TooMuchMemoryError",
    "conv_out_size", "fits_in_memory", "images", "labels", "non_negative_int", "one_of",
    "positive_int", "positive_number", "probability", "too_small_message",
]


class ArgumentTypeError(TypeError):
    """An argument of the wrong type (``True`` or ``2.0`` where a count is meant)."""


class ArgumentValueError(ValueError):
    """An argument of the right type with a value that is not allowed."""


class InputError(ValueError):
    """A tensor of the wrong dtype, shape, channel count or value range."""


class InputTooSmallError(InputError):
    """Images too small for a net's convolutions and pools."""


class EmptyDataError(ValueError):
    """No images, no batches, or a single class where several are needed."""


class TooMuchMemoryError(ValueError):
    """A size that would take more memory than this machine has."""


class DataError(RuntimeError):
    """The Fashion-MNIST files or their folder are missing, unreadable, corrupt or truncated."""


class ResultsFileError(ValueError):
    """A results file that is partial, unreadable or not written by ``deepnets.results``."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or written, or that does not match the run resuming it."""


def _type(value: Any) -> str:
    return type(value).__name__


def positive_int(name: str, value: Any, fix: str = "") -> int:
    """``value`` as a count >= 1; a bool or a float (even 2.0) is refused."""
    return _int(name, value, 1, "a positive int (1, 2, 3, ...)", fix)


def non_negative_int(name: str, value: Any, fix: str = "") -> int:
    """``value`` as a whole number >= 0; a bool or a float is refused."""
    return _int(name, value, 0, "a whole number >= 0", fix)


def _int(name: str, value: Any, lowest: int, allowed: str, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        hint = (f" Pass {int(value)} instead." if isinstance(value, float) and value.is_integer()
                and not isinstance(value, bool) else f" Pass {allowed.split(' (')[0]}.")
        raise ArgumentTypeError(f"{name} must be {allowed}, got {value!r} ({_type(value)}).{hint}"
                                + (f" {fix}" if fix else ""))
    if value < lowest:
        raise ArgumentValueError(f"{name} must be {allowed}, got {value!r}. "
                                 + (fix or f"Pass a value of at least {lowest}."))
    return int(value)


def positive_number(name: str, value: Any, fix: str = "") -> float:
    """``value`` as a float > 0 (finite); a bool is refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a positive number, got {value!r} ({_type(value)}). "
                                + (fix or "Pass a number such as 0.1."))
    if not (value > 0 and math.isfinite(value)):
        raise ArgumentValueError(f"{name} must be a positive, finite number, got {value!r}. "
                                 + (fix or "Pass a number above 0, such as 0.1."))
    return float(value)


def probability(name: str, value: Any, upper_open: bool = False, fix: str = "") -> float:
    """``value`` as a float in [0, 1] (``upper_open``: [0, 1), e.g. a dropout rate)."""
    allowed = "[0, 1)" if upper_open else "[0, 1]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ArgumentTypeError(f"{name} must be a probability in {allowed}, got {value!r} "
                                f"({_type(value)}). " + (fix or "Pass a number such as 0.5."))
    if not (0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0):
        raise ArgumentValueError(f"{name} must be a probability in {allowed}, got {value!r}. "
                                 + (fix or "Pass a number such as 0.5 (a fraction, not a percentage)."))
    return float(value)


def one_of(name: str, value: Any, choices: Iterable[Any], fix: str = "") -> Any:
    """``value`` if it is one of ``choices``; else the list, and a near miss in another case."""
    choices = list(choices)
    if any(value is c or (type(value) is type(c) and value == c) for c in choices):
        return value
    shown = ", ".join(repr(c) for c in choices)
    hint = ""
    if isinstance(value, str):
        same = [c for c in choices if isinstance(c, str) and c.lower() == value.lower()]
        if same:
            hint = f" Names are case-sensitive: use {same[0]!r}."
    raise ArgumentValueError(f"{name} must be one of {shown}; got {value!r}.{hint} "
                             + (fix or "Pass one of those."))


def images(name: str, x: Any, *, channels: int | None = None, dtype: torch.dtype | None = None,
           dims: int = 4, model: str = "This function") -> torch.Tensor:
    """A tensor of images: its type, rank ([N, C, H, W] for ``dims=4``), dtype and channel count."""
    if not isinstance(x, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor of images, got {_type(x)}. "
                                f"Convert it with torch.as_tensor(...) first.")
    layout = "[N, C, H, W]" if dims == 4 else "[N, H, W]"
    if x.dim() != dims:
        fix = ("add a batch dimension with x.unsqueeze(0)" if x.dim() == dims - 1
               else f"reshape it to {layout}")
        raise InputError(f"{model} takes {name} as a batch {layout}, got shape {tuple(x.shape)}; "
                         f"{fix}.")
    if x.numel() == 0:
        raise EmptyDataError(f"{name} holds no images (shape {tuple(x.shape)}). Pass at least one.")
    if dtype is not None and x.dtype != dtype:
        raise InputError(f"{model} takes {name} as {dtype}, got {x.dtype}. Convert it with "
                         f"x.to({dtype}) (or use Batches, which makes normalised float images).")
    if dtype is None and not x.is_floating_point():
        raise InputError(f"{model} takes {name} as floating-point images, got {x.dtype}. Use "
                         f"Batches, which scales and normalises them, or convert with x.float() / 255.")
    if channels is not None and dims == 4 and x.shape[1] != channels:
        raise InputError(f"{model} was built for {channels}-channel {name} but got {x.shape[1]} "
                         f"channels (shape {tuple(x.shape)}). Build it with in_channels={x.shape[1]}, "
                         f"or convert the images (grey -> RGB: Batches(channels=3) or "
                         f"x.expand(-1, 3, -1, -1)).")
    return x


def labels(name: str, y: Any, num_classes: int | None = None, count: int | None = None) -> torch.Tensor:
    """Integer class labels [N] in 0..num_classes-1 (and ``count`` of them, if given)."""
    if not isinstance(y, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor of class indices, got {_type(y)}. "
                                f"Convert it with torch.as_tensor(..., dtype=torch.long).")
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise InputError(f"{name} must hold integer class indices (torch.long), got {y.dtype}. "
                         f"Convert them with y.long().")
    if y.dim() != 1:
        raise InputError(f"{name} must be one class index per image, shape [N], got shape "
                         f"{tuple(y.shape)}. Use y.flatten() or y.argmax(1) for one-hot rows.")
    if count is not None and len(y) != count:
        raise InputError(f"{count} images but {len(y)} {name}: pass one label per image.")
    if len(y) and (int(y.min()) < 0 or (num_classes is not None and int(y.max()) >= num_classes)):
        top = "" if num_classes is None else f" to {num_classes - 1}"
        raise InputError(f"{name} must be class indices from 0{top}, got values from {int(y.min())} "
                         f"to {int(y.max())}. Map the labels to 0..{'num_classes-1' if num_classes is None else num_classes - 1}"
                         f" or build the model with more classes.")
    return y


def fits_in_memory(name: str, nbytes: int, what: str) -> int:
    """Refuse ``what`` (sized by ``name``) when ``nbytes`` exceed this machine's memory."""
    total = _memory_bytes()
    if total is not None and nbytes > total:
        raise TooMuchMemoryError(f"{what} would take {nbytes / 2 ** 30:,.1f} GiB, more than this "
                                 f"machine's {total / 2 ** 30:,.1f} GiB of memory. Use a smaller "
                                 f"{name}.")
    return nbytes


def _memory_bytes() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not a POSIX system: no limit known
        return None


def conv_out_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                  ceil_mode: bool = False) -> int:
    """Side of a conv's or pool's output: floor((n + 2p - d(k-1) - 1) / s) + 1, 0 if nothing fits.

    The formula of ``nn.Conv2d`` / ``nn.MaxPool2d``'s documentation, with ``ceil_mode``.
    """
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    out = -(-span // stride) + 1 if ceil_mode else span // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # PyTorch drops a last window that would start in the right padding
    return out


def too_small_message(what: str, size: int, chain: Sequence[int], smallest: int, layers: str,
                      fix: str) -> str:
    """The one "input too small" sentence: the sizes layer by layer, the smallest that works."""
    path = " -> ".join(str(max(s, 0)) for s in [size, *chain])
    return (f"{what}={size} is too small for {layers}: they shrink it to nothing ({path}). "
            f"The smallest side that works is {smallest}: {fix}")
