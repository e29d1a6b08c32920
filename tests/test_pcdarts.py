"""PC-DARTS (Xu et al., 2020) against its formulas: channel shuffle, the 1/K split, β normalised per
node, derivation on softmax(α)·β̂, the α warm-up, the authors' defaults, and a search run and resumed."""

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
from ltnas.search.pcdarts import PartialChannelMixing, PartialMixedEdge, channel_shuffle, node_softmax
from ltnas.space import SearchNetwork, derive_genotype
from ltnas.space.search_network import EdgeInput
from ltnas.train.loop import JsonlLog


def test_channel_shuffle_by_hand():
    x = torch.arange(8.0).view(1, 8, 1, 1)
    # four groups of two channels (0 1 | 2 3 | 4 5 | 6 7), transposed: first channel of each group, then second
    assert channel_shuffle(x, 4).flatten().tolist() == [0, 2, 4, 6, 1, 3, 5, 7]
    assert channel_shuffle(x, 2).flatten().tolist() == [0, 4, 1, 5, 2, 6, 3, 7]
    y = torch.randn(2, 8, 3, 5)
    nhwc = channel_shuffle(y.contiguous(memory_format=torch.channels_last), 4)
    assert nhwc.is_contiguous(memory_format=torch.channels_last)  # the NHWC fast path is kept
    assert torch.equal(nhwc, channel_shuffle(y, 4)) and torch.equal(channel_shuffle(y, 4), y[:, [0, 2, 4, 6, 1, 3, 5, 7]])


@pytest.mark.parametrize("stride", [1, 2])
def test_partial_edge_mixes_one_kth_of_the_channels_and_passes_the_rest_by(stride):
    torch.manual_seed(0)
    primitives = ("none", "skip_connect", "sep_conv_3x3")
    edge = PartialMixedEdge(8, stride, primitives, k=4).double()
    assert edge.channels == 2 and all(p.shape[0] in (2, 1) or p.ndim == 1 for p in edge.parameters())
    x = torch.randn(3, 8, 6, 6, dtype=torch.float64)
    w = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    part, rest = x[:, :2], x[:, 2:]
    mixed = w[1] * edge.op("skip_connect")(part) + w[2] * edge.op("sep_conv_3x3")(part)  # `none` adds 0
    bypass = rest if stride == 1 else F.max_pool2d(rest, 2, 2)
    expected = channel_shuffle(torch.cat([mixed, bypass], dim=1), 4)
    torch.testing.assert_close(edge.mix(EdgeInput(x), w), expected, rtol=1e-12, atol=1e-12)


def test_channels_not_divisible_by_k_are_refused():
    with pytest.raises(LtnasError, match="multiple of search.pcdarts.k"):
        PartialMixedEdge(6, 1, ("skip_connect",), k=4)
    with pytest.raises(LtnasError, match="multiple of pcdarts.k"):
        validate_config({"search": {"method": "pcdarts", "cell": {"init_channels": 6}}})
    with pytest.raises(LtnasError, match="arch_start_epoch"):
        validate_config({"search": {"method": "pcdarts", "epochs": 10}})  # 15 ≥ 10: α would never move


def test_beta_is_normalised_per_node_by_hand():
    beta = torch.tensor([0.1, -0.4, 0.3, 0.0, 1.2, 0.5, 0.5, -1.0, 2.0], dtype=torch.float64)  # 3 nodes: 2, 3, 4 edges
    by_hand = []
    for start, end in ((0, 2), (2, 5), (5, 9)):
        e = [pow(2.718281828459045, float(b)) for b in beta[start:end]]
        by_hand += [v / sum(e) for v in e]
    torch.testing.assert_close(node_softmax(beta, 3), torch.tensor(by_hand, dtype=torch.float64))


def small_network(**kwargs) -> SearchNetwork:
    torch.manual_seed(0)
    return SearchNetwork(4, 3, 1, primitives=("none", "skip_connect", "sep_conv_3x3"), nodes=2,
                         mixing=PartialChannelMixing(4), channels_last=False, **kwargs)


def test_beta_weighs_each_edge_of_a_node_in_the_forward_pass():
    """node = Σ_i β̂_i · f_i(h_i): the cell's output rebuilt from its edges by hand."""
    network = small_network().double()
    with torch.no_grad():
        for p in network.arch_parameters():
            p.normal_()
    cell = network.cells[0]  # one cell, at layer 0: a reduction cell (layers // 3 = 0)
    s = torch.randn(2, 12, 8, 8, dtype=torch.float64)  # the stem's 3·C channels
    w = torch.softmax(network.alpha_reduce, -1)
    b = node_softmax(network.beta_reduce, 2)
    out = cell(s, s, w, edge_weights=b)
    h = [cell.preprocess0(s), cell.preprocess1(s)]
    node2 = b[0] * cell.edges[0](h[0], w[0]) + b[1] * cell.edges[1](h[1], w[1])
    node3 = b[2] * cell.edges[2](h[0], w[2]) + b[3] * cell.edges[3](h[1], w[3]) + b[4] * cell.edges[4](node2, w[4])
    torch.testing.assert_close(out, torch.cat([node2, node3], dim=1), rtol=1e-10, atol=1e-10)


