"""Activations by name: the one table every model of the course builds them from."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from deepnets.checks import ArgumentTypeError, one_of

#: The activations the course compares, by name (notebooks 01 and 03).
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,   # slope 0.01 for z < 0
    "elu": nn.ELU,
    "gelu": nn.GELU,
}

# These take inplace=True, which saves one feature map per layer of memory.
_INPLACE = (nn.ReLU, nn.LeakyReLU, nn.ELU)

#: A name from ACTIVATIONS, or a callable returning a module (e.g. the class nn.SiLU).
Activation = str | Callable[[], nn.Module]


def make_activation(activation: Activation, inplace: bool = False) -> nn.Module:
    """A fresh activation module from a name in ``ACTIVATIONS`` or a callable returning one.

    ``inplace=True`` overwrites the input where the module can (ReLU, LeakyReLU, ELU); use it
    only where nothing else reads that input, as after a conv in AlexNet.
    """
    if isinstance(activation, str):
        cls = ACTIVATIONS[one_of("activation", activation, ACTIVATIONS,
                                 fix="Pass one of those names or an nn.Module class such as nn.SiLU.")]
        return cls(inplace=True) if inplace and issubclass(cls, _INPLACE) else cls()
    if not callable(activation):
        raise ArgumentTypeError(f"activation must be a name or a callable returning an nn.Module, "
                                f"got {activation!r}. Pass a name such as 'relu' or a class such as nn.SiLU.")
    module = activation()
    if not isinstance(module, nn.Module):
        raise ArgumentTypeError(f"activation must return an nn.Module, but it returned {module!r}. "
                                f"Pass a name such as 'relu' or a class such as nn.SiLU.")
    return module
