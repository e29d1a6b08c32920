"""DARTS strategy: first- and second-order α gradients, separation of the two steps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ltnas.config import SearchConfig
from ltnas.search import DartsSearch, strategy_class
from ltnas.errors import LtnasError
from ltnas.space import SearchNetwork

PRIMS = ["none", "avg_pool_3x3", "skip_connect", "sep_conv_3x3"]


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def _tiny_search(order: str, sgd: dict | None = None, **config) -> tuple[DartsSearch, tuple, tuple]:
    torch.manual_seed(0)
    network = SearchNetwork(4, 3, 3, in_channels=1, primitives=PRIMS, nodes=2, alpha_init_std=0.5)
    strategy = DartsSearch(network, SearchConfig(order=order, epochs=1, sgd=sgd or {}, **config), F.cross_entropy)
    train = (torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,)))
    val = (torch.randn(8, 1, 8, 8), torch.randint(0, 3, (8,)))
    return strategy, train, val


def _unrolled_val_loss(strategy: DartsSearch, train, val) -> float:
    """L_val(w − ξ(momentum·buf + ∇w L_train(w, α) + wd·w), α), computed directly."""
    network, config = strategy.network, strategy.config
    names = [name for name, _ in network.named_parameters()]
    grads = torch.autograd.grad(F.cross_entropy(network(train[0]), train[1]), strategy.weights)
    unrolled = {}
    for name, w, g in zip(names, strategy.weights, grads):
        buf = strategy.w_optimizer.state[w]["momentum_buffer"]
        unrolled[name] = w - strategy.lr * (config.sgd.momentum * buf + g + config.sgd.weight_decay * w)
    return F.cross_entropy(functional_call(network, unrolled, (val[0],)), val[1]).item()


def test_second_order_alpha_gradient_matches_finite_differences(float64):
    strategy, train, val = _tiny_search("second", {"lr": 0.1, "weight_decay": 0.01}, hvp_radius=1e-5)
    strategy.weight_step(train)  # a non-zero momentum buffer enters w'
    strategy.network.train()
    analytic = strategy.second_order_arch_grads(train, val)

    h = 1e-5
    numeric = []
    for alpha in strategy.alphas:
        grad = torch.zeros_like(alpha)
        for i in range(alpha.numel()):
            with torch.no_grad():
                alpha.view(-1)[i] += h
            plus = _unrolled_val_loss(strategy, train, val)
            with torch.no_grad():
                alpha.view(-1)[i] -= 2 * h
            minus = _unrolled_val_loss(strategy, train, val)
            with torch.no_grad():
                alpha.view(-1)[i] += h
            grad.view(-1)[i] = (plus - minus) / (2 * h)
        numeric.append(grad)

    first_order = torch.autograd.grad(F.cross_entropy(strategy.network(val[0]), val[1]), strategy.alphas)
    for a, n, f in zip(analytic, numeric, first_order):
        assert (a - n).norm() / n.norm() < 1e-6
        assert (f - n).norm() / n.norm() > 0.05  # the second-order term matters here


def test_second_order_step_leaves_weights_where_they_were(float64):
    strategy, train, val = _tiny_search("second")
    before = [w.detach().clone() for w in strategy.weights]
    strategy.second_order_arch_grads(train, val)
    for w, b in zip(strategy.weights, before):
        torch.testing.assert_close(w, b, rtol=0, atol=1e-12)


def test_first_order_alpha_gradient_is_the_validation_gradient():
    strategy, train, val = _tiny_search("first", arch_weight_decay=0.0)
    alphas_before = [a.detach().clone() for a in strategy.alphas]
    weights_before = [w.detach().clone() for w in strategy.weights]
    expected = torch.autograd.grad(F.cross_entropy(strategy.network(val[0]), val[1]), strategy.alphas)
    strategy.arch_step(train, val)
    for alpha, grad in zip(strategy.alphas, expected):
        torch.testing.assert_close(alpha.grad, grad)
    # The α step moves α only; Adam's first step moves every coordinate by about lr.
    assert all(torch.equal(w, b) for w, b in zip(strategy.weights, weights_before))
    for alpha, before in zip(strategy.alphas, alphas_before):
        assert (alpha.detach() - before).abs().max().item() == pytest.approx(strategy.config.arch_lr, rel=1e-3)


def test_weight_step_moves_weights_only_and_clips():
    strategy, train, _ = _tiny_search("first", {"grad_clip": 1e-3, "lr": 1.0, "momentum": 0.0, "weight_decay": 0.0})
    alphas_before = [a.detach().clone() for a in strategy.alphas]
    weights_before = torch.cat([w.detach().flatten() for w in strategy.weights])
    out = strategy.weight_step(train)
    assert set(out) == {"loss", "correct", "count"} and out["count"] == 8
    assert all(torch.equal(a, b) for a, b in zip(strategy.alphas, alphas_before))
    step = torch.cat([w.detach().flatten() for w in strategy.weights]) - weights_before
    assert step.norm() == pytest.approx(1e-3, rel=1e-3)  # lr 1 × gradient clipped to norm 1e-3


def test_cosine_learning_rate_reaches_its_minimum():
    torch.manual_seed(0)
    network = SearchNetwork(2, 3, 3, in_channels=1, primitives=PRIMS, nodes=1)
    strategy = DartsSearch(network, SearchConfig(epochs=4, sgd={"lr": 0.1, "lr_min": 0.01}), F.cross_entropy)
    rates = []
    for epoch in range(4):
        strategy.set_epoch(epoch)
        rates.append(strategy.lr)
        strategy.w_optimizer.step()  # (no gradients: a no-op, but the order the scheduler expects)
        strategy.end_epoch()
    assert rates[0] == pytest.approx(0.1)
    assert rates == sorted(rates, reverse=True)
    assert strategy.lr == pytest.approx(0.01)


def test_unknown_method_is_a_clear_error():
    assert strategy_class("darts") is DartsSearch
    with pytest.raises(LtnasError, match="unknown search method"):
        strategy_class("enas")
