"""The retraining recipe: linear warm-up on top of the lr schedule (cosine or step), and the quickstart's measured recipe."""

from __future__ import annotations

import json
import math

import pytest
import torch

from ltnas.cli import resolve_config_path
from ltnas.config import LongTailConfig, TrainConfig, load_config
from ltnas.data import DeviceBatches, ImageSet
from ltnas.longtail import build_criterion
from ltnas.space.baselines import build_baseline
from ltnas.train.retrain import RetrainTask, warmup_factor


def test_warmup_factor():
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0


def _task(warmup: int, epochs: int = 3) -> RetrainTask:
    torch.manual_seed(0)
    images = ImageSet(torch.randint(0, 255, (24, 1, 8, 8), dtype=torch.uint8), torch.arange(24) % 3)
    config = TrainConfig(epochs=epochs, batch_size=8, sgd={"lr": 0.1}, warmup_epochs=warmup, augment={"crop_padding": 0,
                                                                                           "flip": False})
    batches = DeviceBatches(images, 8, device="cpu", mean=[0.5], std=[0.2], generator=torch.Generator().manual_seed(0))
    tests = DeviceBatches(images, 8, device="cpu", mean=[0.5], std=[0.2], generator=torch.Generator(), shuffle=False)
    counts = images.counts(3)
    criterion = build_criterion(LongTailConfig(), counts, epochs)
    return RetrainTask(build_baseline("cnn", 3, 1), config, criterion, batches, tests, counts, 3)


