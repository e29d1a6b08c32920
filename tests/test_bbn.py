"""BBN two-branch DARTS with heterogeneous LR scheduling (HLS (Tang, 2024)): schedules, Theorem 1, HLS,
the class-balanced sampler, the run end to end, resume, the μ sweep, and bad input."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from torch.func import functional_call

from conftest import TINY_RUN
from ltnas import pipeline
from ltnas.config import validate_config
from ltnas.data import DeviceBatches, ImageSet, longtail_counts
from ltnas.errors import LtnasError
from ltnas.metrics import classification_metrics
from ltnas.runs import RunFolder
from ltnas.search import hls_factor, mixing_ratio
from ltnas.search.bbn import BbnSearch, TwoBranchSearchNetwork, bbn_loss, mixed_loss
from ltnas.search.darts import gradients
from ltnas.search.bbn_task import BbnSearchTask, mixed_metrics
from ltnas.stages.context import Context
from ltnas.space import Genotype
from ltnas.stages.bbn import build_two_branch_network, search_two_branch
from ltnas.train.loop import JsonlLog

PRIMITIVES_SMALL = ("none", "skip_connect", "sep_conv_3x3", "avg_pool_3x3")


def bbn_config(**bbn) -> dict:
    raw = copy.deepcopy(TINY_RUN)
    # a smaller space and one step per epoch keep the run to seconds; the code path is the paper-scale one
    raw["search"].update(method="bbn", epochs=2, batch_size=32, arch_lr=0.003, bbn=bbn)
    raw["search"]["sgd"]["lr"] = 0.05
    raw["search"]["cell"]["primitives"] = list(PRIMITIVES_SMALL)
    raw["data"]["val_fraction"] = 0.2
    return raw


@pytest.fixture
def float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def tiny_strategy(**bbn) -> BbnSearch:
    config = validate_config(bbn_config(**bbn))
    torch.manual_seed(0)
    network = TwoBranchSearchNetwork(2, 3, 3, primitives=PRIMITIVES_SMALL)
    return BbnSearch(network, config.search)


# --- the space seam ----------------------------------------------------------------------------------
def test_two_branch_network_takes_the_space_seam_of_the_single_branch_supernet():
    """A mixing with its own architecture parameters (PC-DARTS' partial channels and β) and a sampling
    relaxation (GDAS) shape every cell of the two-branch network, backbone and heads alike."""
    from ltnas.search.gdas import GumbelRelaxation
    from ltnas.search.pcdarts import PartialChannelMixing, PartialMixedEdge, node_softmax

    torch.manual_seed(0)
    network = TwoBranchSearchNetwork(4, 3, 3, primitives=PRIMITIVES_SMALL, nodes=2, mixing=PartialChannelMixing(2))
    assert all(isinstance(edge, PartialMixedEdge) for cell in [*network.cells, network.heads["balanced"].cell]
               for edge in cell.edges)
    groups = network.arch_groups()
    assert [len(group) for group in groups.values()] == [4, 2, 2]  # α and β of each cell type
    assert groups["instance"][1] is network.beta_head_instance
    read = network.relaxed_weights()["head_instance"]
    expected = torch.softmax(network.alpha_head_instance, -1) * node_softmax(network.beta_head_instance, 2)[:, None]
    torch.testing.assert_close(read, expected)
    assert network.read_symbol == "softmax(α)·β̂"
    o_ins, o_cls = network.branch_logits(torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8))
    (o_ins.sum() + o_cls.sum()).backward()
    assert all(p.grad is not None for p in network.arch_parameters())  # β reaches the loss too

    gumbel = TwoBranchSearchNetwork(4, 3, 3, primitives=PRIMITIVES_SMALL, nodes=2, relaxation=GumbelRelaxation(1.0))
    forward = gumbel.forward_weights()
    assert all(len(forward[cell].sampled) == 5 for cell in ("normal", "head_balanced"))  # one op per edge
    assert gumbel(torch.randn(2, 3, 8, 8)).shape == (2, 3)


# --- schedules and the HLS factor -----------------------------------------------------------------
@pytest.mark.parametrize("schedule,params,start,middle,end", [
    ("parabolic", {}, 1.0, 0.75, 0.0),
    ("reverse_sigmoid", {"k": 10.0}, 1 - 1 / (1 + math.exp(10)), 0.5, 1 - 1 / (1 + math.exp(-10))),
    ("reverse_sigmoid", {"k": 2.0}, 1 - 1 / (1 + math.exp(2)), 0.5, 1 - 1 / (1 + math.exp(-2))),
    ("linear", {}, 1.0, 0.5, 0.0),
    ("cosine", {}, 1.0, 0.5, 0.0),
    ("constant", {"mu": 0.3}, 0.3, 0.3, 0.3),
])
def test_schedules_at_their_end_points_and_midpoint(schedule, params, start, middle, end):
    assert mixing_ratio(schedule, 0, 50, **params) == pytest.approx(start)
    assert mixing_ratio(schedule, 25, 50, **params) == pytest.approx(middle)
    assert mixing_ratio(schedule, 50, 50, **params) == pytest.approx(end, abs=1e-12)


def test_parabolic_schedule_matches_bbn_at_every_epoch():
    assert [mixing_ratio("parabolic", t, 4) for t in range(4)] == [1.0, 1 - 1 / 16, 1 - 4 / 16, 1 - 9 / 16]


@pytest.mark.parametrize("count,first,last", [
    ("from_zero", 1.0, 1 - (49 / 50) ** 2),   # BBN's code: t = 0 … T − 1, μ ends at 0.0396
    ("from_one", 1 - (1 / 50) ** 2, 0.0),     # HLS (Tang, 2024), Algorithm 1: t = 1 … T, μ = 0 in the last epoch
])
def test_mu_at_the_first_and_last_search_epoch_under_each_epoch_count(count, first, last):
    config = validate_config(bbn_config(epoch_count=count, continued="mu_half"))
    config.search.epochs = 50
    strategy = BbnSearch(TwoBranchSearchNetwork(2, 3, 3, primitives=PRIMITIVES_SMALL), config.search)
    assert strategy.mixing_ratio(0) == pytest.approx(first, abs=1e-15)
    assert strategy.mixing_ratio(49) == pytest.approx(last, abs=1e-15)
    assert strategy.mixing_ratio(50) == 0.5  # continued training keeps its constant μ
    strategy.set_epoch(49)
    assert strategy.mu == pytest.approx(last, abs=1e-15)
    expected_backbone = 0.0 if count == "from_one" else hls_factor(last, 10.0)  # HLS: 1 − exp(−τ μ)
    assert strategy.hls == pytest.approx(expected_backbone)
    assert round(last, 2) == (0.04 if count == "from_zero" else 0.0)
    # the logged t, from which the report draws Fig. 5 and says how t was counted
    assert strategy.epoch_summary()["mu_t"] == (50 if count == "from_one" else 49)


def test_hls_factor_against_hand_computation():
    assert hls_factor(0.0, 10.0) == 0.0
    assert hls_factor(0.5, 2.0) == pytest.approx(1 - math.exp(-1))
    assert hls_factor(1.0, 10.0) == pytest.approx(1 - math.exp(-10))


@pytest.mark.parametrize("call", [
    lambda: mixing_ratio("sawtooth", 0, 10),
    lambda: mixing_ratio("constant", 0, 10, mu=1.5),
    lambda: mixing_ratio("parabolic", 0, 10, k=3.0),
    lambda: mixing_ratio("parabolic", 0, 0),
    lambda: hls_factor(0.5, 0.0),
])
def test_bad_schedule_input_is_one_clear_error(call):
    with pytest.raises(LtnasError):
        call()


# --- Theorem 1 ------------------------------------------------------------------------------------
def _alpha_grads(strategy: BbnSearch, batch, mu: float) -> dict[str, list[torch.Tensor]]:
    strategy.mu = mu
    return strategy.arch_gradients(batch, batch)


def test_head_alpha_gradients_scale_with_mu_while_the_backbone_gradient_does_not():
    """HLS (Tang, 2024), Theorem 1, on a network whose two heads are identical and see the same batch: then
    o_ins = o_cls, the loss is the same function for every μ, ∇α_ins = μ g, ∇α_cls = (1 − μ) g, and the
    backbone's α gradient does not depend on μ at all."""
    strategy = tiny_strategy()
    network = strategy.network
    network.heads["balanced"].load_state_dict(network.heads["instance"].state_dict())
    with torch.no_grad():
        network.alpha_head_balanced.copy_(network.alpha_head_instance)
    batch = (torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]))
    at_one, at_zero = _alpha_grads(strategy, batch, 1.0), _alpha_grads(strategy, batch, 0.0)
    head = at_one["instance"][0]
    assert head.abs().sum() > 0 and torch.allclose(at_zero["balanced"][0], head, atol=1e-7)
    for mu in (0.2, 0.7):
        grads = _alpha_grads(strategy, batch, mu)
        assert torch.allclose(grads["instance"][0], mu * head, rtol=1e-4, atol=1e-8)
        assert torch.allclose(grads["balanced"][0], (1 - mu) * head, rtol=1e-4, atol=1e-8)
        for got, reference in zip(grads["backbone"], at_one["backbone"]):
            assert reference.abs().sum() > 0 and torch.allclose(got, reference, rtol=1e-4, atol=1e-8)


