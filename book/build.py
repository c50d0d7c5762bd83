"""Build the course's web book (build/book/) and slides (build/book/slides/) from the committed notebooks.

`python book/build.py` (what `make book` runs) stages the pages under build/book-src/ and runs
Sphinx with myst-nb over them, and turns each lesson into a reveal.js deck alongside;
`python book/build.py --slides` (what `make slides` runs) makes only the decks. Neither executes a notebook: they show the outputs that
`make notebooks` committed. Scripts and fonts come from book/package.json's npm packages,
installed into build/node/ by `make`, and are served by the site itself.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from deepnets import report  # noqa: E402  (the README's tables, rendered once for both)

NOTEBOOKS = REPO / "notebooks"
BUILD = REPO / "build"
SRC = BUILD / "book-src"
EXTRA = BUILD / "book-extra"  # copied into the site as is: the source notebooks
OUT = BUILD / "book"
SLIDES = OUT / "slides"
ASSETS = BUILD / "book-assets"
NODE = BUILD / "node" / "node_modules"
SMOKE = BUILD / "notebooks" / "smoke"  # executed copies from `make notebooks PROFILE=smoke`
PAGES = REPO / "book" / "pages"

# A cell that runs this long in the full profile is shown from its committed output in class:
# a room waits about ten seconds without losing the thread, not minutes.
LIVE_CELL_SECONDS = 10.0
# Exercises answered in class: reasoning and counting, minutes each (build and experiment
# exercises need coding time or training runs).
IN_CLASS_KINDS = ("understand", "compute")


def lessons() -> list[Path]:
    """The lesson notebooks, by their number (every notebooks/NN_name.ipynb)."""
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def _cells(notebook: Path) -> list[dict]:
    return json.loads(notebook.read_text())["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def title(notebook: Path) -> str:
    """The notebook's first `# ` heading, else its file name."""
    for cell in _cells(notebook):
        if cell["cell_type"] == "markdown":
            for line in _source(cell).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return notebook.stem


# ---------------------------------------------------------------------------- assets
def copy_assets() -> None:
    """Copy the npm packages' files the pages load into build/book-assets/ (MathJax, reveal.js, fonts)."""
    if not NODE.is_dir():
        raise SystemExit(f"The book's scripts and fonts are not installed: {NODE} is missing. "
                         "Run `make book` (it installs them with npm from book/package.json).")
    if ASSETS.exists():
        shutil.rmtree(ASSETS)
    mathjax = NODE / "mathjax" / "es5"
    # tex-chtml.js holds MathJax's core; it loads TeX extensions and its fonts from beside itself.
    for part in ["tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2"]:
        _copy(mathjax / part, ASSETS / "mathjax" / part)
    reveal = NODE / "reveal.js"
    for part in ["dist/reveal.js", "dist/reveal.css", "dist/reset.css", "dist/theme/white.css",
                 "dist/theme/fonts/source-sans-pro", "plugin/notes/notes.js"]:
        _copy(reveal / part, ASSETS / "reveal.js" / part)
    _copy(NODE / "requirejs" / "require.js", ASSETS / "require.js")
    _copy_korean_font(NODE / "@fontsource" / "noto-sans-kr", ASSETS / "noto-sans-kr")


def _copy(src: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, dest)
    else:
        shutil.copy2(src, dest)


def _copy_korean_font(package: Path, dest: Path) -> None:
    """Noto Sans KR, regular weight, only its Korean subsets (woff2): 2.6 MB instead of 54 MB."""
    blocks = (package / "400.css").read_text().split("/* ")
    korean = [b for b in blocks if re.match(r"noto-sans-kr-\[\d+\]-400-normal", b)]
    (dest / "files").mkdir(parents=True)
    css = []
    for block in korean:
        woff2 = re.search(r"url\(\./files/([^)]+\.woff2)\)", block).group(1)
        shutil.copy2(package / "files" / woff2, dest / "files" / woff2)
        # every browser that runs the pages reads woff2: drop the woff fallbacks
        css.append("/* " + re.sub(r"src: [^;]+;", f"src: url(./files/{woff2}) format('woff2');", block))
    (dest / "400.css").write_text("".join(css))


