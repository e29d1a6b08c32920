"""GDAS (Dong & Yang, 2019) against its formulas: τ schedule, the Gumbel straight-through sample, only
the sampled operation runs, the gradient that reaches α, derivation from softmax(α), resume equivalence."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from conftest import search_killed_and_resumed

from ltnas import pipeline
from ltnas.config import SearchConfig, validate_config
from ltnas.errors import LtnasError
from ltnas.runs import RunFolder
from ltnas.search import strategy_class
from ltnas.search.gdas import GumbelRelaxation, gumbel_straight_through, tau_at
from ltnas.space import SearchNetwork, derive_genotype
from ltnas.space.search_network import EdgeInput, MixedEdge
from ltnas.train.loop import JsonlLog

PRIMITIVES = ("none", "skip_connect", "avg_pool_3x3", "sep_conv_3x3")


def test_tau_anneals_linearly_from_tau_max_to_tau_min():
    assert [tau_at(e, 5, 10.0, 0.1) for e in range(5)] == pytest.approx([10.0, 7.525, 5.05, 2.575, 0.1])
    assert tau_at(0, 1, 10.0, 0.1) == 10.0
    config = SearchConfig(method="gdas", epochs=3,
                          cell={"init_channels": 4, "layers": 1, "nodes": 1, "primitives": list(PRIMITIVES)})
    strategy = make_strategy(config)
    taus = []
    for epoch in range(3):
        strategy.set_epoch(epoch)
        taus.append(strategy.network.relaxation.tau)
    assert taus == pytest.approx([10.0, 5.05, 0.1])


def test_gumbel_straight_through_by_hand():
    alpha = torch.tensor([[0.3, -0.2, 1.0, 0.0], [2.0, 0.1, -1.0, 0.5]], dtype=torch.float64)
    weights, sampled = gumbel_straight_through(alpha, 2.0, torch.Generator().manual_seed(7))
    noise = -torch.empty_like(alpha).exponential_(generator=torch.Generator().manual_seed(7)).log()
    p = torch.softmax((torch.log_softmax(alpha, -1) + noise) / 2.0, -1)
    assert sampled == p.argmax(-1).tolist()
    hard = F.one_hot(torch.tensor(sampled), 4).double()
    torch.testing.assert_close(weights, hard, rtol=0, atol=1e-15)  # the one-hot in value
    assert (weights[hard == 0] == 0).all()  # exactly 0 off the sample


def test_forward_runs_the_sampled_operation_only(monkeypatch):
    network = SearchNetwork(4, 3, 2, primitives=PRIMITIVES, nodes=2, relaxation=GumbelRelaxation(10.0))
    network.relaxation.generator = torch.Generator().manual_seed(0)
    ran = []
    original = MixedEdge._run
    monkeypatch.setattr(MixedEdge, "_run",
                        lambda self, i, inputs: ran.append((id(self), i)) or original(self, i, inputs))
    sampled = {}
    forward = network.relaxation.forward

    def remember(alpha, training):
        out = forward(alpha, training)
        sampled[alpha is network.alpha_normal] = out.sampled
        return out

    monkeypatch.setattr(network.relaxation, "forward", remember)
    network.train()
    network(torch.randn(2, 3, 8, 8))
    expected = [(id(edge), sampled[not cell.reduction][e])
                for cell in network.cells for e, edge in enumerate(cell.edges)]
    assert ran == expected  # one operation per edge, the sampled one, and nothing else


def test_gradient_reaches_alpha_through_the_straight_through_weights():
    """∂L/∂α = J_p(α)ᵀ g with g_k = ⟨∂L/∂out, op_k(x)⟩ for the sampled k and g_j = Σ ∂L/∂out otherwise
    (the authors' h_k · op_k(x) + Σ_{j≠k} h_j), p the Gumbel-softmax probabilities, in float64."""
    torch.manual_seed(0)
    edge = MixedEdge(3, 1, PRIMITIVES).double()
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    upstream = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    alpha = torch.tensor([[0.1, 0.4, -0.3, 0.2]], dtype=torch.float64, requires_grad=True)
    weights, sampled = gumbel_straight_through(alpha, 0.7, torch.Generator().manual_seed(3))
    k = sampled[0]
    (edge.pick(EdgeInput(x), weights[0], k) * upstream).sum().backward()

    noise = -torch.empty(1, 4, dtype=torch.float64).exponential_(generator=torch.Generator().manual_seed(3)).log()
    jacobian = torch.autograd.functional.jacobian(
        lambda a: torch.softmax((torch.log_softmax(a, -1) + noise) / 0.7, -1).flatten(), alpha.detach()
    ).reshape(4, 4)
    with torch.no_grad():
        g = torch.full((4,), upstream.sum().item(), dtype=torch.float64)
        g[k] = (edge.ops[k](x) * upstream).sum()
    torch.testing.assert_close(alpha.grad.flatten(), jacobian.T @ g, rtol=1e-10, atol=1e-12)
    assert alpha.grad.abs().sum() > 0


def make_strategy(config: SearchConfig):
    strategy_cls = strategy_class("gdas")
    torch.manual_seed(0)
    cell = config.cell
    network = SearchNetwork(cell.init_channels, 3, cell.layers, primitives=cell.primitives, nodes=cell.nodes,
                            **strategy_cls.network_options(config))
    return strategy_cls(network, config, F.cross_entropy)


def test_derivation_and_logs_read_softmax_alpha_not_the_sample():
    config = SearchConfig(method="gdas", epochs=2,
                          cell={"init_channels": 4, "layers": 2, "nodes": 2, "primitives": list(PRIMITIVES)})
    network = make_strategy(config).network
    with torch.no_grad():
        network.alpha_normal.normal_()
    network.train()
    network(torch.randn(2, 3, 8, 8))  # draws a sample; reading α must not depend on it
    weights = network.relaxed_weights()
    torch.testing.assert_close(weights["normal"], torch.softmax(network.alpha_normal, -1))
    expected = derive_genotype(torch.softmax(network.alpha_normal, -1).detach(),
                               torch.softmax(network.alpha_reduce, -1).detach(), primitives=network.primitives)
    assert network.genotype() == expected


def test_evaluation_runs_argmax_alpha_and_draws_no_noise():
    config = SearchConfig(method="gdas", epochs=2,
                          cell={"init_channels": 4, "layers": 2, "nodes": 2, "primitives": list(PRIMITIVES)})
    strategy = make_strategy(config)
    network = strategy.network.eval()
    state = strategy.generator.get_state()
    out = network.relaxation.forward(network.alpha_normal, training=False)
    assert out.sampled == network.alpha_normal.argmax(-1).tolist()
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(network(x), network(x))
    assert torch.equal(strategy.generator.get_state(), state)


def test_authors_defaults_and_bad_input():
    c = SearchConfig(method="gdas")
    assert (c.epochs, c.batch_size, c.sgd.lr, c.sgd.lr_min, c.sgd.weight_decay) == (250, 256, 0.025, 0.001, 5e-4)
    assert (c.arch_lr, tuple(c.arch_betas), c.arch_weight_decay, c.order) == (3e-4, (0.5, 0.999), 1e-3, "first")
    assert (c.gdas.tau_max, c.gdas.tau_min) == (10.0, 0.1)
    with pytest.raises(LtnasError, match="first order only"):
        validate_config({"search": {"method": "gdas", "order": "second"}})
    with pytest.raises(LtnasError, match="tau_min"):
        validate_config({"search": {"method": "gdas", "gdas": {"tau_min": 20}}})


def search_outcome(folder):
    state = torch.load(folder / "search" / "checkpoint.pt", weights_only=False)["task"]["strategy"]
    return (JsonlLog(folder / "search" / "alpha.jsonl").rows(),
            json.loads((folder / "search" / "genotype.json").read_text()),
            [state["network"]["alpha_normal"], state["network"]["alpha_reduce"]])


def test_search_with_long_tail_plug_ins_resumes_to_the_same_alpha(tiny_run, tmp_path, monkeypatch):
    """A GDAS search with focal loss, class-balanced re-weighting and the logit-adjusted α objective, killed
    after its second epoch and resumed, draws the same samples and ends with the same α."""
    tiny_run["search"].update(method="gdas", epochs=3, arch_objective="logit_adjusted",
                              longtail={"loss": "focal", "reweight": "class_balanced"})
    config = validate_config(tiny_run)
    pipeline.search_only(config, RunFolder.create(tmp_path / "whole", config))
    whole = search_outcome(tmp_path / "whole")
    row = JsonlLog(tmp_path / "whole" / "search" / "alpha.jsonl").rows()[0]
    assert (row["relaxation"], row["weights"]) == ("gumbel", "softmax(α)")  # the expected weights, not the sample

    search_killed_and_resumed(config, tmp_path / "killed", monkeypatch, after_epoch=1)
    resumed = search_outcome(tmp_path / "killed")
    assert resumed[0] == whole[0] and resumed[1] == whole[1]
    assert all(torch.equal(a, b) for a, b in zip(resumed[2], whole[2]))


def test_compare_runs_pcdarts_and_gdas_side_by_side(tiny_yaml, tmp_path):
    from test_cli import call

    out = tmp_path / "compare"
    code, stdout, stderr = call(["compare", str(tiny_yaml), "--methods", "pcdarts,gdas", "--out", str(out),
                                 "--set", "search.epochs=1", "--set", "train.epochs=1",
                                 "--set", "search.pcdarts.arch_start_epoch=0"])
    assert code == 0, stderr
    assert "PC-DARTS" in stdout and "GDAS" in stdout
    for member in ("pc-darts", "gdas"):
        assert (out / member / "seed_0" / "eval.json").is_file()
