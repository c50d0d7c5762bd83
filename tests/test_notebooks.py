"""Every notebook runs headless in the smoke profile, and every committed one is tidy.

Notebooks are discovered, so a new `notebooks/NN_name.ipynb` is covered without editing
this file. Each notebook is executed once here (papermill); that run's results file and its
cells tagged `nbval-check-output` are both checked, the latter against the committed outputs
as `pytest --nbval-lax` would compare them, without executing the notebook a second time.
"""

import copy
import json
import math
import re

import nbformat
import papermill
import pytest
from nbval.plugin import IPyNbCell, IPyNbFile, coalesce_streams, find_comment_markers, find_metadata_tags

from conftest import NOTEBOOKS, REPO

# The headline figures each notebook's issue asks it to record.
REQUIRED = {
    "00_data_and_tools": ["baseline_test_acc", "baseline_params"],
    "01_alexnet": ["params_torchvision", "params_paper", "tanh_relu_epoch_ratio", "dropout_gap_on",
                   "dropout_gap_off", "test_acc"],
    "02_vgg16": ["params_vgg16", "fc1_param_share", "conv_flop_share", "test_acc", "test_acc_bn", "test_views"],
    "03_vanishing_gradient": ["sigmoid20_grad_ratio", "relu_he20_grad_ratio", "acc_sigmoid_deep",
                              "acc_relu_he", "acc_batchnorm", "acc_residual"],
    "04_resnet": ["params_resnet50", "params_resnet20", "params_resnet56", "train_err_plain20",
                  "train_err_plain56", "train_err_resnet20", "train_err_resnet56", "test_acc"],
    "05_families": ["params_resnet50", "gflops_vgg16", "imagenet_top1_resnet50", "latency_ms_b1_resnet18",
                    "fc1_over_resnet50"],
}
ABSOLUTE_PATH = re.compile(r"(?<![\w.])(/(home|root|work|tmp|usr|Users|opt|mnt|var)/|[A-Z]:\\\\)")
_runs: dict = {}


def run_smoke(nb, tmp_path_factory, monkeypatch, key="first"):
    """Execute a notebook in the smoke profile into a temp folder, once per key (a failed run
    is not repeated by the next test that asks); return its results and the executed notebook."""
    if (nb.stem, key) not in _runs:
        out = tmp_path_factory.mktemp(f"{nb.stem}-{key}")
        monkeypatch.setenv("DEEPNETS_PROFILE", "smoke")
        monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(out))
        monkeypatch.setenv("TQDM_DISABLE", "1")
        try:
            executed = papermill.execute_notebook(str(nb), str(out / nb.name), cwd=str(nb.parent),
                                                  kernel_name="python3", progress_bar=False)
            _runs[(nb.stem, key)] = json.loads((out / f"{nb.stem}.json").read_text()), executed
        except Exception as error:
            _runs[(nb.stem, key)] = error
    if isinstance(_runs[(nb.stem, key)], Exception):
        raise _runs[(nb.stem, key)]
    return _runs[(nb.stem, key)]


def checked_cells_that_differ(session, path, committed, executed) -> list[str]:
    """nbval's own comparison, as `pytest --nbval-lax` makes it, of each cell the committed
    notebook marks for checking (tag nbval-check-output) with that cell of an executed copy:
    nbval's report for each cell that differs. As in nbval, a cell never run is not compared
    (the hygiene test below requires every cell run)."""
    assert [c.source for c in committed.cells] == [c.source for c in executed.cells], "not the same notebook"
    notebook = IPyNbFile.from_parent(session, path=path)
    code = [(old, new) for old, new in zip(committed.cells, executed.cells) if old.cell_type == "code"]
    differ = []
    for number, (old, new) in enumerate(code):
        options = {**dict(find_metadata_tags(old.metadata)), **dict(find_comment_markers(old.source))}
        if not options.get("check") or old.execution_count is None:
            continue
        cell = IPyNbCell.from_parent(notebook, name=f"Cell {number}", cell_num=number, cell=old, options=options)
        # Both sides as nbval's runtest hands them over: each stream's pieces joined, \r and \b applied.
        if not cell.compare_outputs(coalesce_streams(copy.deepcopy(new.outputs)),
                                    coalesce_streams(copy.deepcopy(old.outputs))):
            differ.append(f"Cell {number}:" + "\n".join(cell.comparison_traceback))
    return differ


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(nb, tmp_path_factory, monkeypatch):
    results, _ = run_smoke(nb, tmp_path_factory, monkeypatch)
    assert results["profile"] == "smoke" and results["notebook"] == nb.stem
    for name in REQUIRED.get(nb.stem, []):
        assert name in results["figures"], f"{nb.stem} did not record {name}"
    for name, value in {**results["figures"], **results["timings"]}.items():
        assert not isinstance(value, float) or math.isfinite(value), f"{name} = {value}"
    assert results["timings"]["wall_seconds"] < 60, "the smoke profile must stay under a minute"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_checked_cells_print_what_the_committed_notebook_shows(nb, tmp_path_factory, monkeypatch, request):
    _, executed = run_smoke(nb, tmp_path_factory, monkeypatch)
    differ = checked_cells_that_differ(request.session, nb, nbformat.read(nb, as_version=4), executed)
    assert not differ, f"{nb.name}: the outputs of cells tagged nbval-check-output changed (Cell N counts " \
        f"code cells from 0). If that is meant, run the notebook again to commit them.\n" + "\n".join(differ)


