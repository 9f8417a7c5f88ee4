"""Pascal VOC detection: ``VOCdevkit/VOC20xx`` with XML annotations, read from a local copy."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from trainyard import DatasetError
from trainyard.images import read_image
from trainyard_det.datasets.base import DetDataset, ImageRecord, check_box, check_images_exist


class VOCDetection(DetDataset):
    """``data_root/VOC<year>/{ImageSets/Main/<split>.txt, Annotations/<id>.xml, JPEGImages/<id>.jpg}``.

    VOC's 1-based pixel corners become 0-based ``[x1 - 1, y1 - 1, x2, y2]``. Objects
    marked ``difficult`` are kept as crowd boxes: not trained on, and detections that
    match them are neither right nor wrong, as in VOC's own evaluation.

    Args:
        data_root: the folder holding ``VOC2007``/``VOC2012``.
        years, split: which sets, e.g. ``('2007', '2012')`` and ``'trainval'``.
    """

    CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
               "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor")

    def __init__(self, data_root: str, split: str = "trainval", years: Sequence[str] = ("2007",),
                 filter_empty_gt: bool = True, **options: Any) -> None:
        super().__init__(filter_empty_gt=filter_empty_gt, **options)
        label_of = {name: label for label, name in enumerate(self.classes)}
        records = []
        for year in [years] if isinstance(years, str) else years:
            root = Path(data_root) / f"VOC{year}"
            split_file = root / "ImageSets" / "Main" / f"{split}.txt"
            if not split_file.is_file():
                raise DatasetError(f"VOC split file not found: {split_file}")
            for name in split_file.read_text().split():
                records.append(self._parse(root, name, len(records), label_of))
        check_images_exist(records, f"{data_root} VOC {split}")
        self.finish_records(records, f"{data_root} VOC {split}")

    def _parse(self, root: Path, name: str, image_id: int, label_of: dict[str, int]) -> ImageRecord:
        xml_file = root / "Annotations" / f"{name}.xml"
        try:
            tree = ET.parse(xml_file).getroot()
            size = tree.find("size")
            record = ImageRecord(image_id, str(root / "JPEGImages" / f"{name}.jpg"),
                                 int(size.findtext("height")), int(size.findtext("width")))
            objects = tree.findall("object")
        except FileNotFoundError:
            raise DatasetError(f"annotation file not found: {xml_file}") from None
        except (ET.ParseError, AttributeError, TypeError, ValueError) as exc:
            raise DatasetError(f"{xml_file} is not a VOC annotation: {exc}") from None
        for number, obj in enumerate(objects):
            class_name = (obj.findtext("name") or "").strip()
            if class_name not in label_of:
                raise DatasetError(f"{xml_file}: object {number} has class {class_name!r}, not among the {len(self.classes)} classes")
            box = obj.find("bndbox")
            try:
                x1, y1, x2, y2 = (float(box.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
            except (AttributeError, TypeError, ValueError):
                raise DatasetError(f"{xml_file}: object {number} has no readable bndbox") from None
            bbox = check_box([x1 - 1, y1 - 1, x2 - x1 + 1, y2 - y1 + 1], record, str(xml_file), f"object {number}")
            record.annotations.append({
                "bbox": bbox,
                "category_id": label_of[class_name],
                "area": bbox[2] * bbox[3],
                "iscrowd": int(obj.findtext("difficult") or 0),
            })
        return record

    def read_image(self, record: ImageRecord) -> torch.Tensor:
        return read_image(record.file)
