"""The base of every classification dataset: decoding images, the pipeline, the sample dict."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors

from trainyard import DatasetError, build_pipeline

class ClsDataset(torch.utils.data.Dataset):
    """Base class: subclasses list their samples and read one as ``(image, label, meta)``.

    An item is ``{'inputs': uint8 [3,H,W] after the pipeline, 'targets': int,
    'meta': {'index', 'ori_size', 'file', ...}}``; the default collate stacks them
    into ``[B,3,H,W]`` and ``[B]``.

    Args:
        pipeline: ``torchvision.transforms.v2`` configs applied to the image.
        classes: class names, in label order (default: the dataset's own).
    """

    CLASSES: tuple[str, ...] = ()

    def __init__(self, pipeline: Sequence[Any] | None = None, classes: Sequence[str] | None = None) -> None:
        self.pipeline = build_pipeline(pipeline)
        self.classes = tuple(classes or self.CLASSES)

    @property
    def metainfo(self) -> dict[str, Any]:
        return {"classes": self.classes}

    def load(self, index: int) -> tuple[torch.Tensor, int, dict[str, Any]]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, label, meta = self.load(index)
        if self.classes and not 0 <= label < len(self.classes):
            raise DatasetError(
                f"{meta.get('file', f'sample {index}')}: label {label} is outside the {len(self.classes)} classes "
                f"(0-{len(self.classes) - 1})"
            )
        inputs = tv_tensors.Image(image)
        if self.pipeline is not None:
            inputs = self.pipeline(inputs)
        return {
            "inputs": inputs.as_subclass(torch.Tensor),
            "targets": int(label),
            "meta": {"index": index, "ori_size": tuple(image.shape[-2:]), **meta},
        }
