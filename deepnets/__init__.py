"""deepnets: the shared code of a notebook course on deep convolutional networks."""

from deepnets import plots
from deepnets.data import Batches, FashionMNIST, DataError, load_fashion_mnist, stratified_subset
from deepnets.profiles import Profile, get_profile
from deepnets.results import Results
from deepnets.summary import LayerTable, count_params, layer_table
from deepnets.train import History, evaluate, fit, get_device, predict, seed_everything
from deepnets import models

__all__ = [
    "Batches", "DataError", "FashionMNIST", "History", "LayerTable", "Profile", "Results",
    "count_params", "evaluate", "fit", "get_device", "get_profile", "layer_table",
    "load_fashion_mnist", "models", "plots", "predict", "seed_everything", "stratified_subset",
]
