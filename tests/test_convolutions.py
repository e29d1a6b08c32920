"""The 1×1 convolution as a matrix product (ltnas.space.convolutions.py): the same numbers as the convolution,
forward and backward, in float64, in either memory layout, at stride 1 and 2, and the same parameters."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ltnas.space.convolutions import Depthwise, Pointwise, fast_route, pointwise_conv
from ltnas.space.primitives import DilConv, FactorizedReduce, ReLUConvBN, SepConv


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("stride,size", [(1, 5), (1, 8), (2, 8), (2, 7)])
def test_pointwise_conv_is_the_1x1_convolution_forward_and_backward(channels_last, stride, size):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(3, 6, size, size, generator=generator, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 6, 1, 1, generator=generator, dtype=torch.float64)
    upstream = torch.randn(3, 4, (size - 1) // stride + 1, (size - 1) // stride + 1, generator=generator,
                           dtype=torch.float64)
    results = []
    for function in (lambda a, w: F.conv2d(a, w, stride=stride), lambda a, w: pointwise_conv(a, w, stride)):
        a, w = x.clone().requires_grad_(), weight.clone().requires_grad_()
        y = function(a, w)
        y.backward(upstream)
        results.append((y.detach(), a.grad, w.grad))
    for ours, theirs in zip(results[1], results[0]):
        assert ours.shape == theirs.shape
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert results[1][0].is_contiguous(memory_format=torch.channels_last) == channels_last or size == 1


def test_large_activations_keep_the_convolution(monkeypatch):
    from ltnas.space import convolutions

    x = torch.randn(2, 3, 4, 4).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(5, 3, 1, 1)
    calls, linear = [], F.linear
    monkeypatch.setattr(F, "linear", lambda *a: calls.append(1) or linear(*a))
    pointwise_conv(x, weight)
    monkeypatch.setattr(convolutions, "MATMUL_MAX_NUMEL", x.numel() - 1)
    torch.testing.assert_close(pointwise_conv(x, weight), F.conv2d(x, weight))
    assert calls == [1]  # the matrix product ran for the small input only


def test_a_pixel_slice_of_a_channels_last_tensor_takes_the_matrix_product(monkeypatch):
    """FactorizedReduce's shifted grid x[:, :, 1:, 1:] of a channels_last x keeps its channels adjacent in memory: its
    1×1 convolution runs as the matrix product too (the same numbers), not as the library's convolution of a tensor
    in neither layout; an NCHW slice keeps the convolution."""
    x = torch.randn(2, 6, 5, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 6, 1, 1, dtype=torch.float64)
    calls, linear = [], F.linear
    monkeypatch.setattr(F, "linear", lambda *a: calls.append(1) or linear(*a))
    for stride in (1, 2):
        shifted = x[:, :, 1:, 1:]
        torch.testing.assert_close(pointwise_conv(shifted, weight, stride), F.conv2d(shifted, weight, stride=stride),
                                   rtol=1e-12, atol=1e-12)
    pointwise_conv(x.contiguous()[:, :, 1:, 1:], weight)
    assert calls == [1, 1]


def test_fast_route_only_for_channels_last_cpu_tensors():
    x = torch.randn(2, 3, 4, 4)
    assert not fast_route(x)
    assert fast_route(x.contiguous(memory_format=torch.channels_last))
    assert not fast_route(torch.randn(2, 3, 4, 4, device="meta").contiguous(memory_format=torch.channels_last))
    assert not fast_route(torch.randn(2, 3, 4))


def test_pointwise_holds_a_conv2d_s_parameters_and_state():
    layer, conv = Pointwise(6, 4, stride=2), nn.Conv2d(6, 4, 1, stride=2, bias=False)
    assert isinstance(layer, nn.Conv2d)
    assert {k: v.shape for k, v in layer.state_dict().items()} == {k: v.shape for k, v in conv.state_dict().items()}
    layer.load_state_dict(conv.state_dict())
    x = torch.randn(2, 6, 6, 6).contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(layer(x), conv(x))


def test_the_darts_operations_use_it_for_their_1x1_convolutions():
    assert isinstance(ReLUConvBN(4, 6, 1, 1, 0)[1], Pointwise)
    assert type(ReLUConvBN(4, 6, 3, 1, 1)[1]) is nn.Conv2d  # other kernels stay convolutions
    assert isinstance(DilConv(4, 4, 3, 1, 2, 2)[2], Pointwise)
    assert all(isinstance(block[2], Pointwise) for block in SepConv(4, 4, 3, 2, 1))
    reduce = FactorizedReduce(4, 6)
    assert isinstance(reduce.conv_1, Pointwise) and reduce.conv_1.stride == (2, 2)


def outputs_and_gradients(function, x: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """(y, ∂L/∂x, ∂L/∂weight) of y = function(x) for L = Σ y · r, r a fixed ramp from −1 to 1 (float64)."""
    weight.grad = None
    a = x.clone().requires_grad_()
    y = function(a)
    y.backward(torch.linspace(-1, 1, y.numel(), dtype=torch.float64).view_as(y))
    return y.detach(), a.grad, weight.grad


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("kernel,dilation,stride,size", [(3, 2, 1, 7), (5, 2, 1, 8), (3, 1, 1, 6), (3, 2, 2, 8),
                                                         (5, 2, 2, 7), (3, 1, 2, 8)])
def test_depthwise_is_the_depthwise_convolution_forward_and_backward(channels_last, kernel, dilation, stride, size):
    torch.manual_seed(0)
    padding = dilation * (kernel - 1) // 2
    layer = Depthwise(5, kernel, stride, padding, dilation).double()
    conv = nn.Conv2d(5, 5, kernel, stride, padding, dilation=dilation, groups=5, bias=False).double()
    conv.load_state_dict(layer.state_dict())
    x = torch.randn(3, 5, size, size, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    results = [outputs_and_gradients(module, x, module.weight) for module in (conv, layer)]
    for ours, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert layer.fast == (dilation > 1)
    assert results[1][0].is_contiguous(memory_format=torch.channels_last) == channels_last


def test_dilated_depthwise_has_second_order_gradients():
    """RobustDARTS' Hessian (search.cures) differentiates gradients: the fast backward is itself differentiable."""
    from ltnas.space.convolutions import _DilatedDepthwise

    torch.manual_seed(0)
    x = torch.randn(2, 2, 5, 5, dtype=torch.float64).contiguous(memory_format=torch.channels_last).requires_grad_()
    weight = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, w: _DilatedDepthwise.apply(a, w, 2), (x, weight))
    assert torch.autograd.gradgradcheck(lambda a, w: _DilatedDepthwise.apply(a, w, 2), (x, weight))


