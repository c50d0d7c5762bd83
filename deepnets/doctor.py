"""`python -m deepnets.doctor` (or `make doctor`): is this machine ready for the course?

One line per check, in the order a set-up goes wrong: Python and its virtual environment,
the pinned packages and what torch can compute on, the data, the Jupyter kernel, room on
disk and in memory, and how long the full profile would take here. A ✗ line is followed by
the command that fixes it; the exit status is 1 when something blocks the course.
`--quick` skips the five-second benchmark behind the time estimate (`make lab` and
`make test` run the doctor that way before they start).

It runs without torch, which is what a learner with a broken install has: torch is imported
only by the checks that need it, and when it cannot be, those are reported as not run.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Not deepnets.files.REPO: that module needs torch (through deepnets.checks), and the doctor must not.
REPO = Path(__file__).resolve().parents[1]
SUPPORTED_PYTHONS = ((3, 11), (3, 12), (3, 13))  # the wheels torch 2.14.1 ships (Makefile: SUPPORTED_PYTHONS)
REQUIREMENTS = REPO / "requirements.txt"
RESULTS = REPO / "notebooks" / "results"
BENCH = RESULTS / "bench.json"

# Room the full profile needs. Memory: the largest peak of a notebook's kernel, read from the
# results files (`peak_memory_gb`, where a run recorded it) plus room for JupyterLab's server.
# Where none is recorded: the smoke profile's largest peak, 3.0 GB for 02 (VGG at 64x64),
# measured with `/usr/bin/time papermill` on every notebook (01 took 2.1 GB, 04 1.4 GB); the
# full profile's larger images need more, so that figure is only a lower bound.
# Disk: a full run rewrites notebooks/ (outputs and results, 3.4 MB) and writes checkpoints
# under build/ (a few MB); 1 GB leaves room for pip's and matplotlib's caches.
SMOKE_PEAK_MEMORY_GB = 3.0
JUPYTER_SERVER_GB = 0.5
FULL_PROFILE_DISK_GB = 1.0

# The timed workload: notebook 04's ResNet-10 training step, the one `python -m deepnets.bench`
# times as `resnet10_cl_img_per_sec` (channels_last, batch 256) and records in bench.json.
BENCH_NET = "resnet10 (04)"
BENCH_FIGURE = "resnet10_cl_img_per_sec"
BENCH_SECONDS = 5.0
TIME = "time (full profile)"


@dataclass(frozen=True)
class Check:
    """One line of the report: what was found and, when it is wrong, the command that fixes it."""

    name: str
    ok: bool
    found: str
    fix: str = ""
    blocks: bool = True  # a ✗ that does not stop the course (the estimate) sets this False
    ran: bool = True  # False: not run, because what it needs is broken (another line says what)

    @classmethod
    def not_run(cls, name: str, why: str) -> Check:
        """A check skipped because a ✗ above it breaks what it needs."""
        return cls(name, False, f"not run: {why}", blocks=False, ran=False)

    def lines(self) -> list[str]:
        """The check as printed: ✓/✗ (– when not run), name, what was found, then `fix:` for a ✗."""
        out = [f"{'✓' if self.ok else '✗' if self.ran else '–'} {self.name}: {self.found}"]
        if not self.ok and self.fix:
            out += [f"    fix: {line}" for line in self.fix.splitlines()]
        return out


def python_here() -> str:
    """How to call this Python in a fix: a short path when it is the repository's venv."""
    exe = Path(sys.executable)
    try:
        return str(exe.relative_to(Path.cwd()))
    except ValueError:
        return str(exe)


def in_environment() -> str | None:
    """The virtual (or conda) environment this Python runs in, None when it is a system one."""
    if sys.prefix != sys.base_prefix or (Path(sys.prefix) / "conda-meta").is_dir():
        return sys.prefix
    return None


