"""Index samplers for one epoch, drawn in a single call on the device (no loop over samples).

The random numbers come from the caller's generator, on the generator's own device, and are then moved:
a CPU generator therefore drives CUDA or MPS training too, and resuming a run only needs its state.
"""

from __future__ import annotations

import torch


def instance_indices(
    num_items: int, num_samples: int, generator: torch.Generator, device: torch.device | str
) -> torch.Tensor:
    """Uniform over images: a permutation, followed by fresh ones when more samples than items are asked."""
    passes = max(1, -(-num_samples // max(1, num_items)))
    orders = [torch.randperm(num_items, generator=generator, device=generator.device) for _ in range(passes)]
    return torch.cat(orders)[:num_samples].to(device)


def class_balanced_indices(labels: torch.Tensor, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform over classes, then uniform within the class (BBN's re-sampling branch); on labels' device."""
    device = labels.device
    # Group the images by class: class c occupies by_class[start[c] : start[c] + size[c]].
    by_class = torch.argsort(labels, stable=True)
    size = torch.bincount(labels)
    start = torch.cumsum(size, 0) - size
    present = torch.nonzero(size).flatten()  # a class without images cannot be drawn

    pick = torch.randint(len(present), (num_samples,), generator=generator, device=generator.device).to(device)
    cls = present[pick]
    within = torch.rand(num_samples, generator=generator, device=generator.device).to(device)
    offset = (within * size[cls]).long().clamp_max(size[cls] - 1)  # clamp: float rounding could reach size
    return by_class[start[cls] + offset]