# ---------------------------------------------------------------------------- pages
def _page(name: str, **inserts: str) -> str:
    """A page from book/pages/, each `<!-- insert: key -->` line replaced by inserts[key]."""
    text = (PAGES / name).read_text()
    for key, body in inserts.items():
        text = text.replace(f"<!-- insert: {key} -->", body)
    left = re.findall(r"<!-- insert: (\w+) -->", text)
    if left:
        raise ValueError(f"book/pages/{name} asks for {left}, which build.py does not insert: "
                         f"it inserts {sorted(inserts)}. Fix the page or pass the content.")
    return text


def render_lessons_table() -> str:
    """The front page's list of lessons: page, notebook, slides and solutions of each."""
    rows = ["| lesson | notebook | slides | solutions |", "|---|---|---|---|"]
    for nb in lessons():
        sol = NOTEBOOKS / "solutions" / f"{nb.stem}_solutions.ipynb"
        rows.append(f"| [{title(nb)}]({nb.stem}.ipynb) "
                    f"| <a href=\"notebooks/{nb.name}\">{nb.name}</a> "
                    f"| <a href=\"slides/{nb.stem}.slides.html\">slides</a> "
                    + (f"| [solutions](solutions/{sol.name}) |" if sol.exists() else "| |"))
    return "\n".join(rows)


def render_glossary(notebook: Path | None = None) -> str:
    """Notebook 00's glossary section as Markdown: its text and the table its code cell printed."""
    notebook = notebook or next(nb for nb in lessons() if nb.name.startswith("00_"))
    parts: list[str] = []
    for cell in _cells(notebook):
        text = _source(cell)
        starts = cell["cell_type"] == "markdown" and text.startswith("## ")
        if starts and "Glossary" in text.splitlines()[0]:
            parts.append(re.sub(r"^## [\d.\s]*", "# ", text, count=1))
        elif starts and parts:
            break
        elif parts and cell["cell_type"] == "markdown":
            parts.append(text)
        elif parts:
            parts += ["".join(o["data"]["text/markdown"]) for o in cell.get("outputs", [])
                      if "text/markdown" in o.get("data", {})]
    if not parts:
        raise SystemExit(f"No '## ... Glossary' section found in {notebook}: the glossary page "
                         "is built from it. Add the section back or point render_glossary elsewhere.")
    if not any("|" in part for part in parts):
        raise SystemExit(f"The glossary section of {notebook} shows no table: its cell has not been "
                         f"run. Run the notebook (make notebooks NOTEBOOKS={notebook.relative_to(REPO)}), "
                         "then make book.")
    # the notebook's links to other notebooks point at their pages, which sit beside this one
    return "\n\n".join(parts) + f"\n\nFrom [{title(notebook)}]({notebook.name}), section *Glossary*.\n"


def _sections(cells: list[dict]) -> list[tuple[str, list[dict]]]:
    """(## heading, code cells under it) in order; cells before the first ## are the introduction."""
    sections: list[tuple[str, list[dict]]] = [("Introduction", [])]
    for cell in cells:
        if cell["cell_type"] == "markdown":
            for line in _source(cell).splitlines():
                if line.startswith("## "):
                    sections.append((line[3:].strip(), []))
        elif cell["cell_type"] == "code":
            sections[-1][1].append(cell)
    return [(name, cells) for name, cells in sections if cells]


def _duration(cell: dict) -> float:
    return cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0


