"""Images with a few shapes and their exact boxes: a detection dataset that needs no files."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import torch

from trainyard import DatasetError
from trainyard_det.datasets.base import DetDataset, ImageRecord, records_to_coco


def _draw(shape: str, rows: torch.Tensor, cols: torch.Tensor, box: list[float]) -> torch.Tensor:
    x1, y1, x2, y2 = box
    inside = (cols >= x1) & (cols < x2) & (rows >= y1) & (rows < y2)
    cx, cy, rx, ry = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 2, (y2 - y1) / 2
    if shape == "ellipse":
        return inside & (((cols + 0.5 - cx) / rx) ** 2 + ((rows + 0.5 - cy) / ry) ** 2 <= 1)
    if shape == "triangle":
        return inside & ((cols + 0.5 - cx).abs() <= rx * (rows + 0.5 - y1) / (y2 - y1))
    return inside


def _overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


class GeneratedDetDataset(DetDataset):
    """One to ``max_objects`` shapes per image (rectangles, ellipses, triangles), apart, each with its box.

    Every image is drawn from a generator seeded by ``(split, index)``: the same on
    every run and machine. Boxes are the shapes' exact extents, in pixels.

    Args:
        length: number of images.
        size: image height and width.
        split: any name; it seeds the images.
        max_objects: most shapes in one image.
        min_box, max_box: side lengths of the boxes, as fractions of ``size``.
    """

    CLASSES = ("rectangle", "ellipse", "triangle")

    def __init__(self, length: int = 500, size: int = 128, split: str = "train", max_objects: int = 4,
                 min_box: float = 0.15, max_box: float = 0.5, **options: Any) -> None:
        super().__init__(**options)
        if set(self.classes) - set(self.CLASSES):
            raise DatasetError(f"GeneratedDetDataset draws {', '.join(self.CLASSES)}; it cannot draw {sorted(set(self.classes) - set(self.CLASSES))}")
        self.size, self.split, self.max_objects = size, split, max_objects
        self.min_box, self.max_box = min_box, max_box
        seed = zlib.crc32(split.encode())
        records = []
        for index in range(length):
            generator = torch.Generator().manual_seed(seed * 1_000_003 + index)
            count = int(torch.randint(1, max_objects + 1, (), generator=generator))
            annotations: list[dict[str, Any]] = []
            for _ in range(count * 10):  # a few tries per shape to place it clear of the others
                width, height = (size * (min_box + (max_box - min_box) * torch.rand(2, generator=generator))).round().tolist()
                x, y = ((size - torch.tensor([width, height])) * torch.rand(2, generator=generator)).floor().tolist()
                label = int(torch.randint(len(self.classes), (), generator=generator))
                if not any(_overlap([x, y, width, height], a["bbox"]) for a in annotations):
                    annotations.append({"bbox": [x, y, width, height], "category_id": label, "area": width * height, "iscrowd": 0})
                if len(annotations) == count:
                    break
            records.append(ImageRecord(index, f"{split}[{index}]", size, size, annotations))
        self.finish_records(records, f"GeneratedDetDataset({split})")

    def read_image(self, record: ImageRecord) -> torch.Tensor:
        generator = torch.Generator().manual_seed(zlib.crc32(self.split.encode()) * 7_919 + record.image_id)
        size = self.size
        rows, cols = torch.meshgrid(torch.arange(size, dtype=torch.float32), torch.arange(size, dtype=torch.float32), indexing="ij")
        image = (torch.rand(3, 1, 1, generator=generator) * 120 + 10).expand(3, size, size).clone()
        for annotation in record.annotations:
            x, y, w, h = annotation["bbox"]
            mask = _draw(self.classes[annotation["category_id"]], rows, cols, [x, y, x + w, y + h])
            colour = torch.rand(3, 1, 1, generator=generator) * 120 + 130
            image = torch.where(mask, colour, image)
        image += 8 * torch.randn(3, size, size, generator=generator)
        return image.round().clamp(0, 255).to(torch.uint8)

    def export_coco(self, folder: str | Path) -> Path:
        """Write the images as PNG files under ``folder/images`` and ``folder/annotations.json``; returns the JSON's path."""
        from PIL import Image

        folder = Path(folder)
        (folder / "images").mkdir(parents=True, exist_ok=True)
        exported = []
        for record in self.records:
            name = f"{self.split}_{record.image_id:06d}.png"
            Image.fromarray(self.read_image(record).permute(1, 2, 0).numpy()).save(folder / "images" / name)
            exported.append(ImageRecord(record.image_id, name, record.height, record.width, [dict(a) for a in record.annotations]))
        content = records_to_coco(exported, self.classes, self.category_ids)
        path = folder / "annotations.json"
        path.write_text(json.dumps(content))
        return path
