"""The DARTS candidate operations, as small modules registered by name.

Each builder takes `(channels, stride, affine)`. During search every BatchNorm is affine-free
(`affine=False`) and pooling is followed by one (see `search_network.MixedEdge`), as in DARTS, so
that no operation gets a learnable scale that competes with its architecture weight.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ltnas.config import PRIMITIVES
from ltnas.errors import LtnasError
from ltnas.space.convolutions import Depthwise, Pointwise, padded_to_even, pixel_grid

__all__ = ["PRIMITIVES", "OPS", "make_op", "ReLUConvBN", "FactorizedReduce", "SepConv", "DilConv", "Zero"]


class ReLUConvBN(nn.Sequential):
    """ReLU, k×k convolution, BN (a cell's preprocessing: 1×1, computed by `Pointwise`)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int, affine: bool = True):
        super().__init__(
            nn.ReLU(inplace=False),
            Pointwise(c_in, c_out, stride) if kernel == 1 and padding == 0 else
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out, affine=affine),
        )


class DilConv(nn.Sequential):
    """ReLU, depthwise k×k with dilation (`Depthwise`), pointwise 1×1 (`Pointwise`), BN."""

    def __init__(self, c_in, c_out, kernel, stride, padding, dilation, affine=True):
        super().__init__(
            nn.ReLU(inplace=False),
            Depthwise(c_in, kernel, stride, padding, dilation),
            Pointwise(c_in, c_out),
            nn.BatchNorm2d(c_out, affine=affine),
        )

    def forward_after_relu(self, x: torch.Tensor) -> torch.Tensor:
        """The op on an input that has already been through its leading ReLU (shared by the
        supernet across the operations that start with it)."""
        for module in list(self)[1:]:
            x = module(x)
        return x


class SepConv(nn.Sequential):
    """Two stacked (ReLU, depthwise k×k, pointwise 1×1, BN) blocks; only the first one strides."""

    def __init__(self, c_in, c_out, kernel, stride, padding, affine=True):
        super().__init__(
            DilConv(c_in, c_in, kernel, stride, padding, dilation=1, affine=affine),
            DilConv(c_in, c_out, kernel, 1, padding, dilation=1, affine=affine),
        )

    def forward_after_relu(self, x: torch.Tensor) -> torch.Tensor:
        return self[1](self[0].forward_after_relu(x))


class Zero(nn.Module):
    """The `none` operation: zeros of the output shape."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return x.mul(0.0)
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


class FactorizedReduce(nn.Module):
    """Halve the resolution without losing half the pixels: two stride-2 1×1 convs, offset by one pixel."""

    def __init__(self, c_in: int, c_out: int, affine: bool = True):
        super().__init__()
        if c_out % 2:
            raise ValueError(f"FactorizedReduce needs an even number of output channels, got {c_out}")
        self.relu = nn.ReLU(inplace=False)
        self.conv_1 = Pointwise(c_in, c_out // 2, stride=2)
        self.conv_2 = Pointwise(c_in, c_out // 2, stride=2)
        self.bn = nn.BatchNorm2d(c_out, affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_after_relu(self.relu(x))

    def forward_after_relu(self, x: torch.Tensor) -> torch.Tensor:
        # The original slices x[:, :, 1:, 1:]; on odd sizes (e.g. 7×7 maps of 28×28 inputs) padding by one first
        # keeps both halves the same shape. `pixel_grid` slices so that x's gradient keeps x's layout.
        shifted = pixel_grid(padded_to_even(x), 1, step=1)
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


OpBuilder = Callable[[int, int, bool], nn.Module]

OPS: dict[str, OpBuilder] = {
    "none": lambda c, stride, affine: Zero(stride),
    "max_pool_3x3": lambda c, stride, affine: nn.MaxPool2d(3, stride=stride, padding=1),
    "avg_pool_3x3": lambda c, stride, affine: nn.AvgPool2d(3, stride=stride, padding=1, count_include_pad=False),
    "skip_connect": lambda c, stride, affine: nn.Identity() if stride == 1 else FactorizedReduce(c, c, affine),
    "sep_conv_3x3": lambda c, stride, affine: SepConv(c, c, 3, stride, 1, affine),
    "sep_conv_5x5": lambda c, stride, affine: SepConv(c, c, 5, stride, 2, affine),
    "dil_conv_3x3": lambda c, stride, affine: DilConv(c, c, 3, stride, 2, 2, affine),
    "dil_conv_5x5": lambda c, stride, affine: DilConv(c, c, 5, stride, 4, 2, affine),
}
assert tuple(OPS) == PRIMITIVES  # one order everywhere: α columns, derivation, plots


def make_op(name: str, channels: int, stride: int, affine: bool) -> nn.Module:
    if name not in OPS:
        raise LtnasError(f"unknown primitive '{name}'; choose from {', '.join(OPS)}")
    return OPS[name](channels, stride, affine)
