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


def class_probabilities(labels: torch.Tensor, sampler: str) -> torch.Tensor:
    """P(class c) of one draw, for the classes 0..C−1 present in `labels` (an absent class has 0).

    class_balanced: uniform over the present classes, 1/C'.
    reversed (BBN's "reverse" sampler, Zhou et al., 2020): w_c = n_max / n_c, P(c) = w_c / Σ w, i.e. ∝ 1/n_c,
    so the tail is drawn more often than the head.
    """
    size = torch.bincount(labels).double()
    present = size > 0
    if sampler == "class_balanced":
        weights = present.double()
    elif sampler == "reversed":
        weights = torch.where(present, size.max() / size.clamp_min(1), torch.zeros_like(size))
    else:
        raise ValueError(f"no class probabilities for sampler {sampler!r}")
    return weights / weights.sum()


def class_balanced_indices(labels: torch.Tensor, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """Uniform over classes, then uniform within the class (the class-balanced re-sampler); on labels' device."""
    size = torch.bincount(labels)
    present = torch.nonzero(size).flatten()  # a class without images cannot be drawn
    pick = torch.randint(len(present), (num_samples,), generator=generator, device=generator.device)
    return _within_classes(labels, present[pick.to(labels.device)], generator)


def reversed_indices(labels: torch.Tensor, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """BBN's re-sampler ("reverse"): class c with probability ∝ 1/n_c (`class_probabilities`), then uniform
    within the class; on labels' device."""
    probabilities = class_probabilities(labels, "reversed").to(generator.device)
    cls = torch.multinomial(probabilities, num_samples, replacement=True, generator=generator)
    return _within_classes(labels, cls.to(labels.device), generator)


def _within_classes(labels: torch.Tensor, cls: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """For each drawn class, one of its images uniformly at random."""
    device = labels.device
    # Group the images by class: class c occupies by_class[start[c] : start[c] + size[c]].
    by_class = torch.argsort(labels, stable=True)
    size = torch.bincount(labels)
    start = torch.cumsum(size, 0) - size
    within = torch.rand(len(cls), generator=generator, device=generator.device).to(device)
    offset = (within * size[cls]).long().clamp_max(size[cls] - 1)  # clamp: float rounding could reach size
    return by_class[start[cls] + offset]
