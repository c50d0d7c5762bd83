"""Results files: where they go, what they hold, and the README table built from them."""

import json
import os

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
        r.record(bad={"a": 1})


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
    assert section == report.render_speed_summary(), "README speed section is stale: run `make readme`"


def test_record_seeds_writes_mean_and_range(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    r = Results("99_demo", "smoke")
    r.record_seeds("test_acc", {0: 0.94, 1: 0.92, 2: 0.93})
    figures = json.loads((tmp_path / "99_demo.json").read_text())["figures"]
    assert figures["test_acc_mean"] == pytest.approx(0.93)
    assert (figures["test_acc_min"], figures["test_acc_max"], figures["seeds"]) == (0.92, 0.94, [0, 1, 2])


def test_other_seeds_reads_what_the_seed_runs_wrote(tmp_path, monkeypatch):
    from deepnets.results import other_seeds
    for seed in (0, 1, 2):  # what `python -m deepnets.seeds` arranges for each run
        monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path / "seeds" / f"seed{seed}"))
        Results("99_demo", "smoke").record(test_acc=0.9 + seed / 100)
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    runs = other_seeds("99_demo", "smoke", exclude=0)
    assert sorted(runs) == [1, 2]
    assert runs[2]["figures"]["test_acc"] == pytest.approx(0.92)
    assert other_seeds("98_other", "smoke", exclude=0) == {}


def test_other_seeds_keeps_only_runs_of_the_same_recipe(tmp_path, monkeypatch):
    from deepnets.results import other_seeds
    for seed, epochs in ((1, 7), (2, 12), (3, 12)):
        monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path / "seeds" / f"seed{seed}"))
        Results("99_demo", "smoke").record(test_acc=0.9, epochs=epochs, dropout=0.5 if seed == 3 else 0.0)
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    assert sorted(other_seeds("99_demo", "smoke", exclude=0, match={"epochs": 12})) == [2, 3]
    assert sorted(other_seeds("99_demo", "smoke", exclude=0, match={"epochs": 12, "dropout": 0.5})) == [3]
    assert other_seeds("99_demo", "smoke", exclude=0, match={"epochs": 25}) == {}


def test_readme_exercise_list_is_read_from_the_notebooks(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "source": ["**1. Why 3x3** *(understand)*\n\n",
                                                         "**2. Receptive field** *(compute)*"]}]}
    (tmp_path / "07_demo.ipynb").write_text(json.dumps(nb))
    listing = report.render_exercises(tmp_path)
    assert "1. Why 3x3 (*understand*)" in listing and "2. Receptive field (*compute*)" in listing
    readme = (report.REPO / "README.md").read_text()
    section = readme.split(report.EXERCISES_START)[1].split(report.EXERCISES_END)[0]
    assert section.strip() == report.render_exercises().strip(), "run `make readme`"


def test_a_profile_in_another_case_writes_where_its_canonical_name_does(tmp_path, monkeypatch):
    monkeypatch.delenv("DEEPNETS_RESULTS_DIR", raising=False)
    monkeypatch.setattr(results, "REPO", tmp_path)
    (tmp_path / "notebooks").mkdir()
    full = Results("99_demo", "Full")
    assert (full.profile, full.path) == ("full", tmp_path / "notebooks" / "results" / "99_demo.json")
    full.record(test_acc=0.9)  # the full profile's figures wait in the side file until finish()
    assert not full.path.exists() and full.partial_path.exists()
    assert Results("99_demo", " SMOKE ").path == tmp_path / "build" / "results" / "smoke" / "99_demo.json"


def _peak_resident_gib() -> float:
    """VmHWM, the kernel's own count of this process's peak resident set, in GiB."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2 ** 20  # reported in kB (KiB)
    raise AssertionError("no VmHWM line in /proc/self/status")


def test_results_files_record_the_peak_memory(tmp_path, monkeypatch):
    if not os.path.exists("/proc/self/status"):
        pytest.skip("reading the peak resident set from /proc needs Linux")
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    before = _peak_resident_gib()
    Results("99_demo", "smoke").record(test_acc=0.9)
    after = _peak_resident_gib()
    peak = json.loads((tmp_path / "99_demo.json").read_text())["peak_memory_gb"]
    assert round(before, 2) - 0.01 <= peak <= round(after, 2) + 0.01
