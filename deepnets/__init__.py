"""deepnets: the shared code of a notebook course on deep convolutional networks."""

from deepnets import checks, evidence
from deepnets.data import (Batches, DataError, FashionMNIST, Split, load_fashion_mnist, stratified_subset,
                           train_val_split)
from deepnets.evidence import compare, spread
from deepnets.profiles import Profile, get_profile
from deepnets.results import Results
from deepnets.summary import LayerTable, count_params, layer_table
from deepnets.train import History, evaluate, fit, get_device, predict, seed_everything
from deepnets import models

__all__ = [
    "Batches", "DataError", "FashionMNIST", "History", "LayerTable", "Profile", "Results", "Split",
    "compare", "count_params", "diagrams", "evaluate", "evidence", "fit", "get_device", "get_profile", "layer_table",
    "load_fashion_mnist", "models", "plots", "predict", "seed_everything", "spread",
    "stratified_subset", "train_val_split",
]

# Drawing needs matplotlib, which takes a second to import: `deepnets.plots` and
# `deepnets.diagrams` load on first use, so `import deepnets` stays quick for commands that draw nothing.
_LAZY = ("diagrams", "plots")


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return importlib.import_module(f"deepnets.{name}")
    raise AttributeError(f"module 'deepnets' has no attribute {name!r}")
