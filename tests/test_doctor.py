"""The doctor: each ✗ is produced by breaking that thing on purpose, and its fix is checked."""

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deepnets import data, doctor

REPO = Path(__file__).resolve().parents[1]


def pins_from_file() -> dict[str, str]:
    """requirements.txt's pins, read here independently of the doctor's parser."""
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))


def test_python_outside_the_supported_versions_is_refused(monkeypatch):
    here = sys.version_info[:2]
    monkeypatch.setattr(doctor, "SUPPORTED_PYTHONS", tuple(v for v in doctor.SUPPORTED_PYTHONS if v != here))
    check = doctor.check_python()
    assert not check.ok and check.blocks
    assert check.found.startswith(f"{here[0]}.{here[1]}.")
    assert check.fix.startswith("make")


def test_python_outside_a_virtual_environment_is_refused():
    # The venv's own base interpreter, given the venv's packages by path: same Python and
    # packages, but no environment, as when a learner runs the system python3.
    site = next(p for p in sys.path if p.endswith("site-packages") and p.startswith(sys.prefix))
    base = Path(sys.base_prefix) / "bin" / Path(sys.executable).name
    if sys.prefix == sys.base_prefix or not base.exists():
        pytest.skip("the tests do not run in a virtual environment with a base interpreter at hand")
    code = (f"import sys; sys.path[:0] = [{site!r}, {str(REPO)!r}]; from deepnets import doctor; "
            "c = doctor.check_python(); print(c.ok); print(c.fix)")
    ok, fix = subprocess.run([str(base), "-c", code], capture_output=True, text=True, check=True,
                             cwd=REPO).stdout.splitlines()[:2]
    assert ok == "False"
    assert ".venv/bin/python -m deepnets.doctor" in fix


def test_torch_version_mismatch_names_the_pin_and_the_install(monkeypatch):
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda name: "2.13.0" if name == "torch" else real(name))
    check = doctor.check_packages()
    assert not check.ok
    assert check.found == f"torch 2.13.0 (pinned {pins_from_file()['torch']})"
    assert check.fix.endswith(f"-m pip install -r {REPO / 'requirements.txt'}")


def test_missing_data_folder_gives_the_download_command(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path / "nowhere"))
    check = doctor.check_data()
    assert not check.ok
    assert str(tmp_path / "nowhere") in check.found
    assert "-m deepnets.data --download" in check.fix


def test_corrupt_data_file_is_caught_by_its_checksum(monkeypatch, tmp_path):
    real = data.find_data_dir()
    for name in data.FILE_SHA256:
        shutil.copy(real / name, tmp_path / name)
    # A valid gzip whose contents are one byte off: only the checksum can tell.
    broken = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(broken.read_bytes()))
    raw[-1] ^= 1
    broken.write_bytes(gzip.compress(bytes(raw)))
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path))
    check = doctor.check_data()
    assert not check.ok
    assert "wrong checksum" in check.found
    assert check.fix.startswith(f"rm {broken}, then ")
    # The fix works: with the damaged file replaced, the data passes.
    shutil.copy(real / broken.name, broken)
    assert doctor.check_data().ok


def test_data_found_is_where_deepnets_loads_it():
    check = doctor.check_data()
    assert check.ok
    assert f"in {data.load_fashion_mnist().folder} (" in check.found


