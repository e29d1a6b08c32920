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

**Dilated depthwise convolutions with the input gradient as a convolution.** For a depthwise filter w_c with
dilation d, stride 1 and "same" padding p = d(k−1)/2, the gradient of the input is the correlation of the output
gradient g with the filter turned by 180°, at the same dilation and padding:

    ∂L/∂x[n, c, i, j] = Σ_{a,b} g[n, c, i + p − d·a, j + p − d·b] · w_c[a, b]
                      = (g ⋆ rot180(w_c))[n, c, i, j]

which is a forward depthwise convolution. The library computes its dilated depthwise convolutions' input
gradients on a slow general path (about 5× the forward's time at stride 1, up to 100× at stride 2); as a forward
convolution the stride-1 layer takes up to 1.8× less in all (1.4–1.8× at the DARTS sizes, about even on the
quickstart's small maps). A stride-s layer is the stride-1 layer's output at every s-th pixel (same padding:
output pixel i is the stride-1 pixel s·i), computed so, which takes 1.3–3.5× less than the library's strided layer
despite the larger forward (but 0.74–0.82× for a 5×5 filter on the quickstart's smallest maps). The weight gradient stays the
library's. The backward is built from differentiable operations, so gradients of gradients (RobustDARTS'
Hessian, `search.cures`) still flow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Devices where the routes below were measured faster than the plain convolution (benchmarks/RESULTS.md); on an
# H200 GPU both were slower at every size measured (0.24–0.95×: there the layers are launch-bound).
FAST_DEVICES = ("cpu",)
# The largest input (numbers) whose 1×1 convolution runs as a matrix product: up to 2¹⁸ it measured 1.2–2.5× the
# convolution, above it 0.73–1.14× (benchmarks/conv_routes.py).
MATMUL_MAX_NUMEL = 1 << 18


def fast_route(x: torch.Tensor) -> bool:
    """Whether x's convolutions take the faster route: x is 4-d, channels_last, on a device of `FAST_DEVICES`."""
    return x.dim() == 4 and x.device.type in FAST_DEVICES and x.is_contiguous(memory_format=torch.channels_last)


# --- pointwise ---------------------------------------------------------------------------------------------

def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """y[n, o, i, j] = Σ_c W[o, c] x[n, c, s·i, s·j] for W = `weight` (O, C, 1, 1) and s = `stride`: the
    result of `F.conv2d(x, weight, stride=stride)`, in x's memory layout."""
    if not (fast_route(x) and x.numel() <= MATMUL_MAX_NUMEL):
        return F.conv2d(x, weight, stride=stride)
    return pointwise_as_matmul(x, weight, stride)


def pointwise_as_matmul(x: torch.Tensor, weight: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """The 1×1 convolution as `F.linear` over the channel axis of x's pixels (rows × Wᵀ); for channels_last x no
    copy in or out."""
    if stride != 1:
        x = x[:, :, ::stride, ::stride]
    return F.linear(x.permute(0, 2, 3, 1), weight.flatten(1)).permute(0, 3, 1, 2)


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
    bias=False)`); the dilated, same-padded ones compute their input gradient as a convolution, at stride s as
    the stride-1 layer's every s-th output pixel."""

    def __init__(self, channels: int, kernel: int, stride: int, padding: int, dilation: int = 1):
        super().__init__(channels, channels, kernel, stride, padding, dilation=dilation, groups=channels, bias=False)
        self.fast = dilation > 1 and padding == dilation * (kernel - 1) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.fast and fast_route(x) and torch.is_grad_enabled()):
            return super().forward(x)
        return dilated_depthwise(x, self.weight, self.dilation[0], self.stride[0])


def dilated_depthwise(x: torch.Tensor, weight: torch.Tensor, dilation: int, stride: int = 1) -> torch.Tensor:
    """The same-padded dilated depthwise convolution with the input gradient as a convolution; at stride s the
    stride-1 layer's every s-th pixel (channels_last, as the next layer's fast route wants it)."""
    y = _DilatedDepthwise.apply(x, weight, dilation)
    return y if stride == 1 else y[:, :, ::stride, ::stride].contiguous(memory_format=torch.channels_last)
