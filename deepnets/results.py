"""Each notebook's headline figures, written to a JSON file the README's tables come from.

Full-profile runs write `notebooks/results/<notebook>.json` (committed). Any other
profile writes under `build/results/<profile>/` (ignored by git), and
`$DEEPNETS_RESULTS_DIR` overrides both, so smoke runs and CI never touch committed results.
"""

from __future__ import annotations

import json
import numbers
import os
import platform
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
TIMING_SUFFIXES = ("_seconds", "_per_sec")


def results_dir(profile: str) -> Path:
    """Where a run of `profile` writes its results file."""
    if os.environ.get("DEEPNETS_RESULTS_DIR"):
        return Path(os.environ["DEEPNETS_RESULTS_DIR"])
    if not (REPO / "notebooks").is_dir():  # installed outside a checkout of the course
        return Path.cwd() / "results" / profile
    if profile == "full":
        return REPO / "notebooks" / "results"
    return REPO / "build" / "results" / profile


def seeds_dir(profile: str, seed: int) -> Path:
    """Where `python -m deepnets.seeds` puts the results of a run with another seed."""
    return results_dir(profile) / "seeds" / f"seed{seed}"


def other_seeds(notebook: str, profile: str, exclude: int) -> dict[int, dict]:
    """{seed: results} of the runs of `notebook` with other seeds (written by `make seeds`)."""
    runs = {}
    for path in sorted((results_dir(profile) / "seeds").glob(f"seed*/{notebook}.json")):
        seed = int(path.parent.name.removeprefix("seed"))
        data = json.loads(path.read_text())
        if seed != exclude and data.get("profile") == profile:
            runs[seed] = data
    return runs


def device_name() -> str:
    """'cpu (N threads)' or 'cuda (<GPU name>)': where this run computes."""
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def _plain(value):
    if isinstance(value, torch.Tensor):
        value = value.item()
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(f"{float(value):.6g}")  # 6 significant figures: 6.5e-16 must not become 0
    raise TypeError(f"Can only record numbers, strings, booleans or lists of them, got "
                    f"{type(value).__name__}. Convert it first, e.g. float(x) or x.tolist().")


class Results:
    """Headline figures of one notebook run: `results.record(name=value, ...)`."""

    def __init__(self, notebook: str, profile: str):
        from deepnets.profiles import get_profile

        get_profile(profile)  # fail early on a typo
        self.notebook, self.profile = notebook, profile
        self.path = results_dir(profile) / f"{notebook}.json"
        self.figures: dict = {}
        self.timings: dict = {}
        self.start = time.perf_counter()

    def record(self, **values) -> None:
        """Add figures (timings are those named *_seconds or *_per_sec) and rewrite the file."""
        for name, value in values.items():
            target = self.timings if name.endswith(TIMING_SUFFIXES) else self.figures
            target[name] = _plain(value)
        self.timings["wall_seconds"] = round(time.perf_counter() - self.start, 1)
        data = {
            "notebook": self.notebook,
            "profile": self.profile,
            "device": device_name(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "figures": dict(sorted(self.figures.items())),
            "timings": dict(sorted(self.timings.items())),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, self.path)

    def record_seeds(self, name: str, by_seed: dict[int, float]) -> None:
        """Record a figure measured over seeds as name_mean, name_min, name_max and `seeds`."""
        if not by_seed:
            raise ValueError(f"No values for {name}: pass {{seed: value}} for at least one seed.")
        values = list(by_seed.values())
        self.record(**{f"{name}_mean": sum(values) / len(values), f"{name}_min": min(values),
                       f"{name}_max": max(values)}, seeds=sorted(by_seed))

    def __repr__(self) -> str:
        lines = [f"{self.notebook} ({self.profile} profile, {device_name()})"]
        lines += [f"  {k:<28} {v}" for k, v in sorted(self.figures.items())]
        lines += [f"  {k:<28} {v}" for k, v in sorted(self.timings.items())]
        return "\n".join(lines)
