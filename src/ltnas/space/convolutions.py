"""The convolutions of the DARTS operations, computed the way the CPU library runs them fastest.

Both layers are `nn.Conv2d`s (same parameters, state and multiply-add counts; checkpoints load either way) whose
forward gives the convolution's numbers — the same sums, equal in float64 to rounding — by a faster route on the
devices where that route was measured faster (`FAST_DEVICES`), for channels_last tensors; elsewhere (NCHW tensors,
other devices) they run the plain convolution. Measured in benchmarks/RESULTS.md ("Convolutions of the DARTS
operations on the CPU", issue 12).

**Pointwise (1×1) convolutions as matrix products.** A bias-free 1×1 convolution with stride s is per pixel a
matrix–vector product,

    y[n, o, i, j] = Σ_c W[o, c] · x[n, c, s·i, s·j],

and in channels_last memory a batch's pixels are the rows of an (N·H·W) × C matrix: the whole layer is one
`F.linear` (rows × Wᵀ) with no copy in or out. Where the activations are small (the quickstart's cells and
supernet) torch runs that 1.2–2.5× faster forward and backward than the library's 1×1 convolution; on larger
ones (the DARTS sizes) the two come out even or the convolution ahead (0.73–1.14×), so activations above
`MATMUL_MAX_NUMEL` numbers keep the convolution.

**Dilated depthwise convolutions as undilated ones.** For a depthwise k×k filter w_c (k odd, m = (k−1)/2) with
dilation d and "same" padding p = d·m, the output at pixel (d·i + r, d·j + q) reads only input pixels of the same
phase (r, q) modulo d:

    y[n, c, d·i + r, d·j + q] = Σ_{a,b} w_c[a, b] · x[n, c, d(i + a − m) + r, d(j + b − m) + q]
                              = (x_rq ⋆ w_c)[n, c, i, j]    with x_rq[i, j] = x[d·i + r, d·j + q],

an *undilated* same-padded convolution (padding m) of the phase image x_rq, zero outside it exactly where x is
(for H, W divisible by d). So

- at stride d (the reduction cells' dilated convolutions) the layer is the undilated convolution of the phase
  (0, 0), x[:, :, ::d, ::d], with padding m — a d²-th of the work, for any H and W;
- at stride 1 it is the undilated convolution of the d² phase images stacked along the batch
  (both `_UndilatedPhases`).

The library's undilated depthwise kernels are fast forward and backward, its dilated ones slow backward (its
weight gradients above all). A layer's forward + both gradients measured 1.7–13× the dilated layer at stride d at
every size, and 1.4–3.5× at stride 1 on maps of at most `POLYPHASE_MAX_PIXELS` pixels (but 0.67–0.96× for a 3×3
filter on 8×8 maps of at most 36 channels); on larger maps the phase copies cost more than they save (0.65–1.1×
the route below), and there the input gradient is computed as a convolution instead:

    ∂L/∂x[n, c, i, j] = Σ_{a,b} g[n, c, i + p − d·a, j + p − d·b] · w_c[a, b]
                      = (g ⋆ rot180(w_c))[n, c, i, j],

a forward depthwise convolution of the output gradient g with the filter turned by 180° (the library's own input
gradient takes about 5× the forward's time); the weight gradient stays the library's (`_DilatedDepthwise`).
Without gradients the plain dilated layer is fastest (the phase copies cost more than its forward), so
evaluation keeps it. Every route is built from differentiable operations, so gradients of gradients (RobustDARTS'
Hessian, `search.cures`) still flow.

**Depthwise convolutions on the smallest maps as products.** On an H×W map a depthwise filter is, per channel, a
linear map of the map's P = H·W pixels to the output's P' pixels: output pixel o = (i, j) reads input pixel
p = (u, v) through tap (a, b) exactly when u = s·i + d·a − pad and v = s·j + d·b − pad, so

    y[n, c, o] = Σ_p M_c[o, p] · x[n, c, p],    M_c[o, p] = w_c[a, b] for that tap, 0 where no tap joins them.

On maps of at most `PRODUCTS_MAX_PIXELS` pixels (the 2×2 maps of the quickstart's last cells) the library's
backward — its weight gradient above all — takes several times its forward, while the P'·P·C products and one sum
over p are a few small element-wise operations; in training the layer runs that way (`depthwise_as_products`), any
filter size, stride, padding and dilation.

**Filters larger than the map.** A same-padded k×k filter (k = 2m + 1) at stride 1 reads input pixel i + a − m
for output pixel i, so on an H×W map tap a touches the map only if |a − m| ≤ H − 1. On maps smaller than the
filter's reach — the quickstart's last cell runs a 5×5 filter (or a dilated 3×3 as one) on 2×2 maps, and a
dilated filter's phase images there are 1×1 — the outer taps only ever multiply zero padding, and the layer runs
with the filter cut to the taps that reach (`reachable_taps`): the same sums with a 3×3 or 1×1 filter, and a
weight gradient that is zero on the cut taps, as the full layer's is. Only on the fast route
(`fast_route`), as the other routes here.
"""

