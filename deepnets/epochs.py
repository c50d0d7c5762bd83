"""The epoch counts of notebooks 02 and 04, checked on the validation split.

    python -m deepnets.epochs            # make epochs: both notebooks, seeds 0, 1 and 2

Both notebooks' final nets once trained for fewer epochs (02: 7, 04: 15), and the counts were
raised after their mean test accuracy fell short of the course's targets: a choice made with a
test figure in view. This command trains each final recipe again at its earlier count, with
the seeds of the notebook's own runs (and, for 02, each seed's peak learning rate, read from
that seed's results file), through `python -m deepnets.train --no-test`: the validation split
is scored, the test set is not. One results file per run goes to
`notebooks/results/epochs/`. Each notebook then sets these runs against its own final nets,
seed by seed, and `verdict` says in words whether validation supports the raise.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from deepnets import checks
from deepnets.evidence import Comparison, compare
from deepnets.files import REPO
from deepnets.results import load_results, results_dir, seeds_dir

EARLIER_EPOCHS = {"02_vgg16": 7, "04_resnet": 15}   # before each count was raised
SEEDS = (0, 1, 2)


def recipe(notebook: str, figures: dict[str, Any]) -> list[str]:
    """The flags of `python -m deepnets.train` that train `notebook`'s final recipe
    (`figures`: that seed's recorded figures, for 02's peak learning rate)."""
    sgd = ["--optimizer", "sgd", "--momentum", "0.9", "--weight-decay", "5e-4", "--schedule", "onecycle"]
    if notebook == "02_vgg16":   # VGG-B/4 + batch norm, no augmentation (02, "The recipe")
        return ["--model", "fashion_vgg", *sgd, "--batch-size", "128", "--lr", str(figures["lr_bn"])]
    if notebook == "04_resnet":  # ResNet-10, flips only, label smoothing 0.1 (04, "The recipe")
        return ["--model", "fashion_resnet", *sgd, "--batch-size", "256", "--lr", "0.2", "--augment", "--pad", "0",
                "--label-smoothing", "0.1"]
    raise checks.ArgumentValueError(f"No earlier epoch count is known for {notebook!r}. "
                                    f"Pass one of {', '.join(EARLIER_EPOCHS)}.")


def results_path(notebook: str, seed: int) -> Path:
    """Where the run of `notebook`'s recipe at its earlier epoch count with `seed` writes its figures."""
    return results_dir("full") / "epochs" / f"{notebook}_{EARLIER_EPOCHS[notebook]}epochs_seed{seed}.json"


def command(notebook: str, seed: int) -> list[str]:
    """The `python -m deepnets.train` arguments of one validation-only run at the earlier count
    (02's learning rate read from that seed's results file of the notebook)."""
    folder = results_dir("full") if seed == 0 else seeds_dir("full", seed)
    figures = load_results(folder / f"{notebook}.json", seed=seed or None)["figures"]
    out = results_path(notebook, seed)
    return [*recipe(notebook, figures), "--epochs", str(EARLIER_EPOCHS[notebook]), "--seed", str(seed),
            "--no-test", "--results", str(out.relative_to(REPO) if out.is_relative_to(REPO) else out)]


def _settings(argv: list[str]) -> dict[str, Any]:
    """Every setting of a `python -m deepnets.train` command line, defaults included, less where it
    writes and its folder-loading workers (which change no figure of a Fashion-MNIST run)."""
    from deepnets.train import build_parser

    settings = vars(build_parser().parse_args(argv))
    for name in ("results", "workers"):
        settings.pop(name)
    return settings


def problem(notebook: str, seed: int, data: dict[str, Any], lr: float | None = None) -> str | None:
    """Why a results file of `python -m deepnets.train` is not a finished run of `notebook`'s recipe
    today at the earlier count with `seed` (at peak rate `lr`, when given); None when it is one."""
    ran = shlex.split(data.get("command", ""))[3:]   # after "python -m deepnets.train"
    try:
        settings = _settings(ran)
    except SystemExit:
        return f"its command ({data.get('command', 'none recorded')}) is not one of deepnets.train"
    if "test_acc" in data.get("figures", {}):
        return "it scored the test set, which a run that informs a choice must not do"
    if data.get("history", {}).get("interrupted") or data["figures"].get("epochs") != EARLIER_EPOCHS[notebook]:
        return f"it stopped before its {EARLIER_EPOCHS[notebook]} epochs"
    expected = _settings([*recipe(notebook, {"lr_bn": settings["lr"] if lr is None else lr}),
                          "--epochs", str(EARLIER_EPOCHS[notebook]), "--seed", str(seed), "--no-test"])
    differ = [k for k, v in expected.items() if settings.get(k) != v]
    if differ:
        return f"it ran another recipe (it differs in {', '.join(differ)})"
    return None


def earlier_runs(notebook: str) -> tuple[dict[int, dict[str, Any]], dict[int, str]]:
    """The runs this command wrote for `notebook`: ({seed: results} of finished runs of today's
    recipe, {seed: why it is left out, and the command that rewrites it} for the others)."""
    runs, left_out = {}, {}
    for seed in SEEDS:
        path = results_path(notebook, seed)
        if path.is_file():
            data = json.loads(path.read_text())
            why = problem(notebook, seed, data)
            if why:
                left_out[seed] = f"{why}; `python -m deepnets.epochs {notebook} --seeds {seed} --again` reruns it"
            else:
                runs[seed] = data
    return runs, left_out


