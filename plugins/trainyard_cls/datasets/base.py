"""The base of every classification dataset: decoding images, the pipeline, the sample dict."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision import tv_tensors

from trainyard import DatasetError, build_pipeline

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")
"""What an image folder may hold (lower case; matched case-insensitively)."""

_TORCHVISION_DECODES = (".jpg", ".jpeg", ".png", ".webp", ".gif")


def read_image(path: str | Path) -> torch.Tensor:
    """An RGB image as uint8 ``[3,H,W]``; a missing, truncated or corrupt file is a :class:`DatasetError`.

    JPEG, PNG, WebP and GIF are decoded by ``torchvision.io.decode_image`` (about 30%
    faster than PIL for JPEG, 10% for PNG, measured at 224x224); other formats by PIL,
    as is everything once torchvision drops its decoders (deprecated in 0.29 in favour
    of TorchCodec).
    """
    path = Path(path)
    decoders = _torchvision_decoders() if path.suffix.lower() in _TORCHVISION_DECODES else None
    if decoders is not None:
        ImageReadMode, decode_image, read_file = decoders
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # the note on TorchCodec, once per image
                return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
        except RuntimeError as exc:
            if not path.is_file():
                raise DatasetError(f"image file not found: {path}") from None
            reason = str(exc).splitlines()[0].split(", ")[-1]
            raise DatasetError(f"cannot read image {path}: {reason}") from None
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise DatasetError(f"image file not found: {path}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DatasetError(f"cannot read image {path}: {exc}") from None
    return torch.from_numpy(array.copy()).permute(2, 0, 1)


def _torchvision_decoders() -> tuple[Any, Any, Any] | None:
    try:
        from torchvision.io import ImageReadMode, decode_image, read_file
    except ImportError:
        return None
    return ImageReadMode, decode_image, read_file


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


def require_directory(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DatasetError(f"{what} not found: {path}")
    return path
