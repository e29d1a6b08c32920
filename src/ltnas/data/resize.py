"""How an image file becomes a square of the training size: the one rule the in-memory folder
source, the streaming one and prediction share (so all give identical pixels)."""

from __future__ import annotations

from ltnas.errors import LtnasError

# How images are made square: ltnas's rule, and the stretch of folder runs made before it (kept so that
# their model files still predict as they were trained).
RESIZE_RULES = ("shorter_side_center_crop", "stretch")
RESIZE_RULE = RESIZE_RULES[0]


def fit_image(image, size: int, rule: str = RESIZE_RULE):
    """A PIL image made size×size. shorter_side_center_crop: scale by size / min(w, h) (bilinear, aspect
    ratio kept), then cut the centre size×size square; stretch: resize w×h straight to size×size."""
    from PIL import Image

    if rule not in RESIZE_RULES:
        raise LtnasError(f"unknown resize rule '{rule}'; choose one of {', '.join(RESIZE_RULES)}")
    width, height = image.size
    if rule == "stretch":
        return image if (width, height) == (size, size) else image.resize((size, size), Image.Resampling.BILINEAR)
    scale = size / min(width, height)
    scaled = (max(size, round(width * scale)), max(size, round(height * scale)))
    if scaled != (width, height):
        image = image.resize(scaled, Image.Resampling.BILINEAR)
    left, top = (scaled[0] - size) // 2, (scaled[1] - size) // 2
    return image if scaled == (size, size) else image.crop((left, top, left + size, top + size))
