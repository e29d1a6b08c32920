"""What a discrete network costs: parameters and multiply-adds per image.

Multiply-adds (MAdds, "×+") count the multiply-accumulates of convolutions and linear layers, as the NAS
papers' tables do: a convolution producing an output of N elements with k_h × k_w kernels over c_in / groups
input channels costs N · k_h · k_w · c_in / groups; a linear layer d_in · d_out. BatchNorm, activations,
poolings and additions are not counted, nor the auxiliary head (dropped at inference). At DARTS's CIFAR-10
evaluation size (C = 36, 20 cells, 32 × 32 images) this gives 528M for DARTS_V2 and 532M for P-DARTS, the
figures of FairDARTS (Chu et al., 2020)'s Table 1; at DARTS's ImageNet size (stem "imagenet", C = 48, 14 cells,
224 × 224) 541M for FairDARTS-B, its Table 2's figure (DARTS_V2: 530M here, 574M in DARTS's own table, whose
counting rule is not published).
"""

from __future__ import annotations

import torch
from torch import nn

from ltnas.space.genotype import Genotype
from ltnas.space.heads import NormedLinear
from ltnas.space.network import DiscreteNetwork, count_parameters


def multiply_adds(model: nn.Module, in_channels: int, image_size: int) -> int:
    """Multiply-adds of one forward pass of `model` (in eval mode) on one in_channels × image_size² image."""
    madds = 0

    def count(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        nonlocal madds
        if isinstance(module, nn.Conv2d):
            kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
            madds += output.numel() * kernel
        else:
            madds += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules()
             if isinstance(m, (nn.Conv2d, nn.Linear, NormedLinear))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            parameter = next(model.parameters(), None)
            device = parameter.device if parameter is not None else torch.device("cpu")
            model(torch.zeros(1, in_channels, image_size, image_size, device=device))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return madds


def subnet_cost(path: Genotype, C: int, layers: int, num_classes: int, in_channels: int,
                image_size: int, normalised: bool = False, stem: str = "cifar") -> tuple[int, int]:
    """(parameters, multiply-adds per image) of the network `path` becomes when retrained at C × layers
    with `stem` (auxiliary head excluded), with the classifier retraining will use (`normalised`: LDAM's
    cosine one)."""
    model = DiscreteNetwork(path, C, num_classes, layers, in_channels=in_channels, image_size=image_size,
                            normalised=normalised, stem=stem)
    return count_parameters(model), multiply_adds(model, in_channels, image_size)
