"""The README's set-up commands work: make's choice of Python, its doctor gate, and the
commands for a machine without make, read from the README itself and run in a fresh copy."""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
MAKE = shutil.which("make")
needs_make = pytest.mark.skipif(MAKE is None, reason="make is not installed here")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what an outer `make test` passes to sub-makes."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    return {**env, **extra}


def fake_pythons(folder: Path, versions: dict[str, str]) -> str:
    """A PATH holding only fake Pythons (each prints its version) and the tools make's shell uses."""
    folder.mkdir()
    for name, version in versions.items():
        exe = folder / name
        exe.write_text(f"#!/bin/sh\necho {version}\n")
        exe.chmod(0o755)
    for tool in ("sort", "head", "cut"):
        (folder / tool).symlink_to(shutil.which(tool))
    return str(folder)


def check_python(path: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([MAKE, "--no-print-directory", "-C", str(REPO), "check-python", *args],
                          capture_output=True, text=True, env=clean_env(PATH=path))


@needs_make
@pytest.mark.parametrize("versions, chosen", [
    ({"python3.13": "3.13", "python3.11": "3.11", "python3": "3.10"}, "python3.13 (Python 3.13)"),
    ({"python3.11": "3.11", "python3": "3.12"}, "python3 (Python 3.12)"),  # the newest, not the first
    ({"python3": "3.11"}, "python3 (Python 3.11)"),
    ({"python3.12": "3.12", "python3": "3.12"}, "python3.12 (Python 3.12)"),
])
def test_make_uses_the_newest_supported_python(tmp_path, versions, chosen):
    done = check_python(fake_pythons(tmp_path / "bin", versions))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Using {chosen}."


@needs_make
def test_make_refuses_other_pythons_and_says_how_to_get_one(tmp_path):
    done = check_python(fake_pythons(tmp_path / "bin", {"python3": "3.10", "python3.14": "3.14"}))
    assert done.returncode != 0
    assert "needs Python 3.11, 3.12 or 3.13" in done.stderr
    assert "python3: 3.10" in done.stderr and "python3.13: not found" in done.stderr
    for way in ("apt-get install", "pyenv install", "conda env create -f environment.yml", "make PYTHON="):
        assert way in done.stderr


@needs_make
def test_make_refuses_an_unsupported_python_named_by_hand(tmp_path):
    path = fake_pythons(tmp_path / "bin", {"python3.12": "3.12", "python3.9": "3.9"})
    done = check_python(path, f"PYTHON={tmp_path}/bin/python3.9")
    assert done.returncode != 0
    assert f"PYTHON={tmp_path}/bin/python3.9 is 3.9." in done.stderr


def test_requires_python_matches_makes_versions():
    import tomllib
    from packaging.specifiers import SpecifierSet

    spec = SpecifierSet(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"])
    line = next(l for l in (REPO / "Makefile").read_text().splitlines() if l.startswith("SUPPORTED_PYTHONS"))
    supported = line.split(":=")[1].split()
    assert [f"3.{m}" for m in range(8, 16) if f"3.{m}.0" in spec] == sorted(supported, key=lambda v: int(v[2:]))


def broken_kernel(folder: Path) -> dict[str, str]:
    """JUPYTER_PATH with a python3 kernel that starts a Python that is not there."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3", '
        '"language": "python"}' % (folder / "gone" / "python3"))
    return clean_env(JUPYTER_PATH=str(folder))


@needs_make
@pytest.mark.parametrize("target, after", [
    ("lab", "LAB_FLAGS=--version"),   # were the doctor skipped, lab would print its version
    ("test", "HEADLESS=exit 3;"),     # were the doctor skipped, the recipe would exit 3, not run pytest
])
def test_make_lab_and_test_stop_at_the_doctor(tmp_path, target, after):
    # -o: the set-up (venv and data) is taken as done, so the test never reinstalls the
    # environment, nor spends seconds importing torch to find the data `make test` just found.
    done = subprocess.run([MAKE, "--no-print-directory", "-C", str(REPO), "-o", ".venv/.installed", "-o", "data",
                           target, after],
                          capture_output=True, text=True, env=broken_kernel(tmp_path), timeout=300)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "✗ Jupyter kernel:" in out and "fix: " in out
    assert "Error 3" not in out and not re.search(r"^\d+\.\d+\.\d+$", done.stdout, re.M)


def readme_block(language: str) -> str:
    """The first `language` code block of the README's "Without make" section."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Without make", 1)[1].split("\n## ", 1)[0]
    return re.search(rf"```{language}\n(.*?)```", section, re.S).group(1)


def test_powershell_commands_are_the_bash_ones():
    bash, ps = readme_block("bash").splitlines(), readme_block("powershell").splitlines()
    assert len(bash) == len(ps)
    def commands(line: str) -> list[str]:
        return [c.strip() for c in re.findall(r"\b(?:python|pip|jupyter)\b[^;|{}#]*", line)]

    # Each line runs the same programs with the same arguments in both shells, but for the
    # first two (making and activating the venv), which each shell does its own way.
    for b, p in zip(bash[2:], ps[2:]):
        assert commands(b) == commands(p), (b, p)
    assert "DEEPNETS_PROFILE=smoke" in bash[-1] and '$env:DEEPNETS_PROFILE = "smoke"' in ps[-1]


def copy_of_repo(target: Path) -> Path:
    """The repository's files as a fresh clone with this working tree's changes would have them."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, names):
        if (REPO / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, target / name)
    return target


def torch_and_its_requirements() -> list[importlib.metadata.Distribution]:
    """The installed torch and everything it requires, recursively (the CUDA libraries: 5.4 GB)."""
    todo, found = ["torch"], {}
    while todo:
        name = canonicalize_name(todo.pop())
        if name in found:
            continue
        found[name] = dist = importlib.metadata.distribution(name)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return list(found.values())


def link_installed(dists: list[importlib.metadata.Distribution], venv: Path) -> None:
    """Hard-link these distributions' installed files (as their RECORD lists them) into `venv`."""
    site = next(venv.glob("lib/python*/site-packages"))
    for dist in dists:
        for file in dist.files:
            source = Path(dist.locate_file(file))
            if ".." in file.parts or not source.is_file():
                continue  # scripts in bin/ and .pyc files not written yet
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:  # another file system: copy instead
                shutil.copy2(source, target)


@pytest.mark.install
def test_the_commands_without_make_work_in_a_fresh_copy(tmp_path):
    lines = readme_block("bash").splitlines()
    assert lines[:3] == ["python3 -m venv .venv", ". .venv/bin/activate", "pip install -r requirements.txt"]
    assert lines[-2] == "jupyter lab notebooks/"
    # Two lines would not return: JupyterLab serves until stopped, and the test command is
    # this very suite. They run with flags that make them check their arguments and stop:
    # lab prints its version, pytest collects every test and notebook without running them.
    lines[-2] += " --version"
    lines[-1] += " --collect-only -q -p no:cacheprovider"
    clone = copy_of_repo(tmp_path / "clone")
    # python3 is the interpreter this suite's venv was made from: one of the supported ones.
    path = os.pathsep.join([str(Path(sys.base_prefix) / "bin"),
                            *(p for p in os.environ["PATH"].split(os.pathsep) if not p.startswith(sys.prefix))])
    env = clean_env(PATH=path, OMP_NUM_THREADS="1")
    env.pop("VIRTUAL_ENV", None)
    run = lambda script: subprocess.run(["bash", "-c", "set -ex\n" + script], cwd=clone, capture_output=True,
                                        text=True, env=env, timeout=900)
    done = run(lines[0])
    assert done.returncode == 0, done.stderr
    # Installing torch's 5.4 GB of wheels again would add minutes to every `make test`, and
    # make's set-up runs the same `pip install -r requirements.txt` on every fresh clone. So
    # the new venv gets torch and its requirements as hard links to the files this venv
    # installed from the same wheels; pip finds them at their pins and installs all the rest.
    link_installed(torch_and_its_requirements(), clone / ".venv")
    done = run("\n".join(lines[1:]))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-4000:]
    assert "Successfully installed" in out and "torchvision-" + importlib.metadata.version("torchvision") in out
    assert "✗" not in done.stdout, out[-4000:]
    assert f"deepnets from {clone / 'deepnets'}" in done.stdout  # the kernel is the new venv's Python
    # "880 tests collected", or "880/881 tests collected" where -m "not install" leaves one out
    assert re.search(r"^\d+(/\d+)? tests collected", done.stdout, re.M), out[-4000:]
