"""Section 6.3 of FairDARTS (Chu et al., 2020): DARTS's cures for its skip collapse (search.cures): dropout on skip
connections or every operation, early stopping by skip count (DARTS+) or by the α Hessian's eigenvalue (RobustDARTS)."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import search_killed_and_resumed
from test_table3 import make_strategy  # a seeded strategy on a SearchNetwork built from the config
from torch.func import functional_call

from ltnas import pipeline
from ltnas.config import SearchConfig, validate_config
from ltnas.errors import LtnasError
from ltnas.report.markdown import _search_section, read_run_files
from ltnas.runs import RunFolder
from ltnas.search.cures import (DropoutEdge, DropoutMixing, HessianStop, dominant_eigenvalue, dropout_rate,
                                skip_count_stop)
from ltnas.search.oneshot import frozen_bn_statistics
from ltnas.space.mixing import EdgeInput, MixedEdge
from ltnas.train.loop import JsonlLog

PRIMITIVES = ("none", "max_pool_3x3", "skip_connect", "sep_conv_3x3")


# --- dropout ---------------------------------------------------------------------------------------
def test_dropout_rate_decays_exponentially():
    """p_e = p · exp(−decay · e); decay 0 keeps p."""
    assert [dropout_rate(0.4, 0.0, e) for e in range(3)] == [0.4, 0.4, 0.4]
    assert dropout_rate(0.7, 0.2, 5) == pytest.approx(0.7 * math.exp(-1.0))


def _edges(stride: int, skip_rate: float, op_rate: float):
    torch.manual_seed(0)
    plain = MixedEdge(4, stride, PRIMITIVES)
    dropped = DropoutEdge(4, stride, PRIMITIVES, DropoutMixing(skip_rate, op_rate))
    dropped.load_state_dict(plain.state_dict())
    return plain, dropped


def _dropped_or_scaled(out: torch.Tensor, plain: torch.Tensor, rate: float) -> torch.Tensor:
    """Each element is 0 or plain / (1 − rate); returns the kept mask."""
    kept = out != 0
    assert torch.allclose(out[kept], plain[kept] / (1 - rate))
    return kept


@pytest.mark.parametrize("stride", [1, 2])
def test_skip_dropout_masks_only_the_stride_one_skip_in_training_and_scales_what_it_keeps(stride):
    plain, dropped = _edges(stride, 0.5, 0.0)
    x = torch.randn(2, 4, 8, 8) + 5  # no zeros of its own
    skip = PRIMITIVES.index("skip_connect")
    for i in plain.active:
        expected = plain._run(i, EdgeInput(x))
        dropped.train()
        out = dropped._run(i, EdgeInput(x))
        if i == skip and stride == 1:
            kept = _dropped_or_scaled(out, expected, 0.5)
            assert 0.3 < kept.float().mean() < 0.7  # about half dropped
        else:  # other operations, and the reducing skip (a factorized reduction), untouched
            assert torch.equal(out, expected)
        plain.eval(), dropped.eval()
        assert torch.equal(dropped._run(i, EdgeInput(x)), plain._run(i, EdgeInput(x)))  # evaluation: no dropout
        plain.train()


def test_op_dropout_masks_every_operation_in_training_only():
    plain, dropped = _edges(1, 0.0, 0.25)
    x = torch.randn(2, 4, 8, 8) + 5
    for i in plain.active:
        expected = plain._run(i, EdgeInput(x))
        dropped.train()
        kept = _dropped_or_scaled(dropped._run(i, EdgeInput(x)), expected, 0.25)
        assert 0.6 < kept.float().mean() < 0.9
        plain.eval(), dropped.eval()
        assert torch.equal(dropped._run(i, EdgeInput(x)), plain._run(i, EdgeInput(x)))
        plain.train()


def test_darts_with_dropout_mixes_through_it_and_sets_the_epochs_rate():
    config = SearchConfig(method="darts", epochs=3, init_channels=4, layers=1, nodes=2, primitives=list(PRIMITIVES),
                          cures={"skip_dropout": 0.4, "op_dropout": 0.1, "dropout_decay": 0.2})
    strategy = make_strategy(config)
    mixing = strategy.network.mixing
    assert isinstance(mixing, DropoutMixing)
    assert all(isinstance(edge, DropoutEdge) for cell in strategy.network.cells for edge in cell.edges)
    strategy.set_epoch(2)
    assert (mixing.skip_rate, mixing.op_rate) == pytest.approx((0.4 * math.exp(-0.4), 0.1 * math.exp(-0.4)))
    # without dropout DARTS keeps its own (fused) edges; other methods ignore search.cures (only darts reads it)
    assert type(make_strategy(SearchConfig(method="darts", init_channels=4, layers=1, nodes=2)).network.mixing
                ).__name__ == "EdgeMixing"
    fair = make_strategy(SearchConfig(method="fairdarts", init_channels=4, layers=1, nodes=2,
                                      cures={"skip_dropout": 0.4, "stop_skips": 2}))
    assert type(fair.network.mixing).__name__ == "EdgeMixing" and fair.cures.stop_skips is None


def test_cures_that_need_skip_connect_refuse_a_space_without_it():
    for cures in ({"skip_dropout": 0.3}, {"stop_skips": 2}):
        with pytest.raises(ValueError, match="lacks"):
            SearchConfig(method="darts", primitives=["max_pool_3x3", "sep_conv_3x3"], cures=cures)
    SearchConfig(method="darts", primitives=["max_pool_3x3", "sep_conv_3x3"], cures={"op_dropout": 0.3})
    with pytest.raises(ValueError):
        SearchConfig(method="darts", cures={"stop_hessian": 1.0})  # a ratio that must grow


# --- early stopping by skip count ------------------------------------------------------------------
def test_skip_count_rule_stops_at_the_first_epoch_whose_normal_cell_has_two_skips():
    """A synthetic α history: epoch 1 no skip wins, epoch 2 one edge, epoch 3 two edges → stop after epoch 3."""
    config = SearchConfig(method="darts", epochs=6, init_channels=4, layers=1, nodes=2, primitives=list(PRIMITIVES),
                          cures={"stop_skips": 2})
    strategy = make_strategy(config)
    skip, conv = PRIMITIVES.index("skip_connect"), PRIMITIVES.index("sep_conv_3x3")
    stops = []
    for epoch, skip_edges in enumerate([[], [0], [0, 3], [0, 1, 3]]):
        alpha = torch.zeros(5, len(PRIMITIVES))
        alpha[:, conv] = 1.0
        alpha[skip_edges, skip] = 2.0
        with torch.no_grad():
            strategy.network.alpha_normal.copy_(alpha)
        strategy.set_epoch(epoch)
        strategy.w_optimizer.step()  # (no gradients: nothing moves; the scheduler expects a step first)
        strategy.end_epoch()
        stops.append(strategy.stop)
        assert strategy.epoch_metrics()["normal_skips"] == min(len(skip_edges), 2 + (epoch == 3))
    assert stops[:2] == [None, None]
    assert stops[2]["epoch"] == 3 and stops[2]["genotype_epoch"] == 3 and stops[2]["rule"] == "skip_count"
    assert stops[3] == stops[2]  # the first stop stands


def test_skip_count_stop_record():
    from ltnas.space.genotype import Edge, Genotype

    cell = (Edge("skip_connect", 2, 0), Edge("sep_conv_3x3", 2, 1))
    genotype = Genotype(cell, (2,), cell, (2,))
    assert skip_count_stop(genotype, 2, 4) is None
    assert "1 skip connections" in skip_count_stop(genotype, 1, 4)["reason"]


# --- early stopping by the Hessian's dominant eigenvalue -----------------------------------------
def test_power_iteration_finds_the_dominant_eigenvalue_of_a_quadratic():
    """L = ½ xᵀAx: ∇²L = A; the dominant eigenvalue (largest |λ|) of a symmetric A with spectrum {5, −2, 1, 0.5}."""
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor([-2.0, 5.0, 1.0, 0.5], dtype=torch.float64)) @ q.T
    x = torch.randn(4, dtype=torch.float64, requires_grad=True)
    grads = torch.autograd.grad(0.5 * x @ a @ x, [x], create_graph=True)
    assert dominant_eigenvalue(grads, [x], 100, torch.Generator().manual_seed(0)) == pytest.approx(5.0, rel=1e-9)
    b = -a  # the dominant eigenvalue may be negative
    grads = torch.autograd.grad(0.5 * x @ b @ x, [x], create_graph=True)
    assert dominant_eigenvalue(grads, [x], 100, torch.Generator().manual_seed(0)) == pytest.approx(-5.0, rel=1e-9)


def test_power_iteration_matches_the_explicit_alpha_hessian_of_the_validation_loss():
    """The strategy's λ_max equals the dominant eigenvalue of ∇²_α L_val computed whole by
    torch.autograd.functional.hessian, on a tiny supernet in float64."""
    config = SearchConfig(method="darts", epochs=6, init_channels=2, layers=2, nodes=2, primitives=list(PRIMITIVES),
                          cures={"stop_hessian": 1.3, "hessian_iterations": 200})
    strategy = make_strategy(config)
    network = strategy.network.double()
    generator = torch.Generator().manual_seed(4)  # a spectrum with a gap: |λ₂ / λ₁| ≈ 0.82
    batch = (torch.randn(6, 3, 8, 8, generator=generator, dtype=torch.float64),
             torch.randint(0, 3, (6,), generator=generator))
    lam = strategy.hessian_eigenvalue(batch)

    def loss(normal, reduce):
        return F.cross_entropy(functional_call(network, {"alpha_normal": normal, "alpha_reduce": reduce},
                                               (batch[0],)), batch[1])

    alphas = (network.alpha_normal.detach(), network.alpha_reduce.detach())
    with frozen_bn_statistics(network):
        blocks = torch.autograd.functional.hessian(loss, alphas)
    n = [a.numel() for a in alphas]
    full = torch.cat([torch.cat([blocks[i][j].reshape(n[i], n[j]) for j in range(2)], 1) for i in range(2)], 0)
    eigenvalues = torch.linalg.eigvalsh((full + full.T) / 2)
    dominant = eigenvalues[eigenvalues.abs().argmax()].item()
    assert abs(dominant) > 1e-3
    assert lam == pytest.approx(dominant, rel=1e-6)


def test_hessian_rule_fires_on_the_ratio_of_windowed_means_and_keeps_epoch_i_minus_k():
    rule = HessianStop(threshold=1.5, lag=2, window=2, rollback=True)
    history = [1.0, 1.0, 1.2, 1.3, 1.6, 2.4, 9.0]
    # λ̄ (window 2) from epoch 2: 1, 1.1, 1.25, 1.45, 2.0, 5.7; ratio λ̄_i / λ̄_(i−2) from epoch 4: 1.25, 1.32, 1.6
    stops = [rule.update(value) for value in history[:6]]
    assert stops[:5] == [None] * 5
    assert stops[5]["epoch"] == 6 and stops[5]["genotype_epoch"] == 4 and stops[5]["rule"] == "hessian"
    again = HessianStop(threshold=1.5, lag=2, window=2, rollback=False)
    again.load_state_dict(rule.state_dict())
    assert again.values == history[:6]
    assert again.update(9.0)["genotype_epoch"] == 7


# --- whole searches: the run folder, the report, resume ---------------------------------------------
def _search(tiny_run, folder, **cures):
    tiny_run["search"].update(epochs=4, nodes=2, primitives=list(PRIMITIVES), cures=cures)
    config = validate_config(tiny_run)
    pipeline.search_only(config, RunFolder.create(folder, config))
    return config


def _outcome(folder):
    search = folder / "search"
    rows = [{k: v for k, v in row.items() if k != "seconds"} for row in JsonlLog(search / "metrics.jsonl").rows()]
    return (rows, JsonlLog(search / "alpha.jsonl").rows(), json.loads((search / "genotype.json").read_text()),
            json.loads((search / "stopped.json").read_text()))


def test_skip_count_stop_ends_the_search_with_a_complete_run_folder(tiny_run, tmp_path):
    """Only pooling and skip to choose from: the first derived normal cell has a skip, so stop_skips 1 ends the
    4-epoch search after epoch 1; genotype, logs and report are those of epoch 1, and a resume runs nothing more."""
    tiny_run["search"]["primitives"] = ["max_pool_3x3", "skip_connect"]
    tiny_run["search"].update(epochs=4, nodes=2, cures={"stop_skips": 1})
    config = validate_config(tiny_run)
    folder = tmp_path / "run"
    pipeline.search_only(config, RunFolder.create(folder, config))
    rows, alphas, genotype, stop = _outcome(folder)
    assert [row["epoch"] for row in rows] == [1] and len(alphas) == 1 and rows[0]["normal_skips"] >= 1
    assert stop["epoch"] == 1 and stop["rule"] == "skip_count"
    assert genotype == json.loads((folder / "search" / "genotypes" / "epoch_001.json").read_text())
    assert "Stopped early" in _search_section(read_run_files(folder), set())
    run = RunFolder.open(folder)
    pipeline.search_only(run.config(), run)  # resuming a stopped search: nothing more to run
    assert _outcome(folder) == (rows, alphas, genotype, stop)


def test_hessian_stop_of_a_resumed_search_is_the_uninterrupted_ones(tiny_run, tmp_path, monkeypatch):
    """DARTS-ES with k = w = 1 and a ratio just above 1 stops a tiny search at its first growing λ_max; killed after
    its first epoch and resumed, it stops at the same epoch with the same λ history and the rolled-back genotype.
    (Which epoch depends on the data; the skip-count test shows a search cut short.)"""
    cures = {"stop_hessian": 1.0001, "hessian_lag": 1, "hessian_window": 1, "hessian_iterations": 5}
    config = _search(tiny_run, tmp_path / "whole", **cures)
    whole = _outcome(tmp_path / "whole")
    rows, _, genotype, stop = whole
    assert stop["rule"] == "hessian" and stop["epoch"] == len(rows) >= 2  # (4 epochs: it fires at the 4th)
    assert all(row["hessian_eigenvalue"] != 0 for row in rows)
    assert genotype == json.loads((tmp_path / "whole" / "search" / "genotypes" /
                                   f"epoch_{stop['genotype_epoch']:03d}.json").read_text())
    assert stop["genotype_epoch"] == stop["epoch"] - 1
    search_killed_and_resumed(config, tmp_path / "killed", monkeypatch, after_epoch=0)
    assert _outcome(tmp_path / "killed") == whole


def test_cures_are_saved_only_for_darts(tiny_run, tmp_path):
    from ltnas.runs import saved_yaml

    tiny_run["search"]["cures"] = {"stop_skips": 2}
    assert "stop_skips: 2" in saved_yaml(validate_config(tiny_run))
    tiny_run["search"].update(method="fairdarts", cures={})
    assert "cures" not in saved_yaml(validate_config(tiny_run))
    with pytest.raises(LtnasError):
        validate_config({**tiny_run, "search": {**tiny_run["search"], "method": "darts", "cures": {"typo": 1}}})
