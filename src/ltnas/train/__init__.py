"""Training machinery shared by every stage: the epoch loop with resume and checkpoints, retraining."""

from ltnas.train.checkpoint import load_checkpoint, seed_everything
from ltnas.train.loop import JsonlLog, ProgressReporter, fit

__all__ = ["JsonlLog", "ProgressReporter", "fit", "load_checkpoint", "seed_everything"]
