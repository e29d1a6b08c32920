"""The supernet's fused training path (space/fused.py: every edge leaving a node computed together) against
its per-edge path: the same logits, weight and α gradients and BatchNorm statistics in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ltnas.config import PRIMITIVES
from ltnas.space import SearchNetwork
from ltnas.space.fused import fusable

from conftest import nchw_layer_calls


def run(primitives, *, fused: bool, channels_last: bool, size: int, relaxation: str = "softmax"):
    torch.manual_seed(0)
    network = SearchNetwork(4, 5, 3, in_channels=2, primitives=primitives, relaxation=relaxation,
                            channels_last=channels_last).double()
    with torch.no_grad():
        for alpha in network.arch_parameters():
            alpha.normal_()
    for cell in network.cells:
        assert cell.fused  # DARTS' own edges are fusable
        cell.fused = fused
    data = torch.Generator().manual_seed(1)
    x, y = torch.randn(5, 2, size, size, generator=data).double(), torch.randint(0, 5, (5,), generator=data)
    for _ in range(2):  # two steps: the second normalises with statistics the first moved
        network.zero_grad()
        for alpha in network.arch_parameters():
            alpha.grad = None
        logits = network(x)
        F.cross_entropy(logits, y).backward()
    grads = [p.grad for p in network.parameters()] + [a.grad for a in network.arch_parameters()]
    return logits.detach(), grads, [b.clone() for b in network.buffers()]


@pytest.mark.parametrize("primitives", [
    PRIMITIVES,
    ("none", "sep_conv_5x5", "dil_conv_3x3"),
    ("max_pool_3x3", "avg_pool_3x3", "skip_connect"),
    ("dil_conv_5x5",),
])
@pytest.mark.parametrize("channels_last,size", [(True, 8), (False, 7)])  # odd: FactorizedReduce's padded grid
def test_fused_edges_compute_what_the_edges_compute_one_by_one(primitives, channels_last, size):
    fused = run(list(primitives), fused=True, channels_last=channels_last, size=size)
    single = run(list(primitives), fused=False, channels_last=channels_last, size=size)
    torch.testing.assert_close(fused[0], single[0], rtol=1e-10, atol=1e-12)
    assert len(fused[1]) == len(single[1])
    for mine, theirs in zip(fused[1], single[1]):
        assert (mine is None) == (theirs is None)
        if mine is not None:
            torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-12)
    for mine, theirs in zip(fused[2], single[2]):  # running means, variances and batch counts
        torch.testing.assert_close(mine, theirs, rtol=1e-10, atol=1e-12)


def test_fairdarts_sigmoid_weights_fuse_alike():
    fused = run(list(PRIMITIVES), fused=True, channels_last=True, size=8, relaxation="sigmoid")
    single = run(list(PRIMITIVES), fused=False, channels_last=True, size=8, relaxation="sigmoid")
    torch.testing.assert_close(fused[0], single[0], rtol=1e-10, atol=1e-12)
    for mine, theirs in zip(fused[1], single[1]):
        torch.testing.assert_close(mine, theirs, rtol=1e-9, atol=1e-12)


def test_only_training_with_gradient_carrying_weights_takes_the_fused_path(monkeypatch):
    import ltnas.space.search_network as search_network

    calls = []
    original = search_network.mix_edges
    monkeypatch.setattr(search_network, "mix_edges", lambda *a: calls.append(1) or original(*a))
    network = SearchNetwork(4, 5, 3)
    x = torch.randn(2, 3, 8, 8)
    network(x)
    assert len(calls) == 3 * 5  # 3 cells, 5 nodes (2 inputs + 3 of 4 intermediate) that feed edges
    calls.clear()
    network.eval()
    network(x)  # evaluation: per edge (exact zeros skipped, running statistics per edge)
    network.train()
    with torch.no_grad():
        network(x)  # weights without gradient: per edge
    assert calls == []
    # the cells' preprocessed inputs hold 2·4·8·8, 2·8·8·8 and 2·16·4·4 numbers: only the second is too large
    monkeypatch.setattr("ltnas.space.fused.FUSE_MAX_NUMEL", 2 * 8 * 8 * 8 - 1)
    network(x)
    assert len(calls) == 2 * 5


def test_a_cuda_gpu_fuses_at_any_size_a_cpu_only_small_nodes():
    from types import SimpleNamespace

    from ltnas.space.fused import FUSE_MAX_NUMEL, worth_fusing

    def node(device: str, numel: int):  # what worth_fusing reads of a tensor, without allocating one on a GPU
        return SimpleNamespace(device=torch.device(device), numel=lambda: numel)

    assert worth_fusing(node("cpu", FUSE_MAX_NUMEL)) and not worth_fusing(node("cpu", FUSE_MAX_NUMEL + 1))
    assert worth_fusing(node("cuda", FUSE_MAX_NUMEL + 1)) and worth_fusing(node("cuda:1", 64 * 16 * 32 * 32))
    assert worth_fusing(torch.zeros(2, 8, 8, 8)) and not worth_fusing(torch.zeros(FUSE_MAX_NUMEL + 1))


def test_other_mixings_and_mixed_edges_are_not_fused():
    from ltnas.search.pcdarts import PartialChannelMixing

    network = SearchNetwork(4, 5, 3, mixing=PartialChannelMixing(2))
    assert not any(cell.fused for cell in network.cells)
    edges = list(SearchNetwork(4, 5, 3).cells[1].edges)
    assert fusable(edges[:3]) and not fusable([edges[0], edges[4]])  # reduction cell: from s0 stride 2, from node 0 stride 1


def test_a_channels_last_supernet_trains_nhwc_throughout():
    """Every convolution and BatchNorm of a fused channels_last search step on the CPU, forward and backward, sees
    no NCHW tensor. An NCHW gradient beside an NHWC input sends the library's BatchNorm backward down a path 5–12×
    slower, and an NCHW activation takes the layers after it off the NHWC routes. Both happened on the quickstart's
    supernet: the backward of the fused outputs' per-edge split stacked the gradients into NCHW memory, the stem's
    BatchNorm ran NCHW for grey images, and the dilated 5×5 on the 2×2 maps of the last cell came back in neither
    layout."""
    torch.manual_seed(0)
    network = SearchNetwork(4, 5, 3, in_channels=1, primitives=list(PRIMITIVES), channels_last=True)
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 5, (6,))  # 8×8 → 4×4 → 2×2: the quickstart's maps
    calls = nchw_layer_calls(lambda: F.cross_entropy(network(x), y).backward())
    assert network.cells[2].fused
    assert calls == [], calls
