"""Long-tail plug-ins: class-balanced weights, DRW, the criterion shared by search and retrain."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ltnas.config import LongTailConfig
from ltnas.errors import LtnasError
from ltnas.longtail import build_criterion, class_balanced_weights, drw_switch_epoch


def test_class_balanced_weights_against_the_formula():
    counts, beta = [100, 10, 1], 0.9
    raw = [(1 - beta) / (1 - beta**n) for n in counts]  # 0.1/(1-0.9^100), 0.1/(1-0.9^10), 1.0
    expected = [3 * r / sum(raw) for r in raw]
    torch.testing.assert_close(class_balanced_weights(counts, beta), torch.tensor(expected))
    assert class_balanced_weights(counts, beta).sum().item() == pytest.approx(3.0)
    assert raw[2] == pytest.approx(1.0)  # a single image has effective number 1


def test_class_balanced_weights_cifar10_lt_ordering():
    counts = [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]  # CIFAR-10, ratio 100
    weights = class_balanced_weights(counts, 0.9999)
    assert weights.sum().item() == pytest.approx(10.0, rel=1e-6)
    assert torch.all(weights[1:] > weights[:-1])  # rarer class, larger weight


def test_class_without_images_gets_no_weight():
    weights = class_balanced_weights([10, 0, 5], 0.99)
    assert weights[1] == 0 and weights.sum().item() == pytest.approx(3.0)


@pytest.mark.parametrize("beta", [0.0, 1.0, 1.5])
def test_bad_beta(beta):
    with pytest.raises(LtnasError, match="beta"):
        class_balanced_weights([1, 2], beta)


def test_drw_is_unweighted_until_the_switch_epoch():
    counts = [50, 5]
    criterion = build_criterion(LongTailConfig(reweight="drw"), counts, epochs=200)
    assert drw_switch_epoch(LongTailConfig(reweight="drw"), 200) == 160  # LDAM-DRW's 160 of 200
    logits, targets = torch.randn(6, 2), torch.tensor([0, 0, 0, 0, 1, 1])
    criterion.set_epoch(159)
    torch.testing.assert_close(criterion(logits, targets), F.cross_entropy(logits, targets))
    criterion.set_epoch(160)
    weights = class_balanced_weights(counts, 0.9999)
    torch.testing.assert_close(criterion(logits, targets), F.cross_entropy(logits, targets, weight=weights))
    assert build_criterion(LongTailConfig(reweight="drw", drw_epoch=3), counts, 10).reweighting.switch_epoch == 3


def test_class_balanced_loss_is_weighted_cross_entropy_from_the_start():
    counts = [30, 3, 1]
    criterion = build_criterion(LongTailConfig(reweight="class_balanced", beta=0.99), counts, epochs=5)
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    expected = F.cross_entropy(logits, targets, weight=class_balanced_weights(counts, 0.99))
    torch.testing.assert_close(criterion(logits, targets), expected)


def test_plain_cross_entropy_by_default():
    criterion = build_criterion(LongTailConfig(), [3, 2], epochs=1)
    logits, targets = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    torch.testing.assert_close(criterion(logits, targets), F.cross_entropy(logits, targets))


def test_plug_ins_and_second_order_run_through_the_whole_pipeline(tiny_run, tmp_path, monkeypatch):
    """Every long-tail plug-in is selectable in search and retrain, with either search order."""
    from ltnas import pipeline
    from ltnas.config import validate_config
    from ltnas.runs import RunFolder

    used = {"reweight": [], "sampler": [], "rw_lambda": []}
    from ltnas.stages import context, retrain, search

    real_criterion, real_batches = search.build_criterion, context.Context.batches

    def spy_criterion(config, *args, **kwargs):
        used["reweight"].append(config.reweight)
        used["rw_lambda"].append(config.rw_lambda)
        return real_criterion(config, *args, **kwargs)

    def spy_batches(*args, **kwargs):
        used["sampler"].append(kwargs["sampler"])
        return real_batches(*args, **kwargs)

    monkeypatch.setattr(search, "build_criterion", spy_criterion)
    monkeypatch.setattr(retrain, "build_criterion", spy_criterion)
    monkeypatch.setattr(context.Context, "batches", spy_batches)

    tiny_run["search"].update(order="second", epochs=1,
                              longtail={"reweight": "class_balanced", "sampler": "class_balanced"})
    tiny_run["train"].update(epochs=2, longtail={"reweight": "drw", "drw_epoch": 1, "sampler": "class_balanced",
                                                 "rw_lambda": 0.5})  # IMB-NAS's eq. 1 in the retrain
    config = validate_config(tiny_run)
    results = pipeline.run_all(config, RunFolder.create(tmp_path / "run", config))
    assert 0.0 <= results["balanced_test"]["balanced"] <= 1.0
    assert (tmp_path / "run" / "search" / "genotype.json").is_file()
    assert used == {"reweight": ["class_balanced", "drw"], "sampler": ["class_balanced"] * 3,
                    "rw_lambda": [None, 0.5]}


# ------------------------------------------------------------------ tail-aware α objective


def test_inverse_frequency_weights_by_hand():
    from ltnas.longtail import inverse_frequency_weights

    # 1/100, 1/10, 0 (absent), 1/1 → normalised to sum to 4
    raw = [0.01, 0.1, 0.0, 1.0]
    expected = torch.tensor([4 * r / sum(raw) for r in raw])
    torch.testing.assert_close(inverse_frequency_weights([100, 10, 0, 1]), expected)


def test_logit_adjusted_loss_against_the_formula():
    from ltnas.longtail import LogitAdjustedLoss

    counts, tau = [60, 30, 10], 1.5
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 2, 1])
    prior = torch.tensor([0.6, 0.3, 0.1])
    expected = F.cross_entropy(logits + tau * prior.log(), targets)
    torch.testing.assert_close(LogitAdjustedLoss(counts, tau)(logits, targets), expected)
    # τ = 0 is plain cross-entropy; an absent class keeps the loss finite
    torch.testing.assert_close(LogitAdjustedLoss(counts, 0.0)(logits, targets), F.cross_entropy(logits, targets))
    assert torch.isfinite(LogitAdjustedLoss([5, 0, 5])(logits, targets))


@pytest.mark.parametrize("kind", ["ce", "balanced", "class_balanced", "logit_adjusted"])
def test_arch_objectives(kind):
    from ltnas.config import SearchConfig
    from ltnas.longtail import build_arch_criterion, inverse_frequency_weights

    counts = [50, 10, 2]
    logits, targets = torch.randn(6, 3), torch.tensor([0, 0, 0, 1, 1, 2])
    config = SearchConfig(arch_objective=kind, arch_tau=1.0)
    loss = build_arch_criterion(config, counts)(logits, targets)
    expected = {
        "ce": F.cross_entropy(logits, targets),
        "balanced": F.cross_entropy(logits, targets, weight=inverse_frequency_weights(counts)),
        "class_balanced": F.cross_entropy(logits, targets, weight=class_balanced_weights(counts, 0.9999)),
        "logit_adjusted": F.cross_entropy(logits + torch.tensor(counts).div(62).log(), targets),
    }[kind]
    torch.testing.assert_close(loss, expected)


def test_tail_aware_objective_changes_the_alpha_gradient_only():
    """DARTS' α step uses the α objective; the weight step keeps the training criterion."""
    from ltnas.config import SearchConfig
    from ltnas.longtail import build_arch_criterion
    from ltnas.search import DartsSearch
    from ltnas.space import SearchNetwork

    torch.manual_seed(0)
    network = SearchNetwork(2, 3, 3, nodes=1)
    x, y = torch.randn(8, 3, 8, 8), torch.tensor([0, 0, 0, 0, 0, 1, 1, 2])
    network.train()
    grads = {}
    for kind in ("ce", "balanced"):
        config = SearchConfig(arch_objective=kind)
        strategy = DartsSearch(network, config, F.cross_entropy, build_arch_criterion(config, [40, 8, 2]))
        grads[kind] = strategy.arch_gradients((x, y), (x, y))
        assert strategy.criterion is F.cross_entropy
    assert not torch.allclose(grads["ce"][0], grads["balanced"][0])


