"""Profiles: how much data and time a notebook run spends.

`smoke` is what CI runs (tiny stratified subsets, seconds); `full` is the real lesson
(all 55,000 training images left after the validation split, minutes on a 2-core CPU) and
what committed outputs show; `gpu` is `full` plus the sections that train the real-size
networks at the papers' input sizes, which need a CUDA GPU (`deepnets.train.paper_size_run`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from deepnets.checks import ArgumentTypeError, ArgumentValueError


@dataclass(frozen=True)
class Profile:
    """A named run size: images per class for the train, validation and test subsets (None = all)."""

    name: str
    train_per_class: int | None
    val_per_class: int | None
    test_per_class: int | None

    @property
    def is_smoke(self) -> bool:
        return self.name == "smoke"

    def choose(self, *, full: Any, smoke: Any, gpu: Any = None) -> Any:
        """The value meant for this profile, e.g. `epochs = P.choose(full=12, smoke=1)`.

        The gpu profile is the full lesson plus the real-size sections, so it takes
        `full`'s value unless `gpu=` is given.
        """
        if self.name == "gpu":
            return full if gpu is None else gpu
        return {"full": full, "smoke": smoke}[self.name]


PROFILES = {
    "smoke": Profile("smoke", train_per_class=50, val_per_class=20, test_per_class=30),
    "full": Profile("full", train_per_class=None, val_per_class=None, test_per_class=None),
    "gpu": Profile("gpu", train_per_class=None, val_per_class=None, test_per_class=None),
}


def get_profile(name: str) -> Profile:
    """The profile called `name` ("smoke", "full" or "gpu"; any case, e.g. "Full")."""
    where = "set PROFILE in the notebook's first cell or $DEEPNETS_PROFILE"
    if not isinstance(name, str):
        if isinstance(name, Profile):  # P itself where its name is asked for, e.g. Results(nb, P)
            raise ArgumentTypeError(f"A profile name must be a string, got the Profile {name.name!r} itself. "
                                    f"Pass its name instead: {name.name!r} (P.name).")
        raise ArgumentTypeError(f"A profile name must be a string, got {name!r} ({type(name).__name__}). "
                                f"Pass one of {', '.join(map(repr, PROFILES))} ({where}).")
    if name.strip().lower() not in PROFILES:
        near = difflib.get_close_matches(name.strip().lower(), PROFILES, n=1)
        hint = f" Did you mean {near[0]!r}?" if near else ""
        raise ArgumentValueError(f"Unknown profile {name!r}.{hint} Use one of: {', '.join(PROFILES)} ({where}).")
    return PROFILES[name.strip().lower()]
