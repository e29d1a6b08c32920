"""Search space: primitives, supernet, genotypes, derivation, discrete network."""

from __future__ import annotations

import json

import pytest
import torch

from ltnas.errors import LtnasError
from ltnas.space import (
    PRIMITIVES, DiscreteNetwork, Edge, Genotype, SearchNetwork, count_parameters, derive_genotype, load_genotype,
    num_edges, published_genotypes,
)
from ltnas.space.primitives import FactorizedReduce
from ltnas.space.search_network import MixedEdge, reduction_layers


def test_primitives_in_darts_order():
    assert PRIMITIVES == ("none", "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3",
                          "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5")


def test_supernet_weight_count_equals_original_darts():
    # DARTS' search log prints "param size = 1.930618MB" for C=16, 8 layers, CIFAR-10.
    network = SearchNetwork(16, 10, 8)
    assert sum(p.numel() for p in network.parameters()) == 1_930_618


def test_alpha_is_kept_apart_from_weights():
    network = SearchNetwork(4, 3, 3, primitives=["none", "skip_connect", "sep_conv_3x3"])
    alphas = network.arch_parameters()
    assert [tuple(a.shape) for a in alphas] == [(14, 3), (14, 3)]
    weight_ids = {id(p) for p in network.parameters()}
    assert not weight_ids & {id(a) for a in alphas}
    assert {"alpha_normal", "alpha_reduce"} <= set(network.state_dict())  # but checkpoints carry α


def test_darts_v2_parameter_count_matches_published():
    # DARTS reports 3.3M parameters for DARTS_V2 at C=36, 20 layers; its log says 3.349342MB.
    model = DiscreteNetwork(load_genotype("DARTS_V2"), 36, 10, 20, auxiliary=True)
    assert count_parameters(model) == 3_349_342
    assert count_parameters(model, include_auxiliary=True) > count_parameters(model)


@pytest.mark.parametrize("in_channels,size", [(1, 8), (3, 8), (1, 28), (3, 32)])
def test_shapes_through_reductions(in_channels, size):
    x = torch.randn(2, in_channels, size, size)
    search = SearchNetwork(4, 5, 3, in_channels=in_channels)
    assert search(x).shape == (2, 5)
    assert search.features(x).shape == (2, search.feature_dim)
    model = DiscreteNetwork(load_genotype("DARTS_V2"), 4, 5, 6, auxiliary=True, in_channels=in_channels,
                            image_size=size)
    model.train()
    logits, aux = model(x)
    assert logits.shape == aux.shape == (2, 5)
    model.eval()
    assert model(x).shape == (2, 5)


def test_reduction_layers_follow_darts():
    assert reduction_layers(8) == (2, 5)
    assert reduction_layers(20) == (6, 13)
    assert reduction_layers(3) == (1, 2)
    assert num_edges(4) == 14


def test_factorized_reduce_matches_original_slicing_on_even_sizes_and_handles_odd():
    torch.manual_seed(0)
    op = FactorizedReduce(4, 8).eval()
    x = torch.randn(2, 4, 8, 8)
    relu = torch.relu(x)
    original = op.bn(torch.cat([op.conv_1(relu), op.conv_2(relu[:, :, 1:, 1:])], dim=1))
    torch.testing.assert_close(op(x), original)
    assert op(torch.randn(2, 4, 7, 7)).shape == (2, 8, 4, 4)


def test_mixed_edge_skipping_none_is_the_full_weighted_sum():
    torch.manual_seed(0)
    edge = MixedEdge(4, 1, PRIMITIVES).eval()
    x, weights = torch.randn(2, 4, 6, 6), torch.softmax(torch.randn(len(PRIMITIVES)), 0)
    full = sum(w * op(x) for w, op in zip(weights, edge.ops))
    torch.testing.assert_close(edge(x, weights), full)


def test_evaluation_forward_reads_the_edge_weights_once_and_matches_reading_them_per_cell(monkeypatch):
    """Without gradients the weights are read as numbers (one host-device sync on a GPU) once per
    forward, not once per cell; the output is that of each cell reading its own, exact zeros skipped."""
    torch.manual_seed(0)
    network = SearchNetwork(4, 3, 5, relaxation="sigmoid").eval()
    with torch.no_grad():
        network.alpha_normal[::2] = -1e4  # σ = 0 exactly: those operations are skipped
        network.alpha_reduce[1::3] = -1e4
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        weights = network.relaxed_weights()
        s0 = s1 = network.stem(x.contiguous(memory_format=torch.channels_last))
        for cell in network.cells:  # each cell reads its own weights (constant=None)
            s0, s1 = s1, cell(s0, s1, weights["reduce" if cell.reduction else "normal"])
        expected = network.classifier(network.global_pooling(s1).flatten(1))
        reads = []
        tolist = torch.Tensor.tolist
        monkeypatch.setattr(torch.Tensor, "tolist", lambda self: reads.append(self.shape) or tolist(self))
        out = network(x)
    assert reads == [torch.Size([2, 14, len(PRIMITIVES)])]
    torch.testing.assert_close(out, expected, rtol=0, atol=0)


