"""The base of every segmentation dataset: reading files, the pipeline, the sample dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from trainyard import DatasetError, build_pipeline
from trainyard_seg import IGNORE_INDEX


def read_label_map(path: Path) -> torch.Tensor:
    """A label PNG (grey or palette indices) as uint8 ``[H,W]``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode not in ("L", "P", "I;16", "I"):
                raise DatasetError(f"label map {path} has mode {image.mode}; expected class indices (mode L or P)")
            array = np.asarray(image)
    except FileNotFoundError:
        raise DatasetError(f"label file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"cannot read label map {path}: {exc}") from None
    if array.max(initial=0) > 255:
        raise DatasetError(f"label map {path} has values above 255")
    return torch.from_numpy(array.astype(np.uint8))


def lookup_table(label_map: Mapping[int, int] | None, ignore_index: int = IGNORE_INDEX) -> torch.Tensor | None:
    """A 256-entry table for ``label_map``: listed ids are renamed, all others become ``ignore_index``."""
    if not label_map:
        return None
    table = torch.full((256,), ignore_index, dtype=torch.uint8)
    for source, target in label_map.items():
        table[int(source)] = int(target)
    return table


def label_ids_of(label_map: Mapping[int, int] | None, num_classes: int) -> tuple[int, ...] | None:
    """The file id of each class when ``label_map`` renames one file id to each class (None otherwise): result files use them."""
    if not label_map:
        return None
    inverse: dict[int, int] = {}
    for source, target in label_map.items():
        if int(target) != IGNORE_INDEX:
            if int(target) in inverse:
                return None
            inverse[int(target)] = int(source)
    if sorted(inverse) != list(range(num_classes)):
        return None
    return tuple(inverse[label] for label in range(num_classes))


class SegDataset(torch.utils.data.Dataset):
    """Base class: subclasses list their samples and read one as ``(image, label map, meta)``.

    Args:
        pipeline: ``torchvision.transforms.v2`` configs applied jointly to the image
            (``tv_tensors.Image``) and label map (``tv_tensors.Mask``).
        classes, palette: names and RGB colours of the classes (for logs and pictures).
        label_map: ``{raw id: train id}``; ids not listed become 255 (ignored).
    """

    CLASSES: tuple[str, ...] = ()
    PALETTE: tuple[tuple[int, int, int], ...] = ()

    def __init__(self, pipeline: Sequence[Any] | None = None, classes: Sequence[str] | None = None,
                 palette: Sequence[Sequence[int]] | None = None, label_map: Mapping[int, int] | None = None) -> None:
        self.pipeline = build_pipeline(pipeline)
        self.classes = tuple(classes or self.CLASSES)
        self.palette = tuple(tuple(c) for c in (palette or self.PALETTE or default_palette(len(self.classes))))
        self.table = lookup_table(label_map)
        self.label_ids = label_ids_of(label_map, len(self.classes))

    @property
    def metainfo(self) -> dict[str, Any]:
        """``classes``, ``palette`` and, where the files hold other ids (Cityscapes), ``label_ids``: each class's id there."""
        metainfo: dict[str, Any] = {"classes": self.classes, "palette": self.palette}
        if self.label_ids is not None:
            metainfo["label_ids"] = self.label_ids
        return metainfo

    def load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        raise NotImplementedError

    def _check_label_values(self, label_map: torch.Tensor, source: str) -> None:
        outside = _label_values_outside(label_map, len(self.classes))
        if outside:
            raise DatasetError(
                f"{source}: label map holds class values {outside}, but the dataset has {len(self.classes)} classes "
                f"(0-{len(self.classes) - 1}; {IGNORE_INDEX} is ignored). Fix the label file, or map the values with label_map"
            )

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, label_map, meta = self.load(index)
        if image.shape[-2:] != label_map.shape[-2:]:
            raise DatasetError(
                f"{meta.get('file', f'sample {index}')}: the image is {tuple(image.shape[-2:])} (height, width) "
                f"but its label map is {tuple(label_map.shape[-2:])}"
            )
        if self.table is not None:
            label_map = self.table[label_map.long()]
        if self.classes:
            self._check_label_values(label_map, meta.get("file", f"sample {index}"))
        sample = {"inputs": tv_tensors.Image(image), "targets": tv_tensors.Mask(label_map)}
        if self.pipeline is not None:
            sample = self.pipeline(sample)
        return {
            "inputs": sample["inputs"].as_subclass(torch.Tensor),
            "targets": sample["targets"].as_subclass(torch.Tensor).long(),
            "meta": {"index": index, "ori_size": tuple(image.shape[-2:]), **meta},
        }


def _label_values_outside(label_map: torch.Tensor, num_classes: int) -> list[int]:
    values = torch.unique(label_map)
    return [int(v) for v in values if num_classes <= v < IGNORE_INDEX]


def default_palette(count: int) -> list[tuple[int, int, int]]:
    """Pascal VOC's colour map: distinct colours from the bits of the class index."""
    palette = []
    for index in range(max(count, 1)):
        red = green = blue = 0
        value = index
        for shift in range(7, -1, -1):
            red |= (value & 1) << shift
            green |= ((value >> 1) & 1) << shift
            blue |= ((value >> 2) & 1) << shift
            value >>= 3
        palette.append((red, green, blue))
    return palette
