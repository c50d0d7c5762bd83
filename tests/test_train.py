"""The training loop: it learns, measures honestly, stops cleanly, resumes exactly."""

import math

import pytest
import torch
import torch.nn as nn

import deepnets.train as train
from deepnets import Batches, evaluate, fit, get_profile, predict, seed_everything


def small_cnn(num_classes: int = 10) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(8 * 14 * 14, num_classes))


def batches(small, **kw):
    return (Batches(small[0], small[1], batch_size=50, shuffle=True, device="cpu", **kw),
            Batches(small[2], small[3], batch_size=100, device="cpu"))


def test_fit_learns_and_records_every_epoch(small):
    seed_everything(0)
    tr, te = batches(small)
    h = fit(small_cnn(), tr, te, epochs=3, verbose=False, device="cpu")
    assert h.epochs == 3 and not h.interrupted
    for values in (h.train_loss, h.val_loss, h.val_acc, h.images_per_sec, h.epoch_seconds, h.lr):
        assert len(values) == 3 and all(math.isfinite(v) for v in values)
    assert h.train_loss[-1] < h.train_loss[0]
    assert h.val_acc[-1] > 0.5  # chance is 0.1


def test_evaluate_matches_a_second_computation(small):
    seed_everything(1)
    model = small_cnn().eval()
    _, te = batches(small)
    loss, acc = evaluate(model, te, device="cpu")
    x = torch.cat([xb for xb, _ in te]); y = torch.cat([yb for _, yb in te])
    with torch.no_grad():
        logits = model(x)
    assert loss == pytest.approx(nn.functional.cross_entropy(logits, y).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == y).float().mean().item())
    preds, labels = predict(model, te, device="cpu")
    assert torch.equal(labels, y) and torch.equal(preds, logits.argmax(1))


def test_scheduler_steps_every_batch(small):
    tr, te = batches(small)
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.1, total_steps=2 * len(tr))
    fit(model, tr, None, epochs=2, optimizer=opt, scheduler=sched, verbose=False, device="cpu")
    assert sched.last_epoch == 2 * len(tr)


def run(small, epochs, checkpoint=None, resume=False, stop_at=None):
    """A run with every source of randomness in play: shuffle, augmentation, dropout, schedule."""
    seed_everything(0)
    tr, te = batches(small, augment=True)
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=3 * len(tr))
    h = fit(model, tr, te, epochs=epochs, optimizer=opt, scheduler=sched, device="cpu",
            checkpoint=checkpoint, resume=resume, verbose=False)
    return model, h


def test_resumed_run_equals_an_unbroken_run(small, tmp_path):
    ckpt = tmp_path / "run.pt"
    straight, h_straight = run(small, 3)
    run(small, 2, checkpoint=ckpt)                       # stopped after epoch 2 ...
    resumed, h_resumed = run(small, 3, checkpoint=ckpt, resume=True)  # ... a fresh process resumes
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    for key in ("train_loss", "train_acc", "val_loss", "val_acc", "lr"):
        assert getattr(h_straight, key) == getattr(h_resumed, key), key


class StopAt:
    """Batches that raise KeyboardInterrupt (the notebook's stop button) mid-epoch."""

    def __init__(self, inner, epoch, batch):
        self.inner, self.epoch, self.batch, self.seen = inner, epoch, batch, 0

    def __len__(self):
        return len(self.inner)

    def state_dict(self):
        return self.inner.state_dict()

    def __iter__(self):
        self.seen += 1
        for i, item in enumerate(self.inner):
            if self.seen == self.epoch and i == self.batch:
                raise KeyboardInterrupt
            yield item


def test_interrupt_returns_history_and_keeps_checkpoint(small, tmp_path, capsys):
    tr, te = batches(small)
    ckpt = tmp_path / "c.pt"
    h = fit(small_cnn(), StopAt(tr, epoch=2, batch=3), te, epochs=5, device="cpu",
            checkpoint=ckpt, verbose=False)
    assert h.interrupted and h.epochs == 1
    assert "stopped by you during epoch 2" in capsys.readouterr().out
    assert train.load_checkpoint(ckpt)["epoch"] == 1