@pytest.mark.parametrize("in_channels", [1, 3])
def test_channels_last_supernet_runs_its_cells_nhwc_for_grey_images_too(in_channels):
    """A one-channel batch is NCHW and NHWC at once (torch keeps its NCHW strides), so the stem's output came out NCHW
    and the quickstart's digits took none of the NHWC routes; the cells now see NHWC activations either way."""
    seen = []
    for layout in (True, False):
        network = SearchNetwork(4, 3, 3, in_channels=in_channels, channels_last=layout)
        network.cells[0].register_forward_hook(lambda cell, inputs, out: seen.append(
            [t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous() for t in inputs[:2]]))
        network(torch.randn(2, in_channels, 8, 8))
    assert seen == [[True, True], [False, False]]


def test_relaxation_is_swappable_without_touching_the_network():
    torch.manual_seed(0)
    network = SearchNetwork(4, 3, 3).eval()
    x = torch.randn(2, 3, 8, 8)
    softmax_out = network(x)
    weights = network.relaxed_weights()["normal"]
    torch.testing.assert_close(weights.sum(1), torch.ones(14))
    network.relaxation = __import__("ltnas.space", fromlist=["make_relaxation"]).make_relaxation("sigmoid")
    torch.testing.assert_close(network.relaxed_weights()["normal"], torch.sigmoid(network.alpha_normal))
    assert not torch.allclose(network(x), softmax_out)


# --- genotypes ----------------------------------------------------------------------------------
def test_every_published_genotype_round_trips_through_json(tmp_path):
    for name, genotype in published_genotypes().items():
        path = tmp_path / f"{name}.json"
        genotype.to_json(path)
        assert Genotype.from_json(path) == genotype
        assert load_genotype(path) == genotype


def test_darts_text_round_trip_and_range_concat():
    darts_v2 = load_genotype("DARTS_V2")
    assert Genotype.from_darts_text(darts_v2.to_darts_text(), name="DARTS_V2") == darts_v2
    text = ("Genotype(normal=[('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 0), ('sep_conv_3x3', 1), "
            "('skip_connect', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2)], "
            "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
            "('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), "
            "('avg_pool_3x3', 0)], reduce_concat=range(2, 6))")
    parsed = Genotype.from_darts_text(text, name="DARTS_V1")
    assert parsed == load_genotype("DARTS_V1")
    assert parsed.normal[7] == Edge("skip_connect", 5, 2)


def test_darts_text_file_is_loaded(tmp_path):
    path = tmp_path / "cell.txt"
    path.write_text(load_genotype("PDARTS").to_darts_text())
    assert load_genotype(path).normal == load_genotype("PDARTS").normal


def test_text_form_refuses_cells_without_two_edges_per_node():
    with pytest.raises(LtnasError, match="two edges per node"):
        load_genotype("FairDARTS_a").to_darts_text()


@pytest.mark.parametrize("edge,message", [
    (["sep_conv_3x3", 2, 5], "does not exist before node 2"),
    (["sep_conv_3x3", 3, 3], "does not exist before node 3"),
    (["conv_9x9", 2, 0], "unknown operation"),
    (["none", 2, 0], "unknown operation"),
    (["skip_connect", 1, 0], "input node"),
])
def test_bad_genotype_edges_are_named(tmp_path, edge, message):
    data = load_genotype("DARTS_V2").to_dict()
    data["normal"][0] = edge
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LtnasError, match=message):
        load_genotype(path)


def test_bad_concat_and_missing_keys(tmp_path):
    data = load_genotype("DARTS_V2").to_dict()
    data["reduce_concat"] = [2, 3, 9]
    with pytest.raises(LtnasError, match="concat names node 9"):
        Genotype.from_dict(data)
    del data["reduce"]
    with pytest.raises(LtnasError, match="lacks reduce"):
        Genotype.from_dict(data)


def test_unknown_genotype_name_lists_the_published_ones():
    with pytest.raises(LtnasError, match="DARTS_V2"):
        load_genotype("DARTS_V9")


# --- derivation ---------------------------------------------------------------------------------
def _weights(entries: dict[tuple[int, str], float], primitives=PRIMITIVES, base: float = 0.01) -> torch.Tensor:
    """14 edge rows (node 2 from 0,1; node 3 from 0,1,2; ...), `base` everywhere except `entries`."""
    rows = {}
    index = 0
    for node in range(2, 6):
        for source in range(node):
            rows[(node, source)] = index
            index += 1
    weights = torch.full((14, len(primitives)), base)
    for (edge, op), value in entries.items():
        weights[rows[edge], primitives.index(op)] = value
    return weights


