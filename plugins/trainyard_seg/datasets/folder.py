"""The layout of most segmentation datasets: an image folder and a label folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainyard import DatasetError
from trainyard.images import read_image, require_directory
from trainyard_seg.datasets.base import SegDataset, read_label_map


class FolderSegDataset(SegDataset):
    """``data_root/img_dir/<name><img_suffix>`` with ``data_root/ann_dir/<name><seg_map_suffix>``.

    Label maps are PNGs of class indices (255: ignore). Every image must have its label
    map; a missing one is an error naming both files.
    """

    def __init__(self, data_root: str, img_dir: str, ann_dir: str, img_suffix: str = ".jpg",
                 seg_map_suffix: str = ".png", **options: Any) -> None:
        super().__init__(**options)
        root = Path(data_root)
        self.img_dir = require_directory(root / img_dir, "image directory")
        self.ann_dir = require_directory(root / ann_dir, "annotation directory")
        self.img_suffix, self.seg_map_suffix = img_suffix, seg_map_suffix
        self.names = sorted(
            str(p.relative_to(self.img_dir))[: -len(img_suffix)] for p in self.img_dir.rglob(f"*{img_suffix}")
        )
        if not self.names:
            raise DatasetError(f"no '*{img_suffix}' images in {self.img_dir}")
        for name in self.names:
            label = self.ann_dir / f"{name}{seg_map_suffix}"
            if not label.is_file():
                raise DatasetError(f"image {self.img_dir / (name + img_suffix)} has no label map {label}")

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int):
        name = self.names[index]
        image_path = self.img_dir / f"{name}{self.img_suffix}"
        return read_image(image_path), read_label_map(self.ann_dir / f"{name}{self.seg_map_suffix}"), {"file": str(image_path)}
