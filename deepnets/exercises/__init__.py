"""Checks for the exercises at the end of each notebook.

Each ``check_...(answer)`` prints one line -- ``right: ...``, ``wrong: ...`` saying what is
off and why, or ``not answered yet: ...`` while the answer is still ``None`` / ``...`` /
a stub raising ``NotImplementedError`` -- and returns True only when the answer is right.
The expected values are computed here, from the package's models and formulas::

    from deepnets.exercises import check_receptive_field
    check_receptive_field(7)

``CHECKS`` maps each notebook ("00" .. "05") to its checks, with their kind
(compute / build / experiment).
"""

from ._core import NOT_ANSWERED, REGISTRY, RIGHT, WRONG
from .data_checks import *  # noqa: F401,F403
from .alexnet_checks import *  # noqa: F401,F403
from .vgg_checks import *  # noqa: F401,F403
from .gradient_checks import *  # noqa: F401,F403
from .resnet_checks import *  # noqa: F401,F403
from .families_checks import *  # noqa: F401,F403
from . import alexnet_checks, data_checks, gradient_checks, resnet_checks, vgg_checks

#: notebook -> {check name: kind}
CHECKS: dict[str, dict[str, str]] = {}
for _name, _fn in REGISTRY.items():
    CHECKS.setdefault(_fn.notebook, {})[_name] = _fn.kind

__all__ = ["CHECKS", "NOT_ANSWERED", "RIGHT", "WRONG", *REGISTRY]
