"""`python -m deepnets.epochs`: 02's and 04's recipes at their earlier epoch counts, validation only."""

import json

import pytest
import torch
import torch.nn as nn

import deepnets
from deepnets import epochs, train
from deepnets.checks import ResultsFileError
from deepnets.models import fashion_resnet, fashion_vgg

LIMIT, SEED, EPOCHS = 3, 1, 2


def notebook_run(notebook: str, lr: float) -> deepnets.History:
    """The final recipe as notebook 02's `train` and notebook 04's cell write it, on the CLI's --limit subset."""
    ds = deepnets.load_fashion_mnist()
    train_x, train_y, val_x, val_y, _, _ = ds.split(deepnets.get_profile("full"))
    train_x, train_y = deepnets.stratified_subset(train_x, train_y, LIMIT, seed=SEED)
    val_x, val_y = deepnets.stratified_subset(val_x, val_y, LIMIT, seed=SEED)
    if notebook == "04_resnet":
        batches = deepnets.Batches(train_x, train_y, batch_size=256, shuffle=True, seed=SEED, augment=True, pad=0,
                                   device="cpu")
        deepnets.seed_everything(SEED)
        net, loss_fn = fashion_resnet(), nn.CrossEntropyLoss(label_smoothing=0.1)
    else:
        deepnets.seed_everything(SEED)
        net, loss_fn = fashion_vgg(True), nn.CrossEntropyLoss()
        batches = deepnets.Batches(train_x, train_y, batch_size=128, shuffle=True, seed=SEED, size=28, device="cpu")
    optimizer = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=EPOCHS * len(batches))
    return deepnets.fit(net, batches, deepnets.Batches(val_x, val_y, batch_size=1000, device="cpu"), epochs=EPOCHS,
                        optimizer=optimizer, scheduler=scheduler, loss_fn=loss_fn, device="cpu", verbose=False)


@pytest.mark.parametrize("notebook, lr", [("02_vgg16", 0.03), ("04_resnet", 0.2)])
def test_the_recipes_train_what_the_notebooks_train(tmp_path, notebook, lr):
    flags = epochs.recipe(notebook, {"lr_bn": lr})
    summary = train.main([*flags, "--limit", str(LIMIT), "--seed", str(SEED), "--epochs", str(EPOCHS),
                          "--no-test", "--results", str(tmp_path / "r.json")])
    assert "test_acc" not in summary["figures"] and "test_loss" not in summary["figures"]
    history = notebook_run(notebook, lr)
    assert summary["history"]["train_loss"] == pytest.approx(history.train_loss, rel=1e-5)
    assert summary["figures"]["val_loss"] == pytest.approx(history.val_loss[-1], rel=1e-5)
    assert summary["figures"]["val_acc"] == history.val_acc[-1]


def results_file(folder, notebook, figures):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{notebook}.json").write_text(json.dumps(
        {"notebook": notebook, "profile": "full", "complete": True, "figures": figures, "timings": {}}))


def test_each_seed_runs_at_its_own_learning_rate_and_never_scores_the_test_set(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    results_file(tmp_path, "02_vgg16", {"lr_bn": 0.03})
    results_file(tmp_path / "seeds" / "seed1", "02_vgg16", {"lr_bn": 0.1})
    for seed, lr in ((0, "0.03"), (1, "0.1")):
        argv = epochs.command("02_vgg16", seed)
        assert argv[argv.index("--lr") + 1] == lr and argv[argv.index("--seed") + 1] == str(seed)
        assert argv[argv.index("--epochs") + 1] == "7" and "--no-test" in argv
    with pytest.raises(ResultsFileError, match="make seeds|deepnets.seeds"):
        epochs.command("02_vgg16", 2)   # seed 2's notebook run has not been made


def write_run(notebook, seed, argv, figures, interrupted=False):
    path = epochs.results_path(notebook, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"command": "python -m deepnets.train " + " ".join(argv), "figures": figures,
                                "history": {"interrupted": interrupted}}))


