"""Segmentation-specific transforms: padding that marks padded label pixels as ignored.

Everything else comes from ``torchvision.transforms.v2`` (registered automatically):
``RandomResize``, ``RandomHorizontalFlip``, ``RandomPhotometricDistort``, ``Resize``...
"""

from __future__ import annotations

from collections.abc import Sequence

from torchvision import tv_tensors
from torchvision.transforms import v2

from trainyard_seg import IGNORE_INDEX


class SegRandomCrop(v2.RandomCrop):
    """``v2.RandomCrop`` that pads small images: image with ``fill``, label map with 255 (ignored)."""

    def __init__(self, size: int | Sequence[int], fill: int = 0) -> None:
        super().__init__(size, pad_if_needed=True, fill={tv_tensors.Image: fill, tv_tensors.Mask: IGNORE_INDEX})


class SegPad(v2.Transform):
    """Pad on the right and bottom to ``size``: image with ``fill``, label map with 255."""

    is_random = False  # the same padding every time: samples need no seeding for it (trainyard.pipeline_randomness)

    def __init__(self, size: int | Sequence[int], fill: int = 0) -> None:
        super().__init__()
        self.size = (size, size) if isinstance(size, int) else tuple(size)
        self.fill = fill

    def transform(self, inpt, params):
        if not isinstance(inpt, (tv_tensors.Image, tv_tensors.Mask)):
            return inpt
        height, width = inpt.shape[-2:]
        padding = [0, 0, max(self.size[1] - width, 0), max(self.size[0] - height, 0)]
        fill = IGNORE_INDEX if isinstance(inpt, tv_tensors.Mask) else self.fill
        return v2.functional.pad(inpt, padding, fill=fill)