def test_warmup_ramps_each_step_then_the_cosine_schedule_goes_on_unchanged():
    task, plain = _task(warmup=2), _task(warmup=0)
    used: list[float] = []
    task.optimizer.register_step_pre_hook(lambda opt, *_: used.append(opt.param_groups[0]["lr"]))
    rows = [task.run_epoch(epoch, lambda **_: None) for epoch in range(3)]
    plain_rows = [plain.run_epoch(epoch, lambda **_: None) for epoch in range(3)]
    cosine = [0.1 * (1 + math.cos(math.pi * e / 3)) / 2 for e in range(3)]
    assert [row["lr"] for row in rows] == pytest.approx(cosine) == [row["lr"] for row in plain_rows]
    # 3 steps per epoch: steps 1..6 of 6 warm-up steps scale the epoch's cosine lr, epoch 3 uses it as is
    expected = [cosine[s // 3] * (s + 1) / 6 for s in range(6)] + [cosine[2]] * 3
    assert used == pytest.approx(expected)


def test_quickstart_uses_the_measured_recipe():
    """benchmarks/RESULTS.md, "Retraining recipe on the quickstart data": logit-adjusted CE, warm-up, no
    cutout / drop-path / auxiliary head on 8×8 digits, batch 16."""
    train = load_config(resolve_config_path("quickstart")).train
    assert train.longtail.loss == "logit_adjusted" and train.longtail.reweight == "none"
    assert train.warmup_epochs > 0 and train.batch_size == 16
    assert not train.auxiliary and train.drop_path == 0 and train.augment.cutout == 0
    assert train.precise_bn and train.sgd.weight_decay == 1e-3
    assert (train.cell.init_channels, train.cell.layers) == (36, 6)  # "Cell width": 93.0 % against 90.9 % at C=12


def test_quickstart_searches_without_5x5_filters_on_8x8_digits():
    """benchmarks/RESULTS.md, "Fifth run": the same accuracy over 5 seeds for two thirds of the CPU time."""
    search = load_config(resolve_config_path("quickstart")).search
    assert search.cell.primitives == ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                                      "dil_conv_3x3"]
    assert load_config(resolve_config_path("darts_cifar10_lt")).search.cell.primitives[-2:] == ["dil_conv_3x3",
                                                                                                 "dil_conv_5x5"]


def test_paper_configs_keep_the_papers_recipe():
    for name in ("darts_cifar10_lt", "ssf_cifar10_lt", "fairdarts_cifar10"):
        train = load_config(resolve_config_path(name)).train
        assert train.warmup_epochs == 0 and train.network == "cell" and not train.precise_bn, name


class Killed(Exception):
    """Stands in for a kill between an epoch's log row and its checkpoint."""


def test_baseline_killed_during_warmup_resumes_to_the_uninterrupted_result(tiny_run, tmp_path, monkeypatch):
    from ltnas import pipeline
    from ltnas.config import validate_config
    from ltnas.runs import RunFolder
    from ltnas.train.loop import JsonlLog

    tiny_run["train"].update(network="cnn", epochs=3, warmup_epochs=2)
    config = validate_config(tiny_run)

    def outcome(folder):
        rows = [{k: v for k, v in row.items() if k != "seconds"} for row in JsonlLog(folder / "train" /
                                                                                      "metrics.jsonl").rows()]
        return rows, json.loads((folder / "eval.json").read_text())["balanced_test"]

    pipeline.run_all(config, RunFolder.create(tmp_path / "whole", config))
    original = RetrainTask.after_epoch

    def interrupt(self, epoch, folder):
        original(self, epoch, folder)
        if epoch == 1:  # the second warm-up epoch: resumed from the first one's checkpoint
            raise Killed

    monkeypatch.setattr(RetrainTask, "after_epoch", interrupt)
    with pytest.raises(Killed):
        pipeline.run_all(config, RunFolder.create(tmp_path / "killed", config))
    monkeypatch.setattr(RetrainTask, "after_epoch", original)
    run = RunFolder.open(tmp_path / "killed")
    pipeline.run_all(run.config(), run)
    assert outcome(tmp_path / "killed") == outcome(tmp_path / "whole")


# --- the step schedule (train.sgd.schedule: step; IMB-NAS (Yao, 2024)'s subnet recipe) ----------------------
def _step_task(epochs: int = 4) -> RetrainTask:
    torch.manual_seed(0)
    images = ImageSet(torch.randint(0, 255, (24, 1, 8, 8), dtype=torch.uint8), torch.arange(24) % 3)
    config = TrainConfig(epochs=epochs, batch_size=8, augment={"crop_padding": 0, "flip": False},
                         sgd={"lr": 0.1, "schedule": "step", "lr_milestones": [1, 3], "lr_gamma": 0.01})
    batches = DeviceBatches(images, 8, device="cpu", mean=[0.5], std=[0.2], generator=torch.Generator().manual_seed(0))
    counts = images.counts(3)
    return RetrainTask(build_baseline("cnn", 3, 1), config, build_criterion(LongTailConfig(), counts, epochs),
                       batches, None, counts, 3)


def test_step_schedule_cuts_the_lr_at_each_milestone():
    from ltnas.train.lr_schedule import lr_at

    task = _step_task()
    used: list[float] = []
    task.optimizer.register_step_pre_hook(lambda opt, *_: used.append(opt.param_groups[0]["lr"]))
    rows = [task.run_epoch(epoch, lambda **_: None) for epoch in range(4)]
    # by hand: 0.1 in epoch 0, × 0.01 from epoch 1, × 0.01 again from epoch 3
    assert [row["lr"] for row in rows] == pytest.approx([0.1, 1e-3, 1e-3, 1e-5])
    assert used == pytest.approx([0.1] * 3 + [1e-3] * 6 + [1e-5] * 3)  # 3 steps per epoch
    assert [lr_at(task.config.sgd, 4, e) for e in range(4)] == pytest.approx([0.1, 1e-3, 1e-3, 1e-5])
    # the paper's recipe: 200 epochs, 0.1 × 0.01 at 160 and 180
    paper = TrainConfig(epochs=200, sgd={"lr": 0.1, "schedule": "step", "lr_milestones": [160, 180], "lr_gamma": 0.01})
    assert [lr_at(paper.sgd, 200, e) for e in (0, 159, 160, 179, 180, 199)] == pytest.approx(
        [0.1, 0.1, 1e-3, 1e-3, 1e-5, 1e-5])


def test_step_schedule_resumes_from_a_checkpoint_exactly():
    whole = _step_task()
    rows = [whole.run_epoch(epoch, lambda **_: None) for epoch in range(4)]
    first = _step_task()
    first_rows = [first.run_epoch(epoch, lambda **_: None) for epoch in range(2)]
    state = first.state_dict()
    resumed = _step_task()
    resumed.load_state_dict(state)
    resumed_rows = first_rows + [resumed.run_epoch(epoch, lambda **_: None) for epoch in range(2, 4)]
    assert [r["lr"] for r in resumed_rows] == [r["lr"] for r in rows]
    assert [r["train_loss"] for r in resumed_rows] == [r["train_loss"] for r in rows]
    for a, b in zip(whole.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.equal(a, b)


@pytest.mark.parametrize("sgd, message", [
    ({"lr_milestones": [160]}, "schedule is cosine"),
    ({"schedule": "step"}, "no lr_milestones"),
    ({"schedule": "step", "lr_milestones": [180, 160]}, "increasing order"),
    ({"schedule": "step", "lr_milestones": [0]}, "increasing order"),
    ({"schedule": "exp"}, "train.sgd.schedule"),
])
def test_bad_schedule_settings_are_one_line_errors(tiny_run, sgd, message):
    from ltnas.config import validate_config
    from ltnas.errors import LtnasError

    tiny_run["train"]["sgd"] = sgd
    with pytest.raises(LtnasError, match=message) as caught:
        validate_config(tiny_run)
    assert "\n" not in str(caught.value)


def test_imbnas_configs_use_the_papers_step_schedule():
    train = load_config(resolve_config_path("imbnas_cifar100")).train
    assert (train.epochs, train.sgd.schedule, train.sgd.lr, train.sgd.lr_milestones, train.sgd.lr_gamma) == (
        200, "step", 0.1, [160, 180], 0.01)
    smoke = load_config(resolve_config_path("imbnas_smoke")).train
    assert smoke.sgd.schedule == "step" and smoke.sgd.lr_milestones == [1]
