"""Running the learner's module beside the package's: shapes layer by layer, then values."""

from __future__ import annotations

import torch
from torch import nn

from ._core import LearnerError, conv_formula, run


def instantiate(answer, *args, **kwargs) -> nn.Module:
    """The learner's module: an instance as given, or a class / function called with args."""
    module = answer if isinstance(answer, nn.Module) else run(answer, *args, **kwargs)
    if not isinstance(module, nn.Module):
        raise LearnerError(f"expected an nn.Module (or a class / function returning one); "
                           f"got {type(module).__name__}.")
    return module


def _first(v):
    return v[0] if isinstance(v, (tuple, list)) else v


def _describe(m: nn.Module) -> str:
    if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)):
        extra = f", {m.in_channels}->{m.out_channels} channels" if isinstance(m, nn.Conv2d) else ""
        return (f"{type(m).__name__}(k={_first(m.kernel_size)}, s={_first(m.stride)}, "
                f"p={_first(m.padding)}{extra})")
    if isinstance(m, nn.Linear):
        return f"Linear({m.in_features} -> {m.out_features})"
    return type(m).__name__


def trace(model: nn.Module, x: torch.Tensor, types) -> tuple[list, str | None]:
    """[(module, input shape, output shape)] of the modules of `types`, in forward order,
    and the error the forward pass raised (None if it ran)."""
    seen = []
    handles = [m.register_forward_hook(lambda mod, inp, out: seen.append(
        (mod, tuple(inp[0].shape[1:]), tuple(out.shape[1:]))))
        for m in model.modules() if isinstance(m, types)]
    error = None
    try:
        with torch.no_grad():
            model(x)
    except NotImplementedError:
        raise
    except Exception as err:  # noqa: BLE001 - reported to the learner
        error = f"{type(err).__name__}: {err}"
    finally:
        for h in handles:
            h.remove()
    return seen, error


def conv_shapes(model: nn.Module, x: torch.Tensor, types) -> list[tuple]:
    seen, error = trace(model, x, types)
    if error:
        raise RuntimeError(f"the package's model failed on {tuple(x.shape)}: {error}")
    return [out for _, _, out in seen]


def _shape(t: tuple) -> str:
    return " x ".join(map(str, t))


def first_shape_mistake(reference: nn.Module, mine: nn.Module, x: torch.Tensor, types) -> str | None:
    """A sentence about the first layer whose output shape differs from the reference's,
    with the conv formula filled in with the learner's numbers; None if all agree."""
    ref, _ = trace(reference, x, types)
    try:
        got, error = trace(mine, x, types)
    except NotImplementedError:
        from ._core import NotAnswered
        raise NotAnswered from None
    for i, ((rm, rin, rout), (mm, min_, mout)) in enumerate(zip(ref, got)):
        if rout == mout:
            continue
        what = f"layer {i + 1} ({_describe(mm)})"
        if isinstance(mm, (nn.Conv2d, nn.MaxPool2d)) and len(min_) == 3:
            k, s, p = _first(mm.kernel_size), _first(mm.stride), _first(mm.padding)
            fix = ""
            if isinstance(rm, type(mm)) and (k, s, p) != tuple(_first(v) for v in (rm.kernel_size, rm.stride, rm.padding)):
                rk, rs, rp = (_first(v) for v in (rm.kernel_size, rm.stride, rm.padding))
                fix = f"; with k={rk}, s={rs}, p={rp}: {conv_formula(min_[-1], rk, rs, rp)}"
            return (f"{what} outputs {_shape(mout)}, the package's {_shape(rout)}: its side is "
                    f"{conv_formula(min_[-1], k, s, p)}{fix}.")
        return f"{what} outputs {_shape(mout)} where the package's gives {_shape(rout)}."
    if error:
        done = f" after {len(got)} matching layers" if got else ""
        return f"your model fails on a {_shape(tuple(x.shape))} batch{done}: {error}"
    if len(got) != len(ref):
        return (f"your model has {len(got)} layers of the kinds compared "
                f"({', '.join(t.__name__ for t in types)}), the package's {len(ref)}.")
    with torch.no_grad():
        out_ref, out_mine = reference(x), mine(x)
    if out_ref.shape != out_mine.shape:
        return f"your output is {_shape(tuple(out_mine.shape))}, the package's {_shape(tuple(out_ref.shape))}."
    return None


def compare_outputs(reference: nn.Module, mine: nn.Module, x: torch.Tensor,
                    atol: float = 1e-5, rtol: float = 1e-4) -> tuple[bool, str]:
    with torch.no_grad():
        a = reference(x)
        b = run(mine, x.clone())
    if a.shape != b.shape:
        return False, f"your output is {_shape(tuple(b.shape))}, the package's {_shape(tuple(a.shape))}."
    if torch.allclose(a, b, atol=atol, rtol=rtol):
        return True, "same outputs"
    return False, (f"with the same weights your outputs differ from the package's by up to "
                   f"{(a - b).abs().max().item():.3g}.")
