"""The classifier of every network: linear, or LDAM-DRW's normalised (cosine) one whenever the loss is LDAM."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from ltnas.config import LongTailConfig, validate_config
from ltnas.longtail import build_criterion, ldam_margins
from ltnas.search.bbn import TwoBranchSearchNetwork
from ltnas.search.oneshot import PathSpace, export_subnet, load_supernet, path_forward, save_supernet
from ltnas.space import DiscreteNetwork, SearchNetwork, load_genotype
from ltnas.space.heads import NormedLinear, is_normalised, make_classifier, uses_normalised_classifier

SMALL = ("none", "skip_connect", "sep_conv_3x3", "avg_pool_3x3")


def test_normed_linear_is_the_cosine_of_feature_and_class_weight():
    torch.manual_seed(0)
    head = NormedLinear(6, 3)
    assert [name for name, _ in head.named_parameters()] == ["weight"] and head.weight.shape == (6, 3)  # no bias
    # LDAM-DRW's init: uniform(−1, 1), each class column renormed to 1e-5 then × 1e5 → unit columns
    torch.testing.assert_close(head.weight.norm(dim=0), torch.ones(3))
    x, w = torch.randn(5, 6) * 100, head.weight.detach()  # the feature's scale does not matter
    by_hand = torch.tensor([[float(x[i] @ w[:, c] / (x[i].norm() * w[:, c].norm()))
                             for c in range(3)] for i in range(5)])
    torch.testing.assert_close(head(x), by_hand)
    assert head(x).abs().max() <= 1 + 1e-6
    x[0] = w[:, 1] * 7  # a feature along class 1's weight: cosine 1
    assert head(x)[0, 1].item() == pytest.approx(1.0)


def test_make_classifier_and_the_loss_decides():
    assert type(make_classifier(8, 3)) is nn.Linear and make_classifier(8, 3).bias is not None
    assert is_normalised(make_classifier(8, 3, normalised=True))
    assert uses_normalised_classifier(LongTailConfig(loss="ldam"))
    for loss in ("ce", "focal", "logit_adjusted", "balanced_softmax"):
        assert not uses_normalised_classifier(LongTailConfig(loss=loss))


def test_ldam_margins_on_the_normalised_classifier_by_hand():
    """LDAM-DRW: loss = CE(s · (cos − m_y onehot_y)), m_c = 0.5 · (n_c / n_min)^(−1/4), s = 30."""
    counts = [100, 10, 1]
    margins = ldam_margins(counts, 0.5)
    expected_margins = [0.5 * 100 ** -0.25, 0.5 * 10 ** -0.25, 0.5]
    assert margins.tolist() == pytest.approx(expected_margins, rel=1e-6)
    torch.manual_seed(0)
    head = NormedLinear(4, 3)
    features, targets = torch.randn(2, 4), torch.tensor([2, 0])
    cosines = head(features)
    criterion = build_criterion(LongTailConfig(loss="ldam"), counts, epochs=1)
    by_hand = 0.0
    for i, y in enumerate(targets.tolist()):
        z = [30 * (cosines[i, c].item() - (expected_margins[c] if c == y else 0.0)) for c in range(3)]
        by_hand += (math.log(sum(math.exp(v) for v in z)) - z[y]) / 2
    assert criterion(cosines, targets).item() == pytest.approx(by_hand, rel=1e-5)
    # the margin keeps its meaning: a tail sample needs cos_y − cos_other > 0.5 to have a lower loss than a tie
    tie = torch.zeros(1, 3)
    assert criterion(tie, torch.tensor([2])).item() == pytest.approx(math.log(math.exp(-15) + 2) + 15, rel=1e-6)


def _check_logits(logits: torch.Tensor, classes: int, batch: int) -> None:
    assert logits.shape == (batch, classes) and logits.abs().max() <= 1 + 1e-5


def test_every_network_builds_and_runs_with_the_normalised_classifier():
    torch.manual_seed(0)
    x, y = torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0])
    supernet = SearchNetwork(4, 3, 3, primitives=SMALL, nodes=2, normalised=True)
    assert is_normalised(supernet.classifier)
    _check_logits(supernet(x), 3, 4)

    discrete = DiscreteNetwork(load_genotype("DARTS_V2"), 4, 3, 3, auxiliary=True, image_size=8, normalised=True)
    logits, aux = discrete(x)
    _check_logits(logits, 3, 4)
    _check_logits(aux, 3, 4)
    assert is_normalised(discrete.classifier) and is_normalised(discrete.auxiliary_head.classifier)
    plain = DiscreteNetwork(load_genotype("DARTS_V2"), 4, 3, 3, image_size=8)
    # the cosine classifier has no bias: C fewer parameters than the linear one
    assert sum(p.numel() for p in plain.parameters()) - sum(
        p.numel() for n, p in discrete.named_parameters() if "auxiliary" not in n) == 3

    bbn = TwoBranchSearchNetwork(2, 3, 3, primitives=SMALL, nodes=2, normalised=True)
    for logits in bbn.branch_logits(x):
        _check_logits(logits, 3, 4)
    criterion = build_criterion(LongTailConfig(loss="ldam"), [10, 5, 1], epochs=1)
    criterion(discrete(x)[0], y).backward()
    assert discrete.classifier.weight.grad.abs().sum() > 0


def test_imbnas_supernet_subnet_and_file_keep_the_normalised_classifier(tmp_path):
    torch.manual_seed(0)
    ops = ("max_pool_3x3", "skip_connect", "sep_conv_3x3")
    network = SearchNetwork(4, 3, 3, primitives=ops, normalised=True).eval()
    path = PathSpace.of(network).sample(random.Random(0))
    subnet = export_subnet(network, path).eval()
    x = torch.randn(2, 3, 8, 8)
    assert is_normalised(subnet.classifier)
    torch.testing.assert_close(subnet(x), path_forward(network, x, path), atol=1e-5, rtol=1e-5)
    save_supernet(tmp_path / "supernet.pt", network, {})
    loaded, _ = load_supernet(tmp_path / "supernet.pt")
    assert is_normalised(loaded.classifier)
    torch.testing.assert_close(loaded.eval()(x), network(x))


def test_pipeline_networks_follow_the_loss(tiny_run):
    from ltnas import pipeline
    from ltnas.data import build_dataset
    from ltnas.stages.bbn import build_two_branch_network

    tiny_run["search"]["longtail"] = {"loss": "ldam"}
    tiny_run["train"]["longtail"] = {"loss": "ce"}
    config = validate_config(tiny_run)
    data = build_dataset(config.data, seed=0)
    assert is_normalised(pipeline.build_search_network(config, data, torch.device("cpu")).classifier)
    model = pipeline.build_model(config, data, load_genotype("DARTS_V2"))
    assert type(model.classifier) is nn.Linear
    config = validate_config({**tiny_run, "train": {**tiny_run["train"], "longtail": {"loss": "ldam"}}})
    model = pipeline.build_model(config, data, load_genotype("DARTS_V2"))
    assert is_normalised(model.classifier) and is_normalised(model.auxiliary_head.classifier)
    two_branch = build_two_branch_network(validate_config({**tiny_run, "search": {"method": "bbn"}}), 4, 3)
    assert not is_normalised(two_branch.heads["instance"].classifier)  # the BBN search's loss is CE


def test_ldam_runs_through_search_retrain_and_evaluation(tiny_run, tmp_path):
    from ltnas import pipeline
    from ltnas.runs import RunFolder

    tiny_run["search"].update(epochs=1, longtail={"loss": "ldam"})
    tiny_run["train"].update(epochs=1, longtail={"loss": "ldam", "reweight": "drw", "drw_epoch": 0})
    config = validate_config(tiny_run)
    results = pipeline.run_all(config, RunFolder.create(tmp_path / "run", config))
    assert 0.0 <= results["balanced_test"]["balanced"] <= 1.0
    saved = torch.load(tmp_path / "run" / "train" / "model.pt", weights_only=False)["model"]
    assert "classifier.bias" not in saved and saved["classifier.weight"].shape[1] == 4  # (features, classes)
