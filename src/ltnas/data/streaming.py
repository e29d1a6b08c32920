"""Image files decoded batch by batch, for image folders too large to hold decoded in memory.

`FileImages` stands where an ImageSet holds its uint8 N×C×H×W tensor: it has the tensor's shape,
dtype and dim(); indexing it with a batch's indices (or a slice) decodes those files only, with the
same `fit_image` rule as the in-memory path, so both paths give identical pixels. `subset` keeps it
lazy, `to(device)` keeps it on the host (each decoded batch moves to the device), and `split` decodes
chunk by chunk (for the channel statistics), and `prefetched` decodes the next batch in one background
thread while the current one trains. No worker processes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ltnas.errors import LtnasError


class FileImages:
    """N image files seen as a uint8 N×C×size×size tensor that is decoded when indexed."""

    dtype = torch.uint8

    def __init__(self, files: list[Path], size: int, channels: int):
        self.files = list(files)
        self.size = size
        self.channels = channels

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.files), self.channels, self.size, self.size))

    def dim(self) -> int:
        return 4

    def __len__(self) -> int:
        return len(self.files)

    def to(self, device: torch.device | str) -> FileImages:
        return self  # files stay on the host; DeviceBatches moves each decoded batch

    def subset(self, index) -> FileImages:
        return FileImages([self.files[i] for i in _positions(index, len(self))], self.size, self.channels)

    def __getitem__(self, index) -> torch.Tensor:
        """The decoded images at `index` (a slice, or integer indices on any device)."""
        positions = range(len(self))[index] if isinstance(index, slice) else _positions(index, len(self))
        pixels = np.empty((len(positions), self.channels, self.size, self.size), dtype=np.uint8)
        for row, i in enumerate(positions):
            pixels[row] = decode(self.files[i], self.size, self.channels)
        return torch.from_numpy(pixels)

    def prefetched(self, indices: Sequence) -> Iterator[torch.Tensor]:
        """self[i] for each i of `indices`, in order, each decoded in one background thread while the
        previous one is used (PIL releases the GIL while it decodes)."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ltnas-decode") as pool:
            pending = pool.submit(self.__getitem__, indices[0]) if len(indices) else None
            for k in range(len(indices)):
                batch = pending.result()
                pending = pool.submit(self.__getitem__, indices[k + 1]) if k + 1 < len(indices) else None
                yield batch

    def split(self, chunk: int) -> Iterator[torch.Tensor]:
        for start in range(0, len(self), chunk):
            yield self[start:start + chunk]


def decode(path: Path, size: int, channels: int) -> np.ndarray:
    """One file as uint8 channels×size×size: RGB fitted by `fit_image`, channel 0 alone for 1-channel sets
    (as the in-memory path reads them)."""
    from PIL import Image

    from ltnas.data.resize import fit_image

    try:
        with Image.open(path) as image:
            array = np.asarray(fit_image(image.convert("RGB"), size)).transpose(2, 0, 1)
    except (OSError, ValueError, SyntaxError) as exc:
        raise LtnasError(f"cannot read image {path} ({exc}); delete or replace the file") from None
    return array[:channels]


def _positions(index, length: int) -> list[int]:
    if isinstance(index, torch.Tensor):
        index = index.cpu().numpy()
    positions = np.asarray(index, dtype=np.int64).reshape(-1)
    return [int(i) % length if i < 0 else int(i) for i in positions]
