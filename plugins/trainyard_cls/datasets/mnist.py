"""MNIST and Fashion-MNIST from a local copy of the original IDX files (never downloaded)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainyard import DatasetError
from trainyard.images import require_directory
from trainyard_cls.datasets.base import ClsDataset

_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049


def read_idx(path: Path, magic: int) -> np.ndarray:
    """An IDX file (``.gz`` or not) as a uint8 array: ``[N,28,28]`` images or ``[N]`` labels."""
    for candidate in (path, path.with_name(path.name + ".gz")):
        if candidate.is_file():
            break
    else:
        raise DatasetError(f"IDX file not found: {path} (nor {path.name}.gz)")
    opener = gzip.open if candidate.suffix == ".gz" else open
    try:
        with opener(candidate, "rb") as file:
            data = file.read()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {candidate}: {exc}") from None
    found = int.from_bytes(data[:4], "big") if len(data) >= 4 else None
    if found != magic:
        raise DatasetError(f"{candidate} is not an IDX {'image' if magic == _IMAGES_MAGIC else 'label'} file (magic {found}, expected {magic})")
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{candidate} is truncated: header says {shape}, holds {body.size} values")
    return body.reshape(shape)


class MNIST(ClsDataset):
    """``data_root`` (or ``data_root/raw``) with ``train-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, ...

    The files may be gzipped (``.gz``), as distributed. Grey images are repeated to 3
    channels, to fit the ``[B,3,H,W]`` contract.
    """

    CLASSES = tuple(str(i) for i in range(10))

    def __init__(self, data_root: str, split: str = "train", **options: Any) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"{type(self).__name__}: split must be 'train' or 'test', got {split!r}")
        super().__init__(**options)
        root = require_directory(Path(data_root), f"{type(self).__name__} folder")
        if not any(root.glob("*-ubyte*")) and (root / "raw").is_dir():
            root = root / "raw"
        prefix = "train" if split == "train" else "t10k"
        images = read_idx(root / f"{prefix}-images-idx3-ubyte", _IMAGES_MAGIC)
        labels = read_idx(root / f"{prefix}-labels-idx1-ubyte", _LABELS_MAGIC)
        if len(images) != len(labels):
            raise DatasetError(f"{root}: {len(images)} {prefix} images but {len(labels)} labels")
        self.images = torch.from_numpy(images.copy())
        self.labels = labels.astype(np.int64).tolist()
        self.source = str(root / f"{prefix}-images-idx3-ubyte")

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int):
        return self.images[index].expand(3, -1, -1).contiguous(), self.labels[index], {"file": f"{self.source}[{index}]"}


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: MNIST's file format, ten kinds of clothing."""

    CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
