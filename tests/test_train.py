"""The training loop: it learns, measures honestly, stops cleanly, resumes exactly."""

import json
import math

import pytest
import torch
import torch.nn as nn

import deepnets.train as train
from deepnets import Batches, DataError, Results, evaluate, fit, get_profile, models, predict, seed_everything


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


@pytest.mark.parametrize("kwargs, error, message", [
    ({"epochs": 0}, ValueError, "epochs must be a positive int"),
    ({"epochs": -2}, ValueError, "epochs must be a positive int"),
    ({"epochs": 2.5}, TypeError, "epochs must be a positive int"),
    ({"grad_clip": 0.0}, ValueError, "grad_clip must be a positive, finite number"),
    ({"resume": True}, ValueError, "resume=True needs checkpoint"),
])
def test_bad_arguments(small, kwargs, error, message):
    tr, te = batches(small)
    with pytest.raises(error, match=message):
        fit(small_cnn(), tr, te, **{"epochs": 1, **kwargs}, device="cpu", verbose=False)


def test_non_positive_learning_rate(small):
    tr, te = batches(small)
    model = small_cnn()
    with pytest.raises(ValueError, match="learning rate must be positive"):
        fit(model, tr, te, optimizer=torch.optim.SGD(model.parameters(), lr=0.0), device="cpu")


def test_class_count_that_does_not_match_the_labels(small):
    tr, te = batches(small)
    with pytest.raises(ValueError, match=r"labels go up to 9 \(epoch 1, batch 1\): build it with num_classes=10"):
        fit(small_cnn(num_classes=5), tr, te, device="cpu", verbose=False)


def test_profiles_any_case_and_gpu():
    with pytest.raises(ValueError, match="Unknown profile 'fast'. Use one of: smoke, full, gpu"):
        get_profile("fast")
    assert get_profile("smoke").choose(full=10, smoke=1) == 1
    assert get_profile("Full") is get_profile("full") and get_profile(" SMOKE ") is get_profile("smoke")
    gpu = get_profile("GPU")
    # the gpu profile is the full lesson plus the real-size sections: full's sizes and choices
    full = get_profile("full")
    assert (gpu.train_per_class, gpu.val_per_class, gpu.test_per_class) == (
        full.train_per_class, full.val_per_class, full.test_per_class)
    assert gpu.choose(full=12, smoke=1) == 12 and gpu.choose(full=12, smoke=1, gpu=20) == 20


# ------------------------------------------------------------------ resume in real life

def sgd_run(small, epochs, checkpoint, resume=False, optimizer="sgd", schedule_epochs=None):
    """A one-cycle run over `schedule_epochs` (default: `epochs`) epochs, checkpointed."""
    seed_everything(0)
    tr, te = batches(small)
    model = small_cnn()
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=(schedule_epochs or epochs) * len(tr))
    return fit(model, tr, te, epochs=epochs, optimizer=opt, scheduler=sched, device="cpu",
               checkpoint=checkpoint, resume=resume, verbose=False), model


def test_resume_with_another_optimizer_says_so(small, tmp_path):
    ckpt = tmp_path / "run.pt"
    sgd_run(small, 1, ckpt)
    with pytest.raises(train.CheckpointError, match="saved with optimizer SGD, but this run passes AdamW. "
                                                    "Resume with the same optimizer"):
        sgd_run(small, 2, ckpt, resume=True, optimizer="adamw")
    seed_everything(0)
    tr, te = batches(small)
    model = small_cnn()
    with pytest.raises(train.CheckpointError, match="saved with schedule OneCycleLR, but this run passes None"):
        fit(model, tr, te, epochs=2, optimizer=torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
            device="cpu", checkpoint=ckpt, resume=True, verbose=False)


