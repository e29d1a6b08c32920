"""Hand-designed networks retrained beside searched cells: what a practitioner would train instead.

A registry by name (as timm's), each entry `build(num_classes, in_channels) -> nn.Module`. They go
through the same retrain recipe, long-tail plug-ins, metrics and reports as a genotype
(`train.network: NAME`; `ltnas compare CONFIG --methods darts,resnet32,cnn`):

- `resnet20`, `resnet32`, `resnet44`, `resnet56`, `resnet110`: the CIFAR ResNets of He et al. (2016),
  as LDAM-DRW (Cao et al., 2019) and most long-tail papers train them (`resnet_cifar.py` of
  LDAM-DRW): a 3×3 stem of 16 channels, three stages of n = (depth − 2)/6 basic blocks with 16, 32
  and 64 channels (the first block of stages 2 and 3 halves the resolution), option-A shortcuts
  (a stride-2 subsample padded with zero channels: no parameters), global average pooling and a
  linear classifier; Kaiming-normal initialisation of every convolution and linear layer. ResNet-32
  has 0.46M parameters for 10 classes, the published number.
- `cnn`: a small plain CNN for small images, three 3×3 conv-BN-ReLU blocks of 32, 64 and 128 channels
  with 2×2 max pooling after the first two, global average pooling and a linear classifier.

Every network keeps its last layer as one attribute, `classifier`, built by the shared
`make_classifier` (space/heads.py): linear, or LDAM-DRW's normalised (cosine) layer under LDAM.
ResNet-32 has 464,154 parameters for 10 classes (464,144 with the normalised classifier: no bias).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ltnas.errors import LtnasError
from ltnas.space.heads import make_classifier


class BasicBlock(nn.Module):
    """relu(bn(conv(relu(bn(conv(x))))) + shortcut(x)); option-A shortcut when the shape changes."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.pad = (planes - in_planes) // 2 if (stride != 1 or in_planes != planes) else None
        self.stride = stride

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        """Option A (He et al., 2016): identity, or x[:, :, ::2, ::2] with zero channels on both sides."""
        if self.pad is None:
            return x
        return F.pad(x[:, :, :: self.stride, :: self.stride], (0, 0, 0, 0, self.pad, self.pad))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """He et al.'s CIFAR ResNet of depth 6n + 2 (LDAM-DRW's `ResNet_s`)."""

    def __init__(self, depth: int, num_classes: int, in_channels: int = 3, normalised: bool = False):
        super().__init__()
        if (depth - 2) % 6 or depth < 8:
            raise LtnasError(f"a CIFAR ResNet has depth 6n + 2 (20, 32, 44, 56, 110), got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, in_planes = [], 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            for index in range(blocks):
                layers.append(BasicBlock(in_planes, planes, stride if index == 0 else 1))
                in_planes = planes
        self.layers = nn.Sequential(*layers)
        self.classifier = make_classifier(64, num_classes, normalised)
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layers(F.relu(self.bn1(self.conv1(x))))
        return self.classifier(F.adaptive_avg_pool2d(out, 1).flatten(1))


class SmallCNN(nn.Module):
    """Three 3×3 conv-BN-ReLU blocks (widths 32, 64, 128), 2×2 max pooling after the first two,
    global average pooling, linear classifier: 8×8 digits become 8×8 → 4×4 → 2×2 maps."""

    def __init__(self, num_classes: int, in_channels: int = 3, widths: tuple[int, ...] = (32, 64, 128),
                 normalised: bool = False):
        super().__init__()
        blocks, previous = [], in_channels
        for index, width in enumerate(widths):
            blocks += [nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU(inplace=True)]
            if index < len(widths) - 1:
                blocks.append(nn.MaxPool2d(2, ceil_mode=True))
            previous = width
        self.features = nn.Sequential(*blocks)
        self.classifier = make_classifier(previous, num_classes, normalised)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


BASELINES: dict[str, Callable[[int, int, bool], nn.Module]] = {
    **{f"resnet{depth}": (lambda classes, channels, normalised, depth=depth:
                          CifarResNet(depth, classes, channels, normalised))
       for depth in (20, 32, 44, 56, 110)},
    "cnn": lambda classes, channels, normalised: SmallCNN(classes, channels, normalised=normalised),
}


def build_baseline(name: str, num_classes: int, in_channels: int = 3, normalised: bool = False) -> nn.Module:
    """The registered baseline network `name` for `num_classes` classes and `in_channels`-channel images,
    with the normalised (cosine) classifier when `normalised` (LDAM)."""
    if name not in BASELINES:
        raise LtnasError(f"unknown network '{name}'; choose cell (a genotype) or one of {', '.join(BASELINES)}")
    return BASELINES[name](num_classes, in_channels, normalised)
