"""The base of every detection dataset: images, boxes through the pipeline, the sample dict.

An item is::

    {'inputs': uint8 [3,H,W],
     'targets': {'boxes': float [N,4] xyxy pixels, 'labels': int64 [N], 'image_id': int},
     'meta': {'index', 'image_id', 'ori_size', 'file', 'annotations': [...]}}

``targets`` holds the boxes to train on (crowd and degenerate boxes left out) after
the pipeline; ``meta['annotations']`` holds every original annotation in COCO form
(``bbox`` xywh, ``category_id``, ``area``, ``iscrowd``), which the COCO metric
evaluates against, exactly as COCO's own evaluator would.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torchvision import tv_tensors

from trainyard import DatasetError, build_pipeline

logger = logging.getLogger("trainyard")


@dataclass
class ImageRecord:
    """One image and its annotations in COCO form (``bbox`` is ``[x, y, w, h]``)."""

    image_id: int
    file: str
    height: int
    width: int
    annotations: list[dict[str, Any]] = field(default_factory=list)


class DetDataset(torch.utils.data.Dataset):
    """Base class: subclasses fill ``self.records`` and implement :meth:`read_image`.

    Args:
        pipeline: ``torchvision.transforms.v2`` configs, applied to the image and its
            ``tv_tensors.BoundingBoxes`` together (resize, flip, crop keep them aligned).
        classes: class names in label order.
        filter_empty_gt: leave out images with no box to train on (training sets).
    """

    CLASSES: tuple[str, ...] = ()

    def __init__(self, pipeline: Sequence[Any] | None = None, classes: Sequence[str] | None = None,
                 filter_empty_gt: bool = False) -> None:
        self.pipeline = build_pipeline(pipeline)
        self.classes = tuple(classes or self.CLASSES)
        self.filter_empty_gt = filter_empty_gt
        self.records: list[ImageRecord] = []
        self.category_ids: list[int] = list(range(len(self.classes)))

    @property
    def metainfo(self) -> dict[str, Any]:
        return {"classes": self.classes, "category_ids": tuple(self.category_ids)}

    def finish_records(self, records: list[ImageRecord], source: str) -> None:
        """Keep the records (without empty ones when ``filter_empty_gt``) and log what was dropped."""
        degenerate = sum(1 for r in records for a in r.annotations if not a["iscrowd"] and not _has_area(a["bbox"]))
        if degenerate:
            logger.warning(f"{source}: {degenerate} boxes of zero width or height are not trained on")
        if self.filter_empty_gt:
            kept = [r for r in records if any(not a["iscrowd"] and _has_area(a["bbox"]) for a in r.annotations)]
            if len(kept) < len(records):
                logger.info(f"{source}: {len(records) - len(kept)} images without boxes left out (filter_empty_gt=True)")
            records = kept
        if not records:
            raise DatasetError(f"{source}: no images to read")
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def get_data_info(self, index: int) -> dict[str, Any]:
        """The image's annotation without reading the image: ``width``, ``height`` (for aspect-ratio batching) and more."""
        record = self.records[index]
        return {"image_id": record.image_id, "file": record.file, "width": record.width, "height": record.height,
                "annotations": record.annotations}

    def get_cat_ids(self, index: int) -> list[int]:
        """The labels of the image's annotations (for ``ClassBalancedDataset``), without reading the image."""
        label_of = {category: label for label, category in enumerate(self.category_ids)}
        return [label_of[a["category_id"]] for a in self.records[index].annotations]

    def read_image(self, record: ImageRecord) -> torch.Tensor:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.records[index]
        image = self.read_image(record)
        if tuple(image.shape[-2:]) != (record.height, record.width):
            raise DatasetError(
                f"{record.file}: the image is {tuple(image.shape[-2:])} (height, width) but its annotations "
                f"say {(record.height, record.width)} (image id {record.image_id})"
            )
        trained = [a for a in record.annotations if not a["iscrowd"] and _has_area(a["bbox"])]
        boxes = torch.tensor([_xyxy(a["bbox"]) for a in trained], dtype=torch.float32).reshape(-1, 4)
        label_of = {category: label for label, category in enumerate(self.category_ids)}
        labels = torch.tensor([label_of[a["category_id"]] for a in trained], dtype=torch.int64)
        target = {"boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(record.height, record.width)), "labels": labels}
        inputs = tv_tensors.Image(image)
        if self.pipeline is not None:
            inputs, target = self.pipeline(inputs, target)
        return {
            "inputs": inputs.as_subclass(torch.Tensor),
            "targets": {
                "boxes": target["boxes"].as_subclass(torch.Tensor).float(),
                "labels": target["labels"],
                "image_id": record.image_id,
            },
            "meta": {
                "index": index,
                "image_id": record.image_id,
                "ori_size": (record.height, record.width),
                "file": record.file,
                "annotations": record.annotations,
            },
        }


def _has_area(bbox: Sequence[float]) -> bool:
    return bbox[2] > 0 and bbox[3] > 0


def _xyxy(bbox: Sequence[float]) -> list[float]:
    x, y, w, h = bbox
    return [x, y, x + w, y + h]


def check_images_exist(records: Sequence[ImageRecord], source: str) -> None:
    """Every record's image file is on disk: one listing per image folder, not a stat per file.

    Done when a dataset is built, so a missing file stops the run at the start instead of
    whenever a batch happens to draw it (listing COCO's 118k train images takes about a second).
    """
    by_folder: dict[str, list[ImageRecord]] = {}
    for record in records:
        by_folder.setdefault(os.path.dirname(record.file), []).append(record)
    missing = []
    for folder, in_folder in by_folder.items():
        try:
            present = {entry.name for entry in os.scandir(folder or ".")}
        except (FileNotFoundError, NotADirectoryError):
            present = set()
        missing += [record for record in in_folder if os.path.basename(record.file) not in present]
    if missing:
        first = missing[0]
        raise DatasetError(
            f"{source}: {len(missing)} of the {len(records)} listed images are not on disk, the first: {first.file} "
            f"(image id {first.image_id}); check the image folder (data_prefix) or remove them from the annotations"
        )


def check_box(bbox: Sequence[float], record: ImageRecord, source: str, annotation_id: Any, tolerance: float = 1.0) -> list[float]:
    """The box clipped to the image; a box reaching more than ``tolerance`` pixels outside is an error."""
    x, y, w, h = (float(v) for v in bbox)
    if w < 0 or h < 0 or x < -tolerance or y < -tolerance or x + w > record.width + tolerance or y + h > record.height + tolerance:
        raise DatasetError(
            f"{source}: annotation {annotation_id} of image {record.image_id} ({record.file}) has box [x, y, w, h] = "
            f"{[x, y, w, h]}, outside the {record.width}x{record.height} image"
        )
    x1, y1 = max(x, 0.0), max(y, 0.0)
    x2, y2 = min(x + w, float(record.width)), min(y + h, float(record.height))
    return [x1, y1, x2 - x1, y2 - y1]


def records_to_coco(records: Sequence[ImageRecord], classes: Sequence[str], category_ids: Sequence[int]) -> dict[str, Any]:
    """A COCO-format dict (``images``, ``annotations``, ``categories``) of these records."""
    images, annotations = [], []
    for record in records:
        images.append({"id": record.image_id, "file_name": record.file, "height": record.height, "width": record.width})
        for annotation in record.annotations:
            annotations.append({**annotation, "image_id": record.image_id})
    for number, annotation in enumerate(annotations, start=1):
        annotation.setdefault("id", number)
    categories = [{"id": category, "name": name} for category, name in zip(category_ids, classes)]
    return {"images": images, "annotations": annotations, "categories": categories}

