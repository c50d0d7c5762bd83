"""The web book and the slides, opened in headless Chromium from a local server.

`make test` builds them first (`make book`, which builds the slides too) and installs
Debian's chromium (`make browser`). Every page must load with status 200, log no console
error, decode every image, typeset every formula, link only to pages that exist, and fetch
nothing from outside this machine.
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import sys
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from conftest import REPO

sys.path.insert(0, str(REPO / "book"))
import build as book  # noqa: E402  (book/build.py: the lesson list and the rendered pages)
import mark_slides  # noqa: E402

SITE = REPO / "build" / "book"
SHOTS = REPO / "build" / "screenshots"
# Chromium's own traffic off: no updates, no sync, no default apps or first-run pages,
# and no name resolves except localhost, so nothing can leave the machine even by mistake.
CHROMIUM_ARGS = [
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--disable-domain-reliability", "--disable-client-side-phishing-detection",
    "--no-default-browser-check", "--metrics-recording-only", "--disable-breakpad",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1",
]
HANGUL = "특성맵"  # "feature map", from the glossary


def _chromium() -> str | None:
    # Debian's /usr/bin/chromium is a shell wrapper around this binary
    for path in ("/usr/lib/chromium/chromium", shutil.which("chromium")):
        if path and Path(path).exists():
            return path
    return None


def _pages() -> list[str]:
    return sorted(str(p.relative_to(SITE)) for p in SITE.rglob("*.html")
                  if not p.relative_to(SITE).parts[0].startswith("_"))


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").exists() or not (SITE / "slides").is_dir():
        pytest.fail(f"{SITE} holds no built book or slides: run `make book` (it builds both).")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        pytest.skip("Debian's chromium is not installed and `make browser` could not install it "
                    "(it needs root and apt-get): install the chromium package to run the browser test.")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def visits(server, browser):
    """Every page opened once: what it logged, what it asked for, and what it shows."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    outside: list[str] = []

    def route(r):
        host = urlsplit(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    results = {}
    SHOTS.mkdir(parents=True, exist_ok=True)
    for name in _pages():
        page = context.new_page()
        errors: list[str] = []
        failed: list[str] = []
        page.on("console", lambda m, e=errors: e.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
        page.on("response", lambda r, f=failed: f.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        response = page.goto(server + name, wait_until="load")
        page.evaluate(_SETTLE)
        results[name] = {"status": response.status, "errors": errors, "failed": failed,
                         **page.evaluate(_INSPECT)}
        if name == "index.html":
            page.screenshot(path=str(SHOTS / "book-front.png"))
        if name == "04_resnet.html":
            page.screenshot(path=str(SHOTS / "book-lesson-04_resnet.png"))
        if name == "slides/04_resnet.slides.html":
            page.screenshot(path=str(SHOTS / "slides-04_resnet.png"))
        page.close()
    context.close()
    return results, outside


# Wait for the images (made eager: the theme may lazy-load those below the fold), MathJax's
# typesetting and the web fonts.
_SETTLE = """async () => {
  await Promise.all([...document.images].map(i => { i.loading = 'eager'; return i.decode().catch(() => null); }));
  if (window.MathJax && MathJax.startup) { await MathJax.startup.promise; }
  await document.fonts.ready;
}"""

_INSPECT = """() => {
  const text = (() => {
    const body = document.body.cloneNode(true);
    // reveal.js's .aria-status repeats a slide's text for screen readers as it was before typesetting
    body.querySelectorAll('pre, code, script, style, mjx-container, .aria-status').forEach(n => n.remove());
    return body.textContent;
  })();
  return {
    images: [...document.images].map(i => [i.getAttribute('src').slice(0, 80), i.naturalWidth, i.getAttribute('alt')]),
    raw_math: (text.match(/\\$\\$|\\\\\\(|\\\\\\[|\\$[^$\\s][^$\\n]{0,200}?\\$/g) || []).slice(0, 5),
    typeset: document.querySelectorAll('mjx-container').length,
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    hangul: document.body.textContent.includes('""" + HANGUL + """'),
    font_errors: [...document.fonts].filter(f => f.status === 'error').map(f => f.family),
    // text with Hangul whose font list lacks the bundled font (it would be drawn as boxes)
    hangul_unstyled: (() => {
      const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT), bad = [];
      while (walker.nextNode()) {
        const node = walker.currentNode;
        if (/[\uAC00-\uD7A3]/.test(node.textContent) && node.parentElement.closest('.aria-status') === null
            && !getComputedStyle(node.parentElement).fontFamily.includes('Noto Sans KR')) {
          bad.push(node.parentElement.tagName + ': ' + node.textContent.trim().slice(0, 40));
        }
      }
      return bad.slice(0, 5);
    })(),
  };
}"""


def test_every_page_and_deck_loads_without_console_errors(visits):
    results, _ = visits
    lessons = [nb.stem for nb in book.lessons()]
    # every lesson has its page and its deck, every solutions notebook its page
    expected = {f"{s}.html" for s in lessons} | {f"slides/{s}.slides.html" for s in lessons} | {
        f"solutions/{p.stem}.html" for p in (book.NOTEBOOKS / "solutions").glob("*.ipynb")} | {
        "index.html", "glossary.html", "speed.html", "instructors.html", "search.html"}
    assert expected <= set(results), sorted(expected - set(results))
    bad = {name: (r["status"], r["errors"], r["failed"], r["font_errors"]) for name, r in results.items()
           if r["status"] != 200 or r["errors"] or r["failed"] or r["font_errors"]}
    assert not bad, bad


def test_nothing_is_fetched_from_outside_the_machine(visits):
    _, outside = visits
    assert outside == [], f"{len(outside)} request(s) to other hosts: {outside[:10]}"


def test_every_image_decodes(visits):
    results, _ = visits
    undecoded = {name: [src for src, width, _ in r["images"] if width == 0] for name, r in results.items()}
    assert not {k: v for k, v in undecoded.items() if v}, undecoded
    # the lessons' plots are there: each lesson page and deck shows images
    for nb in book.lessons():
        assert results[f"{nb.stem}.html"]["images"] and results[f"slides/{nb.stem}.slides.html"]["images"]


def _words(text: str) -> str:
    return " ".join(re.sub(r"[#\s]+", " ", text).split())


def test_every_image_has_alt_text_from_the_cell_that_drew_it(visits):
    """Each plot's alt text is what its own cell's code says about it: a title or comment it
    writes out, else the heading of its section; never empty, a file name or nbconvert's filler."""
    results, _ = visits
    no_alt = {name: [src for src, _, alt in r["images"] if not (alt or "").strip()] for name, r in results.items()}
    assert not {k: v for k, v in no_alt.items() if v}, no_alt
    for nb in book.lessons():
        # the notebook's plots in order, each with its cell's code and its section's heading
        drawn, heading = [], "Introduction"
        for cell in json.loads(nb.read_text())["cells"]:
            text = "".join(cell["source"])
            if cell["cell_type"] == "markdown":
                heading = next((line[3:].strip() for line in text.splitlines() if line.startswith("## ")), heading)
            drawn += [(text, heading) for out in cell.get("outputs", []) if "image/png" in out.get("data", {})]
        for page in (f"{nb.stem}.html", f"slides/{nb.stem}.slides.html"):
            alts = [alt for _, _, alt in results[page]["images"]]
            assert len(alts) == len(drawn), (page, len(alts), len(drawn))
            for alt, (code, section) in zip(alts, drawn):
                assert alt != "No description has been provided for this image" and not alt.startswith("_images/")
                told = alt == f"A plot of the section '{section}'" or all(
                    _words(part) in _words(code) for part in alt.split("; "))
                assert told, (page, alt, section, code[:200])


def test_the_first_slide_of_each_deck_fits_a_1280x720_screen(server, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    for nb in book.lessons():
        page.goto(server + f"slides/{nb.stem}.slides.html")
        page.wait_for_selector(".reveal.ready")
        page.evaluate(_SETTLE)
        first = page.evaluate("""() => {
          const shown = [...document.querySelectorAll('.reveal .slides section.present')].pop();
          const top = document.querySelector('.reveal .slides > section');
          const box = shown.getBoundingClientRect();
          return {first: shown === (top.querySelector(':scope > section') || top),
                  content: shown.scrollHeight, frame: shown.clientHeight, top: box.top, bottom: box.bottom,
                  lowest: Math.max(...[...shown.children].map(c => c.getBoundingClientRect().bottom))};
        }""")
        # the slide shows all it holds (a section taller than its frame scrolls), and the frame,
        # scaled by reveal.js, lies within the screen
        assert first["first"] and first["content"] <= first["frame"], (nb.name, first)
        assert 0 <= first["top"] and first["bottom"] <= 720 and first["lowest"] <= 720, (nb.name, first)
    page.close()


def test_every_formula_is_typeset(visits):
    results, _ = visits
    raw = {name: r["raw_math"] for name, r in results.items() if r["raw_math"]}
    assert not raw, raw
    # a second sign that MathJax ran: the lesson with the residual formula y = F(x) + x has typeset math
    assert results["04_resnet.html"]["typeset"] > 0 and results["slides/04_resnet.slides.html"]["typeset"] > 0


def test_every_internal_link_resolves(server, visits):
    results, _ = visits
    ids = {server + name: set(r["ids"]) for name, r in results.items()}
    broken = []
    checked: dict[str, int] = {}
    for name, r in results.items():
        for link in r["links"]:
            url, _, fragment = link.partition("#")
            if not url.startswith(server):
                continue
            if url not in checked:
                try:
                    checked[url] = urllib.request.urlopen(url).status
                except urllib.error.HTTPError as e:
                    checked[url] = e.code
            if checked[url] != 200:
                broken.append((name, link, checked[url]))
            elif fragment and url in ids and fragment not in ids[url]:
                broken.append((name, link, "no such anchor"))
    assert not broken, broken[:20]
    # the front page links every lesson's page, notebook, deck and solutions
    front = set(results["index.html"]["links"])
    for nb in book.lessons():
        for target in (f"{nb.stem}.html", f"notebooks/{nb.name}", f"slides/{nb.stem}.slides.html"):
            assert urljoin(server, target) in front, target


def test_search_finds_residual_on_the_resnet_page(server, browser):
    page = browser.new_page()
    page.goto(server + "search.html?q=residual")
    page.wait_for_selector("#search-results ul.search li a", timeout=20_000)
    hits = page.eval_on_selector_all("#search-results ul.search li a", "as => as.map(a => a.href)")
    page.close()
    assert any("04_resnet.html" in h for h in hits), hits


def test_hangul_renders_with_the_bundled_font(server, browser, visits):
    results, _ = visits
    assert results["glossary.html"]["hangul"] and results["slides/00_data_and_tools.slides.html"]["hangul"]
    unstyled = {name: r["hangul_unstyled"] for name, r in results.items() if r["hangul_unstyled"]}
    assert not unstyled, unstyled
    page = browser.new_page()
    for name in ("glossary.html", "slides/00_data_and_tools.slides.html"):
        page.goto(server + name)
        page.evaluate(_SETTLE)
        state = page.evaluate("""(s) => {
          const covers = (face, ch) => face.unicodeRange.split(',').some(r => {
            const [a, b] = r.trim().slice(2).split('-').map(h => parseInt(h, 16));
            return ch >= a && ch <= (b || a); });
          const faces = [...document.fonts].filter(f => f.family.replace(/["']/g, '') === 'Noto Sans KR'
                                                         && f.status === 'loaded');
          const width = t => { const c = document.createElement('canvas').getContext('2d');
                               c.font = '40px "Noto Sans KR"'; return c.measureText(t).width; };
          return {uncovered: [...s].filter(ch => !faces.some(f => covers(f, ch.codePointAt(0)))),
                  check: document.fonts.check('40px "Noto Sans KR"', s),
                  used: getComputedStyle(document.body).fontFamily,
                  // three private-use code points: no font has them, so they are drawn as boxes
                  hangul: width(s), boxes: width('\\uE000\\uE001\\uE002')};
        }""", HANGUL)
        # every syllable is covered by a face of the bundled font that the page has loaded
        assert state["uncovered"] == [] and state["check"], (name, state)
        assert "Noto Sans KR" in state["used"] or name.startswith("slides/"), (name, state)
        assert state["hangul"] != pytest.approx(state["boxes"], abs=0.5), (name, state)
    page.close()


def test_screenshots_are_saved(visits):
    for shot in ("book-front.png", "book-lesson-04_resnet.png"):
        data = (SHOTS / shot).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, shot


def test_pages_show_the_results_files_and_the_recorded_durations(server):
    """The front, speed and instructors pages carry what the results files and notebooks hold."""
    read = lambda name: urllib.request.urlopen(server + name).read().decode()  # noqa: E731
    results = json.loads((book.NOTEBOOKS / "results" / "04_resnet.json").read_text())
    assert f"{results['figures']['params_resnet50']:,}" in read("index.html")
    bench = json.loads((book.NOTEBOOKS / "results" / "bench.json").read_text())["figures"]
    assert f"{bench['matmul_gflops']:.0f} GFLOP/s" in read("speed.html")
    # the slowest cell of notebook 04, found here from its metadata, is the one the page says to show
    cells = json.loads((book.NOTEBOOKS / "04_resnet.ipynb").read_text())["cells"]
    slowest = max((c for c in cells if c["cell_type"] == "code"), key=lambda c: c["metadata"]["papermill"]["duration"])
    assert f"[{slowest['execution_count']}] ({slowest['metadata']['papermill']['duration']:.0f} s)" in read("instructors.html")


def test_committed_lessons_carry_slide_metadata():
    """Every lesson's cells have the slide types `python book/mark_slides.py` sets (sections are slides)."""
    for nb in book.lessons():
        cells = json.loads(nb.read_text())["cells"]
        missing = [i for i, c in enumerate(cells) if "slide_type" not in c["metadata"].get("slideshow", {})]
        assert not missing, f"{nb.name}: cells {missing[:10]} have no slide type: run `python book/mark_slides.py --split`"
        sections = [c for c in cells if c["cell_type"] == "markdown" and re.match(r"#{1,2} ", "".join(c["source"]))]
        assert all(c["metadata"]["slideshow"]["slide_type"] == "slide" for c in sections), nb.name
        assert mark_slides.slide_types(cells) == [c["metadata"]["slideshow"]["slide_type"] for c in cells], \
            f"{nb.name}: slide types not as the rules set them: run `python book/mark_slides.py --split {nb.relative_to(REPO)}`"


def test_mark_slides_splits_at_headings_outside_code_fences(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    fence = "```python\n# a comment, not a heading\n```"
    nb = new_notebook(cells=[new_markdown_cell("# Title\n\nintro"), new_code_cell("x = 1"),
                             new_markdown_cell(f"closing words.\n\n## 2. Next\n\n{fence}\n\n### 2a. Part\n")])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert mark_slides.mark(path, split=True)
    cells = nbformat.read(path, as_version=4).cells
    assert [c.source for c in cells] == ["# Title\n\nintro", "x = 1", "closing words.",
                                         f"## 2. Next\n\n{fence}", "### 2a. Part"]
    # the introduction's cells below the title are sub-slides; after it, cells continue their slide
    assert [c.metadata.slideshow.slide_type for c in cells] == ["slide", "subslide", "subslide", "slide", "subslide"]
    assert not mark_slides.mark(path, split=True)  # a second run changes nothing


def test_mark_slides_cuts_the_title_cell_around_its_plan(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
    title = ("# 09 — A lesson\n\nWhy it matters,\nover two lines.\n\nYou will\n\n1. do one thing;\n"
             "   continued;\n\n2. do another.\n\nEvery number below is measured.")
    nb = new_notebook(cells=[new_markdown_cell(title), new_code_cell("import torch"),
                             new_markdown_cell("## 1. First\n\ntext"), new_code_cell("x = 1")])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    assert mark_slides.mark(path, split=True)
    cells = nbformat.read(path, as_version=4).cells
    # nothing lost or moved: the pieces read as the title cell did
    assert "\n\n".join(c.source for c in cells[:3]) == title
    assert [c.source.split("\n")[0] for c in cells[:3]] == ["# 09 — A lesson", "You will", "Every number below is measured."]
    assert [c.metadata.slideshow.slide_type for c in cells] == ["slide", "subslide", "subslide", "subslide", "slide", "-"]
    assert not mark_slides.mark(path, split=True)
