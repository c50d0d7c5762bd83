"""The package itself: what `import deepnets` gives, and what it says when it cannot."""

import importlib
import os
import subprocess
import sys

import pytest

import deepnets
from deepnets.files import REPO


def _python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.parametrize("module", ["deepnets.train", "deepnets.data"])
def test_commands_start_without_runpy_warning(module):
    # runpy warns when `import deepnets` has already imported the module `-m` is asked to run.
    done = _python("-m", module, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage:")
    assert "RuntimeWarning" not in done.stderr, done.stderr


def test_every_public_name_is_the_object_of_its_module():
    for name in deepnets.__all__:
        value = getattr(deepnets, name)
        home = getattr(value, "__module__", None) or getattr(value, "__name__", "")
        if home.startswith("deepnets.") and hasattr(importlib.import_module(home), name):
            assert getattr(importlib.import_module(home), name) is value, name
    assert set(deepnets.__all__) <= set(dir(deepnets))


# A Python without torch: a finder that refuses it, as an environment without the course's packages would.
NO_TORCH = """
import sys

class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoTorch())
try:
    import deepnets
except ImportError as e:
    print(type(e).__name__, "|", e)
else:
    print("imported")
"""


def test_import_without_torch_names_the_fix():
    done = _python("-c", NO_TORCH)
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.strip().split(" | ", 1)
    assert kind == "ImportError", done.stdout
    assert "No module named 'torch'" in message and sys.executable in message
    assert "make setup" in message and "pip install -r requirements.txt" in message
