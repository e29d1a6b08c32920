"""Precise BatchNorm (Wu & Johnson, 2021): running statistics recomputed under the current weights."""

from __future__ import annotations

import torch
from torch import nn

from ltnas.config import LongTailConfig, TrainConfig
from ltnas.data import DeviceBatches, ImageSet
from ltnas.longtail import build_criterion
from ltnas.space import DiscreteNetwork
from ltnas.space.genotype import load_genotype
from ltnas.train.precise_bn import recalibrate_batchnorm
from ltnas.train.retrain import RetrainTask


def test_running_statistics_become_the_average_of_the_batch_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 1), nn.BatchNorm2d(3), nn.Dropout(0.5))
    model[1].running_mean.fill_(7.0)  # stale statistics the recalibration must forget
    batches = [(torch.randn(4, 2, 3, 3), None), (torch.randn(6, 2, 3, 3), None), (torch.randn(1, 2, 3, 3), None)]
    assert recalibrate_batchnorm(model, batches) == 2  # the batch of one is skipped
    with torch.no_grad():
        features = [model[0](x) for x, _ in batches[:2]]
    means = [f.mean(dim=(0, 2, 3)) for f in features]
    variances = [f.transpose(0, 1).flatten(1).var(dim=1, unbiased=True) for f in features]
    assert torch.allclose(model[1].running_mean, (means[0] + means[1]) / 2, atol=1e-6)
    assert torch.allclose(model[1].running_var, (variances[0] + variances[1]) / 2, atol=1e-6)
    assert model[1].momentum == 0.1 and model.training and model[1].training


def test_recalibration_draws_no_random_number_and_leaves_eval_mode_alone():
    torch.manual_seed(0)
    network = DiscreteNetwork(load_genotype("DARTS_V2"), 4, 3, 3, auxiliary=True, in_channels=1, image_size=8)
    network.drop_path_prob = 0.5
    network.eval()
    batches = [(torch.randn(5, 1, 8, 8), None)]
    state = torch.get_rng_state()
    recalibrate_batchnorm(network, batches)
    assert torch.equal(state, torch.get_rng_state())  # drop-path did not run
    assert not network.training and not any(m.training for m in network.modules())
    assert recalibrate_batchnorm(nn.Linear(2, 2), [(torch.randn(3, 2), None)]) == 0


def _task(precise_bn: bool) -> RetrainTask:
    torch.manual_seed(0)
    images = ImageSet(torch.randint(0, 255, (24, 1, 8, 8), dtype=torch.uint8), torch.arange(24) % 3)
    config = TrainConfig(epochs=2, batch_size=8, lr=0.1, precise_bn=precise_bn, auxiliary=False,
                         augment={"crop_padding": 0, "flip": False})
    batches = DeviceBatches(images, 8, device="cpu", mean=[0.5], std=[0.2], generator=torch.Generator().manual_seed(0))
    ordered = DeviceBatches(images, 8, device="cpu", mean=[0.5], std=[0.2], generator=torch.Generator(), shuffle=False)
    counts = images.counts(3)
    model = DiscreteNetwork(load_genotype("DARTS_V2"), 4, 3, 3, in_channels=1, image_size=8)
    return RetrainTask(model, config, build_criterion(LongTailConfig(), counts, 2), batches, ordered, counts, 3,
                       recalibration=ordered if precise_bn else None)


def test_retraining_with_precise_bn_changes_only_the_running_statistics():
    plain, precise = _task(False), _task(True)
    plain_row, precise_row = plain.run_epoch(0, lambda **_: None), precise.run_epoch(0, lambda **_: None)
    assert plain_row["train_loss"] == precise_row["train_loss"]  # the same steps, the same weights
    for (name, a), b in zip(plain.model.state_dict().items(), precise.model.state_dict().values()):
        if name.endswith(("running_mean", "running_var", "num_batches_tracked")):
            continue
        assert torch.equal(a, b), name
    # the validation pass of the recalibrated model uses the statistics of these very weights
    expected = _task(False)
    expected.run_epoch(0, lambda **_: None)
    recalibrate_batchnorm(expected.model, expected.val_batches)
    for name, value in expected.model.state_dict().items():
        assert torch.allclose(value.float(), precise.model.state_dict()[name].float()), name
    assert precise_row["val_loss"] != plain_row["val_loss"]