def test_a_changed_checked_output_is_caught(tmp_path_factory, monkeypatch, request):
    """Doctored copies of the committed notebook: one digit changed, one line more, one line less."""
    nb = REPO / "notebooks" / "00_data_and_tools.ipynb"
    _, executed = run_smoke(nb, tmp_path_factory, monkeypatch)
    committed = nbformat.read(nb, as_version=4)
    code = [c for c in committed.cells if c.cell_type == "code"]
    number = next(i for i, c in enumerate(code) if "nbval-check-output" in c.metadata.get("tags", [])
                  and any(o.output_type == "stream" and re.search(r"\d", o.text) for o in c.outputs))
    assert checked_cells_that_differ(request.session, nb, committed, executed) == []
    for doctor in (lambda t: re.sub(r"\d", lambda m: str((int(m[0]) + 1) % 10), t, count=1),
                   lambda t: t + "one line more\n",
                   lambda t: t.split("\n", 1)[1]):
        doctored = copy.deepcopy(committed)
        cell = [c for c in doctored.cells if c.cell_type == "code"][number]
        stream = next(o for o in cell.outputs if o.output_type == "stream")
        stream.text = doctor(stream.text)
        differ = checked_cells_that_differ(request.session, nb, doctored, executed)
        assert len(differ) == 1 and differ[0].startswith(f"Cell {number}:"), differ


def test_same_seed_gives_identical_results(tmp_path_factory, monkeypatch):
    nb = REPO / "notebooks" / "00_data_and_tools.ipynb"
    first, _ = run_smoke(nb, tmp_path_factory, monkeypatch)
    second, _ = run_smoke(nb, tmp_path_factory, monkeypatch, key="second")  # a second, fresh kernel
    # Timings (wall clock, images per second) differ run to run by nature; the rest must not.
    assert {k: v for k, v in first.items() if k != "timings"} == \
           {k: v for k, v in second.items() if k != "timings"}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_hygiene(nb):
    book = nbformat.read(nb, as_version=4)
    nbformat.validate(book)
    code = [c for c in book.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "first code cell must be tagged parameters"
    assert "DEEPNETS_PROFILE" in code[0].source
    counts = [c.execution_count for c in code]
    assert None not in counts, "every code cell must have been executed"
    assert counts == sorted(counts) and len(set(counts)) == len(counts), "run top to bottom"
    outputs = [o for c in code for o in c.outputs]
    assert outputs, "commit notebooks with their outputs"
    assert not [o for o in outputs if o.output_type == "error"], "no error outputs"
    assert not [o for o in outputs if o.get("name") == "stderr" and "Warning" in o.get("text", "")], \
        "no warnings in outputs"
    for o in outputs:
        text = json.dumps({k: v for k, v in o.get("data", {}).items() if not k.startswith("image/")}) \
            + o.get("text", "")
        assert not ABSOLUTE_PATH.search(text), f"absolute path in an output: {ABSOLUTE_PATH.search(text)[0]}"
    # A tag, not a comment: the code a learner reads stays clean.
    assert any("nbval-check-output" in c.metadata.get("tags", []) for c in code), \
        "tag the deterministic cells nbval-check-output"
    assert not [c for c in code if "NBVAL_CHECK_OUTPUT" in c.source], "use the cell tag, not the comment"
    assert nb.stat().st_size < 1_000_000, "keep notebooks under 1 MB (plots at modest dpi)"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_results_are_full_profile(nb):
    path = REPO / "notebooks" / "results" / f"{nb.stem}.json"
    assert path.exists(), f"run `make notebooks` to record {path.name}"
    data = json.loads(path.read_text())
    assert data["profile"] == "full"
    for name in REQUIRED.get(nb.stem, []):
        assert name in data["figures"]
