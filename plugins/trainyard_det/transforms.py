"""Detection-specific transforms.

Everything else comes from ``torchvision.transforms.v2`` (registered automatically)
and keeps ``tv_tensors.BoundingBoxes`` aligned with the image:
``RandomHorizontalFlip``, ``RandomPhotometricDistort``, ``RandomIoUCrop``,
``RandomZoomOut``, ``SanitizeBoundingBoxes`` (drops boxes a crop made empty, with
their labels), ``Resize``...
"""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.transforms import v2


class ResizeKeepRatio(v2.Resize):
    """Resize keeping the aspect ratio to fit ``scale = (long side max, short side)``, boxes along.

    MMDetection's ``Resize(scale=(1333, 800), keep_ratio=True)``: the short side
    becomes 800 unless the long side would then pass 1333.
    """

    def __init__(self, scale: Sequence[int] = (1333, 800), antialias: bool = True) -> None:
        long_side, short_side = max(scale), min(scale)
        super().__init__(size=short_side, max_size=long_side if long_side > short_side else None, antialias=antialias)
