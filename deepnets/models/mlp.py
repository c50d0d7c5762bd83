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

__all__ = ["ACTIVATIONS", "DeepMLP", "deep_mlp", "init_linear", "default_init_std"]

#: The "various functions" of notebook 03, by name.
ACTIVATIONS: dict[str, type[nn.Module] | nn.Module] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,   # slope 0.01 for z < 0
    "elu": nn.ELU,
    "gelu": nn.GELU,
}

INITS = ("default", "xavier", "he")


def _make_activation(activation) -> nn.Module:
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise ValueError(f"Unknown activation {activation!r}; use one of {list(ACTIVATIONS)} "
                             "or pass an nn.Module class.")
        return ACTIVATIONS[activation]()
    if isinstance(activation, type) and issubclass(activation, nn.Module):
        return activation()
    raise TypeError(f"activation must be a name or an nn.Module class, got {activation!r}")


def init_linear(layer: nn.Linear, init) -> None:
    """Draw `layer`'s weight by the scheme `init` (see the module docstring)."""
    if init == "default":
        layer.reset_parameters()
        return
    w = layer.weight
    if isinstance(init, (int, float)) and not isinstance(init, bool):
        nn.init.normal_(w, 0.0, float(init))
    elif init == "xavier":
        nn.init.xavier_uniform_(w)
    elif init == "he":
        nn.init.kaiming_normal_(w, mode="fan_in", nonlinearity="relu")
    else:
        raise ValueError(f"Unknown init {init!r}; use one of {INITS} or a std (a number).")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)


class Block(nn.Module):
    """Linear -> [BatchNorm1d] -> activation, optionally with an identity shortcut."""

    def __init__(self, fan_in: int, width: int, activation, batch_norm: bool, residual: bool):
        super().__init__()
        if residual and fan_in != width:
            raise ValueError("A residual block needs fan_in == width.")
        # BatchNorm subtracts the batch mean, which cancels a bias: leave it out (Ioffe & Szegedy, Sec. 3.2)
        self.fc = nn.Linear(fan_in, width, bias=not batch_norm)
        self.bn = nn.BatchNorm1d(width) if batch_norm else None
        self.act = _make_activation(activation)
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

    def __init__(self, depth: int, width: int = 256, activation="sigmoid", init="default",
                 batch_norm: bool = False, residual: bool = False,
                 in_features: int = 28 * 28, num_classes: int = 10):
        super().__init__()
        if depth < 2:
            raise ValueError("depth counts the Linear layers, input and output included: >= 2.")
        self.blocks = nn.Sequential(*[
            Block(in_features if i == 0 else width, width, activation, batch_norm,
                  residual=residual and i > 0)
            for i in range(depth - 1)])
        self.head = nn.Linear(width, num_classes)
        self.depth, self.width, self.init = depth, width, init
        for m in self.modules():
            if isinstance(m, nn.Linear):
                init_linear(m, init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x.flatten(1)))


def deep_mlp(depth: int, width: int = 256, activation="sigmoid", init="default",
             batch_norm: bool = False, residual: bool = False,
             in_features: int = 28 * 28, num_classes: int = 10) -> DeepMLP:
    """A plain MLP with ``depth`` Linear layers (see the module docstring), e.g.
    ``deep_mlp(20, 256, "sigmoid", "default")`` or ``deep_mlp(20, 256, "relu", "he")``."""
    return DeepMLP(depth, width, activation, init, batch_norm, residual, in_features, num_classes)


def default_init_std(fan_in: int) -> float:
    """Std of PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    return 1.0 / math.sqrt(3 * fan_in)
