"""Many processes, one model: torchrun and DistributedDataParallel, PyTorch's own engine.

`torchrun --nproc_per_node=N -m deepnets.train ...` starts N copies of the training command
and gives each its RANK, LOCAL_RANK and WORLD_SIZE. `start()` joins them into one process
group (gloo on the CPU, NCCL on CUDA); each rank trains on its own disjoint share of every
batch (`ShardedBatches` for the in-memory data, `EpochLoader` + `DistributedSampler` for an
image folder), and `fit` wraps the model in DistributedDataParallel, which averages the
gradients over the ranks during each backward pass. Every rank therefore takes the same
optimizer step as one process would on the whole batch. Outside torchrun each function
here is the one-process case: rank 0 of 1, nothing to wrap, nothing to add up.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from deepnets import checks
from deepnets.data import Batches, random_crop_flip


def launched_by_torchrun() -> bool:
    """True in a process that torchrun (or another launcher setting its variables) started."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def start() -> torch.device:
    """Join the launcher's process group (if any); the device this process computes on.

    Under torchrun with CUDA, rank r of a machine takes GPU LOCAL_RANK and talks over NCCL;
    on the CPU the ranks talk over gloo.
    """
    cuda = torch.cuda.is_available()
    if not launched_by_torchrun():
        return torch.device("cuda" if cuda else "cpu")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise checks.ArgumentValueError(
                f"This machine has {torch.cuda.device_count()} GPU(s) but torchrun started a process "
                f"with LOCAL_RANK={local_rank}. Pass --nproc_per_node={torch.cuda.device_count()} "
                f"or fewer to torchrun.")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return device


def stop() -> None:
    """Leave the process group (a no-op outside torchrun)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def get_rank() -> int:
    """This process's rank, 0 outside torchrun."""
    return dist.get_rank() if dist.is_initialized() else 0


def get_world_size() -> int:
    """How many processes train together, 1 outside torchrun."""
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main() -> bool:
    """True in the one process that prints and writes files (rank 0)."""
    return get_rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (a no-op in one process)."""
    if get_world_size() > 1:
        dist.barrier()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` as DistributedDataParallel when several processes train it, else itself."""
    if get_world_size() == 1:
        return model
    # DDP copies rank 0's weights to every rank here, so all ranks start equal.
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def reduce_sums(*values: float) -> list[float]:
    """Each value summed over all ranks (the values themselves in one process)."""
    if get_world_size() == 1:
        return list(values)
    # NCCL reduces CUDA tensors only; gloo takes CPU ones.
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
    total = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(total)
    return total.tolist()


def seed_per_rank(seed: int) -> None:
    """Give each rank its own random stream from `seed`, for dropout: call it after building
    the model (DDP copies rank 0's weights to every rank anyway).

    With one common seed every rank would drop the same units of its i-th image as the
    others do of theirs; rank r draws from seed + r * 2**32, which no one-process seed meets.
    """
    torch.manual_seed(seed + get_rank() * 2**32)


def all_rng_states() -> list[torch.Tensor]:
    """torch's CPU random state of every rank, in rank order (call it on every rank).

    Dropout draws from it, differently on each rank, so an exact resume needs all of them.
    """
    if get_world_size() == 1:
        return [torch.get_rng_state()]
    states: list = [None] * get_world_size()
    dist.all_gather_object(states, torch.get_rng_state())
    return states


def check_global_batch(batch_size: int, num_replicas: int | None = None) -> int:
    """The global batch split evenly over the ranks: each rank's share."""
    n = get_world_size() if num_replicas is None else num_replicas
    if batch_size % n:
        raise checks.ArgumentValueError(
            f"The batch size {batch_size} cannot be split evenly over {n} processes. Use a "
            f"multiple of {n}, e.g. {batch_size - batch_size % n or n}.")
    return batch_size // n


class ShardedBatches:
    """This rank's share of every batch of a `Batches`: ranks take alternate images.

    `batches.batch_size` is the global batch. The order of an epoch and the augmentation of
    each image are drawn for the whole batch, from the same seeded generator on every rank,
    exactly as one process would draw them; rank r then keeps images r, r + N, r + 2N, ... of
    it (N = world size), the split DistributedSampler makes. So the ranks' shares of an epoch
    are disjoint and cover it, and are reshuffled every epoch from the seed. Training pads
    the epoch with its first images to a multiple of N (as DistributedSampler does), so every
    rank takes the same number of steps; evaluation (`pad=False`) sees each image once.
    """

    def __init__(self, batches: Batches, pad: bool = True, rank: int | None = None, num_replicas: int | None = None):
        self.rank = get_rank() if rank is None else rank
        self.world_size = get_world_size() if num_replicas is None else num_replicas
        if not 0 <= self.rank < self.world_size:
            raise checks.ArgumentValueError(f"rank must be from 0 to {self.world_size - 1} for {self.world_size} "
                                            f"processes, got {self.rank}.")
        check_global_batch(batches.batch_size, self.world_size)
        self.batches, self.pad = batches, pad

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def num_images(self) -> int:
        """How many images this rank sees in one epoch."""
        n = self.batches.num_images
        if self.pad:
            return -(-n // self.world_size)
        return len(range(self.rank, n, self.world_size))

    def state_dict(self) -> dict:
        """The generator's state (the same on every rank)."""
        return self.batches.state_dict()

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` saved."""
        self.batches.load_state_dict(state)

    def __iter__(self):
        b = self.batches
        n = b.num_images
        order = torch.randperm(n, generator=b.generator) if b.shuffle else torch.arange(n)
        if self.pad:
            order = torch.cat([order, order[:(-n) % self.world_size]])
        order = order.to(b.device)
        for start in range(0, len(order), b.batch_size):
            index = order[start:start + b.batch_size]
            x, y = b.images[index], b.labels[index]
            if b.augment:  # drawn for the whole batch, so every rank's generator stays in step
                x = random_crop_flip(x, b.pad, b.generator)
            x, y = x[self.rank::self.world_size], y[self.rank::self.world_size]
            if len(y):
                yield b.model_input(x), y


class EpochLoader(DataLoader):
    """A DataLoader whose sampler is told the epoch (`fit` calls `set_epoch`), so a
    DistributedSampler reshuffles every epoch from its seed."""

    def set_epoch(self, epoch: int) -> None:
        """Pass the epoch to the sampler (DistributedSampler's order depends on it)."""
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(epoch)


def folder_loader(dataset: Dataset, batch_size: int, train: bool, seed: int, workers: int,
                  pin_memory: bool = False) -> EpochLoader:
    """Batches of an image-folder data set for this rank: `batch_size` is the global batch.

    Training: DistributedSampler's disjoint shuffled share (reshuffled per epoch from `seed`).
    Evaluation: images rank, rank + N, ... in order, each seen once.
    """
    per_rank = check_global_batch(batch_size)
    if train:
        sampler = DistributedSampler(dataset, num_replicas=get_world_size(), rank=get_rank(), shuffle=True,
                                     seed=seed)
    else:
        sampler = range(get_rank(), len(dataset), get_world_size())
    return EpochLoader(dataset, batch_size=per_rank, sampler=sampler, num_workers=workers,
                       pin_memory=pin_memory, persistent_workers=workers > 0)