def check_python() -> Check:
    """The Python version is one the pinned wheels exist for, and it runs in an environment."""
    v = sys.version_info[:2]
    version = f"{v[0]}.{v[1]}.{sys.version_info[2]}"
    if v not in SUPPORTED_PYTHONS:
        allowed = ", ".join(f"{a}.{b}" for a, b in SUPPORTED_PYTHONS)
        return Check("Python", False, f"{version} ({sys.executable}); the course needs {allowed}",
                     "make  (it picks python3.13, 3.12 or 3.11 and says how to get one), "
                     "or see the README's 'Without make'")
    env = in_environment()
    if env is None:
        return Check("Python", False, f"{version} at {sys.executable} is not in a virtual environment",
                     "use the course's environment: .venv/bin/python -m deepnets.doctor "
                     "(make creates .venv; README: 'Without make')")
    return Check("Python", True, f"{version} in the environment {env}")


def read_pins(path: Path = REQUIREMENTS) -> dict[str, str]:
    """`name==version` lines of requirements.txt as {name: version}."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if "==" in line:
            name, version = line.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def installed_version(name: str) -> str | None:
    """The installed version of a distribution, None when it is not installed."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_packages() -> Check:
    """torch, torchvision and the other pinned packages are installed at their pins."""
    fix = f"{python_here()} -m pip install -r {REQUIREMENTS}"
    if not REQUIREMENTS.is_file():
        return Check("packages", False, f"{REQUIREMENTS} not found: deepnets is not installed from "
                     "a clone of the course", "pip install -e .  (from the clone's folder)")
    pins = read_pins()
    wrong = []
    for name, pinned in pins.items():
        have = installed_version(name)
        # torch's local label (2.14.1+cu130) names the build, not the release pinned.
        if have is None or have.split("+")[0] != pinned:
            wrong.append(f"{name} {have or 'missing'} (pinned {pinned})")
    if wrong:
        return Check("packages", False, ", ".join(wrong), fix)
    return Check("packages", True, f"torch {pins['torch']}, torchvision {pins['torchvision']} "
                 f"and the other {len(pins) - 2} pins of requirements.txt")


def torch_import_error() -> str | None:
    """Why `import torch` fails here ("ModuleNotFoundError: ..."), None when it works."""
    try:
        import torch  # noqa: F401
    except (ImportError, OSError) as e:  # a module missing, or a shared library that does not load
        return f"{type(e).__name__}: {e}"
    return None


def check_compute() -> Check:
    """torch imports, and what it can compute on here: a CUDA GPU or the CPU's threads."""
    error = torch_import_error()
    if error is not None:
        pins = read_pins() if REQUIREMENTS.is_file() else {}
        if installed_version("torch") is None or not pins:
            fix = f"{python_here()} -m pip install -r {REQUIREMENTS}  (what make does; README: 'Without make')"
        else:  # installed but broken: pip would call the pinned version already satisfied
            fix = (f"{python_here()} -m pip install --force-reinstall torch=={pins['torch']} "
                   f"torchvision=={pins['torchvision']}")
        return Check("compute", False, f"torch cannot be imported ({error.splitlines()[0]})", fix)
    import torch

    threads = f"{torch.get_num_threads()} CPU threads ({os.cpu_count()} logical cores)"
    if torch.cuda.is_available():
        return Check("compute", True, f"CUDA GPU {torch.cuda.get_device_name(0)}; {threads}")
    build = f"this torch build supports CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only torch build"
    return Check("compute", True, f"no CUDA GPU here ({build}): the CPU, {threads}")


def check_data() -> Check:
    """The four Fashion-MNIST files are found (deepnets.data's own search) with the right checksums."""
    from deepnets import data

    fix = f"{python_here()} -m deepnets.data --download  (or make data; README: 'The data')"
    try:
        folder = data.find_data_dir()
    except data.DataError as e:
        return Check("data", False, str(e).splitlines()[0], fix)
    origin = next((o for o, f in data.candidate_dirs() if f == folder), "")
    for name, sha256 in data.FILE_SHA256.items():
        try:
            data.read_idx(folder / name, sha256)
        except data.DataError as e:
            return Check("data", False, str(e).splitlines()[0],
                         f"rm {folder / name}, then {fix}")
    return Check("data", True, f"Fashion-MNIST in {folder} ({origin}), {len(data.FILE_SHA256)} checksums verified")