def test_only_finished_validation_runs_of_todays_recipe_are_read(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPNETS_RESULTS_DIR", str(tmp_path))
    def today(seed):
        return [*epochs.recipe("04_resnet", {}), "--epochs", "15", "--seed", str(seed), "--no-test", "--results", "x.json"]

    # defaults written out or left implicit are the same recipe
    implicit = [a for a in today(0) if a not in ("--optimizer", "sgd", "--schedule", "onecycle")]
    finished = {"val_acc": 0.9, "epochs": 15}
    write_run("04_resnet", 0, implicit, finished)
    write_run("04_resnet", 1, [a if a != "0.1" else "0.0" for a in today(1)], finished)   # no label smoothing
    write_run("04_resnet", 2, today(2), {**finished, "test_acc": 0.9})
    runs, left_out = epochs.earlier_runs("04_resnet")
    assert list(runs) == [0] and runs[0]["figures"]["val_acc"] == 0.9
    assert "another recipe (it differs in label_smoothing)" in left_out[1]
    assert "--seeds 1 --again" in left_out[1]
    assert "scored the test set" in left_out[2]
    write_run("04_resnet", 0, today(0), {**finished, "epochs": 9}, interrupted=True)   # Ctrl-C after 9 epochs
    assert "stopped before its 15 epochs" in epochs.earlier_runs("04_resnet")[1][0]
    write_run("02_vgg16", 0, [*epochs.recipe("02_vgg16", {"lr_bn": 0.1}), "--epochs", "7", "--seed", "0", "--no-test"],
              {"val_acc": 0.9, "epochs": 7})
    assert epochs.problem("02_vgg16", 0, json.loads(epochs.results_path("02_vgg16", 0).read_text()), lr=0.1) is None
    assert "differs in lr" in epochs.problem("02_vgg16", 0, json.loads(epochs.results_path("02_vgg16", 0).read_text()),
                                             lr=0.03)


@pytest.mark.parametrize("longer, words", [
    ({0: 0.94, 1: 0.95, 2: 0.945}, "every 25-epoch run scored above every 15-epoch run (with 3 seeds a side, two "
                                   "equally good counts separate completely, one way or the other, 10% of the "
                                   "time): validation supports the raise to 25 epochs"),
    ({0: 0.932, 1: 0.925, 2: 0.935}, "higher on average, so the raise to 25 epochs stands on validation, but "
                                     "within the seed noise: validation does not show that it helps"),
    ({0: 0.9305, 1: 0.9285, 2: 0.9315}, "on 3 of 3 seeds (all 3 one way or the other happens by chance 25% of the "
                                        "time), higher on average, so the raise to 25 epochs stands"),
    ({0: 0.93, 1: 0.925, 2: 0.929}, "lower on average (-0.17 points), within the seed noise: validation does "
                                    "not support the raise"),
    ({0: 0.90, 1: 0.91, 2: 0.92}, "every 15-epoch run scored above every 25-epoch run"),
])
def test_the_verdict_follows_the_figures(longer, words):
    shorter = {0: 0.93, 1: 0.928, 2: 0.931}
    comparison, sentence = epochs.verdict(shorter, longer, 15, 25)
    assert words in sentence
    assert comparison.a.n == comparison.b.n == 3
    ahead = sum(longer[s] > shorter[s] for s in shorter)
    assert f"25 epochs scored higher than 15 on {ahead} of 3 seeds" in sentence
    behind = sum(longer[s] < shorter[s] for s in shorter)
    assert ("happens by chance 25%" in sentence) == (3 in (ahead, behind))
    assert ("validation says the raise to 25 epochs hurt" in sentence) == (max(longer.values()) < min(shorter.values()))


def test_the_verdict_with_one_seed_or_none():
    _, sentence = epochs.verdict({0: 0.90, 5: 0.9}, {0: 0.91, 7: 0.99}, 7, 12)  # only seed 0 has both
    assert sentence == ("12 epochs scored higher than 7 on 1 of 1 seed, so the raise stands on validation, "
                        "untested: one seed cannot show whether the difference beats the seed noise")
    with pytest.raises(ValueError, match="make epochs"):
        epochs.verdict({1: 0.9}, {2: 0.9}, 7, 12)


@pytest.mark.parametrize("notebook", ["02_vgg16", "04_resnet"])
def test_the_committed_checks_equal_a_second_reading_of_their_runs(notebook, monkeypatch):
    """The figures 02 and 04 recorded from their check, recomputed from the results files they read."""
    from deepnets.files import REPO
    monkeypatch.delenv("DEEPNETS_RESULTS_DIR", raising=False)
    results = REPO / "notebooks" / "results"
    figures = json.loads((results / f"{notebook}.json").read_text())["figures"]
    longer = {0: figures["val_acc_single_view"]}
    for seed in (1, 2):
        longer[seed] = json.loads((results / "seeds" / f"seed{seed}" / f"{notebook}.json").read_text())["figures"][
            "val_acc_single_view"]
    runs, left_out = epochs.earlier_runs(notebook)
    assert not left_out and sorted(runs) == [0, 1, 2]
    shorter = {s: r["figures"]["val_acc"] for s, r in runs.items()}
    assert figures["earlier_epochs"] == epochs.EARLIER_EPOCHS[notebook] and figures["epochs_check_seeds"] == 3
    assert figures["val_acc_earlier_epochs_mean"] == pytest.approx(sum(shorter.values()) / 3)
    assert figures["val_acc_final_epochs_mean"] == pytest.approx(sum(longer.values()) / 3)
    separated = max(shorter.values()) < min(longer.values()) or max(longer.values()) < min(shorter.values())
    assert figures["epochs_check_beyond_noise"] == separated
