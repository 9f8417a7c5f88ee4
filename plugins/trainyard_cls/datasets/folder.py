"""The most common layout of one's own data: one sub-folder of images per class."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainyard import DatasetError, data_prefix_folders
from trainyard.images import IMAGE_EXTENSIONS, read_image, require_directory
from trainyard_cls.datasets.base import ClsDataset

logger = logging.getLogger("trainyard")


class ImageFolder(ClsDataset):
    """``data_root/[data_prefix/]<class name>/**/<image>``: class names from the sub-folders, sorted.

    The class names go into ``metainfo``, so metrics and the class-count check read
    them from here. Labels follow the class names, never a split's own folder count:
    a val or test split read with ``classes_from='train'`` labels each image by the
    training split's list, so it may lack a rare class (logged), while a class folder
    that train lacks is an error naming it. An empty class folder is an error (a class
    that can never be seen is almost always a mistake in the copy).

    Args:
        data_root: the folder holding one sub-folder per class (or the splits).
        data_prefix: the split's folder under ``data_root`` (``'train'``, ``'val'``), if any;
            mmpretrain's ``dict(img_path='train')`` says the same.
        classes: use these sub-folders, in this order, instead of all of them sorted;
            other sub-folders are left out, a listed class without a folder is logged.
        classes_from: the folder under ``data_root`` (or an absolute path) whose class
            sub-folders are the class list, e.g. ``'train'`` for the val and test splits.
        extensions: file suffixes read as images (case-insensitive).
    """

    def __init__(self, data_root: str, data_prefix: str | Mapping[str, str] = "", classes: Sequence[str] | None = None,
                 classes_from: str | None = None, extensions: Sequence[str] = IMAGE_EXTENSIONS, **options: Any) -> None:
        split = data_prefix_folders(data_prefix, {"img": ("img_path", "img")}, type(self).__name__)["img"] or ""
        root = require_directory(Path(data_root) / split, "image folder")
        if classes and classes_from:
            raise DatasetError(f"{root}: give classes or classes_from, not both")
        if classes_from:
            classes = _classes_of_reference(root, require_directory(Path(data_root) / classes_from, "classes_from folder"))
        super().__init__(classes=classes or _class_folders(root), **options)
        absent = [name for name in self.classes if not (root / name).is_dir()]
        if len(absent) == len(self.classes):
            raise DatasetError(f"{root} has a folder for none of its {len(self.classes)} classes ({', '.join(self.classes)})")
        if absent:
            logger.warning(f"{root}: no folder, so no images, of classes {absent}; the others keep their labels of the class list")
        suffixes = {e.lower() for e in extensions}
        self.samples: list[tuple[str, int]] = []
        for label, name in enumerate(self.classes):
            if name in absent:
                continue
            folder = root / name
            files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
            if not files:
                raise DatasetError(f"class folder {folder} holds no images (looked for {', '.join(sorted(suffixes))})")
            self.samples += [(str(p), label) for p in files]

    def __len__(self) -> int:
        return len(self.samples)

    def load(self, index: int):
        path, label = self.samples[index]
        return read_image(path), label, {"file": path}


def _class_folders(root: Path) -> list[str]:
    """The sorted sub-folder names of ``root`` (hidden ones left out); none is an error."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DatasetError(f"{root} has no class sub-folders; an image folder holds one folder of images per class")
    return classes


def _classes_of_reference(root: Path, reference: Path) -> list[str]:
    """The class list of ``reference`` (the training split); a class folder of ``root`` outside it is an error."""
    classes = _class_folders(reference)
    unknown = [name for name in _class_folders(root) if name not in classes]
    if unknown:
        others = f" (all {len(unknown)} such folders: {', '.join(unknown)})" if len(unknown) > 1 else ""
        raise DatasetError(
            f"{root / unknown[0]}: class {unknown[0]!r} is not among the {len(classes)} classes of {reference} "
            f"({', '.join(classes)}), so the model never learns it{others}; add it to {reference.name} or remove it here"
        )
    return classes
