"""The layout of most segmentation datasets: an image folder and a label folder."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainyard import DatasetError, data_prefix_folders
from trainyard.images import read_image, require_directory
from trainyard_seg.datasets.base import SegDataset, read_label_map


class FolderSegDataset(SegDataset):
    """``data_root/img_dir/<name><img_suffix>`` with ``data_root/ann_dir/<name><seg_map_suffix>``.

    Label maps are PNGs of class indices (255: ignore). Every image must have its label
    map; a missing one is an error naming both files. mmseg's
    ``data_prefix=dict(img_path='images/training', seg_map_path='annotations/training')``
    (or mmdet's ``dict(img=..., seg=...)``) names the two folders instead of
    ``img_dir`` and ``ann_dir``.
    """

    def __init__(self, data_root: str, img_dir: str | None = None, ann_dir: str | None = None, img_suffix: str = ".jpg",
                 seg_map_suffix: str = ".png", data_prefix: Mapping[str, str] | None = None, **options: Any) -> None:
        super().__init__(**options)
        root = Path(data_root)
        folders = data_prefix_folders(data_prefix, {"img": ("img_path", "img"), "seg": ("seg_map_path", "seg")}, type(self).__name__)
        for given, kind, key in ((img_dir, "img", "img_dir"), (ann_dir, "seg", "ann_dir")):
            if (given is None) == (folders[kind] is None):
                raise DatasetError(
                    f"{type(self).__name__}: give {key}, or data_prefix=dict(img_path=..., seg_map_path=...), "
                    f"{'not both' if given is not None else 'one of them'}"
                )
        self.img_dir = require_directory(root / (img_dir or folders["img"]), "image directory")
        self.ann_dir = require_directory(root / (ann_dir or folders["seg"]), "annotation directory")
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
