"""Precise BatchNorm: running statistics recomputed with the current weights (Wu & Johnson, 2021,
"Rethinking 'Batch' in BatchNorm", Section 3).

In training, BatchNorm tracks exponential moving averages, μ ← (1 − m) μ + m μ_B with m = 0.1, so
the statistics an eval-mode network normalises with describe the weights of the last ~1/m steps.
While the weights move fast (high learning rate, the first epochs, a few hundred images) those
weights differ from today's and the eval-mode loss jumps although the batch-statistics loss does not
(benchmarks/loss_spikes.py shows it on the quickstart digits). Recalibration sets every running mean
and variance to the plain average over the given batches of their batch statistics under the current
weights:

    μ = (1/K) Σ_k μ_Bk,    σ² = (1/K) Σ_k σ²_Bk   (unbiased batch variances, as torch tracks them)

which is torch's `momentum=None` (cumulative average) over K batches. Only the BatchNorm layers run
in training mode, so drop-path, dropout and auxiliary heads are off and no random number is drawn.
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """The BatchNorm layers that keep running statistics."""
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> int:
    """Replace every BatchNorm layer's running statistics by their average over `batches` under the
    current weights; return the number of batches used (0: no BatchNorm, nothing changed)."""
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    was_training = model.training
    momenta = [layer.momentum for layer in layers]
    model.eval()
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average: μ_K = μ_{K-1} + (μ_BK − μ_{K-1}) / K
        layer.train()
    count = 0
    try:
        for x, _ in batches:
            if len(x) > 1:  # a batch of one has no variance to average
                model(x)
                count += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    return count