def _identical_heads(strategy: BbnSearch) -> BbnSearch:
    network = strategy.network
    network.heads["balanced"].load_state_dict(network.heads["instance"].state_dict())
    with torch.no_grad():
        network.alpha_head_balanced.copy_(network.alpha_head_instance)
    return strategy


def _alpha_steps(strategy: BbnSearch, batch, mu: float) -> dict[str, torch.Tensor]:
    """Δα of each component after one α step at μ, from the strategy's current state (left unchanged)."""
    trial = copy.deepcopy(strategy)
    trial.mu = mu
    before = {c: torch.cat([a.detach().flatten() for a in g]) for c, g in trial.alpha_groups.items()}
    trial.arch_step(batch, batch)
    return {c: torch.cat([a.detach().flatten() for a in g]) - before[c] for c, g in trial.alpha_groups.items()}


def test_head_alpha_updates_scale_with_mu_under_the_default_sgd_but_not_under_adam():
    """HLS (Tang, 2024), Theorem 1, holds for the *updates* only if the α optimizer passes the gradient's scale
    through: under SGD Δα_ins = −ξ (μ g + wd α) and Δα_cls = −ξ ((1 − μ) g + wd α); Adam's first step is
    −ξ·sign(g) whatever μ. The default is SGD (momentum 0.9)."""
    assert validate_config(bbn_config()).search.bbn.arch_optimizer == "sgd"
    strategy = _identical_heads(tiny_strategy())
    assert all(type(o) is torch.optim.SGD and o.param_groups[0]["momentum"] == 0.9
               for o in strategy.a_optimizers.values())
    lr, decay = strategy.a_optimizers["instance"].param_groups[0]["lr"], strategy.config.arch_weight_decay
    alpha = strategy.network.alpha_head_instance.detach().flatten()
    batch = (torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]))
    g = torch.cat([t.flatten() for t in _alpha_grads(copy.deepcopy(strategy), batch, 1.0)["instance"]])
    assert g.abs().max() > 0
    reference = _alpha_steps(strategy, batch, 1.0)
    for mu in (0.04, 0.3, 0.7):
        steps = _alpha_steps(strategy, batch, mu)
        torch.testing.assert_close(steps["instance"], -lr * (mu * g + decay * alpha), rtol=1e-4, atol=1e-9)
        torch.testing.assert_close(steps["balanced"], -lr * ((1 - mu) * g + decay * alpha), rtol=1e-4, atol=1e-9)
        # the backbone's step does not shrink with μ (Theorem 1's other half; HLS exists for it)
        torch.testing.assert_close(steps["backbone"], reference["backbone"], rtol=1e-3, atol=1e-9)

    adam = _identical_heads(tiny_strategy(arch_optimizer="adam"))
    assert all(type(o) is torch.optim.Adam for o in adam.a_optimizers.values())
    at_one, at_small = _alpha_steps(adam, batch, 1.0), _alpha_steps(adam, batch, 0.04)
    ratio = at_small["instance"].norm() / at_one["instance"].norm()
    assert ratio > 0.5  # not 0.04: Adam normalises μ away, the reason SGD is the default