# --- focal, LDAM, logit adjustment (IMB-NAS plug-ins) ----------------------------------------------
from ltnas.longtail import FocalLoss, LDAMLoss, LogitAdjustedLoss, ldam_margins  # noqa: E402

LOGITS = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-0.5, 1.5, 0.0]])
TARGETS = torch.tensor([0, 2, 1])
COUNTS = [100, 10, 1]


def test_ldam_margins_against_the_formula():
    # n^(-1/4) = 1/√10^(1/2)..., scaled so the rarest class (n = 1) gets the maximum margin 0.5
    expected = torch.tensor([100 ** -0.25, 10 ** -0.25, 1.0]) * 0.5
    assert torch.allclose(ldam_margins(COUNTS), expected)
    assert torch.allclose(ldam_margins(COUNTS, max_margin=1.0), expected * 2)
    assert ldam_margins([5, 0, 5]).tolist() == pytest.approx([0.5, 0.5, 0.5])  # absent class: any margin works


def test_ldam_loss_against_hand_computation():
    m = ldam_margins(COUNTS)
    loss = LDAMLoss(COUNTS, max_margin=0.5, scale=30.0)(LOGITS, TARGETS)
    by_hand = 0.0
    for z, y in zip(LOGITS, TARGETS):
        shifted = z.clone()
        shifted[y] -= m[y]
        shifted = 30.0 * shifted
        by_hand += -(shifted[y] - torch.logsumexp(shifted, 0))
    assert loss.item() == pytest.approx(by_hand.item() / 3, rel=1e-5)


