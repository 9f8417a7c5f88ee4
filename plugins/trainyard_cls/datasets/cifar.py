"""CIFAR-10 and CIFAR-100 from a local copy of the original python version (never downloaded)."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainyard import DatasetError
from trainyard.images import require_directory
from trainyard_cls.datasets.base import ClsDataset

_NUMPY_ARRAY_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 hold bytes
}


class _ArraysOnly(pickle.Unpickler):
    """Unpickles dicts, lists, strings and numpy arrays, nothing that could run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_ARRAY_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays, lists and strings")


def read_batch(path: Path) -> dict[str, Any]:
    """One pickled CIFAR batch with string keys (the files are Python 2 pickles with bytes keys)."""
    if not path.is_file():
        raise DatasetError(f"CIFAR file not found: {path}")
    try:
        with open(path, "rb") as file:
            content = _ArraysOnly(file, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DatasetError(f"cannot read CIFAR file {path}: {exc}") from None
    if not isinstance(content, dict):
        raise DatasetError(f"cannot read CIFAR file {path}: expected a dict, found {type(content).__name__}")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in content.items()}


def _names(values: list) -> tuple[str, ...]:
    return tuple(v.decode() if isinstance(v, bytes) else str(v) for v in values)


class CIFAR10(ClsDataset):
    """``data_root/cifar-10-batches-py/`` (``data_batch_1..5``, ``test_batch``, ``batches.meta``).

    ``split='train'`` reads the five training batches, ``'test'`` the test batch. All
    images are held in memory (150 MB for the training split).
    """

    folder = "cifar-10-batches-py"
    train_files = tuple(f"data_batch_{i}" for i in range(1, 6))
    test_files = ("test_batch",)
    meta_file, names_key, labels_key = "batches.meta", "label_names", "labels"

    def __init__(self, data_root: str, split: str = "train", **options: Any) -> None:
        if split not in ("train", "test"):
            raise DatasetError(f"{type(self).__name__}: split must be 'train' or 'test', got {split!r}")
        root = require_directory(Path(data_root) / self.folder, f"{type(self).__name__} folder")
        meta = read_batch(root / self.meta_file)
        super().__init__(classes=options.pop("classes", None) or _names(meta[self.names_key]), **options)
        images, labels = [], []
        for name in self.train_files if split == "train" else self.test_files:
            batch = read_batch(root / name)
            data = np.asarray(batch["data"], dtype=np.uint8)
            if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(batch[self.labels_key]) != len(data):
                raise DatasetError(f"{root / name}: expected 'data' of shape [N, 3072] and N labels, found {data.shape}")
            images.append(data.reshape(-1, 3, 32, 32))
            labels += list(batch[self.labels_key])
        self.images = torch.from_numpy(np.concatenate(images))
        self.labels = [int(label) for label in labels]
        self.source = str(root)

    def __len__(self) -> int:
        return len(self.labels)

    def load(self, index: int):
        return self.images[index], self.labels[index], {"file": f"{self.source}[{index}]"}


class CIFAR100(CIFAR10):
    """``data_root/cifar-100-python/`` (``train``, ``test``, ``meta``), the 100 fine labels."""

    folder = "cifar-100-python"
    train_files = ("train",)
    test_files = ("test",)
    meta_file, names_key, labels_key = "meta", "fine_label_names", "fine_labels"
