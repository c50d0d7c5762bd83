"""Mistakes a learner makes in the first hour, each answered by our message, not a traceback.

One row per mistake: the call, the exception type it must raise, and the argument its
message must name. Every message must also say what to do (a fix verb), and come from
``deepnets`` (an exception type of ours), so no row passes on a bare torch or Python error.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

import deepnets
from deepnets import checks, evidence, models, probes, results, summary, train
from deepnets.data import Batches, find_data_dir, stratified_subset, train_val_split
from deepnets.files import REPO, write_atomically
from deepnets.profiles import get_profile

FIX = re.compile(r"\b(pass|use|run|build|give|set|resize|convert|add|delete|rewrite|reshape|map|"
                 r"leave|point|train|fix|choose|unset|resume)\b", re.IGNORECASE)

U8 = torch.zeros(20, 28, 28, dtype=torch.uint8)
Y = torch.arange(20) % 10
GREY = torch.zeros(2, 1, 28, 28)


def _results_file(tmp_path, text):
    path = tmp_path / "04_resnet.json"
    path.write_text(text)
    return path


# Training mistakes, built small: a linear net over ten images, one batch per epoch.
BATCH = [(torch.rand(10, 1, 28, 28), torch.arange(10))]


def _linear_net(num_classes: int = 10) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, num_classes))


def _fit(net, checkpoint=None, epochs=1, optimizer=torch.optim.SGD, **kw):
    return deepnets.fit(net, BATCH, epochs=epochs, optimizer=optimizer(net.parameters(), lr=0.1), device="cpu",
                        checkpoint=checkpoint, verbose=False, **kw)


def _checkpoint(tmp_path, truncate: bool = False):
    """A checkpoint of one SGD epoch, whole or cut in half (a copy cut short)."""
    path = tmp_path / "run.pt"
    _fit(_linear_net(), path)
    if truncate:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


# (id, call, exception type, argument the message names); `call` takes pytest's tmp_path.
ROWS = [
    # -- empty or degenerate data
    ("batches of zero images", lambda t: Batches(U8[:0], Y[:0], device="cpu"), checks.EmptyDataError, "images"),
    ("subset of a one-class slice", lambda t: stratified_subset(U8, torch.zeros(20, dtype=torch.long), 1),
     checks.EmptyDataError, "labels"),
    ("subset of zero images", lambda t: stratified_subset(U8[:0], Y[:0], 1), checks.EmptyDataError, "images"),
    ("split holding out every image", lambda t: train_val_split(U8, Y, 2), checks.ArgumentValueError,
     "val_per_class"),
    ("spread of no values", lambda t: deepnets.spread([]), checks.EmptyDataError, "values"),
    ("record_seeds of no seeds", lambda t: results.Results("99_x", "smoke").record_seeds("acc", {}),
     checks.EmptyDataError, "by_seed"),
    ("confusion matrix of nothing", lambda t: deepnets.plots.confusion_matrix(Y[:0], Y[:0], list("abcdefghij")),
     checks.EmptyDataError, "labels"),
    ("image grid of nothing", lambda t: deepnets.plots.image_grid(U8[:0]), checks.EmptyDataError, "images"),
    # -- labels and inputs
    ("float labels", lambda t: Batches(U8, Y.float(), device="cpu"), checks.InputError, "labels"),
    ("negative labels", lambda t: Batches(U8, Y - 1, device="cpu"), checks.InputError, "labels"),
    ("labels beyond the classes", lambda t: deepnets.plots.confusion_matrix(Y, Y + 5, list("abcdefghij")),
     checks.InputError, "labels"),
    ("fewer labels than images", lambda t: Batches(U8, Y[:5], device="cpu"), checks.InputError, "labels"),
    ("float images to Batches", lambda t: Batches(U8.float(), Y, device="cpu"), checks.InputError, "images"),
    ("a batch without its batch dimension", lambda t: models.lenet5()(GREY[0]), checks.InputError, "batch"),
    ("uint8 images to a model", lambda t: models.lenet5()(GREY.to(torch.uint8)), checks.InputError, "images"),
    ("RGB images to LeNet-5", lambda t: models.lenet5()(torch.zeros(2, 3, 28, 28)), checks.InputError,
     "in_channels"),
    ("32x32 images to LeNet-5", lambda t: models.lenet5()(torch.zeros(2, 1, 32, 32)), checks.InputError, "Resize"),
    ("grey images to a ResNet-18", lambda t: models.resnet18()(GREY), checks.InputError, "in_channels"),
    ("grey images to VGG16", lambda t: models.vgg16()(GREY), checks.InputError, "in_channels"),
    ("28x28 images to a five-pool VGG", lambda t: models.vgg11(in_channels=1)(GREY), checks.InputTooSmallError,
     "input height/width"),
    ("28x28 images to torchvision's AlexNet", lambda t: models.alexnet(in_channels=1)(GREY),
     checks.InputTooSmallError, "input height/width"),
    ("32x32 images to ConvNet4 built for 28", lambda t: models.convnet4()(torch.zeros(2, 1, 32, 32)),
     checks.InputError, "image_size"),
    ("wrong width of flat inputs to an MLP", lambda t: models.deep_mlp(3)(torch.zeros(2, 100)),
     checks.InputError, "in_features"),
    ("float labels to gradient_norms", lambda t: probes.gradient_norms(models.deep_mlp(3), GREY, Y[:2].float()),
     checks.InputError, "y"),
    # -- arguments of the wrong type Python lets through
    ("a bool batch size", lambda t: Batches(U8, Y, batch_size=True, device="cpu"), checks.ArgumentTypeError,
     "batch_size"),
    ("a float batch size", lambda t: Batches(U8, Y, batch_size=64.0, device="cpu"), checks.ArgumentTypeError,
     "batch_size"),
    ("a float count per class", lambda t: stratified_subset(U8, Y, 1.0), checks.ArgumentTypeError, "n_per_class"),
    ("a float ResNet depth", lambda t: models.cifar_resnet(20.0), checks.ArgumentTypeError, "depth"),
    ("a bool number of classes", lambda t: models.resnet18(num_classes=True), checks.ArgumentTypeError,
     "num_classes"),
    ("a float MLP depth", lambda t: models.deep_mlp(3.5), checks.ArgumentTypeError, "depth"),
    ("a string width", lambda t: models.vgg11(width="half"), checks.ArgumentTypeError, "width"),
    ("dropout as a percentage", lambda t: models.alexnet_small(dropout=50), checks.ArgumentValueError, "dropout"),
    ("an unknown activation", lambda t: models.convnet4("swish"), checks.ArgumentValueError, "activation"),
    ("an activation in another case", lambda t: models.deep_mlp(3, activation="ReLU"), checks.ArgumentValueError,
     "activation"),
    ("an unknown VGG config", lambda t: models.vgg("C"), checks.ArgumentValueError, "cfg"),
    ("an unknown shortcut", lambda t: models.ResNet(models.BasicBlock, [1], widths=(8,), shortcut="zeros"),
     checks.ArgumentValueError, "shortcut"),
    ("one entry too few per stage", lambda t: models.ResNet(models.BasicBlock, [2, 2, 2]),
     checks.ArgumentValueError, "blocks_per_stage"),
    ("a ResNet depth that is not 6n+2", lambda t: models.cifar_resnet(18), checks.ArgumentValueError, "depth"),
    ("channels=2", lambda t: Batches(U8, Y, channels=2, device="cpu"), checks.ArgumentValueError, "channels"),
    ("a negative noise floor", lambda t: deepnets.compare([1, 2], [2, 3], noise_floor=-0.1),
     checks.ArgumentValueError, "noise_floor"),
    ("a NaN among the seeds", lambda t: deepnets.spread([0.9, float("nan")]), checks.ArgumentValueError, "values"),
    ("wrt a typo", lambda t: probes.gradient_norms(models.deep_mlp(3), GREY, Y[:2], wrt="weights"),
     checks.ArgumentValueError, "wrt"),
    ("a module name the model lacks", lambda t: probes.activation_stats(models.deep_mlp(3), GREY, ["blocks.9"]),
     probes.ModuleNameError, "modules"),
    ("a class instead of a model", lambda t: summary.layer_table(models.LeNet5, (1, 1, 28, 28)),
     checks.ArgumentTypeError, "model"),
    ("an input size without its batch", lambda t: summary.layer_table(models.lenet5(), (1, 28, 28)),
     checks.ArgumentValueError, "input_size"),
    ("a tensor recorded as a figure", lambda t: results.Results("99_x", "smoke").record(acc=torch.ones(3)),
     checks.ArgumentTypeError, "acc"),
    ("a notebook file name as the notebook", lambda t: results.Results("04_resnet.ipynb", "smoke"),
     checks.ArgumentValueError, "notebook"),
    ("a plot of an unknown metric", lambda t: deepnets.plots.history(deepnets.History([1.0], [0.5], [1.0], [0.5]),
                                                                       metrics=("accuracy",)),
     checks.ArgumentValueError, "metrics"),
    ("a plot of a dict of numbers", lambda t: deepnets.plots.history({"run": [0.1, 0.2]}),
     checks.ArgumentTypeError, "histories"),
    # -- sizes that would not fit in memory
    ("a batch of 224x224 images larger than memory", lambda t: Batches(U8, Y, batch_size=10 ** 7, size=224,
                                                                        device="cpu"),
     checks.TooMuchMemoryError, "batch_size"),
    ("a layer table for a huge input", lambda t: summary.layer_table(models.lenet5(), (10 ** 9, 1, 28, 28)),
     checks.TooMuchMemoryError, "input_size"),
    # -- files: results and atomic writes
    ("a truncated results file", lambda t: results.load_results(_results_file(t, '{"notebook": "04_res')),
     checks.ResultsFileError, "make notebooks"),
    ("a results file of a run that did not finish",
     lambda t: results.load_results(_results_file(t, json.dumps(
         {"notebook": "04_resnet", "profile": "full", "complete": False, "figures": {}, "timings": {}}))),
     checks.ResultsFileError, "make notebooks"),
    ("a results file lacking its figures",
     lambda t: results.load_results(_results_file(t, json.dumps({"notebook": "04_resnet", "profile": "full"}))),
     checks.ResultsFileError, "figures"),
    ("writing onto a folder", lambda t: write_atomically(t, "x"), checks.ArgumentValueError, "path"),
    # -- training and resuming
    ("fit with labels beyond the model's classes", lambda t: _fit(_linear_net(num_classes=5)), checks.InputError,
     "labels"),
    ("evaluate on no batches", lambda t: deepnets.evaluate(_linear_net(), [], device="cpu"), checks.EmptyDataError,
     "batches"),
    ("resume without a checkpoint", lambda t: _fit(_linear_net(), resume=True), checks.ArgumentValueError,
     "checkpoint"),
    ("a checkpoint path that is a folder", lambda t: _fit(_linear_net(), t), checks.CheckpointError, "checkpoint"),
    ("a truncated checkpoint", lambda t: _fit(_linear_net(), _checkpoint(t, truncate=True), epochs=2, resume=True),
     checks.CheckpointError, "checkpoint"),
    ("a checkpoint from another optimizer", lambda t: _fit(_linear_net(), _checkpoint(t), epochs=2, resume=True,
                                                           optimizer=torch.optim.AdamW),
     checks.CheckpointError, "optimizer"),
    ("a profile name with a typo", lambda t: get_profile("Fulll"), checks.ArgumentValueError, "profile"),
    ("a number as the profile", lambda t: get_profile(3), checks.ArgumentTypeError, "'smoke', 'full', 'gpu'"),
    ("the profile itself where its name is asked", lambda t: results.Results("99_x", get_profile("full")),
     checks.ArgumentTypeError, "P.name"),
    # -- loading weights
    ("weights of another architecture", lambda t: train.load_weights(_linear_net(5), _linear_net().state_dict()),
     checks.CheckpointError, "1.weight: checkpoint (10, 784) vs model (5, 784)"),
    ("weights missing a layer", lambda t: train.load_weights(_linear_net(), {"1.weight": torch.zeros(10, 784)}),
     checks.CheckpointError, "missing from the checkpoint: 1.bias"),
    ("a whole checkpoint as the weights", lambda t: train.load_weights(_linear_net(), train.load_checkpoint(
        _checkpoint(t))), checks.CheckpointError, "['model']"),
    ("a checkpoint path as the weights", lambda t: train.load_weights(_linear_net(), _checkpoint(t)),
     checks.ArgumentTypeError, "load_checkpoint(path)['model']"),
    ("weights of a DistributedDataParallel model",
     lambda t: train.load_weights(_linear_net(), {f"module.{k}": v for k, v in _linear_net().state_dict().items()}),
     checks.CheckpointError, "consume_prefix_in_state_dict_if_present(state_dict, 'module.')"),
    ("a results run in a profile with a typo", lambda t: results.Results("99_x", "Fulll"), checks.ArgumentValueError,
     "profile"),
    # -- environment
    ("$DEEPNETS_DATA pointing at a file", "data_is_a_file", checks.DataError, "DEEPNETS_DATA"),
    ("a data folder without read permission", "data_unreadable", checks.DataError, "permission"),
    ("a root that does not exist", lambda t: find_data_dir(t / "typo"), checks.DataError, "root"),
]


def _environment_call(kind, tmp_path, monkeypatch):
    if kind == "data_is_a_file":
        target = tmp_path / "fashion.gz"
        target.write_bytes(b"")
        monkeypatch.setenv("DEEPNETS_DATA", str(target))
        return lambda: find_data_dir()
    # A folder holding the four files that this user may not read: run as an unprivileged
    # check through os.access, which root passes, so fake the answer os.access would give.
    folder = tmp_path / "data"
    folder.mkdir()
    for name in deepnets.data.FILE_SHA256:
        (folder / name).write_bytes(b"")
    monkeypatch.setenv("DEEPNETS_DATA", str(folder))
    real_access = os.access
    monkeypatch.setattr(deepnets.data.os, "access",
                        lambda p, mode: False if str(p).startswith(str(folder)) else real_access(p, mode))
    return lambda: find_data_dir()


@pytest.mark.parametrize("call, error, argument", [row[1:] for row in ROWS], ids=[row[0] for row in ROWS])
def test_mistake_gets_our_message(call, error, argument, tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path / "results"))
    run = _environment_call(call, tmp_path, monkeypatch) if isinstance(call, str) else (lambda: call(tmp_path))
    with pytest.raises(error) as caught:
        run()
    message = str(caught.value)
    assert type(caught.value).__module__.startswith("deepnets"), f"a bare {type(caught.value).__name__}"
    assert argument in message, f"the message does not name {argument!r}: {message}"
    assert FIX.search(message), f"the message does not say what to do: {message}"
    assert message.rstrip().endswith((".", ")", "`", ":")) or "\n" in message, message


def test_the_table_covers_at_least_forty_mistakes():
    assert len(ROWS) >= 40 and len({row[0] for row in ROWS}) == len(ROWS)


def test_old_exception_handlers_still_catch_ours():
    # `except ValueError` / `except TypeError` written before these types keep working.
    assert issubclass(checks.InputTooSmallError, ValueError) and issubclass(checks.ArgumentTypeError, TypeError)
    # Code written against deepnets.train.CheckpointError catches what train raises.
    assert train.CheckpointError is checks.CheckpointError and issubclass(checks.CheckpointError, ValueError)
    with pytest.raises(KeyError):
        probes.activation_stats(models.deep_mlp(3), GREY, ["blocks.9"])


# -- results files stay whole --------------------------------------------------------------

def test_non_finite_figures_are_written_as_null_and_named(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    r = results.Results("99_demo", "full")
    r.record(acc=0.9, loss=float("nan"), curve=[1.0, float("inf")])
    r.finish()
    text = (tmp_path / "99_demo.json").read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in a results file"))
    assert data["figures"] == {"acc": 0.9, "curve": [1.0, None], "loss": None}
    assert data["non_finite"] == {"curve[1]": "inf", "loss": "nan"}
    assert results.load_results(tmp_path / "99_demo.json")["complete"] is True


# A full-profile notebook run in miniature: a kernel that records figures cell by cell, then
# is killed half-way, before its last cell's results.finish().
KILLED_RUN = """
import sys, time
from deepnets import Results
r = Results("04_resnet", "full")
r.record(test_acc=0.5)
print("recorded", flush=True)
time.sleep(60)
r.record(test_acc=0.99)
r.finish()
"""


def test_a_full_run_killed_half_way_leaves_the_committed_file_byte_equal(tmp_path):
    committed = tmp_path / "04_resnet.json"
    committed.write_bytes((REPO / "notebooks" / "results" / "04_resnet.json").read_bytes())
    before = committed.read_bytes()
    env = {**os.environ, "DEEPNETS_RESULTS_DIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "recorded"
        partial = tmp_path / "04_resnet.json.partial"
        deadline = time.monotonic() + 30
        while not partial.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert partial.exists(), "the run's figures went nowhere"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert committed.read_bytes() == before
    assert json.loads(partial.read_text())["complete"] is False
    with pytest.raises(checks.ResultsFileError, match="did not finish"):
        results.load_results(partial)
