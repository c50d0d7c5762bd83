"""What every check shares: the verdict line, the "not answered yet" case, running the
learner's code without letting its exceptions escape, and the registry of checks.

A check prints one line and returns a bool:

    right: ...             the answer is right (and why, in one sentence)
    wrong: ...             what is off, the learner's numbers beside the formula that fixes them
    not answered yet: ...  the answer is still None / ... / a stub raising NotImplementedError

so a lesson notebook runs top to bottom with its exercises unanswered.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import torch
from torch import nn

RIGHT, WRONG, NOT_ANSWERED = "right", "wrong", "not answered yet"

#: name -> the check function, in the order they were defined (the tests walk it).
REGISTRY: dict[str, Callable[..., bool]] = {}


class NotAnswered(Exception):
    """The learner's answer is a stub (None, ..., or code raising NotImplementedError)."""


class LearnerError(Exception):
    """The learner's code raised; the check reports it as a wrong answer."""


def is_empty(answer: Any) -> bool:
    return answer is None or answer is Ellipsis


def say(ok: bool, message: str) -> bool:
    print(f"{RIGHT if ok else WRONG}: {message}")
    return ok


def run(fn: Callable, *args, **kwargs):
    """Call the learner's code: a NotImplementedError means "not answered yet", any other
    exception becomes a wrong answer that quotes it."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise NotAnswered from err
    except Exception as err:  # noqa: BLE001 - whatever the learner's code raises is reported
        raise LearnerError(f"your code raised {type(err).__name__}: {err}") from err


def check(kind: str, notebook: str, todo: str):
    """Register a check: `kind` is compute / build / experiment, `notebook` its lesson
    ("00".."04"), `todo` what the learner still has to do (shown while unanswered)."""

    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(answer=None, *args, **kwargs) -> bool:
            if is_empty(answer):
                print(f"{NOT_ANSWERED}: {todo}")
                return False
            try:
                return bool(fn(answer, *args, **kwargs))
            except NotAnswered:
                print(f"{NOT_ANSWERED}: {todo}")
                return False
            except LearnerError as err:
                return say(False, str(err))
            except (TypeError, ValueError) as err:  # an answer of the wrong form (a number for a list, ...)
                return say(False, f"the answer does not have the form asked for ({err}): {todo}")

        wrapper.kind, wrapper.notebook, wrapper.todo = kind, notebook, todo
        REGISTRY[fn.__name__] = wrapper
        return wrapper

    return decorate


def as_int(answer, what: str) -> int:
    """An integer answer (a float with no fraction is accepted); else a wrong answer."""
    if isinstance(answer, bool) or not isinstance(answer, (int, float)) or answer != int(answer):
        raise LearnerError(f"{what} is a whole number; you gave {answer!r}.")
    return int(answer)


def as_float(answer, what: str) -> float:
    if isinstance(answer, bool) or not isinstance(answer, (int, float)):
        try:
            return float(answer)
        except (TypeError, ValueError):
            raise LearnerError(f"{what} is a number; you gave {answer!r}.") from None
    return float(answer)


def close(a: float, b: float, rel: float = 1e-3) -> bool:
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def conv_formula(n: int, k: int, s: int, p: int) -> str:
    """The output-size formula with the numbers filled in."""
    return f"(n + 2p - k) / s + 1 = ({n} + 2*{p} - {k}) / {s} + 1 = {(n + 2 * p - k) // s + 1}"


def params_in_order(module: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """Parameters and buffers (BatchNorm statistics) in registration order, without the
    batch counter, the order a state_dict lists them."""
    return [(k, v) for k, v in module.state_dict().items() if not k.endswith("num_batches_tracked")]


def copy_weights(reference: nn.Module, learner: nn.Module) -> None:
    """Give `learner` the reference's weights: by name if the keys match, else in
    registration order if every shape lines up; a LearnerError says which one does not."""
    ref_sd = reference.state_dict()
    try:
        learner.load_state_dict(ref_sd, strict=True)
        return
    except (RuntimeError, KeyError):
        pass
    ref, mine = params_in_order(reference), params_in_order(learner)
    ref_shapes = [tuple(v.shape) for _, v in ref]
    my_shapes = [tuple(v.shape) for _, v in mine]
    if ref_shapes != my_shapes:
        raise LearnerError(
            "your module's weights do not line up with the package's, so the outputs cannot be "
            f"compared: the package's are {_list(ref)}; yours are {_list(mine)}. Register the "
            "layers in the same order (and with the same bias settings).")
    with torch.no_grad():
        for (_, src), (name, dst) in zip(ref, mine):
            dst.copy_(src)


def _list(named: list[tuple[str, torch.Tensor]]) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in named) or "none"


def randomise_bn(module: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial BatchNorm scales, shifts and running statistics, so that a check
    notices a missing BatchNorm or one in the wrong mode."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=generator))
                m.bias.copy_(0.2 * torch.randn(c, generator=generator))
                m.running_mean.copy_(0.2 * torch.randn(c, generator=generator))
                m.running_var.copy_(0.5 + torch.rand(c, generator=generator))


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def layer_types(module: nn.Module) -> list[str]:
    return [type(m).__name__ for m in module.modules() if not list(m.children())]