def test_derivation_ranks_softmax_alpha_times_normalised_beta():
    network = small_network()
    skip, sep = 1, 2
    with torch.no_grad():
        network.alpha_normal.zero_()
        network.beta_normal.zero_()
        # node 3 (edges 2, 3, 4): edge 2's α is the most confident, but β puts edges 3 and 4 first
        network.alpha_normal[2, sep] = 4.0
        network.alpha_normal[3, skip] = 1.0
        network.alpha_normal[4, skip] = 1.0
        network.beta_normal[2:5] = torch.tensor([-3.0, 1.0, 1.0])
    weights = network.relaxed_weights()["normal"]
    expected = torch.softmax(network.alpha_normal, -1) * node_softmax(network.beta_normal, 2).unsqueeze(-1)
    torch.testing.assert_close(weights, expected)
    genotype = network.genotype()
    node3 = sorted((e.from_node, e.op) for e in genotype.normal if e.to_node == 3)
    assert node3 == [(1, "skip_connect"), (2, "skip_connect")]
    # α alone would keep edge 2 (from node 0) with sep_conv: β changed the choice
    alone = derive_genotype(torch.softmax(network.alpha_normal, -1), torch.softmax(network.alpha_reduce, -1),
                            primitives=network.primitives)
    assert (0, "sep_conv_3x3") in [(e.from_node, e.op) for e in alone.normal if e.to_node == 3]


def test_authors_search_defaults():
    c = SearchConfig(method="pcdarts")
    assert (c.batch_size, c.sgd.lr, c.sgd.lr_min, c.sgd.momentum, c.sgd.weight_decay) == (256, 0.1, 0.0, 0.9, 3e-4)
    assert (c.arch_lr, tuple(c.arch_betas), c.arch_weight_decay, c.epochs) == (6e-4, (0.5, 0.999), 1e-3, 50)
    assert (c.pcdarts.k, c.pcdarts.arch_start_epoch) == (4, 15)


def test_alpha_and_beta_move_only_after_the_warm_up():
    config = SearchConfig(method="pcdarts", epochs=3, batch_size=4, pcdarts={"arch_start_epoch": 1},
                          cell={"init_channels": 4, "layers": 1, "nodes": 2,
                                 "primitives": ["none", "skip_connect", "sep_conv_3x3"]})
    strategy_cls = strategy_class("pcdarts")
    torch.manual_seed(0)
    network = SearchNetwork(4, 3, 1, primitives=config.cell.primitives, nodes=2, **strategy_cls.network_options(config))
    strategy = strategy_cls(network, config, F.cross_entropy)
    assert len(strategy.alphas) == 4  # α and β of both cell types, one Adam
    batch = (torch.randn(4, 3, 8, 8), torch.tensor([0, 1, 2, 0]))
    before = [a.detach().clone() for a in strategy.alphas]
    strategy.set_epoch(0)
    strategy.step(batch, batch)
    assert all(torch.equal(a, b) for a, b in zip(strategy.alphas, before))
    strategy.set_epoch(1)
    strategy.step(batch, batch)
    assert all(not torch.equal(a, b) for a, b in zip(strategy.alphas, before))


def search_outcome(folder):
    state = torch.load(folder / "search" / "checkpoint.pt", weights_only=False)["task"]["strategy"]["network"]
    return (JsonlLog(folder / "search" / "alpha.jsonl").rows(),
            json.loads((folder / "search" / "genotype.json").read_text()),
            {k: v for k, v in state.items() if k.startswith(("alpha", "beta"))})


def test_search_with_long_tail_plug_ins_resumes_to_the_same_alpha(tiny_run, tmp_path, monkeypatch):
    """A PC-DARTS search with LDAM-DRW, class-balanced sampling and the balanced α objective, killed after
    its second epoch and resumed, ends with the α, β and genotype of an uninterrupted one."""
    tiny_run["search"].update(method="pcdarts", epochs=3, pcdarts={"arch_start_epoch": 1},
                              arch_objective="balanced", longtail={"loss": "ldam", "reweight": "drw",
                                                                   "sampler": "class_balanced"})
    config = validate_config(tiny_run)
    pipeline.search_only(config, RunFolder.create(tmp_path / "whole", config))
    whole = search_outcome(tmp_path / "whole")
    assert set(whole[2]) == {"alpha_normal", "alpha_reduce", "beta_normal", "beta_reduce"}
    # alpha.jsonl logs what the derivation reads, softmax(α)·β̂, and says so (the forward relaxation is softmax)
    last = whole[0][-1]
    assert (last["relaxation"], last["weights"]) == ("softmax", "softmax(α)·β̂")
    for kind in ("normal", "reduce"):
        read = torch.softmax(whole[2][f"alpha_{kind}"], -1) * node_softmax(whole[2][f"beta_{kind}"], 4).unsqueeze(-1)
        torch.testing.assert_close(torch.tensor(last[kind]), read)
        assert not torch.allclose(torch.tensor(last[kind]), torch.softmax(whole[2][f"alpha_{kind}"], -1))

    search_killed_and_resumed(config, tmp_path / "killed", monkeypatch, after_epoch=1)
    resumed = search_outcome(tmp_path / "killed")
    assert resumed[0] == whole[0] and resumed[1] == whole[1]
    assert all(torch.equal(resumed[2][k], whole[2][k]) for k in whole[2])
