"""Many processes: two CPU processes over gloo on the loopback interface train as one would.

Each multi-process test starts 2 fresh Python processes (torch.multiprocessing, or torchrun
for the command line); their start-up (importing torch) is most of each test's time.
"""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from deepnets import Batches, distributed, fit
from deepnets.train import load_checkpoint

REPO = Path(__file__).resolve().parents[1]
MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST's; passed so the workers need not load the data


def batches(x, y, batch_size, augment=False):
    return Batches(x, y, batch_size=batch_size, shuffle=True, seed=0, augment=augment, device="cpu",
                   mean=MEAN, std=STD)


# ------------------------------------------------------------------ shards, in one process

@pytest.mark.parametrize("n, world, batch", [(103, 2, 10), (103, 3, 12), (64, 2, 16)])
def test_shards_of_an_epoch_are_disjoint_and_cover_it(n, world, batch):
    images = torch.randint(0, 256, (n, 8, 8), dtype=torch.uint8)
    labels = torch.arange(n)  # each image's label is its index: the shards show which images they hold
    shards = [distributed.ShardedBatches(batches(images, labels, batch), rank=r, num_replicas=world)
              for r in range(world)]
    orders = []
    for epoch in range(2):
        seen = [torch.cat([y for _, y in shard]) for shard in shards]
        assert len({len(s) for s in seen}) == 1                      # every rank: as many images
        assert len(seen[0]) == -(-n // world)                         # ... ceil(n / world) of them
        everything = torch.cat(seen)
        assert set(everything.tolist()) == set(range(n))             # together: the whole epoch
        assert len(everything) - n == (-n) % world                   # repeats: only the padding
        assert len(everything) == len(set(everything.tolist())) + (-n) % world
        assert all(len(shard) == -(-n // batch) for shard in shards)  # same steps on every rank
        orders.append(seen[0])
    assert not torch.equal(orders[0], orders[1])                      # reshuffled every epoch


def test_shards_are_the_one_process_batches_split(small):
    """With augmentation: the ranks' images, interleaved, are exactly one process's batch."""
    x, y = small[0][:120], small[1][:120]
    one = list(batches(x, y, 40, augment=True))
    ranks = [list(distributed.ShardedBatches(batches(x, y, 40, augment=True), rank=r, num_replicas=2))
             for r in range(2)]
    for step, (xb, yb) in enumerate(one):
        (x0, y0), (x1, y1) = ranks[0][step], ranks[1][step]
        assert torch.equal(xb[0::2], x0) and torch.equal(xb[1::2], x1)
        assert torch.equal(yb[0::2], y0) and torch.equal(yb[1::2], y1)


def test_batch_that_does_not_split_evenly():
    b = batches(torch.zeros(10, 8, 8, dtype=torch.uint8), torch.zeros(10, dtype=torch.long), 5)
    with pytest.raises(ValueError, match="batch size 5 cannot be split evenly over 2 processes. Use a multiple of 2"):
        distributed.ShardedBatches(b, rank=0, num_replicas=2)


# ------------------------------------------------------------------ two processes

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def net_without_batch_norm(dropout: float = 0.0) -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Dropout(dropout), nn.Linear(8 * 14 * 14, 10))


def train_run(x, y, epochs, checkpoint=None, resume=False, dropout=0.0, stop_after=None):
    """The run every test compares: SGD + momentum, one cycle, shuffled and augmented batches."""
    torch.manual_seed(0)
    model = net_without_batch_norm(dropout)
    data = batches(x, y, 40, augment=True)
    if distributed.get_world_size() > 1:
        data = distributed.ShardedBatches(data)
        distributed.seed_per_rank(0)  # as the command line does: each rank its own dropout
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=epochs * len(data))
    history = fit(model, data, None, epochs=stop_after or epochs, optimizer=opt, scheduler=sched,
                  device="cpu", checkpoint=checkpoint, resume=resume, verbose=False)
    return model, history


def _worker(rank, world, port, out, jobs):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    finished = {}
    for name, job in jobs.items():  # one process start-up (seconds of imports) for several runs
        if rank == 0:
            out.with_name(f"{name}.started").touch()
        x, y = job["x"], job["y"].clone()
        if job.get("bad_label_on_rank") == rank:
            y[:] = 99  # this rank's share holds a label the 10-class net cannot have
        model, history = train_run(x, y, **job["run"])
        finished[name] = {"model": model.state_dict(), "history": history.to_dict()}
        if rank == 0:
            torch.save(finished, out)
    # Only after success: a rank that raised must just exit (destroying the group would wait
    # for the other rank, itself waiting in an all-reduce), so the launcher sees it fail.
    dist.destroy_process_group()


def two_processes(out, jobs, timeout=120):
    """Run `_worker` on ranks 0 and 1: {job: rank 0's weights and history}. Raises a rank's error."""
    context = mp.start_processes(_worker, args=(2, free_port(), out, jobs), nprocs=2, join=False,
                                 start_method="spawn")
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail(f"the two processes did not finish within {timeout} s: a hang")
    return torch.load(out, weights_only=True)


def test_two_processes_match_one_resume_exactly_and_fail_together(small, tmp_path):
    """Five runs in one pair of processes (each start-up costs seconds of imports)."""
    # Equal: 240 images, a global batch of 40, 2 epochs = 12 SGD steps, on 2 processes and on 1.
    x, y = small[0][:240], small[1][:240]
    # Resume: dropout draws on each rank's own random stream, so both ranks' streams must come back.
    drop = {"epochs": 2, "dropout": 0.3}
    ckpt, out = tmp_path / "run.pt", tmp_path / "two.pt"
    jobs = {
        "equal": {"x": x, "y": y, "run": {"epochs": 2}},
        "unbroken": {"x": x, "y": y, "run": drop},
        "stopped": {"x": x, "y": y, "run": {**drop, "checkpoint": ckpt, "stop_after": 1}},
        "resumed": {"x": x, "y": y, "run": {**drop, "checkpoint": ckpt, "resume": True}},
        # Last: rank 1 gets a label its net cannot have, while rank 0 waits for its gradients.
        "failing": {"x": x, "y": y, "run": {"epochs": 1}, "bad_label_on_rank": 1},
    }
    with pytest.raises(mp.ProcessRaisedException, match="labels go up to 99"):
        two_processes(out, jobs, timeout=300)  # about 20 s; a hang ends in pytest.fail instead
    # Rank 0 waits in the all-reduce for gradients rank 1 never sends; gloo alone would wait
    # its default 30 minutes. The launcher sees rank 1 die and ends the job at once.
    assert time.time() - (tmp_path / "failing.started").stat().st_mtime < 120
    two = torch.load(out, weights_only=True)
    assert list(two) == ["equal", "unbroken", "stopped", "resumed"]

    model, history = train_run(x, y, epochs=2)
    # DDP averages the two ranks' mean gradients: the same sum as one process's mean, added
    # in another order, so float32 rounding differs in the last bits, step after step. The
    # tolerance, 1e-6 on every weight after 12 steps, is about thirty float32 ulps of the largest
    # weights (~0.3); a wrong shard or a missed average moves them by orders of magnitude more.
    for name, a in model.state_dict().items():
        b = two["equal"]["model"][name]
        assert torch.allclose(a, b, rtol=0, atol=1e-6), (name, (a - b).abs().max().item())
    assert two["equal"]["history"]["train_loss"] == pytest.approx(history.train_loss, rel=1e-6)
    assert two["equal"]["history"]["train_acc"] == history.train_acc

    assert two["stopped"]["history"]["train_loss"] == two["unbroken"]["history"]["train_loss"][:1]
    saved = load_checkpoint(ckpt)  # written by rank 0 alone, holding both ranks' random streams
    assert saved["epoch"] == 2 and len(saved["rank_rng"]) == 2
    assert not torch.equal(saved["rank_rng"][0], saved["rank_rng"][1])
    for name, a in two["unbroken"]["model"].items():
        assert torch.equal(a, two["resumed"]["model"][name]), name
    assert two["unbroken"]["history"]["train_loss"] == two["resumed"]["history"]["train_loss"]
    assert not torch.equal(two["unbroken"]["model"]["5.weight"], two["equal"]["model"]["5.weight"])  # dropout acted


def test_torchrun_trains_a_cifar_resnet_with_two_processes(tmp_path):
    results = tmp_path / "r.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "MASTER_ADDR": "127.0.0.1"}
    done = subprocess.run(  # torchrun is `python -m torch.distributed.run`
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "deepnets.train",
         "--model", "cifar_resnet20", "--epochs", "1", "--limit", "4", "--batch-size", "20",
         "--results", str(results)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(results.read_text())
    assert data["processes"] == 2 and data["device"].startswith("2 processes x cpu")
    assert data["figures"]["epochs"] == 1 and 0 <= data["figures"]["test_acc"] <= 1
    assert done.stdout.count("epoch  1/1") == 1        # one log line: only rank 0 prints
    assert done.stdout.count("test accuracy") == 1
