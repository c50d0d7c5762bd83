"""Shared fixtures: the repository's paths and small Fashion-MNIST slices."""

from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(scope="session")
def fashion():
    from deepnets import load_fashion_mnist
    return load_fashion_mnist()


@pytest.fixture(scope="session")
def small(fashion):
    """A stratified 50-per-class training slice and 30-per-class test slice."""
    from deepnets import stratified_subset
    return (*stratified_subset(fashion.train_images, fashion.train_labels, 50),
            *stratified_subset(fashion.test_images, fashion.test_labels, 30))


@pytest.fixture(autouse=True)
def _one_thread_per_test():
    # Tests compare runs bit for bit; a fixed thread count keeps CPU kernels deterministic.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
