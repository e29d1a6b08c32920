"""ltnas's supernet against the faithful port of the original DARTS code (benchmarks/baseline_darts.py):
same parameters, same outputs and gradients (float64 to rounding; float32 outputs to 1e-4 and gradients as
accurate as the original's), for every primitive and the whole net."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from ltnas.config import PRIMITIVES
from ltnas.space import SearchNetwork
from ltnas.space.search_network import MixedEdge

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from baseline_darts import BaselineNetwork, MixedOp  # noqa: E402


def relative_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """Largest difference relative to the largest value of the reference tensor (at least 1e-6: a
    gradient that is exactly 0 in theory, such as one feeding only a BatchNorm's mean, is rounding noise)."""
    return ((ours - theirs).abs().max() / theirs.abs().max().clamp_min(1e-6)).item()


def assert_relatively_close(ours: torch.Tensor, theirs: torch.Tensor, tolerance: float = 1e-4) -> None:
    assert relative_difference(ours, theirs) <= tolerance


def outputs_and_gradients(primitives, relaxation, dtype, ours: bool, channels_last=True):
    torch.manual_seed(0)
    network = SearchNetwork(4, 5, 3, primitives=primitives, relaxation=relaxation, channels_last=channels_last)
    with torch.no_grad():
        for alpha in network.arch_parameters():
            alpha.normal_()
    model = network if ours else BaselineNetwork(4, 5, 3, primitives=primitives, relaxation=relaxation).copy_from(network)
    model.to(dtype)
    alphas = model.arch_parameters()
    if not ours:
        model.alphas_normal, model.alphas_reduce = alphas = [a.detach().to(dtype).requires_grad_(True) for a in alphas]
    data = torch.Generator().manual_seed(1)  # the same batch whichever network was built
    x, y = torch.randn(6, 3, 8, 8, generator=data).to(dtype), torch.randint(0, 5, (6,), generator=data)
    logits = model(x)
    F.cross_entropy(logits, y).backward()
    return [logits.detach(), *(p.grad for p in model.parameters()), *(a.grad for a in alphas)], list(model.buffers())


def compare(primitives, relaxation="softmax", channels_last=True):
    """Same maths: ltnas and the original agree in float64 to rounding (1e-9). In float32 the logits
    agree to 1e-4 and all gradients together are within 1e-4 (in norm) of the exact answer. (Single
    tensors are not held to 1e-4 in float32: summing a shared ReLU's gradients before masking reorders
    float32 additions, which BatchNorm's backward can amplify past 1e-4 in a near-cancelling tensor,
    in the original as much as in ltnas.)"""
    exact, _ = outputs_and_gradients(primitives, relaxation, torch.float64, ours=False)
    ours64, buffers = outputs_and_gradients(primitives, relaxation, torch.float64, ours=True, channels_last=channels_last)
    base_buffers = outputs_and_gradients(primitives, relaxation, torch.float64, ours=False)[1]
    assert len(ours64) == len(exact)
    for mine, theirs in zip(ours64, exact):
        assert_relatively_close(mine, theirs, 1e-9)
    for mine, theirs in zip(buffers, base_buffers):  # BatchNorm statistics move alike (they drive evaluation)
        assert_relatively_close(mine.double(), theirs.double(), 1e-9)
    ours32, _ = outputs_and_gradients(primitives, relaxation, torch.float32, ours=True, channels_last=channels_last)
    base32, _ = outputs_and_gradients(primitives, relaxation, torch.float32, ours=False)
    assert_relatively_close(ours32[0].double(), base32[0].double())
    flat, reference = (torch.cat([g.double().flatten() for g in grads[1:]]) for grads in (ours32, exact))
    assert ((flat - reference).norm() / reference.norm()).item() <= 1e-4


@pytest.mark.parametrize("primitive", [p for p in PRIMITIVES if p != "none"])
def test_every_primitive_matches_the_original(primitive):
    compare(["none", primitive])  # normal and reduction cells: stride 1 and 2


@pytest.mark.parametrize("relaxation", ["softmax", "sigmoid"])
def test_whole_supernet_matches_the_original(relaxation):
    compare(list(PRIMITIVES), relaxation)


def test_nchw_supernet_matches_the_original_too():
    compare(list(PRIMITIVES), channels_last=False)


def test_mixed_edge_matches_the_original_mixed_op_at_both_strides():
    for stride in (1, 2):
        torch.manual_seed(stride)
        edge, original = MixedEdge(4, stride, PRIMITIVES), MixedOp(4, stride, PRIMITIVES)
        for mine, theirs in zip(edge.state_dict().values(), original.state_dict().values()):
            theirs.copy_(mine)  # both create their tensors in the same order
        x, weights = torch.randn(3, 4, 6, 6), torch.softmax(torch.randn(len(PRIMITIVES)), 0)
        assert_relatively_close(edge(x, weights), original(x, weights))


def test_exact_zero_weights_are_skipped_only_when_no_gradient_needs_them():
    torch.manual_seed(0)
    edge = MixedEdge(4, 1, PRIMITIVES)
    x = torch.randn(3, 4, 6, 6)
    one_hot = torch.zeros(len(PRIMITIVES))
    one_hot[PRIMITIVES.index("sep_conv_3x3")] = 1.0
    path = edge.ops[PRIMITIVES.index("sep_conv_3x3")]
    max_pool_bn = edge.ops[PRIMITIVES.index("max_pool_3x3")][1]
    torch.testing.assert_close(edge(x, one_hot), path(x))
    assert max_pool_bn.num_batches_tracked.item() == 0  # the skipped path did not run
    # With a gradient wanted for the weights every operation runs: d/dw_i needs op_i(x) even at w_i = 0.
    weights = one_hot.clone().requires_grad_(True)
    edge(x, weights).sum().backward()
    assert weights.grad[PRIMITIVES.index("max_pool_3x3")] != 0
    assert max_pool_bn.num_batches_tracked.item() == 1
    # All weights zero: the edge is `none`, zeros of the output shape.
    assert torch.equal(MixedEdge(4, 2, PRIMITIVES)(x, torch.zeros(len(PRIMITIVES))), torch.zeros(3, 4, 3, 3))


def test_bf16_autocast_search_step_runs_and_stays_close_to_fp32():
    from ltnas.config import SearchConfig
    from ltnas.search import DartsSearch

    def one_step(amp):
        torch.manual_seed(0)
        network = SearchNetwork(4, 5, 3)
        strategy = DartsSearch(network, SearchConfig(epochs=1, amp=amp), F.cross_entropy)
        batch = (torch.randn(8, 3, 8, 8), torch.randint(0, 5, (8,)))
        out = strategy.step(batch, batch)
        return out["loss"], torch.cat([a.detach().flatten() for a in network.arch_parameters()])

    (loss32, alpha32), (loss16, alpha16) = one_step(False), one_step(True)
    assert loss16 == pytest.approx(loss32, rel=0.05)
    assert alpha16.dtype == torch.float32 and torch.allclose(alpha16, alpha32, atol=1e-3)
    assert not torch.equal(alpha16, alpha32)  # autocast did run in bf16


def test_channels_last_retraining_network_computes_the_same():
    from ltnas.space import DiscreteNetwork, load_genotype

    torch.manual_seed(0)
    nchw = DiscreteNetwork(load_genotype("DARTS_V2"), 4, 5, 3, auxiliary=True, image_size=8)
    nhwc = DiscreteNetwork(load_genotype("DARTS_V2"), 4, 5, 3, auxiliary=True, image_size=8)
    nhwc.load_state_dict(nchw.state_dict())
    nhwc = nhwc.to(memory_format=torch.channels_last)  # as pipeline.train does with train.channels_last
    x, y = torch.randn(4, 3, 8, 8), torch.randint(0, 5, (4,))
    for model in (nchw, nhwc):
        logits, aux = model(x)
        (F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux, y)).backward()
    assert_relatively_close(nhwc(x)[0], nchw(x)[0])
    flat = [torch.cat([p.grad.flatten() for p in m.parameters()]) for m in (nhwc, nchw)]
    assert ((flat[0] - flat[1]).norm() / flat[1].norm()).item() <= 1e-4