def test_logged_alpha_gradient_norms_scale_with_mu_for_the_heads_and_not_for_the_backbone():
    """Theorem 1 as the search logs it (`gradient_norms`, one α step per μ, identical heads on one batch):
    ‖∇α_ins‖ = μ‖g‖, ‖∇α_cls‖ = (1 − μ)‖g‖, ‖∇α_bb‖ the same at every μ."""
    strategy = _identical_heads(tiny_strategy())
    batch = (torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]))
    logged = {}
    for mu in (1.0, 0.75, 0.3):
        trial = copy.deepcopy(strategy)
        trial.set_epoch(0)
        assert set(trial.gradient_norms().values()) == {None}  # nothing logged before a step
        trial.mu = mu
        trial.arch_step(batch, batch)
        logged[mu] = trial.gradient_norms()
    g = logged[1.0]["alpha_grad_norm_instance"]
    assert g > 0 and logged[1.0]["alpha_grad_norm_balanced"] == pytest.approx(0.0, abs=1e-12)
    for mu in (0.75, 0.3):
        assert logged[mu]["alpha_grad_norm_instance"] == pytest.approx(mu * g, rel=1e-4)
        assert logged[mu]["alpha_grad_norm_balanced"] == pytest.approx((1 - mu) * g, rel=1e-4)
        assert logged[mu]["alpha_grad_norm_backbone"] == pytest.approx(logged[1.0]["alpha_grad_norm_backbone"],
                                                                       rel=1e-4)
    trial.arch_step(batch, batch)  # a second step at μ = 0.3: the log is the mean of the epoch's steps
    assert trial.gradient_norms()["alpha_grad_norm_instance"] == pytest.approx(0.3 * g, rel=1e-4)


# --- the unrolled (second-order) α gradient of Algorithm 1 ------------------------------------------------
def _second_order_strategy(**bbn) -> tuple[BbnSearch, tuple, tuple, tuple, tuple]:
    raw = bbn_config(**bbn)
    raw["search"]["order"] = "second"
    raw["search"]["hvp_radius"] = 1e-5
    raw["search"]["sgd"]["weight_decay"] = 0.01
    config = validate_config(raw)
    torch.manual_seed(0)
    network = TwoBranchSearchNetwork(2, 3, 3, in_channels=1, primitives=PRIMITIVES_SMALL, nodes=2,
                                     alpha_init_std=0.5)
    batches = [(torch.randn(5, 1, 8, 8), torch.randint(0, 3, (5,))) for _ in range(4)]
    return (BbnSearch(network, config.search), *batches)


def test_unrolled_alpha_gradient_equals_the_exact_derivative_through_the_virtual_step(float64):
    """∇α L_val(w − ξ_w (momentum·buf + ∇w L_train + wd·w), α) by double back-propagation, against the search's
    finite-difference one, with the backbone's weights at another ξ than the heads' (HLS scaling them)."""
    strategy, train_ins, train_cls, val_ins, val_cls = _second_order_strategy()
    strategy.mu = 0.6
    strategy.weight_step(train_ins, train_cls)  # momentum buffers enter w'
    groups = strategy.w_optimizer.param_groups
    groups[0]["lr"], groups[1]["lr"] = 0.03, 0.1
    network = strategy.network
    alphas = network.arch_parameters()

    grads = torch.autograd.grad(strategy.loss(train_ins, train_cls)[0], strategy.weights, create_graph=True)
    names = {id(p): name for name, p in network.named_parameters()}
    unrolled = {}
    for group in groups:
        for w in group["params"]:
            g = grads[[id(x) for x in strategy.weights].index(id(w))]
            buf = strategy.w_optimizer.state[w]["momentum_buffer"]
            unrolled[names[id(w)]] = w - group["lr"] * (group["momentum"] * buf + g + group["weight_decay"] * w)
    buffers = {name: b.clone() for name, b in network.named_buffers()}
    mixed = functional_call(network, {**unrolled, **buffers}, (val_ins[0],), {"mu": 0.6, "x_cls": val_cls[0]})
    exact = torch.autograd.grad(mixed_loss(mixed, val_ins[1], val_cls[1], 0.6), alphas)

    found = strategy.arch_gradients(val_ins, val_cls, train_ins, train_cls)
    found = [g for component in found.values() for g in component]
    first_order = gradients(strategy.loss(val_ins, val_cls)[0], alphas)
    for got, want, first in zip(found, exact, first_order):
        assert (got - want).norm() / want.norm() < 1e-5
    difference = torch.cat([(w - f).flatten() for w, f in zip(exact, first_order)]).norm()
    assert difference / torch.cat([w.flatten() for w in exact]).norm() > 1e-3  # the unrolled term matters


def test_unrolled_alpha_gradient_at_zero_learning_rate_is_the_first_order_one(float64):
    strategy, train_ins, train_cls, val_ins, val_cls = _second_order_strategy()
    strategy.mu = 0.4
    for group in strategy.w_optimizer.param_groups:
        group["lr"] = 0.0  # w' = w: nothing to unroll
    first = {c: [g.clone() for g in grads] for c, grads in strategy.arch_gradients(val_ins, val_cls).items()}
    before = [w.detach().clone() for w in strategy.weights]
    second = strategy.arch_gradients(val_ins, val_cls, train_ins, train_cls)
    for component in first:
        for a, b in zip(first[component], second[component]):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)
    assert all(torch.equal(w, b) for w, b in zip(strategy.weights, before))  # the weights are where they were