def check_kernel() -> Check:
    """The `python3` kernel JupyterLab and papermill start is this Python, with deepnets importable."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return Check("Jupyter kernel", False, "jupyter_client is not installed",
                     f"{python_here()} -m pip install -r {REQUIREMENTS}")
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        return Check("Jupyter kernel", False, "no kernel named python3 (ipykernel missing?)",
                     f"{python_here()} -m pip install -r {REQUIREMENTS}")
    argv0 = spec.argv[0]
    # jupyter_client runs a bare "python" as the Python that runs Jupyter itself.
    if argv0 in ("python", f"python{sys.version_info[0]}", "python{0}.{1}".format(*sys.version_info)):
        argv0 = sys.executable
    where = f"{spec.resource_dir}/kernel.json"
    remove = (f"{python_here()} -m jupyter kernelspec remove -y python3  (deletes {spec.resource_dir}; "
              f"this environment's own kernel takes its place)")
    probe = ("import importlib.util, sys; s = importlib.util.find_spec('deepnets'); "
             "print(sys.prefix); print(s.origin if s else '')")
    env = {**os.environ, **spec.env}
    try:
        out = subprocess.run([argv0, "-c", probe], capture_output=True, text=True, env=env,
                             timeout=30).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired) as e:
        return Check("Jupyter kernel", False, f"{where} starts {argv0}, which does not run ({e})", remove)
    if len(out) < 2 or out[0] != sys.prefix or not out[1]:
        other = out[0] if out else "unknown"
        return Check("Jupyter kernel", False,
                     f"{where} starts {argv0}, the Python of another environment ({other}), "
                     f"not this one ({sys.prefix}) where deepnets is installed", remove)
    return Check("Jupyter kernel", True, f"python3 starts this environment's Python, deepnets from {Path(out[1]).parent}")


def memory_needed(results: Path = RESULTS) -> tuple[float, str]:
    """GB of memory the full profile needs here, and where that figure comes from."""
    _, runs = recorded_runs(results)
    peaks = {k: r["peak_memory_gb"] for k, r in runs.items() if "peak_memory_gb" in r}
    if peaks:
        worst = max(peaks, key=peaks.get)
        return peaks[worst] + JUPYTER_SERVER_GB, f"{worst}'s recorded peak {peaks[worst]:g} GB + JupyterLab"
    return (SMOKE_PEAK_MEMORY_GB + JUPYTER_SERVER_GB,
            f"the smoke profile's peak {SMOKE_PEAK_MEMORY_GB:g} GB + JupyterLab, a lower bound: no full-profile "
            "peak is recorded")


def check_room(results: Path = RESULTS) -> Check:
    """Free disk space and memory against what the full profile needs (see the figures above)."""
    disk = shutil.disk_usage(REPO).free / 1e9
    memory = available_memory_gb()
    need, origin = memory_needed(results)
    found = (f"{disk:.1f} GB free on disk (the full profile needs {FULL_PROFILE_DISK_GB:g}), "
             + (f"{memory:.1f} GB memory available (needs {need:g}: {origin})"
                if memory is not None else "memory not measurable here"))
    if disk < FULL_PROFILE_DISK_GB:
        return Check("room", False, found, f"free disk space on {REPO}'s drive (pip cache purge frees pip's cache)")
    if memory is not None and memory < need:
        return Check("room", False, found, "close other programs (browsers, other notebooks' kernels), "
                     "or use the smoke profile: DEEPNETS_PROFILE=smoke")
    return Check("room", True, found)


def available_memory_gb() -> float | None:
    """MemAvailable from /proc/meminfo (Linux); None where there is no such file."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / 1e9
    except OSError:
        pass
    return None


