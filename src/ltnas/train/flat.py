"""A network's parameters in one contiguous buffer and their gradients in another, so that gradient clipping and
the SGD update are a handful of kernels over one tensor instead of a few per parameter tensor (apex's and
DeepSpeed's "contiguous gradients"; PyTorch's FSDP flattens parameters the same way).

The quickstart's retrained DARTS_V2 network has 219 parameter tensors: clipping (a norm per tensor, the norm of
the norms, a product per tensor) and SGD with momentum and weight decay (four operations per tensor) took 5.3 ms
per step on one core, 2.8 ms over the buffer; DARTS_V2 at C=36 with 20 cells 29 against 15 ms
(benchmarks/optimizer_step.py; benchmarks/RESULTS.md, "One buffer for the parameters"). A checkpoint then holds
one storage for the weights and one for the momentum instead of one per tensor. The arithmetic is SGD's, number by
number,

    d = g + λ·θ,    b ← μ·b + d,    θ ← θ − η·b,

on every parameter at once, and the clipping factor min(1, c / ‖g‖₂) with ‖g‖₂ the norm of the
whole gradient buffer (the same number as the norm of the per-tensor norms, summed in another order).

How: every parameter's data becomes a view of `flat` (its own shape and strides, channels_last included) and its
`.grad` a view of `flat.grad`; autograd then adds each step's gradients into the views in place, and the optimiser
sees one tensor, `flat`. One difference from `torch.optim.SGD` over the separate tensors: a parameter that got no
gradient in a step is updated as if its gradient were zero (weight decay and momentum still move it), where
torch's SGD skips it. The networks retrained here use every parameter every step (tested).
"""

from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


def dense_strides(t: torch.Tensor) -> tuple[int, ...]:
    """`t`'s strides if its numbers fill a block of memory without gaps or overlaps in some dimension order
    (contiguous, channels_last, ...); otherwise the contiguous strides of its shape."""
    expected = 1
    for size, stride in sorted(zip(t.shape, t.stride()), key=lambda pair: pair[1]):
        if size == 1:
            continue
        if stride != expected:
            return torch.empty(t.shape, device="meta").stride()
        expected *= size
    return t.stride()


class FlatParameters:
    """`parameters` (one dtype, one device) moved into one buffer, `flat`, whose `.grad` holds their gradients:
    build it once the model is on its device and in its memory format, give `[flat]` to the optimiser and to
    gradient clipping, call `zero_grad` before each backward pass and `gather_gradients` after it."""

    def __init__(self, parameters: Iterable[nn.Parameter]):
        self.parameters = [p for p in parameters if p.requires_grad]
        if not self.parameters:
            raise ValueError("FlatParameters needs at least one parameter that requires a gradient")
        kinds = {(p.dtype, p.device) for p in self.parameters}
        if len(kinds) > 1:
            raise ValueError(f"FlatParameters needs one dtype and one device; got {sorted(map(str, kinds))}")
        dtype, device = kinds.pop()
        total = sum(p.numel() for p in self.parameters)
        self.flat = torch.empty(total, dtype=dtype, device=device)
        self.flat.grad = torch.zeros_like(self.flat)
        self._views: list[tuple[torch.Tensor, torch.Tensor]] = []  # (data, gradient) view of each parameter
        offset = 0
        with torch.no_grad():
            for p in self.parameters:
                strides = dense_strides(p)
                data = self.flat.as_strided(p.shape, strides, offset)
                data.copy_(p)
                grad = self.flat.grad.as_strided(p.shape, strides, offset)
                self._views.append((data, grad))
                offset += p.numel()
        for p, (data, grad) in zip(self.parameters, self._views):
            p.data = data
            p.grad = grad

    def zero_grad(self) -> None:
        """Zero the gradient buffer (every parameter's `.grad` is a view of it)."""
        self.flat.grad.zero_()

    def gather_gradients(self) -> None:
        """After the backward pass: a gradient that is not its view of the buffer (code set it to None, e.g.
        `model.zero_grad()`, or replaced it) is copied into its view (None: zeros) and the view put back. Raise if
        a parameter's data left the buffer (the model was moved, or reloaded with `assign=True`, after the buffer
        was built): the optimiser would train numbers the model no longer reads."""
        for p, (data, grad) in zip(self.parameters, self._views):
            if p.data_ptr() != data.data_ptr():
                raise RuntimeError("a parameter left the flat buffer (the model was moved or its tensors replaced "
                                   "after FlatParameters was built): build FlatParameters after model.to(...)")
            if p.grad is None or p.grad.data_ptr() != grad.data_ptr():
                with torch.no_grad():
                    if p.grad is None:
                        grad.zero_()
                    else:
                        grad.copy_(p.grad)
                p.grad = grad
