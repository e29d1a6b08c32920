"""FairDARTS: zero-one loss, sigmoid relaxation, the authors' defaults; Barlow Twins loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ltnas.config import PRIMITIVES, SearchConfig, load_config
from ltnas.cli import shipped_configs
from ltnas.errors import LtnasError
from ltnas.search import FairDartsSearch, barlow_twins_loss, strategy_class, zero_one_loss
from ltnas.space import SearchNetwork


def test_zero_one_loss_value_and_gradient_against_the_formulas():
    w = torch.tensor([0.1, 0.5, 0.9, 0.7], requires_grad=True)
    l2 = zero_one_loss(w, "l2")
    assert l2.item() == pytest.approx(-(0.16 + 0 + 0.16 + 0.04) / 4)
    (grad,) = torch.autograd.grad(l2, w)
    torch.testing.assert_close(grad, -2 * (w.detach() - 0.5) / 4)  # d/dw −mean((w−½)²)

    l1 = zero_one_loss(w, "l1")
    assert l1.item() == pytest.approx(-(0.4 + 0 + 0.4 + 0.2) / 4)
    (grad,) = torch.autograd.grad(l1, w)
    torch.testing.assert_close(grad, -torch.sign(w.detach() - 0.5) / 4)


def test_zero_one_loss_pools_every_tensor_given():
    a, b = torch.tensor([[0.2, 0.8]]), torch.tensor([0.5, 0.5, 1.0])
    assert zero_one_loss([a, b]).item() == pytest.approx(-(0.09 + 0.09 + 0 + 0 + 0.25) / 5)
    with pytest.raises(LtnasError, match="l2"):
        zero_one_loss(a, "l3")


def _standardise(z):
    return (z - z.mean(0)) / torch.sqrt(z.var(0, unbiased=False) + 1e-5)


def test_barlow_twins_loss_against_a_direct_computation():
    torch.manual_seed(0)
    z1, z2 = torch.randn(32, 6), torch.randn(32, 6)
    c = _standardise(z1).T @ _standardise(z2) / 32
    expected = sum((1 - c[i, i]) ** 2 for i in range(6)) + 0.0051 * sum(
        c[i, j] ** 2 for i in range(6) for j in range(6) if i != j)
    assert barlow_twins_loss(z1, z2).item() == pytest.approx(expected.item(), rel=1e-5)


def test_barlow_twins_identical_views_have_no_on_diagonal_loss():
    torch.manual_seed(0)
    z = torch.randn(64, 8)
    # λ = 0 isolates the on-diagonal term: identical views are perfectly correlated, dimension by dimension.
    assert barlow_twins_loss(z, z, lambd=0.0).item() == pytest.approx(0.0, abs=1e-4)
    independent = barlow_twins_loss(z, torch.randn(64, 8), lambd=0.0).item()
    assert independent > 4.0  # ≈ D = 8 when the views are unrelated


def test_barlow_twins_bad_shapes():
    with pytest.raises(LtnasError, match="same shape"):
        barlow_twins_loss(torch.randn(4, 3), torch.randn(4, 2))
    with pytest.raises(LtnasError, match="at least 2"):
        barlow_twins_loss(torch.randn(1, 3), torch.randn(1, 3))


def test_fairdarts_uses_the_authors_defaults_unless_overridden():
    config = load_config(None, ["search.method=fairdarts"]).search
    assert tuple(config.cell.primitives) == PRIMITIVES[1:]  # the 7 operations without `none`
    assert (config.batch_size, config.sgd.lr, config.sgd.lr_min, config.arch_lr) == (128, 0.005, 0.001, 3e-3)
    assert (config.order, config.derive, config.threshold, config.fairdarts.zero_one_weight) == ("first", "threshold", 0.85, 10)
    assert load_config(None, ["search.method=fairdarts", "search.batch_size=32"]).search.batch_size == 32
    assert load_config(None, []).search.batch_size == 64  # DARTS keeps its own
    assert tuple(config.arch_betas) == (0.9, 0.999)  # the FairDARTS code's arch_lr_gamma 0.9 is Adam's β1
    assert strategy_class("fairdarts") is FairDartsSearch and FairDartsSearch.relaxation == "sigmoid"


def _fairdarts(zero_one_weight: float, arch_lr: float = 3e-3, order: str = "first"):
    torch.manual_seed(0)
    config = SearchConfig(method="fairdarts", epochs=1, fairdarts={"zero_one_weight": zero_one_weight},
                          arch_lr=arch_lr, order=order, arch_weight_decay=0.0)
    network = SearchNetwork(4, 3, 3, primitives=config.cell.primitives, relaxation="sigmoid", alpha_init_std=0.3)
    return FairDartsSearch(network, config, F.cross_entropy)


def test_fairdarts_alpha_gradient_is_validation_plus_weighted_zero_one():
    strategy = _fairdarts(zero_one_weight=10.0)
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    network = strategy.network
    weights = network.relaxed_weights()
    torch.testing.assert_close(weights["normal"], torch.sigmoid(network.alpha_normal))
    objective = F.cross_entropy(network(x), y) + 10.0 * zero_one_loss(list(weights.values()))
    expected = torch.autograd.grad(objective, network.arch_parameters())
    strategy.arch_step((x, y), (x, y))
    for alpha, grad in zip(network.arch_parameters(), expected):
        torch.testing.assert_close(alpha.grad, grad)


def test_printed_zero_one_loss_on_alpha_against_hand_computation_and_its_gradient():
    """SSF-NAS's printed L01 = −1/N Σ|σ(α_i) − ½| (zero_one_kind l1): value by hand on three α, and
    ∂L01/∂α_i = −sign(σ_i − ½) · σ_i (1 − σ_i) / N, also through FairDartsSearch's zero-one term."""
    alpha = torch.tensor([0.0, math.log(3.0), -math.log(4.0)], requires_grad=True)  # σ = 1/2, 3/4, 1/5
    loss = zero_one_loss(torch.sigmoid(alpha), "l1")
    assert loss.item() == pytest.approx(-(0.0 + 0.25 + 0.3) / 3)
    (grad,) = torch.autograd.grad(loss, alpha)
    # σ = ½ has |·|'s subgradient 0 (torch's sign(0)); σ(1−σ) = 3/16 and 4/25 for the others
    torch.testing.assert_close(grad, torch.tensor([0.0, -3 / 16 / 3, 4 / 25 / 3]))
    squared = zero_one_loss(torch.sigmoid(alpha), "l2")  # FairDARTS' proposed form, for contrast
    assert squared.item() == pytest.approx(-(0.0 + 0.0625 + 0.09) / 3)

    for kind in ("l1", "l2"):
        config = SearchConfig(method="fairdarts", fairdarts={"zero_one_weight": 10.0, "zero_one_kind": kind})
        network = SearchNetwork(4, 3, 3, primitives=config.cell.primitives, relaxation="sigmoid", alpha_init_std=0.3)
        strategy = FairDartsSearch(network, config, F.cross_entropy)
        n = sum(a.numel() for a in network.arch_parameters())
        for a, g in zip(network.arch_parameters(), strategy.zero_one_grads()):
            sigma = torch.sigmoid(a.detach())
            slope = torch.sign(sigma - 0.5) if kind == "l1" else 2 * (sigma - 0.5)
            torch.testing.assert_close(g, -10.0 * slope * sigma * (1 - sigma) / n)


