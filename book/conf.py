"""Sphinx configuration of the course's web book; `book/build.py` stages the sources and runs it."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

project = "deepnets"
author = "the deepnets course"
copyright = "the deepnets course"
language = "en"
extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
# The notebooks are shown as committed: executed by `make notebooks`, never re-run here.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

html_theme = "sphinx_book_theme"
html_title = "deepnets: deep convolutional networks, measured"
html_static_path = [str(REPO / "book" / "static"), str(REPO / "build" / "book-assets")]
html_css_files = ["noto-sans-kr/400.css", "book.css"]
html_extra_path = [str(REPO / "build" / "book-extra")]
html_copy_source = True  # the .ipynb behind each page, for the download button
html_theme_options = {
    "use_download_button": True,
    "use_fullscreen_button": False,
    "show_toc_level": 2,
    "navigation_with_keys": False,
}
# an explicit mode: with none stored yet the theme logs "invalid theme mode" as a console error
html_context = {"default_mode": "light"}
# MathJax from this site's own copy (build/book-assets/mathjax), never a CDN.
mathjax_path = "mathjax/tex-chtml.js"
# The lessons' summaries are Markdown printed by code, whose formulas keep their $...$:
# MathJax typesets those too, in the cell outputs (myst marks the rest of a page as done).
myst_mathjax_classes = "tex2jax_process|mathjax_process|math|output_area|cell_output"
mathjax3_config = {"tex": {"inlineMath": [["\\(", "\\)"], ["$", "$"]],
                           "displayMath": [["\\[", "\\]"], ["$$", "$$"]], "processEscapes": True}}
