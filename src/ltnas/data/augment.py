"""Batched augmentation on the device: padded random crop, horizontal flip, cutout (the DARTS recipe),
and, before them, an optional random rotation and zoom (small images of shapes such as digits).

It works on *normalised* batches, which lets one call do everything while matching torchvision's
order (crop and flip on raw pixels, Normalize, then Cutout): crop and flip commute with per-channel
normalisation as long as the padding is raw black, i.e. (0 - mean) / std, and cutout then sets 0,
the mean colour, exactly as DARTS's Cutout after Normalize does.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ltnas.config import AugmentConfig


class BatchAugment:
    """x (N×C×H×W float, normalised with mean/std) → augmented x; every random draw from the generator.

    Without mean/std the batch is taken as raw pixels and padded with 0.
    """

    def __init__(
        self, config: AugmentConfig, mean: Sequence[float] | None = None, std: Sequence[float] | None = None
    ) -> None:
        self.config = config
        if mean is not None and std is not None:
            self.pad_value = [-m / s for m, s in zip(mean, std)]
        else:
            self.pad_value = None

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.config.rotate > 0 or self.config.zoom > 0:
            x = self.rotate_and_zoom(x, generator)
        if self.config.crop_padding > 0 or self.config.flip:
            x = self.crop_and_flip(x, generator)
        if self.config.cutout > 0:
            x = self.cutout(x, generator)
        return x

    def crop_and_flip(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each sample: a random H×W window of the padded image, mirrored with p = 0.5, in one gather."""
        n, _, h, w = x.shape
        pad = self.config.crop_padding
        if pad > 0:
            padded = self._padding(x, pad)
            padded[:, :, pad : pad + h, pad : pad + w] = x
            x = padded
        top = _randint(2 * pad + 1, n, generator, x.device)
        left = _randint(2 * pad + 1, n, generator, x.device)
        rows = top[:, None] + torch.arange(h, device=x.device)  # (n, h) source rows of each sample
        cols = left[:, None] + torch.arange(w, device=x.device)  # (n, w) source columns
        if self.config.flip:
            # mirroring the window = reading its columns backwards
            mirrored = _rand(n, generator, x.device) < 0.5
            cols = torch.where(mirrored[:, None], cols.flip(1), cols)
        batch = torch.arange(n, device=x.device)[:, None, None]
        window = x[batch, :, rows[:, :, None], cols[:, None, :]]  # advanced indices first: (n, h, w, C)
        return window.permute(0, 3, 1, 2).contiguous()

    def rotate_and_zoom(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Each sample turned by a ~ U(−r, r) degrees and zoomed by z ~ U(1 − s, 1 + s) about its centre:
        output pixel p (in [−1, 1]² coordinates) reads the input at R(a) p / z, bilinearly; what falls
        outside the image is raw black, as the crop's padding."""
        n = x.shape[0]
        angle = torch.deg2rad((2 * _rand(n, generator, x.device) - 1) * self.config.rotate)
        zoom = 1 + (2 * _rand(n, generator, x.device) - 1) * self.config.zoom
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        zero = torch.zeros_like(cos)
        theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1).to(x.dtype)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        black = self._padding(x[:1, :, :1, :1], 0)  # (1, C, 1, 1): the normalised value of a raw 0
        return F.grid_sample(x - black, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + black

    def cutout(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Zero a side×side square per sample, centre uniform over the image, clipped at the borders."""
        n, _, h, w = x.shape
        side = self.config.cutout
        top = _randint(h, n, generator, x.device) - side // 2
        left = _randint(w, n, generator, x.device) - side // 2
        rows = torch.arange(h, device=x.device)
        cols = torch.arange(w, device=x.device)
        inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)  # (n, h)
        inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)  # (n, w)
        square = inside_rows[:, :, None] & inside_cols[:, None, :]
        return x.masked_fill(square[:, None], 0.0)

    def _padding(self, x: torch.Tensor, pad: int) -> torch.Tensor:
        n, channels, h, w = x.shape
        shape = (n, channels, h + 2 * pad, w + 2 * pad)
        if self.pad_value is None:
            return x.new_zeros(shape)
        fill = torch.tensor(self.pad_value, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return fill.expand(shape).clone()


def _randint(high: int, n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(high, (n,), generator=generator, device=generator.device).to(device)


def _rand(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=generator.device).to(device)
