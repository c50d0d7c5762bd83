"""`python -m deepnets.seeds` runs a notebook again with another seed, for real (papermill)."""

import nbformat
import pytest

from deepnets import seeds
from deepnets.results import other_seeds


def tiny_notebook(path):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("import os\nPROFILE = os.environ['DEEPNETS_PROFILE']\nSEED = 0")
    params.metadata["tags"] = ["parameters"]
    body = nbformat.v4.new_code_cell(
        "import torch, deepnets\n"
        "deepnets.seed_everything(SEED)\n"
        "deepnets.Results('99_tiny', PROFILE).record(draw=torch.rand(1).item(), seed=SEED)")
    nb.cells = [params, body]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_seed_runs_land_where_the_notebook_reads_them(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path / "results"))
    nb = tmp_path / "99_tiny.ipynb"
    tiny_notebook(nb)
    seeds.main([str(nb), "--seeds", "3", "5", "--profile", "smoke"])
    runs = other_seeds("99_tiny", "smoke", exclude=0)
    assert sorted(runs) == [3, 5]
    assert [runs[s]["figures"]["seed"] for s in (3, 5)] == [3, 5]  # -p SEED reached the notebook
    assert runs[3]["figures"]["draw"] != runs[5]["figures"]["draw"]


def test_seed_zero_is_refused(tmp_path):
    nb = tmp_path / "99_tiny.ipynb"
    tiny_notebook(nb)
    with pytest.raises(SystemExit):
        seeds.main([str(nb), "--seeds", "0"])
