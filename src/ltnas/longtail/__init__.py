"""Long-tail plug-ins (losses, re-weighting schedules) usable by search, retrain and adaptation.

Class-balanced re-*sampling* is chosen by `LongTailConfig.sampler` and done by the batch loader
(`ltnas.data.DeviceBatches`), so it needs nothing here.
"""

from ltnas.longtail.losses import LongTailLoss, build_criterion, drw_switch_epoch
from ltnas.longtail.weights import ClassBalanced, DeferredReweighting, Reweighting, class_balanced_weights

__all__ = [
    "LongTailLoss", "build_criterion", "drw_switch_epoch",
    "ClassBalanced", "DeferredReweighting", "Reweighting", "class_balanced_weights",
]
