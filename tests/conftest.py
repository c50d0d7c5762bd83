"""Shared fixtures: the repository's paths and small Fashion-MNIST slices."""

import pytest
import torch

from deepnets.files import REPO

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
def _restore_thread_count():
    # A test that changes torch's thread count must not change it for the tests after it:
    # results compared bit for bit depend on how CPU kernels split their work.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def losses_on_one_batch(model, x, y, optimizer, steps: int) -> list[float]:
    """Train `model` on the single batch (x, y) for `steps` steps; the loss after each.

    A net that can learn at all drives the loss on one fixed batch towards zero: the check
    that its forward and backward passes are wired together.
    """
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
