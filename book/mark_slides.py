"""Set each lesson cell's slide type (`metadata.slideshow.slide_type`), in place, from its content.

`python book/mark_slides.py [--split] [NOTEBOOK ...]` (default: every notebooks/NN_name.ipynb).
Running it twice changes nothing the second time. The rules, which `make slides` and RISE then
follow: a Markdown cell with a `#` or `##` heading starts a slide; one with a `###` heading, a
long table or a long output starts a sub-slide (reveal.js puts it below, reached with the down
arrow); the papermill parameter cells are skipped; every other cell continues the slide before
it, except in the introduction (the cells before the first `##` section), where each cell is a
sub-slide of its own, so the title slide shows the title and its opening paragraphs only.
`--split` first splits each Markdown cell before every heading that is not its first line,
so the text closing one section stays on that section's slide, and cuts the title cell around
its lists (the lesson's plan, with its "You will" lead-in), which alone would fill a slide.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]
# More rows than this do not fit under a heading on a 960x700 slide at the slides' font size.
LONG_TABLE_ROWS = 12
LONG_TEXT_LINES = 20
SKIPPED_TAGS = {"parameters", "injected-parameters"}
# A paragraph this short just before a list is its lead-in ("You will"): it goes with the list.
# About one line of a slide.
LEAD_IN_CHARS = 80
LIST_ITEM = re.compile(r"(\d+[.)]|[-*+]) ")


def _table_rows(cell: dict) -> int:
    """Rows of the longest table the cell shows: Markdown rows in its text, HTML rows in its outputs."""
    source = "".join(cell["source"])
    rows = [sum(1 for line in source.splitlines() if line.lstrip().startswith("|"))]
    for out in cell.get("outputs", []):
        data = out.get("data", {})
        rows.append("".join(data.get("text/html", "")).count("<tr"))
        rows.append(sum(1 for line in "".join(data.get("text/markdown", "")).splitlines() if line.startswith("|")))
    return max(rows)


def _text_lines(cell: dict) -> int:
    lines = 0
    for out in cell.get("outputs", []):
        text = out.get("text") or (out.get("data", {}).get("text/plain", "") if "image/png" not in out.get("data", {}) else "")
        lines += "".join(text).count("\n")
    return lines


def _headings(source: str) -> list[tuple[int, int]]:
    """(line number, level) of each Markdown heading, skipping lines inside ``` code fences."""
    found, fenced = [], False
    for i, line in enumerate(source.split("\n")):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"(#{1,6}) ", line)):
            found.append((i, len(m.group(1))))
    return found


def slide_type(cell: dict) -> str:
    """The slide type one cell gets under the rules above."""
    source = "".join(cell["source"])
    levels = {level for _, level in _headings(source)} if cell["cell_type"] == "markdown" else set()
    if levels & {1, 2}:
        return "slide"
    if SKIPPED_TAGS & set(cell.get("metadata", {}).get("tags", [])):
        return "skip"
    if 3 in levels \
            or _table_rows(cell) > LONG_TABLE_ROWS or _text_lines(cell) > LONG_TEXT_LINES:
        return "subslide"
    return "-"


def slide_types(cells: list[dict]) -> list[str]:
    """The slide type of each cell of a notebook; its first shown cell always opens a slide,
    and each later cell of the introduction a sub-slide."""
    types = [slide_type(c) for c in cells]
    first = next((i for i, t in enumerate(types) if t != "skip"), None)
    if first is None:
        return types
    types[first] = "slide"
    # The title slide is the first thing a room sees: the title cell's opening alone, then the
    # rest of the introduction (the plan, the set-up code and its output) one cell per sub-slide.
    for i in range(first + 1, len(types)):
        if types[i] == "slide":
            break
        if types[i] == "-":
            types[i] = "subslide"
    return types


def split_at_headings(cells: list) -> list:
    """Markdown cells cut before each `#`-`###` heading line that does not open the cell."""
    out = []
    for cell in cells:
        lines = cell.source.split("\n")
        cuts = [i for i, level in _headings(cell.source) if i > 0 and level <= 3] if cell.cell_type == "markdown" else []
        parts = ["\n".join(lines[a:b]) for a, b in zip([0, *cuts], [*cuts, len(lines)])]
        out.append(cell)
        cell.source = parts[0].rstrip("\n")
        for part in parts[1:]:
            new = nbformat.v4.new_markdown_cell(part.rstrip("\n"))
            if "tags" in cell.metadata:
                new.metadata["tags"] = list(cell.metadata["tags"])
            out.append(new)
    return out


def _blocks(source: str) -> list[tuple[str, str]]:
    """The Markdown's blocks as (kind, text): "list" for a whole list (items, their indented
    lines, blank lines between items), "text" for anything else; a ``` fence is never cut."""
    blocks: list[list[str]] = [[]]
    fenced = False
    for line in source.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        if not line.strip() and not fenced:
            blocks.append([])
        else:
            blocks[-1].append(line)
    out: list[tuple[str, str]] = []
    for block in filter(None, blocks):
        kind = "list" if LIST_ITEM.match(block[0]) else "text"
        # an item after a blank line, or an indented paragraph of an item, continues the list
        if out and out[-1][0] == "list" and (kind == "list" or block[0].startswith((" ", "\t"))):
            out[-1] = ("list", out[-1][1] + "\n\n" + "\n".join(block))
        else:
            out.append((kind, "\n".join(block)))
    return out


def title_pieces(source: str) -> list[str]:
    """The title cell's text cut around its lists: the text before a list, the list with its
    short lead-in, the text after it."""
    pieces: list[list[str]] = [[]]
    for kind, text in _blocks(source):
        if kind == "list":
            before = pieces[-1]
            short = before and len(before[-1]) <= LEAD_IN_CHARS and not before[-1].startswith("#")
            lead = before.pop() if short else None
            pieces += [[lead, text] if lead else [text], []]
        else:
            pieces[-1].append(text)
    return ["\n\n".join(piece) for piece in pieces if piece]


def split_title(cells: list) -> list:
    """The first `#` title cell cut by `title_pieces`, each piece a Markdown cell."""
    title = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"
                  and any(level == 1 for _, level in _headings(c.source))), None)
    if title is None:
        return cells
    pieces = title_pieces(cells[title].source)
    cells[title].source = pieces[0]
    return cells[:title + 1] + [nbformat.v4.new_markdown_cell(p) for p in pieces[1:]] + cells[title + 1:]


def mark(path: Path, split: bool = False) -> bool:
    """Set the slide types of one notebook in place (splitting cells first if asked); True if it changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    if split:
        before = len(nb.cells)
        nb.cells = split_title(split_at_headings(nb.cells))
        changed = len(nb.cells) != before
    for cell, kind in zip(nb.cells, slide_types(nb.cells)):
        if cell.metadata.get("slideshow", {}).get("slide_type") != kind:
            cell.metadata.setdefault("slideshow", {})["slide_type"] = kind
            changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path,
                        default=sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")))
    parser.add_argument("--split", action="store_true",
                        help="first split Markdown cells so that every heading opens its own cell")
    args = parser.parse_args()
    for path in args.notebooks:
        print(f"{path}: {'changed' if mark(path, args.split) else 'unchanged'}")


if __name__ == "__main__":
    main()
