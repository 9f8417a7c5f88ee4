"""The most common layout of one's own data: one sub-folder of images per class."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trainyard import DatasetError
from trainyard.images import IMAGE_EXTENSIONS, read_image, require_directory
from trainyard_cls.datasets.base import ClsDataset


class ImageFolder(ClsDataset):
    """``data_root/[data_prefix/]<class name>/**/<image>``: class names from the sub-folders, sorted.

    The class names go into ``metainfo``, so metrics and the class-count check read
    them from here. An empty class folder is an error (a class that can never be
    seen is almost always a mistake in the copy).

    Args:
        data_root: the folder holding one sub-folder per class (or the splits).
        data_prefix: the split's folder under ``data_root`` (``'train'``, ``'val'``), if any.
        classes: use these sub-folders, in this order, instead of all of them sorted
            (so train and val agree even if a split lacks a class folder).
        extensions: file suffixes read as images (case-insensitive).
    """

    def __init__(self, data_root: str, data_prefix: str = "", classes: Sequence[str] | None = None,
                 extensions: Sequence[str] = IMAGE_EXTENSIONS, **options: Any) -> None:
        root = require_directory(Path(data_root) / data_prefix, "image folder")
        if not classes:
            classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            if not classes:
                raise DatasetError(f"{root} has no class sub-folders; an image folder holds one folder of images per class")
        super().__init__(classes=classes, **options)
        suffixes = {e.lower() for e in extensions}
        self.samples: list[tuple[str, int]] = []
        for label, name in enumerate(self.classes):
            folder = require_directory(root / name, f"folder of class {name!r}")
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
            if not files:
                raise DatasetError(f"class folder {folder} holds no images (looked for {', '.join(sorted(suffixes))})")
            self.samples += [(str(p), label) for p in files]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int):
        path, label = self.samples[index]
        return read_image(path), label, {"file": path}
