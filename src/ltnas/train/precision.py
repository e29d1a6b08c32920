"""Mixed precision: bf16 autocast of forward passes, one switch per stage (`search.amp`, `train.amp`).

bf16 keeps fp32's exponent range, so unlike fp16 it needs no loss scaling; parameters, their
gradients and the optimizer state stay fp32. Off by default: the papers' numbers are fp32.
"""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device, enabled: bool):
    """A bf16 autocast context on `device` when enabled, else a context that changes nothing."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)
