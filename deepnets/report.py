"""Build the README's results table from `notebooks/results/*.json` (never typed by hand).

`python -m deepnets.report` prints it; `--write` replaces the README section between
the `<!-- results:start -->` and `<!-- results:end -->` markers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def render(results_dir: Path = REPO / "notebooks" / "results") -> str:
    """A Markdown table per notebook: every recorded figure, its device and wall time."""
    parts = []
    for path in sorted(results_dir.glob("*.json")):
        data = json.loads(path.read_text())
        wall = data["timings"].get("wall_seconds")
        parts.append(f"**{data['notebook']}** — {data['profile']} profile on {data['device']}, "
                     f"torch {data['torch']}, wall time {wall:.0f} s\n")
        parts.append("| figure | value |\n|---|---|")
        for name, value in {**data["figures"], **data["timings"]}.items():
            parts.append(f"| `{name}` | {_fmt(value)} |")
        parts.append("")
    return "\n".join(parts).strip() or "_No full-profile results yet: run `make notebooks`._"


def write_readme(readme: Path = REPO / "README.md") -> None:
    """Replace the README's results section with a fresh render."""
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{render()}\n{END}{tail}")


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