def kernel_spec(folder: Path, argv0: str) -> Path:
    """A python3 kernel spec under a JUPYTER_PATH folder, starting `argv0`."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [argv0, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3", "language": "python"}))
    return spec


def test_kernel_of_another_python_is_caught_and_the_fix_works(monkeypatch, tmp_path):
    # The venv's base interpreter is a Python of another environment, as a kernel that a
    # learner once installed with `python3 -m ipykernel install --user` would be.
    other = Path(sys.base_prefix) / "bin" / Path(sys.executable).name
    if sys.prefix == sys.base_prefix or not other.exists():
        pytest.skip("the tests do not run in a virtual environment with a base interpreter at hand")
    spec = kernel_spec(tmp_path, str(other))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    check = doctor.check_kernel()
    assert not check.ok
    assert f"starts {other}, the Python of another environment ({sys.base_prefix})" in check.found
    assert "jupyter kernelspec remove -y python3" in check.fix and str(spec) in check.fix
    command = check.fix.split("  (")[0].split()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO, env={**os.environ, "JUPYTER_PATH": str(tmp_path)})
    assert not spec.exists()
    assert doctor.check_kernel().ok


def test_kernel_whose_python_does_not_exist_is_caught(monkeypatch, tmp_path):
    kernel_spec(tmp_path, str(tmp_path / "gone" / "python3"))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    check = doctor.check_kernel()
    assert not check.ok and "does not run" in check.found
    assert "kernelspec remove -y python3" in check.fix


def test_too_little_memory_or_disk_is_caught(monkeypatch):
    free_gb = shutil.disk_usage(REPO).free / 1e9
    monkeypatch.setattr(doctor, "FULL_PROFILE_DISK_GB", free_gb * 2)
    check = doctor.check_room()
    assert not check.ok and "pip cache purge" in check.fix
    assert f"{free_gb:.1f} GB free on disk" in check.found
    if doctor.available_memory_gb() is None:
        pytest.skip("no /proc/meminfo on this system: memory is not checked")
    monkeypatch.setattr(doctor, "FULL_PROFILE_DISK_GB", 0.0)
    monkeypatch.setattr(doctor, "memory_needed", lambda results=None: (1e6, "a need no machine meets"))
    check = doctor.check_room()
    assert not check.ok and "DEEPNETS_PROFILE=smoke" in check.fix


def test_memory_need_comes_from_the_recorded_peaks(tmp_path):
    write_results(tmp_path, reference=1000.0, walls={"00_a": 60.0, "01_b": 60.0})
    for name, peak in (("00_a", 1.5), ("01_b", 6.25)):
        run = json.loads((tmp_path / f"{name}.json").read_text())
        (tmp_path / f"{name}.json").write_text(json.dumps({**run, "peak_memory_gb": peak}))
    need, origin = doctor.memory_needed(tmp_path)
    assert need == 6.25 + doctor.JUPYTER_SERVER_GB and origin.startswith("01_b's recorded peak 6.25 GB")


def write_results(folder: Path, reference: float, walls: dict[str, float], device: str = "cpu (2 threads)") -> None:
    folder.mkdir(exist_ok=True)
    (folder / "bench.json").write_text(json.dumps({"device": device, "figures": {doctor.BENCH_FIGURE: reference}}))
    for name, wall in walls.items():
        (folder / f"{name}.json").write_text(json.dumps({
            "notebook": name, "profile": "full", "device": device, "timings": {"wall_seconds": wall}}))


def test_time_estimate_scales_recorded_wall_times_by_the_benchmark(monkeypatch, tmp_path):
    # This machine half as fast as the recorded one: 600 s and 3000 s recorded become 20 and 100 min.
    write_results(tmp_path, reference=1000.0, walls={"00_a": 600.0, "01_b": 3000.0})
    monkeypatch.setattr(doctor, "benchmark_img_per_sec", lambda seconds=doctor.BENCH_SECONDS: 500.0)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    check = doctor.check_time(results=tmp_path)
    assert check.ok
    assert f"about 00 {600 * 2 / 60:.0f} min, 01 {3000 * 2 / 3600:.1f} h" in check.found
    assert "500 img/s here" in check.found and "1,000 img/s recorded" in check.found


def test_time_estimate_refuses_results_from_another_device(tmp_path):
    write_results(tmp_path, reference=1000.0, walls={"00_a": 600.0})
    bench = json.loads((tmp_path / "bench.json").read_text())
    (tmp_path / "bench.json").write_text(json.dumps({**bench, "device": "cpu (8 threads)"}))
    check = doctor.check_time(results=tmp_path)
    assert not check.ok and not check.blocks
    assert check.fix.startswith("python -m deepnets.bench")


def test_benchmark_times_the_step_bench_records():
    # The same builder, input size and batch as the figure the estimate divides by.
    from deepnets import bench
    assert doctor.BENCH_FIGURE == doctor.BENCH_NET.split(" ")[0] + "_cl_img_per_sec"
    recorded = json.loads((REPO / "notebooks" / "results" / "bench.json").read_text())
    assert doctor.BENCH_FIGURE in recorded["figures"]
    assert doctor.BENCH_NET in bench.training_nets()


def test_a_blocking_problem_makes_the_doctor_exit_1(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("DEEPNETS_DATA", str(tmp_path / "nowhere"))
    assert doctor.main(["--quick"]) == 1
    out = capsys.readouterr().out
    assert "✗ data:" in out and "    fix: " in out and "until data is fixed" in out


def test_the_doctor_passes_here_from_the_command_line():
    done = subprocess.run([sys.executable, "-m", "deepnets.doctor", "--quick"], capture_output=True,
                          text=True, cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    names = [line.split(":")[0][2:] for line in done.stdout.splitlines() if line[:1] in "✓✗"]
    assert names == ["Python", "packages", "compute", "data", "Jupyter kernel", "room", "time (full profile)"]


def hide_torch(folder: Path) -> dict[str, str]:
    """An environment whose torch and torchvision fail to import, as after a broken install:
    packages of those names, first on the path, that raise what a missing module raises."""
    for name in ("torch", "torchvision"):
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(f'raise ModuleNotFoundError("No module named {name!r}", name={name!r})\n')
    return {**os.environ, "PYTHONPATH": str(folder)}


def test_the_doctor_runs_without_torch_and_says_how_to_install_it(tmp_path):
    done = subprocess.run([sys.executable, "-m", "deepnets.doctor", "--quick"], capture_output=True, text=True,
                          cwd=REPO, env=hide_torch(tmp_path))
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    out = done.stdout.splitlines()
    lines = {line[2:].split(":")[0]: line for line in out if line[:1] in "✓✗–"}
    assert list(lines) == ["Python", "packages", "compute", "data", "Jupyter kernel", "room", "time (full profile)"]
    assert lines["compute"] == "✗ compute: torch cannot be imported (ModuleNotFoundError: No module named 'torch')"
    # torch's files are installed (only its import fails), so the fix reinstalls the pinned versions
    pins = pins_from_file()
    assert out[out.index(lines["compute"]) + 1] == (
        f"    fix: {Path(sys.executable).relative_to(REPO)} -m pip install --force-reinstall "
        f"torch=={pins['torch']} torchvision=={pins['torchvision']}")
    for name in ("data", "time (full profile)"):
        assert lines[name].startswith(f"– {name}: not run: it needs torch"), lines[name]
    # the checks that need no torch still ran
    assert all(lines[name].startswith("✓") for name in ("Python", "Jupyter kernel", "room")), lines
    assert out[-1] == "The course cannot run here until compute is fixed (the commands above)."


def test_without_torch_anything_but_the_doctor_stops_at_import(tmp_path):
    done = subprocess.run([sys.executable, "-c", "import deepnets"], capture_output=True, text=True, cwd=REPO,
                          env=hide_torch(tmp_path))
    assert done.returncode == 1
    assert "ImportError: deepnets needs PyTorch" in done.stderr and "pip install -r requirements.txt" in done.stderr


def test_torch_not_installed_gets_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    real = doctor.installed_version
    monkeypatch.setattr(doctor, "installed_version", lambda name: None if name == "torch" else real(name))
    check = doctor.check_compute()
    assert not check.ok and check.blocks and check.found.startswith("torch cannot be imported (ModuleNotFoundError")
    # the command make and the README's 'Without make' run
    assert check.fix.split("  (")[0].endswith(f" -m pip install -r {REPO / 'requirements.txt'}")
    assert [c.found.startswith("not run") for c in doctor.run_checks(quick=True)] == [
        False, False, False, True, False, False, True]
