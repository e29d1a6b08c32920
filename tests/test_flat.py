"""ltnas.train.flat: the retrained network's parameters and gradients in one buffer each."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ltnas.space import DiscreteNetwork, load_genotype
from ltnas.space.baselines import build_baseline
from ltnas.space.mobile import SKIP, MobileArch, MobileNetwork, layer_specs
from ltnas.train.flat import FlatParameters, dense_strides


def _cell_network(dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    model = DiscreteNetwork(load_genotype("DARTS_V2"), 4, 3, 5, auxiliary=True, in_channels=1, image_size=8)
    model.drop_path_prob = 0.2
    return model.to(dtype=dtype, memory_format=torch.channels_last)


def _steps(model: nn.Module, flat: bool, steps: int = 3) -> tuple[list[torch.Tensor], list[float]]:
    """`steps` SGD steps (momentum, weight decay, clipping at a norm the gradients exceed) on fixed batches; the
    parameters after them and each step's clipped gradient norm."""
    params = list(model.parameters())
    buffer = FlatParameters(params) if flat else None
    optimizer = torch.optim.SGD([buffer.flat] if flat else params, 0.1, momentum=0.9, weight_decay=3e-4)
    generator = torch.Generator().manual_seed(1)
    norms = []
    for _ in range(steps):
        x = torch.randn(6, 1, 8, 8, generator=generator, dtype=params[0].dtype)
        y = torch.randint(0, 3, (6,), generator=generator)
        torch.manual_seed(2)  # the same drop-path masks in both runs
        if flat:
            buffer.zero_grad()
        else:
            optimizer.zero_grad(set_to_none=True)
        output = model(x.contiguous(memory_format=torch.channels_last))
        logits, aux = output if isinstance(output, tuple) else (output, None)
        loss = F.cross_entropy(logits, y) + (0.4 * F.cross_entropy(aux, y) if aux is not None else 0)
        loss.backward()
        if flat:
            buffer.gather_gradients()
        norms.append(float(nn.utils.clip_grad_norm_([buffer.flat] if flat else params, 0.05)))
        optimizer.step()
    return [p.detach().clone() for p in model.parameters()], norms


@pytest.mark.parametrize("build", [lambda: _cell_network(torch.float64),
                                   lambda: build_baseline("resnet20", 3, 1).double(),
                                   lambda: build_baseline("cnn", 3, 1, normalised=True).double()],
                         ids=["DARTS_V2", "resnet20", "cnn"])
def test_sgd_over_the_buffer_is_sgd_over_the_tensors_in_float64(build):
    """Momentum, weight decay and clipping over one buffer give torch.optim.SGD's numbers over the separate
    tensors (float64: equal to rounding), and the model's own parameters are what moved."""
    torch.manual_seed(0)
    model = build()
    twin = copy.deepcopy(model)
    before = [p.detach().clone() for p in model.parameters()]
    plain, plain_norms = _steps(model, flat=False)
    flat, flat_norms = _steps(twin, flat=True)
    assert flat_norms == pytest.approx(plain_norms, rel=1e-12) and min(plain_norms) > 0.05  # clipping was active
    for a, b, start in zip(plain, flat, before):
        assert not torch.equal(a, start)
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_every_retrained_network_uses_every_parameter_each_step():
    """The one difference from torch's SGD (a parameter without a gradient still decays) never arises: each
    network the retrain stage builds gives every parameter a gradient in a training step."""
    layers = tuple(("ib_k3_e3", SKIP) if spec.skippable else ("ib_k3_e3",) for spec in layer_specs("small", 0.25))
    arch = MobileArch(layers, "small", 0.25)
    imagenet = DiscreteNetwork(load_genotype("FairDARTS_a"), 4, 3, 5, auxiliary=True, in_channels=3, image_size=32,
                               stem="imagenet")
    networks = {"cell": (_cell_network(), 1, 8), "imagenet cell": (imagenet, 3, 32),
                "s2": (MobileNetwork(arch, 3, 1, dropout=0.2), 1, 8),
                **{name: (build_baseline(name, 3, 1), 1, 8) for name in ("cnn", "resnet20")}}
    for name, (model, channels, size) in networks.items():
        model.train()
        model.drop_path_prob = 0.2
        output = model(torch.randn(4, channels, size, size))
        logits = output[0] if isinstance(output, tuple) else output
        (logits.sum() + (output[1].sum() if isinstance(output, tuple) else 0)).backward()
        unused = [n for n, p in model.named_parameters() if p.grad is None]
        assert not unused, f"{name}: {unused}"


def test_parameters_keep_their_layout_and_values_and_gradients_land_in_the_buffer():
    model = build_baseline("resnet20", 3, 1).to(memory_format=torch.channels_last)
    before = {name: (p.detach().clone(), p.stride()) for name, p in model.named_parameters()}
    buffer = FlatParameters(model.parameters())
    assert buffer.flat.numel() == sum(p.numel() for p in model.parameters())
    for name, p in model.named_parameters():
        assert torch.equal(p, before[name][0]) and p.stride() == before[name][1]
        assert p.untyped_storage().data_ptr() == buffer.flat.untyped_storage().data_ptr()
    conv = next(p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1)
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    buffer.zero_grad()
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    expected = torch.cat([p.grad.permute(*sorted(range(p.dim()), key=lambda d: -p.stride()[d])).reshape(-1)
                          for p in model.parameters()])
    assert expected.abs().sum() > 0 and torch.equal(buffer.flat.grad, expected)


def test_a_gradient_set_aside_by_other_code_is_gathered_and_a_moved_model_is_refused():
    model = build_baseline("cnn", 3, 1)
    buffer = FlatParameters(model.parameters())
    buffer.zero_grad()
    model.zero_grad()  # torch's default: every .grad set to None
    model(torch.randn(2, 1, 8, 8)).sum().backward()
    assert buffer.flat.grad.abs().sum() == 0  # the gradients went to fresh tensors
    buffer.gather_gradients()
    assert buffer.flat.grad.abs().sum() > 0
    assert all(p.grad.data_ptr() >= buffer.flat.grad.data_ptr() for p in model.parameters())
    model.to(torch.float64)
    with pytest.raises(RuntimeError, match="build FlatParameters after model.to"):
        buffer.gather_gradients()


def test_dense_strides_and_bad_parameter_sets():
    x = torch.empty(2, 3, 4, 5)
    assert dense_strides(x) == x.stride()
    channels_last = x.contiguous(memory_format=torch.channels_last)
    assert dense_strides(channels_last) == channels_last.stride()
    assert dense_strides(x.permute(3, 1, 0, 2)) == (1, 20, 60, 5)  # any order without gaps: kept
    assert dense_strides(x[:, :, ::2]) == (30, 10, 5, 1)  # gaps: the contiguous strides
    with pytest.raises(ValueError, match="one dtype"):
        FlatParameters([nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2, dtype=torch.float64))])
    with pytest.raises(ValueError, match="at least one"):
        FlatParameters([nn.Parameter(torch.zeros(2), requires_grad=False)])