def test_second_order_bbn_run_finishes(tmp_path):
    raw = bbn_config()
    raw["search"]["order"] = "second"
    raw["search"]["epochs"] = 1
    config = validate_config(raw)
    results = pipeline.run_all(config, RunFolder.create(tmp_path / "run", config))
    assert 0.0 <= results["balanced_test"]["overall"] <= 1.0
    rows = JsonlLog(tmp_path / "run" / "search" / "metrics.jsonl").rows()
    assert all(rows[0][f"alpha_grad_norm_{c}"] > 0 for c in ("backbone", "instance"))


def test_a_head_out_of_the_mix_gets_no_gradient_but_the_backbone_still_does():
    strategy = tiny_strategy()
    ins = (torch.randn(6, 3, 8, 8), torch.tensor([0, 0, 0, 0, 1, 2]))
    cls = (torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]))
    for mu, silent, active in ((0.0, "instance", "balanced"), (1.0, "balanced", "instance")):
        strategy.mu = mu
        grads = strategy.arch_gradients(ins, cls)
        assert torch.count_nonzero(grads[silent][0]) == 0
        assert grads[active][0].abs().sum() > 0
        assert all(g.abs().sum() > 0 for g in grads["backbone"])


def test_bbn_loss_is_algorithm_1_line_11():
    o_ins, o_cls = torch.randn(4, 3), torch.randn(4, 3)
    y_ins, y_cls = torch.tensor([0, 1, 2, 0]), torch.tensor([2, 2, 1, 0])
    mixed = 0.3 * o_ins + 0.7 * o_cls
    log_p = mixed.log_softmax(1)
    expected = -(0.3 * log_p[range(4), y_ins].mean() + 0.7 * log_p[range(4), y_cls].mean())
    assert bbn_loss(o_ins, o_cls, y_ins, y_cls, 0.3).item() == pytest.approx(expected.item(), rel=1e-6)


# --- HLS reaches the backbone α group only --------------------------------------------------------
def _arch_lrs(strategy: BbnSearch) -> dict[str, float]:
    return {c: o.param_groups[0]["lr"] for c, o in strategy.a_optimizers.items()}


def test_hls_scales_only_the_backbone_alpha_learning_rate():
    with_hls, without = tiny_strategy(hls=True, tau=3.0), tiny_strategy(hls=False)
    for epoch in (0, 1):
        with_hls.set_epoch(epoch)
        without.set_epoch(epoch)
        factor = hls_factor(mixing_ratio("parabolic", epoch, 2), 3.0)
        plain, scaled = _arch_lrs(without), _arch_lrs(with_hls)
        assert plain["backbone"] == plain["instance"] == plain["balanced"]
        assert scaled["instance"] == scaled["balanced"] == plain["instance"]
        assert scaled["backbone"] == pytest.approx(factor * plain["backbone"])
        # weights: unscaled unless scale_weight_lr asks for it
        assert [g["lr"] for g in with_hls.w_optimizer.param_groups] == [g["lr"] for g in without.w_optimizer.param_groups]
    weights_too = tiny_strategy(hls=True, tau=3.0, scale_weight_lr=True)
    weights_too.set_epoch(1)
    backbone, heads = (g["lr"] for g in weights_too.w_optimizer.param_groups)
    assert backbone == pytest.approx(hls_factor(0.75, 3.0) * heads)


def test_each_alpha_component_has_its_own_optimizer_and_no_alpha_reaches_the_weights():
    strategy = tiny_strategy()
    network = strategy.network
    owners = {id(p): c for c, o in strategy.a_optimizers.items() for g in o.param_groups for p in g["params"]}
    assert owners == {id(network.alpha_normal): "backbone", id(network.alpha_reduce): "backbone",
                      id(network.alpha_head_instance): "instance", id(network.alpha_head_balanced): "balanced"}
    weight_ids = {id(p) for g in strategy.w_optimizer.param_groups for p in g["params"]}
    assert not weight_ids & set(owners) and weight_ids == {id(p) for p in network.parameters()}


def test_a_stopped_backbone_keeps_its_alpha_while_the_heads_move():
    strategy = tiny_strategy(continued="frozen_backbone", continued_epochs=1)
    strategy.set_epoch(2)  # the continued epoch: μ = 0, backbone frozen
    assert strategy.mu == 0.0 and strategy.backbone_frozen
    network = strategy.network
    before = {name: p.detach().clone() for name, p in network.state_dict().items()}
    batch = (torch.randn(6, 3, 8, 8), torch.tensor([0, 1, 2, 0, 1, 2]))
    strategy.step(batch, batch, batch, batch)
    after = network.state_dict()
    backbone = [n for n in before if n.startswith(("stem", "cells", "alpha_normal", "alpha_reduce"))]
    assert all(torch.equal(before[n], after[n]) for n in backbone)
    assert not torch.equal(before["alpha_head_balanced"], after["alpha_head_balanced"])
    assert not torch.equal(before["heads.balanced.classifier.weight"], after["heads.balanced.classifier.weight"])


# --- the re-balancing samplers --------------------------------------------------------------------
def test_class_balanced_sampler_is_near_uniform_over_classes_on_a_ratio_50_set():
    counts = longtail_counts(500, 10, "exp", ratio=50)
    assert counts[0] / counts[-1] == 50
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    images = ImageSet(torch.zeros(len(labels), 1, 1, 1, dtype=torch.uint8), labels)
    drawn = {}
    for sampler in ("instance", "class_balanced"):
        batches = DeviceBatches(images, 128, device="cpu", mean=[0.0], std=[1.0], sampler=sampler,
                                generator=torch.Generator().manual_seed(0))
        drawn[sampler] = torch.cat([y for _ in range(10) for _, y in batches])
    balanced = torch.bincount(drawn["class_balanced"], minlength=10).double() / len(drawn["class_balanced"])
    assert torch.all((balanced - 0.1).abs() < 0.01), balanced
    natural = torch.bincount(drawn["instance"], minlength=10).double() / len(drawn["instance"])
    assert natural[0] > 20 * natural[-1]  # the instance sampler keeps the long tail


