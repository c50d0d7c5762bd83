"""Each notebook's headline figures, written to a JSON file the README's tables come from.

Full-profile runs write `notebooks/results/<notebook>.json` (committed). Any other
profile writes under `build/results/<profile>/` (ignored by git), and
`$DEEPNETS_RESULTS_DIR` overrides both, so smoke runs and CI never touch committed results.

A full-profile run keeps its figures in `<notebook>.json.partial` beside the results file
until its last cell calls `results.finish()`, which writes `<notebook>.json` whole (marked
`"complete": true`): a run interrupted or failing half-way leaves the committed file as it
was. Other profiles write `<notebook>.json` at every `record` (CI reads it after a run).
A figure that is NaN or infinite is written as `null` and named under `non_finite`, so the
file stays strict JSON. `load_results` reads a results file and refuses a partial one.
Each file also holds the run's `peak_memory_gb` (the process's peak resident set so far), which
`python -m deepnets.doctor` compares with a machine's memory.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch

from deepnets import checks
from deepnets.checks import ResultsFileError
from deepnets.files import REPO, write_atomically

TIMING_SUFFIXES = ("_seconds", "_per_sec")
REQUIRED_KEYS = ("notebook", "profile", "figures", "timings")


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


def rewrite_command(notebook: str, profile: str, seed: int | None = None) -> str:
    """The command that runs `notebook` again and rewrites its results file."""
    if seed:
        return f"python -m deepnets.seeds notebooks/{notebook}.ipynb --seeds {seed} --profile {profile}"
    return f"make notebooks NOTEBOOKS=notebooks/{notebook}.ipynb PROFILE={profile}"


def load_results(path: str | os.PathLike, seed: int | None = None) -> dict[str, Any]:
    """A whole results file as a dict; a partial, truncated or foreign file is refused with
    the command that rewrites it."""
    path = Path(path)
    notebook = path.name.split(".")[0]
    profile = "full"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultsFileError(f"The results file {path} does not exist. Run "
                               f"`{rewrite_command(notebook, profile, seed)}` to write it.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ResultsFileError(f"The results file {path} cannot be read ({e}): it is truncated or "
                               f"damaged. Run `{rewrite_command(notebook, profile, seed)}` to rewrite "
                               f"it.") from e
    if isinstance(data, dict):
        profile = data.get("profile", profile) if isinstance(data.get("profile"), str) else profile
    missing = [k for k in REQUIRED_KEYS if not isinstance(data, dict) or k not in data]
    if missing or data.get("complete") is False:
        what = (f"lacks {', '.join(missing)}" if missing else "was written by a run that did not finish")
        raise ResultsFileError(f"The results file {path} is partial: it {what}. Run "
                               f"`{rewrite_command(notebook, profile, seed)}` to rewrite it whole.")
    return data


def other_seeds(notebook: str, profile: str, exclude: int,
                match: dict[str, Any] | None = None) -> dict[int, dict[str, Any]]:
    """{seed: results} of the runs of `notebook` with other seeds (written by `make seeds`).

    `match` keeps only runs whose recorded figures equal these ({"epochs": 12}), so seeds of
    an older recipe are never averaged with the current one.
    """
    runs = {}
    for path in sorted((results_dir(profile) / "seeds").glob(f"seed*/{notebook}.json")):
        seed = int(path.parent.name.removeprefix("seed"))
        if seed == exclude:
            continue
        data = load_results(path, seed=seed)
        figures = data.get("figures", {})
        if data.get("profile") == profile and all(figures.get(k) == v for k, v in (match or {}).items()):
            runs[seed] = data
    return runs


def device_name() -> str:
    """'cpu (N threads)' or 'cuda (<GPU name>)': where this run computes."""
    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def peak_memory_gb() -> float | None:
    """The most memory this process has held so far (its peak resident set), in GiB."""
    try:
        import resource
    except ImportError:  # Windows has no getrusage
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux counts ru_maxrss in KiB, macOS in bytes.
    return round(peak / (2 ** 30 if sys.platform == "darwin" else 2 ** 20), 2)


def _plain(name: str, value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise checks.ArgumentTypeError(f"{name} is a tensor of {value.numel()} values; record one "
                                           f"number per name. Pass {name}=x.item() or x.tolist().")
        value = value.item()
    if isinstance(value, bool) or isinstance(value, str) or value is None:
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(name, v) for v in value]
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        if not math.isfinite(value):
            return value  # Results.record writes it as null and names it under non_finite
        return float(f"{float(value):.6g}")  # 6 significant figures: 6.5e-16 must not become 0
    raise checks.ArgumentTypeError(
        f"Can only record numbers, strings, booleans or lists of them, got {name}={value!r} "
        f"({type(value).__name__}). Convert it first, e.g. float(x) or x.tolist().")


def _strict(value: Any, name: str, non_finite: dict[str, str]) -> Any:
    """`value` with NaN and infinities replaced by None, each noted in `non_finite`."""
    if isinstance(value, list):
        return [_strict(v, f"{name}[{i}]", non_finite) for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        non_finite[name] = str(value)
        return None
    return value


class Results:
    """Headline figures of one notebook run: `results.record(name=value, ...)`, then
    `results.finish()` in the notebook's last cell."""

    def __init__(self, notebook: str, profile: str) -> None:
        """The results of `notebook` (e.g. "04_resnet") run in `profile` ("smoke" or "full")."""
        from deepnets.profiles import get_profile

        if not isinstance(notebook, str) or not notebook or "/" in notebook or notebook.endswith(".ipynb"):
            raise checks.ArgumentValueError(f"notebook must be the notebook's name without folder or "
                                            f"suffix, got {notebook!r}. Pass e.g. '04_resnet'.")
        # The canonical name ("Full" -> "full"): it picks the folder and whether writes wait for finish().
        profile = get_profile(profile).name
        self.notebook, self.profile = notebook, profile
        self.path = results_dir(profile) / f"{notebook}.json"
        # The full profile's file is committed: it is written only by finish(), whole.
        self.partial_path = self.path.with_name(self.path.name + ".partial")
        self.figures: dict[str, Any] = {}
        self.timings: dict[str, Any] = {}
        self.start = time.perf_counter()

    @property
    def deferred(self) -> bool:
        """True when figures wait in the side file until `finish` (the full profile)."""
        return self.profile == "full"

    def record(self, **values: Any) -> None:
        """Add figures (timings are those named *_seconds or *_per_sec) and rewrite the file
        (the side file, in the full profile)."""
        for name, value in values.items():
            target = self.timings if name.endswith(TIMING_SUFFIXES) else self.figures
            target[name] = _plain(name, value)
        self._write(complete=not self.deferred)

    def finish(self) -> None:
        """The run is complete: write the results file whole and remove the side file."""
        self._write(complete=True)
        self.partial_path.unlink(missing_ok=True)

    def _data(self, complete: bool) -> dict[str, Any]:
        self.timings["wall_seconds"] = round(time.perf_counter() - self.start, 1)
        non_finite: dict[str, str] = {}
        data = {
            "notebook": self.notebook,
            "profile": self.profile,
            "device": device_name(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "complete": complete,
            "figures": {k: _strict(v, k, non_finite) for k, v in sorted(self.figures.items())},
            "timings": {k: _strict(v, k, non_finite) for k, v in sorted(self.timings.items())},
        }
        peak = peak_memory_gb()
        if peak is not None:  # what `python -m deepnets.doctor` compares with this machine's memory
            data["peak_memory_gb"] = peak
        if non_finite:
            data["non_finite"] = non_finite
        return data

    def _write(self, complete: bool) -> Path:
        text = json.dumps(self._data(complete), indent=2, allow_nan=False) + "\n"
        target = self.path if complete else self.partial_path
        return write_atomically(target, text)

    def record_seeds(self, name: str, by_seed: dict[int, float]) -> None:
        """Record a figure measured over seeds as name_mean, name_min, name_max and `seeds`."""
        if not isinstance(by_seed, dict):
            raise checks.ArgumentTypeError(f"by_seed must be a dict {{seed: value}}, got "
                                           f"{type(by_seed).__name__}. Pass e.g. {{0: 0.91, 1: 0.92}}.")
        if not by_seed:
            raise checks.EmptyDataError(f"by_seed holds no values for {name}: pass {{seed: value}} for "
                                        f"at least one seed.")
        values = list(by_seed.values())
        self.record(**{f"{name}_mean": sum(values) / len(values), f"{name}_min": min(values),
                       f"{name}_max": max(values)}, seeds=sorted(by_seed))

    def __repr__(self) -> str:
        lines = [f"{self.notebook} ({self.profile} profile, {device_name()})"]
        lines += [f"  {k:<28} {v}" for k, v in sorted(self.figures.items())]
        lines += [f"  {k:<28} {v}" for k, v in sorted(self.timings.items())]
        return "\n".join(lines)
