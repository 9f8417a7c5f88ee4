"""COCO-format detection data: an annotation JSON and an image folder, read through pycocotools."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from trainyard import DatasetError, data_prefix_folders, under_data_root
from trainyard.images import read_image
from trainyard_det.datasets.base import DetDataset, ImageRecord, check_box, check_images_exist


def load_coco(ann_file: Path) -> Any:
    """A ``pycocotools.coco.COCO`` of the file; malformed JSON is a :class:`DatasetError` naming it."""
    from pycocotools.coco import COCO

    if not ann_file.is_file():
        raise DatasetError(f"annotation file not found: {ann_file}")
    try:
        content = json.loads(ann_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{ann_file} is not valid JSON: {exc}") from None
    missing = [key for key in ("images", "categories") if key not in content] if isinstance(content, dict) else []
    if not isinstance(content, dict) or missing:
        raise DatasetError(f"{ann_file} is not a COCO annotation file: it lacks {missing or 'a top-level object'}")
    content.setdefault("annotations", [])  # an image list without labels (COCO test-dev's image_info file)
    coco = COCO()
    coco.dataset = content
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress lines
        coco.createIndex()
    return coco


class CocoDetection(DetDataset):
    """``ann_file`` (COCO JSON) with images under ``data_prefix``.

    Category ids (any integers, e.g. COCO's 1..90 with gaps) map to contiguous labels
    0..K-1 in id order; ``classes`` picks and orders a subset by name. Crowd boxes
    (``iscrowd=1``) are not trained on and are evaluated as COCO does (matches to
    them are ignored). Boxes of zero width or height are not trained on; their count
    is logged. A box reaching outside its image, an unknown category id or a listed
    image that is not on disk is an error when the dataset is built, naming the file
    and the annotation or image id.

    Args:
        ann_file: the annotation JSON.
        data_prefix: the image folder (``file_name`` is relative to it), or mmdet's
            ``dict(img='train2017/')``; default: the JSON's folder.
        data_root: the folder a relative ``ann_file`` and ``data_prefix`` are under,
            as in mmdet (``data_root='data/coco/'``, ``ann_file='annotations/...'``).
        filter_empty_gt: leave out images without a box to train on (True for
            training sets, False to evaluate on every image).
    """

    def __init__(self, ann_file: str, data_prefix: str | Mapping[str, str] | None = None, classes: Sequence[str] | None = None,
                 filter_empty_gt: bool = True, data_root: str | None = None, **options: Any) -> None:
        path = under_data_root(ann_file, data_root)
        image_folder = data_prefix_folders(data_prefix, {"img": ("img", "img_path")}, type(self).__name__)["img"]
        coco = load_coco(path)
        categories = sorted(coco.dataset["categories"], key=lambda c: c["id"])
        if classes:
            by_name = {c["name"]: c["id"] for c in categories}
            unknown = [name for name in classes if name not in by_name]
            if unknown:
                raise DatasetError(f"{path}: classes {unknown} are not among its categories {sorted(by_name)}")
            category_ids = [by_name[name] for name in classes]
        else:
            classes = [c["name"] for c in categories]
            category_ids = [c["id"] for c in categories]
        super().__init__(classes=classes, filter_empty_gt=filter_empty_gt, **options)
        self.category_ids = category_ids
        prefix = under_data_root(image_folder, data_root) if image_folder is not None else path.parent
        known_categories = {c["id"] for c in categories}
        records = {}
        for image in coco.dataset["images"]:
            records[image["id"]] = ImageRecord(image["id"], str(prefix / image["file_name"]), int(image["height"]), int(image["width"]))
        for annotation in coco.dataset["annotations"]:
            record = records.get(annotation.get("image_id"))
            if record is None:
                raise DatasetError(f"{path}: annotation {annotation.get('id')} refers to image id {annotation.get('image_id')}, which the file does not list")
            if annotation.get("category_id") not in known_categories:
                raise DatasetError(
                    f"{path}: annotation {annotation.get('id')} has category id {annotation.get('category_id')}, "
                    f"not among the file's categories {sorted(known_categories)}"
                )
            if annotation["category_id"] not in category_ids:
                continue  # a category outside the chosen classes
            bbox = check_box(annotation["bbox"], record, str(path), annotation.get("id"))
            record.annotations.append({
                "id": annotation.get("id"),
                "bbox": bbox,
                "category_id": annotation["category_id"],
                "area": float(annotation.get("area", bbox[2] * bbox[3])),
                "iscrowd": int(annotation.get("iscrowd", 0)),
            })
        check_images_exist(list(records.values()), str(path))
        self.finish_records(list(records.values()), str(path))

    def read_image(self, record: ImageRecord) -> torch.Tensor:
        if not Path(record.file).is_file():
            raise DatasetError(f"image {record.file} (image id {record.image_id}) not found")
        return read_image(record.file)
