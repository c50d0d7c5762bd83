"""deepnets: the shared code of a notebook course on deep convolutional networks."""

import sys


def _doctor_is_starting() -> bool:
    """True while `python -m deepnets.doctor` imports this package, before the doctor runs."""
    argv = sys.orig_argv
    return any(flag == "-m" and module == "deepnets.doctor" for flag, module in zip(argv, argv[1:]))


try:
    import torch  # noqa: F401  (every module of the course computes with it)
except (ImportError, OSError) as e:  # OSError: a torch whose shared libraries fail to load
    # The doctor is what a learner with a broken install runs: it starts without torch and
    # reports it among its checks, with the fix. For it alone the package loads empty.
    if not _doctor_is_starting():
        raise ImportError(
            f"deepnets needs PyTorch, which this Python ({sys.executable}) cannot import ({e}). "
            f"Install the course's packages with `make setup`, or `pip install -r requirements.txt` "
            f"in this environment, then check the set-up with `make doctor`.") from e
else:
    from deepnets import checks, evidence
    from deepnets.checks import DataError
    from deepnets.evidence import compare, spread
    from deepnets.profiles import Profile, get_profile
    from deepnets.results import Results
    from deepnets.summary import LayerTable, count_params, layer_table
    from deepnets import models

__all__ = [
    "Batches", "DataError", "FashionMNIST", "History", "LayerTable", "Profile", "Results", "Split",
    "compare", "count_params", "diagrams", "evaluate", "evidence", "fit", "get_device", "get_profile", "layer_table",
    "load_fashion_mnist", "models", "plots", "predict", "seed_everything", "spread",
    "stratified_subset", "train_val_split",
]

# Modules that load on first use. Drawing needs matplotlib, which takes a second to import:
# `deepnets.plots` and `deepnets.diagrams` wait, so `import deepnets` stays quick for commands
# that draw nothing. `deepnets.data` and `deepnets.train` (and the names taken from them) wait
# because they are also commands (`python -m deepnets.train`), and runpy warns when the
# package has already imported the module it is asked to run.
_LAZY = ("data", "diagrams", "plots", "train")
_LAZY_NAMES = {
    **dict.fromkeys(("Batches", "FashionMNIST", "Split", "load_fashion_mnist", "stratified_subset",
                     "train_val_split"), "data"),
    **dict.fromkeys(("History", "evaluate", "fit", "get_device", "predict", "seed_everything"), "train"),
}


def __getattr__(name: str):
    import importlib

    if name in _LAZY:
        return importlib.import_module(f"deepnets.{name}")
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"deepnets.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module 'deepnets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
