"""Images per second of trainyard's data pipelines against torchvision's, on real JPEG files.

Used by ``tools/benchmark.py --mode data``. The benchmark writes its own data set once:
generated shapes (``trainyard_seg``'s ``ShapesDataset``), upscaled to the asked size
and saved as JPEG files in an ImageFolder layout (two classes) with a COCO annotation
file whose boxes are the shapes' bounding boxes. Each side then reads every file,
decodes it, resizes or crops it with random ``torchvision.transforms.v2`` transforms
and collates batches, with the same ``DataLoader`` workers and batch size:

- ``imagefolder``: trainyard_cls ``ImageFolder`` through :func:`trainyard.data.build_dataloader`
  against ``torchvision.datasets.ImageFolder`` + the same v2 transforms;
- ``coco``: trainyard_det ``CocoDetection`` against ``torchvision.datasets.CocoDetection``
  wrapped by ``wrap_dataset_for_transforms_v2`` + the same v2 transforms.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch

CLASSES = ("even", "odd")


def write_jpeg_dataset(root: Path, count: int, size: int, quality: int = 90) -> Path:
    """``root/images/<class>/<n>.jpg`` and ``root/annotations.json`` (COCO); reused when already there."""
    annotations = root / "annotations.json"
    if annotations.is_file() and len(json.loads(annotations.read_text())["images"]) == count:
        return root
    from PIL import Image

    from trainyard import DATASETS

    shapes = DATASETS.build(dict(type="ShapesDataset", split="train", length=count, size=64))
    images, boxes = [], []
    for index in range(count):
        sample = shapes[index]
        picture = torch.nn.functional.interpolate(sample["inputs"][None].float(), size=(size, size), mode="bilinear", align_corners=False)
        name = f"{CLASSES[index % 2]}/{index:06d}.jpg"
        (root / "images" / CLASSES[index % 2]).mkdir(parents=True, exist_ok=True)
        Image.fromarray(picture[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()).save(root / "images" / name, quality=quality)
        images.append({"id": index + 1, "file_name": name, "width": size, "height": size})
        labels = sample["targets"]
        for category in labels.unique().tolist():
            if category in (0, 255):
                continue
            rows, cols = (labels == category).nonzero(as_tuple=True)
            scale = size / labels.shape[-1]
            x0, y0 = cols.min().item() * scale, rows.min().item() * scale
            x1, y1 = (cols.max().item() + 1) * scale, (rows.max().item() + 1) * scale
            boxes.append({"id": len(boxes) + 1, "image_id": index + 1, "category_id": int(category), "iscrowd": 0,
                          "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0)})
    categories = [{"id": i, "name": f"shape{i}"} for i in range(1, 4)]
    annotations.write_text(json.dumps({"images": images, "annotations": boxes, "categories": categories}))
    return root


def _classification_steps(crop: int) -> list[dict[str, Any]]:
    return [dict(type="RandomResizedCrop", size=crop, antialias=True), dict(type="RandomHorizontalFlip")]


def _detection_steps(size: int) -> list[dict[str, Any]]:
    return [dict(type="RandomHorizontalFlip"), dict(type="Resize", size=size, antialias=True)]


def _v2(steps: list[dict[str, Any]], first: Iterable[Any] = ()) -> Any:
    from torchvision.transforms import v2

    return v2.Compose([*first, *(getattr(v2, s["type"])(**{k: v for k, v in s.items() if k != "type"}) for s in steps)])


def trainyard_imagefolder(root: Path, crop: int, batch_size: int, workers: int) -> Iterable[Any]:
    from trainyard.data import build_dataloader

    return build_dataloader(dict(batch_size=batch_size, num_workers=workers, dataset=dict(
        type="ImageFolder", data_root=str(root / "images"), pipeline=_classification_steps(crop))), 0, "train_dataloader")


def torchvision_imagefolder(root: Path, crop: int, batch_size: int, workers: int) -> Iterable[Any]:
    from torchvision import datasets
    from torchvision.transforms import v2

    dataset = datasets.ImageFolder(str(root / "images"), transform=_v2(_classification_steps(crop), [v2.ToImage()]))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=True)


def trainyard_coco(root: Path, size: int, batch_size: int, workers: int) -> Iterable[Any]:
    from trainyard.data import build_dataloader

    return build_dataloader(dict(batch_size=batch_size, num_workers=workers, dataset=dict(
        type="CocoDetection", ann_file=str(root / "annotations.json"), data_prefix=str(root / "images"),
        pipeline=_detection_steps(size))), 0, "train_dataloader")


def torchvision_coco(root: Path, size: int, batch_size: int, workers: int) -> Iterable[Any]:
    from torchvision import datasets
    from torchvision.transforms import v2

    dataset = datasets.CocoDetection(str(root / "images"), str(root / "annotations.json"),
                                     transforms=_v2(_detection_steps(size), [v2.ToImage()]))
    dataset = datasets.wrap_dataset_for_transforms_v2(dataset, target_keys=("boxes", "labels", "image_id"))
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=True,
                                       collate_fn=lambda batch: tuple(zip(*batch)))


PIPELINES: dict[str, tuple[Callable[..., Iterable[Any]], Callable[..., Iterable[Any]]]] = {
    "imagefolder": (trainyard_imagefolder, torchvision_imagefolder),
    "coco": (trainyard_coco, torchvision_coco),
}


def images_per_second(loader: Iterable[Any], clock: Callable[[], float]) -> tuple[float, int]:
    """Reads one full pass; returns (seconds, images)."""
    start = clock()
    images = 0
    for batch in loader:
        inputs = batch["inputs"] if isinstance(batch, dict) else batch[0]
        images += len(inputs)
    return clock() - start, images
