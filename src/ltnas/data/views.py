"""Two augmented views per image for self-supervision (Barlow Twins), batched on the device.

Barlow Twins' recipe: random resized crop, horizontal flip, colour jitter (p = 0.8), grayscale
(p = 0.2), Gaussian blur and solarize, the last two with different probabilities for each view.
Every transform is applied to the whole batch at once, with one random draw per sample from the
caller's generator; a sample that skips a transform keeps its pixels through `torch.where`.

The views are made from the loader's *normalised* batches: they are mapped back to [0, 1] pixels,
transformed, and normalised again. Colour jitter's saturation and hue and the grayscale step only
exist for RGB images; other channel counts get brightness and contrast only. Jitter applies its four
parts in a fixed order (brightness, contrast, saturation, hue), not torchvision's random order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ltnas.config import ViewsConfig

# ITU-R 601 luma, as torchvision's rgb_to_grayscale.
LUMA = (0.299, 0.587, 0.114)
# RGB ↔ YIQ: a hue shift is a rotation of the (I, Q) chroma plane, one 3×3 matrix per sample.
RGB_TO_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


class ViewAugment:
    """x (N×C×H×W, normalised with mean/std) → (view1, view2), both normalised the same way."""

    def __init__(self, config: ViewsConfig, mean: Sequence[float], std: Sequence[float]):
        self.config = config
        self.mean = torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        pixels = (x * std + mean).clamp(0, 1)
        views = tuple(self.view(pixels, index, generator) for index in (0, 1))
        return tuple((view - mean) / std for view in views)  # type: ignore[return-value]

    def view(self, pixels: torch.Tensor, index: int, generator: torch.Generator) -> torch.Tensor:
        """One view of [0, 1] pixels; `index` (0 or 1) picks the blur and solarize probabilities."""
        cfg = self.config
        x = resized_crop(pixels, cfg.crop_scale, cfg.flip, generator)
        if cfg.jitter > 0:
            x = _where(_coin(cfg.jitter, x, generator), colour_jitter(x, cfg, generator), x)
        if cfg.grayscale > 0 and x.shape[1] == 3:
            x = _where(_coin(cfg.grayscale, x, generator), grayscale(x), x)
        if cfg.blur[index] > 0:
            x = _where(_coin(cfg.blur[index], x, generator), gaussian_blur(x, generator), x)
        if cfg.solarize[index] > 0:
            x = _where(_coin(cfg.solarize[index], x, generator), solarize(x), x)
        return x


def resized_crop(x: torch.Tensor, scale: tuple[float, float], flip: bool, generator: torch.Generator,
                 ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Per sample: a window of area fraction in `scale` and aspect ratio in `ratio` (log-uniform),
    placed uniformly inside the image, resized back to H×W bilinearly; mirrored with p = 0.5."""
    n = x.shape[0]
    area = _uniform(n, *scale, x, generator)
    aspect = torch.exp(_uniform(n, math.log(ratio[0]), math.log(ratio[1]), x, generator))
    width = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image side
    height = torch.sqrt(area / aspect).clamp(max=1.0)
    # affine_grid works in [-1, 1] coordinates: the window's half-size is its fraction, its centre
    # can move by 1 − fraction either way.
    centre_x = (2 * _uniform(n, 0, 1, x, generator) - 1) * (1 - width)
    centre_y = (2 * _uniform(n, 0, 1, x, generator) - 1) * (1 - height)
    if flip:
        width = torch.where(_uniform(n, 0, 1, x, generator) < 0.5, -width, width)
    zeros = torch.zeros_like(width)
    theta = torch.stack([torch.stack([width, zeros, centre_x], 1), torch.stack([zeros, height, centre_y], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colour_jitter(x: torch.Tensor, cfg: ViewsConfig, generator: torch.Generator) -> torch.Tensor:
    n = x.shape[0]

    def factor(strength: float) -> torch.Tensor:
        return _uniform(n, 1 - strength, 1 + strength, x, generator).view(n, 1, 1, 1)

    x = (x * factor(cfg.brightness)).clamp(0, 1)
    luminance = grayscale(x).mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - luminance) * factor(cfg.contrast) + luminance).clamp(0, 1)
    if x.shape[1] == 3:
        gray = grayscale(x)
        x = ((x - gray) * factor(cfg.saturation) + gray).clamp(0, 1)
        x = hue_shift(x, _uniform(n, -cfg.hue, cfg.hue, x, generator)).clamp(0, 1)
    return x


def hue_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate each RGB image's chroma by `shift` turns (−0.5..0.5) in YIQ space."""
    to_yiq = torch.tensor(RGB_TO_YIQ, dtype=x.dtype, device=x.device)
    angle = 2 * math.pi * shift.to(x.dtype)
    cos, sin = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(cos), torch.zeros_like(cos)
    rotation = torch.stack([
        torch.stack([one, zero, zero], 1), torch.stack([zero, cos, -sin], 1), torch.stack([zero, sin, cos], 1),
    ], 1)  # (n, 3, 3)
    matrix = torch.linalg.inv(to_yiq) @ rotation @ to_yiq
    return torch.einsum("nij,njhw->nihw", matrix, x)


def grayscale(x: torch.Tensor) -> torch.Tensor:
    """Luma broadcast to every channel (the image itself when it has one channel)."""
    if x.shape[1] != 3:
        return x
    weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * weights).sum(1, keepdim=True).expand_as(x)


def gaussian_blur(x: torch.Tensor, generator: torch.Generator, sigma: tuple[float, float] = (0.1, 2.0)) -> torch.Tensor:
    """Separable Gaussian blur, σ uniform per sample; the kernel spans about a tenth of the image
    (23 px at 224 px in Barlow Twins), at least 3 px, always odd."""
    n, channels, h, w = x.shape
    size = max(3, int(0.1 * min(h, w)) // 2 * 2 + 1)
    sigmas = _uniform(n, *sigma, x, generator)
    offsets = torch.arange(size, dtype=x.dtype, device=x.device) - size // 2
    kernel = torch.exp(-offsets[None] ** 2 / (2 * sigmas[:, None] ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(channels, 0)  # (n·C, size)
    # One grouped convolution for the whole batch: every (sample, channel) plane is its own group.
    planes = F.pad(x.reshape(1, n * channels, h, w), (size // 2,) * 4, mode="reflect")
    planes = F.conv2d(planes, kernel.view(-1, 1, 1, size), groups=n * channels)
    planes = F.conv2d(planes, kernel.view(-1, 1, size, 1), groups=n * channels)
    return planes.view(n, channels, h, w)


def solarize(x: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    return torch.where(x >= threshold, 1 - x, x)


def _uniform(n: int, low: float, high: float, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    draw = torch.rand(n, generator=generator, device=generator.device).to(like.device, like.dtype)
    return low + (high - low) * draw


def _coin(p: float, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return _uniform(like.shape[0], 0, 1, like, generator) < p


def _where(mask: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(mask.view(-1, 1, 1, 1), a, b)
