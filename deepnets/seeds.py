"""Run notebooks again with other seeds, so their final figures get a spread.

    python -m deepnets.seeds notebooks/04_resnet.ipynb --seeds 1 2

Each run executes the whole notebook (papermill, `-p SEED s`) in the given profile and
writes its results file to `notebooks/results/seeds/seed<s>/` (full profile; other
profiles under build/). The notebook's own run (seed 0) then reads them with
`deepnets.results.other_seeds` and reports mean and range over all seeds, labelled as
coming from these runs. `make seeds` calls this.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from deepnets.files import REPO
from deepnets.results import seeds_dir


def run(notebook: Path, seed: int, profile: str) -> Path:
    """Execute `notebook` with SEED=seed; return the folder its results file went to."""
    out_dir = seeds_dir(profile, seed)
    executed = REPO / "build" / "seeds" / profile / f"seed{seed}" / notebook.name
    executed.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "DEEPNETS_PROFILE": profile, "DEEPNETS_RESULTS_DIR": str(out_dir),
           "TQDM_DISABLE": "1"}
    subprocess.run([sys.executable, "-m", "papermill", "--cwd", str(notebook.parent), "-k", "python3",
                    "-p", "SEED", str(seed), str(notebook), str(executed)], env=env, check=True)
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--profile", default=os.environ.get("DEEPNETS_PROFILE", "full"))
    args = parser.parse_args(argv)
    for nb in args.notebooks:
        if not nb.is_file():
            parser.error(f"{nb} is not a notebook file; give paths like notebooks/04_resnet.ipynb.")
        for seed in args.seeds:
            if seed == 0:
                parser.error("Seed 0 is the notebook's own run (make notebooks); pass other seeds.")
            print(f"== {nb.name}, seed {seed} ({args.profile})", flush=True)
            out = run(nb.resolve(), seed, args.profile)
            shown = out.relative_to(REPO) if out.is_relative_to(REPO) else out
            print(f"   results in {shown}", flush=True)


if __name__ == "__main__":
    main()
