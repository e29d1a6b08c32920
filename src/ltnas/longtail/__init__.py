"""Long-tail plug-ins (losses, re-weighting schedules) usable by search, retrain and adaptation.

Class-balanced re-*sampling* is chosen by `LongTailConfig.sampler` and done by the batch loader
(`ltnas.data.DeviceBatches`), so it needs nothing here.
"""

from ltnas.longtail.logit_losses import FocalLoss, LDAMLoss, LogitAdjustedLoss, ldam_margins
from ltnas.longtail.losses import LongTailLoss, build_arch_criterion, build_criterion, drw_switch_epoch, loss_function
from ltnas.longtail.weights import (
    ClassBalanced, DeferredReweighting, InverseFrequency, Reweighting, class_balanced_weights, inverse_frequency_weights,
)

__all__ = [
    "LongTailLoss", "build_arch_criterion", "build_criterion", "drw_switch_epoch", "loss_function",
    "FocalLoss", "LDAMLoss", "LogitAdjustedLoss", "ldam_margins",
    "ClassBalanced", "DeferredReweighting", "InverseFrequency", "Reweighting", "class_balanced_weights",
    "inverse_frequency_weights",
]