from __future__ import annotations

import functools
import itertools

import torch
import torch.nn.functional as F
from torch import nn

# Devices where the routes below were measured faster than the plain convolution (benchmarks/RESULTS.md); on an
# H200 GPU both were slower at every size measured (0.24–0.95×: there the layers are launch-bound).
FAST_DEVICES = ("cpu",)
# The largest input (numbers) whose 1×1 convolution runs as a matrix product: up to 2¹⁸ it measured 1.2–2.5× the
# convolution, above it 0.73–1.14× (benchmarks/conv_routes.py).
MATMUL_MAX_NUMEL = 1 << 18
# The largest map (H·W pixels) whose stride-1 dilated depthwise convolution runs as d² undilated ones: on 4×4 and
# 8×8 maps 1.4–3.5× the dilated layer in training (0.67–0.96× only for 3×3 filters on 8×8 maps of ≤ 36 channels),
# on 16×16 and 32×32 maps 0.65–1.1× the input-gradient route (benchmarks/RESULTS.md, "Dilated convolutions as
# undilated ones").
POLYPHASE_MAX_PIXELS = 64
# The largest map (H·W pixels) whose depthwise convolution trains as per-pixel products (`depthwise_as_products`):
# on the quickstart's 2×2 maps 1.7–3.7× the layer's other routes forward + backward, on 4×4 maps 0.19–1.22× (the
# undilated 3×3 0.19–0.50×) (benchmarks/conv_routes.py --table products; RESULTS.md, "Depthwise filters on 2×2 maps").
PRODUCTS_MAX_PIXELS = 4


def fast_route(x: torch.Tensor) -> bool:
    """Whether x's convolutions take the faster route: x is 4-d, channels_last, on a device of `FAST_DEVICES`."""
    return x.dim() == 4 and x.device.type in FAST_DEVICES and x.is_contiguous(memory_format=torch.channels_last)


def is_nhwc(x: torch.Tensor) -> bool:
    """Whether x is a 4-d tensor in channels_last memory and not also NCHW (as one channel or one pixel would be)."""
    return x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class _GradientInLayout(torch.autograd.Function):
    """The identity, whose backward hands on the incoming gradient in the channels_last layout of its input."""

    @staticmethod
    def forward(ctx, y: torch.Tensor) -> torch.Tensor:
        return y.view_as(y)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad.contiguous(memory_format=torch.channels_last)


def gradient_in_layout(y: torch.Tensor) -> torch.Tensor:
    """y (channels_last), whose gradient reaches the layers that made it in channels_last too, at the cost of one
    copy. Backward passes of splitting operations hand on gradients in other layouts: a channel concatenation gives
    each input a strided slice of the output's gradient, the fused edges' 5-d weighted sum stacks them into NCHW
    memory, a global average pooling expands one number per channel into NCHW. On the CPU a BatchNorm's backward
    with such a gradient for a channels_last input takes a path 3–12× slower than with both channels_last (a ReLU's
    or a pooling's alike), and the layers before it would get them too. Other tensors pass unchanged."""
    return _GradientInLayout.apply(y) if y.requires_grad and is_nhwc(y) else y


