"""The weight learning-rate schedules of the training stages, built from a stage's `sgd` section.

    cosine  lr_e = lr_min + (lr − lr_min)(1 + cos(π e / E)) / 2        DARTS's search and evaluation
    step    lr_e = lr · lr_gamma^{#(milestones ≤ e)}                   LDAM-DRW, IMB-NAS (Yao, 2024)

e counts epochs from 0; the scheduler is stepped once after each epoch. A section chooses by its
`schedule` key (`train.sgd`), or is of one kind only (StepSgdConfig: step; CosineSgdConfig: cosine).
"""

from __future__ import annotations

import math
from collections import Counter

import torch

from ltnas.config import CosineSgdConfig, SgdConfig, StepSgdConfig

LrScheduler = torch.optim.lr_scheduler.LRScheduler


def schedule_of(sgd: SgdConfig) -> str:
    """"step" or "cosine": the section's own choice, else the one its kind has."""
    if isinstance(sgd, StepSgdConfig):
        return "step"
    return getattr(sgd, "schedule", "cosine")


def lr_scheduler(optimizer: torch.optim.Optimizer, sgd: SgdConfig, epochs: int) -> LrScheduler:
    """The schedule `sgd` names, over `epochs` epochs (a cosine needs lr_min: a CosineSgdConfig)."""
    if schedule_of(sgd) == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, list(sgd.lr_milestones), sgd.lr_gamma)
    if not isinstance(sgd, CosineSgdConfig):
        raise TypeError(f"a cosine schedule needs lr_min; {type(sgd).__name__} has none")
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=sgd.lr_min)


def follow_config(scheduler: LrScheduler, sgd: SgdConfig, epochs: int) -> None:
    """After a resume, the schedule's shape from the config (not the checkpoint): `--set train.epochs=N`
    extends a cosine; the milestones and gamma are the config's. The lr reached so far is the checkpoint's."""
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = epochs
    elif isinstance(scheduler, torch.optim.lr_scheduler.MultiStepLR):
        scheduler.milestones = Counter(sgd.lr_milestones)
        scheduler.gamma = sgd.lr_gamma


def lr_at(sgd: SgdConfig, epochs: int, epoch: int) -> float:
    """The learning rate of epoch `epoch` (from 0) in closed form: what the scheduler yields, for tests and plots."""
    if schedule_of(sgd) == "step":
        return sgd.lr * sgd.lr_gamma ** sum(1 for m in sgd.lr_milestones if m <= epoch)
    return sgd.lr_min + (sgd.lr - sgd.lr_min) * (1 + math.cos(math.pi * epoch / epochs)) / 2
