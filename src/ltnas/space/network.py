"""The discrete network a genotype describes, built for (re)training: DARTS' NetworkCIFAR, or with
`stem="imagenet"` its NetworkImageNet (Liu et al., 2019: the evaluation network of DARTS's Table 3).

Generalised in two ways the papers need: a cell may have any number of edges per node (FairDARTS),
and nodes left without input are pruned. Auxiliary head and drop-path follow the DARTS recipe.
"""

from __future__ import annotations

import torch
from torch import nn

from ltnas.errors import LtnasError
from ltnas.space.convolutions import gradient_in_layout
from ltnas.space.genotype import Genotype
from ltnas.space.heads import make_classifier
from ltnas.space.primitives import FactorizedReduce, ReLUConvBN, make_op
from ltnas.space.search_network import reduction_layers


def drop_path(x: torch.Tensor, drop_prob: float) -> torch.Tensor:
    """Zero whole samples of a path with probability p and rescale the rest (DARTS drop-path)."""
    if drop_prob <= 0.0:
        return x
    keep = 1.0 - drop_prob
    mask = torch.empty(x.size(0), 1, 1, 1, device=x.device, dtype=x.dtype).bernoulli_(keep)
    return x / keep * mask


class Cell(nn.Module):
    def __init__(self, genotype: Genotype, c_prev_prev: int, c_prev: int, channels: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.reduction = reduction
        kind = "reduce" if reduction else "normal"
        edges, concat = genotype.live_cell(kind)
        if not concat:
            raise LtnasError(
                f"the {kind} cell of genotype {genotype.name or ''} has no node with an input, so it outputs "
                "nothing; give it edges from the cell inputs (for a searched cell: search longer or lower "
                "search.threshold)"
            )
        if reduction_prev:
            self.preprocess0 = FactorizedReduce(c_prev_prev, channels)
        else:
            self.preprocess0 = ReLUConvBN(c_prev_prev, channels, 1, 1, 0)
        self.preprocess1 = ReLUConvBN(c_prev, channels, 1, 1, 0)
        self.edges = sorted(edges, key=lambda edge: edge.to_node)  # stable: keeps the genotype's order
        self.ops = nn.ModuleList(
            make_op(edge.op, channels, 2 if reduction and edge.from_node < 2 else 1, affine=True)
            for edge in self.edges
        )
        self.concat = concat
        self.multiplier = len(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, drop_prob: float = 0.0) -> torch.Tensor:
        states: dict[int, torch.Tensor] = {0: self.preprocess0(s0), 1: self.preprocess1(s1)}
        for edge, op in zip(self.edges, self.ops):
            out = op(states[edge.from_node])
            if self.training and drop_prob > 0 and not isinstance(op, nn.Identity):
                out = drop_path(out, drop_prob)
            states[edge.to_node] = states[edge.to_node] + out if edge.to_node in states else out
        # Each node's gradient comes back as a slice of the output's; `gradient_in_layout` hands it on channels_last.
        return torch.cat([gradient_in_layout(states[node]) for node in self.concat], dim=1)


class AuxiliaryHead(nn.Module):
    """DARTS' CIFAR auxiliary classifier: pool 5, stride 3 takes its 8×8 maps to 2×2. Maps too small
    for that (2×2 for 8×8 digits, 7×7 for 28×28 images) are pooled adaptively to the same 2×2."""

    def __init__(self, channels: int, num_classes: int, spatial: int, normalised: bool = False):
        super().__init__()
        pool = (nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False) if spatial >= 8
                else nn.AdaptiveAvgPool2d(2))
        self.features = auxiliary_features(pool, channels, batch_norm_768=True)
        self.classifier = make_classifier(768, num_classes, normalised)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


def auxiliary_features(pool: nn.Module, channels: int, batch_norm_768: bool) -> nn.Sequential:
    """DARTS' auxiliary tower: ReLU, `pool` (to 2×2), 1×1 conv to 128 + BN + ReLU, 2×2 conv to 768 (+ BN) + ReLU."""
    return nn.Sequential(
        nn.ReLU(inplace=True),
        pool,
        nn.Conv2d(channels, 128, 1, bias=False),
        nn.BatchNorm2d(128),
        nn.ReLU(inplace=True),
        nn.Conv2d(128, 768, 2, bias=False),
        *([nn.BatchNorm2d(768)] if batch_norm_768 else []),
        nn.ReLU(inplace=True),
    )


class AuxiliaryHeadImageNet(nn.Module):
    """DARTS' ImageNet auxiliary classifier. Its code says "assuming input size 14×14", but at 224 px the
    cell it follows (2L//3, a reduction cell) gives 7×7 maps, which pool 5, stride 2 takes to 2×2, and a
    2×2 convolution to 768×1×1. As in the authors' code (a BatchNorm after that convolution is commented
    out there "for consistency with the experiments in the paper") there is no BatchNorm after it. Maps
    other than 7×7 or 8×8 (smaller images) are pooled adaptively to the same 2×2."""

    def __init__(self, channels: int, num_classes: int, spatial: int, normalised: bool = False):
        super().__init__()
        pool = (nn.AvgPool2d(5, stride=2, padding=0, count_include_pad=False) if spatial in (7, 8)
                else nn.AdaptiveAvgPool2d(2))
        self.features = auxiliary_features(pool, channels, batch_norm_768=False)
        self.classifier = make_classifier(768, num_classes, normalised)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


