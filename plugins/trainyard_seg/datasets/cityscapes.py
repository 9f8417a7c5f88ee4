"""Cityscapes fine annotations, read from a local ``leftImg8bit``/``gtFine`` tree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainyard import DatasetError
from trainyard.images import read_image, require_directory
from trainyard_seg.datasets.base import SegDataset, read_label_map

# labelIds of the 19 evaluated classes, in train-id order; every other id is ignored (255).
LABEL_ID_TO_TRAIN_ID = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                        26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}


class CityscapesDataset(SegDataset):
    """``data_root/leftImg8bit/<split>/<city>/*_leftImg8bit.png`` with ``gtFine/.../*_gtFine_labelIds.png``."""

    CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
               "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
    PALETTE = ((128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
               (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
               (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))

    def __init__(self, data_root: str, split: str = "train", **options: Any) -> None:
        options.setdefault("label_map", LABEL_ID_TO_TRAIN_ID)
        super().__init__(**options)
        root = Path(data_root)
        self.image_root = require_directory(root / "leftImg8bit" / split, "Cityscapes image directory")
        self.label_root = require_directory(root / "gtFine" / split, "Cityscapes label directory")
        self.images = sorted(self.image_root.rglob("*_leftImg8bit.png"))
        if not self.images:
            raise DatasetError(f"no '*_leftImg8bit.png' images under {self.image_root}")

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int):
        image_path = self.images[index]
        relative = image_path.relative_to(self.image_root)
        label_path = self.label_root / str(relative).replace("_leftImg8bit.png", "_gtFine_labelIds.png")
        return read_image(image_path), read_label_map(label_path), {"file": str(image_path)}