def benchmark_img_per_sec(seconds: float = BENCH_SECONDS) -> float:
    """Training images/s of notebook 04's net, the step `deepnets.bench` times, for `seconds`."""
    import torch

    from deepnets import bench

    build, size, batch = bench.training_nets()[BENCH_NET]
    model = build().train().to(memory_format=torch.channels_last)
    x = torch.randn(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    step = bench._train_step(model, x, torch.randint(0, 10, (batch,)))
    step()  # warm-up: the first step allocates and picks kernels
    times, start = [], time.perf_counter()
    while time.perf_counter() - start < seconds or len(times) < 3:
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return batch / statistics.median(times)


def recorded_runs(results: Path = RESULTS) -> tuple[dict | None, dict[str, dict]]:
    """bench.json and the full-profile results files, as recorded."""
    def read(path: Path) -> dict:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):  # missing or damaged: estimate from the others
            return {}

    bench = read(results / "bench.json") or None
    runs = {}
    for path in sorted(results.glob("[0-9][0-9]_*.json")):
        run = read(path)
        if (run.get("profile") == "full" and run.get("complete") is not False
                and "wall_seconds" in run.get("timings", {})):
            runs[run["notebook"]] = run
    return bench, runs


def check_time(quick: bool = False, results: Path = RESULTS) -> Check:
    """The full profile's time per notebook here: recorded wall times scaled by a benchmark ratio."""
    name = TIME
    if quick:
        return Check(name, True, "estimate skipped (--quick); make doctor gives it")
    import torch

    from deepnets.results import device_name

    bench, runs = recorded_runs(results)
    reference = bench and bench.get("figures", {}).get(BENCH_FIGURE)
    # The ratio is only honest when the wall times and the reference come from one device.
    same = {k: r for k, r in runs.items() if bench and r.get("device") == bench.get("device")}
    if not reference or not same:
        return Check(name, False, f"no estimate: {BENCH.name} with {BENCH_FIGURE} and full-profile "
                     f"results measured on the same device are not in {results}",
                     "python -m deepnets.bench  (records the reference), then make notebooks", blocks=False)
    if torch.cuda.is_available() and not bench["device"].startswith("cuda"):
        return Check(name, True, f"no estimate for this GPU: the recorded runs are from {bench['device']}")
    here = benchmark_img_per_sec()
    ratio = reference / here
    per_notebook = ", ".join(f"{k[:2]} {_duration(r['timings']['wall_seconds'] * ratio)}" for k, r in same.items())
    total = _duration(sum(r["timings"]["wall_seconds"] for r in same.values()) * ratio)
    return Check(name, True, f"about {per_notebook} (all: {total}); from notebook 04's training step "
                 f"at {here:,.0f} img/s here ({device_name()}) vs {reference:,.0f} img/s recorded in "
                 f"{BENCH.name} on {bench['device']}, where the results files' wall times were measured; "
                 "other programs running now slow the benchmark and the notebooks alike")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


def run_checks(quick: bool = False) -> list[Check]:
    """Every check, in the order a set-up goes wrong; without torch, those that need it are not run."""
    compute = check_compute()
    has_torch = torch_import_error() is None

    def needs_torch(name: str, check: Callable[[], Check]) -> Check:
        return check() if has_torch else Check.not_run(name, "it needs torch, which cannot be imported (see compute)")

    return [check_python(), check_packages(), compute, needs_torch("data", check_data), check_kernel(),
            check_room(), needs_torch(TIME, lambda: check_time(quick))]


def main(argv: list[str] | None = None) -> int:
    """Print the report; the exit status is 1 when a ✗ blocks the course."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the five-second time estimate")
    args = parser.parse_args(argv)
    checks = run_checks(args.quick)
    for check in checks:
        print("\n".join(check.lines()))
    blocking = [c.name for c in checks if not c.ok and c.blocks]
    if blocking:
        print(f"The course cannot run here until {', '.join(blocking)} {'is' if len(blocking) == 1 else 'are'} "
              "fixed (the commands above).")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