STEMS = ("cifar", "imagenet")


def conv_out(size: int) -> int:
    """Side after a 3×3 convolution with stride 2 and padding 1: ⌈size / 2⌉."""
    return (size + 1) // 2


class DiscreteNetwork(nn.Module):
    """Stem, `layers` cells with reductions at L//3 and 2L//3, pooled linear head.

    stem "cifar" (DARTS' NetworkCIFAR): one 3×3 conv to 3C + BN, full resolution.
    stem "imagenet" (DARTS' NetworkImageNet): stem0 = conv3×3 s2 → C/2, BN, ReLU, conv3×3 s2 → C, BN;
    stem1 = ReLU, conv3×3 s2 → C, BN; the cells take (stem0, stem1) as their first two inputs, so the first
    cell reduces stem0's output (reduction_prev); `stem_multiplier` is unused. A 224-px image reaches the
    cells at 28×28, 14×14 after the first reduction, 7×7 after the second, and the global pool is DARTS'
    AvgPool2d(7) there (adaptive average pooling to 1×1, the same at 224 px, also fits other sizes).
    In training mode with `auxiliary=True`, `forward` returns `(logits, aux_logits)`; otherwise logits.
    Set `drop_path_prob` (scheduled by the trainer) to enable drop-path. `normalised`: LDAM-DRW's cosine
    classifier (space/heads.py) for both heads instead of linear ones.
    """

    def __init__(self, genotype: Genotype, C: int, num_classes: int, layers: int, auxiliary: bool = False,
                 in_channels: int = 3, *, image_size: int = 32, stem_multiplier: int = 3, normalised: bool = False,
                 stem: str = "cifar"):
        super().__init__()
        if stem not in STEMS:
            raise LtnasError(f"unknown stem '{stem}'; choose {' or '.join(STEMS)}")
        self.genotype = genotype
        self.drop_path_prob = 0.0
        self.stem_kind = stem
        if stem == "imagenet":
            self.stem0 = nn.Sequential(
                nn.Conv2d(in_channels, C // 2, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C // 2),
                nn.ReLU(inplace=True),
                nn.Conv2d(C // 2, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
            self.stem1 = nn.Sequential(
                nn.ReLU(inplace=True), nn.Conv2d(C, C, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(C))
            c_prev_prev, c_prev, c_curr = C, C, C
            reduction_prev = True
            spatial = conv_out(conv_out(conv_out(image_size)))
            head_class = AuxiliaryHeadImageNet
        else:
            c_curr = stem_multiplier * C
            self.stem = nn.Sequential(nn.Conv2d(in_channels, c_curr, 3, padding=1, bias=False),
                                      nn.BatchNorm2d(c_curr))
            c_prev_prev, c_prev, c_curr = c_curr, c_curr, C
            reduction_prev = False
            spatial = image_size
            head_class = AuxiliaryHead
        self.cells = nn.ModuleList()
        self.auxiliary_layer = 2 * layers // 3
        self.auxiliary_head = None
        for i in range(layers):
            reduction = i in reduction_layers(layers)
            if reduction:
                c_curr *= 2
                spatial = (spatial + 1) // 2
            cell = Cell(genotype, c_prev_prev, c_prev, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_prev_prev, c_prev = c_prev, cell.multiplier * c_curr
            if auxiliary and i == self.auxiliary_layer:
                self.auxiliary_head = head_class(c_prev, num_classes, spatial, normalised)
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = make_classifier(c_prev, num_classes, normalised)

    def forward(self, x: torch.Tensor):
        aux_logits = None
        if self.stem_kind == "imagenet":
            s0 = self.stem0(x)
            s1 = self.stem1(s0)  # its in-place ReLU rectifies s0 too, as in DARTS's code; the first cell's
            # FactorizedReduce starts with a ReLU, so s0's use there is unchanged
        else:
            s0 = s1 = self.stem(x)
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.auxiliary_layer and self.auxiliary_head is not None and self.training:
                aux_logits = self.auxiliary_head(s1)
        logits = self.classifier(self.global_pooling(s1).flatten(1))
        return (logits, aux_logits) if aux_logits is not None else logits


def count_parameters(model: nn.Module, include_auxiliary: bool = False) -> int:
    """Trainable parameters; the auxiliary head is excluded by default, as DARTS reports sizes."""
    return sum(
        p.numel() for name, p in model.named_parameters()
        if p.requires_grad and (include_auxiliary or "auxiliary" not in name)
    )