@pytest.mark.parametrize("every,kernel,dilation,height,width", [
    (True, 3, 2, 6, 4), (True, 5, 2, 8, 8), (True, 3, 3, 9, 6), (True, 5, 2, 2, 2), (True, 5, 2, 4, 2),
    (False, 3, 2, 6, 4), (False, 5, 2, 7, 5), (False, 3, 3, 8, 10), (False, 5, 2, 3, 3)])
def test_dilated_depthwise_as_undilated_phases(every, kernel, dilation, height, width):
    """Both phase routes give the dilated convolution's output (stride 1 and stride d), gradients and gradients of
    gradients (RobustDARTS' Hessian) in float64, channels_last; the stride-d one also on sizes d does not divide; and
    on phase images smaller than the filter's reach (1×1 and 2×1 phases of a 2×2 and a 4×2 map, the quickstart's
    last cell), where the filter is cut to the taps that reach them."""
    from ltnas.space.convolutions import _UndilatedPhases

    stride = 1 if every else dilation
    torch.manual_seed(0)
    x = torch.randn(2, 3, height, width, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(3, 1, kernel, kernel, dtype=torch.float64)
    x.requires_grad_(), weight.requires_grad_()
    ours = lambda a, w: _UndilatedPhases.apply(a, w, dilation, every)  # noqa: E731
    theirs = lambda a, w: F.conv2d(a, w, None, stride, dilation * (kernel - 1) // 2, dilation, 3)  # noqa: E731
    torch.testing.assert_close(ours(x, weight), theirs(x, weight), rtol=1e-12, atol=1e-12)
    assert ours(x, weight).is_contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(ours, (x, weight))
    assert torch.autograd.gradgradcheck(ours, (x, weight))


@pytest.mark.parametrize("size,stride,route", [(8, 1, "all phases"), (16, 1, "input gradient"),
                                               (7, 1, "input gradient"), (16, 2, "phase (0, 0)"),
                                               (4, 2, "phase (0, 0)")])
def test_dilated_depthwise_takes_the_route_measured_fastest(monkeypatch, size, stride, route):
    """Stride d: the phase (0, 0); stride 1: the d² phases on maps up to POLYPHASE_MAX_PIXELS (and divisible by
    d), else the input gradient as a convolution."""
    from ltnas.space import convolutions

    taken = []
    phases, gradient = convolutions._UndilatedPhases.apply, convolutions._DilatedDepthwise.apply
    monkeypatch.setattr(convolutions._UndilatedPhases, "apply",
                        lambda *a: taken.append("all phases" if a[3] else "phase (0, 0)") or phases(*a))
    monkeypatch.setattr(convolutions._DilatedDepthwise, "apply", lambda *a: taken.append("input gradient") or gradient(*a))
    x = torch.randn(1, 2, size, size).contiguous(memory_format=torch.channels_last)
    convolutions.dilated_depthwise(x, torch.randn(2, 1, 3, 3), 2, stride)
    assert taken == [route]
    assert convolutions.POLYPHASE_MAX_PIXELS == 64


@pytest.mark.parametrize("size,stride", [(6, 1), (12, 1), (12, 2)])  # each route (above)
def test_dilated_depthwise_backward_under_bf16_autocast(size, stride):
    layer = Depthwise(4, 3, stride, 2, 2).to(memory_format=torch.channels_last)
    x = torch.randn(2, 4, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    y.float().sum().backward()
    assert y.dtype == torch.bfloat16 and x.grad.dtype == layer.weight.grad.dtype == torch.float32
    reference = torch.autograd.grad(F.conv2d(x, layer.weight, None, stride, 2, 2, 4).sum(), x)[0]
    torch.testing.assert_close(x.grad, reference, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("kernel,height,width", [(5, 2, 2), (5, 1, 1), (3, 1, 1), (5, 3, 1), (5, 2, 4), (3, 2, 2)])
def test_depthwise_on_maps_smaller_than_its_filter(monkeypatch, kernel, height, width):
    """On a map narrower than a same-padded filter's reach (the quickstart's 2×2 and 1×1 maps, in evaluation or
    with the products route off) the convolution runs with the filter cut to the taps that reach the map: the same
    output and input gradient in float64, channels_last, and a weight gradient that is zero on the cut taps, as the
    full convolution's is."""
    from ltnas.space import convolutions
    from ltnas.space.convolutions import reachable_taps

    monkeypatch.setattr(convolutions, "PRODUCTS_MAX_PIXELS", 0)
    torch.manual_seed(0)
    padding = (kernel - 1) // 2
    layer = Depthwise(4, kernel, 1, padding).double()
    x = torch.randn(3, 4, height, width, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    results = [outputs_and_gradients(function, x, layer.weight)
               for function in (lambda a: F.conv2d(a, layer.weight, None, 1, padding, 1, 4), layer)]
    for ours, theirs in zip(results[1], results[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert results[1][0].is_contiguous(memory_format=torch.channels_last)
    taps, pads = reachable_taps(layer.weight, padding, height, width)
    cut_h, cut_w = max(0, padding - height + 1), max(0, padding - width + 1)
    assert taps.shape[-2:] == (kernel - 2 * cut_h, kernel - 2 * cut_w) and pads == (padding - cut_h, padding - cut_w)
    assert cut_h + cut_w > 0 or kernel == 3 and height == 2  # every case but the last cuts
    grad = results[1][2][0, 0]
    assert grad[cut_h: kernel - cut_h, cut_w: kernel - cut_w].abs().min() > 0
    assert grad.abs().sum() == grad[cut_h: kernel - cut_h, cut_w: kernel - cut_w].abs().sum()


@pytest.mark.parametrize("height,width,kernel,stride,padding,dilation", [
    (2, 2, 3, 1, 1, 1), (2, 2, 3, 1, 2, 2), (2, 2, 5, 1, 2, 1), (2, 2, 5, 1, 4, 2), (2, 2, 3, 2, 1, 1),
    (1, 1, 3, 1, 1, 1), (2, 1, 3, 1, 1, 1), (1, 2, 5, 2, 2, 1)])
def test_depthwise_as_products_is_the_convolution(height, width, kernel, stride, padding, dilation):
    """The per-pixel products give the depthwise convolution's output and both gradients in float64 (any filter
    size, stride, padding, dilation; a 1×1 output), channels_last out and in the input gradient, and gradients of
    gradients (RobustDARTS' Hessian)."""
    from ltnas.space.convolutions import depthwise_as_products

    torch.manual_seed(0)
    x = torch.randn(3, 4, height, width, dtype=torch.float64).contiguous(memory_format=torch.channels_last)
    weight = torch.randn(4, 1, kernel, kernel, dtype=torch.float64)
    x.requires_grad_(), weight.requires_grad_()
    ours = lambda a, w: depthwise_as_products(a, w, stride, padding, dilation)  # noqa: E731
    theirs = lambda a, w: F.conv2d(a, w, None, stride, padding, dilation, 4)  # noqa: E731
    y, expected = ours(x, weight), theirs(x, weight)
    torch.testing.assert_close(y, expected, rtol=1e-12, atol=1e-12)
    upstream = torch.randn_like(y)
    gradients = torch.autograd.grad(y, (x, weight), upstream)
    for a, b in zip(gradients, torch.autograd.grad(expected, (x, weight), upstream)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert gradients[0].is_contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradgradcheck(ours, (x, weight))


def test_tap_index_by_hand():
    """T[o, p]: the tap through which output pixel o reads input pixel p, k² for none. A 3×3 filter, padding 1, on a
    2×2 map reaches every pixel from every output pixel; dilated 2 (padding 2) only through its centre."""
    from ltnas.space.convolutions import tap_index

    taps, out_h, out_w = tap_index(2, 2, 3, 1, 1, 1, torch.device("cpu"))
    assert (out_h, out_w) == (2, 2)
    assert taps.tolist() == [[4, 5, 7, 8], [3, 4, 6, 7], [1, 2, 4, 5], [0, 1, 3, 4]]
    assert tap_index(2, 2, 3, 1, 2, 2, torch.device("cpu"))[0].tolist() == [[4, 9, 9, 9], [9, 4, 9, 9], [9, 9, 4, 9],
                                                                           [9, 9, 9, 4]]
    assert tap_index(2, 2, 3, 2, 1, 1, torch.device("cpu"))[0].tolist() == [[4, 5, 7, 8]]  # stride 2: one pixel out


@pytest.mark.parametrize("size,grad,channels_last,products", [(2, True, True, True), (1, True, True, True),
                                                               (4, True, True, False), (2, False, True, False),
                                                               (2, True, False, False)])
def test_depthwise_takes_the_products_on_the_smallest_maps_in_training(monkeypatch, size, grad, channels_last,
                                                                       products):
    """Training on maps of at most PRODUCTS_MAX_PIXELS pixels, channels_last on the CPU: the products, for dilated
    filters too; 4×4 maps, evaluation and NCHW tensors: the library's layer (with the routes above)."""
    from ltnas.space import convolutions

    taken, route = [], convolutions.depthwise_as_products
    monkeypatch.setattr(convolutions, "depthwise_as_products", lambda *a: taken.append(1) or route(*a))
    x = torch.randn(2, 3, size, size)
    x = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    for dilation in (1, 2):
        with torch.set_grad_enabled(grad):
            Depthwise(3, 3, 1, dilation, dilation)(x)
    assert taken == ([1, 1] if products else [])
    assert convolutions.PRODUCTS_MAX_PIXELS == 4


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize("height,width", [(8, 8), (7, 7), (4, 6), (5, 4), (2, 2)])
def test_factorized_reduce_keeps_the_original_sums_and_the_gradient_layout(channels_last, height, width):
    """FactorizedReduce slices its grids on the pixels' (N, H, W, C) view (`pixel_grid`): the same output and
    gradients in float64 as the original formula, relu(x) through conv_1 at stride 2 beside pad(relu(x))[1:, 1:]
    through conv_2 at stride 2, on even and odd maps; and for channels_last x the input gradient channels_last (the
    plain slices' backward scattered it into NCHW zeros, and the ReLU's backward ran 20× slower on it)."""
    torch.manual_seed(0)
    op = FactorizedReduce(6, 8).double()
    x = torch.randn(3, 6, height, width, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def original(a: torch.Tensor) -> torch.Tensor:
        relu = torch.relu(a)
        shifted = F.pad(relu, (0, 1, 0, 1))[:, :, 1:, 1:]
        return op.bn(torch.cat([F.conv2d(relu, op.conv_1.weight, stride=2),
                                F.conv2d(shifted, op.conv_2.weight, stride=2)], dim=1))

    grads = []
    for function in (original, op):
        op.zero_grad()
        a = x.clone().requires_grad_()
        y = function(a)
        y.backward(torch.linspace(-1, 1, y.numel(), dtype=torch.float64).view_as(y))
        grads.append((y.detach(), a.grad, op.conv_1.weight.grad, op.conv_2.weight.grad))
    for ours, theirs in zip(grads[1], grads[0]):
        torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)
    assert grads[1][0].shape[-2:] == ((height + 1) // 2, (width + 1) // 2)
    if channels_last:
        assert grads[1][0].is_contiguous(memory_format=torch.channels_last)
        assert grads[1][1].is_contiguous(memory_format=torch.channels_last)


def test_pixel_grid_is_the_slice_with_the_gradient_in_the_input_layout():
    from ltnas.space.convolutions import factorized_grids, pixel_grid

    x = torch.randn(2, 5, 6, 6).contiguous(memory_format=torch.channels_last).requires_grad_()
    grid = pixel_grid(x, 1)
    assert torch.equal(grid, x[:, :, 1::2, 1::2])
    grid.sum().backward()
    assert x.grad.is_contiguous(memory_format=torch.channels_last)
    assert x.grad.sum() == grid.numel() and x.grad[:, :, 1::2, 1::2].eq(1).all()
    nchw = torch.randn(2, 5, 6, 6)
    assert pixel_grid(nchw, 0).stride() == nchw[:, :, ::2, ::2].stride()  # NCHW tensors: the plain slice
    first, second = factorized_grids(torch.arange(2 * 3 * 3, dtype=torch.float32).view(1, 2, 3, 3))
    assert first[0, 0].tolist() == [[0, 2], [6, 8]] and second[0, 0].tolist() == [[4, 0], [0, 0]]  # odd: zero beyond


@pytest.mark.parametrize("genotype", ["DARTS_V2", "PDARTS", "FairDARTS_a"])
def test_retraining_steps_keep_every_layer_in_channels_last(genotype):
    """A channels_last cell network's training step (auxiliary head and drop-path on, one-channel 8×8 images: the
    quickstart's maps 8×8 → 4×4 → 2×2) hands no BatchNorm, ReLU or pooling an activation or gradient outside
    channels_last, and no convolution an NCHW one: the cell outputs' concatenation, FactorizedReduce's grids and
    the global pooling each did before."""
    from conftest import nchw_layer_calls
    from ltnas.space import DiscreteNetwork, load_genotype

    torch.manual_seed(0)
    network = DiscreteNetwork(load_genotype(genotype), 8, 5, 6, auxiliary=True, in_channels=1, image_size=8)
    network = network.to(memory_format=torch.channels_last)
    network.drop_path_prob = 0.2
    x, y = torch.randn(6, 1, 8, 8), torch.randint(0, 5, (6,))

    def step() -> None:
        logits, auxiliary = network(x)
        (F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(auxiliary, y)).backward()

    assert nchw_layer_calls(step) == []
