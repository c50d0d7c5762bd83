"""Build the README's results, exercises and speed sections from the results files (never typed).

`python -m deepnets.report` prints the results tables; `--write` replaces the README sections
between their `<!-- name:start -->` and `<!-- name:end -->` markers. The book
(`book/build.py`) renders its front page, speed page and instructors' page with the same
functions.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"
SPEED_START, SPEED_END = "<!-- speed:start -->", "<!-- speed:end -->"
EXERCISES_START, EXERCISES_END = "<!-- exercises:start -->", "<!-- exercises:end -->"
# An exercise heading in a notebook reads: **3. VGG16's sizes** *(compute)*
EXERCISE = re.compile(r"\*\*(\d+)\. ([^*]+)\*\* \*\((understand|compute|build|experiment)\)\*")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render(results_dir: Path = REPO / "notebooks" / "results") -> str:
    """A Markdown table per notebook: every recorded figure, its device and wall time."""
    parts = []
    for path in sorted(results_dir.glob("[0-9][0-9]_*.json")):
        data = json.loads(path.read_text())
        wall = data["timings"].get("wall_seconds")
        parts.append(f"**{data['notebook']}** — {data['profile']} profile on {data['device']}, "
                     f"torch {data['torch']}, wall time {wall:.0f} s\n")
        figures = data["figures"]
        if "test_acc_mean" in figures:
            seeds = figures.get("seeds", [])
            others = [s for s in seeds if s != seeds[0]] if seeds else []
            how = ("`make notebooks`" if not others else
                   f"`make seeds` (seeds {', '.join(map(str, others))}) then `make notebooks` (seed {seeds[0]})")
            parts.append(f"Final net, test accuracy over {len(seeds)} seed(s): mean "
                         f"{100 * figures['test_acc_mean']:.2f}%, range {100 * figures['test_acc_min']:.2f}"
                         f" to {100 * figures['test_acc_max']:.2f}% (measured by {how}).\n")
        parts.append("| figure | value |\n|---|---|")
        for name, value in {**data["figures"], **data["timings"]}.items():
            parts.append(f"| `{name}` | {_fmt(value)} |")
        parts.append("")
    return "\n".join(parts).strip() or "_No full-profile results yet: run `make notebooks`._"


def render_speed(path: Path = REPO / "notebooks" / "results" / "bench.json") -> str:
    """The speed tables from the last `python -m deepnets.bench` run."""
    from deepnets.bench import render as render_bench
    if not path.exists():
        return "_Not measured yet: run `python -m deepnets.bench`._"
    return render_bench(json.loads(path.read_text()))


def render_speed_summary(path: Path = REPO / "notebooks" / "results" / "bench.json") -> str:
    """The README's short speed summary: the run's header line and its table of speed bars."""
    full = render_speed(path)
    if not path.exists():
        return full
    header, *blocks = full.split("\n\n")
    bars = [b for b in blocks if b.startswith("| speed bar")]
    return "\n\n".join([header, *bars])


def exercises(notebook: Path) -> list[tuple[str, str, str]]:
    """(number, title, kind) of each exercise in a notebook's markdown cells."""
    cells = json.loads(notebook.read_text())["cells"]
    text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return [(n, title.strip(), kind) for n, title, kind in EXERCISE.findall(text)]


def render_exercises(notebooks: Path = REPO / "notebooks") -> str:
    """A list per notebook of its exercises (number, title, kind), read from the notebooks."""
    parts = []
    for nb in sorted(notebooks.glob("[0-9][0-9]_*.ipynb")):
        found = exercises(nb)
        if not found:
            continue
        # links relative to the README, which sits beside notebooks/
        solutions = f"notebooks/solutions/{nb.stem}_solutions.ipynb"
        link = f" — solutions: [{solutions}]({solutions})" if (notebooks / "solutions" / f"{nb.stem}_solutions.ipynb").exists() else ""
        parts.append(f"- **[{nb.stem}](notebooks/{nb.name})**{link}: "
                     + "; ".join(f"{n}. {title} (*{kind}*)" for n, title, kind in found))
    return "\n".join(parts) or "_No exercises yet._"


def _replace(text: str, start: str, end: str, body: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def write_readme(readme: Path = REPO / "README.md") -> None:
    """Replace the README's results, exercises and speed-summary sections with fresh renders."""
    text = _replace(readme.read_text(), START, END, render())
    text = _replace(text, EXERCISES_START, EXERCISES_END, render_exercises())
    readme.write_text(_replace(text, SPEED_START, SPEED_END, render_speed_summary()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    if args.write:
        write_readme()
    else:
        print(render())


if __name__ == "__main__":
    main()