def verdict(shorter: dict[int, float], longer: dict[int, float], short_epochs: int,
            long_epochs: int) -> tuple[Comparison, str]:
    """Validation accuracy at two epoch counts, {seed: accuracy} each: the comparison over the
    seeds both have, and a sentence that says whether validation supports the longer count.

    The test, fixed before any run at the earlier counts: the raise stands on validation when
    the longer count's mean is higher, and it is called a gain only when every longer run is
    above every shorter one (`deepnets.compare`); a tie counts against the raise.
    """
    seeds = sorted(set(shorter) & set(longer))
    if not seeds:
        raise checks.ArgumentValueError("No seed has runs at both epoch counts, so there is nothing to compare. "
                                        "Run `make epochs` (and `make seeds`) first.")
    c = compare([shorter[s] for s in seeds], [longer[s] for s in seeds], f"{short_epochs} epochs",
                f"{long_epochs} epochs", quantity="validation accuracy", digits=2)
    n = len(seeds)
    ahead = sum(longer[s] > shorter[s] for s in seeds)
    per_seed = f"{long_epochs} epochs scored higher than {short_epochs} on {ahead} of {n} seed{'s' if n > 1 else ''}"
    behind = sum(longer[s] < shorter[s] for s in seeds)
    if n > 1 and n in (ahead, behind):   # the paired view: every seed one way, which equal counts give by chance too
        per_seed += f" (all {n} one way or the other happens by chance {2 * 0.5 ** n:.0%} of the time)"
    chance = (f" (with {n} seeds a side, two equally good counts separate completely, one way or the other, "
              f"{2 / math.comb(2 * n, n):.0%} of the time)")
    if not c.tested:
        stands = "stands" if c.diff > 0 else "does not stand"
        return c, (f"{per_seed}, so the raise {stands} on validation, untested: one seed cannot show whether the "
                   f"difference beats the seed noise")
    if c.beyond_noise:
        better, worse = (long_epochs, short_epochs) if c.diff > 0 else (short_epochs, long_epochs)
        lead = (f"every {better}-epoch run scored above every {worse}-epoch run{chance}")
        return c, (f"{per_seed}, and {lead}: validation supports the raise to {long_epochs} epochs" if c.diff > 0
                   else f"{per_seed}, and {lead}: validation says the raise to {long_epochs} epochs hurt")
    if c.diff > 0:
        return c, (f"{per_seed}, higher on average, so the raise to {long_epochs} epochs stands on validation, but "
                   f"within the seed noise: validation does not show that it helps")
    return c, (f"{per_seed}, {'lower' if c.diff < 0 else 'no higher'} on average ({100 * c.diff:+.2f} points), within "
               f"the seed noise: validation does not support the raise to {long_epochs} epochs")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m deepnets.epochs", description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", default=list(EARLIER_EPOCHS),
                        help=f"which notebooks' recipes (default: {' '.join(EARLIER_EPOCHS)})")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS),
                        help="the seeds of the notebooks' runs to repeat (default 0 1 2)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs at once, the CPU's threads shared among them (default 1)")
    parser.add_argument("--again", action="store_true", help="rerun runs whose results file is already there")
    args = parser.parse_args(argv)
    for nb in args.notebooks:
        if nb not in EARLIER_EPOCHS:
            parser.error(f"{nb} has no earlier epoch count; pass any of {', '.join(EARLIER_EPOCHS)}.")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}.")
    runs = []   # every command is built before any run starts: a missing results file stops nothing half-way
    for nb, seed in [(nb, seed) for nb in args.notebooks for seed in args.seeds]:
        argv_, path = command(nb, seed), results_path(nb, seed)
        lr = float(argv_[argv_.index("--lr") + 1])
        if path.is_file() and not args.again and problem(nb, seed, json.loads(path.read_text()), lr) is None:
            print(f"== {nb}, seed {seed}: done already ({path.name}, today's recipe; --again reruns it)")
        else:
            runs.append((nb, seed, argv_))
    runs.sort(key=lambda run: -EARLIER_EPOCHS[run[0]])   # the longest first, so parallel jobs end together
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "TQDM_DISABLE": "1",
           **({"OMP_WAIT_POLICY": "PASSIVE"} if args.jobs > 1 else {})}
    results_path(args.notebooks[0], 0).parent.mkdir(parents=True, exist_ok=True)

    def train(run: tuple[str, int, list[str]]) -> str | None:
        """One run in its own process; the run's name if it failed."""
        nb, seed, argv_ = run
        print(f"== {nb}, seed {seed}: python -m deepnets.train {' '.join(argv_)}", flush=True)
        done = subprocess.run([sys.executable, "-m", "deepnets.train", *argv_], env=env, cwd=REPO)
        return None if done.returncode == 0 else f"{nb} seed {seed}"

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:   # threads only wait on the processes
        failed = [name for name in pool.map(train, runs) if name]
    if failed:
        sys.exit(f"These runs failed (their output is above): {', '.join(failed)}.")


if __name__ == "__main__":
    main()