def test_focal_loss_against_hand_computation():
    p = torch.softmax(LOGITS, 1)[torch.arange(3), TARGETS]
    by_hand = (-((1 - p) ** 2) * p.log()).mean()
    assert FocalLoss(2.0)(LOGITS, TARGETS).item() == pytest.approx(by_hand.item(), rel=1e-6)
    # γ = 0 is cross-entropy, weighted ones included
    weight = torch.tensor([0.2, 1.0, 3.0])
    assert FocalLoss(0.0)(LOGITS, TARGETS, weight).item() == pytest.approx(
        F.cross_entropy(LOGITS, TARGETS, weight=weight).item(), rel=1e-6)


def test_logit_adjusted_loss_and_balanced_softmax_against_hand_computation():
    prior = torch.tensor(COUNTS, dtype=torch.float32) / sum(COUNTS)
    for tau in (1.0, 0.5):
        adjusted = LOGITS + tau * prior.log()
        by_hand = -(adjusted[torch.arange(3), TARGETS] - torch.logsumexp(adjusted, 1)).mean()
        assert LogitAdjustedLoss(COUNTS, tau)(LOGITS, TARGETS).item() == pytest.approx(by_hand.item(), rel=1e-6)
    # balanced softmax: z + log n_c, the same as τ = 1 (a constant shift does not change softmax)
    counts = torch.tensor(COUNTS, dtype=torch.float32)
    balanced = F.cross_entropy(LOGITS + counts.log(), TARGETS)
    criterion = build_criterion(LongTailConfig(loss="balanced_softmax"), COUNTS, epochs=10)
    assert criterion(LOGITS, TARGETS).item() == pytest.approx(balanced.item(), rel=1e-6)
    assert torch.isfinite(LogitAdjustedLoss([5, 0, 5])(LOGITS, TARGETS))  # an absent class gives no NaN


@pytest.mark.parametrize("loss", ["focal", "ldam", "logit_adjusted"])
def test_new_losses_follow_the_drw_schedule(loss):
    config = LongTailConfig(loss=loss, reweight="drw", drw_epoch=2)
    criterion = build_criterion(config, COUNTS, epochs=4)
    unweighted = criterion(LOGITS, TARGETS).item()
    criterion.set_epoch(2)
    weighted = criterion(LOGITS, TARGETS).item()
    assert weighted != pytest.approx(unweighted)
    # and gradients flow
    logits = LOGITS.clone().requires_grad_(True)
    criterion(logits, TARGETS).backward()
    assert logits.grad.abs().sum() > 0


