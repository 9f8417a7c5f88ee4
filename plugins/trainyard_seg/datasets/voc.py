"""Pascal VOC 2012 segmentation, read from a local ``VOCdevkit/VOC2012`` tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainyard import DatasetError
from trainyard.images import read_image, require_directory
from trainyard_seg.datasets.base import SegDataset, read_label_map


class VOCSegDataset(SegDataset):
    """``data_root/VOCdevkit/VOC2012``: ``JPEGImages``, ``SegmentationClass``, ``ImageSets/Segmentation/<split>.txt``.

    Label PNGs hold palette indices: 0 background, 1-20 the classes, 255 object borders (ignored).
    """

    CLASSES = (
        "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
        "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
    )

    def __init__(self, data_root: str, split: str = "train", **options: Any) -> None:
        super().__init__(**options)
        self.root = require_directory(Path(data_root) / "VOCdevkit" / "VOC2012", "VOC2012 directory")
        split_file = self.root / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not split_file.is_file():
            raise DatasetError(f"VOC split file not found: {split_file}")
        self.ids = [line.strip() for line in split_file.read_text().splitlines() if line.strip()]

    def __len__(self) -> int:
        return len(self.ids)

    def load(self, index: int):
        image_id = self.ids[index]
        image_path = self.root / "JPEGImages" / f"{image_id}.jpg"
        label = read_label_map(self.root / "SegmentationClass" / f"{image_id}.png")
        return read_image(image_path), label, {"file": str(image_path)}