def test_bbn_search_re_samples_with_bbns_reversed_sampler_by_default(monkeypatch, tmp_path):
    """BBN's own re-balancing branch draws class c ∝ 1/n_c ("reverse"); class_balanced is the named alternative."""
    from ltnas.config import BbnConfig
    from ltnas.stages import bbn as stage

    assert BbnConfig().resampler == "reversed"
    made = {}

    batches = Context.batches

    def recorder(self, *args, sampler="instance", **kwargs):  # every training stream is built by Context.batches
        made.setdefault(sampler, 0)
        made[sampler] += 1
        return batches(self, *args, sampler=sampler, **kwargs)

    monkeypatch.setattr(Context, "batches", recorder)
    monkeypatch.setattr(Context, "fit", lambda *args, **kwargs: None)
    for resampler in ("reversed", "class_balanced"):
        made.clear()
        config = validate_config(bbn_config(resampler=resampler))
        stage.search_two_branch(Context.prepare(config, RunFolder.create(tmp_path / resampler, config)))
        assert made == {"instance": 2, resampler: 2}  # train and val: one instance and one re-balancing stream


# --- the run end to end ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bbn_run(tmp_path_factory) -> Path:
    raw = bbn_config(continued="mu_half", continued_epochs=1, mu_sweep=[0, 0.5, 1])
    raw["eval"] = {**raw.get("eval", {}), "many_shot": 40, "few_shot": 6}  # not the defaults: eval.json must follow
    config = validate_config(raw)
    folder = tmp_path_factory.mktemp("bbn") / "run"
    pipeline.run_all(config, RunFolder.create(folder, config))
    return folder


def test_bbn_run_writes_eval_json_in_the_pipeline_schema(bbn_run):
    evaluation = json.loads((bbn_run / "eval.json").read_text())
    for name in ("balanced_test", "longtail_test"):
        metrics = evaluation[name]
        assert {"overall", "balanced", "many", "medium", "few", "per_class", "confusion"} <= set(metrics)
    assert evaluation["balanced_test"]["num_samples"] == 40
    for name in ("balanced_test", "longtail_test"):  # the run's eval.many_shot / eval.few_shot, as every stage
        assert evaluation[name]["shot_thresholds"] == {"many": 40, "few": 6}
    assert evaluation["mu_test"] == 0.5 and evaluation["genotype"] == "searched"
    assert evaluation["params"] > 0 and evaluation["device"] == "cpu"
    assert evaluation["seconds"]["search"] > 0 and evaluation["seconds"]["train"] is None
    assert evaluation["mu_selected_on_val"]["mu"] in (0, 0.5, 1)
    peak = evaluation["peak_memory"]  # beside the wall time, for every run (ltnas/memory.py)
    assert peak["cpu_rss_bytes"] > 2 ** 20 and peak["cuda_allocated_bytes"] is None
    assert "Peak memory" in (bbn_run / "report.md").read_text()


def test_bbn_run_logs_mu_and_learning_rates_per_epoch_with_continued_training(bbn_run):
    rows = JsonlLog(bbn_run / "search" / "metrics.jsonl").rows()
    assert [row["mu"] for row in rows] == [1.0, 0.75, 0.5]  # parabolic over 2 epochs, then continued at 0.5
    assert rows[1]["arch_lr_backbone"] == pytest.approx(hls_factor(0.75, 10.0) * rows[1]["arch_lr_instance"])
    assert rows[2]["lr"] == pytest.approx(0.002)  # continued_lr
    alpha = JsonlLog(bbn_run / "search" / "alpha.jsonl").rows()
    assert len(alpha) == 3
    assert {"normal", "reduce", "head_instance", "head_balanced"} <= set(alpha[-1])


def test_bbn_genotype_has_backbone_and_both_head_cells_and_is_drawn(bbn_run):
    genotype = json.loads((bbn_run / "search" / "genotype.json").read_text())
    backbone = Genotype.from_dict(genotype)  # the backbone part is an ordinary genotype
    assert len(backbone.normal) == len(backbone.reduce) == 8
    for head in ("head_instance", "head_balanced"):
        assert len(genotype[head]) == 8 and genotype[f"{head}_concat"] == [2, 3, 4, 5]
    report = (bbn_run / "report.md").read_text()
    assert "Class-balanced head cell" in report and "Accuracy against the mixing ratio" in report
    for plot in ("search_genotype", "alpha_history", "alpha_heatmap", "mu_sweep", "mu_losses", "hls_schedule",
                 "alpha_grad_norms"):
        assert (bbn_run / "plots" / f"{plot}.png").is_file()
    # HLS (Tang, 2024) Fig. 2 (loss and μ), Fig. 5 (μ and the HLS factor) and Theorem 1 (α-gradient norms)
    assert "## Two-branch search: mixing ratio, HLS factor, α gradients" in report
    assert "counts t from 0" in report and "μ = 1.0000 in the first epoch, 0.5000 in the last" in report
    for caption in ("(HLS paper, Fig. 2)", "(HLS paper, Fig. 5)", "(HLS paper, Theorem 1)"):
        assert caption in report
    rows = JsonlLog(bbn_run / "search" / "metrics.jsonl").rows()
    assert all(row["alpha_grad_norm_backbone"] > 0 and row["alpha_grad_norm_instance"] > 0 for row in rows)