def render_instructors() -> str:
    """Per lesson: each section's run time (full and smoke), what to run live, in-class exercises."""
    bench_file = NOTEBOOKS / "results" / "bench.json"
    bench = json.loads(bench_file.read_text())["figures"] if bench_file.exists() else {}
    parts = []
    for nb in lessons():
        full = _sections(_cells(nb))
        smoke_nb = SMOKE / nb.name
        smoke = {name: sum(map(_duration, cells)) for name, cells in _sections(_cells(smoke_nb))} \
            if smoke_nb.exists() else None
        parts.append(f"## {title(nb)}\n")
        total = sum(_duration(c) for _, cells in full for c in cells)
        if smoke is not None:
            where = (f"smoke: from `{smoke_nb.relative_to(REPO)}`, the executed copy "
                     "`make notebooks PROFILE=smoke` left")
        elif f"smoke_{nb.stem}_seconds" in bench:
            where = (f"smoke: per section not measured on this build (run `make notebooks PROFILE=smoke` "
                     f"before `make book`); the whole notebook took {bench[f'smoke_{nb.stem}_seconds']:.0f} s "
                     "in the smoke profile, read from `notebooks/results/bench.json`")
        else:
            where = "smoke: not measured yet (run `make notebooks PROFILE=smoke` before `make book`)"
        parts.append(f"Run times recorded by papermill in each cell's metadata. Full: from the committed "
                     f"notebook, {total:.0f} s in all; {where}.\n")
        rows = ["| section | code cells | full profile | smoke profile | in class |", "|---|---|---|---|---|"]
        for name, cells in full:
            slow = [c for c in cells if _duration(c) > LIVE_CELL_SECONDS]
            if not slow:
                advice = "run live"
            else:
                shown = ", ".join(f"[{c.get('execution_count')}] ({_duration(c):.0f} s)" for c in slow)
                advice = f"show {shown} from the committed outputs" + \
                    ("; run the rest live" if len(slow) < len(cells) else "")
            smoke_s = f"{smoke[name]:.1f} s" if smoke is not None and name in smoke else "—"
            rows.append(f"| {name} | {len(cells)} | {sum(map(_duration, cells)):.1f} s | {smoke_s} | {advice} |")
        parts.append("\n".join(rows) + "\n")
        questions = [(n, t, k) for n, t, k in report.exercises(nb) if k in IN_CLASS_KINDS]
        if questions:
            parts.append("In-class questions (from the lesson's exercises): "
                         + "; ".join(f"{n}. {t} (*{k}*)" for n, t, k in questions) + ".\n")
    return "\n".join(parts)


# ---------------------------------------------------------------------------- alt text
# A plot reaches the pages as a PNG output, which carries no description (matplotlib keeps its
# titles in the pixels). myst-nb takes an image's alt text from its cell's metadata
# (mystnb.image.alt), and so does the slides' template: the staged lessons get one for each
# cell that shows a plot and has none, from what its code says about the figure.
TITLE_CALLS = ("suptitle", "set_title", "title")


def figure_titles(source: str) -> list[str]:
    """The titles a cell's code gives its figures as plain strings, in order: suptitle("..."),
    ax.set_title("...") and title="..." (an f-string with fields is left out: its text is only
    known when the cell runs)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython syntax (magics, !commands): no titles read
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            values = node.args[:1] if name in TITLE_CALLS else []
            values += [k.value for k in node.keywords if k.arg == "title"]
            found += [v for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)]
    return [" ".join(v.value.split()) for v in sorted(found, key=lambda v: (v.lineno, v.col_offset))]


def figure_alt(cell: dict, section: str) -> str:
    """Alt text for a cell's plots: its figure titles, else its opening comment, else its section."""
    titles = [t for t in figure_titles(_source(cell)) if t]
    if titles:
        return "; ".join(titles)
    comment = []
    for line in _source(cell).splitlines():
        if not line.startswith("#"):
            break
        comment.append(line.lstrip("#").strip())
    if " ".join(comment).strip():
        return " ".join(comment).strip()
    return f"A plot of the section '{section}'"


def with_alt_text(notebook: Path) -> dict:
    """The notebook with alt text in the metadata of each cell that shows a plot (an author's own kept)."""
    nb = json.loads(notebook.read_text())
    for section, cells in _sections(nb["cells"]):
        for cell in cells:
            if any("image/png" in out.get("data", {}) for out in cell.get("outputs", [])):
                image = cell["metadata"].setdefault("mystnb", {}).setdefault("image", {})
                image.setdefault("alt", figure_alt(cell, section))
    return nb