def test_second_order_steps_match_the_original_including_batchnorm_statistics():
    """Four second-order DARTS steps in float64 from the same start and batches: α, weights and the BatchNorm
    running statistics equal the original code's (architect.py `unrolled=True`). The forward pass at the virtual
    weights w' runs on a copy of the model there, so it must not move the supernet's BN statistics here."""
    from ltnas.config import SearchConfig
    from ltnas.search import DartsSearch
    from baseline_darts import BaselineSearch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        torch.manual_seed(0)
        primitives = ["none", "max_pool_3x3", "skip_connect", "sep_conv_3x3"]
        network = SearchNetwork(4, 5, 3, primitives=primitives, nodes=2, channels_last=False, alpha_init_std=0.5)
        baseline = BaselineNetwork(4, 5, 3, primitives=primitives, steps=2, multiplier=2).copy_from(network)
        baseline.alphas_normal, baseline.alphas_reduce = (a.detach().clone().requires_grad_(True)
                                                          for a in network.arch_parameters())
        config = SearchConfig(order="second", epochs=1, sgd={"lr": 0.1}, cell={"primitives": primitives})
        ours = DartsSearch(network, config, F.cross_entropy)
        sgd = config.sgd
        theirs = BaselineSearch(baseline, lr=sgd.lr, momentum=sgd.momentum, weight_decay=sgd.weight_decay,
                                grad_clip=sgd.grad_clip, arch_lr=config.arch_lr, arch_betas=config.arch_betas,
                                arch_weight_decay=config.arch_weight_decay, unrolled=True)
        data = torch.Generator().manual_seed(1)
        for _ in range(4):
            train, val = ((torch.randn(6, 3, 8, 8, generator=data), torch.randint(0, 5, (6,), generator=data))
                          for _ in range(2))
            ours.step(train, val)
            theirs.step(train, val)
        for mine, original in zip(network.arch_parameters(), baseline.arch_parameters()):
            assert_relatively_close(mine.detach(), original.detach(), 1e-14)
        tensors = [(name, t) for name, t in network.state_dict().items() if not name.startswith("alpha_")]
        assert len(tensors) == len(baseline.state_dict())
        for (name, mine), original in zip(tensors, baseline.state_dict().values()):  # weights and BN buffers
            assert_relatively_close(mine.double(), original.double(), 1e-14)
        # per step, the forward passes at w, w⁺, w⁻ and the weight step's move the statistics; the one at w' does not
        assert network.stem[1].num_batches_tracked.item() == 4 * 4
    finally:
        torch.set_default_dtype(previous)
