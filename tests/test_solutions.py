"""The solutions notebooks: one per lesson, every check of that lesson called in it, and
every check passing when the notebook runs headless in the smoke profile."""

import json
import re

import nbformat
import papermill
import pytest

from conftest import NOTEBOOKS, REPO
from deepnets.exercises import CHECKS

SOLUTIONS = sorted((REPO / "notebooks" / "solutions").glob("[0-9][0-9]_*_solutions.ipynb"))
ABSOLUTE_PATH = re.compile(r"(?<![\w.])(/(home|root|work|tmp|usr|Users|opt|mnt|var)/|[A-Z]:\\\\)")


def test_every_lesson_has_a_solutions_notebook():
    assert [nb.stem + "_solutions" for nb in NOTEBOOKS] == [s.stem for s in SOLUTIONS]


@pytest.mark.parametrize("nb", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solutions_notebook_calls_every_check_of_its_lesson(nb):
    book = nbformat.read(nb, as_version=4)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "DEEPNETS_PROFILE" in code[0].source
    source = "\n".join(c.source for c in code)
    for name in CHECKS[nb.stem[:2]]:
        assert f"ex.{name}(" in source, f"{nb.name} does not call {name}"


@pytest.mark.parametrize("nb", SOLUTIONS, ids=[p.stem for p in SOLUTIONS])
def test_solutions_notebook_passes_every_check_in_smoke_profile(nb, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_PROFILE", "smoke")
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    monkeypatch.setenv("TQDM_DISABLE", "1")
    out = tmp_path / nb.name
    papermill.execute_notebook(str(nb), str(out), cwd=str(nb.parent), kernel_name="python3",
                               progress_bar=False)
    book = nbformat.read(out, as_version=4)
    outputs = [o for c in book.cells if c.cell_type == "code" for o in c.outputs]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    n = len(CHECKS[nb.stem[:2]])
    assert text.count("right: ") >= n, text
    assert "wrong: " not in text and "not answered yet: " not in text, text
    assert f"{n} of {n} checks passed" in text
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.get("name") == "stderr" and "Warning" in o.get("text", "")]
    for o in outputs:
        blob = json.dumps({k: v for k, v in o.get("data", {}).items() if not k.startswith("image/")}) + o.get("text", "")
        assert not ABSOLUTE_PATH.search(blob), ABSOLUTE_PATH.search(blob)[0]