def stage_lessons() -> None:
    """The lessons as Sphinx and nbconvert read them, into build/book-src/: with their plots' alt text."""
    SRC.mkdir(parents=True, exist_ok=True)
    for nb in lessons():
        (SRC / nb.name).write_text(json.dumps(with_alt_text(nb), ensure_ascii=False, indent=1) + "\n")


def stage() -> None:
    """Write build/book-src/: the lessons, solutions, and the generated pages, as Sphinx reads them."""
    for folder in (SRC, EXTRA):
        if folder.exists():
            shutil.rmtree(folder)
    (SRC / "solutions").mkdir(parents=True)
    (EXTRA / "notebooks").mkdir(parents=True)
    stage_lessons()
    for nb in lessons():
        shutil.copy2(nb, EXTRA / "notebooks" / nb.name)  # the source files, linked from the front page
    for nb in sorted((NOTEBOOKS / "solutions").glob("*.ipynb")):
        shutil.copy2(nb, SRC / "solutions" / nb.name)
    pages = {
        "index.md": _page("index.md", results=report.render(), lessons=render_lessons_table()),
        "glossary.md": render_glossary(),
        "speed.md": _page("speed.md", speed=report.render_speed()),
        "instructors.md": _page("instructors.md", instructors=render_instructors(),
                                live=f"{LIVE_CELL_SECONDS:.0f}", kinds=" and ".join(IN_CLASS_KINDS)),
    }
    for name, text in pages.items():
        (SRC / name).write_text(text)


def build_book() -> None:
    """Stage the sources and run Sphinx into build/book/, converting the slides alongside."""
    copy_assets()
    stage()
    # nbconvert and Sphinx each keep one core busy for about 20 s: run them side by side
    slides = subprocess.Popen(_slides_command())
    subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", "-c", str(REPO / "book"),
                    str(SRC), str(OUT)], check=True)
    _finish_slides(slides)


def build_slides() -> None:
    """A reveal.js deck per lesson in build/book/slides/, with reveal.js and MathJax served locally."""
    copy_assets()
    # the decks load their scripts from the book's _static/, which Sphinx also fills from ASSETS
    shutil.copytree(ASSETS, OUT / "_static", dirs_exist_ok=True)
    stage_lessons()
    _finish_slides(subprocess.Popen(_slides_command()))


def _slides_command() -> list[str]:
    SLIDES.mkdir(parents=True, exist_ok=True)
    return [sys.executable, "-m", "nbconvert", "--to", "slides", "--log-level=ERROR",
            f"--TemplateExporter.extra_template_basedirs={REPO / 'book'}",
            "--template=slides_template", "--output-dir", str(SLIDES),
            "--SlidesExporter.reveal_url_prefix=../_static/reveal.js",
            "--SlidesExporter.reveal_theme=white",  # the themes that fetch no web fonts
            *(str(SRC / nb.name) for nb in lessons())]  # the staged copies, with alt text


def _finish_slides(process: subprocess.Popen) -> None:
    if process.wait() != 0:
        raise SystemExit(f"nbconvert failed to make the slides (exit status {process.returncode}): "
                         "see its message above.")
    for deck in SLIDES.glob("*.slides.html"):
        deck.write_text(_link_notebooks_to_pages(deck.read_text()))


def _link_notebooks_to_pages(html: str) -> str:
    """In a deck, a link to a lesson notebook goes to its deck, any other notebook to its book page."""
    stems = {nb.stem for nb in lessons()}

    def target(m: re.Match) -> str:
        path, fragment = m.group(1), m.group(2) or ""
        return f'href="{path}.slides.html{fragment}"' if path in stems else f'href="../{path}.html{fragment}"'
    return re.sub(r'href="(?![a-z]+:)([^"#]+)\.ipynb(#[^"]*)?"', target, html)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", action="store_true", help="build the slides instead of the book")
    if parser.parse_args().slides:
        build_slides()
    else:
        build_book()


if __name__ == "__main__":
    main()