def test_darts_rule_on_hand_built_weights():
    normal = _weights({
        ((2, 0), "sep_conv_3x3"): 0.9, ((2, 1), "skip_connect"): 0.5, ((2, 1), "none"): 0.99,  # none ignored
        ((3, 2), "dil_conv_5x5"): 0.8, ((3, 0), "max_pool_3x3"): 0.7, ((3, 1), "avg_pool_3x3"): 0.2,
        ((4, 3), "sep_conv_5x5"): 0.6, ((4, 1), "dil_conv_3x3"): 0.3,
        ((5, 4), "skip_connect"): 0.4, ((5, 2), "sep_conv_3x3"): 0.35, ((5, 0), "none"): 0.9,
    })
    reduce = _weights({((node, 0), "max_pool_3x3"): 0.5 for node in range(2, 6)}
                      | {((node, 1), "avg_pool_3x3"): 0.4 for node in range(2, 6)})
    genotype = derive_genotype(normal, reduce, rule="darts")
    assert genotype.normal == (
        Edge("sep_conv_3x3", 2, 0), Edge("skip_connect", 2, 1),
        Edge("dil_conv_5x5", 3, 2), Edge("max_pool_3x3", 3, 0),
        Edge("sep_conv_5x5", 4, 3), Edge("dil_conv_3x3", 4, 1),
        Edge("skip_connect", 5, 4), Edge("sep_conv_3x3", 5, 2),
    )
    assert genotype.normal_concat == (2, 3, 4, 5)
    assert set(genotype.reduce) == {Edge(op, node, src) for node in range(2, 6)
                                    for src, op in ((0, "max_pool_3x3"), (1, "avg_pool_3x3"))}


def test_darts_rule_without_none_column():
    primitives = PRIMITIVES[1:]  # FairDARTS' 7 operations
    normal = _weights({((2, 0), "sep_conv_3x3"): 0.9, ((2, 1), "skip_connect"): 0.8}, primitives)
    genotype = derive_genotype(normal, normal, primitives=primitives)
    assert genotype.normal[:2] == (Edge("sep_conv_3x3", 2, 0), Edge("skip_connect", 2, 1))


def test_threshold_rule_drops_weak_edges_and_isolated_nodes():
    primitives = PRIMITIVES[1:]
    strong = 0.95
    normal = _weights({
        ((2, 0), "sep_conv_3x3"): strong, ((2, 1), "dil_conv_3x3"): strong,
        ((3, 0), "sep_conv_5x5"): 0.6, ((3, 1), "max_pool_3x3"): 0.5,          # node 3: nothing ≥ 0.85
        ((4, 2), "skip_connect"): strong, ((4, 0), "avg_pool_3x3"): 0.2,       # node 4: one edge kept
        ((5, 3), "sep_conv_3x3"): 0.99, ((5, 0), "dil_conv_5x5"): strong,      # 3→5 leaves a dropped node
    }, primitives)
    reduce = _weights({((node, 0), "max_pool_3x3"): strong for node in range(2, 6)}, primitives)
    genotype = derive_genotype(normal, reduce, rule="threshold", threshold=0.85, primitives=primitives)
    assert genotype.normal == (
        Edge("sep_conv_3x3", 2, 0), Edge("dil_conv_3x3", 2, 1),
        Edge("skip_connect", 4, 2),
        Edge("dil_conv_5x5", 5, 0),
    )
    assert genotype.normal_concat == (2, 4, 5)
    assert genotype.reduce == tuple(Edge("max_pool_3x3", node, 0) for node in range(2, 6))
    model = DiscreteNetwork(genotype, 4, 3, 3, image_size=8)
    assert model(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_supernet_genotype_uses_current_alpha():
    torch.manual_seed(0)
    network = SearchNetwork(4, 3, 3)
    with torch.no_grad():
        network.alpha_normal.zero_()
        network.alpha_normal[:, PRIMITIVES.index("sep_conv_5x5")] = 5.0
    assert {edge.op for edge in network.genotype().normal} == {"sep_conv_5x5"}


def test_discrete_network_prunes_nodes_without_input():
    # FairDARTS_c's normal cell: node 3 has no input, and node 5 takes 3 as one of its inputs.
    genotype = load_genotype("FairDARTS_c")
    edges, concat = genotype.live_cell("normal")
    assert concat == [2, 4, 5]
    assert all(3 not in (edge.to_node, edge.from_node) for edge in edges)
    model = DiscreteNetwork(genotype, 4, 3, 3, image_size=8)
    assert model.cells[0].multiplier == 3 and model(torch.randn(2, 3, 8, 8)).shape == (2, 3)


def test_cell_without_any_live_node_is_a_clear_error():
    empty = Genotype((), (), (Edge("skip_connect", 2, 0),), (2,))
    with pytest.raises(LtnasError, match="no node with an input"):
        DiscreteNetwork(empty, 4, 3, 3)
