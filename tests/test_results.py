"""Results files: where they go, what they hold, and the README table built from them."""

import json

import pytest

from deepnets import Results
from deepnets import report, results


def test_record_writes_figures_timings_and_context(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    r = Results("99_demo", "smoke")
    r.record(test_acc=0.9, params=1234, epoch_seconds=3.2)
    r.record(other=1.5, tiny=6.54321e-16)
    data = json.loads((tmp_path / "99_demo.json").read_text())
    assert data["figures"] == {"other": 1.5, "params": 1234, "test_acc": 0.9, "tiny": 6.54321e-16}
    assert set(data["timings"]) == {"epoch_seconds", "wall_seconds"}
    assert data["profile"] == "smoke" and data["device"].startswith(("cpu", "cuda"))
    with pytest.raises(TypeError, match="Can only record numbers"):
        r.record(bad=[1, 2])


def test_smoke_runs_never_write_into_the_repository(monkeypatch):
    monkeypatch.delenv("DEEPNETS_RESULTS_DIR", raising=False)
    assert results.results_dir("full") == results.REPO / "notebooks" / "results"
    assert results.results_dir("smoke") == results.REPO / "build" / "results" / "smoke"
    with pytest.raises(ValueError, match="Unknown profile"):
        Results("00_x", "tiny")


def test_readme_results_section_is_built_from_the_committed_results():
    readme = (report.REPO / "README.md").read_text()
    section = readme.split(report.START, 1)[1].split(report.END, 1)[0].strip()
    assert section == report.render(), "README results are stale: run `make readme`"


def test_readme_speed_section_is_built_from_the_benchmark():
    readme = (report.REPO / "README.md").read_text()
    section = readme.split(report.SPEED_START, 1)[1].split(report.SPEED_END, 1)[0].strip()
    assert section == report.render_speed(), "README speed section is stale: run `make readme`"