def test_bbn_eval_shows_accuracy_at_mu_chosen_on_val_at_zero_and_at_the_best_test_mu(bbn_run, tmp_path):
    """HLS (Tang, 2024) publishes Table II at the best test μ and finds accuracy best at μ = 0: eval.json, the
    run's report and the comparison table show those beside μ_test and the μ chosen on validation."""
    from ltnas.report.comparison import aggregate, comparison_markdown, table_rows

    evaluation = json.loads((bbn_run / "eval.json").read_text())
    sweep = json.loads((bbn_run / "mu_sweep.json").read_text())
    rows = {row["mu"]: row for row in sweep["rows"]}  # μ ∈ {0, 0.5, 1}
    assert evaluation["mu_zero"]["mu"] == 0.0
    for name in ("balanced_test", "longtail_test"):
        assert evaluation["mu_zero"][name] == rows[0][name]
        assert evaluation["mu_selected_on_val"][name] == rows[evaluation["mu_selected_on_val"]["mu"]][name]
    best = evaluation["mu_best_on_test"]
    assert best["mu"] == sweep["mu_best_on_test"]
    assert best["balanced_test"]["overall"] == max(row["balanced_test"]["overall"] for row in rows.values())
    assert best["balanced_test"]["overall"] >= evaluation["balanced_test"]["overall"]

    report = (bbn_run / "report.md").read_text()
    assert "chosen on validation" in report and "μ = 0 (class-balanced head)" in report
    assert "best on test (the HLS paper's protocol, optimistic)" in report

    darts = tmp_path / "darts"  # a row without a two-branch network: its μ columns stay empty
    darts.mkdir()
    (darts / "eval.json").write_text(json.dumps({key: evaluation[key] for key in ("balanced_test", "longtail_test")}))
    result = {"title": "t", "seeds": [0], "published": None, "runs": {"HLS": ["hls"], "DARTS": ["darts"]},
              "variants": aggregate([("HLS", 0, bbn_run), ("DARTS", 0, darts)])}
    header, table = table_rows(result)
    columns = {title: header.index(title) for title in
               ("balanced test, μ val", "balanced test, μ = 0", "balanced test, best test μ")}
    hls, plain = table
    assert hls[columns["balanced test, μ = 0"]] == f"{100 * rows[0]['balanced_test']['overall']:.2f}"
    assert hls[columns["balanced test, best test μ"]] == f"{100 * best['balanced_test']['overall']:.2f}"
    assert all(plain[index] == "—" for index in columns.values())
    assert "HLS paper's Table II protocol" in comparison_markdown(result, set())


def test_mu_sweep_endpoints_equal_each_head_alone(bbn_run):
    """μ_test = 1 is the instance head alone, 0 the class-balanced head alone, computed here without mixing."""
    from ltnas.evaluate import evaluation_batches

    run = RunFolder.open(bbn_run)
    ctx = Context.prepare(run.config(), run)
    network = build_two_branch_network(ctx.config, ctx.dataset.num_classes, ctx.dataset.channels)
    state = torch.load(bbn_run / "search" / "checkpoint.pt", weights_only=False)
    network.load_state_dict(state["task"]["strategy"]["network"])
    network.eval()
    data = ctx.dataset
    x, y = next(iter(evaluation_batches(data.test, data, "cpu", 1000)))
    with torch.no_grad():
        weights = network.relaxed_weights()
        states = network.backbone(x, weights)
        alone = {"instance": network.heads["instance"](*states, weights["head_instance"]),
                 "balanced": network.heads["balanced"](*states, weights["head_balanced"])}
    sweep = {row["mu"]: row for row in json.loads((bbn_run / "mu_sweep.json").read_text())["rows"]}
    for mu, head in ((1, "instance"), (0, "balanced")):
        expected = classification_metrics(alone[head].argmax(1), y, data.num_classes, data.train_counts)
        assert sweep[mu]["balanced_test"]["overall"] == expected["overall"]
        assert sweep[mu]["balanced_test"]["balanced"] == expected["balanced"]


def test_ltnas_eval_reevaluates_a_finished_bbn_run_to_the_same_numbers(bbn_run, capsys):
    from ltnas.cli import main

    before = json.loads((bbn_run / "eval.json").read_text())
    assert main(["eval", str(bbn_run)]) == 0, capsys.readouterr().err
    after = json.loads((bbn_run / "eval.json").read_text())
    assert after["balanced_test"] == before["balanced_test"] and after["mu_selected_on_val"] == before["mu_selected_on_val"]


def test_mixed_metrics_at_the_end_points_are_the_heads_metrics():
    o_ins, o_cls = torch.randn(30, 4), torch.randn(30, 4)
    labels = torch.randint(0, 4, (30,))
    counts = [50, 20, 10, 5]
    for mu, head in ((1.0, o_ins), (0.0, o_cls)):
        got = mixed_metrics(o_ins, o_cls, labels, mu, 4, counts)
        want = classification_metrics(head.argmax(1), labels, 4, counts)
        assert got["per_class"] == want["per_class"] and got["overall"] == want["overall"]


class Killed(Exception):
    """Stands in for a kill: raised between an epoch's log row and its checkpoint."""


def test_bbn_search_resumed_after_interruption_equals_the_uninterrupted_run(bbn_run, tmp_path, monkeypatch):
    original = BbnSearchTask.after_epoch

    def interrupt(self, epoch, folder):
        original(self, epoch, folder)
        if epoch == 1:  # its metrics row and α are written, its checkpoint is not
            raise Killed

    def search(run: RunFolder) -> None:  # the search stage alone: the stage that resumes
        search_two_branch(Context.prepare(run.config(), run))

    monkeypatch.setattr(BbnSearchTask, "after_epoch", interrupt)
    config = RunFolder.open(bbn_run).config()
    folder = tmp_path / "run"
    with pytest.raises(Killed):
        search(RunFolder.create(folder, config))
    monkeypatch.setattr(BbnSearchTask, "after_epoch", original)
    assert len(JsonlLog(folder / "search" / "metrics.jsonl").rows()) == 2  # one row past the checkpoint
    search(RunFolder.open(folder))

    def outcome(path: Path) -> dict:
        rows = JsonlLog(path / "search" / "metrics.jsonl").rows()
        return {"rows": [{k: v for k, v in row.items() if k != "seconds"} for row in rows],
                "alpha": JsonlLog(path / "search" / "alpha.jsonl").rows(),
                "genotype": json.loads((path / "search" / "genotype.json").read_text()),
                "checkpoint": torch.load(path / "search" / "checkpoint.pt", weights_only=False)["task"]["strategy"]["network"]}

    resumed, uninterrupted = outcome(folder), outcome(bbn_run)
    assert resumed.pop("checkpoint").keys() == uninterrupted["checkpoint"].keys()
    network = uninterrupted.pop("checkpoint")
    assert resumed == uninterrupted
    final = torch.load(folder / "search" / "checkpoint.pt", weights_only=False)["task"]["strategy"]["network"]
    assert all(torch.equal(final[name], network[name]) for name in network)