def test_ssf_configs_run_the_printed_zero_one_loss_and_fairdarts_configs_its_own():
    for name in ("ssf_cifar10_lt", "ssf_cifar10_lt_smoke"):
        assert load_config(shipped_configs()[name]).search.fairdarts.zero_one_kind == "l1"
    for name in ("fairdarts_cifar10", "fairdarts_cifar10_smoke", "fairdarts_s2_smoke"):
        assert load_config(shipped_configs()[name]).search.fairdarts.zero_one_kind == "l2"
    assert SearchConfig(method="fairdarts").fairdarts.zero_one_kind == "l2"  # FairDARTS' proposed form by default


def _polarised_fraction(strategy) -> float:
    sigma = torch.cat([w.detach().flatten() for w in strategy.network.relaxed_weights().values()])
    return ((sigma < 0.1) | (sigma > 0.9)).float().mean().item()


def test_zero_one_loss_polarises_sigma_in_a_short_search():
    """FairDARTS Fig. 8: with w01 > 0, σ piles up near 0 and 1; without it, it does not."""
    torch.manual_seed(1)
    batches = [(torch.randn(16, 3, 8, 8), torch.randint(0, 3, (16,))) for _ in range(4)]
    fractions = {}
    for w01 in (0.0, 10.0):
        torch.manual_seed(0)  # the same initial α for both
        config = SearchConfig(method="fairdarts", epochs=1, fairdarts={"zero_one_weight": w01}, arch_lr=0.1,
                              arch_weight_decay=0.0)
        network = SearchNetwork(2, 3, 3, primitives=config.cell.primitives, nodes=1, relaxation="sigmoid",
                                alpha_init_std=1.0)
        strategy = FairDartsSearch(network, config, F.cross_entropy)
        for step in range(30):
            strategy.step(batches[step % 4], batches[(step + 1) % 4])
        fractions[w01] = _polarised_fraction(strategy)
    assert fractions[10.0] > 0.8
    assert fractions[10.0] > fractions[0.0] + 0.5