def pixel_grid(x: torch.Tensor, offset: int, step: int = 2) -> torch.Tensor:
    """x[:, :, offset::step, offset::step]. For channels_last x the slice is taken on x's (N, H, W, C) view, so that
    its backward, which scatters the gradient into zeros of the sliced tensor's shape in that shape's default
    layout, gives x's gradient in channels_last too (the slice of the NCHW view would give it in NCHW)."""
    if not is_nhwc(x):
        return x[:, :, offset::step, offset::step]
    return x.permute(0, 2, 3, 1)[:, offset::step, offset::step].permute(0, 3, 1, 2)


def padded_to_even(x: torch.Tensor) -> torch.Tensor:
    """x, with a zero row and column added below and right when H or W is odd (in x's layout), so that the pixel
    (2i + 1, 2j + 1) FactorizedReduce's second grid reads exists for every pixel (i, j) of the first, as in the
    original's x[:, :, 1:, 1:] after zero padding; even-sized x unchanged, without a copy."""
    return F.pad(x, (0, 1, 0, 1)) if x.shape[-2] % 2 or x.shape[-1] % 2 else x


def factorized_grids(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The two pixel grids FactorizedReduce reads, x[2i, 2j] and x[2i + 1, 2j + 1], both ⌈H/2⌉ × ⌈W/2⌉
    (`padded_to_even`), taken by `pixel_grid`."""
    return pixel_grid(x, 0), pixel_grid(padded_to_even(x), 1)


def nhwc_stem(stem: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """`stem(x)` with x and the output of the stem's first layer (a convolution) in NHWC memory. A one-channel batch
    is NCHW and NHWC at once and torch keeps its NCHW strides, so the first convolution of grey images comes out NCHW;
    the BatchNorm after it would run NCHW (and its backward, given an NHWC gradient, 5–12× slower), and so would every
    layer after it."""
    first = stem[0](x.contiguous(memory_format=torch.channels_last))
    return stem[1:](first.contiguous(memory_format=torch.channels_last))


# --- pointwise ---------------------------------------------------------------------------------------------

def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """y[n, o, i, j] = Σ_c W[o, c] x[n, c, s·i, s·j] for W = `weight` (O, C, 1, 1) and s = `stride`: the
    result of `F.conv2d(x, weight, stride=stride)`, in x's memory layout. Also on the fast route: a pixel-sliced
    view of a channels_last tensor (channels still adjacent in memory), such as FactorizedReduce's shifted grid."""
    if not (_channels_adjacent(x) and x.numel() <= MATMUL_MAX_NUMEL):
        return F.conv2d(x, weight, stride=stride)
    return pointwise_as_matmul(x, weight, stride)


def _channels_adjacent(x: torch.Tensor) -> bool:
    """x takes the fast route (`fast_route`), or is a slice of the pixels of such a tensor: 4-d, on a device of
    `FAST_DEVICES`, its channels adjacent in memory (stride 1). A size-1 dimension's stride says nothing, so a
    tensor of one channel or one pixel counts only by `fast_route`."""
    return (x.dim() == 4 and x.device.type in FAST_DEVICES and x.stride(1) == 1 and x.shape[1] > 1
            and x.shape[2] * x.shape[3] > 1) or fast_route(x)


def pointwise_as_matmul(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """The 1×1 convolution as `F.linear` over the channel axis of x's pixels (rows × Wᵀ); for channels_last x no
    copy in or out (strided or sliced pixels are gathered into rows first), and the gradient channels_last."""
    rows = x.permute(0, 2, 3, 1)
    if stride != 1:
        rows = rows[:, ::stride, ::stride]
    return F.linear(rows, weight.flatten(1)).permute(0, 3, 1, 2)


class Pointwise(nn.Conv2d):
    """A bias-free 1×1 convolution (`nn.Conv2d(c_in, c_out, 1, stride, bias=False)`) computed by `pointwise_conv`."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise_conv(x, self.weight, self.stride[0])


# --- dilated depthwise -------------------------------------------------------------------------------------

class _DilatedDepthwise(torch.autograd.Function):
    """y = depthwise conv of x with w (dilation d, stride 1, padding p = d(k−1)/2); the input gradient as the
    forward convolution of the output gradient with the 180°-turned filters."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, dilation: int) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.dilation = dilation
        return F.conv2d(x, weight, None, 1, _same_padding(weight, dilation), dilation, x.shape[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        x, weight = x.to(grad.dtype), weight.to(grad.dtype)  # under autocast the forward ran in grad's precision
        grad = grad.contiguous(memory_format=torch.channels_last)  # e.g. a strided slice's backward gives NCHW
        d, channels = ctx.dilation, x.shape[1]
        padding = _same_padding(weight, d)
        grad_x = grad_w = None
        if ctx.needs_input_grad[0]:
            grad_x = F.conv2d(grad, weight.flip(2, 3), None, 1, padding, d, channels)
        if ctx.needs_input_grad[1]:
            grad_w = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], [padding, padding], [d, d], False, [0, 0], channels,
                [False, True, False])[1]
        return grad_x, grad_w, None


def _same_padding(weight: torch.Tensor, dilation: int) -> int:
    return dilation * (weight.shape[-1] - 1) // 2


class Depthwise(nn.Conv2d):
    """A bias-free depthwise k×k convolution (`nn.Conv2d(c, c, k, stride, padding, dilation, groups=c,
    bias=False)`) computed by `depthwise_conv`."""

    def __init__(self, channels: int, kernel: int, stride: int, padding: int, dilation: int = 1):
        super().__init__(channels, channels, kernel, stride, padding, dilation=dilation, groups=channels, bias=False)

    @property
    def fast(self) -> bool:
        """Whether the layer trains through `dilated_depthwise` where the fast route runs."""
        return _dilated_same(self.kernel_size[0], self.padding[0], self.dilation[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return depthwise_conv(x, self.weight, self.stride[0], self.padding[0], self.dilation[0])


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int = 1, padding: int = 0,
                   dilation: int = 1) -> torch.Tensor:
    """`F.conv2d(x, weight, None, stride, padding, dilation, groups=C)` for depthwise filters `weight` (C, 1, k, k);
    where `fast_route(x)`, in training: on maps of at most `PRODUCTS_MAX_PIXELS` pixels by `depthwise_as_products`,
    a dilated, same-padded one with an odd k by `dilated_depthwise`."""
    training_fast = fast_route(x) and torch.is_grad_enabled()
    if training_fast and x.shape[-2] * x.shape[-1] <= PRODUCTS_MAX_PIXELS:
        return depthwise_as_products(x, weight, stride, padding, dilation)
    if training_fast and _dilated_same(weight.shape[-1], padding, dilation):
        return dilated_depthwise(x, weight, dilation, stride)
    if stride == dilation == 1 and _same_square(weight, padding) and fast_route(x):
        weight, pads = reachable_taps(weight, padding, *x.shape[-2:])
        return F.conv2d(x, weight, None, 1, pads, 1, x.shape[1])
    return F.conv2d(x, weight, None, stride, padding, dilation, x.shape[1])


def depthwise_as_products(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                          dilation: int) -> torch.Tensor:
    """The depthwise convolution of channels_last x with `weight` (C, 1, k, k) as y[n, o, c] = Σ_p M_c[o, p] x[n, p, c]
    over x's pixels p (see the module's docstring): the filters spread into the (P', P) matrices by `tap_index`
    (the taps' gradient gathered back by autograd), one product with the pixels and one sum. Channels_last out."""
    n, c, h, w = x.shape
    k = weight.shape[-1]
    taps, out_h, out_w = tap_index(h, w, k, stride, padding, dilation, x.device)
    # (P', P, C), channels fastest as in x, so that the products and their gradients keep x's layout; index k² → 0
    matrices = F.pad(weight.reshape(c, k * k), (0, 1))[:, taps].permute(1, 2, 0).contiguous()
    pixels = x.permute(0, 2, 3, 1).reshape(n, 1, h * w, c)  # (N, 1, P, C): channels_last memory, no copy
    return (matrices * pixels).sum(2).reshape(n, out_h, out_w, c).permute(0, 3, 1, 2)


@functools.lru_cache(maxsize=64)
def tap_index(height: int, width: int, kernel: int, stride: int, padding: int, dilation: int,
              device: torch.device) -> tuple[torch.Tensor, int, int]:
    """(T, H', W'): T[o, p] is the flat index a·k + b of the tap through which output pixel o = (i, j) of a k×k
    filter (stride s, padding, dilation d) reads input pixel p = (u, v) — u = s·i + d·a − padding, v = s·j + d·b −
    padding — and k² where no tap does; H'×W' the output's size."""
    out_h = (height + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    out_w = (width + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    taps = torch.full((out_h * out_w, height * width), kernel * kernel, dtype=torch.long)
    for i, j, a, b in itertools.product(range(out_h), range(out_w), range(kernel), range(kernel)):
        u, v = stride * i + dilation * a - padding, stride * j + dilation * b - padding
        if 0 <= u < height and 0 <= v < width:
            taps[i * out_w + j, u * width + v] = a * kernel + b
    return taps.to(device), out_h, out_w


def reachable_taps(weight: torch.Tensor, padding: int, height: int, width: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """A same-padded square filter (k = 2p + 1) at stride 1 on an H×W image, cut to the taps that can reach the
    image, with the padding that goes with them. Output pixel i reads input pixel i + a − p, so tap a touches the
    image only if |a − p| ≤ H − 1: on an image narrower than the filter's reach (H ≤ p) the outer p − H + 1 taps on
    each side only ever multiply the zero padding. The same sums with fewer products (a 5×5 filter on a 2×2 map is
    its middle 3×3, on a 1×1 map its centre), and the cut taps' weight gradient is zero, as theirs is."""
    cut_h, cut_w = max(0, padding - height + 1), max(0, padding - width + 1)
    if not (cut_h or cut_w):
        return weight, (padding, padding)
    size = weight.shape[-1]
    return weight[:, :, cut_h: size - cut_h, cut_w: size - cut_w], (padding - cut_h, padding - cut_w)


def _same_square(weight: torch.Tensor, padding: int) -> bool:
    """Whether `weight` is a square k×k filter with k = 2·padding + 1 ("same" padding at stride 1)."""
    return weight.shape[-1] == weight.shape[-2] == 2 * padding + 1


def _dilated_same(kernel: int, padding: int, dilation: int) -> bool:
    """A dilated odd k×k filter with "same" padding d(k−1)/2: the form `dilated_depthwise` computes."""
    return dilation > 1 and kernel % 2 == 1 and padding == dilation * (kernel - 1) // 2


def dilated_depthwise(x: torch.Tensor, weight: torch.Tensor, dilation: int, stride: int = 1) -> torch.Tensor:
    """The same-padded dilated depthwise convolution (odd square filters) by the fastest route measured for
    training: at stride d the phase (0, 0) undilated, at stride 1 on small maps the d² phases undilated, else the
    input gradient as a convolution (at another stride s: the stride-1 layer's every s-th pixel). Channels_last
    out, as the next layer's fast route wants it."""
    height, width = x.shape[-2:]
    if stride == dilation:
        return _UndilatedPhases.apply(x, weight, dilation, False)
    if stride == 1 and height % dilation == 0 and width % dilation == 0 and height * width <= POLYPHASE_MAX_PIXELS:
        return _UndilatedPhases.apply(x, weight, dilation, True)
    y = _DilatedDepthwise.apply(x, weight, dilation)
    return y if stride == 1 else y[:, :, ::stride, ::stride].contiguous(memory_format=torch.channels_last)


class _UndilatedPhases(torch.autograd.Function):
    """y = the same-padded dilated depthwise convolution of x (dilation d) as the undilated convolution (padding m)
    of its phase images: at stride d the phase (0, 0) alone (`every` False), at stride 1 all d² of them stacked
    along the batch (`every` True). Saves x, not the phase copies (the backward makes them again), so the route
    holds no more memory than the layer."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, d: int, every: bool) -> torch.Tensor:
        ctx.save_for_backward(x, weight)
        ctx.d, ctx.every = d, every
        phases = _phases(x, d, every)
        taps, pads = reachable_taps(weight, weight.shape[-1] // 2, *phases.shape[-2:])
        y = F.conv2d(phases, taps, None, 1, pads, 1, x.shape[1])
        return _unphase(y, x.shape[0], d) if every else y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, weight = ctx.saved_tensors
        x, weight = x.to(grad.dtype), weight.to(grad.dtype)  # under autocast the forward ran in grad's precision
        d, every = ctx.d, ctx.every
        grad = grad.contiguous(memory_format=torch.channels_last)
        phases = _phases(x, d, every)
        taps, pads = reachable_taps(weight, weight.shape[-1] // 2, *phases.shape[-2:])
        grad_x, grad_w = torch.ops.aten.convolution_backward(
            _phases(grad, d, True) if every else grad, phases, taps, None, [1, 1], list(pads), [1, 1],
            False, [0, 0], x.shape[1], [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])[:2]
        if grad_x is not None:
            grad_x = _unphase(grad_x, x.shape[0], d) if every else _scatter_phase(grad_x, x, d)
        if grad_w is not None and taps.shape != weight.shape:  # the cut taps' gradient: zero
            cut_h, cut_w = (weight.shape[-2] - taps.shape[-2]) // 2, (weight.shape[-1] - taps.shape[-1]) // 2
            grad_w = F.pad(grad_w, (cut_w, cut_w, cut_h, cut_h))
        return grad_x, grad_w, None, None


def _phases(x: torch.Tensor, d: int, every: bool) -> torch.Tensor:
    """x's phase images x_rq[i, j] = x[d·i + r, d·j + q], channels_last: (0, 0) alone, or all d² stacked along the
    batch, phase-major ((r, q, n) → batch index (r·d + q)·N + n)."""
    if not every:
        return x[:, :, ::d, ::d].contiguous(memory_format=torch.channels_last)
    n, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1)  # (N, H, W, C): channels_last memory, no copy
    phases = pixels.reshape(n, h // d, d, w // d, d, c).permute(2, 4, 0, 1, 3, 5).reshape(d * d * n, h // d, w // d, c)
    return phases.permute(0, 3, 1, 2)


def _unphase(y: torch.Tensor, n: int, d: int) -> torch.Tensor:
    """The inverse of `_phases(·, d, every=True)`: each phase image's pixels back at their places, channels_last.
    (For 1×1 phase images the last reshape is a view with the phases' strides, neither layout: hence `contiguous`.)"""
    _, c, h, w = y.shape
    pixels = y.permute(0, 2, 3, 1).reshape(d, d, n, h, w, c).permute(2, 3, 0, 4, 1, 5).reshape(n, h * d, w * d, c)
    return pixels.contiguous().permute(0, 3, 1, 2)


def _scatter_phase(grad: torch.Tensor, x: torch.Tensor, d: int) -> torch.Tensor:
    """A tensor shaped as x, `grad` at the phase (0, 0) pixels, zero elsewhere (the adjoint of x[::d, ::d])."""
    out = grad.new_zeros(x.shape).contiguous(memory_format=torch.channels_last)
    out[:, :, ::d, ::d] = grad
    return out
