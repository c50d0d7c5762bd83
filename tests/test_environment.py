"""requirements.txt is the one source of truth; environment.yml must mirror it."""

import re

import yaml

from conftest import REPO


def _requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return sorted(l.strip() for l in lines if l.strip() and not l.startswith("#"))


def test_environment_yml_mirrors_requirements():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert sorted(pip) == _requirements()
    assert "python=3.11" in env["dependencies"]


def test_every_requirement_is_pinned_and_torch_is_the_local_build():
    reqs = _requirements()
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*", r) for r in reqs), reqs
    assert "torch==2.14.1" in reqs and "torchvision==0.29.1" in reqs


def test_installed_versions_match_the_pins():
    from importlib.metadata import version
    for req in _requirements():
        name, pinned = req.split("==")
        assert version(name) == pinned, f"{name}: installed {version(name)}, pinned {pinned}"