def test_resuming_a_finished_run_for_more_epochs(small, tmp_path):
    ckpt = tmp_path / "run.pt"
    h, model = sgd_run(small, 2, ckpt)
    # The same epochs again: nothing left to do, the history comes back as it was.
    again, _ = sgd_run(small, 2, ckpt, resume=True)
    assert again.train_loss == h.train_loss
    # More epochs than the one-cycle schedule was built for: refused before any step, with the way on.
    with pytest.raises(train.CheckpointError, match=r"built for \d+ steps \(2 epochs\); it has 0 steps left.*"
                                                    r"--init-from .*or resume with epochs=2"):
        sgd_run(small, 4, ckpt, resume=True, schedule_epochs=4)
    # Fewer epochs than it holds.
    with pytest.raises(train.CheckpointError, match="already holds 2 epochs, more than epochs=1"):
        sgd_run(small, 1, ckpt, resume=True)
    # The advice works: the weights, a new schedule, a new checkpoint path.
    fresh = small_cnn()
    train.load_weights(fresh, train.load_checkpoint(ckpt)["model"])
    tr, te = batches(small)
    loss_before = train.evaluate(fresh, tr, device="cpu")[0]
    opt = torch.optim.SGD(fresh.parameters(), lr=0.01, momentum=0.9)
    more = fit(fresh, tr, te, epochs=2, optimizer=opt, device="cpu", checkpoint=tmp_path / "more.pt",
               scheduler=torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.01, total_steps=2 * len(tr)),
               verbose=False)
    assert more.train_loss[-1] < loss_before


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_checkpoint_gets_our_message(small, tmp_path, damage):
    ckpt = tmp_path / "run.pt"
    sgd_run(small, 1, ckpt)
    whole = ckpt.read_bytes()
    ckpt.write_bytes({"truncated": whole[:len(whole) // 2], "garbage": b"not a checkpoint" * 100,
                      "empty": b""}[damage])
    with pytest.raises(train.CheckpointError, match=r"cannot be read: it is truncated or corrupt.*Delete it"):
        sgd_run(small, 2, ckpt, resume=True)


def test_a_file_that_is_not_a_checkpoint_of_fit(small, tmp_path):
    ckpt = tmp_path / "weights.pt"
    torch.save(small_cnn().state_dict(), ckpt)
    with pytest.raises(train.CheckpointError, match="not a checkpoint written by fit"):
        sgd_run(small, 1, ckpt, resume=True)


def test_checkpoint_path_that_is_a_folder_or_not_writable(small, tmp_path):
    with pytest.raises(train.CheckpointError, match=r"is a folder. Give a file in it, e.g. checkpoint=.*run.pt"):
        sgd_run(small, 1, tmp_path)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("a file, not a folder")
    with pytest.raises(train.CheckpointError, match="Cannot write the checkpoint .*Choose a path in a folder you can write to"):
        sgd_run(small, 1, a_file / "run.pt")
    with pytest.raises(train.CheckpointError, match="There is no checkpoint at"):
        train.load_checkpoint(tmp_path / "missing.pt")


# ------------------------------------------------------------------ bad data

def test_empty_batches_in_fit_and_evaluate(small):
    with pytest.raises(ValueError, match="train_batches yielded no images .*not empty"):
        fit(small_cnn(), [], None, device="cpu", verbose=False)
    with pytest.raises(ValueError, match="batches to evaluate yielded no images"):
        evaluate(small_cnn(), [], device="cpu")
    with pytest.raises(ValueError, match="batches to predict yielded no images"):
        predict(small_cnn(), [], device="cpu")


@pytest.mark.parametrize("bad, message", [
    (10, r"labels go up to 10 \(epoch 1, batch 2\): build it with num_classes=11 or more, or map the labels to 0..9"),
    (-1, r"labels must be class indices from 0, got values from -1"),
])
def test_labels_out_of_range_in_a_later_batch(small, bad, message):
    tr, _ = batches(small)
    listed = list(tr)[:3]
    x, y = listed[1]
    listed[1] = (x, torch.cat([y[:-1], torch.tensor([bad])]))
    with pytest.raises(ValueError, match=message):
        fit(small_cnn(), listed, None, device="cpu", verbose=False)
    with pytest.raises(ValueError, match=message.replace("epoch 1, batch 2", "evaluation batch 2")):
        evaluate(small_cnn(), listed, device="cpu")


def test_float_labels(small):
    x, y = next(iter(batches(small)[0]))
    with pytest.raises(ValueError, match=r"labels must hold integer class indices.*y.long\(\)"):
        fit(small_cnn(), [(x, y.float())], None, device="cpu", verbose=False)


def test_amp_on_the_cpu_computes_in_bf16(small):
    tr, te = batches(small)
    model = small_cnn()
    dtypes = set()
    model[0].register_forward_hook(lambda m, i, out: dtypes.add(out.dtype))
    h = fit(model, tr, te, epochs=1, amp=True, device="cpu", verbose=False)
    assert dtypes == {torch.bfloat16}
    assert all(math.isfinite(v) for v in h.train_loss + h.val_loss)
    assert next(model.parameters()).dtype == torch.float32  # autocast: the weights stay float32


# ------------------------------------------------------------------ the command line

def test_help_documents_every_flag():
    parser = train.build_parser()
    text = parser.format_help()
    flags = {s for a in parser._actions for s in a.option_strings}
    # the flags a user of a training script expects (the course's list, written out here)
    for flag in ("--model", "--data", "--epochs", "--batch-size", "--lr", "--schedule", "--weight-decay",
                 "--momentum", "--image-size", "--amp", "--channels-last", "--compile", "--checkpoint",
                 "--resume", "--seed", "--results", "--sync-bn", "--workers", "--limit", "--pad",
                 "--label-smoothing", "--no-test"):
        assert flag in flags and flag in text, flag
    assert all(a.help for a in parser._actions), [a.dest for a in parser._actions if not a.help]
    assert "learning-rate scaling" in text and "linear scaling rule" in text
    assert "--rdzv-endpoint" in text and "--nnodes" in text
    for name in ("alexnet", "alexnet_paper", "vgg16_bn", "resnet50", "cifar_resnet56", "alexnet_small",
                 "fashion_resnet"):
        assert name in text


def cli(tmp_path, *flags):
    out = tmp_path / "r.json"
    summary = train.main([*flags, "--epochs", "1", "--limit", "2", "--batch-size", "10",
                          "--results", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(summary, allow_nan=False))
    return summary


@pytest.mark.parametrize("model, size, make", [
    ("lenet5", 28, lambda: models.lenet5(10, 1)),
    ("convnet4", 28, lambda: models.convnet4(num_classes=10)),
    ("alexnet_small", 28, lambda: models.alexnet_small(10)),
    ("fashion_vgg", 28, lambda: models.fashion_vgg()),
    ("fashion_resnet", 28, lambda: models.fashion_resnet()),
    ("cifar_resnet20", 32, lambda: models.cifar_resnet(20)),
    ("vgg11_bn", 32, lambda: models.vgg11_bn(10, input_size=32)),
    ("resnet18", 32, lambda: models.resnet18(10)),
])
def test_a_short_run_of_each_model_family(tmp_path, model, size, make):
    """AlexNet's real size runs in test_paper_size_run_on_the_cpu."""
    s = cli(tmp_path, "--model", model, "--image-size", str(size))
    assert s["figures"]["params"] == sum(p.numel() for p in make().parameters())
    assert s["figures"]["image_size"] == size and s["figures"]["epochs"] == 1
    assert 0 <= s["figures"]["test_acc"] <= 1 and math.isfinite(s["figures"]["train_loss"])
    assert s["device"].startswith("cpu") and s["processes"] == 1


def test_an_image_folder(tmp_path, small):
    from PIL import Image
    for part, images in (("train", small[0][:60]), ("val", small[2][:30])):
        for i, (image, label) in enumerate(zip(images, (small[1] if part == "train" else small[3]))):
            folder = tmp_path / "pics" / part / f"class{int(label) % 3}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image.numpy()).convert("RGB").save(folder / f"{i}.png")
    s = cli(tmp_path, "--model", "resnet18", "--data", str(tmp_path / "pics"), "--image-size", "32",
            "--workers", "0", "--schedule", "cosine")
    assert s["figures"]["params"] == sum(p.numel() for p in models.resnet18(3).parameters())  # 3 class folders
    assert "test_acc" not in s["figures"] and 0 <= s["figures"]["val_acc"] <= 1
    with pytest.raises(DataError, match="has no val/ folder"):
        (tmp_path / "pics" / "val").rename(tmp_path / "pics" / "validation")
        cli(tmp_path, "--model", "resnet18", "--data", str(tmp_path / "pics"))


def test_command_line_mistakes(tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["--model", "lenet5", "--resume"])
    assert "--resume needs --checkpoint PATH" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--model", "resnet5"])
    assert "invalid choice: 'resnet5'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            train.main(["--model", "lenet5", "--sync-bn"])
        assert "--sync-bn works on CUDA GPUs only" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--model", "lenet5", "--batch-size", "0"])
    assert "--batch-size must be at least 1, got 0." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--model", "lenet5", "--label-smoothing", "1"])
    assert "--label-smoothing must be at least 0 and below 1, got 1.0." in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--model", "lenet5", "--pad", "-1"])
    assert "--pad must be 0 (flips only) or more pixels, got -1." in capsys.readouterr().err


def test_paper_size_run_on_the_cpu(tmp_path, monkeypatch, capsys):
    """The gpu profile's code path (notebooks 01, 02, 04), tiny: 10 images per class at 67x67."""
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    results = Results("01_alexnet", "gpu")
    summary = train.paper_size_run("alexnet_paper", "gpu", results, require_gpu=False,
                                   extra=["--image-size", "67", "--limit", "1", "--epochs", "1", "--batch-size", "10"])
    saved = json.loads((tmp_path / "01_alexnet.json").read_text())
    assert saved["figures"]["real_size_model"] == "alexnet_paper"
    assert saved["figures"]["real_size_image_size"] == 67 and saved["figures"]["real_size_amp"] == "bfloat16"
    assert saved["figures"]["real_size_test_acc"] == pytest.approx(summary["figures"]["test_acc"], abs=1e-5)
    # 10 training images (--limit 1 per class), one epoch: the speed times the epoch's seconds (which
    # include the validation pass) is at least those 10 images.
    t = saved["timings"]
    assert t["real_size_images_per_sec"] * t["real_size_train_seconds"] >= 10 * (1 - 1e-4)
    assert summary["figures"]["params"] == sum(p.numel() for p in models.alexnet_paper(10, input_size=67).parameters())
    # Without a GPU (or outside the gpu profile) it trains nothing and shows the command, which parses.
    for profile in ("gpu", "full"):
        if profile == "gpu" and torch.cuda.is_available():
            continue
        assert train.paper_size_run("vgg16", profile) is None
        said = capsys.readouterr().out
        command = said.split("  python -m deepnets.train ")[1].split("    (")[0]
        args = train.build_parser().parse_args(command.split())
        assert (args.model, args.image_size, args.amp) == ("vgg16", 224, True)


def test_the_readme_commands_parse():
    """Every training command of the README's "Beyond the laptop" section is one this parser takes."""
    from pathlib import Path
    import re
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Beyond the laptop", 1)[1].split("\n## ", 1)[0]
    commands = [" ".join(block.replace("\\\n", " ").split())
                for block in re.findall(r"```bash\n(.*?)```", section, re.S)]
    assert len(commands) == 4  # one GPU, several GPUs, several machines, an image folder
    for command in commands:
        args = train.build_parser().parse_args(command.split("-m deepnets.train", 1)[1].split())
        assert args.model in train.MODEL_NAMES
    assert "--nproc_per_node=4" in commands[1] and "--rdzv-endpoint" in commands[2] and "--data" in commands[3]