# --- DARTS evaluated on its searched supernet (HLS (Tang, 2024)'s protocol for its DARTS rows) -------------
def test_darts_supernet_evaluation_skips_the_retrain(tmp_path):
    raw = copy.deepcopy(TINY_RUN)
    raw["search"].update(epochs=1, batch_size=32)
    raw["search"]["cell"]["primitives"] = list(PRIMITIVES_SMALL)
    raw["eval"] = {"model": "supernet"}
    config = validate_config(raw)
    results = pipeline.run_all(config, RunFolder.create(tmp_path / "run", config))
    assert results["model"] == "supernet" and results["seconds"]["train"] is None
    assert not (tmp_path / "run" / "train").exists()
    assert results["balanced_test"]["num_samples"] == 40
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["balanced_test"] == results["balanced_test"]
    from ltnas.cli import main

    assert main(["eval", str(tmp_path / "run")]) == 0  # re-evaluates the supernet, not a missing retrained model
    assert json.loads((tmp_path / "run" / "eval.json").read_text())["balanced_test"] == results["balanced_test"]


# --- bad input --------------------------------------------------------------------------------------
@pytest.mark.parametrize("change,words", [
    ({"search": {"bbn": {"epoch_count": "from_two"}}}, "search.bbn.epoch_count"),
    ({"search": {"longtail": {"sampler": "class_balanced"}}}, "leave search.longtail unset"),
    ({"search": {"bbn": {"schedule": "sawtooth"}}}, "search.bbn.schedule"),
    ({"search": {"bbn": {"mu_sweep": [0.5, 2]}}}, "mu_sweep"),
    ({"search": {"bbn": {"tua": 3}}}, "did you mean 'tau'"),
])
def test_bad_bbn_config_is_one_clear_error(change, words):
    raw = bbn_config()
    for section, values in change.items():
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(raw[section].get(key), dict):
                raw[section][key].update(value)
            else:
                raw[section][key] = value
    with pytest.raises(LtnasError, match=words.replace(".", r"\.").replace("(", r"\(")):
        validate_config(raw)


def test_bbn_refuses_to_pretend_it_retrains(tmp_path):
    raw = bbn_config()
    raw["eval"] = {"model": "retrained"}
    config = validate_config(raw)
    with pytest.raises(LtnasError, match="eval.model: supernet"):
        pipeline.run_all(config, RunFolder.create(tmp_path / "run", config))


# --- shipped configs --------------------------------------------------------------------------------
def test_paper_scale_hls_config_uses_the_paper_settings():
    from ltnas.cli import shipped_configs
    from ltnas.config import load_config

    config = load_config(shipped_configs()["hls_cifar10_lt"])
    data, search = config.data, config.search
    assert (data.source, data.profile, data.ratio, data.val_fraction) == ("cifar10", "exp", 100, 0.2)
    assert (search.method, search.cell.layers, search.batch_size, search.epochs) == ("bbn", 8, 128, 50)
    assert (search.sgd.lr, search.arch_lr, search.sgd.weight_decay) == (0.02, 0.02, 3e-4)
    assert (search.bbn.schedule, search.bbn.hls, search.bbn.mu_test) == ("parabolic", True, 0.5)
    assert config.eval.model == "supernet"


@pytest.mark.parametrize("name", ["hls_table2", "hls_table2_smoke"])
def test_table2_comparison_variants_are_valid_run_configs(name):
    import yaml

    from ltnas.cli import shipped_configs
    from ltnas.config import load_config

    compare = yaml.safe_load(shipped_configs()[name].read_text())["compare"]
    base = shipped_configs()[compare["base"]]
    configs = {variant: load_config(base, overrides) for variant, overrides in compare["variants"].items()}
    published = compare["published"]
    # the DARTS rows at their one network, the two-branch rows "at the best mixing ratio" (best test μ)
    assert published["values"] == {"DARTS": 64.56, "DARTS + re-sampling": 61.20}
    best_mu = published["metrics"]["mu_best_on_test.balanced_test.overall"]
    assert set(published["values"]) | set(best_mu) == set(configs) and best_mu["HLS"] == 65.12
    assert configs["DARTS"].search.method == "darts" and configs["DARTS"].search.longtail.sampler == "instance"
    assert configs["DARTS + re-sampling"].search.longtail.sampler == "class_balanced"
    assert not configs["DARTS + BBN"].search.bbn.hls and configs["HLS"].search.bbn.hls
    # the BBN rows re-sample the BBN way: class c ∝ 1/n_c
    assert all(configs[row].search.bbn.resampler == "reversed" for row in configs if row.startswith(("HLS", "DARTS + BBN")))
    assert configs["HLS + reverse sigmoid"].search.bbn.schedule == "reverse_sigmoid"
    assert configs["HLS + continued"].search.bbn.continued == "mu_half"
    # every row is evaluated the paper's way: on the searched network, never retrained
    assert all(config.eval.model == "supernet" for config in configs.values())
    assert len({(c.data.val_fraction, c.search.batch_size, c.search.sgd.lr) for c in configs.values()}) == 1