def test_fairdarts_second_order_adds_the_zero_one_gradient():
    strategy = _fairdarts(zero_one_weight=5.0, order="second")
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    strategy.network.train()
    second = [g.clone() for g in strategy.second_order_arch_grads((x, y), (x, y))]
    zero_one = strategy.zero_one_grads()
    before = [a.detach().clone() for a in strategy.alphas]
    torch.manual_seed(0)
    strategy.arch_step((x, y), (x, y))
    for alpha, s, z in zip(strategy.alphas, second, zero_one):
        torch.testing.assert_close(alpha.grad, s + z, rtol=1e-4, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(strategy.alphas, before))


def test_fairdarts_runs_through_the_pipeline_with_threshold_derivation(tiny_run, tmp_path):
    import json

    from ltnas import pipeline
    from ltnas.config import validate_config
    from ltnas.runs import RunFolder

    tiny_run["search"].update(method="fairdarts", threshold=0.5, arch_lr=0.05,
                              longtail={"reweight": "class_balanced"})
    config = validate_config(tiny_run)
    assert config.search.derive == "threshold" and "none" not in config.search.cell.primitives
    results = pipeline.run_all(config, RunFolder.create(tmp_path / "run", config))
    alpha = [json.loads(line) for line in (tmp_path / "run" / "search" / "alpha.jsonl").read_text().splitlines()]
    assert alpha[-1]["relaxation"] == "sigmoid" and len(alpha[-1]["normal"][0]) == 7
    assert results["params"] > 0


def test_search_warns_when_the_threshold_keeps_nothing(tiny_config_file, tmp_path, capsys):
    from ltnas.cli import main

    code = main(["search", str(tiny_config_file), "--set", "search.method=fairdarts", "--set", "search.epochs=1",
                 "--set", "search.threshold=0.99", "--out", str(tmp_path / "run")])
    assert code == 0
    err = capsys.readouterr().err
    assert "normal and reduce cell kept no operation" in err and "search.threshold=0.99" in err


@pytest.mark.parametrize("method", ["fairdarts", "ssf"])
def test_fairdarts_and_ssf_alpha_adam_uses_the_authors_betas(method):
    """FairDARTS (Chu et al., 2020) code: α Adam betas (arch_lr_gamma, 0.999) = (0.9, 0.999), not DARTS's
    (0.5, 0.999); the method default shows in the resolved config and the shipped configs resolve to it."""
    config = load_config(None, [f"search.method={method}"])
    assert "arch_betas:\n  - 0.9\n  - 0.999" in config.to_yaml()  # visible in the run's config.yaml
    assert tuple(load_config(None, [f"search.method={method}", "search.arch_betas=[0.5, 0.9]"]).search.arch_betas) \
        == (0.5, 0.9)  # an explicit setting still wins
    assert tuple(load_config(None, ["search.method=darts"]).search.arch_betas) == (0.5, 0.999)
    names = {"fairdarts": ("fairdarts_cifar10", "fairdarts_cifar10_smoke"),
             "ssf": ("ssf_cifar10_lt", "ssf_cifar10_lt_smoke")}[method]
    for name in names:
        assert tuple(load_config(shipped_configs()[name]).search.arch_betas) == (0.9, 0.999)


def test_fairdarts_alpha_optimizer_is_adam_with_the_configured_betas():
    strategy = _fairdarts(zero_one_weight=10.0)
    assert strategy.a_optimizer.param_groups[0]["betas"] == (0.9, 0.999)
