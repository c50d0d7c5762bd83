"""Is a difference real? Spread over seeds, and the words a conclusion may use.

A single run of a small net on a few thousand images moves by a point or more when only
the seed changes. So the course never concludes from one pair of runs: each side of a
comparison is run with several seeds (or set against a noise floor measured in the same
run), and the sentence that states the result is chosen here, from the figures, never
typed after looking at them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from deepnets import checks


@dataclass(frozen=True)
class Spread:
    """One measurement repeated over seeds: its values, mean and range."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.values) == 0:
            raise checks.EmptyDataError("values is empty: a spread needs at least one value. Run the "
                                        "measurement first and pass its values over seeds.")

    @property
    def n(self) -> int:
        """How many seeds."""
        return len(self.values)

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    @property
    def lo(self) -> float:
        return min(self.values)

    @property
    def hi(self) -> float:
        return max(self.values)

    @property
    def range(self) -> float:
        return self.hi - self.lo

    def format(self, scale: float = 100, unit: str = "%", digits: int = 1) -> str:
        """'84.1% (83.2 to 85.0%, 3 seeds)', or just the value for a single seed.

        ``unit`` follows each number as written: "%" for accuracies, " points" for
        differences of percentages (a gap), "" for plain numbers."""
        m, lo, hi = (f"{scale * v:.{digits}f}" for v in (self.mean, self.lo, self.hi))
        if self.n == 1:
            return f"{m}{unit} (1 seed)"
        return f"{m}{unit} ({lo} to {hi}{unit}, {self.n} seeds)"


def spread(values: Iterable[float]) -> Spread:
    """The Spread of a measurement's values over seeds."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise checks.ArgumentTypeError(f"values must be a list of numbers, one per seed, got "
                                       f"{type(values).__name__}. Pass e.g. [0.91, 0.92, 0.90].")
    values = tuple(values)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise checks.ArgumentValueError(f"values[{i}] is {v!r}; a spread is of finite numbers. "
                                            f"Pass one number per seed (a run that diverged has no value: "
                                            f"leave it out and say so).")
    return Spread(tuple(float(v) for v in values))


@dataclass(frozen=True)
class Comparison:
    """Condition b against condition a: the difference of means and whether it beats the noise."""

    a_name: str
    b_name: str
    a: Spread
    b: Spread
    noise_floor: float | None = None
    quantity: str = "test accuracy"
    scale: float = 100
    unit: str = "points"
    value_unit: str = "%"
    digits: int = 1

    @property
    def diff(self) -> float:
        """Mean of b minus mean of a."""
        return self.b.mean - self.a.mean

    @property
    def beyond_noise(self) -> bool:
        """True when the difference is larger than the run-to-run noise.

        With a measured noise floor: |difference of means| > floor. Without one, each side
        must have at least 2 seeds and the two ranges must not overlap (every seed of one
        condition beats every seed of the other).
        """
        if self.noise_floor is not None:
            return abs(self.diff) > self.noise_floor
        if not self.tested:
            return False
        return self.b.lo > self.a.hi or self.b.hi < self.a.lo

    @property
    def evidence(self) -> str:
        """What the verdict rests on, in words."""
        if self.noise_floor is not None:
            return f"the seed-noise floor is {self.scale * self.noise_floor:.{self.digits}f} {self.unit}"
        if not self.tested:
            return "one seed per side cannot show a difference"
        if self.beyond_noise:
            side = "above" if self.diff > 0 else "below"
            return f"every seed of {self.b_name} is {side} every seed of {self.a_name}"
        return "the ranges over seeds overlap"

    @property
    def tested(self) -> bool:
        """False when nothing measured the noise: one seed a side and no noise floor."""
        return self.noise_floor is not None or (self.a.n >= 2 and self.b.n >= 2)

    @property
    def words(self) -> str:
        """The verdict: larger than, within, or not tested against the seed noise."""
        if not self.tested:
            return "not tested against the seed noise"
        return "larger than the seed noise" if self.beyond_noise else "within the seed noise"

    def sentence(self) -> str:
        """One line a notebook prints: the figures, the difference and the verdict."""
        d = self.scale * self.diff
        return (f"{self.b_name} vs {self.a_name}: {self.quantity} "
                f"{self.b.format(self.scale, self.value_unit, self.digits)} vs "
                f"{self.a.format(self.scale, self.value_unit, self.digits)}, "
                f"a difference of {d:+.{self.digits}f} {self.unit}: {self.words} ({self.evidence}).")

    def __str__(self) -> str:
        return self.sentence()


def compare(a: Sequence[float], b: Sequence[float], a_name: str = "a", b_name: str = "b", *,
            noise_floor: float | None = None, quantity: str = "test accuracy",
            scale: float = 100, unit: str = "points", value_unit: str | None = None,
            digits: int = 1) -> Comparison:
    """Compare condition b with condition a, each a list of values over seeds.

    ``scale`` multiplies every number shown; ``unit`` follows the difference, ``value_unit``
    each value (default "%" when scale is 100, else none: pass " points" for gaps).
    ``digits`` is the decimals of every number shown (values, ranges, difference and noise
    floor alike): a ratio near 1 needs 2, or 1.04 vs 0.77 reads as 1.0 vs 0.8 differing by 0.3.
    """
    if noise_floor is not None:
        if isinstance(noise_floor, bool) or not isinstance(noise_floor, numbers.Real):
            raise checks.ArgumentTypeError(f"noise_floor must be a number or None, got {noise_floor!r}. "
                                           f"Pass the run-to-run noise, e.g. 0.005.")
        if noise_floor < 0:
            raise checks.ArgumentValueError(f"noise_floor is a size, so it cannot be negative; got "
                                            f"{noise_floor!r}. Pass its absolute value.")
    checks.positive_number("scale", scale, fix="Pass 100 for fractions shown as percentages, or 1.")
    checks.non_negative_int("digits", digits, fix="Pass the decimals to show, e.g. 1, or 2 for ratios near 1.")
    if value_unit is None:
        value_unit = "%" if scale == 100 else ""
    return Comparison(a_name, b_name, spread(a), spread(b), noise_floor, quantity, scale, unit, value_unit,
                      digits)
