"""Long-tail plug-ins (losses, re-weighting schedules) usable by search, retrain and adaptation.

Class-balanced re-*sampling* is chosen by `LongTailConfig.sampler` and done by the batch loader
(`ltnas.data.DeviceBatches`), so it needs nothing here.
"""

from ltnas.longtail.losses import (
    LogitAdjustedLoss, LongTailLoss, build_arch_criterion, build_criterion, drw_switch_epoch,
)
from ltnas.longtail.weights import (
    ClassBalanced, DeferredReweighting, InverseFrequency, Reweighting, class_balanced_weights, inverse_frequency_weights,
)

__all__ = [
    "LogitAdjustedLoss", "LongTailLoss", "build_arch_criterion", "build_criterion", "drw_switch_epoch",
    "inverse_frequency_weights",
    "ClassBalanced", "DeferredReweighting", "InverseFrequency", "Reweighting", "class_balanced_weights",
]