def test_bad_loss_settings():
    with pytest.raises(LtnasError, match="gamma"):
        FocalLoss(-1.0)
    with pytest.raises(LtnasError, match="max_margin"):
        ldam_margins(COUNTS, max_margin=0)
    with pytest.raises(LtnasError, match="counts"):
        LogitAdjustedLoss([])
    from ltnas.config import load_config

    with pytest.raises(LtnasError, match="train.longtail.loss"):
        load_config(None, ["train.longtail.loss=ldam2"])


# --- IMB-NAS (Yao, 2024) eq. 1: L_total = L_CE + λ·L_RW --------------------------------------------------------
def test_combined_loss_against_hand_computation():
    """Two classes, two samples: CE and class-weighted CE written out, then CE + λ·CE_w."""
    counts, beta, lam = [9, 1], 0.9, 0.5
    raw = [(1 - beta) / (1 - beta**n) for n in counts]
    w = [2 * r / sum(raw) for r in raw]  # normalised to sum to C = 2
    logits, targets = torch.tensor([[2.0, 0.0], [0.5, 1.5]]), torch.tensor([0, 1])
    nll = [math.log(1 + math.exp(-2.0)), math.log(1 + math.exp(-1.0))]  # −log softmax of the true class
    ce = sum(nll) / 2
    ce_w = (w[0] * nll[0] + w[1] * nll[1]) / (w[0] + w[1])  # PyTorch's weighted mean
    config = LongTailConfig(reweight="class_balanced", beta=beta, rw_lambda=lam)
    criterion = build_criterion(config, counts, epochs=5)
    assert criterion(logits, targets).item() == pytest.approx(ce + lam * ce_w, rel=1e-6)
    # λ = 0 is plain CE; without λ the loss is the re-weighted one alone
    assert build_criterion(config.model_copy(update={"rw_lambda": 0.0}), counts, 5)(logits, targets).item() == \
        pytest.approx(ce, rel=1e-6)
    assert build_criterion(config.model_copy(update={"rw_lambda": None}), counts, 5)(logits, targets).item() == \
        pytest.approx(ce_w, rel=1e-6)


def test_combined_loss_with_drw_adds_the_weighted_term_from_the_switch():
    counts = [50, 5]
    criterion = build_criterion(LongTailConfig(reweight="drw", drw_epoch=3, rw_lambda=2.0), counts, epochs=5)
    logits, targets = torch.randn(6, 2, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 0, 0, 0, 1, 1])
    criterion.set_epoch(2)
    torch.testing.assert_close(criterion(logits, targets), F.cross_entropy(logits, targets))
    criterion.set_epoch(3)
    weights = class_balanced_weights(counts, 0.9999)
    torch.testing.assert_close(criterion(logits, targets), F.cross_entropy(logits, targets)
                               + 2.0 * F.cross_entropy(logits, targets, weight=weights))


def test_combined_loss_needs_a_reweighting():
    from ltnas.config import load_config

    with pytest.raises(LtnasError, match="reweight is none") as caught:
        load_config(None, ["train.longtail.rw_lambda=1.0"])
    assert "\n" not in str(caught.value)
    with pytest.raises(LtnasError, match="rw_lambda"):
        load_config(None, ["train.longtail.reweight=drw", "train.longtail.rw_lambda=-1"])


def test_imbnas_configs_retrain_with_the_combined_loss():
    from ltnas.cli import resolve_config_path
    from ltnas.config import load_config

    for name in ("imbnas_cifar100", "imbnas_smoke"):
        longtail = load_config(resolve_config_path(name)).train.longtail
        assert (longtail.reweight, longtail.rw_lambda) == ("drw", 1.0), name