def test_checkpoint_writes_are_atomic(small, tmp_path, monkeypatch):
    tr, te = batches(small)
    ckpt = tmp_path / "c.pt"
    fit(small_cnn(), tr, te, epochs=1, device="cpu", checkpoint=ckpt, verbose=False)
    real_save = torch.save

    def crash_mid_write(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash_mid_write)
    with pytest.raises(OSError):
        fit(small_cnn(), tr, te, epochs=2, device="cpu", checkpoint=ckpt, resume=True, verbose=False)
    monkeypatch.setattr(torch, "save", real_save)
    assert train.load_checkpoint(ckpt)["epoch"] == 1  # the old file is whole


def test_wrong_architecture_names_keys_and_shapes(small, tmp_path):
    tr, te = batches(small)
    ckpt = tmp_path / "c.pt"
    fit(small_cnn(), tr, te, epochs=1, device="cpu", checkpoint=ckpt, verbose=False)
    other = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(16 * 14 * 14, 10))
    with pytest.raises(ValueError, match=r"different architecture.*0\.weight: checkpoint \(8, 1, 3, 3\) vs model \(16, 1, 3, 3\)"):
        fit(other, tr, te, epochs=2, device="cpu", checkpoint=ckpt, resume=True, verbose=False)
    with pytest.raises(ValueError, match="missing from the checkpoint: extra.weight"):
        net = small_cnn(); net.add_module("extra", nn.Linear(2, 2))
        train.load_weights(net, train.load_checkpoint(ckpt)["model"])


def test_nan_loss_stops_at_once_with_advice(small):
    tr, te = batches(small)
    nan_loss = lambda logits, y: logits.sum() * float("nan")  # noqa: E731
    with pytest.raises(FloatingPointError, match=r"loss became nan at epoch 1, batch 1.*Lower the learning rate"):
        fit(small_cnn(), tr, te, epochs=1, loss_fn=nan_loss, device="cpu", verbose=False)


def test_divergence_from_a_huge_learning_rate_is_caught(small):
    seed_everything(0)
    tr, te = batches(small)
    model = small_cnn()
    opt = torch.optim.SGD(model.parameters(), lr=1e6)
    with pytest.raises(FloatingPointError, match="Lower the learning rate"):
        fit(model, tr, te, epochs=3, optimizer=opt, device="cpu", verbose=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"epochs": 0}, "epochs must be a positive int"),
    ({"epochs": -2}, "epochs must be a positive int"),
    ({"epochs": 2.5}, "epochs must be a positive int"),
    ({"grad_clip": 0.0}, "grad_clip must be a positive float"),
    ({"resume": True}, "resume=True needs checkpoint"),
])
def test_bad_arguments(small, kwargs, message):
    tr, te = batches(small)
    with pytest.raises(ValueError, match=message):
        fit(small_cnn(), tr, te, **{"epochs": 1, **kwargs}, device="cpu", verbose=False)


def test_non_positive_learning_rate(small):
    tr, te = batches(small)
    model = small_cnn()
    with pytest.raises(ValueError, match="learning rate must be positive"):
        fit(model, tr, te, optimizer=torch.optim.SGD(model.parameters(), lr=0.0), device="cpu")


def test_class_count_that_does_not_match_the_labels(small):
    tr, te = batches(small)
    with pytest.raises(ValueError, match="labels go up to 9: build it with num_classes=10"):
        fit(small_cnn(num_classes=5), tr, te, device="cpu", verbose=False)


def test_unknown_profile():
    with pytest.raises(ValueError, match="Unknown profile 'fast'. Use one of: smoke, full"):
        get_profile("fast")
    assert get_profile("smoke").choose(full=10, smoke=1) == 1