def test_fig6_and_continued_comparison_files_match_the_paper():
    """HLS (Tang, 2024) Fig. 6 is HLS against no HLS (not the weight-lr scaling); Fig. 8 / Section V-D the four
    continued-training scenarios beside the search without continuation; both on the paper's settings."""
    import yaml

    from ltnas.cli import shipped_configs
    from ltnas.config import load_config

    for name in ("hls_fig6", "hls_fig6_smoke", "hls_continued", "hls_continued_smoke"):
        compare = yaml.safe_load(shipped_configs()[name].read_text())["compare"]
        configs = {variant: load_config(shipped_configs()[compare["base"]], changes)
                   for variant, changes in compare["variants"].items()}
        assert all(c.search.method == "bbn" and c.search.bbn.epoch_count == "from_one" for c in configs.values())
        assert not any(c.search.bbn.scale_weight_lr for c in configs.values())
        if name.startswith("hls_fig6"):
            assert [c.search.bbn.hls for c in configs.values()] == [True, False]
        else:
            assert [(c.search.bbn.continued, c.search.bbn.schedule) for c in configs.values()] == [
                ("none", "parabolic"), ("mu_zero", "parabolic"), ("mu_half", "parabolic"), ("none", "reverse_sigmoid"),
                ("frozen_backbone", "parabolic")]
            assert compare["published"]["values"]["2. continued at μ = 0.5"] == 63.12
            assert compare["published"]["metric"] == "mu_best_on_test.balanced_test.overall"
        if not name.endswith("smoke"):
            assert compare["seeds"] == [0, 1, 2] and configs[next(iter(configs))].search.epochs == 50


def test_fig6_and_continued_smoke_comparisons_run_and_overlay_their_mu_sweeps(tmp_path):
    """`ltnas compare hls_fig6_smoke` and `hls_continued_smoke`: every variant's μ sweep on one plot (the figure),
    the runs' own μ, HLS and gradient-norm plots side by side. Fig. 6 runs on CIFAR-format files (the two-branch
    search's one run on 32×32 images); the continued-training file's five members on 8×8 synthetic images,
    long-tailed as the files' CIFAR-10-LT (exp profile, ratio 10): nothing asserted depends on the images."""
    from test_cli import call
    from test_data import make_cifar10

    from ltnas.report.comparison import mu_sweeps

    make_cifar10(tmp_path / "cifar", per_batch=4)  # 20 training images per class
    # seven two-branch runs: the cheapest operations and ten images in the largest class keep them to seconds
    small = ["--set", "data.n_max=10", "--set", "data.ratio=10",
             "--set", "search.epochs=1", "--set", "search.bbn.mu_sweep=[0,0.5,1]", "--set",
             "search.cell.primitives=[skip_connect,avg_pool_3x3]", "--set", "eval.batch_size=512", "--no-progress"]
    cifar = ["--set", f"data.root={tmp_path / 'cifar'}"]
    # --set data.source drops the file's CIFAR-only data keys: the profile is given again
    synthetic = [arg for key in ("data.source=synthetic", "data.image_size=8", "data.test_per_class=5",
                                 "data.profile=exp") for arg in ("--set", key)]
    for name, count, data in (("hls_fig6_smoke", 2, cifar), ("hls_continued_smoke", 5, synthetic)):
        out = tmp_path / name
        code, _, stderr = call(["compare", name, *data, *small, "--out", str(out)])
        assert code == 0, stderr
        result = json.loads((out / "comparison.json").read_text())
        assert len(result["variants"]) == count and result["two_branch"] == sorted(result["variants"])
        assert (out / "plots" / "mu_sweep.png").is_file()
        markdown = (out / "comparison.md").read_text()
        assert "plots/mu_sweep.png" in markdown and "α-gradient norms (Theorem 1)" in markdown
        assert "| peak memory |" in markdown and " RSS |" in markdown
        for variant, points in mu_sweeps([(v, 0, out / run) for v, runs in result["runs"].items()
                                          for run in runs]).items():
            sweep = json.loads((out / result["runs"][variant][0] / "mu_sweep.json").read_text())
            assert points == [(row["mu"], row["balanced_test"]["overall"]) for row in sweep["rows"]]
            assert (out / result["runs"][variant][0] / "plots" / "alpha_grad_norms.png").is_file()
    rows = JsonlLog(out / "4.-continued-backbone-frozen" / "seed_0" / "search" / "metrics.jsonl").rows()
    assert [row["mu"] for row in rows] == [0.0, 0.0] and rows[1]["lr_backbone"] == 0.0  # t = T: μ = 0 (from_one)


def test_darts_search_epoch_uses_every_training_batch_with_a_small_validation_part():
    """Table II's DARTS rows search on the 80/20 split: the epoch still covers the whole training part."""
    from ltnas.search import DartsSearch
    from ltnas.search.task import SearchTask
    from ltnas.space import SearchNetwork

    config = validate_config({**copy.deepcopy(TINY_RUN), "search": {"cell": {"primitives": list(PRIMITIVES_SMALL)}}}).search
    torch.manual_seed(0)
    network = SearchNetwork(2, 3, 3, primitives=PRIMITIVES_SMALL)

    def batches(n: int, seed: int) -> DeviceBatches:
        images = ImageSet(torch.randint(0, 255, (n, 3, 8, 8), dtype=torch.uint8), torch.arange(n) % 3)
        return DeviceBatches(images, 8, device="cpu", mean=[0.5] * 3, std=[0.25] * 3,
                             generator=torch.Generator().manual_seed(seed))

    train, val = batches(40, 1), batches(10, 2)  # 5 training batches, 1 validation batch
    task = SearchTask(DartsSearch(network, config, torch.nn.functional.cross_entropy), train, val,
                      val.in_order(16), [14, 13, 13])
    steps = []
    task.run_epoch(0, lambda **status: steps.append(status))
    assert task.steps_per_epoch() == len(steps) == 5
