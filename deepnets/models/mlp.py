"""Deep plain MLPs for the vanishing-gradient experiments (notebook 03).

``deep_mlp(depth, width, activation, init)`` builds ``depth`` Linear layers:

    flatten -> Linear(in, width) -> act -> [Linear(width, width) -> act] x (depth - 2)
            -> Linear(width, classes)

With ``batch_norm=True`` each hidden Linear is followed by BatchNorm1d before the
activation, and the Linear has no bias: Ioffe & Szegedy (2015), Section 3.2, normalise
x = Wu before the non-linearity and drop b, whose effect the mean subtraction cancels
(BatchNorm's beta takes its role). With ``residual=True`` the width -> width blocks add
their input back: ``h = h + act(bn(linear(h)))`` -- an identity shortcut around every
hidden layer, so the gradient has a path that skips the activation's small derivative.
(The first and last Linear change the width and so get no shortcut. ResNet's blocks hold
two or three layers per shortcut -- He, Zhang, Ren & Sun 2015, "Deep Residual Learning",
Section 3.2; one layer per shortcut keeps this MLP's layer count equal to its plain twin's.)

``init`` is how every Linear weight is drawn (biases are set to 0 unless "default"):
- ``"default"``: PyTorch's own, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), std = 1/sqrt(3 fan_in) --
  the weights of Glorot & Bengio's (2010) "standard" initialisation (Section 2.3, eq. 1;
  n Var[W] = 1/3, their eq. 15), but PyTorch also draws the biases from that range where
  Glorot & Bengio set them to 0;
- a number s: N(0, s^2), e.g. 1.0 or 0.01;
- ``"xavier"``: Glorot & Bengio (2010) "normalized" uniform, Var = 2/(fan_in + fan_out)
  (Section 4.2.1, eq. 12 and 16);
- ``"he"``: He, Zhang, Ren & Sun (2015), "Delving Deep into Rectifiers", Section 2.2:
  normal, Var = 2/fan_in (eq. 10, derived for ReLU), biases 0.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from deepnets import checks
from .activations import Activation, make_activation

__all__ = ["DeepMLP", "deep_mlp", "init_linear", "default_init_std"]

INITS = ("default", "xavier", "he")
#: "default", "xavier", "he", or a standard deviation.
Init = str | float


def init_linear(layer: nn.Linear, init: Init) -> None:
    """Draw `layer`'s weight by the scheme `init` (see the module docstring)."""
    if init == "default":
        layer.reset_parameters()
        return
    w = layer.weight
    if isinstance(init, (int, float)) and not isinstance(init, bool):
        nn.init.normal_(w, 0.0, checks.positive_number("init", init))
    elif init == "xavier":
        nn.init.xavier_uniform_(w)
    elif init == "he":
        nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")
    else:
        checks.one_of("init", init, INITS, fix="Pass one of those or a standard deviation (a number).")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class Block(nn.Module):
    """Linear -> [BatchNorm1d] -> activation, optionally with an identity shortcut."""

    def __init__(self, fan_in: int, width: int, activation: Activation, batch_norm: bool,
                 residual: bool) -> None:
        """One hidden layer: ``fan_in`` inputs, ``width`` outputs; ``residual`` adds the input back."""
        super().__init__()
        if residual and fan_in != width:
            raise checks.ArgumentValueError(f"A residual block adds its input to its output, so fan_in "
                                            f"({fan_in}) must equal width ({width}). Pass residual=False.")
        # BatchNorm subtracts the batch mean, which cancels a bias: leave it out (Ioffe & Szegedy, Sec. 3.2)
        self.fc = nn.Linear(fan_in, width, bias=not batch_norm)
        self.bn = nn.BatchNorm1d(width) if batch_norm else None
        self.act = make_activation(activation)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.bn is not None:
            h = self.bn(h)
        h = self.act(h)
        return x + h if self.residual else h


class DeepMLP(nn.Module):
    """``depth`` Linear layers: ``blocks.0`` (in -> width), ``blocks.1 ... blocks.{depth-2}``
    (width -> width), then ``head`` (width -> classes)."""

    def __init__(self, depth: int, width: int = 256, activation: Activation = "sigmoid",
                 init: Init = "default", batch_norm: bool = False, residual: bool = False,
                 in_features: int = 28 * 28, num_classes: int = 10) -> None:
        """See :func:`deep_mlp`."""
        super().__init__()
        checks.positive_int("depth", depth)
        if depth < 2:
            raise checks.ArgumentValueError(f"depth counts the Linear layers, input and output included, "
                                            f"so it must be at least 2; got {depth}. Pass depth=2 or more.")
        for name, value in (("width", width), ("in_features", in_features), ("num_classes", num_classes)):
            checks.positive_int(name, value)
        make_activation(activation)  # a wrong name fails here, before any layer is built
        if not isinstance(init, str):
            checks.positive_number("init", init, fix="Pass 'default', 'xavier', 'he' or a standard deviation.")
        else:
            checks.one_of("init", init, INITS, fix="Pass one of those or a standard deviation (a number).")
        self.blocks = nn.Sequential(*[
            Block(in_features if i == 0 else width, width, activation, batch_norm,
                  residual=residual and i > 0)
            for i in range(depth - 1)])
        self.head = nn.Linear(width, num_classes)
        self.depth, self.width, self.init, self.in_features = depth, width, init, in_features
        for m in self.modules():
            if isinstance(m, nn.Linear):
                init_linear(m, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() < 2 or x[0].numel() != self.in_features:
            shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise checks.InputError(f"This DeepMLP takes images of {self.in_features} values each "
                                    f"(in_features), got {shape}. Pass a batch [N, ...] of "
                                    f"{self.in_features} values per image, or build it with "
                                    f"in_features=... to match.")
        checks.images("images", x, dims=x.dim(), model="This DeepMLP")
        return self.head(self.blocks(x.flatten(1)))


def deep_mlp(depth: int, width: int = 256, activation: Activation = "sigmoid", init: Init = "default",
             batch_norm: bool = False, residual: bool = False,
             in_features: int = 28 * 28, num_classes: int = 10) -> DeepMLP:
    """A plain MLP with ``depth`` Linear layers (see the module docstring), e.g.
    ``deep_mlp(20, 256, "sigmoid", "default")`` or ``deep_mlp(20, 256, "relu", "he")``."""
    return DeepMLP(depth, width, activation, init, batch_norm, residual, in_features, num_classes)


def default_init_std(fan_in: int) -> float:
    """Std of PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(3 * fan_in)
